//! PII end to end: known values go through the snapshot, updates, deletes and a DDL; then every
//! byte sluice wrote is scanned (decoded parquet, Delta logs, JSON lines, state, logs,
//! stdout/stderr of every command) and must hold none of them. Masked forms are checked too.
#![allow(clippy::unwrap_used)]
mod common;

use std::path::Path;

use common::{parse_lines, sluice, Out, Workdir};
use serde_json::Value as Json;
use sluice_lake::deltalake::arrow::util::pretty::pretty_format_batches;
use sluice_lake::deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_testkit::MariaDb;

const KEY: &str = "leak-test key: 32 bytes or more!";

fn config(db: &MariaDb) -> String {
    format!(
        r#"[source]
kind = "mysql"
url = "{}"
server_id = 6401
tables = ["shop.*"]
heartbeat = "200ms"

[snapshot]
chunk_size = 7

[[mask]]
columns = ["shop.customers.email", "shop.subscribers.email"]
method = "email"

[[mask]]
columns = ["*.phone"]
method = "partial"

[[mask]]
columns = ["shop.customers.ssn"]
method = "drop"

[detect]
sample = 20
spans = true

[mask_key]
file = "mask.key"

[sink.lake]
path = "lake"
flush_interval = "200ms"

[sink.jsonl]
path = "events.jsonl"
flush_interval = "100ms"

[state]
dir = ".sluice"
"#,
        db.url()
    )
}

/// The raw values, each unique enough that finding it anywhere is a leak.
struct Canaries(Vec<String>);

impl Canaries {
    fn customer(&mut self, i: u32) -> String {
        let email = format!("canary.{i}.x7q@example.com");
        let phone = format!("+1 206 555 {:04}", 3000 + i);
        let ssn = format!("{}-{:02}-{:04}", 100 + i, 10 + i % 80, 1000 + i);
        let contact = format!("contact.{i}.k3z@example.org");
        let note_mail = format!("note.{i}.p9v@example.net");
        let note_phone = format!("+44 20 7946 {:04}", 5000 + i);
        let doc_mail = format!("doc.{i}.m2w@example.net");
        let row = format!(
            "({i}, 'Customer {i}', '{email}', '{phone}', '{ssn}', '{contact}', 'Reach me at {note_mail} or {note_phone}, card 4929 1234 5678 9015', '{{\"backup\": \"{doc_mail}\", \"n\": {i}}}')"
        );
        self.0.extend([email, phone, ssn, contact, note_mail, note_phone, doc_mail]);
        row
    }

    fn subscriber(&mut self, i: u32) -> String {
        let email = format!("sub.{i}.z4r@example.com");
        let row = format!("('{email}', 'plan{}')", i % 3);
        self.0.push(email);
        row
    }
}

async fn query(w: &Workdir, sql: &str, outs: &mut Vec<Out>) -> Vec<Json> {
    let out = w.sluice("query", &["--format", "json", sql]).await;
    assert_eq!(out.code, Some(0), "query failed: {sql}\n{out}");
    let rows = parse_lines(&out.stdout);
    outs.push(out);
    rows
}

/// Every file under `dir`, as bytes; parquet files also decoded to text.
fn everything_written(dir: &Path, skip: &[&str], acc: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if skip.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() {
            everything_written(&path, skip, acc);
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".parquet") {
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap().build().unwrap();
            let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
            let text = pretty_format_batches(&batches).unwrap().to_string();
            acc.push((format!("{} (decoded)", path.display()), text.into_bytes()));
        }
        acc.push((path.display().to_string(), bytes));
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_pii_anywhere_sluice_writes() {
    let db = MariaDb::start();
    db.create_db("shop").await;
    db.exec(
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64), email VARCHAR(128), phone VARCHAR(32), ssn CHAR(11), \
         contact VARCHAR(128), notes TEXT, doc JSON); \
         CREATE TABLE shop.subscribers (email VARCHAR(128) PRIMARY KEY, plan VARCHAR(16))",
    )
    .await;
    let mut pii = Canaries(vec!["4929 1234 5678 9015".into()]);
    let rows: Vec<String> = (1..=40).map(|i| pii.customer(i)).collect();
    db.exec(&format!("INSERT INTO shop.customers VALUES {}", rows.join(","))).await;
    let subs: Vec<String> = (1..=30).map(|i| pii.subscriber(i)).collect();
    db.exec(&format!("INSERT INTO shop.subscribers VALUES {}", subs.join(","))).await;

    let w = Workdir::with_config(&config(&db));
    std::fs::write(w.path().join("mask.key"), format!("{KEY}\n")).unwrap();
    let cfg = w.config_str();
    let run_args = ["run", "-c", cfg.as_str(), "--once"];
    let debug = [("SLUICE_LOG", "debug")];
    let mut outs = vec![sluice(&run_args, &debug).await];
    assert_eq!(outs[0].code, Some(0), "snapshot run failed:\n{}", outs[0]);

    // Updates (new PII in after images, old in before images), deletes, inserts, then a DDL
    // adding a PII column mid-stream and rows that fill it.
    let new_rows: Vec<String> = (41..=45).map(|i| pii.customer(i)).collect();
    let new_subs: Vec<String> = (31..=33).map(|i| pii.subscriber(i)).collect();
    let changed_email = "changed.1.w8n@example.com".to_string();
    let changed_sub = "changed.sub.y5t@example.com".to_string();
    db.exec(&format!(
        "UPDATE shop.customers SET email = '{changed_email}', phone = '+1 415 555 0177' WHERE id = 1; \
         UPDATE shop.customers SET name = 'Renamed' WHERE id BETWEEN 2 AND 6; \
         DELETE FROM shop.customers WHERE id BETWEEN 7 AND 9; \
         INSERT INTO shop.customers VALUES {}; \
         UPDATE shop.subscribers SET email = '{changed_sub}' WHERE email = 'sub.1.z4r@example.com'; \
         DELETE FROM shop.subscribers WHERE email = 'sub.2.z4r@example.com'; \
         INSERT INTO shop.subscribers VALUES {}",
        new_rows.join(","),
        new_subs.join(",")
    ))
    .await;
    pii.0.extend([changed_email, "+1 415 555 0177".into(), changed_sub]);
    db.exec("ALTER TABLE shop.customers ADD COLUMN alt_email VARCHAR(128)").await;
    db.exec("INSERT INTO shop.customers (id, name, alt_email) VALUES (100, 'Late', 'late.100.q6s@example.com'); UPDATE shop.customers SET alt_email = 'late.2.q6s@example.com' WHERE id = 2").await;
    pii.0.extend(["late.100.q6s@example.com".into(), "late.2.q6s@example.com".into()]);
    outs.push(sluice(&run_args, &debug).await);
    assert_eq!(outs[1].code, Some(0), "streaming run failed:\n{}", outs[1]);

    // What users look at: the lake, the events, the status, validate.
    let customers = query(&w, "SELECT * FROM shop.customers ORDER BY id", &mut outs).await;
    let subscribers = query(&w, "SELECT * FROM shop.subscribers", &mut outs).await;
    query(&w, "SELECT * FROM shop.customers__changes", &mut outs).await;
    query(&w, "SELECT * FROM shop.subscribers__changes", &mut outs).await;
    outs.push(w.sluice("tail", &["--from", "earliest", "--no-follow"]).await);
    outs.push(w.sluice("tail", &["--from", "earliest", "--no-follow", "--format", "dms"]).await);
    outs.push(w.sluice("status", &[]).await);
    let status = w.status().await;
    let validate = w.sluice("validate", &[]).await;
    assert_eq!(validate.code, Some(0), "validate (source masked like the lake) found differences:\n{validate}");
    outs.push(validate);

    // Masked forms are what the rules say.
    let c1 = &customers[0];
    assert_eq!(c1["email"], "c***@example.com", "{c1}");
    assert_eq!(c1["phone"], "+* *** *** 0177");
    assert!(c1.get("ssn").is_none(), "dropped column present: {c1}");
    assert_eq!(c1["contact"], "########", "detected EMAIL column is redacted");
    assert_eq!(c1["notes"], "Reach me at ######## or ########, card ########");
    let doc: Json = serde_json::from_str(c1["doc"].as_str().unwrap()).unwrap();
    assert_eq!(doc["backup"], "########");
    let late = customers.iter().find(|r| r["id"] == 100).unwrap();
    assert_eq!(late["alt_email"], "########", "a column added mid-stream is masked from its first row");
    assert_eq!(subscribers.len(), 32);
    assert!(subscribers.iter().all(|r| r["email"].as_str().is_some_and(|e| e.len() == 64)), "key column hashed: {subscribers:?}");
    assert_eq!(status["pii_detection"]["shop.customers.contact"]["state"], "masked", "{status}");
    assert_eq!(status["pii_detection"]["shop.customers.contact"]["entity"], "EMAIL");
    assert_eq!(status["pii_detection"]["shop.customers.name"]["state"], "clear");

    // The scan.
    let mut written = Vec::new();
    everything_written(w.path(), &["sluice.toml", "mask.key"], &mut written);
    for (i, o) in outs.iter().enumerate() {
        written.push((format!("command {i} stdout"), o.stdout.clone().into_bytes()));
        written.push((format!("command {i} stderr"), o.stderr.clone().into_bytes()));
    }
    let bytes: usize = written.iter().map(|(_, b)| b.len()).sum();
    let leaks: Vec<String> =
        written.iter().flat_map(|(place, b)| pii.0.iter().filter(|v| contains(b, v)).map(move |v| format!("{v:?} in {place}"))).collect();
    println!("scanned {} places, {bytes} bytes, for {} raw values: {} leaks", written.len(), pii.0.len(), leaks.len());
    assert!(written.iter().any(|(p, _)| p.ends_with("(decoded)")), "no parquet file was decoded");
    assert!(leaks.is_empty(), "raw PII written:\n{}", leaks.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_without_a_key_is_a_startup_error_and_writes_nothing() {
    let db = MariaDb::start();
    db.create_db("shop").await;
    db.exec("CREATE TABLE shop.t (id INT PRIMARY KEY, email VARCHAR(64)); INSERT INTO shop.t VALUES (1, 'x@example.com')").await;
    let text = config(&db).replace("method = \"email\"", "method = \"hash\"").replace("[mask_key]\nfile = \"mask.key\"\n", "");
    let w = Workdir::with_config(&text);
    let out = sluice(&["run", "-c", &w.config_str(), "--once"], &[("SLUICE_MASK_KEY", "")]).await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("SLUICE_MASK_KEY"), "{out}");
    assert!(!w.path().join("lake").exists() && !w.events_path().exists() && !w.state_file().exists(), "something was written");
    // A key that is too short is refused as well.
    let out = sluice(&["run", "-c", &w.config_str(), "--once"], &[("SLUICE_MASK_KEY", "short")]).await;
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("at least 16"), "{out}");
}
