//! Typed column values. One representation for snapshot and binlog, so the same stored datum
//! always becomes the same value whichever path read it.
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Exact decimal text, e.g. "12.30" (scale digits kept).
    Decimal(String),
    /// Days since 1970-01-01. Zero dates ("0000-00-00") are carried as `ZeroDate`.
    Date(i32),
    /// DATETIME: microseconds since 1970-01-01 00:00:00, no zone.
    DateTime(i64),
    /// TIMESTAMP: microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// TIME: signed microseconds (MySQL allows -838:59:59 .. 838:59:59).
    Time(i64),
    Year(i16),
    /// MySQL's zero date / datetime, which has no calendar value.
    ZeroDate,
    Text(String),
    /// JSON document as text (embedded as JSON in encodings).
    Json(String),
    Bytes(Vec<u8>),
}

pub type Row = Vec<Value>;

const MICROS: i64 = 1_000_000;

/// The identity of the columns `cols` of `row` ([`Value::write_identity`]), into `out` (cleared).
pub fn identity_of(row: &[Value], cols: &[usize], out: &mut Vec<u8>) {
    out.clear();
    for &c in cols {
        row.get(c).unwrap_or(&Value::Null).write_identity(out);
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Appends an encoding of this value that is equal for equal values and different for
    /// different ones (a tag, then fixed-width bytes or length-prefixed bytes): how rows are told
    /// apart by key without rendering text. Floats compare by bits.
    pub fn write_identity(&self, out: &mut Vec<u8>) {
        let mut fixed = |tag: u8, bytes: &[u8]| {
            out.push(tag);
            out.extend_from_slice(bytes);
        };
        match self {
            Value::Null => fixed(0, &[]),
            Value::Int(v) => fixed(1, &v.to_le_bytes()),
            Value::UInt(v) => fixed(2, &v.to_le_bytes()),
            Value::Float(v) => fixed(3, &v.to_bits().to_le_bytes()),
            Value::Double(v) => fixed(4, &v.to_bits().to_le_bytes()),
            Value::Date(v) => fixed(6, &v.to_le_bytes()),
            Value::DateTime(v) => fixed(7, &v.to_le_bytes()),
            Value::Timestamp(v) => fixed(8, &v.to_le_bytes()),
            Value::Time(v) => fixed(9, &v.to_le_bytes()),
            Value::Year(v) => fixed(10, &v.to_le_bytes()),
            Value::ZeroDate => fixed(11, &[]),
            Value::Decimal(s) | Value::Text(s) | Value::Json(s) => {
                let tag = match self {
                    Value::Decimal(_) => 5,
                    Value::Text(_) => 12,
                    _ => 13,
                };
                fixed(tag, &(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                fixed(14, &(b.len() as u64).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
    }

    /// Memory held by this value, roughly (for byte-bounded queues; no allocation).
    pub fn approx_bytes(&self) -> usize {
        let heap = match self {
            Value::Decimal(s) | Value::Text(s) | Value::Json(s) => s.capacity(),
            Value::Bytes(b) => b.capacity(),
            _ => 0,
        };
        std::mem::size_of::<Value>() + heap
    }

    /// JSON rendering (DESIGN.md contract): integers as numbers (beyond ±2^53 as strings),
    /// DECIMAL as exact strings, dates ISO-8601 (TIMESTAMP in UTC with `Z`), binary base64,
    /// JSON embedded, ENUM/SET as text.
    pub fn to_json(&self) -> Json {
        const SAFE: i64 = 1 << 53;
        match self {
            Value::Null => Json::Null,
            Value::Int(v) if (-SAFE..=SAFE).contains(v) => Json::from(*v),
            Value::Int(v) => Json::String(v.to_string()),
            Value::UInt(v) if *v <= SAFE as u64 => Json::from(*v),
            Value::UInt(v) => Json::String(v.to_string()),
            Value::Float(v) => float_json(f64::from(*v)),
            Value::Double(v) => float_json(*v),
            Value::Decimal(s) => Json::String(s.clone()),
            Value::Date(d) => Json::String(format_date(*d)),
            Value::DateTime(us) => Json::String(format_datetime(*us, false)),
            Value::Timestamp(us) => Json::String(format_datetime(*us, true)),
            Value::Time(us) => Json::String(format_time(*us)),
            Value::Year(y) => Json::from(*y),
            Value::ZeroDate => Json::String("0000-00-00".into()),
            Value::Text(s) => Json::String(s.clone()),
            Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
            Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        }
    }

    /// A short human-readable rendering used by `tail --format`-less tools and tests.
    pub fn render(&self) -> String {
        match self.to_json() {
            Json::String(s) => s,
            other => other.to_string(),
        }
    }
}

fn float_json(v: f64) -> Json {
    serde_json::Number::from_f64(v).map(Json::Number).unwrap_or_else(|| Json::String(v.to_string()))
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

/// Days since 1970-01-01 for a calendar date; `None` if the date does not exist.
pub fn days_from_ymd(y: i32, m: u32, d: u32) -> Option<i32> {
    NaiveDate::from_ymd_opt(y, m, d).map(|date| (date - epoch()).num_days() as i32)
}

/// Microseconds since the epoch for a wall-clock date and time.
pub fn micros_from_parts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(y, mo, d)?;
    let dt = date.and_hms_micro_opt(h, mi, s, us)?;
    Some(dt.and_utc().timestamp_micros())
}

pub fn format_date(days: i32) -> String {
    (epoch() + chrono::Duration::days(i64::from(days))).format("%Y-%m-%d").to_string()
}

pub fn format_datetime(us: i64, utc: bool) -> String {
    let dt: NaiveDateTime = DateTime::from_timestamp_micros(us).map(|d| d.naive_utc()).unwrap_or_default();
    let base = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = us.rem_euclid(MICROS);
    let frac = if frac == 0 { String::new() } else { format!(".{frac:06}") };
    format!("{base}{frac}{}", if utc { "Z" } else { "" })
}

pub fn format_time(us: i64) -> String {
    let sign = if us < 0 { "-" } else { "" };
    let a = us.unsigned_abs();
    let secs = a / MICROS as u64;
    let frac = a % MICROS as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let frac = if frac == 0 { String::new() } else { format!(".{frac:06}") };
    format!("{sign}{h:02}:{m:02}:{s:02}{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_tell_values_apart() {
        let id = |row: &[Value]| {
            let mut b = Vec::new();
            identity_of(row, &(0..row.len()).collect::<Vec<_>>(), &mut b);
            b
        };
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(id(&[Value::Int(5), t("a")]), id(&[Value::Int(5), t("a")]));
        // Length prefixes: ("ab", "c") is not ("a", "bc").
        assert_ne!(id(&[t("ab"), t("c")]), id(&[t("a"), t("bc")]));
        assert_ne!(id(&[Value::Int(1)]), id(&[Value::UInt(1)]));
        assert_ne!(id(&[Value::Null]), id(&[t("")]));
        assert_ne!(id(&[Value::Text("1".into())]), id(&[Value::Decimal("1".into())]));
    }

    #[test]
    fn json_rendering_follows_the_contract() {
        assert_eq!(Value::Int(1 << 53).to_json(), Json::from(1i64 << 53));
        assert_eq!(Value::Int(-(1 << 53) - 1).to_json(), Json::String("-9007199254740993".into()));
        assert_eq!(Value::UInt(u64::MAX).to_json(), Json::String("18446744073709551615".into()));
        assert_eq!(Value::Decimal("12.30".into()).to_json(), Json::String("12.30".into()));
        let ts = micros_from_parts(2024, 2, 29, 23, 59, 58, 123_456).unwrap();
        assert_eq!(Value::Timestamp(ts).to_json(), Json::String("2024-02-29T23:59:58.123456Z".into()));
        assert_eq!(Value::DateTime(ts - 123_456).to_json(), Json::String("2024-02-29T23:59:58".into()));
        assert_eq!(Value::Date(days_from_ymd(1000, 1, 1).unwrap()).render(), "1000-01-01");
        assert_eq!(Value::Time(-(838 * 3600 + 59 * 60 + 59) * MICROS).render(), "-838:59:59");
        assert_eq!(Value::Bytes(vec![0, 255]).to_json(), Json::String("AP8=".into()));
        assert_eq!(Value::Json(r#"{"a":[1,2]}"#.into()).to_json()["a"][1], Json::from(2));
    }
}
