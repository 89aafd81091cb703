//! An independent reading of the same file: `mariadb-binlog -v --base64-output=decode-rows`
//! (MariaDB's C client tool) prints each row image as `###   @1=value` lines. sluice's values
//! are rendered the way it prints them (quoted text with `\xNN` escapes, TIMESTAMP as epoch
//! seconds, ENUM as its index, SET and BIT as bit strings) and compared image by image: the
//! values, not the formatting. Files it cannot read (MySQL 8 JSON, compressed transactions,
//! tagged GTIDs) print no images and are not compared; neither when the tool is missing.
use std::path::Path;
use std::process::Command;

use sluice_core::{ChangeEvent, Op, SqlType, TableSchema, Value};

#[derive(Debug, PartialEq)]
struct Image {
    /// `INSERT INTO`, `UPDATE`, `DELETE FROM` and the table, as the tool prints them.
    head: String,
    before: Vec<String>,
    after: Vec<String>,
}

/// Asserts that the row images of `events` are those `mariadb-binlog` reads from `path`.
pub fn compare(path: &Path, events: &[ChangeEvent]) {
    let out = match Command::new("mariadb-binlog").args(["-v", "--base64-output=decode-rows"]).arg(path).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("mariadb-binlog not run ({e}): no independent reading of {}", path.display());
            return;
        }
    };
    let theirs = parse(&String::from_utf8_lossy(&out.stdout));
    if theirs.is_empty() {
        eprintln!("mariadb-binlog reads no row images from {}: not compared", path.display());
        return;
    }
    let ours: Vec<Image> = events.iter().map(image).collect();
    assert_eq!(ours.len(), theirs.len(), "{}: number of row images (sluice vs mariadb-binlog)", path.display());
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(o.head, t.head, "{}: change {i}", path.display());
        for (what, ov, tv) in [("before", &o.before, &t.before), ("after", &o.after, &t.after)] {
            assert_eq!(ov.len(), tv.len(), "{}: change {i} {what}: columns", path.display());
            for (c, (ov, tv)) in ov.iter().zip(tv).enumerate() {
                assert!(same(ov, tv), "{}: change {i} {what} @{}: sluice {ov} vs mariadb-binlog {tv}", path.display(), c + 1);
            }
        }
    }
    eprintln!("{}: {} row images match mariadb-binlog's reading", path.display(), ours.len());
}

/// The tool prints integers of unknown signedness as `-3 (4294967293)`: either reading counts.
fn same(ours: &str, theirs: &str) -> bool {
    if ours == theirs {
        return true;
    }
    match theirs.split_once(" (") {
        Some((signed, rest)) => ours == signed || Some(ours) == rest.strip_suffix(')'),
        None => false,
    }
}

fn parse(text: &str) -> Vec<Image> {
    let mut images: Vec<Image> = Vec::new();
    let mut into_after = true;
    for line in text.lines().filter_map(|l| l.strip_prefix("### ")) {
        if let Some(v) = line.strip_prefix("  @") {
            let value = v.split_once('=').map_or("", |(_, v)| v).to_string();
            if let Some(img) = images.last_mut() {
                if into_after {
                    img.after.push(value)
                } else {
                    img.before.push(value)
                }
            }
        } else if line == "SET" {
            into_after = true;
        } else if line == "WHERE" {
            into_after = false;
        } else {
            let head = line.replace('`', "");
            images.push(Image { head, before: Vec::new(), after: Vec::new() });
        }
    }
    images
}

fn image(e: &ChangeEvent) -> Image {
    let verb = match e.op {
        Op::Insert | Op::Read => "INSERT INTO",
        Op::Update => "UPDATE",
        Op::Delete => "DELETE FROM",
    };
    let render = |row: &Option<Vec<Value>>| row.as_ref().map_or(Vec::new(), |r| render_row(&e.schema, r));
    Image { head: format!("{verb} {}", e.schema.id), before: render(&e.before), after: render(&e.after) }
}

fn render_row(schema: &TableSchema, row: &[Value]) -> Vec<String> {
    schema.columns.iter().zip(row).map(|(c, v)| render(&c.ty, v)).collect()
}

fn render(ty: &SqlType, v: &Value) -> String {
    match (ty, v) {
        (_, Value::Null) => "NULL".into(),
        (SqlType::Enum { labels }, Value::Text(t)) => labels.iter().position(|l| l == t).map_or(0, |i| i + 1).to_string(),
        (SqlType::Set { labels }, Value::Text(t)) => {
            let mut mask = 0u64;
            for part in t.split(',').filter(|p| !p.is_empty()) {
                mask |= labels.iter().position(|l| l == part).map_or(0, |i| 1 << i);
            }
            bits(mask, labels.len().div_ceil(8) * 8)
        }
        (SqlType::Bit { bits: n }, Value::Bytes(b)) => bits(b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)), usize::from(*n)),
        (_, Value::Int(i)) => i.to_string(),
        (_, Value::UInt(u)) => u.to_string(),
        (_, Value::Year(y)) => y.to_string(),
        (_, Value::Decimal(d)) => d.clone(),
        (_, Value::Timestamp(us)) if us % 1_000_000 == 0 => (us / 1_000_000).to_string(),
        (_, Value::Timestamp(us)) => format!("{}.{:06}", us.div_euclid(1_000_000), us.rem_euclid(1_000_000)),
        (_, Value::Time(us)) => {
            let (sign, us) = if *us < 0 { ("-", -us) } else { ("", *us) };
            let s = us / 1_000_000;
            format!("'{sign}{:02}:{:02}:{:02}'", s / 3600, s / 60 % 60, s % 60)
        }
        (_, Value::Text(t) | Value::Json(t)) => quote(t.as_bytes()),
        (_, Value::Bytes(b)) => quote(b),
        (_, other) => format!("{other:?}"),
    }
}

/// `b'0101'`, `width` digits.
fn bits(v: u64, width: usize) -> String {
    format!("b'{v:0width$b}'")
}

/// As the tool quotes strings: printable ASCII kept, `'` and `\` escaped, others as `\xNN`.
fn quote(b: &[u8]) -> String {
    let mut s = String::from("'");
    for &c in b {
        match c {
            b'\'' => s.push_str("\\'"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('\'');
    s
}
