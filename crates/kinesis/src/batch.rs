//! Records waiting for the service's acknowledgement, and which of them the next PutRecords
//! call may carry without breaking per-key order.
//!
//! PutRecords gives no order within a call, and retrying only its failed entries reorders
//! records that share a partition key. So a call carries at most one unacknowledged record per
//! partition key: the earliest one. A later record of the same key goes in a later call, after
//! the earlier one was acknowledged; an entry that fails stays at its place and holds back its
//! key until a retry succeeds. An update that changes the primary key holds both keys (its old
//! row's earlier records go first). A control record (a table definition) goes alone, once
//! everything before it is acknowledged, and everything after it waits for it.
//!
//! Cost: a call holds as many records as there are distinct keys among the pending ones (up to
//! the limits). With `partition_key = "schema-table"` that is one record per table per call, a
//! round trip each.
use std::collections::{HashSet, VecDeque};

use sluice_core::encode::SchemaChange;
use sluice_core::sink::Batch;

/// Service limits of PutRecords (Kinesis Data Streams defaults).
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_CALL_BYTES: usize = 5 << 20;
/// Data plus partition key.
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// A partition key is at most 256 characters.
pub const MAX_PARTITION_KEY: usize = 256;
/// How far past the first pending record a call looks for records of other keys: bounds the
/// cost of planning a call behind a long run of one key.
const SCAN_LIMIT: usize = 20 * MAX_RECORDS_PER_CALL;

/// One encoded record.
#[derive(Debug)]
pub struct Record {
    /// The encoded change; empty while lent to a call (the SDK takes it by value), encoded
    /// again from `origin` if the call fails.
    pub data: Vec<u8>,
    /// `data`'s length as encoded.
    len: usize,
    pub key: String,
    /// The old row's key, for an update that changed the primary key.
    pub old_key: Option<String>,
    /// What it encodes. `None` only in tests.
    pub origin: Option<Origin>,
    /// The change's `seq` (for messages; never a value).
    pub seq: u64,
    /// A whole-table DDL's control record: no event to encode it again from, so its data is
    /// never lent to a call, and it is sent alone, like a table definition.
    table_ddl: bool,
}

/// The event a record encodes: its batch (shared, not copied) and index, and for a control
/// record the schema change it announces.
#[derive(Debug, Clone)]
pub struct Origin {
    pub batch: Batch,
    pub index: usize,
    pub control: Option<SchemaChange>,
}

impl Record {
    pub fn new(data: Vec<u8>, key: String, old_key: Option<String>, origin: Option<Origin>, seq: u64) -> Self {
        Self { len: data.len(), data, key, old_key, origin, seq, table_ddl: false }
    }

    /// The control record of a whole-table DDL, before the change numbered `next_seq`.
    pub fn table_ddl(data: Vec<u8>, key: String, next_seq: u64) -> Self {
        Self { table_ddl: true, ..Self::new(data, key, None, None, next_seq) }
    }

    /// A table definition: sent alone, in order with everything else.
    pub fn is_control(&self) -> bool {
        self.table_ddl || self.origin.as_ref().is_some_and(|o| o.control.is_some())
    }

    /// What it counts for against the call and record limits.
    pub fn size(&self) -> usize {
        self.len + self.key.len()
    }
}

#[derive(Debug, Default)]
pub struct Pending {
    records: VecDeque<Record>,
    bytes: usize,
}

impl Pending {
    pub fn push(&mut self, r: Record) {
        self.bytes += r.size();
        self.records.push_back(r);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&self, i: usize) -> &Record {
        &self.records[i]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut Record {
        &mut self.records[i]
    }

    /// The indexes (ascending) of the records the next call carries; empty when nothing is
    /// pending.
    pub fn next_call(&self) -> Vec<usize> {
        let mut call = Vec::new();
        let mut held: HashSet<&str> = HashSet::new();
        let mut bytes = 0;
        for (i, r) in self.records.iter().enumerate().take(SCAN_LIMIT) {
            if r.is_control() {
                if i == 0 {
                    call.push(0);
                }
                break;
            }
            let free = !held.contains(r.key.as_str()) && r.old_key.as_deref().is_none_or(|k| !held.contains(k));
            // Taken or not, its keys are held now: a later record of either waits for this one.
            held.insert(&r.key);
            if let Some(k) = &r.old_key {
                held.insert(k);
            }
            if !free {
                continue;
            }
            if bytes + r.size() > MAX_CALL_BYTES {
                break;
            }
            bytes += r.size();
            call.push(i);
            if call.len() == MAX_RECORDS_PER_CALL {
                break;
            }
        }
        call
    }

    /// Drops the records of `call` that the service acknowledged (`acked[j]` for `call[j]`);
    /// the others stay where they were.
    pub fn settle(&mut self, call: &[usize], acked: &[bool]) {
        let mut next = call.iter().zip(acked).peekable();
        let mut index = 0;
        let mut freed = 0;
        self.records.retain(|r| {
            let here = index;
            index += 1;
            match next.peek() {
                Some(&(&i, &ok)) if i == here => {
                    next.next();
                    if ok {
                        freed += r.size();
                    }
                    !ok
                }
                _ => true,
            }
        });
        self.bytes -= freed;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn rec(key: &str, seq: u64) -> Record {
        Record::new(vec![b'x'; 10], key.into(), None, None, seq)
    }

    fn control(seq: u64) -> Record {
        let batch = sluice_core::sink::EventBatch::new(Vec::new());
        Record::new(vec![b'x'; 10], "t".into(), None, Some(Origin { batch, index: 0, control: Some(SchemaChange::CreateTable) }), seq)
    }

    #[test]
    fn a_call_takes_one_record_per_key_in_order() {
        let mut p = Pending::default();
        for (i, k) in ["a", "b", "a", "c", "b", "a"].iter().enumerate() {
            p.push(rec(k, i as u64));
        }
        assert_eq!(p.next_call(), [0, 1, 3]);
        p.settle(&[0, 1, 3], &[true, true, true]);
        assert_eq!(p.next_call(), [0, 1], "a@2 and b@4");
        p.settle(&[0, 1], &[true, true]);
        assert_eq!(p.next_call(), [0]);
        p.settle(&[0], &[true]);
        assert!(p.is_empty() && p.next_call().is_empty());
        assert_eq!(p.bytes(), 0);
    }

    #[test]
    fn a_failed_entry_holds_back_its_key_and_only_its_key() {
        let mut p = Pending::default();
        for (i, k) in ["a", "b", "a", "b"].iter().enumerate() {
            p.push(rec(k, i as u64));
        }
        let call = p.next_call();
        assert_eq!(call, [0, 1]);
        p.settle(&call, &[false, true]); // a@0 throttled, b@1 written
        let call = p.next_call();
        let seqs: Vec<u64> = call.iter().map(|&i| p.get(i).seq).collect();
        assert_eq!(seqs, [0, 3], "a@0 again (never a@2 before it), and b@3");
    }

    #[test]
    fn a_key_change_holds_both_keys() {
        let mut p = Pending::default();
        p.push(rec("k1", 0));
        p.push(Record::new(vec![b'x'; 10], "k2".into(), Some("k1".into()), None, 1));
        p.push(rec("k2", 2));
        p.push(rec("k3", 3));
        assert_eq!(p.next_call(), [0, 3]);
    }

    #[test]
    fn a_control_record_goes_alone_after_everything_before_it() {
        let mut p = Pending::default();
        p.push(rec("a", 0));
        p.push(control(1));
        p.push(rec("b", 1));
        assert_eq!(p.next_call(), [0]);
        p.settle(&[0], &[true]);
        assert_eq!(p.next_call(), [0], "the control record alone");
        p.settle(&[0], &[true]);
        assert_eq!(p.next_call(), [0]);
    }

    #[test]
    fn calls_stay_within_the_service_limits() {
        let mut p = Pending::default();
        for i in 0..1200u64 {
            p.push(rec(&format!("k{i}"), i));
        }
        assert_eq!(p.next_call().len(), MAX_RECORDS_PER_CALL);
        let mut big = Pending::default();
        for i in 0..12u64 {
            big.push(Record::new(vec![b'x'; MAX_RECORD_BYTES - 10], format!("k{i}"), None, None, i));
        }
        let call = big.next_call();
        assert_eq!(call.len(), 5);
        assert!(call.iter().map(|&i| big.get(i).size()).sum::<usize>() <= MAX_CALL_BYTES);
    }

    /// Random keys and random entry failures: every record is acknowledged exactly once, and per
    /// key in the order written.
    #[test]
    fn random_failures_never_reorder_a_key() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut p = Pending::default();
        for seq in 0..5000 {
            let key = format!("k{}", rnd(40));
            // As the sink makes them: an old key only when it differs.
            let old_key = (rnd(10) == 0).then(|| format!("k{}", rnd(40))).filter(|k| *k != key);
            p.push(Record::new(vec![b'x'; 10], key, old_key, None, seq));
        }
        let mut acked_order: HashMap<String, Vec<u64>> = HashMap::new();
        let mut acked = 0;
        while !p.is_empty() {
            let call = p.next_call();
            assert!(!call.is_empty());
            let ok: Vec<bool> = call.iter().map(|_| rnd(3) != 0).collect();
            for (&i, &ok) in call.iter().zip(&ok) {
                if ok {
                    let r = p.get(i);
                    acked_order.entry(r.key.clone()).or_default().push(r.seq);
                    if let Some(k) = &r.old_key {
                        acked_order.entry(k.clone()).or_default().push(r.seq);
                    }
                    acked += 1;
                }
            }
            p.settle(&call, &ok);
        }
        assert_eq!(acked, 5000);
        for (key, seqs) in acked_order {
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "key {key} acknowledged out of order");
        }
    }
}
