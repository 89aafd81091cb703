//! Reading stream records back for `sluice tail`, whatever carries them (the events file, a
//! Kinesis stream, a Kafka topic): one JSON record per line, filtered by table and re-encoded
//! from Debezium to DMS on request.
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::{EventFormat, TablePattern};
use crate::encode::debezium_to_dms;
use crate::TableId;

/// What `sluice tail` asks of a stream reader (Kinesis, Kafka).
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Only records written after the reader started.
    pub latest: bool,
    /// Stop after printing this many records.
    pub limit: Option<usize>,
    /// Only records of tables matching this `db.table` pattern.
    pub table: Option<String>,
    /// Output format; `None`: as the stream carries them. DMS from a Debezium stream is
    /// re-encoded, the reverse is refused.
    pub format: Option<EventFormat>,
    /// Keep reading new records instead of stopping once everything there is was read.
    pub follow: bool,
}

/// The order a reader prints a round of records from several shards or partitions in: by the
/// `seq` they carry (DMS `metadata.seq`, Debezium `source.seq`), a schema change (a DMS control
/// record, a Debezium schema-change record) before the change it precedes.
pub fn seq_order(line: &[u8]) -> u64 {
    // Only the few fields needed: the row images are skipped, not built.
    #[derive(Deserialize)]
    struct Meta<'a> {
        seq: Option<u64>,
        #[serde(rename = "record-type", borrow)]
        record_type: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct Source {
        seq: Option<u64>,
    }
    #[derive(Deserialize)]
    struct Record<'a> {
        #[serde(borrow)]
        metadata: Option<Meta<'a>>,
        source: Option<Source>,
        #[serde(rename = "tableChanges")]
        table_changes: Option<serde::de::IgnoredAny>,
    }
    let Ok(r) = serde_json::from_slice::<Record<'_>>(line) else { return u64::MAX };
    let seq = r.metadata.as_ref().and_then(|m| m.seq).or_else(|| r.source.as_ref().and_then(|s| s.seq)).unwrap_or(u64::MAX);
    let control = r.metadata.as_ref().is_some_and(|m| m.record_type.as_deref() == Some("control"));
    let schema = control || r.table_changes.is_some();
    // Twice the seq, schema changes first: a stable order for the printed round.
    seq.saturating_mul(2).saturating_add(u64::from(!schema))
}

/// Prints a round of rendered records (`(seq_order, line)`, lines without their '\n') in
/// `seq_order`, counting them in `printed`. `Ok(true)` when the tail is done: `limit` reached, or
/// the reader of `out` went away.
pub fn print_round(mut round: Vec<(u64, Vec<u8>)>, out: &mut impl io::Write, printed: &mut usize, limit: Option<usize>) -> Result<bool> {
    round.sort_by_key(|(seq, _)| *seq);
    for (_, mut line) in round {
        line.push(b'\n');
        if quiet_pipe(out.write_all(&line))? {
            return Ok(true);
        }
        *printed += 1;
        if limit == Some(*printed) {
            quiet_pipe(out.flush())?;
            return Ok(true);
        }
    }
    quiet_pipe(out.flush())
}

/// `Ok(true)` when the reader of `out` went away: not an error for a tail.
pub fn quiet_pipe(r: io::Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e).context("cannot write output"),
    }
}

/// Which lines to print, and how: a table filter, and DMS re-encoding of Debezium lines.
pub struct LineFilter {
    file_format: EventFormat,
    table: Option<TablePattern>,
    to_dms: bool,
    keyless: BTreeSet<TableId>,
}

impl LineFilter {
    /// Lines written in `file_format`, printed in `format`, of the tables matching `table`
    /// (`db.table`, globs). `keyless`: tables without a key (see [`debezium_to_dms`]).
    pub fn new(file_format: EventFormat, format: EventFormat, table: Option<&str>, keyless: BTreeSet<TableId>) -> Result<Self> {
        let to_dms = match (file_format, format) {
            (EventFormat::Dms, EventFormat::Debezium) => bail!(
                "the events are in DMS format, which cannot be shown as Debezium (DMS lines lack the \
                 binlog position and snapshot flag); use --format dms"
            ),
            (EventFormat::Debezium, EventFormat::Dms) => true,
            _ => false,
        };
        let table = table.map(TablePattern::parse).transpose().map_err(anyhow::Error::msg)?;
        Ok(Self { file_format, table, to_dms, keyless })
    }

    /// The output line (with its '\n') for `line`, or `None` when it is filtered out. Messages
    /// never quote the line: it holds row values.
    pub fn render<'a>(&self, line: &'a [u8]) -> Result<Option<Cow<'a, [u8]>>> {
        if self.to_dms {
            let event: Json = serde_json::from_slice(line).context("not valid JSON")?;
            if !self.matches(&event["source"]["db"], &event["source"]["table"]) {
                return Ok(None);
            }
            let (db, table) = (event["source"]["db"].as_str().unwrap_or_default(), event["source"]["table"].as_str().unwrap_or_default());
            let keyed = !self.keyless.contains(&TableId::new(db, table));
            let dms = debezium_to_dms(&event, keyed).context("not a Debezium change event")?;
            let mut buf = serde_json::to_vec(&dms)?;
            buf.push(b'\n');
            return Ok(Some(Cow::Owned(buf)));
        }
        if let Some(pattern) = &self.table {
            // Deserialize only the names, skipping the row images.
            let probe: Probe = serde_json::from_slice(line).context("not valid JSON")?;
            let names = match self.file_format {
                EventFormat::Debezium => probe.source,
                EventFormat::Dms => probe.metadata,
            };
            let names = names.context("not a change event in the file's format (no table name)")?;
            if !pattern.matches(&names.db, &names.table) {
                return Ok(None);
            }
        }
        Ok(Some(Cow::Borrowed(line)))
    }

    fn matches(&self, db: &Json, table: &Json) -> bool {
        self.table.as_ref().is_none_or(|p| p.matches(db.as_str().unwrap_or_default(), table.as_str().unwrap_or_default()))
    }
}

#[derive(Deserialize)]
struct Probe<'a> {
    /// Debezium.
    #[serde(borrow)]
    source: Option<Names<'a>>,
    /// DMS.
    #[serde(borrow)]
    metadata: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, alias = "schema-name")]
    db: Cow<'a, str>,
    #[serde(borrow, alias = "table-name")]
    table: Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_changes_sort_before_the_change_they_precede() {
        let change = br#"{"before":null,"after":{"id":1},"op":"c","source":{"db":"shop","seq":7}}"#;
        let debezium_schema = br#"{"source":{"db":"shop","seq":7},"tableChanges":[{"type":"CREATE"}]}"#;
        let dms = br#"{"data":{"id":1},"metadata":{"record-type":"data","seq":6}}"#;
        let control = br#"{"control":{},"metadata":{"record-type":"control","seq":7}}"#;
        let order = [seq_order(dms), seq_order(debezium_schema), seq_order(control), seq_order(change)];
        assert_eq!(order, [13, 14, 14, 15]);
        assert_eq!(seq_order(b"not json"), u64::MAX);
    }
}
