//! MySQL/MariaDB source: server checks, consistent snapshot, binlog reader, schema tracking.
pub mod binlog;
pub mod charset;
pub mod check;
pub mod conn;
pub mod decode;
pub mod layout;
pub mod position;
pub mod schema;
pub mod snapshot;
pub mod source;

pub use source::MysqlSource;
