//! Errors shared by sources and sinks, classified once so the retry decision lives in one place
//! ([`crate::retry`]).

/// What kind of failure an error is; [`crate::retry::action`] maps each kind to what the
/// pipeline does (docs/guarantees.md has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// I/O errors, dropped connections, server restarts, timeouts, commit conflicts: retried
    /// with backoff until the component's `retry_for` deadline, then the pipeline stops.
    Transient,
    /// A resource that runs out and may come back: a full disk, a quota, throttling. Retried
    /// like `Transient` (an operator may grow the disk meanwhile), but reported as what it is.
    Exhausted,
    /// Configuration, credentials, privileges, server settings, undecodable data, purged
    /// binlogs: retrying cannot help. The pipeline stops and the message says what to fix.
    Permanent,
}

impl ErrorKind {
    /// The label used in logs and the `sluice_errors_total{kind}` metric.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::Permanent => "permanent",
        }
    }
}

/// An error from a source or a sink. The message says what happened and what to do; the
/// underlying error is kept as the `source` (printed once, by whoever prints the chain), never
/// copied into the message. Neither ever contains row values (they may be PII).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SluiceError {
    pub kind: ErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SluiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }
    pub fn exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Exhausted, message)
    }
    pub fn with_source(mut self, err: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(err));
        self
    }
    /// Whether retrying may help (see [`crate::retry::action`]).
    pub fn is_transient(&self) -> bool {
        crate::retry::action(self.kind) == crate::retry::Action::Retry
    }
    /// The message followed by its cause chain, each cause once: for logs.
    pub fn chain(&self) -> String {
        let mut s = self.message.clone();
        let mut cur = std::error::Error::source(self);
        while let Some(c) = cur {
            let text = c.to_string();
            if !s.ends_with(&text) {
                s.push_str(": ");
                s.push_str(&text);
            }
            cur = c.source();
        }
        s
    }
    /// The same error with `context` in front of its message (kind and cause kept).
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

pub type Result<T, E = SluiceError> = std::result::Result<T, E>;
