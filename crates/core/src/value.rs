//! Typed column values. One representation for snapshot and binlog, so the same stored datum
//! always becomes the same value whichever path read it.
use std::fmt::Write as _;

use base64::display::Base64Display;
use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, Timelike as _};
use serde::{Serialize, Serializer};
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

    /// JSON rendering (DESIGN.md contract) as a tree, for callers that inspect it; the
    /// encoders write the same JSON straight into bytes through [`Value`]'s `Serialize`.
    pub fn to_json(&self) -> Json {
        // Serializing into a tree cannot fail: every map key is a string.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A short human-readable rendering used by `tail --format`-less tools and tests.
    pub fn render(&self) -> String {
        match self {
            Value::Text(s) | Value::Decimal(s) => s.clone(),
            _ => match self.to_json() {
                Json::String(s) => s,
                other => other.to_string(),
            },
        }
    }
}

/// The JSON rendering (DESIGN.md contract), the one definition behind every encoder: integers
/// as numbers (beyond ±2^53 as strings), DECIMAL as exact strings, dates ISO-8601 (TIMESTAMP in
/// UTC with `Z`), binary base64, JSON embedded (as serde_json parses and prints it; text that
/// is not JSON as a string), ENUM/SET as text; floats as serde_json prints an f64 (a FLOAT
/// widened), NaN and infinities as the strings `NaN`, `inf`, `-inf`. Written straight into
/// the serializer: dates and times on the stack, base64 through its `Display`.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const SAFE: i64 = 1 << 53;
        match self {
            Value::Null => s.serialize_unit(),
            Value::Int(v) if (-SAFE..=SAFE).contains(v) => s.serialize_i64(*v),
            Value::Int(v) => s.collect_str(v),
            Value::UInt(v) if *v <= SAFE as u64 => s.serialize_u64(*v),
            Value::UInt(v) => s.collect_str(v),
            Value::Float(v) => serialize_float(f64::from(*v), s),
            Value::Double(v) => serialize_float(*v, s),
            Value::Decimal(t) | Value::Text(t) => s.serialize_str(t),
            Value::Date(d) => s.serialize_str(date_text(*d).as_str()),
            Value::DateTime(us) => s.serialize_str(datetime_text(*us, false).as_str()),
            Value::Timestamp(us) => s.serialize_str(datetime_text(*us, true).as_str()),
            Value::Time(us) => s.serialize_str(time_text(*us).as_str()),
            Value::Year(y) => s.serialize_i16(*y),
            Value::ZeroDate => s.serialize_str("0000-00-00"),
            Value::Json(t) => match serde_json::from_str::<Json>(t) {
                Ok(doc) => doc.serialize(s),
                Err(_) => s.serialize_str(t),
            },
            Value::Bytes(b) => s.collect_str(&Base64Display::new(b, &base64::engine::general_purpose::STANDARD)),
        }
    }
}

fn serialize_float<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        return s.serialize_f64(v);
    }
    // As `f64`'s `Display` writes them.
    s.serialize_str(if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    })
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
    date_text(days).as_str().to_owned()
}

pub fn format_datetime(us: i64, utc: bool) -> String {
    datetime_text(us, utc).as_str().to_owned()
}

pub fn format_time(us: i64) -> String {
    time_text(us).as_str().to_owned()
}

/// `YYYY-MM-DD`; a day past the calendar's range (±262,000 years) as 1970-01-01.
fn date_text(days: i32) -> ShortText {
    let date = epoch().checked_add_signed(chrono::TimeDelta::days(i64::from(days))).unwrap_or_default();
    let mut t = ShortText::default();
    t.date(&date);
    t
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]`: the fraction only when it is not zero. An instant past
/// the calendar's range shows 1970-01-01T00:00:00 with its fraction.
fn datetime_text(us: i64, utc: bool) -> ShortText {
    let dt: NaiveDateTime = DateTime::from_timestamp_micros(us).map(|d| d.naive_utc()).unwrap_or_default();
    let mut t = ShortText::default();
    t.datetime(&dt);
    let frac = us.rem_euclid(MICROS) as u64;
    if frac != 0 {
        t.push(b'.');
        t.digits(frac, 6);
    }
    if utc {
        t.push(b'Z');
    }
    t
}

/// `[-]HH:MM:SS[.ffffff]`, hours past 99 in as many digits as they take.
fn time_text(us: i64) -> ShortText {
    let mut t = ShortText::default();
    if us < 0 {
        t.push(b'-');
    }
    let a = us.unsigned_abs();
    let secs = a / MICROS as u64;
    let frac = a % MICROS as u64;
    t.digits(secs / 3600, 2);
    t.push(b':');
    t.digits(secs / 60 % 60, 2);
    t.push(b':');
    t.digits(secs % 60, 2);
    if frac != 0 {
        t.push(b'.');
        t.digits(frac, 6);
    }
    t
}

/// A short ASCII text built on the stack: dates and times are rendered without an allocation.
/// 48 bytes hold the longest (`+262143-12-31T23:59:59.999999Z`, a TIME of `i64::MIN` µs).
pub(crate) struct ShortText {
    buf: [u8; 48],
    len: usize,
}

impl Default for ShortText {
    fn default() -> Self {
        Self { buf: [0; 48], len: 0 }
    }
}

impl ShortText {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    pub(crate) fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `v` in decimal, zero-padded to at least `width` digits.
    pub(crate) fn digits(&mut self, mut v: u64, width: usize) {
        let mut tmp = [b'0'; 20];
        let mut n = 0;
        while v > 0 || n < width.max(1) {
            tmp[19 - n] = b'0' + (v % 10) as u8;
            v /= 10;
            n += 1;
        }
        for &b in &tmp[20 - n..] {
            self.push(b);
        }
    }

    /// `YYYY-MM-DD` as chrono's `%Y-%m-%d` writes it (a year outside 0..=9999 with its sign).
    pub(crate) fn date(&mut self, d: &NaiveDate) {
        match u64::try_from(d.year()) {
            Ok(y) if y <= 9999 => self.digits(y, 4),
            _ => {
                let _ = write!(self, "{}", d.format("%Y"));
            }
        }
        self.push(b'-');
        self.digits(u64::from(d.month()), 2);
        self.push(b'-');
        self.digits(u64::from(d.day()), 2);
    }

    /// `YYYY-MM-DDTHH:MM:SS` (chrono's `%Y-%m-%dT%H:%M:%S`).
    pub(crate) fn datetime(&mut self, dt: &NaiveDateTime) {
        self.date(&dt.date());
        self.push(b'T');
        self.digits(u64::from(dt.hour()), 2);
        self.push(b':');
        self.digits(u64::from(dt.minute()), 2);
        self.push(b':');
        self.digits(u64::from(dt.second()), 2);
    }
}

impl std::fmt::Write for ShortText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(std::fmt::Error);
        }
        s.bytes().for_each(|b| self.push(b));
        Ok(())
    }
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
