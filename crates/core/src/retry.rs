//! The one retry policy. Every component that can fail for a while (a sink's commit, the
//! source's connection) asks [`Retry::next`] what to do with an error instead of looping on its
//! own: retry after a capped exponential backoff with jitter, until the component's
//! `retry_for` deadline, or stop.
use std::time::{Duration, Instant};

use crate::error::{ErrorKind, SluiceError};

/// What the pipeline does with an error of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Back off and try again, until the deadline.
    Retry,
    /// Stop and report: retrying cannot help.
    Stop,
}

/// The decision table (docs/guarantees.md shows it to users).
pub fn action(kind: ErrorKind) -> Action {
    match kind {
        ErrorKind::Transient | ErrorKind::Exhausted => Action::Retry,
        ErrorKind::Permanent => Action::Stop,
    }
}

/// Backoff settings. The defaults suit network services and disks alike.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// How long a component may keep failing (since its last success) before it gives up.
    pub retry_for: Duration,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(300);

    pub fn new(retry_for: Duration) -> Self {
        Self { retry_for, initial: Duration::from_millis(100), max: Duration::from_secs(5) }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new(Self::DEFAULT_RETRY_FOR)
    }
}

/// The retry state of one component: failures since its last success.
#[derive(Debug)]
pub struct Retry {
    policy: RetryPolicy,
    failing_since: Option<Instant>,
    attempt: u32,
}

impl Retry {
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy, failing_since: None, attempt: 0 }
    }

    /// The component made progress: the next failure starts a new budget.
    pub fn succeeded(&mut self) {
        self.failing_since = None;
        self.attempt = 0;
    }

    /// Number of failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// What to do with `err`: `Ok(delay)` to try again after sleeping that long, or the error
    /// to stop with (for an exhausted budget, saying how long it was retried).
    pub fn next(&mut self, err: SluiceError) -> Result<Duration, SluiceError> {
        if action(err.kind) == Action::Stop {
            return Err(err);
        }
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.policy.retry_for {
            let waited = humanize(self.policy.retry_for);
            return Err(err.context(format!("still failing after retrying for {waited}")));
        }
        let exp = self.policy.initial.saturating_mul(1u32 << self.attempt.min(16));
        let capped = exp.min(self.policy.max);
        self.attempt += 1;
        // Full jitter over the upper half: spreads retries of many sinks, never sleeps ~0.
        let jitter = jitter_fraction();
        let delay = capped.mul_f64(0.5 + 0.5 * jitter);
        let left = self.policy.retry_for.saturating_sub(since.elapsed());
        Ok(delay.min(left.max(Duration::from_millis(1))))
    }
}

/// A cheap pseudo-random fraction in [0, 1): jitter needs no cryptographic quality.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{} ms", d.as_millis()),
        1..=119 => format!("{s} s"),
        _ => format!("{} min", s / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_errors_stop_at_once() {
        let mut r = Retry::new(RetryPolicy::default());
        let e = r.next(SluiceError::permanent("bad config")).unwrap_err();
        assert_eq!(e.message, "bad config");
    }

    #[test]
    fn transient_errors_back_off_exponentially_with_a_cap() {
        let mut r = Retry::new(RetryPolicy {
            retry_for: Duration::from_secs(600),
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        });
        let delays: Vec<Duration> = (0..8).map(|_| r.next(SluiceError::transient("reset")).unwrap()).collect();
        for (i, d) in delays.iter().enumerate() {
            let full = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(2));
            assert!(*d >= full / 2 && *d <= full, "attempt {i}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
        assert_eq!(r.attempts(), 8);
        r.succeeded();
        assert_eq!(r.attempts(), 0);
    }

    #[test]
    fn the_deadline_turns_retries_into_a_stop_that_says_so() {
        let mut r = Retry::new(RetryPolicy { retry_for: Duration::ZERO, initial: Duration::from_millis(1), max: Duration::from_millis(1) });
        let e = r.next(SluiceError::exhausted("No space left on device")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Exhausted);
        assert!(e.message.contains("after retrying for") && e.message.ends_with("No space left on device"), "{}", e.message);
    }
}
