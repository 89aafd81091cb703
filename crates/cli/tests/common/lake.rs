//! Reading the lake back through `sluice query`: its current state as a [`Table`], and its
//! changelog's `_cdc_seq`s.
#![allow(dead_code)]

use serde_json::Value as Json;
use sluice_testkit::MariaDb;

use super::workload::Table;
use super::{parse_lines, Workdir};

/// A config whose only sink is the default one (a lake at ./lake), `extra` appended verbatim.
pub fn lake_config(db: &MariaDb, extra: &str) -> String {
    format!(
        "[source]\nkind = \"mysql\"\nurl = \"{}\"\nserver_id = 6401\ntables = [\"shop.*\"]\nheartbeat = \"200ms\"\n\n[state]\ndir = \".sluice\"\n{extra}",
        db.url()
    )
}

/// `sluice query --format json`, one value per row.
pub async fn query(w: &Workdir, sql: &str) -> Vec<Json> {
    let out = w.sluice("query", &["--format", "json", sql]).await;
    assert_eq!(out.code, Some(0), "query failed: {sql}\n{out}");
    parse_lines(&out.stdout)
}

/// The current state of `shop.acct` in the lake.
pub async fn lake_table(w: &Workdir) -> Table {
    query(w, "SELECT id, v, note FROM shop.acct")
        .await
        .iter()
        .map(|r| (r["id"].as_i64().expect("id"), (r["v"].as_i64(), r["note"].as_str().map(String::from))))
        .collect()
}

/// Prints what differs between the lake's `shop.acct` and the source's (a few keys each way,
/// keys the lake holds twice, their changelog history, the snapshot and lake lines of the runs'
/// logs), so a failing recovery test shows its cause.
pub async fn explain_mismatch(w: &Workdir, lake: &Table, source: &Table, runs: &[&str]) {
    let only_lake: Vec<_> = lake.iter().filter(|(k, _)| !source.contains_key(k)).take(5).collect();
    let only_source: Vec<_> = source.iter().filter(|(k, _)| !lake.contains_key(k)).take(5).collect();
    let differ: Vec<_> = lake.iter().filter_map(|(k, v)| source.get(k).filter(|s| *s != v).map(|s| (k, v, s))).take(5).collect();
    let twice = query(w, "SELECT id, count(*) AS n FROM shop.acct GROUP BY id HAVING count(*) > 1 LIMIT 5").await;
    eprintln!("lake only: {only_lake:?}\nsource only: {only_source:?}\ndiffering: {differ:?}\nin the lake twice: {twice:?}");
    for (k, _) in only_lake.iter().chain(&only_source).take(3) {
        let sql = format!(
            "SELECT id, v, note, _cdc_op, _cdc_seq, _cdc_before_key FROM shop.acct__changes \
             WHERE id = {k} OR _cdc_before_key LIKE '%{k}%' ORDER BY _cdc_seq"
        );
        eprintln!("changelog of {k}: {:?}", query(w, &sql).await);
    }
    for run in runs {
        let log = std::fs::read_to_string(w.path().join(format!("{run}.err"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("snapshot") || l.contains("lake")).collect();
        eprintln!("log of {run}:\n{}", lines.join("\n"));
    }
}

/// Every seq of the changelog appears once and they are exactly 0..n; returns n.
pub async fn assert_changelog_exact(w: &Workdir) -> u64 {
    let r =
        &query(w, "SELECT count(*) AS n, count(DISTINCT _cdc_seq) AS d, min(_cdc_seq) AS lo, max(_cdc_seq) AS hi FROM shop.acct__changes")
            .await[0];
    let field = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("no {k} in {r}"));
    let (n, d, lo, hi) = (field("n"), field("d"), field("lo"), field("hi"));
    assert_eq!((n, d, lo, hi), (n, n, 0, n - 1), "changelog seqs not exactly 0..{n}: {r}");
    n
}
