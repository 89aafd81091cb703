//! The masking transform on hand-built events: rules, key columns, schemas, detection decisions.
#![allow(clippy::unwrap_used)]
use std::sync::Arc;

use sluice_core::config::{ColumnPattern, DetectConfig, Entity, MaskMethod, MaskRule};
use sluice_core::event::{ChangeEvent, Op, SourceInfo};
use sluice_core::schema::{Column, SchemaRef, SqlType, TableId, TableSchema};
use sluice_core::transform::Transform;
use sluice_core::Value;
use sluice_transform::method::REDACTED;
use sluice_transform::{Decision, MaskKey, Masker};

fn schema(cols: &[(&str, SqlType)], key: &[usize]) -> SchemaRef {
    Arc::new(TableSchema {
        id: TableId::new("shop", "users"),
        columns: cols.iter().map(|(n, t)| Column { name: (*n).into(), ty: t.clone(), nullable: true }).collect(),
        key: key.to_vec(),
        configured_key: false,
    })
}

fn users() -> SchemaRef {
    schema(
        &[("id", SqlType::Int { bits: 32, unsigned: false }), ("email", SqlType::Text), ("phone", SqlType::Text), ("city", SqlType::Text)],
        &[0],
    )
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn ev(schema: &SchemaRef, op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>, seq: u64) -> ChangeEvent {
    ChangeEvent { op, schema: schema.clone(), before, after, ts_ms: 0, tx: None, seq, source: SourceInfo::default().into() }
}

fn rule(cols: &[&str], method: MaskMethod, keep: Option<u32>) -> MaskRule {
    MaskRule { columns: cols.iter().map(|c| ColumnPattern::parse(c).unwrap()).collect(), method, keep }
}

fn key() -> MaskKey {
    MaskKey::from_bytes(b"a test key of 32 bytes, not real".to_vec()).unwrap()
}

fn detect(sample: u32) -> DetectConfig {
    DetectConfig {
        entities: Entity::ALL.to_vec(),
        action: MaskMethod::Redact,
        keep: None,
        sample,
        threshold: 0.5,
        spans: false,
        columns: vec![],
        exclude: vec![],
    }
}

fn masker(rules: Vec<MaskRule>, detect: Option<DetectConfig>, key: Option<MaskKey>) -> Masker {
    let mut m = Masker::new(rules, detect, key);
    m.open(None).unwrap();
    m
}

#[test]
fn rules_mask_before_and_after_images_and_retype_columns() {
    let s = users();
    let mut m =
        masker(vec![rule(&["shop.users.email"], MaskMethod::Email, None), rule(&["*.phone"], MaskMethod::Partial, None)], None, None);
    let before = vec![Value::Int(1), text("jane@example.com"), text("(206) 555-0142"), text("Seattle")];
    let after = vec![Value::Int(1), text("jane.doe@example.org"), text("(206) 555-0199"), text("Seattle")];
    let out = m.apply(vec![ev(&s, Op::Update, Some(before), Some(after), 0)]).unwrap();
    assert_eq!(out[0].before.as_ref().unwrap()[1..3], [text("j***@example.com"), text("(***) ***-0142")]);
    assert_eq!(out[0].after.as_ref().unwrap()[1..], [text("j***@example.org"), text("(***) ***-0199"), text("Seattle")]);
    assert_eq!(out[0].schema.columns[1].ty, SqlType::Text);
    assert_eq!(out[0].schema.key, vec![0]);
}

#[test]
fn drop_removes_the_column_and_remaps_the_key() {
    let s = schema(&[("ssn", SqlType::Text), ("id", SqlType::Int { bits: 32, unsigned: false }), ("note", SqlType::Text)], &[1]);
    let mut m = masker(vec![rule(&["ssn"], MaskMethod::Drop, None), rule(&["note"], MaskMethod::Null, None)], None, None);
    let out = m.apply(vec![ev(&s, Op::Insert, None, Some(vec![text("123-45-6789"), Value::Int(7), text("hi")]), 0)]).unwrap();
    assert_eq!(out[0].after.as_ref().unwrap(), &vec![Value::Int(7), Value::Null]);
    assert_eq!(out[0].schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["id", "note"]);
    assert_eq!(out[0].schema.key, vec![0]);
    assert_eq!(out[0].schema.columns[1].ty, SqlType::Text, "null keeps the type");
}

#[test]
fn masked_key_columns_are_hashed_so_merges_still_work() {
    let s = schema(&[("email", SqlType::Text), ("city", SqlType::Text)], &[0]);
    let mut m = masker(vec![rule(&["email"], MaskMethod::Redact, None)], None, Some(key()));
    let a = m.apply(vec![ev(&s, Op::Insert, None, Some(vec![text("jane@example.com"), text("x")]), 0)]).unwrap();
    let d = m.apply(vec![ev(&s, Op::Delete, Some(vec![text("jane@example.com"), text("x")]), None, 1)]).unwrap();
    let key_after = &a[0].after.as_ref().unwrap()[0];
    assert_ne!(key_after, &text(REDACTED));
    assert_eq!(key_after, &d[0].before.as_ref().unwrap()[0], "insert and delete of one row carry the same masked key");
    // Without a key this is refused, naming the column and the fix, not the value.
    let mut m = masker(vec![rule(&["email"], MaskMethod::Redact, None)], None, None);
    let err = m.apply(vec![ev(&s, Op::Insert, None, Some(vec![text("jane@example.com"), text("x")]), 0)]).unwrap_err();
    assert!(err.message.contains("shop.users.email") && err.message.contains("SLUICE_MASK_KEY"), "{}", err.message);
    assert!(!err.message.contains("jane@"));
}

#[test]
fn detection_masks_matches_while_sampling_then_decides_for_good() {
    let s = users();
    let mut m = masker(vec![], Some(detect(4)), None);
    let row = |i: i64, email: &str, city: &str| vec![Value::Int(i), text(email), Value::Null, text(city)];
    // Sampling: the matching value is masked at once (fail closed), the odd one is not.
    let out = m
        .apply(vec![
            ev(&s, Op::Read, None, Some(row(1, "a@example.com", "Seattle")), 0),
            ev(&s, Op::Read, None, Some(row(2, "n/a", "Boise")), 1),
            ev(&s, Op::Read, None, Some(row(3, "c@example.com", "Austin")), 2),
        ])
        .unwrap();
    assert_eq!(out[0].after.as_ref().unwrap()[1], text(REDACTED));
    assert_eq!(out[1].after.as_ref().unwrap()[1], text("n/a"));
    assert!(matches!(m.decisions()["shop.users.email"], Decision::Sampling { seen: 3, .. }));
    m.apply(vec![ev(&s, Op::Read, None, Some(row(4, "d@example.com", "Miami")), 3)]).unwrap();
    assert!(matches!(m.decisions()["shop.users.email"], Decision::Masked { entity: Entity::Email, hits: 3, seen: 4 }));
    assert!(matches!(m.decisions()["shop.users.city"], Decision::Clear { seen: 4 }));
    // Decided: every value is masked now, matching or not.
    let out = m.apply(vec![ev(&s, Op::Insert, None, Some(row(5, "unknown", "Denver")), 4)]).unwrap();
    assert_eq!(out[0].after.as_ref().unwrap()[1], text(REDACTED));
    assert_eq!(out[0].after.as_ref().unwrap()[3], text("Denver"));
    // The decision survives a restart through the mark, and never flips back.
    let mark = m.mark();
    let mut again = Masker::new(vec![], Some(detect(4)), None);
    again.open(Some(mark)).unwrap();
    let out = again.apply(vec![ev(&s, Op::Insert, None, Some(row(6, "plain text", "a@example.com")), 5)]).unwrap();
    assert_eq!(out[0].after.as_ref().unwrap()[1], text(REDACTED));
    assert_eq!(out[0].after.as_ref().unwrap()[3], text("a@example.com"), "city was decided clear");
}

#[test]
fn a_column_added_mid_stream_is_masked_from_its_first_row() {
    let s = users();
    let mut m = masker(vec![], Some(detect(100)), None);
    m.apply(vec![ev(&s, Op::Insert, None, Some(vec![Value::Int(1), Value::Null, Value::Null, text("x")]), 0)]).unwrap();
    let mut wider = (*s).clone();
    wider.columns.push(Column { name: "backup_email".into(), ty: SqlType::Text, nullable: true });
    let wider = Arc::new(wider);
    let out = m
        .apply(vec![ev(&wider, Op::Insert, None, Some(vec![Value::Int(2), Value::Null, Value::Null, text("x"), text("b@example.com")]), 1)])
        .unwrap();
    assert_eq!(out[0].after.as_ref().unwrap()[4], text(REDACTED));
}

#[test]
fn spans_inside_free_text_and_json_are_masked() {
    let s = schema(&[("id", SqlType::Int { bits: 32, unsigned: false }), ("note", SqlType::Text), ("doc", SqlType::Json)], &[0]);
    let mut cfg = detect(1);
    cfg.spans = true;
    let mut m = masker(vec![], Some(cfg), None);
    let out = m
        .apply(vec![ev(
            &s,
            Op::Insert,
            None,
            Some(vec![
                Value::Int(1),
                text("call me at (206) 555-0142 please"),
                Value::Json(r#"{"contact":{"mail":"jane@example.com"},"n":3}"#.into()),
            ]),
            0,
        )])
        .unwrap();
    let row = out[0].after.as_ref().unwrap();
    assert_eq!(row[1], text("call me at ######## please"));
    assert_eq!(row[2], Value::Json("{\"contact\":{\"mail\":\"########\"},\"n\":3}".into()));
}

#[test]
fn tables_without_masked_columns_pass_untouched() {
    let s = schema(&[("id", SqlType::Int { bits: 32, unsigned: false })], &[0]);
    let mut m = masker(vec![rule(&["shop.users.email"], MaskMethod::Redact, None)], None, None);
    let e = ev(&s, Op::Insert, None, Some(vec![Value::Int(1)]), 0);
    let out = m.apply(vec![e.clone()]).unwrap();
    assert!(Arc::ptr_eq(&out[0].schema, &e.schema));
}
