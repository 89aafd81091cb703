//! Config errors: every command refuses a bad config with exit code 1 and one readable message
//! naming file:line and the key; secrets from `${ENV}` never appear in the output.
//! No database is needed: the url points at a closed port.
#![allow(clippy::unwrap_used)]
mod common;

use common::{closed_port, config_text, sluice, Out, Workdir};

const SECRET: &str = "Zq9-distinctive-Secret-Xk";

/// 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("`{needle}` not in config")) + 1
}

fn url() -> String {
    format!("mysql://sluice:sluice@127.0.0.1:{}", closed_port())
}

/// Exit code 1, nothing on stdout, exactly one non-empty line on stderr that names
/// `sluice.toml:<line>:` and contains every needle.
fn assert_config_error(out: &Out, line: usize, needles: &[&str]) {
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.trim().is_empty(), "nothing on stdout expected:\n{out}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one message expected:\n{out}");
    let msg = lines[0];
    assert!(msg.contains(&format!("sluice.toml:{line}:")), "file:line {line} expected in: {msg}");
    for n in needles {
        assert!(msg.contains(n), "`{n}` expected in: {msg}");
    }
}

async fn check(text: &str) -> Out {
    let w = Workdir::with_config(text);
    w.sluice("check", &[]).await
}

#[tokio::test]
async fn unknown_key_is_named_by_every_command_and_nothing_is_written() {
    let text = config_text(&url(), 6401, "").replace("server_id = 6401", "server_id = 6401\nserver_idd = 7");
    let line = line_of(&text, "server_idd");
    let w = Workdir::with_config(&text);
    for (cmd, args) in [("check", &[][..]), ("run", &["--once"][..]), ("status", &["--json"][..]), ("tail", &["--limit", "1"][..])] {
        let out = w.sluice(cmd, args).await;
        assert_config_error(&out, line, &["unknown field", "`server_idd`"]);
    }
    assert!(!w.events_path().exists(), "run wrote an events file");
    assert!(!w.path().join(".sluice").exists(), "run created the state dir");
}

#[tokio::test]
async fn unknown_section_is_named() {
    let text = config_text(&url(), 6401, "[sink.pulsar]\nservice_url = \"x\"\n");
    let out = check(&text).await;
    assert_config_error(&out, line_of(&text, "[sink.pulsar]"), &["pulsar"]);
}

#[tokio::test]
async fn bad_enum_value_is_named_with_its_choices() {
    let text = config_text(&url(), 6401, "[snapshot]\nmode = \"sometimes\"\n");
    let out = check(&text).await;
    assert_config_error(&out, line_of(&text, "sometimes"), &["mode", "`sometimes`", "initial", "never", "always"]);

    let text = config_text(&url(), 6401, "").replace("path = \"events.jsonl\"", "path = \"events.jsonl\"\nformat = \"avro\"");
    let out = check(&text).await;
    assert_config_error(&out, line_of(&text, "avro"), &["format", "`avro`", "debezium", "dms"]);
}

#[tokio::test]
async fn bad_duration_is_named() {
    let text = config_text(&url(), 6401, "").replace("flush_interval = \"100ms\"", "flush_interval = \"fast\"");
    let out = check(&text).await;
    assert_config_error(&out, line_of(&text, "fast"), &["flush_interval", "duration", "fast"]);

    let text = config_text(&url(), 6401, "").replace("heartbeat = \"200ms\"", "heartbeat = \"5 weeks\"");
    let out = check(&text).await;
    assert_config_error(&out, line_of(&text, "weeks"), &["heartbeat", "duration"]);
}

#[tokio::test]
async fn bad_size_is_named() {
    let text = config_text(&url(), 6401, "[sink.lake]\npath = \"lake\"\nflush_bytes = \"16MB\"\n");
    let out = check(&text).await;
    assert_config_error(&out, line_of(&text, "16MB"), &["flush_bytes", "`16MB`", "KiB, MiB or GiB"]);
    let small = check(&config_text(&url(), 6401, "[sink.lake]\npath = \"lake\"\nflush_bytes = \"64KiB\"\n")).await;
    assert_ne!(small.code, Some(0), "{small}");
    assert!(small.stderr.contains("flush_bytes must be at least \"1MiB\""), "{small}");
}

#[tokio::test]
async fn missing_env_var_is_named() {
    assert!(std::env::var("NOPE").is_err(), "this test needs NOPE unset");
    let text = config_text("mysql://sluice:${NOPE}@127.0.0.1:1", 6401, "");
    let out = check(&text).await;
    assert_config_error(&out, line_of(&text, "${NOPE}"), &["NOPE", "not set"]);
}

#[tokio::test]
async fn secret_is_never_echoed() {
    let url = format!("mysql://sluice:${{SLUICE_TEST_PW}}@127.0.0.1:{}", closed_port());
    let base = config_text(&url, 6401, "");
    let inline = |rest: &str| {
        let src = format!("source = {{ kind = \"mysql\", url = \"{url}\", {rest} }}\n");
        let mut lines: Vec<&str> = base.lines().collect();
        lines.splice(0..6, [src.trim_end()]);
        lines.join("\n") + "\n"
    };
    let cases = [
        // A syntax error after the secret on its line.
        base.replace(&format!("url = \"{url}\""), &format!("url = \"{url}\" trailing")),
        // Inline table: a bad value, an unknown key, a bad enum elsewhere on the secret's line.
        inline("server_id = 0, tables = [\"shop.*\"]"),
        inline("server_id = 5, tables = [\"shop.*\"], bogus = 1"),
        inline("server_id = 5, tables = [\"shop\"]"),
    ];
    for text in &cases {
        let w = Workdir::with_config(text);
        let out = check_with_secret(&w).await;
        assert_config_error(&out, line_of(text, "SLUICE_TEST_PW"), &[]);
        assert!(!out.all().contains(SECRET), "secret leaked:\n{out}");
        assert!(!out.all().contains("Zq9"), "part of the secret leaked:\n{out}");
    }

    // A valid config: the connection failure shows the url, redacted.
    let w = Workdir::with_config(&base);
    let out = check_with_secret(&w).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.contains("sluice:***@127.0.0.1"), "redacted url expected:\n{out}");
    assert!(!out.all().contains(SECRET), "secret leaked:\n{out}");
}

async fn check_with_secret(w: &Workdir) -> Out {
    let cfg = w.config_str();
    sluice(&["check", "-c", &cfg], &[("SLUICE_TEST_PW", SECRET)]).await
}

#[tokio::test]
async fn missing_config_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nope.toml");
    let out = sluice(&["check", "-c", &path.display().to_string()], &[]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("nope.toml"), "{out}");
}
