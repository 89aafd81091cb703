//! Rows events of the replication stream decoded on two cores: while a group of events is
//! decoded on tokio's blocking pool, the reader goes on framing the next events and decodes
//! them itself. Decoding needs nothing from earlier events ([`Decoded`]); the changes are
//! numbered (`seq`) only when they leave the queue, strictly in binlog order, so commit order
//! and `seq` are exactly those of a decoder on one core.
use std::collections::VecDeque;
use std::sync::Arc;

use mysql_async::binlog::events::{Event, EventData};
use sluice_core::event::SourceInfo;
use sluice_core::{ChangeEvent, SluiceError};
use tokio::task::JoinHandle;

use crate::binlog::Cursor;
use crate::layout::Layout;
use crate::rowimage::{decode_event, Decoded};

/// Bytes of rows events handed to the other core at once: enough to amortise the hand-over
/// (tens of microseconds), small enough that both cores stay busy within one transaction.
const GROUP_BYTES: usize = 64 << 10;

/// One rows event and what its changes carry.
pub(crate) struct RowsJob {
    pub event: Event,
    pub layout: Arc<Layout>,
    pub info: Arc<SourceInfo>,
    pub tx: Arc<str>,
    pub ts_ms: i64,
}

type Results = Vec<(Result<Decoded, SluiceError>, RowsJob)>;

enum Group {
    Done(Results),
    Running(JoinHandle<Results>),
}

/// Rows events in binlog order, decoded or being decoded.
#[derive(Default)]
pub(crate) struct RowsQueue {
    groups: VecDeque<Group>,
    /// Events waiting to be handed over together (always the newest).
    staging: Vec<RowsJob>,
    staged_bytes: usize,
}

fn decode(job: &RowsJob) -> Result<Decoded, SluiceError> {
    match job.event.read_data() {
        Ok(Some(EventData::RowsEvent(re))) => decode_event(&re, &job.layout, &job.info),
        _ => Err(SluiceError::permanent(format!("undecodable rows event at {}:{}", job.info.file, job.info.pos))),
    }
}

fn decode_all(jobs: Vec<RowsJob>) -> Results {
    jobs.into_iter().map(|j| (decode(&j), j)).collect()
}

impl RowsQueue {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.staging.is_empty()
    }

    /// Queues a rows event: with the next group for the other core when it is free, else
    /// decoded here and now.
    pub fn push(&mut self, job: RowsJob) {
        let running = self.groups.iter().any(|g| matches!(g, Group::Running(_)));
        if running {
            let done = vec![(decode(&job), job)];
            self.groups.push_back(Group::Done(done));
            return;
        }
        self.staged_bytes += job.event.data().len();
        self.staging.push(job);
        if self.staged_bytes >= GROUP_BYTES {
            let jobs = std::mem::take(&mut self.staging);
            self.staged_bytes = 0;
            self.groups.push_back(Group::Running(tokio::task::spawn_blocking(move || decode_all(jobs))));
        }
    }

    /// Numbers the decoded changes into `out` in binlog order: every queued event when `all`
    /// (waiting for the other core), else those ready at the front. The first error ends it.
    pub async fn settle(&mut self, all: bool, cursor: &mut Cursor, out: &mut Vec<ChangeEvent>) -> Result<(), SluiceError> {
        loop {
            let results = match self.groups.pop_front() {
                Some(Group::Done(r)) => r,
                Some(Group::Running(h)) if all || h.is_finished() => {
                    h.await.map_err(|_| SluiceError::permanent("the row decoding task failed"))?
                }
                Some(running) => {
                    self.groups.push_front(running);
                    return Ok(());
                }
                None if all && !self.staging.is_empty() => {
                    self.staged_bytes = 0;
                    decode_all(std::mem::take(&mut self.staging))
                }
                None => return Ok(()),
            };
            for (decoded, job) in results {
                decoded?.emit(&job.layout, cursor, &job.info, &job.tx, job.ts_ms, out);
            }
        }
    }
}
