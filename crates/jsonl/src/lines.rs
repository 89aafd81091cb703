//! Complete lines of a file that another process appends to (and may truncate).
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use crate::tail::TailFrom;

/// Complete lines of a growing file.
pub(crate) struct Lines {
    reader: BufReader<File>,
    /// File offset just past what was read into `buf`.
    pos: u64,
    /// The current line; while at the end of the file, the partial line read so far.
    buf: Vec<u8>,
    /// `buf` holds a complete line that was handed out.
    handed_out: bool,
    /// Reading started inside a line: drop bytes up to its end.
    skip_partial: bool,
}

impl Lines {
    pub(crate) fn new(file: File, from: TailFrom) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let reader = BufReader::with_capacity(256 * 1024, file);
        let mut lines = Self { reader, pos: 0, buf: Vec::new(), handed_out: false, skip_partial: false };
        if from == TailFrom::Latest {
            lines.seek_to(len)?;
        }
        Ok(lines)
    }

    /// The next complete line and its offset, or `None` at the end of the complete lines.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if self.handed_out {
                self.buf.clear();
                self.handed_out = false;
            }
            let n = self.reader.read_until(b'\n', &mut self.buf)?;
            self.pos += n as u64;
            if self.buf.last() != Some(&b'\n') {
                return Ok(None);
            }
            self.handed_out = true;
            if std::mem::take(&mut self.skip_partial) {
                continue;
            }
            return Ok(Some((self.pos - self.buf.len() as u64, &self.buf)));
        }
    }

    /// Called at the end of the file while following: notices the pipeline truncating the file
    /// back to its last commit (after a crash), also when it has grown again since.
    pub(crate) fn check_rewritten(&mut self) -> io::Result<()> {
        let len = self.reader.get_ref().metadata()?.len();
        let line_start = self.pos - self.buf.len() as u64;
        if len < self.pos {
            self.seek_to(len)
        } else if len > self.pos && line_start > 0 {
            // Re-read from the current line start: `seek_to` checks that a line still ends there.
            self.seek_to(line_start)
        } else {
            Ok(())
        }
    }

    /// Continues reading at `offset`, skipping to the next line start if that is inside a line.
    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        self.buf.clear();
        self.handed_out = false;
        let mut last = [b'\n'];
        if offset > 0 {
            self.reader.seek(SeekFrom::Start(offset - 1))?;
            match self.reader.read_exact(&mut last) {
                // Truncated again meanwhile: the next check sees it; print no fragment until then.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => last[0] = 0,
                r => r?,
            }
        }
        self.skip_partial = last[0] != b'\n';
        self.reader.seek(SeekFrom::Start(offset))?;
        self.pos = offset;
        Ok(())
    }
}
