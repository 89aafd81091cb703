//! Why a binlog file cannot be read.
use sluice_core::SluiceError;

/// Names the file and offset, never a row value.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{pattern} matches no file")]
    NoMatch { pattern: String },
    #[error("{pattern} is not a valid file pattern: {why}")]
    BadPattern { pattern: String, why: &'static str },
    #[error("{a} and {b} have the same file name: positions name files by name, so list only one")]
    SameName { a: String, b: String },
    #[error("{path} is not a binlog file: it does not start with the binlog magic bytes (\\xfe bin)")]
    NotBinlog { path: String },
    #[error(
        "truncated event at {file}:{pos}: the file ends {missing} bytes before the event does (a file copied while it was written, or cut)"
    )]
    Truncated { file: String, pos: u64, missing: u64 },
    #[error("checksum mismatch in the event at {file}:{pos}: the file is corrupt")]
    Checksum { file: String, pos: u64 },
    #[error("corrupt binlog at {file}:{pos}: {what}")]
    Corrupt { file: String, pos: u64, what: String },
    #[error(
        "statement-based change at {file}:{pos}{table}: the binlog was written with binlog_format=STATEMENT or MIXED, whose changes are SQL \
         text, not rows; sluice reads row events only (binlog_format=ROW)"
    )]
    StatementBased { file: String, pos: u64, table: String },
    #[error("unsupported event at {file}:{pos}: {what}")]
    Unsupported { file: String, pos: u64, what: &'static str },
    #[error("cannot parse the event at {file}:{pos}")]
    Parse {
        file: String,
        pos: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("the binlog library failed on the event at {file}:{pos} (a corrupt or unsupported event)")]
    Panicked { file: String, pos: u64 },
    #[error(
        "the state's position is in {file}, which [source] files no longer lists: list it again, or remove the state dir to replay from the first file"
    )]
    ResumeFileGone { file: String },
}

impl From<FileError> for SluiceError {
    /// The message is the error's own; its cause (an I/O or parse error) stays the source, so
    /// a printed chain shows each once.
    fn from(e: FileError) -> Self {
        let err = SluiceError::permanent(e.to_string());
        match e {
            FileError::Io { source, .. } | FileError::Parse { source, .. } => err.with_source(source),
            _ => err,
        }
    }
}
