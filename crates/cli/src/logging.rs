//! Structured logs on stderr. `SLUICE_LOG` (or `RUST_LOG`) sets the filter: a bare level
//! (`debug`) is sluice's own level, dependencies staying at `warn`; a full filter (anything with
//! `=` or `,`, e.g. `info,deltalake_core=debug`) is used as given. Default: `info`.
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Targets are matched by prefix, so `sluice` covers the binary and every `sluice_*` crate.
const OWN: &str = "sluice";

/// Quiet whatever the level: the kernel logs an expected "no files in log segment" error for
/// every table not created yet, and delta-rs's MERGE warns "Missing target skipped-file metric"
/// on every merge (its scan reports no such metric; the count it derives only feeds the
/// commit's statistics). Only that module's metric warnings are hidden: its `source_stats`
/// submodule keeps its own.
const QUIRKS: &str = "delta_kernel=off,buoyant_kernel=off,deltalake_core::operations::merge=error,\
deltalake_core::operations::merge::source_stats=warn";

/// The filter directives for the `SLUICE_LOG` / `RUST_LOG` value `env` (none: `info`).
pub fn directives(env: Option<&str>) -> String {
    let env = env.map(str::trim).filter(|e| !e.is_empty()).unwrap_or("info");
    if env.contains('=') || env.contains(',') {
        return env.to_string();
    }
    let own = env.to_ascii_lowercase();
    // Dependencies at warn, or quieter if sluice itself is asked to be (`error`, `off`).
    let deps = if matches!(own.as_str(), "error" | "off") { own.as_str() } else { "warn" };
    format!("{deps},{OWN}={own},{QUIRKS}")
}

pub fn init(json: bool) {
    let env = std::env::var("SLUICE_LOG").or_else(|_| std::env::var("RUST_LOG")).ok();
    let filter = EnvFilter::try_new(directives(env.as_deref())).unwrap_or_else(|e| {
        eprintln!("warning: SLUICE_LOG={}: {e}; using the default (info)", env.as_deref().unwrap_or_default());
        EnvFilter::new(directives(None))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Machine-readable lines say which crate logged; text lines stay short.
        .with_target(json)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_level_is_sluices_own_and_dependencies_stay_at_warn() {
        assert!(directives(None).starts_with("warn,sluice=info,"), "{}", directives(None));
        assert!(directives(Some("debug")).starts_with("warn,sluice=debug,"));
        assert!(directives(Some(" TRACE ")).starts_with("warn,sluice=trace,"));
        assert!(directives(Some("error")).starts_with("error,sluice=error,"));
        assert!(directives(Some("")).starts_with("warn,sluice=info,"));
        for d in [directives(None), directives(Some("debug"))] {
            assert!(d.contains("deltalake_core::operations::merge=error"), "{d}");
            assert!(EnvFilter::try_new(&d).is_ok(), "{d}");
        }
    }

    #[test]
    fn a_full_filter_is_used_as_given() {
        assert_eq!(directives(Some("info,deltalake_core=debug")), "info,deltalake_core=debug");
        assert_eq!(directives(Some("sluice_lake=trace")), "sluice_lake=trace");
        assert_eq!(directives(Some("warn,datafusion=info")), "warn,datafusion=info");
    }
}
