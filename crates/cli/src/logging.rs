//! Structured logs on stderr; `SLUICE_LOG` (or `RUST_LOG`) sets the filter, default `info`.
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// sluice's own info logs; the Delta/DataFusion stack only when something is wrong (the kernel
/// logs an expected "no files in log segment" error for every table not created yet).
const DEFAULT_FILTER: &str =
    "info,deltalake_core=warn,deltalake=warn,delta_kernel=off,buoyant_kernel=off,datafusion=warn,object_store=warn";

pub fn init(json: bool) {
    let filter = std::env::var("SLUICE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
