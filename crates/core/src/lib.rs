//! Core model of sluice: typed values and rows, table schemas, change events, checkpoints,
//! the `Source` / `Sink` contracts, configuration and the pipeline runner.
//!
//! Data flows one way: a [`source::Source`] yields ordered [`event::ChangeEvent`]s and resumable
//! [`checkpoint::Checkpoint`]s, transforms map events to events, and every [`sink::Sink`] writes them
//! and reports when they are durable. The [`pipeline`] commits a checkpoint only after every sink
//! has made everything before it durable.

pub mod checkpoint;
pub mod config;
pub mod encode;
pub mod error;
pub mod event;
pub mod pipeline;
pub mod requests;
pub mod retry;
pub mod schema;
pub mod seal;
pub mod sink;
pub mod source;
pub mod state;
pub mod stats;
pub mod tailing;
pub mod transform;
pub mod value;

pub use error::{ErrorKind, SluiceError};
pub use event::{ChangeEvent, Op};
pub use schema::{Column, SqlType, TableId, TableSchema};
pub use value::{Row, Value};
