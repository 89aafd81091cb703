use std::path::Path;
use std::time::Duration;

use sluice_core::config::{ConfigError, SnapshotMode};

use super::*;

const GOOD: &str = r#"
[source]
kind = "mysql"
url = "mysql://sluice:${SLUICE_TEST_PW}@127.0.0.1:3306"
server_id = 6401
tables = ["shop.users", "shop.order*"]
exclude = ["shop.order_tmp"]

[snapshot]
mode = "never"

[sink.jsonl]
path = "events.jsonl"
format = "dms"
flush_interval = "250ms"
"#;

fn parse_with_env(text: &str) -> Result<Config, ConfigError> {
    std::env::set_var("SLUICE_TEST_PW", "s3cr\"et");
    Config::parse(text, "t.toml")
}

#[test]
#[allow(clippy::unwrap_used)]
fn parses_a_full_config() {
    let cfg = parse_with_env(GOOD).unwrap();
    assert_eq!(cfg.source.url.expose(), "mysql://sluice:s3cr\"et@127.0.0.1:3306");
    assert!(!format!("{cfg:?}").contains("s3cr"), "secret leaked in Debug");
    assert_eq!(cfg.snapshot.mode, SnapshotMode::Never);
    assert!(cfg.captures("shop", "orders") && cfg.captures("shop", "users"));
    assert!(!cfg.captures("shop", "order_tmp") && !cfg.captures("other", "users"));
    let jsonl = cfg.sink.jsonl.as_ref().unwrap();
    assert_eq!(jsonl.flush_interval.0, Duration::from_millis(250));
    assert_eq!(jsonl.retry_for.0, sluice_core::retry::RetryPolicy::DEFAULT_RETRY_FOR);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = GOOD.replace("mode = \"never\"", "mode = \"never\"\nfoo = 1");
    let err = parse_with_env(&text).unwrap_err().0;
    assert!(err.starts_with("t.toml:11:"), "{err}");
    assert!(err.contains("unknown field `foo`"), "{err}");
}

#[test]
fn bad_values_are_rejected_with_line() {
    let err = parse_with_env(&GOOD.replace("\"never\"", "\"sometimes\"")).unwrap_err().0;
    assert!(err.contains("t.toml:10:") && err.contains("sometimes"), "{err}");
    let err = parse_with_env(&GOOD.replace("\"250ms\"", "\"fast\"")).unwrap_err().0;
    assert!(err.contains("t.toml:15:") && err.contains("duration"), "{err}");
    let err = parse_with_env(&GOOD.replace("6401", "0")).unwrap_err().0;
    assert!(err.contains("t.toml:5:"), "{err}");
    let err = parse_with_env(&GOOD.replace("\"shop.users\"", "\"users\"")).unwrap_err().0;
    assert!(err.contains("t.toml:6:") && err.contains("db.table"), "{err}");
}

#[test]
fn missing_env_var_names_it() {
    let err = Config::parse(&GOOD.replace("SLUICE_TEST_PW", "SLUICE_SURELY_UNSET_VAR"), "t.toml").unwrap_err().0;
    assert!(err.contains("t.toml:4:") && err.contains("SLUICE_SURELY_UNSET_VAR"), "{err}");
}

#[test]
fn error_on_a_secret_line_does_not_show_the_secret() {
    let text = GOOD.replace("server_id = 6401", "server_id = 6401\nurl2 = \"${SLUICE_TEST_PW}\"");
    let err = parse_with_env(&text).unwrap_err().0;
    assert!(!err.contains("s3cr"), "{err}");
    assert!(err.contains("${SLUICE_TEST_PW}"), "{err}");
}

#[test]
fn the_examples_parse() {
    std::env::set_var("SLUICE_DB_PASSWORD", "x");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 3, "examples not found in {}", dir.display());
}

#[test]
fn mask_rules_are_validated() {
    let base = GOOD.to_string();
    let err = parse_with_env(&format!("{base}\n[[mask]]\ncolumns = [\"a.b.c\"]\nmethod = \"scramble\"\n")).unwrap_err();
    assert!(err.0.contains("scramble"), "{err}");
    let err = parse_with_env(&format!("{base}\n[[mask]]\ncolumns = [\"a.b.c\"]\nmethod = \"redact\"\nkeep = 2\n")).unwrap_err();
    assert!(err.0.contains("keep only applies"), "{err}");
    let err = parse_with_env(&format!("{base}\n[[mask]]\ncolumns = [\"a..c\"]\nmethod = \"redact\"\n")).unwrap_err();
    assert!(err.0.contains("invalid column pattern"), "{err}");
    let err = parse_with_env(&format!("{base}\n[detect]\nthreshold = 1.5\n")).unwrap_err();
    assert!(err.0.contains("threshold"), "{err}");
    let err = parse_with_env(&format!("{base}\n[detect]\nentities = [\"PASSPORT\"]\n")).unwrap_err();
    assert!(err.0.contains("PASSPORT"), "{err}");
    let cfg = parse_with_env(&format!("{base}\n[[mask]]\ncolumns = [\"*.phone\"]\nmethod = \"partial\"\nkeep = 2\n[detect]\n")).unwrap();
    assert_eq!(cfg.mask[0].keep, Some(2));
    assert_eq!(cfg.detect.unwrap().entities.len(), 6);
}

const KINESIS: &str = "\n[sink.kinesis]\nstream = \"cdc-users\"\nregion = \"us-east-1\"\n";

#[test]
#[allow(clippy::unwrap_used)]
fn kinesis_defaults_to_dms_partitioned_by_primary_key() {
    let cfg = parse_with_env(&format!("{GOOD}{KINESIS}")).unwrap();
    let k = cfg.sink.kinesis.as_ref().unwrap();
    assert_eq!(k.format, sluice_core::config::EventFormat::Dms);
    assert_eq!(k.partition_key, sluice_kinesis::PartitionKey::PrimaryKey);
    assert!(k.before_image && k.endpoint.is_none());
    assert_eq!(k.flush_interval.0, Duration::from_millis(100));
    let names: Vec<&str> = cfg.sink.configured().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["jsonl", "kinesis"]);
}

#[test]
fn kinesis_bad_values_are_named() {
    for (from, to, want) in [
        ("stream = \"cdc-users\"", "stream = \"cdc users\"", "is not a Kinesis stream name"),
        ("region = \"us-east-1\"", "region = \"\"", "region is empty"),
        ("region = \"us-east-1\"", "region = \"us-east-1\"\nendpoint = \"127.0.0.1:4566\"", "must be a URL starting with http://"),
        (
            "region = \"us-east-1\"",
            "region = \"us-east-1\"\npartition_key = \"id\"",
            "unknown variant `id`, expected `primary-key` or `schema-table`",
        ),
        ("region = \"us-east-1\"", "region = \"us-east-1\"\nformat = \"avro\"", "unknown variant `avro`"),
        ("region = \"us-east-1\"", "region = \"us-east-1\"\nshards = 2", "unknown field `shards`"),
    ] {
        let text = format!("{GOOD}{}", KINESIS.replace(from, to));
        let err = parse_with_env(&text).unwrap_err().0;
        assert!(err.contains(want), "{to}: {err}");
    }
}
