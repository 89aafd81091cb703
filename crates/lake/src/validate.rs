//! `sluice validate`: the lake's current state against the source, row by row. Source rows go
//! through the same conversion as the sink, so equal data renders identically.
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use deltalake::arrow::array::Array;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};

const BUCKETS: usize = 64;

/// What the comparison found for one table.
#[derive(Debug, Default)]
pub struct Report {
    pub source_rows: u64,
    pub lake_rows: u64,
    /// Buckets (of 64, by key hash) whose checksums differ.
    pub differing_buckets: usize,
    /// Keys whose rows differ, are missing from the lake, or are only in the lake (first 20 each).
    pub differ: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.source_rows == self.lake_rows && self.differing_buckets == 0
    }
}

/// Lake rows by key, with per-bucket checksums on both sides.
pub struct Comparison {
    key_cols: Vec<String>,
    cols: Vec<String>,
    lake: HashMap<String, u64>,
    lake_sums: [u64; BUCKETS],
    source_sums: [u64; BUCKETS],
    report: Report,
}

fn rows(batch: &RecordBatch, cols: &[String]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default().with_null("∅");
    let arrays: Vec<&dyn Array> = cols.iter().filter_map(|c| batch.column_by_name(c).map(|a| a.as_ref())).collect();
    let fmts: Vec<ArrayFormatter<'_>> = arrays.iter().filter_map(|a| ArrayFormatter::try_new(*a, &opts).ok()).collect();
    (0..batch.num_rows()).map(|i| fmts.iter().map(|f| f.value(i).to_string()).collect()).collect()
}

fn hash(v: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

impl Comparison {
    /// `cols`: the user columns to compare (lake names); `key_cols`: the primary key.
    pub fn new(cols: Vec<String>, key_cols: Vec<String>) -> Self {
        Self { key_cols, cols, lake: HashMap::new(), lake_sums: [0; BUCKETS], source_sums: [0; BUCKETS], report: Report::default() }
    }

    fn key(&self, row: &[String]) -> String {
        self.key_cols.iter().filter_map(|k| self.cols.iter().position(|c| c == k)).map(|i| row[i].as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn add_lake(&mut self, batch: &RecordBatch) {
        for row in rows(batch, &self.cols) {
            let key = self.key(&row);
            let h = hash(&row);
            self.lake_sums[(hash(&key) % BUCKETS as u64) as usize] ^= h;
            self.lake.insert(key, h);
            self.report.lake_rows += 1;
        }
    }

    pub fn add_source(&mut self, batch: &RecordBatch) {
        for row in rows(batch, &self.cols) {
            let key = self.key(&row);
            let h = hash(&row);
            self.source_sums[(hash(&key) % BUCKETS as u64) as usize] ^= h;
            self.report.source_rows += 1;
            match self.lake.remove(&key) {
                Some(lh) if lh == h => {}
                Some(_) => push(&mut self.report.differ, key),
                None => push(&mut self.report.missing, key),
            }
        }
    }

    pub fn finish(mut self) -> Report {
        for key in self.lake.keys() {
            push(&mut self.report.extra, key.clone());
        }
        self.report.differing_buckets = self.lake_sums.iter().zip(&self.source_sums).filter(|(a, b)| a != b).count();
        self.report
    }
}

fn push(list: &mut Vec<String>, key: String) {
    if list.len() < 20 {
        list.push(key);
    }
}
