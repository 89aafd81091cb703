//! JSON lines: the `jsonl` sink (one encoded change event per line, in a file or on stdout) and
//! [`tail`], which reads such a file back, optionally following it as it grows.
//!
//! Delivery: to a file, exactly once across crashes — on restart the sink truncates the file back
//! to the length recorded at the last committed checkpoint, and the pipeline sends the events
//! after it again. On stdout nothing can be taken back, so delivery is at least once: events
//! after the last commit may be printed again after a crash.

mod config;
mod lines;
mod sink;
mod tail;

pub use config::JsonlConfig;
pub use sink::JsonlSink;
pub use tail::{tail, TailFrom, TailOptions};

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;
