//! Column values to sluice values, for both read paths: the snapshot's text protocol (session
//! in UTC, results in utf8mb4) and the binlog's row images. Both end in the same helpers, so
//! the same stored datum gives the same value.
use std::borrow::Cow;

use mysql_async::binlog::jsonb;
use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value as My;
use sluice_core::value::{days_from_ymd, micros_from_parts};
use sluice_core::{SqlType, Value};

use crate::schema::ColumnCodec;

/// Why a column could not be decoded. Carries no value (it may be PII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

type R = Result<Value, DecodeError>;

/// A value of the snapshot's text protocol.
pub fn from_text(ty: &SqlType, v: My) -> R {
    let bytes = match v {
        My::NULL => return Ok(Value::Null),
        My::Bytes(b) => b,
        _ => return Err(DecodeError("expected a text-protocol value")),
    };
    let text = || std::str::from_utf8(&bytes).map_err(|_| DecodeError("invalid utf-8 from the server"));
    match ty {
        SqlType::Int { unsigned: true, .. } => text()?.parse().map(Value::UInt).map_err(|_| DecodeError("bad integer")),
        SqlType::Int { .. } => text()?.parse().map(Value::Int).map_err(|_| DecodeError("bad integer")),
        SqlType::Decimal { .. } => owned_text(bytes).map(Value::Decimal),
        SqlType::Float => text()?.parse().map(Value::Float).map_err(|_| DecodeError("bad float")),
        SqlType::Double => text()?.parse().map(Value::Double).map_err(|_| DecodeError("bad double")),
        SqlType::Date | SqlType::DateTime { .. } | SqlType::Timestamp { .. } => {
            let p = parse_datetime_text(text()?).ok_or(DecodeError("bad date/time text"))?;
            Ok(temporal(ty, p))
        }
        SqlType::Time { .. } => parse_time_text(text()?).map(Value::Time).ok_or(DecodeError("bad time text")),
        SqlType::Year => text()?.parse().map(Value::Year).map_err(|_| DecodeError("bad year")),
        // The server's buffer becomes the value's: no second copy of every string.
        SqlType::Text | SqlType::Enum { .. } | SqlType::Set { .. } => owned_text(bytes).map(Value::Text),
        SqlType::Json => owned_text(bytes).map(Value::Json),
        SqlType::Binary | SqlType::Bit { .. } | SqlType::Geometry => Ok(Value::Bytes(bytes)),
    }
}

fn owned_text(bytes: Vec<u8>) -> Result<String, DecodeError> {
    String::from_utf8(bytes).map_err(|_| DecodeError("invalid utf-8 from the server"))
}

/// One column of a binlog row image as read from the wire, before the column's type gives it
/// meaning: what mysql_common's `BinlogValue` carries, borrowed from the event where it can be.
/// Both binlog readers ([`from_binlog`] over mysql_common's values, [`crate::rowimage`] over the
/// event bytes) end in [`from_wire`], so they agree on every quirk by construction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Wire<'a> {
    Null,
    Int(i64),
    /// A BIGINT UNSIGNED above `i64::MAX` (mysql_common's `UInt`).
    UInt(u64),
    Float(f32),
    Double(f64),
    Bytes(Cow<'a, [u8]>),
    /// TIMESTAMP2: seconds and microseconds since the epoch (mysql_common renders it as text,
    /// "secs" or "secs.micros").
    Epoch(i32, i32),
    /// YEAR's stored byte (mysql_common renders it as the text 1900 + byte).
    Year(u8),
    /// DATE/DATETIME parts: year, month, day, hour, minute, second, microsecond.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// TIME: negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
    Jsonb(jsonb::Value<'a>),
    JsonDiff,
}

impl Wire<'_> {
    /// The text mysql_common gives values it renders (TIMESTAMP2, YEAR), for a column whose
    /// type expects bytes.
    fn rendered(&self) -> Option<Vec<u8>> {
        match *self {
            Wire::Epoch(sec, 0) => Some(sec.to_string().into_bytes()),
            Wire::Epoch(sec, usec) => Some(format!("{sec}.{usec:06}").into_bytes()),
            Wire::Year(y) => Some((1900 + i32::from(y)).to_string().into_bytes()),
            _ => None,
        }
    }
}

/// A value of a binlog row image, as mysql_common decodes it (the reference the row decoder is
/// tested against).
pub fn from_binlog(ty: &SqlType, codec: &ColumnCodec, v: BinlogValue<'_>) -> R {
    let wire = match v {
        BinlogValue::Value(v) => match v {
            My::NULL => Wire::Null,
            My::Bytes(b) => Wire::Bytes(Cow::Owned(b)),
            My::Int(i) => Wire::Int(i),
            My::UInt(u) => Wire::UInt(u),
            My::Float(f) => Wire::Float(f),
            My::Double(d) => Wire::Double(d),
            My::Date(y, mo, d, h, mi, s, us) => Wire::Date(y, mo, d, h, mi, s, us),
            My::Time(neg, days, h, m, s, us) => Wire::Time(neg, days, h, m, s, us),
        },
        BinlogValue::Jsonb(j) => Wire::Jsonb(j),
        BinlogValue::JsonDiff(_) => Wire::JsonDiff,
    };
    from_wire(ty, codec, wire)
}

/// A binlog column's value as sluice's value for a column of type `ty`.
pub(crate) fn from_wire(ty: &SqlType, codec: &ColumnCodec, v: Wire<'_>) -> R {
    match (ty, v) {
        (_, Wire::Null) => Ok(Value::Null),
        (_, Wire::Jsonb(j)) => {
            // The direct conversion keeps MySQL's key order (as the snapshot's text shows it)
            // but refuses opaque scalars (DATE, TIME, DATETIME, DECIMAL inside the document);
            // those go through mysql_common's DOM, which renders them as MySQL prints them.
            let json: serde_json::Value = match j.clone().try_into() {
                Ok(json) => json,
                Err(_) => j.parse().map_err(|_| DecodeError("bad binary JSON"))?.into(),
            };
            Ok(Value::Json(json.to_string()))
        }
        (_, Wire::JsonDiff) => Err(DecodeError("partial JSON update; set binlog_row_value_options='' on the server")),
        // mysql_common decodes an integer as signed when the table map carries no signedness
        // (binlog_row_metadata=NO_LOG, MariaDB's default): keep only the column's own bits.
        (SqlType::Int { unsigned: true, bits }, Wire::Int(i)) => Ok(Value::UInt(i as u64 & int_mask(*bits))),
        (SqlType::Int { unsigned: true, .. }, Wire::UInt(u)) => Ok(Value::UInt(u)),
        // ... and never sign-extends a MEDIUMINT (24 bits): -1 arrives as 16777215. Sign-extend
        // from the column's width (a no-op for values it did decode correctly).
        (SqlType::Int { bits, .. }, Wire::Int(i)) => Ok(Value::Int(sign_extend(i, *bits))),
        (SqlType::Int { .. }, Wire::UInt(u)) => Ok(Value::Int(u as i64)),
        (SqlType::Float, Wire::Float(f)) => Ok(Value::Float(f)),
        (SqlType::Double, Wire::Double(d)) => Ok(Value::Double(d)),
        (SqlType::Timestamp { .. }, Wire::Epoch(secs, us)) => epoch(secs, us),
        (SqlType::Timestamp { .. }, Wire::Int(secs)) => Ok(if secs == 0 { Value::ZeroDate } else { Value::Timestamp(secs * 1_000_000) }),
        (SqlType::Date | SqlType::DateTime { .. }, Wire::Date(y, mo, d, h, mi, s, us)) => {
            Ok(temporal(ty, [y.into(), mo.into(), d.into(), h.into(), mi.into(), s.into(), us]))
        }
        (SqlType::Time { .. }, Wire::Time(neg, days, h, m, s, us)) => {
            let secs = (i64::from(days) * 24 + i64::from(h)) * 3600 + i64::from(m) * 60 + i64::from(s);
            let micros = secs * 1_000_000 + i64::from(us);
            Ok(Value::Time(if neg { -micros } else { micros }))
        }
        // mysql_common renders YEAR as 1900 + stored byte; the stored 0 means year 0000.
        (SqlType::Year, Wire::Year(y)) => Ok(Value::Year(if y == 0 { 0 } else { 1900 + i16::from(y) })),
        (SqlType::Enum { labels }, Wire::Int(i)) => Ok(Value::Text(enum_label(labels, i))),
        (ty, v @ (Wire::Epoch(..) | Wire::Year(_))) => match v.rendered() {
            Some(b) => from_bytes(ty, codec, Cow::Owned(b)),
            None => Err(MISMATCH),
        },
        (ty, Wire::Bytes(b)) => from_bytes(ty, codec, b),
        _ => Err(MISMATCH),
    }
}

const MISMATCH: DecodeError = DecodeError(
    "the binlog value does not match the column's type: the table changed after this binlog position and the \
     binlog has no column metadata; set binlog_row_metadata=FULL on the server",
);

/// A binlog value that arrives as bytes (strings, blobs, BIT, SET, DECIMAL as mysql_common renders it).
fn from_bytes(ty: &SqlType, codec: &ColumnCodec, b: Cow<'_, [u8]>) -> R {
    match ty {
        SqlType::Decimal { .. } => String::from_utf8(b.into_owned()).map(Value::Decimal).map_err(|_| DecodeError("bad decimal")),
        SqlType::Timestamp { .. } => parse_epoch(&b).ok_or(DecodeError("bad timestamp")),
        SqlType::Year => match std::str::from_utf8(&b).ok().and_then(|s| s.parse::<i16>().ok()) {
            Some(1900) => Ok(Value::Year(0)),
            Some(y) => Ok(Value::Year(y)),
            None => Err(DecodeError("bad year")),
        },
        SqlType::Set { labels } => Ok(Value::Text(set_labels(labels, &b))),
        SqlType::Text => codec.charset.decode_slice(b).ok_or(DecodeError("text not valid in the column's charset")),
        SqlType::Json => match codec.charset.decode_slice(b) {
            Some(Value::Text(t)) => Ok(Value::Json(t)),
            Some(Value::Bytes(b)) => String::from_utf8(b).map(Value::Json).map_err(|_| DecodeError("bad JSON text")),
            _ => Err(DecodeError("bad JSON text")),
        },
        SqlType::Binary => {
            // BINARY(n) is stored without its trailing zero bytes: pad back to n.
            let n = codec.pad_to.unwrap_or(0).max(b.len());
            let mut v = match b {
                Cow::Owned(v) => v,
                Cow::Borrowed(s) => {
                    let mut v = Vec::with_capacity(n);
                    v.extend_from_slice(s);
                    v
                }
            };
            v.resize(n, 0);
            Ok(Value::Bytes(v))
        }
        SqlType::Bit { .. } | SqlType::Geometry => Ok(Value::Bytes(b.into_owned())),
        _ => Err(MISMATCH),
    }
}

/// TIMESTAMP2 as mysql_common renders and [`parse_epoch`] reads it back, without the text.
fn epoch(secs: i32, us: i32) -> R {
    if us == 0 {
        return Ok(if secs == 0 { Value::ZeroDate } else { Value::Timestamp(i64::from(secs) * 1_000_000) });
    }
    // "secs.{us:06}" then the first six digits of the fraction; a negative fraction (bad bytes)
    // does not parse.
    let mut us = i64::from(us);
    if us < 0 {
        return Err(DecodeError("bad timestamp"));
    }
    while us >= 1_000_000 {
        us /= 10;
    }
    Ok(Value::Timestamp(i64::from(secs) * 1_000_000 + us))
}

/// The low `bits` bits (all 64 for BIGINT).
fn int_mask(bits: u8) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// `v`'s low `bits` bits read as a two's-complement number of that width.
fn sign_extend(v: i64, bits: u8) -> i64 {
    if bits == 0 || bits >= 64 {
        return v;
    }
    let shift = 64 - u32::from(bits);
    (v << shift) >> shift
}

fn enum_label(labels: &[String], idx: i64) -> String {
    // Index 0 is MySQL's "invalid value" empty string.
    usize::try_from(idx).ok().and_then(|i| i.checked_sub(1)).and_then(|i| labels.get(i)).cloned().unwrap_or_default()
}

fn set_labels(labels: &[String], mask: &[u8]) -> String {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        if mask.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0) {
            out.push(label.as_str());
        }
    }
    out.join(",")
}

/// `[year, month, day, hour, minute, second, micros]` to the column's value. All-zero dates
/// are MySQL's zero date; other impossible dates (allowed by lax SQL modes) are kept as text.
fn temporal(ty: &SqlType, p: [u32; 7]) -> Value {
    let [y, mo, d, h, mi, s, us] = p;
    if y == 0 && mo == 0 && d == 0 {
        return Value::ZeroDate;
    }
    let y = y as i32;
    let v = match ty {
        SqlType::Date => days_from_ymd(y, mo, d).map(Value::Date),
        SqlType::Timestamp { .. } => micros_from_parts(y, mo, d, h, mi, s, us).map(Value::Timestamp),
        _ => micros_from_parts(y, mo, d, h, mi, s, us).map(Value::DateTime),
    };
    v.unwrap_or_else(|| Value::Text(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")))
}

/// "YYYY-MM-DD[ HH:MM:SS[.ffffff]]".
fn parse_datetime_text(s: &str) -> Option<[u32; 7]> {
    let (date, time) = s.split_once(' ').unwrap_or((s, "00:00:00"));
    let mut dp = date.splitn(3, '-').map(|x| x.parse::<u32>().ok());
    let (y, mo, d) = (dp.next()??, dp.next()??, dp.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut tp = hms.splitn(3, ':').map(|x| x.parse::<u32>().ok());
    let (h, mi, sec) = (tp.next()??, tp.next()??, tp.next()??);
    Some([y, mo, d, h, mi, sec, frac_micros(frac)?])
}

/// "[-]HHH:MM:SS[.ffffff]" to signed microseconds.
fn parse_time_text(s: &str) -> Option<i64> {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut tp = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (tp.next()??, tp.next()??, tp.next()??);
    let micros = (h * 3600 + m * 60 + sec) * 1_000_000 + i64::from(frac_micros(frac)?);
    Some(if neg { -micros } else { micros })
}

fn frac_micros(frac: &str) -> Option<u32> {
    if frac.is_empty() {
        return Some(0);
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    digits.parse().ok()
}

/// TIMESTAMP2 as mysql_common renders it: "secs" or "secs.micros" since the epoch.
fn parse_epoch(b: &[u8]) -> Option<Value> {
    let s = std::str::from_utf8(b).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let us = i64::from(frac_micros(frac)?);
    Some(if secs == 0 && us == 0 { Value::ZeroDate } else { Value::Timestamp(secs * 1_000_000 + us) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charset::Charset;

    #[test]
    fn text_and_binlog_temporals_agree() {
        let c = ColumnCodec { charset: Charset::Utf8, pad_to: None };
        let ty = SqlType::DateTime { fsp: 6 };
        let a = from_text(&ty, My::Bytes(b"2024-02-29 23:59:58.000120".to_vec())).unwrap();
        let b = from_binlog(&ty, &c, BinlogValue::Value(My::Date(2024, 2, 29, 23, 59, 58, 120))).unwrap();
        assert_eq!(a, b);
        let ts = SqlType::Timestamp { fsp: 3 };
        let a = from_text(&ts, My::Bytes(b"1970-01-01 00:00:01.5".to_vec())).unwrap();
        let b = from_binlog(&ts, &c, BinlogValue::Value(My::Bytes(b"1.500000".to_vec()))).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, Value::Timestamp(1_500_000));
        let t = SqlType::Time { fsp: 0 };
        assert_eq!(from_text(&t, My::Bytes(b"-838:59:59".to_vec())).unwrap(), Value::Time(-3_020_399_000_000));
        let z = from_text(&SqlType::Date, My::Bytes(b"0000-00-00".to_vec())).unwrap();
        assert_eq!(z, Value::ZeroDate);
    }

    #[test]
    fn enums_sets_and_years() {
        let c = ColumnCodec { charset: Charset::Utf8, pad_to: None };
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(
            from_binlog(&SqlType::Enum { labels: labels.clone() }, &c, BinlogValue::Value(My::Int(2))).unwrap(),
            Value::Text("b".into())
        );
        assert_eq!(
            from_binlog(&SqlType::Set { labels }, &c, BinlogValue::Value(My::Bytes(vec![0b101]))).unwrap(),
            Value::Text("a,c".into())
        );
        assert_eq!(from_binlog(&SqlType::Year, &c, BinlogValue::Value(My::Bytes(b"1900".to_vec()))).unwrap(), Value::Year(0));
    }

    #[test]
    fn integers_keep_their_column_width() {
        let c = ColumnCodec { charset: Charset::Utf8, pad_to: None };
        let int = |bits, unsigned, v| from_binlog(&SqlType::Int { bits, unsigned }, &c, BinlogValue::Value(v)).unwrap();
        // MEDIUMINT -1 as mysql_common delivers it (not sign-extended).
        assert_eq!(int(24, false, My::Int(0xFF_FFFF)), Value::Int(-1));
        assert_eq!(int(24, false, My::Int(8_388_607)), Value::Int(8_388_607));
        assert_eq!(int(8, false, My::Int(-128)), Value::Int(-128));
        // Unsigned columns decoded as signed (no signedness in the table map).
        assert_eq!(int(8, true, My::Int(-1)), Value::UInt(255));
        assert_eq!(int(32, true, My::Int(-1)), Value::UInt(4_294_967_295));
        assert_eq!(int(64, true, My::Int(-1)), Value::UInt(u64::MAX));
    }
}
