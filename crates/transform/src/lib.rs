//! Transforms that run once between the source and every sink.
//!
//! [`Masker`] protects PII: `[[mask]]` rules select columns by pattern, `[detect]` classifies text
//! columns by their content (like AWS Glue's sensitive-data detection). Masked values never reach
//! a sink, a log line, an error message or the state file: everything downstream only sees the
//! masked events this transform returns.
pub mod detect;
mod key;
mod masker;
pub mod method;
mod plan;

pub use key::MaskKey;
pub use masker::{Decision, Masker};
