//! The lake: Delta tables on local disk or S3 — `db/t` (current state, merged by primary key)
//! and `db/t__changes` (changelog partitioned by `_cdc_date`) — written exactly once, and SQL
//! over them with DataFusion.
pub mod changelog;
pub mod config;
pub mod convert;
pub mod ddl;
pub mod query;
pub mod sink;
pub mod storage;
pub mod table;
pub mod validate;

pub use config::{LakeConfig, S3Config};
pub use sink::LakeSink;
pub use storage::Storage;

pub use deltalake;
