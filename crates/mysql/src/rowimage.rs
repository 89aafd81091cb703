//! sluice's own decoder of binlog row images: the bytes of a rows event (`rows_data`, after its
//! column-present bitmaps) straight into sluice [`Value`]s.
//!
//! Why not mysql_common's `RowsEvent::rows`: for every row it builds a `BinlogRow` with a new
//! `Vec<Column>` (schema, table and column names copied into each), walks the table map's
//! optional metadata again, finds each column's metadata by a scan from the first column (so a
//! row costs O(columns²)), copies every string into a `Value::Bytes`, and then sluice copies it
//! once more. Profiled on the bench's 1M-row binlog (docs/benchmarks.md, "sluice's own row
//! decoder"), allocation and that row building were the top of the profile (`_int_free` 15%,
//! `malloc`/`_int_malloc` 18%, `Arc::make_mut` 8%, `BinlogRow::deserialize` 8%) of a reader
//! using 3.7 CPU seconds for the 1M rows (0.18 of `mariadb-binlog`'s speed); this decoder uses
//! 1.2 s for them.
//!
//! Here a [`Plan`] is computed once per table map (with the table's [`crate::layout::Layout`]):
//! per column how to read it off the wire (type, metadata, signedness). A row is then one pass
//! over its bytes; strings are copied once, into the value. Each column ends in
//! [`from_wire`], the function mysql_common's path ends in too, so both give the same values with
//! the same quirk fixes. Every length read from the bytes is checked against what remains before
//! it is used; bad bytes give an error naming the column and offset, never a value or a panic.
//!
//! One deliberate difference: a negative TIME(1)/TIME(2) with a fraction is decoded as MySQL
//! does; mysql_common's arithmetic overflows on it (a panic in debug builds, a wrong value in
//! release builds).
use std::borrow::Cow;
use std::sync::Arc;

use mysql_async::binlog::events::{OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql_async::consts::ColumnType;
use mysql_common::binlog::decimal::{decimal_bin_size, Decimal};
use mysql_common::binlog::jsonb;
use mysql_common::io::ParseBuf;
use sluice_core::event::SourceInfo;
use sluice_core::{ChangeEvent, Op, Row, SluiceError};

use crate::binlog::Cursor;
use crate::decode::{from_wire, Wire};
use crate::layout::Layout;

/// How each column of a table is read from a row image.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    cols: Vec<Read>,
    /// JSON columns of the table (for the partial-update bitmap of MySQL's PARTIAL_UPDATE_ROWS_EVENT).
    json_columns: usize,
}

/// How one column's bytes are laid out in a row image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Little-endian integer of 1, 2, 3, 4 or 8 bytes; signedness from the table map.
    Int {
        bytes: u8,
        unsigned: bool,
    },
    Float,
    Double,
    /// TIMESTAMP (pre-5.6): u32 seconds.
    Timestamp,
    /// TIME (pre-5.6): u24 HHMMSS.
    Time,
    /// DATETIME (pre-5.6): u64 YYYYMMDDHHMMSS.
    DateTime,
    Year,
    /// DATE: u24 with day, month, year bit fields.
    Date,
    Bit {
        bytes: usize,
    },
    Timestamp2 {
        fsp: u8,
    },
    DateTime2 {
        fsp: u8,
    },
    Time2 {
        fsp: u8,
    },
    Json,
    Decimal {
        precision: usize,
        scale: usize,
        size: usize,
    },
    Enum {
        bytes: u8,
    },
    Set {
        bytes: usize,
    },
    /// BLOB, TEXT, GEOMETRY: length prefix of 1–4 bytes.
    Blob {
        len_bytes: u8,
    },
    /// VARCHAR, CHAR, BINARY: length prefix of 1 or 2 bytes.
    Var {
        len_bytes: u8,
    },
    /// A column sluice cannot read (bad or unknown metadata): an error unless NULL.
    Bad(&'static str),
}

impl Plan {
    /// The plan of a table map's columns.
    pub fn new(tme: &TableMapEvent<'_>) -> Result<Self, &'static str> {
        let n = tme.columns_count() as usize;
        let meta = OptionalMetaExtractor::new(tme.iter_optional_meta()).map_err(|_| "bad optional metadata")?;
        let mut signed = meta.iter_signedness();
        let mut cols = Vec::with_capacity(n);
        for i in 0..n {
            let read = match tme.get_column_type(i) {
                Ok(Some(ct)) => {
                    let unsigned = ct.is_numeric_type() && signed.next().unwrap_or(false);
                    read_of(ct, tme.get_column_metadata(i).unwrap_or(&[]), unsigned)
                }
                _ => Read::Bad("unknown column type in the table map"),
            };
            cols.push(read);
        }
        Ok(Self { cols, json_columns: tme.json_column_count() })
    }
}

fn read_of(ct: ColumnType, m: &[u8], unsigned: bool) -> Read {
    use ColumnType::*;
    let m0 = m.first().copied();
    let m1 = m.get(1).copied();
    let short = Read::Bad("column metadata too short in the table map");
    match ct {
        MYSQL_TYPE_TINY => Read::Int { bytes: 1, unsigned },
        MYSQL_TYPE_SHORT => Read::Int { bytes: 2, unsigned },
        MYSQL_TYPE_INT24 => Read::Int { bytes: 3, unsigned },
        MYSQL_TYPE_LONG => Read::Int { bytes: 4, unsigned },
        MYSQL_TYPE_LONGLONG => Read::Int { bytes: 8, unsigned },
        MYSQL_TYPE_FLOAT => Read::Float,
        MYSQL_TYPE_DOUBLE => Read::Double,
        MYSQL_TYPE_TIMESTAMP => Read::Timestamp,
        MYSQL_TYPE_TIME => Read::Time,
        MYSQL_TYPE_DATETIME => Read::DateTime,
        MYSQL_TYPE_YEAR => Read::Year,
        MYSQL_TYPE_NEWDATE | MYSQL_TYPE_DATE => Read::Date,
        MYSQL_TYPE_JSON => Read::Json,
        MYSQL_TYPE_TIMESTAMP2 => m0.map_or(short, |fsp| Read::Timestamp2 { fsp }),
        MYSQL_TYPE_DATETIME2 => m0.map_or(short, |fsp| Read::DateTime2 { fsp }),
        MYSQL_TYPE_TIME2 => m0.map_or(short, |fsp| Read::Time2 { fsp }),
        MYSQL_TYPE_BIT => match (m0, m1) {
            (Some(bits), Some(bytes)) => Read::Bit { bytes: (usize::from(bytes) * 8 + usize::from(bits)).div_ceil(8) },
            _ => short,
        },
        MYSQL_TYPE_NEWDECIMAL => match (m0, m1) {
            (Some(p), Some(s)) if s <= p => {
                let (precision, scale) = (usize::from(p), usize::from(s));
                Read::Decimal { precision, scale, size: decimal_bin_size(precision, scale) }
            }
            (Some(_), Some(_)) => Read::Bad("decimal scale above its precision in the table map"),
            _ => short,
        },
        MYSQL_TYPE_ENUM => match m1 {
            Some(b @ (1 | 2)) => Read::Enum { bytes: b },
            Some(_) => Read::Bad("unknown ENUM size in the table map"),
            None => short,
        },
        MYSQL_TYPE_SET => m1.map_or(short, |b| Read::Set { bytes: usize::from(b) }),
        MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_BLOB | MYSQL_TYPE_GEOMETRY => match m0 {
            Some(b @ 1..=4) => Read::Blob { len_bytes: b },
            Some(_) => Read::Bad("unknown BLOB size in the table map"),
            None => short,
        },
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => match (m0, m1) {
            (Some(lo), Some(hi)) => Read::Var { len_bytes: if u16::from_le_bytes([lo, hi]) < 256 { 1 } else { 2 } },
            _ => short,
        },
        MYSQL_TYPE_STRING => {
            // Fixed CHAR/BINARY: the length is packed into the metadata (MySQL bug #37426).
            let len = match (m0, m1) {
                (Some(b0 @ 1..), Some(b1)) if b0 & 0x30 != 0x30 => usize::from(b1) | ((usize::from(b0 & 0x30) ^ 0x30) << 4),
                (Some(1..), Some(b1)) => usize::from(b1),
                (Some(lo), Some(hi)) => usize::from(u16::from_le_bytes([lo, hi])),
                _ => return short,
            };
            Read::Var { len_bytes: if len < 256 { 1 } else { 2 } }
        }
        _ => Read::Bad("column type sluice cannot read from a row image"),
    }
}

/// Why a row image could not be read: what, and at which byte of the rows data.
struct Bad {
    what: &'static str,
    at: usize,
    column: Option<usize>,
    /// The bytes were read but do not make a value of the column's type.
    value: bool,
}

impl Bad {
    fn at(what: &'static str, at: usize) -> Self {
        Self { what, at, column: None, value: false }
    }
}

/// A cursor over the rows data; every read is checked against what remains.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(Bad::at("a value runs past the end of the event", self.at))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Bad> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Bad> {
        Ok(self.array::<1>()?[0])
    }

    /// Little-endian unsigned integer of `n` ≤ 8 bytes.
    fn le(&mut self, n: usize) -> Result<u64, Bad> {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(a))
    }

    /// Big-endian unsigned integer of `n` ≤ 8 bytes.
    fn be(&mut self, n: usize) -> Result<u64, Bad> {
        let mut a = [0u8; 8];
        a[8 - n..].copy_from_slice(self.take(n)?);
        Ok(u64::from_be_bytes(a))
    }

    /// Big-endian signed integer of `n` ≤ 8 bytes.
    fn be_signed(&mut self, n: usize) -> Result<i64, Bad> {
        let shift = 64 - 8 * n as u32;
        Ok(((self.be(n)? << shift) as i64) >> shift)
    }

    /// A length-encoded integer (as mysql_common reads it: 0xfb and 0xff count as 0).
    fn lenenc(&mut self) -> Result<u64, Bad> {
        match self.u8()? {
            x @ 0..=0xfa => Ok(u64::from(x)),
            0xfc => self.le(2),
            0xfd => self.le(3),
            0xfe => self.le(8),
            0xfb | 0xff => Ok(0),
        }
    }
}

/// Present-column bitmap bit `i`.
fn bit(map: &[u8], i: usize) -> bool {
    map.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// The column-present bitmap of one image as bytes, one bit per column (once per event).
fn bitmap(bits: impl Iterator<Item = bool>, columns: usize) -> Vec<u8> {
    let mut out = vec![0u8; columns.div_ceil(8)];
    for (i, b) in bits.enumerate().take(columns) {
        if b {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// One rows event being decoded: its images' present-column bitmaps and the table's plan.
struct Images<'p> {
    plan: &'p Plan,
    layout: &'p Layout,
    columns: usize,
    before: Option<Vec<u8>>,
    after: Option<Vec<u8>>,
    partial: bool,
}

impl Images<'_> {
    fn image(&self, buf: &mut Bytes<'_>, present: &[u8], shared: bool) -> Result<Row, Bad> {
        // MySQL's partial JSON updates: the after image starts with its value options and a
        // bitmap of the JSON columns logged as diffs.
        let mut partial: Option<(&[u8], usize)> = None;
        if shared {
            let options = buf.lenenc()?;
            if options & 1 != 0 {
                partial = Some((buf.take(self.plan.json_columns.div_ceil(8))?, 0));
            }
        }
        // The bitmap has no bits past the event's columns (see `bitmap`).
        let n_present = present.iter().map(|b| b.count_ones() as usize).sum::<usize>();
        let nulls = buf.take(n_present.div_ceil(8))?;
        let mut row = Vec::with_capacity(n_present);
        let mut image_idx = 0;
        for i in 0..self.columns {
            let read = self.plan.cols.get(i).copied().unwrap_or(Read::Bad("more columns than the table map"));
            let mut is_partial = false;
            if read == Read::Json {
                if let Some((map, next)) = partial.as_mut() {
                    is_partial = *next < self.plan.json_columns && bit(map, *next);
                    *next += 1;
                }
            }
            if !bit(present, i) {
                continue;
            }
            let null = nulls.get(image_idx / 8).is_none_or(|b| b & (1 << (image_idx % 8)) != 0);
            image_idx += 1;
            let at = buf.at;
            let wire = if null { Wire::Null } else { read_value(buf, read, is_partial).map_err(|e| Bad { column: Some(i), ..e })? };
            let (Some(ty), Some(codec)) = (self.layout.types.get(i), self.layout.codecs.get(i)) else {
                return Err(Bad::at("more columns than the table map", at));
            };
            let v = from_wire(ty, codec, wire).map_err(|e| Bad { what: e.0, at, column: Some(i), value: true })?;
            row.push(v);
        }
        Ok(row)
    }
}

fn read_value<'a>(buf: &mut Bytes<'a>, read: Read, partial: bool) -> Result<Wire<'a>, Bad> {
    Ok(match read {
        Read::Int { bytes, unsigned } => {
            let n = usize::from(bytes);
            let raw = buf.le(n)?;
            if unsigned {
                match i64::try_from(raw) {
                    Ok(i) => Wire::Int(i),
                    Err(_) => Wire::UInt(raw),
                }
            } else {
                let shift = 64 - 8 * u32::from(bytes);
                Wire::Int(((raw << shift) as i64) >> shift)
            }
        }
        Read::Float => Wire::Float(f32::from_le_bytes(buf.array()?)),
        Read::Double => Wire::Double(f64::from_le_bytes(buf.array()?)),
        Read::Timestamp => Wire::Int(buf.le(4)? as i64),
        Read::Time => {
            let t = buf.le(3)?;
            Wire::Time(false, 0, (t / 10000) as u8, ((t % 10000) / 100) as u8, (t % 100) as u8, 0)
        }
        Read::DateTime => {
            let raw = buf.le(8)?;
            let (d, t) = (raw / 1_000_000, raw % 1_000_000);
            Wire::Date(
                (d / 10000) as u16,
                ((d % 10000) / 100) as u8,
                (d % 100) as u8,
                (t / 10000) as u8,
                ((t % 10000) / 100) as u8,
                (t % 100) as u8,
                0,
            )
        }
        Read::Year => Wire::Year(buf.u8()?),
        Read::Date => {
            let t = buf.le(3)?;
            Wire::Date((t >> 9) as u16, ((t >> 5) & 15) as u8, (t & 31) as u8, 0, 0, 0, 0)
        }
        Read::Bit { bytes } | Read::Set { bytes } => Wire::Bytes(Cow::Borrowed(buf.take(bytes)?)),
        Read::Timestamp2 { fsp } => {
            let sec = buf.be(4)? as u32 as i32;
            let usec = match fsp {
                1 | 2 => buf.be_signed(1)? * 10_000,
                3 | 4 => buf.be_signed(2)? * 100,
                5 | 6 => buf.be_signed(3)?,
                _ => 0,
            };
            Wire::Epoch(sec, usec as i32)
        }
        Read::DateTime2 { fsp } => datetime_from_packed(datetime2_packed(buf, fsp)?),
        Read::Time2 { fsp } => time_from_packed(time2_packed(buf, fsp)?),
        Read::Json => {
            let len = buf.le(4)? as usize;
            let at = buf.at;
            let doc = buf.take(len)?;
            if partial {
                Wire::JsonDiff
            } else if !json_check::is_valid(doc) {
                return Err(Bad::at("bad binary JSON", at));
            } else {
                let v: jsonb::Value<'a> = ParseBuf(doc).parse(()).map_err(|_| Bad::at("bad binary JSON", at))?;
                Wire::Jsonb(v)
            }
        }
        Read::Decimal { precision, scale, size } => {
            let at = buf.at;
            let bin = buf.take(size)?;
            if !decimal_ok(bin, precision, scale) {
                return Err(Bad::at("bad decimal", at));
            }
            let dec = Decimal::read_bin(bin, precision, scale, false).map_err(|_| Bad::at("bad decimal", at))?;
            Wire::Bytes(Cow::Owned(dec.to_string().into_bytes()))
        }
        Read::Enum { bytes } => Wire::Int(buf.le(usize::from(bytes))? as i64),
        Read::Blob { len_bytes } => {
            let n = buf.le(usize::from(len_bytes))? as usize;
            Wire::Bytes(Cow::Borrowed(buf.take(n)?))
        }
        Read::Var { len_bytes } => {
            let n = buf.le(usize::from(len_bytes))? as usize;
            Wire::Bytes(Cow::Borrowed(buf.take(n)?))
        }
        Read::Bad(what) => return Err(Bad::at(what, buf.at)),
    })
}

/// Whether `bin` holds a DECIMAL(precision, scale) whose digit groups are in range: MySQL's
/// format is groups of nine digits in four bytes, a shorter group at either end, all
/// inverted for negative numbers (mysql_common's reader overflows on groups out of range).
pub(crate) fn decimal_ok(bin: &[u8], precision: usize, scale: usize) -> bool {
    const BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    if scale > precision || bin.len() < decimal_bin_size(precision, scale) || bin.is_empty() {
        return scale <= precision && decimal_bin_size(precision, scale) == 0;
    }
    let mask: i64 = if bin[0] & 0x80 == 0 { -1 } else { 0 };
    let intg = precision - scale;
    let groups = [(intg % 9, 1), (9, intg / 9), (9, scale / 9), (scale % 9, 1)];
    let mut at = 0;
    for (digits, count) in groups {
        if digits == 0 {
            continue;
        }
        let n = BYTES[digits];
        for _ in 0..count {
            let mut raw = [0u8; 8];
            raw[8 - n..].copy_from_slice(&bin[at..at + n]);
            if at == 0 {
                raw[8 - n] ^= 0x80;
            }
            let shift = 64 - 8 * n as u32;
            let x = ((u64::from_be_bytes(raw) << shift) as i64 >> shift) ^ mask;
            if !(0..10i64.pow(digits as u32)).contains(&x) {
                return false;
            }
            at += n;
        }
    }
    true
}

const TIMEF_INT_OFS: i64 = 0x80_0000;
const TIMEF_OFS: i64 = 0x8000_0000_0000;
const DATETIMEF_INT_OFS: i64 = 0x80_0000_0000;

/// MySQL's packed time: integer part shifted left 24 bits, plus microseconds.
fn packed(int_part: i64, frac: i64) -> i64 {
    ((int_part as u64) << 24).wrapping_add(frac as u64) as i64
}

/// TIME2 to MySQL's packed form (sql/my_time.cc `my_time_packed_from_binary`).
fn time2_packed(buf: &mut Bytes<'_>, fsp: u8) -> Result<i64, Bad> {
    Ok(match fsp {
        1..=4 => {
            let mut int_part = buf.be(3)? as i64 - TIMEF_INT_OFS;
            let (frac_bytes, unit) = if fsp <= 2 { (1, 10_000) } else { (2, 100) };
            let mut frac = buf.be(frac_bytes)? as i64;
            if int_part < 0 && frac > 0 {
                int_part += 1;
                frac -= 1 << (8 * frac_bytes);
            }
            packed(int_part, frac * unit)
        }
        5 | 6 => buf.be(6)? as i64 - TIMEF_OFS,
        _ => packed(buf.be(3)? as i64 - TIMEF_INT_OFS, 0),
    })
}

/// DATETIME2 to MySQL's packed form.
fn datetime2_packed(buf: &mut Bytes<'_>, fsp: u8) -> Result<i64, Bad> {
    let int_part = buf.be(5)? as i64 - DATETIMEF_INT_OFS;
    let frac = match fsp {
        1 | 2 => buf.be_signed(1)? * 10_000,
        3 | 4 => buf.be_signed(2)? * 100,
        5 | 6 => buf.be_signed(3)?,
        _ => 0,
    };
    Ok(packed(int_part, frac))
}

fn time_from_packed(p: i64) -> Wire<'static> {
    let neg = p < 0;
    let p = p.wrapping_abs();
    let hms = p >> 24;
    let h = ((hms >> 12) as u32) % (1 << 10);
    let m = ((hms >> 6) as u32) % (1 << 6);
    let s = (hms as u32) % (1 << 6);
    Wire::Time(neg, h / 24, (h % 24) as u8, m as u8, s as u8, (p % (1 << 24)) as u32)
}

fn datetime_from_packed(p: i64) -> Wire<'static> {
    let p = p.wrapping_abs();
    let usec = p % (1 << 24);
    let ymdhms = p >> 24;
    let ymd = ymdhms >> 17;
    let ym = ymd >> 5;
    let hms = ymdhms % (1 << 17);
    Wire::Date(
        (ym / 13) as u32 as u16,
        (ym % 13) as u8,
        (ymd % (1 << 5)) as u8,
        (hms >> 12) as u32 as u8,
        ((hms >> 6) % (1 << 6)) as u8,
        (hms % (1 << 6)) as u8,
        usec as u32,
    )
}

/// Decodes the rows of one rows event into `out`, numbering them from `cursor.seq` and
/// skipping those already sent before a reconnect. `info` and `tx` are shared by every change.
pub(crate) fn decode_rows(
    re: &RowsEventData<'_>,
    layout: &Layout,
    cursor: &mut Cursor,
    info: &Arc<SourceInfo>,
    tx: &Arc<str>,
    ts_ms: i64,
    out: &mut Vec<ChangeEvent>,
) -> Result<(), SluiceError> {
    decode_event(re, layout, info)?.emit(layout, cursor, info, tx, ts_ms, out);
    Ok(())
}

/// The rows of one rows event, decoded but not yet numbered: decoding needs nothing from the
/// events before it, so rows events can be decoded in parallel and numbered in order after.
pub(crate) struct Decoded {
    op: Op,
    rows: Vec<(Option<Row>, Option<Row>)>,
}

impl Decoded {
    /// The changes, numbered from `cursor.seq`, into `out` (those below `cursor.sent_below`
    /// were sent before a reconnect and are skipped).
    pub fn emit(self, layout: &Layout, cursor: &mut Cursor, info: &Arc<SourceInfo>, tx: &Arc<str>, ts_ms: i64, out: &mut Vec<ChangeEvent>) {
        out.reserve(self.rows.len());
        for (before, after) in self.rows {
            let seq = cursor.seq;
            cursor.seq += 1;
            if seq < cursor.sent_below {
                continue;
            }
            out.push(ChangeEvent {
                op: self.op,
                schema: layout.schema.clone(),
                before,
                after,
                ts_ms,
                tx: Some(Arc::clone(tx)),
                seq,
                source: Arc::clone(info),
            });
        }
    }
}

/// The rows of one rows event (`info` names the event in errors).
pub(crate) fn decode_event(re: &RowsEventData<'_>, layout: &Layout, info: &SourceInfo) -> Result<Decoded, SluiceError> {
    let id = &layout.schema.id;
    let (op, partial) = match re {
        RowsEventData::WriteRowsEventV1(_) | RowsEventData::WriteRowsEvent(_) => (Op::Insert, false),
        RowsEventData::DeleteRowsEventV1(_) | RowsEventData::DeleteRowsEvent(_) => (Op::Delete, false),
        RowsEventData::PartialUpdateRowsEvent(_) => (Op::Update, true),
        _ => (Op::Update, false),
    };
    let mut rows = Vec::new();
    let data = re.rows_data();
    if data.is_empty() {
        return Ok(Decoded { op, rows });
    }
    let columns = re.num_columns() as usize;
    let images = Images {
        plan: &layout.plan,
        layout,
        columns,
        before: re.columns_before_image().map(|b| bitmap(b.iter().by_vals(), columns)),
        after: re.columns_after_image().map(|b| bitmap(b.iter().by_vals(), columns)),
        partial,
    };
    let n = layout.types.len();
    for map in [&images.before, &images.after].into_iter().flatten() {
        let present = (0..columns).filter(|&i| bit(map, i)).count();
        if present != n || columns != n {
            let missing: Vec<&str> =
                (layout.schema.columns.iter().enumerate()).filter(|(i, _)| !bit(map, *i)).map(|(_, c)| c.name.as_str()).collect();
            return Err(SluiceError::permanent(format!(
                "row image of {id} has {present} of {n} columns (missing: {}): the server must log full row images (SET GLOBAL \
                 binlog_row_image = 'FULL') (at {}:{})",
                missing.join(", "),
                info.file,
                info.pos
            )));
        }
    }
    let bad = |e: Bad| {
        let column = e.column.and_then(|c| layout.schema.columns.get(c)).map(|c| c.name.as_str());
        let (file, pos) = (&info.file, info.pos);
        SluiceError::permanent(match (e.value, column) {
            (true, Some(c)) => format!("cannot decode column {id}.{c}: {} (at {file}:{pos})", e.what),
            (_, Some(c)) => format!("cannot decode a row of {id} at {file}:{pos}: column {c}, byte {} of the rows data: {}", e.at, e.what),
            (_, None) => format!("cannot decode a row of {id} at {file}:{pos}: byte {} of the rows data: {}", e.at, e.what),
        })
    };
    images.rows(data, |before, after| rows.push((before, after))).map_err(bad)?;
    Ok(Decoded { op, rows })
}

impl Images<'_> {
    /// Every row of `data`, in order, to `emit` (before and after image).
    fn rows(&self, data: &[u8], mut emit: impl FnMut(Option<Row>, Option<Row>)) -> Result<(), Bad> {
        let mut buf = Bytes { data, at: 0 };
        while buf.at < data.len() {
            let at = buf.at;
            let before = self.before.as_deref().map(|m| self.image(&mut buf, m, false)).transpose()?;
            let after = self.after.as_deref().map(|m| self.image(&mut buf, m, self.partial)).transpose()?;
            if buf.at == at {
                // No image, or images of no columns: the rest would never be read.
                return Err(Bad::at("a row of no bytes", at));
            }
            emit(before, after);
        }
        Ok(())
    }
}

mod json_check;
#[cfg(test)]
mod tests;
