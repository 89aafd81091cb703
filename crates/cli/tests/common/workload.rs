//! A table, a random write workload over it, and replaying change events into rows: shared by
//! the recovery tests of the events file and of the lake.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;
use sluice_testkit::MariaDb;

use super::{op, seq};

pub type Table = BTreeMap<i64, (Option<i64>, Option<String>)>;

pub fn key_of(image: &Json) -> i64 {
    image["id"].as_i64().unwrap_or_else(|| panic!("no id in {image}"))
}

pub fn cols(image: &Json) -> (Option<i64>, Option<String>) {
    (image["v"].as_i64(), image["note"].as_str().map(str::to_string))
}

/// Seqs are exactly 0..n in file order; then the events, applied in order, give the table.
pub fn replay(events: &[Json]) -> Table {
    let seqs: Vec<u64> = events.iter().map(seq).collect();
    let expected: Vec<u64> = (0..events.len() as u64).collect();
    if seqs != expected {
        let dup = seqs.windows(2).find(|w| w[1] != w[0] + 1);
        panic!("seqs are not 0..{} without gaps or repeats (first break: {dup:?})", events.len());
    }
    let mut t = Table::new();
    for e in events {
        match op(e) {
            "r" | "c" => {
                t.insert(key_of(&e["after"]), cols(&e["after"]));
            }
            "u" => {
                // The lake's changelog has a before image only for key-changing updates.
                let before = if e["before"].is_null() { &e["after"] } else { &e["before"] };
                t.remove(&key_of(before));
                t.insert(key_of(&e["after"]), cols(&e["after"]));
            }
            "d" => {
                t.remove(&key_of(&e["before"]));
            }
            other => panic!("unexpected op {other}"),
        }
    }
    t
}

pub async fn source_table(db: &MariaDb) -> Table {
    let mut conn = db.root_conn().await;
    let rows: Vec<(i64, Option<i64>, Option<String>)> = conn.query("SELECT id, v, note FROM shop.acct").await.unwrap();
    rows.into_iter().map(|(id, v, n)| (id, (v, n))).collect()
}

/// Random transactions (inserts, updates, key-changing updates, deletes) until `stop`.
pub fn workload(db: &MariaDb, stop: Arc<AtomicBool>, seed: u64) -> tokio::task::JoinHandle<u64> {
    let url = db.root_url();
    tokio::spawn(async move {
        let mut conn = sluice_testkit::connect(&url).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut next_id = 1_000_000i64;
        let mut txs = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut sql = String::from("START TRANSACTION;");
            for _ in 0..rng.gen_range(1..6) {
                let id = rng.gen_range(1..20_000);
                match rng.gen_range(0..10) {
                    0..=2 => {
                        next_id += 1;
                        sql.push_str(&format!("INSERT INTO shop.acct VALUES ({next_id}, {id}, 'n{id}');"));
                    }
                    3..=6 => sql.push_str(&format!("UPDATE shop.acct SET v = v + 1, note = 'u{txs}' WHERE id = {id};")),
                    7 => {
                        next_id += 1;
                        sql.push_str(&format!("UPDATE shop.acct SET id = {next_id} WHERE id = {id};"));
                    }
                    _ => sql.push_str(&format!("DELETE FROM shop.acct WHERE id = {id};")),
                }
            }
            sql.push_str("COMMIT;");
            conn.query_drop(sql).await.expect("workload transaction");
            txs += 1;
        }
        txs
    })
}

pub async fn seed_table(db: &MariaDb, rows: i64) {
    db.exec("CREATE DATABASE shop; CREATE TABLE shop.acct (id BIGINT PRIMARY KEY, v BIGINT, note VARCHAR(32))").await;
    for start in (1..=rows).step_by(5000) {
        let values: Vec<String> = (start..(start + 5000).min(rows + 1)).map(|i| format!("({i}, {i}, 'seed{i}')")).collect();
        db.exec(&format!("INSERT INTO shop.acct VALUES {}", values.join(","))).await;
    }
}

/// Stream records deduplicated by `seq` (a record sent again must be identical to its first copy,
/// compared by `text`), in `seq` order.
pub fn first_copies<'a, R>(records: impl Iterator<Item = &'a R>, seq: impl Fn(&R) -> u64, text: impl Fn(&R) -> &str) -> Vec<&'a R> {
    let mut first: BTreeMap<u64, &R> = BTreeMap::new();
    for r in records {
        match first.get(&seq(r)) {
            Some(seen) => assert_eq!(text(seen), text(r), "seq {} was sent twice, differently", seq(r)),
            None => {
                first.insert(seq(r), r);
            }
        }
    }
    first.into_values().collect()
}

/// [`first_copies`], and panics unless their seqs are exactly 0..n.
pub fn first_by_seq<'a, R>(records: impl Iterator<Item = &'a R>, seq: impl Fn(&R) -> u64, text: impl Fn(&R) -> &str) -> Vec<&'a R> {
    let first = first_copies(records, &seq, text);
    let seqs: Vec<u64> = first.iter().map(|r| seq(r)).collect();
    let n = seqs.len() as u64;
    assert!(seqs.iter().copied().eq(0..n), "change seqs are not 0..{n}: first gap after {:?}", seqs.windows(2).find(|w| w[1] != w[0] + 1));
    first
}
