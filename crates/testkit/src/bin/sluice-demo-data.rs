//! Prints demo SQL: `sluice-demo-data --rows 50000 --seed 42 | mariadb ...`
//! creates `demo.users` and fills it with deterministic fake rows.

use std::io::{BufWriter, Write};

use anyhow::{bail, Context};
use sluice_testkit::users;

const USAGE: &str = "usage: sluice-demo-data [--rows N] [--seed S] [--batch B] [--database DB] [--drop-existing]";

fn main() -> anyhow::Result<()> {
    let (mut rows, mut seed, mut batch, mut db) = (50_000usize, 42u64, 1000usize, "demo".to_string());
    let mut drop = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            // Opt-in, so re-running against a non-demo database never drops data by accident.
            "--drop-existing" => {
                drop = true;
                continue;
            }
            _ => {}
        }
        let val = args.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--rows" => rows = val.parse().context("--rows")?,
            "--seed" => seed = val.parse().context("--seed")?,
            "--batch" => batch = val.parse().context("--batch")?,
            "--database" => db = val,
            _ => bail!("unknown argument {flag}\n{USAGE}"),
        }
    }
    let db = db.replace('`', "``");
    let mut out = BufWriter::new(std::io::stdout().lock());
    let res = (|| -> std::io::Result<()> {
        writeln!(out, "CREATE DATABASE IF NOT EXISTS `{db}`;\nUSE `{db}`;")?;
        if drop {
            writeln!(out, "DROP TABLE IF EXISTS users;")?;
        }
        writeln!(out, "{};", users::USERS_DDL)?;
        for stmt in users::insert_sql_batches(users::generate(rows, seed), batch) {
            writeln!(out, "{stmt};")?;
        }
        out.flush()
    })();
    match res {
        // `| head` closing the pipe is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
