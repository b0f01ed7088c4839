//! Giving freed heap memory back to the operating system.
//!
//! Queries allocate and free hundreds of megabytes on blocking-pool
//! threads. glibc's malloc keeps freed memory in per-thread arenas and only
//! returns the top of each heap, so after a query mix over 100k series a
//! process that needs 170 MB stayed at 1.5–1.8 GB resident. A background
//! thread calls `malloc_trim(0)` every few seconds, which releases the free
//! pages of every arena (measured: back to ~200 MB).
//!
//! Not while queries run, though: under a steady query load every query
//! would fault its memory back in, and the kernel's zeroing of those pages
//! took a fifth of the CPU in a profile of the query mix at 1M series. The
//! trimmer waits until no read ran for one period
//! ([`crate::reads::quiet_for`]).

use std::time::Duration;

/// Starts the trimming thread (glibc targets only; elsewhere a no-op).
pub fn start_heap_trimmer(every: Duration) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("heap-trim".to_string())
            .spawn(move || loop {
                std::thread::sleep(every);
                if !crate::reads::quiet_for(every) {
                    continue;
                }
                // SAFETY: malloc_trim only walks and shrinks glibc's own
                // arenas under their locks; it takes no pointers from us.
                unsafe {
                    libc::malloc_trim(0);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the heap trimming thread");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = every;
}

/// Memory this process may use: the smaller of the cgroup's limit (v2
/// `memory.max` or v1 `memory.limit_in_bytes`) and the machine's total.
/// `None` if neither can be read.
pub fn available_memory() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        .and_then(|s| s.trim().parse::<u64>().ok())
        // v1 reports "no limit" as a huge number.
        .filter(|&v| v < 1 << 60);
    let total = read("/proc/meminfo").and_then(|s| meminfo_total(&s));
    match (cgroup, total) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn meminfo_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_meminfo() {
        let text = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(meminfo_total(text), Some(24_576_000 * 1024));
        assert_eq!(meminfo_total("nothing"), None);
        #[cfg(target_os = "linux")]
        assert!(available_memory().is_some_and(|m| m > 1 << 20));
    }
}
