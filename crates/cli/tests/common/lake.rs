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
