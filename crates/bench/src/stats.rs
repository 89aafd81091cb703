//! Percentiles (nearest rank) over latency samples in µs, reported in ms.
use serde_json::{json, Value};

/// Summary of `samples_us` (sorted in place): count, p50/p95/p99/max in ms.
pub fn summary(samples_us: &mut [u64]) -> Value {
    samples_us.sort_unstable();
    let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
    json!({
        "count": samples_us.len(),
        "p50_ms": ms(percentile(samples_us, 50.0)),
        "p95_ms": ms(percentile(samples_us, 95.0)),
        "p99_ms": ms(percentile(samples_us, 99.0)),
        "max_ms": ms(samples_us.last().copied()),
    })
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_in_ms() {
        let mut v = vec![3000, 1000, 2000];
        let s = summary(&mut v);
        assert_eq!(s["count"], 3);
        assert_eq!(s["p50_ms"], 2.0);
        assert_eq!(s["max_ms"], 3.0);
    }
}
