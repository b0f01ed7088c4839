//! CPU-heavy read work (selecting series for a query, evaluating it,
//! writing its answer) on a pool of threads the kernel schedules behind
//! pushes.
//!
//! Pushes and queries of a tenant share the same cores. A heavy query keeps
//! a core busy for hundreds of milliseconds; had it run on the blocking
//! pool among pushes (or in one of [`crate::cpu`]'s per-core slots), every
//! push arriving meanwhile would wait for it, and push latency would follow
//! the query load. Here each read thread lowers its own scheduling priority
//! (`nice` [`READ_NICE`]): the kernel then gives a runnable push thread
//! about nine tenths of a contended core, and reads take whatever pushes
//! leave, which on an idle machine is everything. Threads a read spawns
//! (the engine's parallel parts) inherit the priority.
//!
//! The pool has a fixed number of threads ([`threads`]); work beyond that
//! waits in a queue, holding no thread.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `nice` value of read threads (0 is the default, 19 the lowest).
pub const READ_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// Threads of the pool: two per core (at least four), so a cheap query is
/// not stuck behind as many heavy ones as there are cores.
pub fn threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).max(4)
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("strata-read-{i}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only to take one job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a read thread");
            }
        }
        Pool {
            jobs: Mutex::new(tx),
        }
    })
}

/// Lowers the calling thread's scheduling priority to [`READ_NICE`]
/// (unless the process already runs at a lower one).
fn lower_priority() {
    // SAFETY: gettid, getpriority and setpriority take and return plain
    // integers.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::getpriority(libc::PRIO_PROCESS, tid) >= READ_NICE {
            return;
        }
        libc::setpriority(libc::PRIO_PROCESS, tid, READ_NICE)
    };
    if rc != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "could not lower a read thread's priority; queries compete with pushes as equals"
        );
    }
}

/// Reads running now, and when the last one ended (milliseconds since
/// [`epoch`]).
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static LAST_ENDED_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Whether no read ran for at least `quiet` (the heap trimmer leaves the
/// memory of a busy query load in place: see [`crate::memory`]).
pub fn quiet_for(quiet: Duration) -> bool {
    if RUNNING.load(Ordering::Acquire) > 0 {
        return false;
    }
    let last = LAST_ENDED_MS.load(Ordering::Acquire);
    let now = epoch().elapsed().as_millis() as u64;
    last == 0 || now.saturating_sub(last) >= quiet.as_millis() as u64
}

/// Counts a read from start to end, even when it panics.
struct Running;

impl Running {
    fn start() -> Self {
        RUNNING.fetch_add(1, Ordering::AcqRel);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let now = (epoch().elapsed().as_millis() as u64).max(1);
        LAST_ENDED_MS.fetch_max(now, Ordering::AcqRel);
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `f` on a read thread. Fails only if `f` panicked or the pool is
/// gone (the message says which).
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let running = Running::start();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        drop(running);
        // The caller may have gone away (a cancelled request).
        let _ = tx.send(out);
    });
    {
        let jobs = match pool().jobs.lock() {
            Ok(jobs) => jobs,
            Err(poisoned) => poisoned.into_inner(),
        };
        jobs.send(job)
            .map_err(|_| "no read thread is running".to_string())?;
    }
    match rx.await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(panic)) => Err(panic_message(&panic)),
        Err(_) => Err("the read thread stopped before it answered".to_string()),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_string());
    format!("the read task panicked: {what}")
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn runs_work_at_a_lower_priority_and_reports_panics() {
        let nice = super::run(|| {
            // SAFETY: getpriority takes and returns plain integers.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::getpriority(libc::PRIO_PROCESS, tid)
            }
        })
        .await
        .unwrap();
        assert!(nice >= super::READ_NICE, "read thread at nice {nice}");
        let err = super::run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.contains("boom"), "{err}");
        // The pool survives a panic.
        assert_eq!(super::run(|| 7).await.unwrap(), 7);
        assert!(!super::quiet_for(std::time::Duration::from_secs(60)));
        assert!(super::quiet_for(std::time::Duration::ZERO));
    }
}
