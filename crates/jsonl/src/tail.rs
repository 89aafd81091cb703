//! Reading an events file back (`sluice tail`), optionally following it as the pipeline appends.
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value as Json;
use sluice_core::config::{EventFormat, TablePattern};
use sluice_core::encode::debezium_to_dms;
use sluice_core::TableId;

use crate::lines::Lines;

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailFrom {
    #[default]
    Earliest,
    /// The end of the file when `tail` starts: only events written afterwards.
    Latest,
}

#[derive(Debug, Clone)]
pub struct TailOptions {
    pub from: TailFrom,
    /// Stop after printing this many lines.
    pub limit: Option<usize>,
    /// Only events of tables matching this `db.table` pattern (`*` and `?` globs allowed).
    pub table: Option<String>,
    /// Output format; DMS from a Debezium file is re-encoded, the reverse is refused.
    pub format: EventFormat,
    /// Keep waiting for new lines (and for the file to appear) instead of stopping at its end.
    pub follow: bool,
    /// How often to look for new lines while following.
    pub poll: Duration,
    /// Tables known to have no key: DMS records re-encoded from Debezium lines (which do not
    /// say) get `partition-key-type` `schema-table` for these, `primary-key` for the others.
    pub keyless: BTreeSet<TableId>,
}

impl Default for TailOptions {
    fn default() -> Self {
        Self {
            from: TailFrom::Earliest,
            limit: None,
            table: None,
            format: EventFormat::Debezium,
            follow: false,
            poll: Duration::from_millis(200),
            keyless: BTreeSet::new(),
        }
    }
}

/// Prints the complete lines of the events file at `path` (written in `file_format`) that match
/// `opts` to `out`, and returns how many were printed. A line is printed only once its '\n' is
/// there. While following, a truncation of the file (the pipeline restarting from its last
/// commit) restarts reading at the new end, so re-sent events are printed again.
///
/// File reads are plain blocking reads between async sleeps: meant for a CLI command, not for a
/// runtime shared with latency-sensitive work. A closed `out` (`| head`) ends it quietly.
pub async fn tail(path: &Path, file_format: EventFormat, opts: &TailOptions, out: &mut impl Write) -> Result<usize> {
    let filter = Filter::new(file_format, opts)?;
    if opts.limit == Some(0) {
        return Ok(0);
    }
    let poll = opts.poll.max(Duration::from_millis(10));
    let mut from = opts.from;
    let file = loop {
        match File::open(path) {
            Ok(f) => break f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && opts.follow => {
                // Everything in a file that appears later is new to us.
                from = TailFrom::Earliest;
                tokio::time::sleep(poll).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot open events file {}", path.display())),
        }
    };
    let reading = || format!("cannot read events file {}", path.display());
    let mut lines = Lines::new(file, from).with_context(reading)?;
    let mut printed = 0;
    loop {
        let next = lines.next_line().with_context(reading)?;
        let Some((offset, line)) = next else {
            if !opts.follow {
                break;
            }
            if quiet_pipe(out.flush())? {
                return Ok(printed);
            }
            tokio::time::sleep(poll).await;
            lines.check_rewritten().with_context(reading)?;
            continue;
        };
        let rendered = filter.render(line).with_context(|| format!("line at byte {offset} of {}", path.display()))?;
        let Some(rendered) = rendered else { continue };
        if quiet_pipe(out.write_all(&rendered))? {
            return Ok(printed);
        }
        printed += 1;
        if opts.limit == Some(printed) {
            break;
        }
    }
    quiet_pipe(out.flush())?;
    Ok(printed)
}

/// `Ok(true)` when the reader of `out` went away: not an error for a tail.
fn quiet_pipe(r: io::Result<()>) -> Result<bool> {
    match r {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e).context("cannot write output"),
    }
}

/// Which lines to print, and how.
struct Filter {
    file_format: EventFormat,
    table: Option<TablePattern>,
    to_dms: bool,
    keyless: BTreeSet<TableId>,
}

impl Filter {
    fn new(file_format: EventFormat, opts: &TailOptions) -> Result<Self> {
        let to_dms = match (file_format, opts.format) {
            (EventFormat::Dms, EventFormat::Debezium) => bail!(
                "the events file is in DMS format, which cannot be shown as Debezium (DMS lines lack the \
                 binlog position and snapshot flag); use --format dms"
            ),
            (EventFormat::Debezium, EventFormat::Dms) => true,
            _ => false,
        };
        let table = opts.table.as_deref().map(TablePattern::parse).transpose().map_err(anyhow::Error::msg)?;
        Ok(Self { file_format, table, to_dms, keyless: opts.keyless.clone() })
    }

    /// The output line (with its '\n') for `line`, or `None` when it is filtered out. Messages
    /// never quote the line: it holds row values.
    fn render<'a>(&self, line: &'a [u8]) -> Result<Option<Cow<'a, [u8]>>> {
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
