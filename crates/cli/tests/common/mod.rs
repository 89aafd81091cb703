//! Helpers for the `sluice` binary's integration tests: a config file in a temp dir, running
//! the binary with a timeout (foreground or background), polling with a deadline, and reading
//! the events file back. Nothing here sleeps for a fixed time to "let things settle".
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod kafka;
pub mod kinesis;
pub mod lake;
pub mod moto;
pub mod tmpfs;
pub mod workload;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Generous: the machine may be busy building or running other servers.
pub const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// The standard test config for `url`: all of `shop.*`, a Debezium events file and a state
/// dir next to the config, quick commits. `extra` is appended verbatim (more sections).
pub fn config_text(url: &str, server_id: u32, extra: &str) -> String {
    format!(
        r#"[source]
kind = "mysql"
url = "{url}"
server_id = {server_id}
tables = ["shop.*"]
heartbeat = "200ms"

[sink.jsonl]
path = "events.jsonl"
flush_interval = "100ms"

[state]
dir = ".sluice"
{extra}"#
    )
}

/// A working directory holding `sluice.toml`; relative paths in it resolve here.
pub struct Workdir {
    pub dir: TempDir,
}

impl Workdir {
    pub fn with_config(text: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("sluice-cli-test-").tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sluice.toml"), text).expect("write config");
        Self { dir }
    }

    /// The standard config for `url` (see [`config_text`]).
    pub fn for_url(url: &str) -> Self {
        Self::with_config(&config_text(url, 6401, ""))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("sluice.toml")
    }

    pub fn config_str(&self) -> String {
        self.config().display().to_string()
    }

    pub fn events_path(&self) -> PathBuf {
        self.path().join("events.jsonl")
    }

    pub fn state_file(&self) -> PathBuf {
        self.path().join(".sluice").join("state.json")
    }

    /// Every complete line of the events file, parsed (empty if there is no file).
    pub fn events(&self) -> Vec<Json> {
        read_events(&self.events_path())
    }

    /// Runs `sluice <cmd> -c sluice.toml <args>` to completion.
    pub async fn sluice(&self, cmd: &str, args: &[&str]) -> Out {
        let mut all = vec![cmd, "-c"];
        let cfg = self.config_str();
        all.push(&cfg);
        all.extend_from_slice(args);
        sluice(&all, &[]).await
    }

    /// Starts `sluice <cmd> -c sluice.toml <args>` in the background; its stdout and stderr
    /// go to `<name>.out` / `<name>.err` in the work dir.
    pub fn spawn(&self, name: &str, cmd: &str, args: &[&str]) -> Bg {
        let mut all: Vec<String> = vec![cmd.into(), "-c".into(), self.config_str()];
        all.extend(args.iter().map(|a| a.to_string()));
        spawn_with_env(self.path(), name, &all, &[])
    }

    /// `status --json`, parsed.
    pub async fn status(&self) -> Json {
        let out = self.sluice("status", &["--json"]).await;
        assert_eq!(out.code, Some(0), "status failed:\n{out}");
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{out}"))
    }

    /// `run --once`, asserting success.
    pub async fn run_once(&self) -> Out {
        let out = self.sluice("run", &["--once"]).await;
        assert_eq!(out.code, Some(0), "run --once failed:\n{out}");
        out
    }
}

pub fn read_events(path: &Path) -> Vec<Json> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    parse_lines(&text)
}

/// Complete JSON lines of `text` (a trailing partial line is ignored).
pub fn parse_lines(text: &str) -> Vec<Json> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// `source.seq` of a Debezium event.
pub fn seq(ev: &Json) -> u64 {
    ev["source"]["seq"].as_u64().unwrap_or_else(|| panic!("no source.seq in {ev}"))
}

pub fn op(ev: &Json) -> &str {
    ev["op"].as_str().unwrap_or_else(|| panic!("no op in {ev}"))
}

/// The finished process: exit code (`None` if killed by a signal) and its output.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stdout and stderr together, for "does not appear anywhere" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {:?}\n--- stdout\n{}--- stderr\n{}---", self.code, self.stdout, self.stderr)
    }
}

fn base_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    // Plain info logs whatever the caller's environment says.
    cmd.env_remove("RUST_LOG").env("SLUICE_LOG", "info").env("NO_COLOR", "1").kill_on_drop(true);
    // AWS clients (the Kinesis sink) get dummy credentials for moto and never look for
    // instance metadata (an address off this machine).
    cmd.envs(kinesis::AWS_ENV);
    cmd
}

/// Starts `sluice <args>` in the background with extra `env`; its stdout and stderr go to
/// `<name>.out` / `<name>.err` in `dir`.
pub fn spawn_with_env(dir: &Path, name: &str, args: &[String], env: &[(&str, &str)]) -> Bg {
    let stdout = dir.join(format!("{name}.out"));
    let stderr = dir.join(format!("{name}.err"));
    let child = base_command()
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("create stderr file"))
        .spawn()
        .expect("spawn sluice");
    Bg { child, stdout, stderr, name: name.to_string() }
}

/// Runs the binary with `args` and extra `env`, killing it after [`DEADLINE`].
pub async fn sluice(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = base_command();
    cmd.args(args).envs(env.iter().copied()).stdin(Stdio::null());
    let fut = cmd.output();
    let out = tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("sluice {args:?} did not finish within {DEADLINE:?}"))
        .expect("run sluice");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A background `sluice` process.
pub struct Bg {
    pub child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub name: String,
}

impl Bg {
    pub fn pid(&self) -> u32 {
        self.child.id().expect("process still running")
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Panics (with its output) if the process already exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited early ({status}):\n--- stdout\n{}--- stderr\n{}", self.name, self.stdout_text(), self.stderr_text());
        }
    }

    /// Lets the process run for `after`, checks it is still running, kills it with SIGKILL and
    /// returns its output.
    pub async fn kill_9_after(mut self, after: Duration) -> Out {
        tokio::time::sleep(after).await;
        self.assert_running();
        let status = std::process::Command::new("kill").arg("-9").arg(self.pid().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -9 {} failed", self.pid());
        self.wait().await
    }

    pub fn sigterm(&self) {
        let status = std::process::Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the process to exit (killing it after [`DEADLINE`]) and returns its output.
    pub async fn wait(self) -> Out {
        self.wait_within(DEADLINE).await
    }

    /// Waits for the process to exit, killing it and panicking after `limit`.
    pub async fn wait_within(mut self, limit: Duration) -> Out {
        let status = match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(s) => s.expect("wait"),
            Err(_) => {
                let _ = self.child.kill().await;
                panic!("{} did not exit within {limit:?}:\n--- stderr\n{}", self.name, self.stderr_text());
            }
        };
        Out { code: status.code(), stdout: self.stdout_text(), stderr: self.stderr_text() }
    }
}

/// Polls `cond` until it holds, panicking with `what` after [`DEADLINE`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out after {DEADLINE:?} waiting for: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// The file offset of `pid`'s open descriptor on `path` (from /proc/PID/fdinfo), if it has one.
/// Lets a test know that `tail --from latest` has positioned itself at the end of the file.
pub fn fd_offset(pid: u32, path: &Path) -> Option<u64> {
    let target = path.canonicalize().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        if std::fs::read_link(fd.path()).ok().as_deref() != Some(target.as_path()) {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy())).ok()?;
        return info.lines().find_map(|l| l.strip_prefix("pos:")).and_then(|p| p.trim().parse().ok());
    }
    None
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The committed state as written by `run` (not via `status`), if any.
pub fn state_json(path: &Path) -> Option<Json> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The stream sinks' crash loop: the snapshot in a first `run --once` (a snapshot resumed after a
/// crash reads again at a new point, and its seqs do not repeat what was sent before:
/// docs/guarantees.md), then [`kill_9_rounds`] six times. Returns the number of transactions the
/// workload ran (more than 30).
pub async fn kill_9_loop(w: &Workdir, db: &sluice_testkit::MariaDb, seed: u64, kill_ms: std::ops::Range<u64>) -> u64 {
    w.run_once().await;
    let txs = kill_9_rounds(w, db, seed, 6, kill_ms).await;
    assert!(txs > 30, "the workload ran only {txs} transactions");
    txs
}

/// A random workload with key changes (seeded `seed`) while `run` is killed with kill -9
/// `rounds` times at random moments (`kill_ms` after each start), then a last `run --once`
/// that must succeed (within 4 minutes: the rest of a snapshot and the workload's backlog take
/// long on a busy machine). Returns the number of transactions the workload ran.
pub async fn kill_9_rounds(w: &Workdir, db: &sluice_testkit::MariaDb, seed: u64, rounds: usize, kill_ms: std::ops::Range<u64>) -> u64 {
    use rand::{Rng, SeedableRng};
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = workload::workload(db, stop.clone(), seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 1);
    for round in 0..rounds {
        let wait_ms = rng.gen_range(kill_ms.clone());
        w.spawn(&format!("run{round}"), "run", &[]).kill_9_after(Duration::from_millis(wait_ms)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let txs = writer.await.unwrap();
    let out = w.spawn("last", "run", &["--once"]).wait_within(Duration::from_secs(240)).await;
    assert_eq!(out.code, Some(0), "{out}");
    txs
}
