//! `sluice`: change data capture from MySQL/MariaDB to streams and lake tables.
//! This binary only parses arguments, wires the crates together and reports errors.
mod cmd;
mod config;
mod http;
mod logging;
mod memory;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Change data capture from MySQL/MariaDB: snapshot + binlog → JSON lines, streams and lake tables",
    long_about = "sluice captures every row change of the configured MySQL/MariaDB tables — an initial consistent \
snapshot, then the binlog — and delivers each change exactly once to its sinks. Positions are committed only \
after every sink has made the changes durable, so `sluice run` after a crash resumes with nothing lost or repeated.\n\n\
Start with `sluice check -c sluice.toml`, then `sluice run -c sluice.toml`. See examples/ and docs/."
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Snapshot as configured, then stream binlog changes to the sinks until stopped.
    ///
    /// Runs `check` first and refuses to start (writing nothing) if the server is not ready.
    /// SIGINT/SIGTERM: flush the sinks, commit the position, exit 0.
    Run {
        /// Config file (TOML).
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
        /// Stop after catching up with the binlog end seen at start (batch/cron use).
        #[arg(long)]
        once: bool,
    },
    /// Check config, connectivity, server settings and privileges; exit 1 on any problem.
    Check {
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
    },
    /// Print change events as JSON lines, as delivered (masked): from the [sink.jsonl] file or
    /// the lake's changelog tables, the Kinesis stream or the Kafka topics, following new ones
    /// unless --limit or --no-follow.
    Tail {
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
        /// What to read: the events file of [sink.jsonl], the lake's changelog tables, or every
        /// shard of the [sink.kinesis] stream, or every partition of the [sink.kafka] topics
        /// (`auto`: the events file when there is one).
        #[arg(long, value_enum, default_value_t = cmd::tail::Source::Auto)]
        source: cmd::tail::Source,
        /// Start at the first event kept (`earliest`) or only show new ones (`latest`).
        #[arg(long, value_enum, default_value_t = cmd::tail::From::Earliest)]
        from: cmd::tail::From,
        /// Stop after N events (otherwise follow until interrupted).
        #[arg(long)]
        limit: Option<usize>,
        /// Print the events there are now and exit instead of waiting for new ones.
        #[arg(long)]
        no_follow: bool,
        /// Only events of this table (`db.table`, globs allowed).
        #[arg(long)]
        table: Option<String>,
        /// Output encoding (default: debezium; for --source kinesis|kafka, as the stream carries
        /// it).
        #[arg(long, value_enum)]
        format: Option<cmd::tail::Format>,
    },
    /// Read tables again while streaming goes on (Debezium's incremental snapshot): a running
    /// `sluice run` takes the request within a second and reads the table in chunks by
    /// watermarks; with no run active, the next `sluice run` does. Every row arrives again as a
    /// snapshot read (`op` r); rows a sink holds that the source no longer has are not removed.
    Snapshot {
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
        /// A captured table (`db.table`); repeat for several.
        #[arg(long, required = true)]
        table: Vec<String>,
    },
    /// Show the committed position, lag and per-table statistics (like DMS table statistics).
    Status {
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run SQL over the lake: every captured table is `db.t` (current state) and `db.t__changes`
    /// (changelog with _cdc_op, _cdc_ts, _cdc_seq, _cdc_tx, _cdc_date).
    Query {
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
        /// The SQL statement, e.g. "SELECT * FROM demo.users LIMIT 10".
        sql: String,
        #[arg(long, value_enum, default_value_t = cmd::query::Format::Table)]
        format: cmd::query::Format,
    },
    /// Compare the source tables with the lake's current state (counts, checksums, differing
    /// keys); exit 1 on any mismatch.
    Validate {
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
        /// Only this table (`db.table`).
        #[arg(long)]
        table: Option<String>,
    },
    /// Lake utilities.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Print the statements that register the lake tables in Athena (Glue catalog) or Trino.
    Ddl {
        #[arg(short, long, default_value = "sluice.toml")]
        config: PathBuf,
        #[arg(long, value_enum)]
        engine: cmd::lake::Engine,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(matches!(cli.log_format, LogFormat::Json));
    if matches!(cli.command, Command::Run { .. }) {
        // Before the runtime's threads allocate, after logging so that a failure is heard
        // (docs/operations.md "Memory").
        memory::pin_thresholds();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run { config, once } => {
                // Memory bound against a little CPU (docs/operations.md "Memory").
                let var = std::env::var(memory::PERIOD_VAR).ok();
                if let Some(every) = memory::period(var.as_deref()).map_err(anyhow::Error::msg)? {
                    memory::trim_periodically(every);
                }
                cmd::run::run(&config, once).await
            }
            Command::Check { config } => cmd::check::run(&config).await,
            Command::Tail { config, source, from, limit, no_follow, table, format } => {
                cmd::tail::run(&config, cmd::tail::TailArgs { source, from, limit, follow: !no_follow, table, format }).await
            }
            Command::Status { config, json } => cmd::status::run(&config, json).await,
            Command::Snapshot { config, table } => cmd::snapshot::run(&config, &table).await,
            Command::Query { config, sql, format } => cmd::query::run(&config, &sql, format).await,
            Command::Validate { config, table } => cmd::validate::run(&config, table.as_deref()).await,
            Command::Lake { command: LakeCommand::Ddl { config, engine } } => cmd::lake::ddl(&config, engine).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
