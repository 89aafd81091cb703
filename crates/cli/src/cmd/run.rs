use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;
use anyhow::{bail, Context};
use sluice_core::pipeline::{Pipeline, SinkSpec, Stopped};
use sluice_core::sink::SinkConfig;
use sluice_core::source::Source;
use sluice_core::state::StateStore;
use sluice_core::stats::Stats;
use sluice_core::transform::Transform;
use sluice_mysql::{BinlogFileSource, MysqlSource, SourceConfig};
use sluice_transform::Masker;
use tracing::info;

pub async fn run(path: &Path, once: bool) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(path)?;
    let transforms = build_transforms(&cfg)?;
    let (source, _claim, sinks, store): (Box<dyn Source>, _, _, _) = match &cfg.source {
        SourceConfig::Mysql(server) => {
            super::check::preflight(&cfg).await?;
            // Held until the pipeline ends: a second sluice with this server_id is refused meanwhile.
            let claim = sluice_mysql::claim::claim_server_id(server).await?;
            let sinks = build_sinks(&cfg)?;
            let store = StateStore::open_locked(&cfg.state.dir)?;
            super::gaps::refuse_gaps(&cfg, &store.load()?).await?;
            let sealer = cfg.snapshot_sealer().map_err(anyhow::Error::msg)?;
            (Box::new(MysqlSource::new(server.clone(), cfg.snapshot.clone(), sealer)), Some(claim), sinks, store)
        }
        // No server to check or claim; the files are the whole history, so there is no snapshot.
        SourceConfig::BinlogFile(files) => {
            if cfg.snapshot.mode != sluice_core::config::SnapshotMode::Initial {
                tracing::warn!(
                    "[snapshot] does not apply to [source] kind = \"binlog-file\": the files are read from where the state says"
                );
            }
            let sinks = build_sinks(&cfg)?;
            let store = StateStore::open_locked(&cfg.state.dir)?;
            let fill = "start over with an empty state dir (the files are read again from the first, into every sink)";
            super::gaps::refuse_added_sinks(&cfg, &store.load()?, fill)?;
            (Box::new(BinlogFileSource::new(files.clone())), None, sinks, store)
        }
    };
    let capture = Some(super::gaps::capture(&cfg));
    let stats = Stats::default();
    let server = match &cfg.http {
        Some(http) => Some(crate::http::serve(http, stats.clone()).await?),
        None => None,
    };
    let pipeline = Pipeline { source, transforms, sinks, store, once, stats, capture };
    let stopped = pipeline.run(shutdown_signal()).await.context("pipeline stopped");
    if let Some(server) = server {
        server.abort();
    }
    let stopped = stopped?;
    match stopped {
        Stopped::CaughtUp => info!("caught up with the binlog end seen at start (--once)"),
        Stopped::Shutdown => info!("shut down on signal"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Masking runs before every sink; a missing key for `hash` fails here, before anything runs.
pub(crate) fn build_transforms(cfg: &Config) -> anyhow::Result<Vec<Box<dyn Transform>>> {
    let mut transforms: Vec<Box<dyn Transform>> = Vec::new();
    if let Some(m) = Masker::from_config(cfg)? {
        transforms.push(Box::new(m));
    }
    Ok(transforms)
}

fn build_sinks(cfg: &Config) -> anyhow::Result<Vec<SinkSpec>> {
    let sinks = cfg.sink.configured().iter().map(|s| build_sink(*s)).collect::<Result<Vec<_>, _>>()?;
    if sinks.is_empty() {
        bail!("no sink configured: add [sink.lake] or [sink.jsonl]");
    }
    Ok(sinks)
}

/// A sink, its errors prefixed with its section unless they name it already.
fn build_sink(s: &dyn SinkConfig) -> anyhow::Result<SinkSpec> {
    let section = format!("[sink.{}]", s.name());
    s.build().map_err(|e| if e.message.starts_with(&section) { e.into() } else { anyhow::Error::new(e).context(section) })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
