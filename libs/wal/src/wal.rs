//! The appending side: one writer thread, group commit, the sync policy.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use crate::error::WalError;
use crate::segment::{frame, list_segments, segment_path, MAX_RECORD_BYTES, SEGMENT_HEADER};

/// When appended records reach stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after every group of records, before any of them is
    /// acknowledged: an acknowledged record survives a process crash and a
    /// machine crash (power loss, kernel panic).
    Always,
    /// Records are written to the operating system before they are
    /// acknowledged, and synced at most this long after: an acknowledged
    /// record survives a process crash; a machine crash can lose the last
    /// interval.
    Interval(Duration),
    /// Written before acknowledged, synced only when a segment is closed:
    /// survives a process crash; a machine crash loses what the kernel had
    /// not written back (up to about 30 s on Linux defaults).
    Never,
}

#[derive(Clone, Debug)]
pub struct WalConfig {
    pub dir: PathBuf,
    /// A segment is closed and the next begun once it passes this size.
    pub segment_bytes: u64,
    pub sync: SyncPolicy,
}

/// What the log counts.
#[derive(Clone)]
pub struct WalMetrics {
    pub records: Counter,
    pub bytes: Counter,
    /// Groups written (one `write` each).
    pub groups: Counter,
    pub syncs: Counter,
    pub sync_seconds: Histogram,
    pub segments_created: Counter,
    pub segments_removed: Counter,
}

impl Default for WalMetrics {
    fn default() -> Self {
        Self {
            records: Counter::default(),
            bytes: Counter::default(),
            groups: Counter::default(),
            syncs: Counter::default(),
            sync_seconds: Histogram::new([0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]),
            segments_created: Counter::default(),
            segments_removed: Counter::default(),
        }
    }
}

impl WalMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("strata_wal");
        r.register("records", "Records appended", self.records.clone());
        r.register("bytes", "Payload bytes appended", self.bytes.clone());
        r.register(
            "groups",
            "Group commits (one write each)",
            self.groups.clone(),
        );
        r.register("syncs", "fdatasync calls", self.syncs.clone());
        r.register(
            "sync_duration_seconds",
            "Time of one fdatasync",
            self.sync_seconds.clone(),
        );
        r.register(
            "segments_created",
            "Segments begun",
            self.segments_created.clone(),
        );
        r.register(
            "segments_removed",
            "Segments removed after their data was stored elsewhere",
            self.segments_removed.clone(),
        );
    }
}

enum Request {
    Append {
        payloads: Vec<Vec<u8>>,
        done: oneshot::Sender<Result<u64, WalError>>,
    },
    Cut {
        done: oneshot::Sender<Result<u64, WalError>>,
    },
    Close {
        done: oneshot::Sender<Result<(), WalError>>,
    },
}

/// Records submitted and not yet acknowledged; [`Pending::wait`] returns
/// once they are written (and synced, as the policy says).
#[must_use = "records are durable only once wait() returns Ok"]
pub struct Pending {
    wait: oneshot::Receiver<Result<u64, WalError>>,
}

impl Pending {
    /// The number of the segment holding the records.
    pub async fn wait(self) -> Result<u64, WalError> {
        self.wait.await.map_err(|_| WalError::Closed)?
    }
}

/// An open write-ahead log. Cheap to share (`Arc`); appends from any task.
pub struct Wal {
    dir: PathBuf,
    requests: mpsc::Sender<Request>,
    current: Arc<AtomicU64>,
    removed: Counter,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("segment", &self.segment())
            .finish()
    }
}

/// Makes a new segment file durable by name: written header, synced file
/// and directory.
fn create_segment(dir: &Path, n: u64) -> Result<File, WalError> {
    let path = segment_path(dir, n);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| WalError::io("create segment", &path, e))?;
    file.write_all(&SEGMENT_HEADER)
        .and_then(|_| file.sync_all())
        .map_err(|e| WalError::io("write segment header", &path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("sync directory", dir, e))
}

impl Wal {
    /// Opens the log in `config.dir` for appending: a new segment after the
    /// last one there (replay first with [`crate::replay`]).
    pub fn open(config: WalConfig, metrics: WalMetrics) -> Result<Wal, WalError> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| WalError::io("create directory", &config.dir, e))?;
        let next = list_segments(&config.dir)?.last().map_or(1, |n| n + 1);
        let file = create_segment(&config.dir, next)?;
        metrics.segments_created.inc();
        let current = Arc::new(AtomicU64::new(next));
        let removed = metrics.segments_removed.clone();
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            dir: config.dir.clone(),
            segment_bytes: config.segment_bytes.max(SEGMENT_HEADER.len() as u64 + 1),
            sync: config.sync,
            file,
            segment: next,
            written: SEGMENT_HEADER.len() as u64,
            dirty: false,
            last_sync: Instant::now(),
            current: current.clone(),
            metrics,
            failed: None,
        };
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| WalError::io("start writer thread", &config.dir, e))?;
        Ok(Wal {
            dir: config.dir,
            requests: tx,
            current,
            removed,
        })
    }

    /// Appends one record; returns, with the number of the segment that
    /// holds it, once it is written (and synced, as the policy says).
    pub async fn append(&self, payload: Vec<u8>) -> Result<u64, WalError> {
        self.submit(vec![payload])?.wait().await
    }

    /// Queues records to be written together, in order, without waiting.
    /// Records submitted earlier (from any task) are written before these,
    /// so a caller that must order its records after another's (a series
    /// before its samples) submits under a lock and waits outside it.
    pub fn submit(&self, payloads: Vec<Vec<u8>>) -> Result<Pending, WalError> {
        if let Some(big) = payloads.iter().find(|p| p.len() > MAX_RECORD_BYTES) {
            return Err(WalError::RecordTooLarge {
                len: big.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Request::Append { payloads, done })
            .map_err(|_| WalError::Closed)?;
        Ok(Pending { wait })
    }

    /// Closes the current segment (synced) and begins the next; returns the
    /// new segment's number. Every record appended before the call is in a
    /// segment below it.
    pub async fn cut(&self) -> Result<u64, WalError> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Request::Cut { done })
            .map_err(|_| WalError::Closed)?;
        wait.await.map_err(|_| WalError::Closed)?
    }

    /// The segment appends currently go to.
    pub fn segment(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Removes every segment numbered below `n` (never the current one).
    /// Returns how many were removed.
    pub fn remove_before(&self, n: u64) -> Result<usize, WalError> {
        let limit = n.min(self.segment());
        let mut removed = 0;
        for m in list_segments(&self.dir)? {
            if m >= limit {
                break;
            }
            let path = segment_path(&self.dir, m);
            std::fs::remove_file(&path).map_err(|e| WalError::io("remove segment", &path, e))?;
            removed += 1;
            self.removed.inc();
        }
        Ok(removed)
    }

    /// Syncs what was written and stops the writer. Appends after this fail
    /// with [`WalError::Closed`].
    pub async fn close(&self) -> Result<(), WalError> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Request::Close { done })
            .map_err(|_| WalError::Closed)?;
        wait.await.map_err(|_| WalError::Closed)?
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

struct Writer {
    dir: PathBuf,
    segment_bytes: u64,
    sync: SyncPolicy,
    file: File,
    segment: u64,
    written: u64,
    dirty: bool,
    last_sync: Instant,
    current: Arc<AtomicU64>,
    metrics: WalMetrics,
    /// After a failed write or sync the log's tail is unknown: refuse
    /// everything rather than acknowledge records that may be lost.
    failed: Option<String>,
}

/// Most payload bytes written in one group.
const GROUP_BYTES: usize = 16 << 20;

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<Request>) {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        loop {
            let first = match self.sync {
                SyncPolicy::Interval(every) if self.dirty => {
                    let left = every.saturating_sub(self.last_sync.elapsed());
                    match requests.recv_timeout(left) {
                        Ok(r) => r,
                        Err(RecvTimeoutError::Timeout) => {
                            if let Err(e) = self.sync_now() {
                                self.fail(&e);
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match requests.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                },
            };
            // The group: this request and whatever else is already queued.
            let mut group = vec![first];
            let mut size = 0;
            while size < GROUP_BYTES {
                match requests.try_recv() {
                    Ok(r) => {
                        if let Request::Append { payloads, .. } = &r {
                            size += payloads.iter().map(Vec::len).sum::<usize>();
                        }
                        group.push(r);
                    }
                    Err(_) => break,
                }
            }
            if self.handle(group, &mut buf) {
                break;
            }
        }
        let _ = self.sync_now();
    }

    /// Handles a group in order; true when the log was closed.
    fn handle(&mut self, group: Vec<Request>, buf: &mut Vec<u8>) -> bool {
        let mut waiting: Vec<oneshot::Sender<Result<u64, WalError>>> = Vec::new();
        let mut closed = false;
        for request in group {
            match request {
                Request::Append { payloads, done } => {
                    for payload in &payloads {
                        frame(buf, payload);
                        self.metrics.records.inc();
                        self.metrics.bytes.inc_by(payload.len() as u64);
                    }
                    waiting.push(done);
                }
                Request::Cut { done } => {
                    let written = self.write_group(buf, &mut waiting);
                    let result = written.and_then(|_| self.rotate());
                    let _ = done.send(result.map(|_| self.segment));
                }
                Request::Close { done } => {
                    let written = self.write_group(buf, &mut waiting);
                    let _ = done.send(written.and_then(|_| self.sync_now()));
                    closed = true;
                    break;
                }
            }
        }
        let _ = self.write_group(buf, &mut waiting);
        closed
    }

    /// Writes the framed records in `buf`, syncs as the policy says and
    /// answers their appenders.
    fn write_group(
        &mut self,
        buf: &mut Vec<u8>,
        waiting: &mut Vec<oneshot::Sender<Result<u64, WalError>>>,
    ) -> Result<(), WalError> {
        if waiting.is_empty() {
            return self
                .failed
                .as_ref()
                .map_or(Ok(()), |f| Err(WalError::Failed(f.clone())));
        }
        let result = self.write_and_sync(buf);
        buf.clear();
        if let Err(e) = &result {
            self.fail(e);
        }
        let answer = || match &result {
            Ok(()) => Ok(self.segment),
            Err(e) => Err(WalError::Failed(e.to_string())),
        };
        for done in waiting.drain(..) {
            let _ = done.send(answer());
        }
        if result.is_ok() && self.written >= self.segment_bytes {
            if let Err(e) = self.rotate() {
                self.fail(&e);
            }
        }
        result
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), WalError> {
        if let Some(f) = &self.failed {
            return Err(WalError::Failed(f.clone()));
        }
        let path = segment_path(&self.dir, self.segment);
        self.file
            .write_all(buf)
            .map_err(|e| WalError::io("append", &path, e))?;
        self.metrics.groups.inc();
        self.written += buf.len() as u64;
        self.dirty = true;
        match self.sync {
            SyncPolicy::Always => self.sync_now(),
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync_now(),
            _ => Ok(()),
        }
    }

    fn sync_now(&mut self) -> Result<(), WalError> {
        if !self.dirty {
            return Ok(());
        }
        let started = Instant::now();
        self.file
            .sync_data()
            .map_err(|e| WalError::io("sync", &segment_path(&self.dir, self.segment), e))?;
        self.metrics.syncs.inc();
        self.metrics
            .sync_seconds
            .observe(started.elapsed().as_secs_f64());
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), WalError> {
        if let Some(f) = &self.failed {
            return Err(WalError::Failed(f.clone()));
        }
        self.dirty = true;
        self.sync_now()?;
        let next = self.segment + 1;
        self.file = create_segment(&self.dir, next)?;
        self.segment = next;
        self.written = SEGMENT_HEADER.len() as u64;
        self.current.store(next, Ordering::Release);
        self.metrics.segments_created.inc();
        Ok(())
    }

    fn fail(&mut self, e: &WalError) {
        if self.failed.is_none() {
            tracing::error!(error = %e, "write-ahead log failed; refusing further appends");
            self.failed = Some(e.to_string());
        }
    }
}
