//! The source contract.
use async_trait::async_trait;
use tokio::sync::{mpsc, watch};

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::event::ChangeEvent;
use crate::{SluiceError, TableId};

/// What a source sends to the pipeline, in order.
#[derive(Debug)]
pub enum SourceMsg {
    /// Row changes in commit order, `seq` strictly increasing.
    Events(Vec<ChangeEvent>),
    /// Everything sent before this forms whole transactions: resuming here repeats and loses
    /// nothing. Sent after every transaction and on idle heartbeats.
    Checkpoint(Checkpoint),
    /// The source is at the end of the server's log: nothing is waiting (lag is 0). Sent on
    /// idle heartbeats; any later `Events` means it is reading again.
    Idle,
    /// The source reached the end of the log as it was when the run started (`run --once`).
    CaughtUp,
    /// Full-load progress, for operators: a table's read started (with the server's row
    /// estimate) or ended. Rows themselves arrive as `Events` with `Op::Read`.
    FullLoad { table: TableId, estimated_rows: u64, done: bool },
    /// A table was dropped, truncated or renamed, after the events sent before this and before
    /// those after (DDL commits on its own: no transaction is open).
    TableDdl(crate::schema::TableDdl),
    /// The source hit a failure it is retrying (a lost connection); for operators only.
    Retrying(SluiceError),
}

/// A change-data source.
///
/// Contract: `run` sends events in commit order with gap-free, strictly increasing `seq`
/// starting at `resume.next_seq`, interleaved with checkpoints at transaction boundaries. It
/// handles transient failures itself (reconnect with backoff, resume from its last checkpoint,
/// suppress what it already sent), and returns an error only when it cannot go on. It returns
/// `Ok(())` when `out` is closed. `committed` tells it which checkpoint every sink has made
/// durable (a source whose server keeps a position for it, like a PostgreSQL slot, confirms it
/// from there; others may report it).
#[async_trait]
pub trait Source: Send {
    /// Called before `run` when a sink already holds changes up to `seq`, beyond the resume
    /// checkpoint. Exact replays (the binlog) reproduce the same `seq`s and may ignore it; a
    /// source that re-reads differently (a resumed snapshot) must number from `seq + 1`.
    fn sinks_hold_up_to(&mut self, _seq: u64) {}
    /// Called before `run`: where `sluice snapshot --table` leaves its requests. A source that
    /// can re-read a table while streaming takes them between transactions (and clears each
    /// once done); others ignore them.
    fn snapshot_requests(&mut self, _requests: crate::requests::SnapshotRequests) {}
    async fn run(
        self: Box<Self>,
        resume: Option<Checkpoint>,
        out: mpsc::Sender<SourceMsg>,
        committed: watch::Receiver<Option<Checkpoint>>,
    ) -> Result<()>;
}
