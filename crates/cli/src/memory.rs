//! Returning freed memory to the system while the pipeline runs.
//!
//! glibc's allocator keeps what a thread frees in that thread's arena (64 MB each) for reuse,
//! and gives back only the top of the main heap. sluice frees in bursts (a committed buffer, a
//! written Parquet file) on threads that do not allocate the next burst, so freed pages pile up:
//! a 1M-row full load held 168 MB of anonymous memory for a 79 MB heap peak
//! (docs/benchmarks.md). `malloc_trim(0)` hands the free pages of every arena back
//! (`MADV_DONTNEED`); run a few times a second it costs a few milliseconds each time. And
//! glibc's thresholds for both are pinned at start ([`pin_thresholds`]), so that buffers of a
//! few MiB are not kept in the arenas in the first place.
use std::time::Duration;

/// Allocations from this size up get pages of their own, given back when freed. glibc starts at
/// 128 KiB and raises the bound to the size of each such block freed, up to 32 MiB (and the
/// size of free memory it keeps atop a heap to twice that): after the first Parquet row group (a
/// buffer grown by doubling to several MiB) every later one came from an arena and stayed there
/// (read with gdb 7 s into a 3M-row full load: 9.5 MB and 18.9 MB). Pinned, that load peaked at
/// 266–290 MB (median 281) instead of 280–319 MB (291), in the same time (docs/benchmarks.md).
const MMAP_THRESHOLD: i32 = 4 << 20;
/// glibc's own default, which its dynamic bound would raise with the other.
const TRIM_THRESHOLD: i32 = 128 << 10;

/// glibc's variables for the same bounds: a user who sets one keeps glibc's behaviour.
const THRESHOLD_VARS: [&str; 2] = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"];

/// Pins glibc's mmap and trim thresholds ([`MMAP_THRESHOLD`], [`TRIM_THRESHOLD`]) unless the
/// user set either ([`THRESHOLD_VARS`]). Called before other threads start: what is allocated
/// before still moves the dynamic bounds.
#[allow(unsafe_code)]
pub fn pin_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if THRESHOLD_VARS.iter().all(|v| std::env::var_os(v).is_none()) {
        // SAFETY: mallopt sets parameters of the allocator under its own lock.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        };
        if !set {
            tracing::warn!("cannot set the allocator's mmap and trim thresholds; memory use may stay higher");
        }
    }
}

/// The variable that sets the trimming period in milliseconds (`0`: never).
pub const PERIOD_VAR: &str = "SLUICE_MALLOC_TRIM_MS";
const DEFAULT_PERIOD: Duration = Duration::from_millis(250);

/// The trimming period `value` of [`PERIOD_VAR`] asks for: `None` for `0`, the default when unset.
pub fn period(value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(v) = value else { return Ok(Some(DEFAULT_PERIOD)) };
    match v.trim().parse::<u64>() {
        Ok(0) => Ok(None),
        Ok(ms) => Ok(Some(Duration::from_millis(ms))),
        Err(_) => Err(format!("{PERIOD_VAR}={v:?} is not a number of milliseconds; set it to e.g. 250, or 0 to never trim")),
    }
}

/// Trims the allocator's free memory every `every`, on a thread of its own, for the life of
/// the process. Does nothing where the allocator is not glibc's.
#[allow(unsafe_code)]
pub fn trim_periodically(every: Duration) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new().name("sluice-trim".into()).spawn(move || loop {
            std::thread::sleep(every);
            // SAFETY: malloc_trim only walks the allocator's own free lists, under its locks.
            unsafe {
                libc::malloc_trim(0);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the memory trimming thread; memory use may stay higher");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = every;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_defaults_turns_off_at_zero_and_refuses_what_is_not_a_number() {
        assert_eq!(period(None), Ok(Some(Duration::from_millis(250))));
        assert_eq!(period(Some("0")), Ok(None));
        assert_eq!(period(Some(" 100 ")), Ok(Some(Duration::from_millis(100))));
        let bad = period(Some("fast")).unwrap_err();
        assert!(bad.contains("SLUICE_MALLOC_TRIM_MS") && bad.contains("0 to never trim"), "{bad}");
    }
}
