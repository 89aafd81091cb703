//! Random events of every value type, with names that need escaping, encoded by the byte
//! writers and by the tree-based encoders they replaced ([`super::oracle`]): the bytes must be
//! identical, the trees equal, and every output must parse as JSON.
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use super::oracle;
use super::*;
use crate::event::{Op, SourceInfo};
use crate::schema::{Column, SqlType, TableId};
use crate::value::Row;

const SAFE: i64 = 1 << 53;

fn text(rng: &mut StdRng) -> String {
    const POOL: &[char] = &[
        'a', 'Z', '0', ' ', '"', '\\', '/', '\'', '\u{0}', '\u{1f}', '\t', '\n', '\r', '\u{7f}', 'é', '日', '😀', '\u{2028}', '\u{fffd}',
        '{', ':',
    ];
    let n = rng.gen_range(0..12);
    (0..n).map(|_| if rng.gen_bool(0.15) { rng.gen::<char>() } else { POOL[rng.gen_range(0..POOL.len())] }).collect()
}

/// A JSON document as a column holds it: any spacing, numbers in every notation, escapes,
/// duplicate keys; sometimes not JSON at all.
fn json_doc(rng: &mut StdRng, depth: u32) -> String {
    let ws = |rng: &mut StdRng| [" ", "", "\n  ", "\t"][rng.gen_range(0..4)];
    match rng.gen_range(0..if depth > 2 { 6 } else { 9 }) {
        0 => "null".into(),
        1 => ["true", "false"][rng.gen_range(0..2)].into(),
        2 => rng.gen::<i64>().to_string(),
        3 => ["1e5", "-0", "2.50", "1E-7", "12345678901234567890123", "18446744073709551615", "0.1", "1e400", "-1.5e-300"]
            [rng.gen_range(0..9)]
        .into(),
        4 => serde_json::to_string(&text(rng)).unwrap_or_default(),
        5 => [r#""\u0041\/\ud83d\ude00""#, r#""\b\f""#, "{bad", "", "[1,]", "'x'"][rng.gen_range(0..6)].into(),
        6 | 7 => {
            let n = rng.gen_range(0..4);
            let members: Vec<String> = (0..n)
                .map(|_| {
                    let key = if rng.gen_bool(0.3) { "k".to_string() } else { text(rng) };
                    format!("{}{}:{}{}", serde_json::to_string(&key).unwrap_or_default(), ws(rng), ws(rng), json_doc(rng, depth + 1))
                })
                .collect();
            format!("{{{}{}}}", ws(rng), members.join(","))
        }
        _ => {
            let n = rng.gen_range(0..4);
            let items: Vec<String> = (0..n).map(|_| json_doc(rng, depth + 1)).collect();
            format!("[{}{}]", items.join(", "), ws(rng))
        }
    }
}

fn value(rng: &mut StdRng) -> Value {
    let edge_i = [0, -1, 1, SAFE, SAFE + 1, -SAFE, -SAFE - 1, i64::MIN, i64::MAX];
    match rng.gen_range(0..16) {
        0 => Value::Null,
        1 => Value::Int(if rng.gen_bool(0.5) { edge_i[rng.gen_range(0..edge_i.len())] } else { rng.gen::<i64>() >> rng.gen_range(0..64) }),
        2 => Value::UInt(if rng.gen_bool(0.3) {
            [0, SAFE as u64, SAFE as u64 + 1, u64::MAX][rng.gen_range(0..4)]
        } else {
            rng.gen::<u64>() >> rng.gen_range(0..64)
        }),
        3 => Value::Float(if rng.gen_bool(0.5) { f32::from_bits(rng.gen()) } else { rng.gen_range(-1e6f32..1e6) }),
        4 => Value::Double(match rng.gen_range(0..4) {
            0 => f64::from_bits(rng.gen()),
            1 => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 5e-324, f64::MAX, 1e21, 1e-7][rng.gen_range(0..9)],
            _ => rng.gen_range(-1e9..1e9),
        }),
        5 => Value::Decimal(format!("{}.{:02}", rng.gen::<i32>(), rng.gen_range(0..100))),
        // Within chrono's calendar (±262,000 years), which the old encoder needed.
        6 => Value::Date(rng.gen_range(-95_000_000..95_000_000)),
        7 => Value::DateTime(if rng.gen_bool(0.2) { rng.gen() } else { rng.gen_range(-62_167_219_200_000_000..253_402_300_800_000_000) }),
        8 => Value::Timestamp(if rng.gen_bool(0.2) { rng.gen() } else { rng.gen_range(0..4_102_444_800_000_000) }),
        9 => Value::Time(if rng.gen_bool(0.2) { rng.gen() } else { rng.gen_range(-3_020_399_000_000..=3_020_399_000_000) }),
        10 => Value::Year(rng.gen()),
        11 => Value::ZeroDate,
        12 | 13 => Value::Text(text(rng)),
        14 => Value::Json(json_doc(rng, 0)),
        _ => Value::Bytes((0..rng.gen_range(0..40)).map(|_| rng.gen()).collect()),
    }
}

fn sql_type(rng: &mut StdRng) -> SqlType {
    match rng.gen_range(0..6) {
        0 => SqlType::Int { bits: [8, 16, 24, 32, 64][rng.gen_range(0..5)], unsigned: rng.gen() },
        1 => SqlType::Decimal { precision: rng.gen(), scale: rng.gen() },
        2 => SqlType::Timestamp { fsp: rng.gen_range(0..7) },
        3 => SqlType::Json,
        4 => SqlType::Enum { labels: vec![text(rng)] },
        _ => SqlType::Text,
    }
}

fn row(rng: &mut StdRng, n: usize) -> Row {
    (0..n).map(|_| value(rng)).collect()
}

/// A random event: a random table (unique column names, any key), any operation, any source.
// `.into()`: the source becomes an `Arc<SourceInfo>` on a branch being merged.
#[allow(clippy::useless_conversion)]
fn event(rng: &mut StdRng) -> ChangeEvent {
    let n = rng.gen_range(0..8);
    let mut columns: Vec<Column> = Vec::with_capacity(n);
    for i in 0..n {
        let mut name = text(rng);
        if columns.iter().any(|c| c.name == name) {
            name.push_str(&format!("#{i}"));
        }
        columns.push(Column { name, ty: sql_type(rng), nullable: rng.gen() });
    }
    let key: Vec<usize> = (0..n).filter(|_| rng.gen_bool(0.3)).collect();
    let schema = Arc::new(TableSchema { id: TableId::new(text(rng), text(rng)), columns, key, configured_key: rng.gen() });
    let op = [Op::Read, Op::Insert, Op::Update, Op::Delete][rng.gen_range(0..4)];
    let (before, after) = match op {
        Op::Read | Op::Insert => (None, Some(row(rng, n))),
        Op::Update => (Some(row(rng, n)), Some(row(rng, n))),
        Op::Delete => (Some(row(rng, n)), None),
    };
    let source = SourceInfo {
        connector: "mysql",
        file: text(rng).into(),
        pos: rng.gen(),
        gtid: rng.gen_bool(0.7).then(|| text(rng).into()),
        server_id: rng.gen(),
        snapshot: rng.gen(),
        replayed: rng.gen(),
    };
    let ts_ms = if rng.gen_bool(0.1) { rng.gen() } else { rng.gen_range(-62_167_219_200_000..253_402_300_800_000) };
    let tx = rng.gen_bool(0.7).then(|| text(rng).into());
    ChangeEvent { op, schema, before, after, ts_ms, tx, seq: rng.gen(), source: source.into() }
}

fn parses(bytes: &[u8]) -> Json {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn same(got: &[u8], want: &Json, what: &str) {
    let want = serde_json::to_vec(want).unwrap();
    assert!(got == want.as_slice(), "{what}:\n  writer {}\n  oracle {}", String::from_utf8_lossy(got), String::from_utf8_lossy(&want));
    parses(got);
}

#[test]
fn writers_match_the_tree_encoders_on_random_events() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut buf = Vec::new();
        for i in 0..1_500 {
            let ev = event(&mut rng);
            let processed = rng.gen();
            let what = |w: &str| format!("seed {seed} event {i}: {w}");
            buf.clear();
            debezium_into(&ev, processed, &mut buf).unwrap();
            same(&buf, &oracle::debezium(&ev, processed), &what("debezium"));
            assert_eq!(debezium(&ev, processed), oracle::debezium(&ev, processed), "{}", what("debezium tree"));
            let line = parses(&buf);
            for keyed in [true, false] {
                assert_eq!(debezium_to_dms(&line, keyed), oracle::debezium_to_dms(&line, keyed), "{}", what("tail"));
                assert_eq!(dms_keyed(&ev, keyed), oracle::dms_keyed(&ev, keyed), "{}", what("dms tree"));
                for before_image in [true, false] {
                    buf.clear();
                    dms_into(&ev, keyed, before_image, &mut buf).unwrap();
                    same(&buf, &oracle::dms_with(&ev, keyed, before_image), &what("dms"));
                }
            }
            for format in [EventFormat::Debezium, EventFormat::Dms] {
                // Appends: the line goes after what the buffer holds.
                buf.clear();
                buf.extend_from_slice(b"x\n");
                encode_into(&ev, format, processed, &mut buf).unwrap();
                let want = match format {
                    EventFormat::Debezium => oracle::debezium(&ev, processed),
                    EventFormat::Dms => oracle::dms_with(&ev, !ev.schema.key.is_empty(), true),
                };
                assert_eq!(&buf[..2], b"x\n");
                same(&buf[2..], &want, &what("encode_into"));
            }
            assert_eq!(debezium_source(&ev), oracle::debezium(&ev, processed)["source"], "{}", what("source"));
        }
    }
}

#[test]
fn values_match_the_tree_encoder() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut buf = Vec::new();
    for i in 0..20_000 {
        let v = value(&mut rng);
        buf.clear();
        write_json(&v, &mut buf).unwrap();
        let want = oracle::value_json(&v);
        same(&buf, &want, &format!("value {i} {v:?}"));
        assert_eq!(v.to_json(), want, "value {i} {v:?}");
        let rendered = match want {
            Json::String(s) => s,
            other => other.to_string(),
        };
        assert_eq!(v.render(), rendered, "render of value {i} {v:?}");
    }
}
