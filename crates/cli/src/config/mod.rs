//! The configuration of the `sluice` binary: core's sections, the MySQL source's `[source]`
//! (a server, or binlog files), and
//! the sinks this binary has. Adding a sink is its crate plus one line in [`sinks!`]'s call.
use std::path::Path;

use serde::Deserialize;
use sluice_core::config::SinkSettings;
use sluice_core::sink::SinkConfig;

pub type Config = sluice_core::config::Config<sluice_mysql::SourceConfig, Sinks>;

/// Declares the `[sink.*]` sections: a field per sink, in delivery order (cheap sinks first).
macro_rules! sinks {
    ($($name:ident: $ty:ty),* $(,)?) => {
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Sinks {
            $(pub $name: Option<$ty>,)*
        }

        impl Sinks {
            /// The configured sinks, in delivery order.
            pub fn configured(&self) -> Vec<&dyn SinkConfig> {
                let mut all: Vec<&dyn SinkConfig> = Vec::new();
                $(if let Some(s) = &self.$name { all.push(s); })*
                all
            }

            fn configured_mut(&mut self) -> Vec<&mut dyn SinkConfig> {
                let mut all: Vec<&mut dyn SinkConfig> = Vec::new();
                $(if let Some(s) = &mut self.$name { all.push(s); })*
                all
            }
        }
    };
}

sinks! {
    jsonl: sluice_jsonl::JsonlConfig,
    kinesis: sluice_kinesis::KinesisConfig,
    kafka: sluice_kafka::KafkaConfig,
    lake: sluice_lake::LakeConfig,
}

impl SinkSettings for Sinks {
    fn validate(&self) -> Result<(), String> {
        self.configured().iter().try_for_each(|s| s.validate())
    }

    fn resolve_paths(&mut self, base: &Path) {
        for s in self.configured_mut() {
            s.resolve_paths(base);
        }
    }

    /// The lake is the default sink: with no sink configured at all, a lake at `./lake` (next
    /// to the config) is used.
    fn default_sinks(&mut self) {
        if self.configured().is_empty() {
            self.lake = Some(sluice_lake::LakeConfig::default());
        }
    }
}

#[cfg(test)]
mod tests;
