//! Content-based PII detection, like AWS Glue's Detect Sensitive Data: a regular expression
//! finds candidates, then a validator (checksum, ranges, grouping) rejects look-alikes such as
//! dates, order numbers and version strings.
mod validate;

use std::ops::Range;

use regex::Regex;
use sluice_core::config::Entity;

/// Priority when spans overlap and when a value matches more than one entity: the most
/// specific (checksummed or strictly shaped) first.
const PRIORITY: [Entity; 6] = [Entity::Email, Entity::Iban, Entity::CreditCard, Entity::UsSsn, Entity::IpAddress, Entity::PhoneNumber];

fn pattern(e: Entity) -> &'static str {
    match e {
        Entity::Email => r"[A-Za-z0-9][A-Za-z0-9._%+'\-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}",
        Entity::PhoneNumber => r"(?:\+[0-9]{1,3}[ .\-]?)?(?:\([0-9]{1,4}\)[ .\-]?)?[0-9]{1,8}(?:[ .\-][0-9]{1,8}){1,5}|\+[0-9]{8,15}",
        Entity::CreditCard => r"[0-9](?:[ \-]?[0-9]){12,18}",
        Entity::UsSsn => r"[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}",
        Entity::IpAddress => r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}",
        Entity::Iban => r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}",
    }
}

struct Matcher {
    entity: Entity,
    anywhere: Regex,
    whole: Regex,
}

/// The enabled detectors, compiled once.
pub struct Detector {
    matchers: Vec<Matcher>,
}

impl Detector {
    pub fn new(entities: &[Entity]) -> Self {
        let matchers = PRIORITY
            .iter()
            .filter(|e| entities.contains(e))
            .map(|&entity| {
                let p = pattern(entity);
                Matcher {
                    entity,
                    anywhere: Regex::new(p).expect("valid detector pattern"),
                    whole: Regex::new(&format!("^(?:{p})$")).expect("valid detector pattern"),
                }
            })
            .collect();
        Self { matchers }
    }

    /// The entity a whole value is (surrounding spaces ignored), if any.
    pub fn classify(&self, value: &str) -> Option<Entity> {
        let s = value.trim();
        if s.len() < 5 || s.len() > 320 {
            return None;
        }
        self.matchers.iter().find(|m| m.whole.is_match(s) && validate::valid(m.entity, s)).map(|m| m.entity)
    }

    /// Non-overlapping spans of PII inside free text, in text order.
    pub fn spans(&self, text: &str) -> Vec<(Range<usize>, Entity)> {
        let mut found: Vec<(Range<usize>, Entity)> = Vec::new();
        for m in &self.matchers {
            for hit in m.anywhere.find_iter(text) {
                let r = hit.range();
                if !validate::standalone(text, &r) || !validate::valid(m.entity, hit.as_str()) {
                    continue;
                }
                if found.iter().all(|(f, _)| f.end <= r.start || r.end <= f.start) {
                    found.push((r, m.entity));
                }
            }
        }
        found.sort_by_key(|(r, _)| r.start);
        found
    }

    /// `text` with every PII span replaced by `mask(span)`; `None` when nothing matched.
    pub fn mask_spans(&self, text: &str, mask: impl Fn(&str) -> String) -> Option<String> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (r, _) in spans {
            out.push_str(&text[at..r.start]);
            out.push_str(&mask(&text[r.clone()]));
            at = r.end;
        }
        out.push_str(&text[at..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_in_free_text() {
        let d = Detector::new(&Entity::ALL);
        let text = "Call (206) 555-0142 or mail jane.doe@example.com; card 4111 1111 1111 1111, from 10.0.0.7 on 2024-01-15 10:30";
        let masked = d.mask_spans(text, |_| "#".into()).unwrap();
        assert_eq!(masked, "Call # or mail #; card #, from # on 2024-01-15 10:30");
        assert!(d.mask_spans("nothing to see, order 12345 of 2024-01-15", |_| "#".into()).is_none());
    }

    #[test]
    fn spans_inside_longer_tokens_are_not_pii() {
        let d = Detector::new(&[Entity::IpAddress, Entity::PhoneNumber]);
        assert!(d.spans("version 1.2.3.4.5 build").is_empty());
    }
}
