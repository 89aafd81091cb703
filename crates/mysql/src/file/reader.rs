//! Events of one binlog file, framed here and parsed by mysql_common.
//!
//! The framing (header, size, bounds, checksum) is done before mysql_common sees an event: its
//! `Event::read` panics on an event cut short and its file iterator takes a cut event for the end
//! of the file. Transaction payloads (compressed transactions) are expanded in place: their inner
//! events come out one by one, at the payload's position.
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use mysql_common::binlog::consts::{BinlogChecksumAlg, BinlogVersion, EventType};
use mysql_common::binlog::events::{Event, TransactionPayloadEvent};
use mysql_common::binlog::EventStreamReader;

use super::config::MAGIC;
use super::FileError;

/// Common header of every event: timestamp, type, server id, size, log pos, flags.
const HEADER_LEN: usize = 19;
/// Larger than any event a server writes (max_allowed_packet is at most 1 GiB).
const MAX_EVENT: u64 = 1 << 30;

/// An event and where it is in the file.
pub struct Located {
    pub event: Event,
    /// Offset of the event (of the transaction payload holding it, for inner events).
    pub pos: u64,
    /// Offset just after it: where reading resumes.
    pub end: u64,
}

pub struct EventFile {
    name: String,
    input: BufReader<File>,
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    events: EventStreamReader,
    /// Inner events of the transaction payload being expanded, and its pos/end.
    inner: VecDeque<Event>,
    inner_at: (u64, u64),
}

impl EventFile {
    /// Opens `path`, reads its format description event and moves to `from` (4: the start).
    pub fn open(path: &Path, from: u64) -> Result<Self, FileError> {
        let name = super::file_name(path);
        let io = |source| FileError::Io { path: path.display().to_string(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut input = BufReader::with_capacity(1 << 16, file);
        let mut magic = [0u8; 4];
        if len < 4 || input.read_exact(&mut magic).is_err() || magic != MAGIC {
            return Err(FileError::NotBinlog { path: path.display().to_string() });
        }
        let mut f = Self {
            name,
            input,
            len,
            pos: 4,
            buf: Vec::new(),
            events: EventStreamReader::new(BinlogVersion::Version4),
            inner: VecDeque::new(),
            inner_at: (0, 0),
        };
        let first = f.next()?.ok_or_else(|| f.corrupt(4, "the file holds no event"))?;
        if first.event.header().event_type_raw() != EventType::FORMAT_DESCRIPTION_EVENT as u8 {
            return Err(f.corrupt(4, "the first event is not a format description event (binlogs older than MySQL 5.0 are not supported)"));
        }
        if from > f.pos {
            if from > len {
                return Err(f.corrupt(from, "the resume position is past the end of the file (was the file replaced?)"));
            }
            f.input.seek(SeekFrom::Start(from)).map_err(io)?;
            f.pos = from;
        }
        Ok(f)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Offset of the next event, and the size of the file.
    pub fn at(&self) -> (u64, u64) {
        (self.pos, self.len)
    }

    /// The table map mysql_common's row decoding needs (the row decoder's tests compare with it).
    #[cfg(test)]
    pub fn table_map(&self, table_id: u64) -> Option<&mysql_common::binlog::events::TableMapEvent<'static>> {
        self.events.get_tme(table_id)
    }

    /// The next event; `None` at the end of the file.
    pub fn next(&mut self) -> Result<Option<Located>, FileError> {
        if let Some(event) = self.inner.pop_front() {
            let (pos, end) = self.inner_at;
            return Ok(Some(Located { event, pos, end }));
        }
        let pos = self.pos;
        if pos >= self.len {
            return Ok(None);
        }
        let left = self.len - pos;
        if left < HEADER_LEN as u64 {
            return Err(FileError::Truncated { file: self.name.clone(), pos, missing: HEADER_LEN as u64 - left });
        }
        let mut header = [0u8; HEADER_LEN];
        self.input.read_exact(&mut header).map_err(|e| self.io(e))?;
        let size = u64::from(u32::from_le_bytes([header[9], header[10], header[11], header[12]]));
        if size < HEADER_LEN as u64 + self.checksum_len() || size > MAX_EVENT {
            return Err(self.corrupt(pos, &format!("impossible event size {size}")));
        }
        if size > left {
            return Err(FileError::Truncated { file: self.name.clone(), pos, missing: size - left });
        }
        self.buf.clear();
        self.buf.extend_from_slice(&header);
        self.buf.resize(size as usize, 0);
        self.input.read_exact(&mut self.buf[HEADER_LEN..]).map_err(|e| self.io(e))?;
        self.pos += size;
        let end = self.pos;
        let event = self.events.read(&self.buf[..]).map_err(|e| self.parse(pos, e))?.ok_or_else(|| self.corrupt(pos, "empty event"))?;
        self.verify_checksum(&event, pos)?;
        if event.header().event_type_raw() == EventType::TRANSACTION_PAYLOAD_EVENT as u8 {
            self.expand_payload(&event, pos, end)?;
            return self.next();
        }
        Ok(Some(Located { event, pos, end }))
    }

    /// Decompresses a transaction payload and parses its events (the table maps among them are
    /// registered as they are read, before any rows event of the payload is decoded).
    fn expand_payload(&mut self, event: &Event, pos: u64, end: u64) -> Result<(), FileError> {
        let tpe: TransactionPayloadEvent<'_> = event.read_event().map_err(|e| self.parse(pos, e))?;
        let limit = tpe.uncompressed_size().min(MAX_EVENT * 4);
        let mut bytes = Vec::with_capacity(limit as usize);
        let mut reader = tpe.decompressed().map_err(|e| self.parse(pos, e))?;
        (&mut reader).take(limit + 1).read_to_end(&mut bytes).map_err(|e| self.parse(pos, e))?;
        if bytes.len() as u64 != tpe.uncompressed_size() {
            return Err(self.corrupt(pos, "the compressed transaction does not have the size its header says"));
        }
        let mut at = 0usize;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let size = rest.get(9..13).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
            let size = match size {
                Some(n) if n >= HEADER_LEN && n <= rest.len() => n,
                _ => return Err(self.corrupt(pos, "an event inside the compressed transaction is cut short")),
            };
            let inner = self.events.read_decompressed(&rest[..size]).map_err(|e| self.parse(pos, e))?;
            self.inner.extend(inner);
            at += size;
        }
        self.inner_at = (pos, end);
        Ok(())
    }

    /// CRC32 of the event as the format description declares (MySQL 5.6+ and MariaDB default).
    fn verify_checksum(&self, event: &Event, pos: u64) -> Result<(), FileError> {
        if let (Ok(Some(alg @ BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)), Some(stored)) =
            (event.footer().get_checksum_alg(), event.checksum())
        {
            if event.calc_checksum(alg) != u32::from_le_bytes(stored) {
                return Err(FileError::Checksum { file: self.name.clone(), pos });
            }
        }
        Ok(())
    }

    fn checksum_len(&self) -> u64 {
        match self.events.get_fde().footer().get_checksum_alg() {
            Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)) => 4,
            _ => 0,
        }
    }

    fn io(&self, source: std::io::Error) -> FileError {
        FileError::Io { path: self.name.clone(), source }
    }

    fn parse(&self, pos: u64, source: std::io::Error) -> FileError {
        FileError::Parse { file: self.name.clone(), pos, source }
    }

    fn corrupt(&self, pos: u64, what: &str) -> FileError {
        FileError::Corrupt { file: self.name.clone(), pos, what: what.to_string() }
    }
}
