//! `[source] kind = "binlog-file"` over the binlog fixtures of MySQL 5.1–8.4 and MariaDB in
//! `../shared/fixtures/mysql-binlogs` (mysql_common's test data; not part of this repository, so
//! these tests say so and pass when the folder is absent; `SLUICE_BINLOG_FIXTURES` points
//! elsewhere). One test per file: it decodes (and matches its golden output in
//! `tests/golden/<file>.jsonl`, Debezium JSON lines; `SLUICE_BLESS=1` rewrites them) or stops
//! with the named refusal below. Every decoding run also checks gap-free seqs, and that resuming
//! at each of its checkpoints yields exactly the rest. Where `mariadb-binlog` can read the file,
//! the row values are compared with its `-v --base64-output=decode-rows` reading
//! (`binlog_files/mariadb.rs`; python-mysql-replication reads only from a server, so it is not
//! used). mariadb-binlog cannot read MySQL 8 binary JSON, compressed transactions or tagged
//! GTIDs; for `json-opaque.binlog` the golden values are the ones mysql_common's own test
//! asserts, and `transaction_compression.000001` holds the one insert its test expects.
//!
//! | fixture | server | outcome |
//! |---|---|---|
//! | binlog-invisible-columns.000001 | MySQL 8.0 | 3 changes; invisible columns included (FULL metadata names them) |
//! | binlog_56_gtid_reserved_word.000001 | MySQL 5.6 | refused: statement-based INSERT (binlog_format=STATEMENT) |
//! | binlog_savepoint.000001 | MySQL 8.0 | refused: statement-based change |
//! | binlog_transaction.000001 | MySQL 8.0 | refused: statement-based change |
//! | binlog_transaction_previous_GTID_no_tag.000001 | MySQL 8.4 | no changes (PREVIOUS_GTIDS only) |
//! | binlog_transaction_with_GTID.000001 | MySQL 8.0 | refused: statement-based change |
//! | binlog_transaction_with_GTID_TAG.000001 | MySQL 8.4 | 1 change; tagged GTID `uuid:tag:n` |
//! | binlog_transaction_with_anonymous_GTID.000001 | MySQL 8.0 | refused: statement-based change |
//! | binlog_truncated_event.000001 | MySQL 8.0 | refused: truncated event at :4 |
//! | binlog_truncated_prev_gtid_event.000001 | MySQL 8.0 | refused: truncated event at :120 |
//! | bug11747887-bin.000003 | MySQL 5.x | refused: statement-based change |
//! | bug16266.000001 | MySQL 5.x | refused: statement-based change |
//! | bug27213339-bin.000001 | MySQL 8.0 | no changes (DDL and anonymous GTIDs only) |
//! | bug32407.001 | MySQL 5.1 | 2 changes (v1 rows events, no metadata: `@0`) |
//! | bug33029-slave-relay-bin.000001 | MySQL 5.x relay log | refused: statement-based change |
//! | bug40482-bin.000001 | MySQL 5.1 | refused: INCIDENT event |
//! | corrupt-relay-bin.000624 | MySQL relay log | refused: statement-based change; with that table excluded, the broken query event at :91204 |
//! | json-opaque.binlog | MySQL 8.0 | 8 changes; binary JSON with opaque DATE/TIME/DECIMAL scalars |
//! | json.binlog.000001 | MySQL 8.0 | 12 changes (binary JSON, generated columns), then refused at :3750: a partial JSON update with a minimal row image |
//! | mariadb-bin.000001 | MariaDB 10.x | 2 changes; MariaDB GTIDs, FULL metadata |
//! | master-bin.000001 | MySQL 8.0 | no changes |
//! | minimal_row_metadata.000001 | MySQL 8.0 | refused: minimal row image (3 of 5 columns) |
//! | mysql-enum-string-set.000001 | MySQL 8.0 | 3 changes; ENUM/SET labels from FULL metadata |
//! | mysql_type_bit.000001 | MySQL 8.0 | 1 change; BIT |
//! | rpl_atomic_ddl_rollback_{full,table,view}.000001 | MySQL 8.0 | no changes (DDL only) |
//! | rpl_cross_version_default_utf8mb4_collation.000001 | MySQL 8.0 | refused: statement-based change |
//! | rpl_unfiltered_hidden_gcol.000001 | MySQL 8.0.17 | refused: the hidden generated column of a functional index is in the table map but not in the row image |
//! | slave-relay-bin.000001 | MySQL 8.0 relay log | no changes |
//! | time_issue.000001 | MySQL 8.0 | 1 change; negative TIME |
//! | transaction_compression.000001 | MySQL 8.0 | 1 change, from a zstd TRANSACTION_PAYLOAD_EVENT |
//! | update-full-row.binlog, write-full-row.binlog | MySQL Cluster 5.1 | refused: NDB logs the key only in before images |
//! | update-partial-row.binlog, write-partial-row.binlog | MySQL Cluster 5.1 | refused: partial row images |
//! | vector.binlog | MySQL 9.0 | refused: VECTOR columns are not supported |
//! | ver_5_1-wl2325_r.001 | MySQL 5.1 (pre-GA) | no changes (its table has no rows events) |
//! | ver_5_1-wl2325_s.001 | MySQL 5.1 (pre-GA) | refused: statement-based change |
//! | ver_5_1_23.001 | MySQL 5.1.23 | refused: statement-based change (MIXED) |
//! | ver_trunk_row_v2.001 | MySQL 5.x trunk | 5 changes (v2 rows events), then refused at :1232: statement-based change (MIXED) |
#![allow(clippy::unwrap_used)]
#[path = "binlog_files/mariadb.rs"]
mod mariadb;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sluice_core::checkpoint::Checkpoint;
use sluice_core::config::TablePattern;
use sluice_core::source::{Source, SourceMsg};
use sluice_core::ChangeEvent;
use sluice_mysql::{BinlogFileConfig, BinlogFileSource};

fn fixtures() -> PathBuf {
    std::env::var_os("SLUICE_BINLOG_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/mysql-binlogs"))
}

/// What a whole run over one file gave.
struct Run {
    events: Vec<ChangeEvent>,
    checkpoints: Vec<Checkpoint>,
}

fn config(file: &str, tables: &[&str]) -> BinlogFileConfig {
    BinlogFileConfig {
        files: vec![fixtures().join(file).display().to_string()],
        tables: vec![TablePattern::parse("*.*").unwrap()],
        exclude: tables.iter().map(|t| TablePattern::parse(t).unwrap()).collect(),
        keys: BTreeMap::new(),
    }
}

/// Runs the source to `CaughtUp` (or its error), from `resume`.
async fn run(cfg: BinlogFileConfig, resume: Option<Checkpoint>) -> Result<Run, String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let (_keep, committed) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(Box::new(BinlogFileSource::new(cfg)).run(resume, tx, committed));
    let mut run = Run { events: Vec::new(), checkpoints: Vec::new() };
    loop {
        match rx.recv().await {
            Some(SourceMsg::Events(e)) => run.events.extend(e),
            Some(SourceMsg::Checkpoint(c)) => run.checkpoints.push(c),
            Some(SourceMsg::CaughtUp) => break,
            Some(_) => {}
            None => return Err(task.await.unwrap().unwrap_err().chain()),
        }
    }
    drop(rx);
    task.await.unwrap().map_err(|e| e.chain())?;
    Ok(run)
}

enum Expect {
    /// Decodes to this many changes.
    Changes(usize),
    /// Stops with an error containing this.
    Refuses(&'static str),
}

async fn check(file: &str, exclude: &[&str], expect: Expect) {
    if !fixtures().is_dir() {
        eprintln!("SKIPPED: no binlog fixtures at {} (set SLUICE_BINLOG_FIXTURES)", fixtures().display());
        return;
    }
    let result = run(config(file, exclude), None).await;
    let run = match (expect, result) {
        (Expect::Refuses(what), Err(e)) => {
            assert!(e.contains(what), "{file}: expected a refusal with {what:?}, got: {e}");
            assert!(e.contains(file), "{file}: the refusal does not name the file: {e}");
            return;
        }
        (Expect::Refuses(what), Ok(r)) => panic!("{file}: expected a refusal with {what:?}, decoded {} changes", r.events.len()),
        (Expect::Changes(_), Err(e)) => panic!("{file}: {e}"),
        (Expect::Changes(n), Ok(r)) => {
            assert_eq!(r.events.len(), n, "{file}: number of changes");
            r
        }
    };
    for (i, e) in run.events.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "{file}: seqs are gap-free from 0");
    }
    // Exact resume: from every checkpoint, the rest of the changes and nothing else.
    for cp in &run.checkpoints {
        let rest = self::run(config(file, exclude), Some(cp.clone())).await.unwrap();
        assert_eq!(rest.events, run.events[cp.next_seq as usize..], "{file}: resumed at {}", cp.position);
    }
    let last = run.checkpoints.last().unwrap();
    let pos = &last.position["binlog"];
    assert_eq!(pos["file"], file);
    assert_eq!(pos["pos"], std::fs::metadata(fixtures().join(file)).unwrap().len(), "{file}: the last checkpoint is the file's end");
    golden(file, &run.events);
    mariadb::compare(&fixtures().join(file), &run.events);
}

/// Debezium JSON lines, one per change, against `tests/golden/<file>.jsonl`.
fn golden(file: &str, events: &[ChangeEvent]) {
    if events.is_empty() {
        return;
    }
    let mut text = String::new();
    for e in events {
        text.push_str(&sluice_core::encode::debezium(e, 0).to_string());
        text.push('\n');
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{file}.jsonl"));
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("no golden output {}: run with SLUICE_BLESS=1", path.display()));
    for (i, (got, want)) in text.lines().zip(want.lines()).enumerate() {
        assert_eq!(got, want, "{file}: change {i} differs from {} (SLUICE_BLESS=1 rewrites it)", path.display());
    }
    assert_eq!(text.lines().count(), want.lines().count(), "{file}: number of lines in {}", path.display());
}

macro_rules! fixtures {
    ($($name:ident: $file:literal $(exclude $ex:expr)? => $expect:expr;)*) => {$(
        #[tokio::test]
        async fn $name() {
            #[allow(unused_mut, unused_assignments)]
            let mut exclude: &[&str] = &[];
            $(exclude = $ex;)?
            check($file, exclude, $expect).await;
        }
    )*};
}

use Expect::{Changes, Refuses};

const STATEMENTS: &str = "statement-based change at";
const IMAGE: &str = "the server must log full row images";

fixtures! {
    invisible_columns: "binlog-invisible-columns.000001" => Changes(3);
    gtid_56_reserved_word: "binlog_56_gtid_reserved_word.000001" => Refuses(STATEMENTS);
    savepoint: "binlog_savepoint.000001" => Refuses(STATEMENTS);
    transaction: "binlog_transaction.000001" => Refuses(STATEMENTS);
    previous_gtid_no_tag: "binlog_transaction_previous_GTID_no_tag.000001" => Changes(0);
    with_gtid: "binlog_transaction_with_GTID.000001" => Refuses(STATEMENTS);
    with_gtid_tag: "binlog_transaction_with_GTID_TAG.000001" => Changes(1);
    with_anonymous_gtid: "binlog_transaction_with_anonymous_GTID.000001" => Refuses(STATEMENTS);
    truncated_event: "binlog_truncated_event.000001" => Refuses("truncated event at binlog_truncated_event.000001:4");
    truncated_prev_gtid: "binlog_truncated_prev_gtid_event.000001" => Refuses("truncated event at binlog_truncated_prev_gtid_event.000001:120");
    bug11747887: "bug11747887-bin.000003" => Refuses(STATEMENTS);
    bug16266: "bug16266.000001" => Refuses(STATEMENTS);
    bug27213339: "bug27213339-bin.000001" => Changes(0);
    bug32407: "bug32407.001" => Changes(2);
    bug33029_relay: "bug33029-slave-relay-bin.000001" => Refuses(STATEMENTS);
    bug40482_incident: "bug40482-bin.000001" => Refuses("INCIDENT event");
    corrupt_relay: "corrupt-relay-bin.000624" => Refuses(STATEMENTS);
    corrupt_relay_rows_only: "corrupt-relay-bin.000624" exclude &["RELATE.*"] => Refuses("corrupt-relay-bin.000624:91204");
    json_opaque: "json-opaque.binlog" => Changes(8);
    json_partial: "json.binlog.000001" => Refuses("partial JSON update (binlog_row_value_options=PARTIAL_JSON): row image of mysql.t has 1 of 4");
    mariadb: "mariadb-bin.000001" => Changes(2);
    master_bin: "master-bin.000001" => Changes(0);
    minimal_row_metadata: "minimal_row_metadata.000001" => Refuses(IMAGE);
    enum_string_set: "mysql-enum-string-set.000001" => Changes(3);
    bit: "mysql_type_bit.000001" => Changes(1);
    atomic_ddl_full: "rpl_atomic_ddl_rollback_full.000001" => Changes(0);
    atomic_ddl_table: "rpl_atomic_ddl_rollback_table.000001" => Changes(0);
    atomic_ddl_view: "rpl_atomic_ddl_rollback_view.000001" => Changes(0);
    utf8mb4_collation: "rpl_cross_version_default_utf8mb4_collation.000001" => Refuses(STATEMENTS);
    hidden_gcol: "rpl_unfiltered_hidden_gcol.000001" => Refuses("has 2 of 3 columns (missing: @1)");
    relay_log: "slave-relay-bin.000001" => Changes(0);
    time_issue: "time_issue.000001" => Changes(1);
    transaction_compression: "transaction_compression.000001" => Changes(1);
    ndb_update_full_row: "update-full-row.binlog" => Refuses(IMAGE);
    ndb_update_partial_row: "update-partial-row.binlog" => Refuses(IMAGE);
    ndb_write_full_row: "write-full-row.binlog" => Refuses(IMAGE);
    ndb_write_partial_row: "write-partial-row.binlog" => Refuses(IMAGE);
    vector: "vector.binlog" => Refuses("MYSQL_TYPE_VECTOR, which sluice does not support");
    v51_wl2325_r: "ver_5_1-wl2325_r.001" => Changes(0);
    v51_wl2325_s: "ver_5_1-wl2325_s.001" => Refuses(STATEMENTS);
    v51_23: "ver_5_1_23.001" => Refuses(STATEMENTS);
    trunk_row_v2: "ver_trunk_row_v2.001" => Refuses(STATEMENTS);
}

/// Several files are read in name order as one history, and resume across them.
#[tokio::test]
async fn several_files_in_order() {
    if !fixtures().is_dir() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Names chosen so that name order is not the order given.
    std::fs::copy(fixtures().join("mysql_type_bit.000001"), dir.path().join("b.000002")).unwrap();
    std::fs::copy(fixtures().join("time_issue.000001"), dir.path().join("b.000001")).unwrap();
    let cfg = || BinlogFileConfig {
        files: vec![dir.path().join("b.*").display().to_string()],
        tables: vec![TablePattern::parse("*.*").unwrap()],
        exclude: vec![],
        keys: BTreeMap::new(),
    };
    let all = run(cfg(), None).await.unwrap();
    let tables: Vec<String> = all.events.iter().map(|e| e.schema.id.to_string()).collect();
    assert_eq!(tables, ["noria.t", "mysql.foo"]);
    assert_eq!(all.events.iter().map(|e| e.source.file.as_str()).collect::<Vec<_>>(), ["b.000001", "b.000002"]);
    for cp in &all.checkpoints {
        let rest = run(cfg(), Some(cp.clone())).await.unwrap();
        assert_eq!(rest.events, all.events[cp.next_seq as usize..], "resumed at {}", cp.position);
    }
}

/// Offsets of the events of a binlog file (after the 4-byte magic), and its length.
fn event_starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = 4;
    let mut starts = Vec::new();
    while at + 19 <= bytes.len() {
        starts.push(at);
        at += u32::from_le_bytes(bytes[at + 9..at + 13].try_into().unwrap()) as usize;
    }
    starts
}

/// A copy of a fixture changed by `f`, as `name` in a temp dir.
fn altered(fixture: &str, name: &str, f: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, BinlogFileConfig) {
    let mut bytes = std::fs::read(fixtures().join(fixture)).unwrap();
    f(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let cfg = BinlogFileConfig {
        files: vec![dir.path().join(name).display().to_string()],
        tables: vec![TablePattern::parse("*.*").unwrap()],
        exclude: vec![],
        keys: BTreeMap::new(),
    };
    (dir, cfg)
}

/// A file cut between events inside its last transaction (a binlog copied while written):
/// everything before that transaction, and nothing of it.
#[tokio::test]
async fn a_file_ending_inside_a_transaction_delivers_what_precedes_it() {
    if !fixtures().is_dir() {
        return;
    }
    let whole = std::fs::read(fixtures().join("mysql-enum-string-set.000001")).unwrap();
    // The last XID (type 16) ends the last transaction: cut just before it.
    let starts = event_starts(&whole);
    let last_xid = *starts.iter().rev().find(|&&s| whole[s + 4] == 16).unwrap();
    let (_dir, cfg) = altered("mysql-enum-string-set.000001", "cut.000001", |b| b.truncate(last_xid));
    let run = run(cfg, None).await.unwrap();
    assert_eq!(run.events.len(), 2, "the first two transactions only");
    let end = &run.checkpoints.last().unwrap().position["binlog"]["pos"];
    assert!(end.as_u64().unwrap() < last_xid as u64, "the checkpoint stays before the cut transaction: {end}");
}

/// A flipped byte inside an event: its CRC32 no longer matches.
#[tokio::test]
async fn a_corrupt_event_is_refused_by_its_checksum() {
    if !fixtures().is_dir() {
        return;
    }
    let whole = std::fs::read(fixtures().join("mysql_type_bit.000001")).unwrap();
    let rows = *event_starts(&whole).iter().find(|&&s| whole[s + 4] == 30).unwrap();
    let (_dir, cfg) = altered("mysql_type_bit.000001", "flip.000001", |b| b[rows + 25] ^= 0x40);
    let err = run(cfg, None).await.err().unwrap();
    assert!(err.contains(&format!("checksum mismatch in the event at flip.000001:{rows}")), "{err}");
}

/// Robustness: every fixture cut at many offsets, or with a byte flipped (caught by the CRC32
/// where the file has checksums, else reaching the parsers), either decodes or stops with an
/// error naming the file: no panic, no hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_flipped_files_decode_or_refuse() {
    if !fixtures().is_dir() {
        return;
    }
    let mut names: Vec<String> = std::fs::read_dir(fixtures()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.retain(|n| n != "README.md");
    names.sort();
    let mut runs = 0;
    for name in &names {
        let whole = std::fs::read(fixtures().join(name)).unwrap();
        let step = (whole.len() / 40).max(1);
        // Cut at an offset, or one byte flipped (past the format description event, which says
        // whether events carry a CRC32).
        let cuts = (5..whole.len()).step_by(step).map(|at| (at, true));
        let flips = (4 + 19 + 100..whole.len()).step_by(step).map(|at| (at, false));
        for (at, cut) in cuts.chain(flips) {
            let (_dir, cfg) = altered(name, name, |b| if cut { b.truncate(at) } else { b[at] ^= 0xff });
            let result = tokio::time::timeout(std::time::Duration::from_secs(10), run(cfg, None)).await;
            match result.unwrap_or_else(|_| panic!("{name}: no end within 10 s")) {
                Ok(_) => {}
                Err(e) => assert!(e.contains(name.as_str()), "{name}: {e}"),
            }
            runs += 1;
        }
    }
    assert!(runs > 1000, "{runs} runs");
}
