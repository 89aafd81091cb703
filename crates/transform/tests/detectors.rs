//! Precision and recall of each detector on a hand-labelled sample (tests/data/pii_labelled.tsv),
//! printed as a table; the test fails if any detector falls below the bar.
#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;

use sluice_core::config::Entity;
use sluice_transform::detect::Detector;

fn label(s: &str) -> Option<Entity> {
    Entity::ALL.into_iter().find(|e| e.name() == s)
}

#[test]
fn precision_and_recall_on_the_labelled_sample() {
    let data = include_str!("data/pii_labelled.tsv");
    let detector = Detector::new(&Entity::ALL);
    // entity → (true positives, false positives, false negatives)
    let mut counts: BTreeMap<Entity, (u32, u32, u32)> = Entity::ALL.iter().map(|e| (*e, (0, 0, 0))).collect();
    let mut wrong = Vec::new();
    let mut samples = 0;
    for line in data.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (l, value) = line.split_once('\t').expect("label<TAB>value");
        samples += 1;
        let want = label(l);
        let got = detector.classify(value);
        if want == got {
            if let Some(e) = got {
                counts.get_mut(&e).expect("entity").0 += 1;
            }
            continue;
        }
        wrong.push(format!("{value:?}: labelled {l}, detected {}", got.map_or("NONE", Entity::name)));
        if let Some(e) = got {
            counts.get_mut(&e).expect("entity").1 += 1;
        }
        if let Some(e) = want {
            counts.get_mut(&e).expect("entity").2 += 1;
        }
    }
    println!("{samples} labelled values");
    println!("{:<14} {:>4} {:>4} {:>4} {:>10} {:>8}", "entity", "tp", "fp", "fn", "precision", "recall");
    let mut below = Vec::new();
    for (e, (tp, fp, fneg)) in &counts {
        let precision = f64::from(*tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(*tp) / f64::from((tp + fneg).max(1));
        println!("{:<14} {tp:>4} {fp:>4} {fneg:>4} {precision:>10.3} {recall:>8.3}", e.name());
        if precision < 0.95 || recall < 0.9 {
            below.push(e.name());
        }
    }
    for w in &wrong {
        println!("miss: {w}");
    }
    assert!(below.is_empty(), "detectors below precision 0.95 / recall 0.9: {below:?}");
}

#[test]
fn each_entity_alone_only_finds_itself() {
    for e in Entity::ALL {
        let d = Detector::new(&[e]);
        assert_eq!(d.classify("jane.doe@example.com"), (e == Entity::Email).then_some(Entity::Email));
        assert_eq!(d.classify("4111 1111 1111 1111"), (e == Entity::CreditCard).then_some(Entity::CreditCard));
    }
}
