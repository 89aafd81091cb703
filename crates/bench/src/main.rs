//! `sluice-bench`: the parts of `make bench` that need Rust. Each subcommand prints one JSON
//! object on stdout (progress and errors go to stderr); `scripts/bench.sh` collects them.
//!
//! - `decode`: read a recorded binlog range through sluice's own MySQL source (the same code
//!   path as `sluice run`, snapshot mode "never"), counting decoded row changes.
//! - `load`: a writer at a steady rate (or as fast as the server accepts) whose rows carry their
//!   send time in µs, while following the JSON-lines events file (commit → event) and polling
//!   `sluice query` (commit → queryable in the lake).
//! - `encode`: the JSON encoders alone on N reference users rows, Debezium and DMS (rows/s).
//! - `produce`: the lines of a file as Kafka records through librdkafka alone (the Kafka
//!   baseline).
mod decode;
mod encode;
mod load;
mod mask;
mod produce;
mod stats;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sluice-bench", about = "Benchmark drivers for make bench (JSON on stdout)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode a binlog range through sluice's MySQL source and report rows/s.
    Decode {
        /// Server URL of a user with REPLICATION SLAVE (e.g. mysql://root@127.0.0.1:3306).
        #[arg(long)]
        url: String,
        /// Captured table pattern(s) (`db.t`, globs allowed); rows of other tables are skipped.
        #[arg(long, required = true)]
        table: Vec<String>,
        /// Binlog file to start in, e.g. mysql-bin.000003.
        #[arg(long)]
        file: String,
        /// Start position in that file.
        #[arg(long, default_value_t = 4)]
        pos: u64,
        /// Replica server id of the binlog connection.
        #[arg(long, default_value_t = 6501)]
        server_id: u32,
    },
    /// Cost of the masking transform alone on N reference users rows (in process).
    Mask {
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// A sluice config (TOML) holding the [[mask]] / [detect] rules.
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Cost of the JSON encoders alone (Debezium and DMS lines) on N reference users rows.
    Encode {
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Runs of each format; the fastest is reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Skip the checksum of the output (a profile then shows the encoders alone).
        #[arg(long)]
        no_checksum: bool,
    },
    /// Produce the lines of a file as records of a Kafka topic (idempotent, acks=all) and report
    /// rows/s.
    Produce {
        #[arg(long)]
        brokers: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Write rows at a steady rate and measure commit → event and commit → queryable latency.
    #[command(alias = "latency")]
    Load(load::LoadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Decode { url, table, file, pos, server_id } => decode::run(&url, &table, &file, pos, server_id).await,
            Command::Load(args) => load::run(args).await,
            Command::Produce { brokers, topic, file } => produce::run(&brokers, &topic, &file).await,
            Command::Encode { rows, rounds, no_checksum } => encode::run(rows, rounds, !no_checksum),
            Command::Mask { rows, config } => {
                std::fs::read_to_string(&config).map_err(anyhow::Error::from).and_then(|c| mask::run(rows, &c))
            }
        }
    });
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sluice-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A path argument that must exist.
pub(crate) fn existing(p: &PathBuf) -> anyhow::Result<&PathBuf> {
    anyhow::ensure!(p.exists(), "{} does not exist", p.display());
    Ok(p)
}
