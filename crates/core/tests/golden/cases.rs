//! The events and values the golden files hold, shared by the golden tests. Every `Value`
//! variant and `SqlType`, extremes included, every operation, keyed and keyless tables, column
//! names that need escaping. Also included by the Kafka crate's golden test.
#![allow(dead_code)]
use std::sync::Arc;

use sluice_core::encode::SchemaChange;
use sluice_core::event::{ChangeEvent, Op, SourceInfo};
use sluice_core::schema::{Column, SchemaRef, SqlType, TableId, TableSchema};
use sluice_core::value::{days_from_ymd, micros_from_parts, Value};

fn col(name: &str, ty: SqlType) -> Column {
    Column { name: name.into(), ty, nullable: true }
}

fn int(bits: u8, unsigned: bool) -> SqlType {
    SqlType::Int { bits, unsigned }
}

/// The kinds of table change, in the order the golden files list them.
pub const CHANGES: [SchemaChange; 5] = [
    SchemaChange::CreateTable,
    SchemaChange::AddColumn,
    SchemaChange::DropColumn,
    SchemaChange::ColumnTypeChange,
    SchemaChange::ChangeColumns,
];

/// One column of every type (integers of every width, both signs).
pub fn all_types_columns() -> Vec<Column> {
    vec![
        Column { name: "id".into(), ty: int(32, false), nullable: false },
        col("i8", int(8, false)),
        col("u8", int(8, true)),
        col("i16", int(16, false)),
        col("u16", int(16, true)),
        col("i24", int(24, false)),
        col("u24", int(24, true)),
        col("i32", int(32, false)),
        col("u32", int(32, true)),
        col("i64", int(64, false)),
        col("u64", int(64, true)),
        col("dec", SqlType::Decimal { precision: 65, scale: 30 }),
        col("f", SqlType::Float),
        col("d", SqlType::Double),
        col("date", SqlType::Date),
        col("dt", SqlType::DateTime { fsp: 6 }),
        col("ts", SqlType::Timestamp { fsp: 3 }),
        col("t", SqlType::Time { fsp: 6 }),
        col("y", SqlType::Year),
        col("txt", SqlType::Text),
        col("e", SqlType::Enum { labels: vec!["a".into(), "b\"q".into()] }),
        col("s", SqlType::Set { labels: vec!["x".into(), "y".into()] }),
        col("j", SqlType::Json),
        col("bin", SqlType::Binary),
        col("bit", SqlType::Bit { bits: 12 }),
        col("geo", SqlType::Geometry),
        col("zd", SqlType::Date),
    ]
}

pub fn schema(db: &str, table: &str, columns: Vec<Column>, key: Vec<usize>) -> SchemaRef {
    Arc::new(TableSchema { id: TableId::new(db, table), columns, key, configured_key: false })
}

fn date(y: i32, m: u32, d: u32) -> Value {
    Value::Date(days_from_ymd(y, m, d).unwrap_or_default())
}

fn micros(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> i64 {
    micros_from_parts(y, mo, d, h, mi, s, us).unwrap_or_default()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn json(s: &str) -> Value {
    Value::Json(s.into())
}

/// Compares `lines` (name, bytes) with the golden file `tests/golden/<name>` of the crate at
/// `crate_dir`, one `name\tbytes` line each. `SLUICE_BLESS=1` writes the file instead.
pub fn check(crate_dir: &str, name: &str, lines: Vec<(String, Vec<u8>)>) {
    use std::fmt::Write as _;
    let mut text = String::new();
    for (n, bytes) in &lines {
        let bytes = std::str::from_utf8(bytes).expect("JSON is UTF-8");
        assert!(!bytes.contains('\n'), "{n}: a JSON line holds no newline");
        writeln!(text, "{n}\t{bytes}").expect("write to a String");
    }
    let file = std::path::Path::new(crate_dir).join("tests/golden").join(name);
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&file, &text).expect("write golden file");
        return;
    }
    let want = std::fs::read_to_string(&file).expect("golden file (SLUICE_BLESS=1 writes it)");
    let (got, want): (Vec<&str>, Vec<&str>) = (text.lines().collect(), want.lines().collect());
    let wrong: Vec<String> =
        got.iter().zip(&want).filter(|(g, w)| g != w).take(5).map(|(g, w)| format!("\n  want {w}\n  got  {g}")).collect();
    assert!(
        wrong.is_empty(),
        "{name}: {} lines differ, the first:{}",
        got.iter().zip(&want).filter(|(g, w)| g != w).count(),
        wrong.concat()
    );
    assert_eq!(got.len(), want.len(), "{name}: number of lines");
}

/// Rows of the all-types table, each with a name.
pub fn all_types_rows() -> Vec<(&'static str, Vec<Value>)> {
    use Value::*;
    let hms = |h: i64, m: i64, s: i64, us: i64| ((h * 60 + m) * 60 + s) * 1_000_000 + us;
    vec![
        (
            "typical",
            vec![
                Int(1),
                Int(-5),
                UInt(200),
                Int(-1234),
                UInt(50_000),
                Int(-100_000),
                UInt(10_000_000),
                Int(123_456_789),
                UInt(3_000_000_000),
                Int(9_007_199_254_740_992),
                UInt(9_007_199_254_740_992),
                Decimal("12.30".into()),
                Float(0.1),
                Double(0.1),
                date(2024, 2, 29),
                DateTime(micros(2024, 2, 29, 23, 59, 58, 123_456)),
                Timestamp(micros(2024, 11, 25, 16, 22, 33, 935_000)),
                Time(hms(12, 34, 56, 0)),
                Year(2024),
                text("hello"),
                text("b\"q"),
                text("x,y"),
                json(r#"{"a": [1, 2.50, "x"], "b": null, "c": {"d": true}}"#),
                Bytes(vec![0, 1, 2, 255]),
                Bytes(vec![0x0f, 0xff]),
                Bytes(vec![0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 63]),
                ZeroDate,
            ],
        ),
        (
            "maxima",
            vec![
                Int(2_147_483_647),
                Int(127),
                UInt(255),
                Int(32_767),
                UInt(65_535),
                Int(8_388_607),
                UInt(16_777_215),
                Int(2_147_483_647),
                UInt(4_294_967_295),
                Int(i64::MAX),
                UInt(u64::MAX),
                Decimal("99999999999999999999999999999999999.999999999999999999999999999999".into()),
                Float(f32::MAX),
                Double(f64::MAX),
                date(9999, 12, 31),
                DateTime(micros(9999, 12, 31, 23, 59, 59, 999_999)),
                Timestamp(micros(2038, 1, 19, 3, 14, 7, 999_999)),
                Time(hms(838, 59, 59, 0)),
                Year(2155),
                text(&"long text ".repeat(20)),
                text("a"),
                text("x,y"),
                json("[1e5, 1E-2, -0, 0.0, 12345678901234567890123, 18446744073709551615, -9223372036854775808, 1.5e300]"),
                Bytes((0..=255).collect()),
                Bytes(vec![0xff; 2]),
                Bytes(vec![0xab; 25]),
                date(1970, 1, 1),
            ],
        ),
        (
            "minima",
            vec![
                Int(-2_147_483_648),
                Int(-128),
                UInt(0),
                Int(-32_768),
                UInt(0),
                Int(-8_388_608),
                UInt(0),
                Int(-2_147_483_648),
                UInt(0),
                Int(i64::MIN),
                UInt(0),
                Decimal("-0.000000000000000000000000000001".into()),
                Float(f32::MIN_POSITIVE),
                Double(5e-324),
                date(1000, 1, 1),
                DateTime(micros(1000, 1, 1, 0, 0, 0, 0)),
                Timestamp(0),
                Time(-hms(838, 59, 59, 0)),
                Year(1901),
                text(""),
                text(""),
                text(""),
                json("null"),
                Bytes(Vec::new()),
                Bytes(vec![0, 0]),
                Bytes(Vec::new()),
                date(0, 1, 1),
            ],
        ),
        (
            "edges",
            vec![
                Int(4),
                Int(0),
                UInt(1),
                Int(-1),
                UInt(9_007_199_254_740_993),
                Int(-9_007_199_254_740_992),
                Int(-9_007_199_254_740_993),
                Int(9_007_199_254_740_993),
                UInt(9_007_199_254_740_991),
                Int(-(1 << 53)),
                UInt(1 << 53),
                Decimal("0".into()),
                Float(-0.0),
                Double(-0.0),
                date(1969, 12, 31),
                DateTime(-1),
                Timestamp(micros(2024, 1, 1, 0, 0, 0, 500_000)),
                Time(-500_000),
                Year(0),
                text("\"quotes\" and \\backslashes\\ and /slashes/"),
                text("\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1b}\u{1f}\u{7f}"),
                text("é ü ß 日本語 😀 \u{2028}\u{2029} \u{fffd} \u{10ffff}"),
                json(r#"{"k": 1, "k": 2, "z": "\u0041\/\ud83d\ude00", "a": [ ]}"#),
                Bytes(vec![0xfb, 0xff, 0xbf]),
                Bytes(vec![1]),
                Bytes(vec![0xff]),
                Value::ZeroDate,
            ],
        ),
        (
            "specials",
            sparse(
                Int(5),
                vec![
                    (12, Float(f32::NAN)),
                    (13, Double(f64::INFINITY)),
                    (15, DateTime(i64::MAX)),
                    (16, Timestamp(i64::MIN)),
                    (17, Time(i64::MIN)),
                    (22, json("{bad json")),
                ],
            ),
        ),
        (
            "more_floats",
            sparse(
                Int(6),
                vec![
                    (11, Decimal("-12345.678".into())),
                    (12, Float(f32::NEG_INFINITY)),
                    (13, Double(f64::NAN)),
                    (15, DateTime(micros(1900, 1, 1, 0, 0, 0, 1))),
                    (16, Timestamp(micros(1970, 1, 1, 0, 0, 0, 1))),
                    (17, Time(hms(0, 0, 0, 1))),
                    (19, text("日本")),
                    (22, json("  42  ")),
                ],
            ),
        ),
        ("exponents", sparse(Int(7), vec![(12, Float(1e-45)), (13, Double(1e21)), (22, json(""))])),
        ("exponents2", sparse(Int(8), vec![(12, Float(16_777_217.0)), (13, Double(1e-7)), (22, json(r#""just a string""#))])),
        (
            "exponents3",
            sparse(Int(9), vec![(12, Float(3.402_823_5e38)), (13, Double(123_456_789_012_345_680_000.0)), (22, json("[1.0, 100, 1e400]"))]),
        ),
        ("all_null", sparse(Int(10), Vec::new())),
    ]
}

/// A row of the all-types table: `id`, then NULL but in the columns `set` (index, value).
fn sparse(id: Value, set: Vec<(usize, Value)>) -> Vec<Value> {
    let mut row = vec![Value::Null; all_types_columns().len()];
    row[0] = id;
    for (i, v) in set {
        row[i] = v;
    }
    row
}

/// Standalone values (beyond the rows: more floats and extremes).
pub fn values() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (name, row) in all_types_rows() {
        for (c, v) in all_types_columns().iter().zip(row) {
            out.push((format!("{name}.{}", c.name), v));
        }
    }
    for (i, f) in [1.0, 100.0, 1e15, 1e16, 1e17, 1.5e-5, 2.5e-300, 123.456, f64::MIN, f64::EPSILON, 0.3].into_iter().enumerate() {
        out.push((format!("double{i}"), Value::Double(f)));
    }
    for (i, f) in [1.0f32, 100.0, 1e10, 0.3, 1.17e-38, f32::MIN, 2.5].into_iter().enumerate() {
        out.push((format!("float{i}"), Value::Float(f)));
    }
    for (i, us) in [0, 1, 999_999, 1_000_000, -1_000_001, 3_599_999_999, 86_400_000_000 * 40].into_iter().enumerate() {
        out.push((format!("time{i}"), Value::Time(us)));
    }
    for (i, us) in
        [-62_135_596_800_000_000, -62_167_219_200_000_000, 253_402_300_800_000_000, 8_210_298_412_800_000_000].into_iter().enumerate()
    {
        out.push((format!("datetime{i}"), Value::DateTime(us)));
        out.push((format!("timestamp{i}"), Value::Timestamp(us)));
    }
    for (i, d) in [-719_528, -719_529, 2_932_896, 2_932_897, -1, 0, 1, 95_000_000, -95_000_000].into_iter().enumerate() {
        out.push((format!("date{i}"), Value::Date(d)));
    }
    out
}

pub fn source(snapshot: bool, gtid: Option<&str>) -> SourceInfo {
    SourceInfo {
        connector: "mysql",
        file: "mysql-bin.000042".into(),
        pos: 4_294_967_296 + 123,
        gtid: gtid.map(Into::into),
        server_id: 4_294_967_295,
        snapshot,
        replayed: false,
    }
}

/// An event of `schema`: `prev` is the before image of an update.
// `.into()`: the source becomes an `Arc<SourceInfo>` on a branch being merged.
#[allow(clippy::too_many_arguments, clippy::useless_conversion)]
pub fn event(schema: &SchemaRef, op: Op, row: &[Value], prev: &[Value], ts_ms: i64, seq: u64, tx: Option<&str>) -> ChangeEvent {
    let (before, after) = match op {
        Op::Insert | Op::Read => (None, Some(row.to_vec())),
        Op::Update => (Some(prev.to_vec()), Some(row.to_vec())),
        Op::Delete => (Some(row.to_vec()), None),
    };
    ChangeEvent {
        op,
        schema: Arc::clone(schema),
        before,
        after,
        ts_ms,
        tx: tx.map(Into::into),
        seq,
        source: source(op == Op::Read, tx).into(),
    }
}

/// Named events: every row of the all-types table under every operation, keyed (one key, a
/// composite key) and keyless, with and without a transaction; a table whose names need
/// escaping; commit times at the edges of what the DMS timestamp can show.
pub fn events() -> Vec<(String, ChangeEvent)> {
    let mut out = Vec::new();
    let keyed = schema("shop", "all_types", all_types_columns(), vec![0]);
    let composite = schema("shop", "all_types2", all_types_columns(), vec![19, 0]);
    let keyless = schema("shop", "all_types_nokey", all_types_columns(), Vec::new());
    let rows = all_types_rows();
    let ops = [Op::Read, Op::Insert, Op::Update, Op::Delete];
    let mut seq = 0;
    for (s, sname) in [(&keyed, "keyed"), (&composite, "composite"), (&keyless, "keyless")] {
        for (i, (rname, row)) in rows.iter().enumerate() {
            let prev = &rows[(i + 1) % rows.len()].1;
            for op in ops {
                seq += 1;
                let tx = (seq % 3 != 0).then_some("0-4294967295-18446744073709551615");
                let ts = 1_700_000_000_000 + seq as i64 * 7;
                out.push((format!("{sname}.{rname}.{}", op.code()), event(s, op, row, prev, ts, seq, tx)));
            }
        }
    }
    let weird = schema(
        "d\"b\\",
        "t\u{1}é😀",
        vec![
            col("we\"ird", SqlType::Text),
            col("back\\slash", int(64, true)),
            col("tab\tnew\nline", SqlType::Double),
            col("ünï 日本 😀", SqlType::Json),
            col("", SqlType::Text),
            col("@0", SqlType::Binary),
        ],
        vec![1, 0],
    );
    let wrow = vec![
        text("v\"1"),
        Value::UInt(u64::MAX),
        Value::Double(-1.5e-10),
        json(r#"{"ü": "😀"}"#),
        text("\u{2028}"),
        Value::Bytes(b"\"\\".to_vec()),
    ];
    let wprev = vec![text("v0"), Value::UInt(0), Value::Null, Value::Null, Value::Null, Value::Null];
    for op in ops {
        seq += 1;
        out.push((format!("weird.{}", op.code()), event(&weird, op, &wrow, &wprev, 1, seq, Some("tx \"quoted\""))));
    }
    let small = schema("shop", "users", vec![col("id", int(32, false)), col("email", SqlType::Text)], vec![0]);
    let srow = vec![Value::Int(1), text("a@x.io")];
    for (i, ts) in
        [0, -1, -1_000, 1, 999, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_001, i64::MAX, i64::MIN].into_iter().enumerate()
    {
        out.push((format!("ts{i}"), event(&small, Op::Insert, &srow, &srow, ts, u64::MAX - i as u64, None)));
    }
    out
}

/// Schemas for control records and Kafka schema changes: every type, keyed, composite key, keyless,
/// escaping names.
pub fn schemas() -> Vec<(String, SchemaRef)> {
    let mut ints: Vec<Column> = Vec::new();
    for bits in [8, 16, 24, 32, 64] {
        for unsigned in [false, true] {
            ints.push(Column { name: format!("i{bits}{}", if unsigned { "u" } else { "" }), ty: int(bits, unsigned), nullable: unsigned });
        }
    }
    vec![
        ("all_types".into(), schema("shop", "all_types", all_types_columns(), vec![0])),
        ("composite".into(), schema("shop", "all_types2", all_types_columns(), vec![19, 0])),
        ("keyless".into(), schema("shop", "nokey", all_types_columns(), Vec::new())),
        ("ints".into(), schema("shop", "ints", ints, vec![9, 0])),
        (
            "weird".into(),
            schema(
                "d\"b",
                "t\\😀",
                vec![col("we\"ird", SqlType::Text), col("\u{7}", SqlType::Enum { labels: vec!["\"".into(), "😀".into()] })],
                vec![0],
            ),
        ),
    ]
}
