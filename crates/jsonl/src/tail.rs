//! Reading an events file back (`sluice tail`), optionally following it as the pipeline appends.
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use sluice_core::config::EventFormat;
use sluice_core::tailing::{quiet_pipe, LineFilter};
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
    let filter = LineFilter::new(file_format, opts.format, opts.table.as_deref(), opts.keyless.clone())?;
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
