//! MySQL/MariaDB source: server checks, consistent or watermark snapshot, binlog reader, schema tracking.
pub mod binlog;
pub mod charset;
pub mod check;
pub mod claim;
pub mod config;
pub mod conn;
mod ddl;
pub mod decode;
mod events;
pub mod file;
pub mod layout;
pub mod position;
mod progress;
pub mod rowimage;
mod rowqueue;
pub mod schema;
pub mod snapshot;
pub mod source;
pub mod watermark;

pub use config::{MysqlConfig, SourceConfig};
pub use file::{BinlogFileConfig, BinlogFileSource};

/// Debezium's `source.connector` for changes read by this source.
pub const CONNECTOR: &str = "mysql";
pub use source::MysqlSource;
