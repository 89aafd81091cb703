//! Errors shared by sources and sinks, classified once so the retry decision lives in one place.

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// I/O, dropped connections, server restarts: reconnect with backoff and resume.
    Transient,
    /// Configuration, privileges, server settings, undecodable data, purged binlogs: stop and
    /// tell the operator what to fix.
    Permanent,
}

/// An error from a source or a sink. The message says what happened and what to do; it never
/// contains row values (they may be PII).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SluiceError {
    pub kind: ErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SluiceError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Permanent, message: message.into(), source: None }
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Transient, message: message.into(), source: None }
    }
    pub fn with_source(mut self, err: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(err));
        self
    }
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

pub type Result<T, E = SluiceError> = std::result::Result<T, E>;
