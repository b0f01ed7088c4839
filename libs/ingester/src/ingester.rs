use crate::gaps::ReadGap;
use std::collections::HashMap;

use futures::StreamExt as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use strata_model::duration::duration_ms;
use strata_model::{fingerprint, validate_tenant_id, Labels, Matcher};
use strata_remote_write::WriteRequestRef;
use strata_wal::{Pending, Wal};

use crate::wal_records::{self, WalRecord};

use crate::flush::{
    chunks_digest, group_by_window, ChunkSink, FlushBatch, FlushOutcome, FlushRank, FlushSeries,
    InFlight, SoleReplica,
};
use crate::metrics::ReasonLabel;
use crate::tenant::{CreateError, PendingFlush, Released};
use crate::{
    FamilyMetadata, IngesterConfig, IngesterError, IngesterMetrics, QueriedSeries, TenantDb,
    TenantStats,
};

/// What one push did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PushOutcome {
    pub appended: u64,
    pub rejected: u64,
    /// Why the first rejected sample was refused.
    pub first_rejection: Option<String>,
}

impl PushOutcome {
    fn reject(&mut self, n: u64, why: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        if self.first_rejection.is_none() {
            self.first_rejection = Some(why());
        }
    }
}

/// All tenants' in-memory series, with the limits that bound them.
pub struct Ingester {
    config: IngesterConfig,
    tenants: RwLock<HashMap<String, Arc<TenantDb>>>,
    series_total: AtomicUsize,
    /// Bytes of closed chunks not yet flushed (recomputed every flush
    /// cycle, raised by pushes that close chunks in between).
    unflushed_bytes: AtomicUsize,
    metrics: IngesterMetrics,
    sink: Option<Arc<dyn ChunkSink>>,
    rank: Arc<dyn FlushRank>,
    /// One flush cycle at a time (the periodic loop, the flush endpoint and
    /// shutdown may ask at once).
    flushing: tokio::sync::Mutex<()>,
    /// Wall clock in Unix ms (replaced by tests).
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    wal: Option<WalState>,
    /// Parts of time this ingester may lack samples for (see [`crate::gaps`]).
    read_gaps: parking_lot::RwLock<Vec<ReadGap>>,
    /// Per-tenant runtime overrides of `config.limits`, read per push.
    overrides: strata_overrides::Overrides,
    /// Over how many ingesters (and at which replication factor) a
    /// tenant's series spread: global series limits become this
    /// ingester's share.
    spread: Option<crate::config::SeriesSpreadFn>,
}

/// The write-ahead log and the lock that orders a series' record before
/// the samples that refer to it.
struct WalState {
    wal: Arc<Wal>,
    order: parking_lot::Mutex<()>,
}

/// What a replay of the write-ahead log restored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalReplayStats {
    pub log: strata_wal::ReplayStats,
    pub series: u64,
    pub samples: u64,
    /// Samples refused on replay (out of order, duplicates of samples
    /// already restored, limits).
    pub samples_refused: u64,
    /// Samples whose series record was missing (a damaged log).
    pub samples_unknown_series: u64,
    /// Records that did not decode.
    pub bad_records: u64,
}

impl Ingester {
    pub fn new(config: IngesterConfig, metrics: IngesterMetrics) -> Self {
        Self {
            config,
            tenants: RwLock::new(HashMap::new()),
            series_total: AtomicUsize::new(0),
            unflushed_bytes: AtomicUsize::new(0),
            metrics,
            sink: None,
            rank: Arc::new(SoleReplica),
            flushing: tokio::sync::Mutex::new(()),
            clock: Arc::new(unix_now_ms),
            wal: None,
            read_gaps: parking_lot::RwLock::new(Vec::new()),
            overrides: strata_overrides::Overrides::default(),
            spread: None,
        }
    }

    /// Enforces global series limits: `spread` tells over how many
    /// ingesters, at which replication factor, a tenant's series go.
    pub fn with_series_spread(mut self, spread: crate::config::SeriesSpreadFn) -> Self {
        self.spread = Some(spread);
        self
    }

    /// Reads each tenant's series limits through `overrides` (the runtime
    /// config file) on every push.
    pub fn with_overrides(mut self, overrides: strata_overrides::Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// The limits in force for `tenant` now.
    pub fn limits_for(&self, tenant: &str) -> crate::Limits {
        let limits = self.config.limits_for(tenant, &self.overrides);
        match &self.spread {
            Some(spread)
                if limits.max_global_series_per_tenant > 0
                    || limits.max_global_series_per_metric > 0 =>
            {
                limits.with_global_shares(spread(tenant))
            }
            _ => limits,
        }
    }

    /// Replaces the parts of time this ingester may lack samples for (see
    /// [`crate::gaps`]); set at start, before it takes part in reads.
    pub fn set_read_gaps(&self, mut gaps: Vec<ReadGap>) {
        crate::gaps::merge(&mut gaps);
        *self.read_gaps.write() = gaps;
    }

    /// Its read gaps that have not expired yet.
    pub fn read_gaps(&self) -> Vec<ReadGap> {
        let now = self.now_ms();
        // Every replica has flushed a closed chunk after the flush delay,
        // the takeover delays of the later replicas and a flush period.
        let c = &self.config;
        let settle = self.sink.is_some().then(|| {
            duration_ms(c.flush_delay)
                .saturating_add(duration_ms(c.flush_takeover_delay).saturating_mul(2))
                .saturating_add(duration_ms(c.flush_period).saturating_mul(2))
        });
        let window = self.window_ms();
        self.read_gaps
            .read()
            .iter()
            .filter(|g| g.expires_at_ms(window, settle) > now)
            .copied()
            .collect()
    }

    /// The parts of `[start_ms, end_ms]` this ingester may lack samples
    /// for: its unexpired read gaps, clipped to the range.
    pub fn missing_in(&self, start_ms: i64, end_ms: i64) -> Vec<ReadGap> {
        crate::gaps::overlapping(&self.read_gaps(), start_ms, end_ms)
    }

    /// Logs every accepted series and sample to `wal` before a push through
    /// [`Ingester::push_durable`] is acknowledged. Replay the log first
    /// ([`Ingester::replay_wal`]).
    pub fn with_wal(mut self, wal: Arc<Wal>) -> Self {
        // A new epoch: references of the process before mean nothing now.
        // Submitted before any push, so it is written first.
        drop(wal.submit(vec![wal_records::encode_epoch()]));
        self.wal = Some(WalState {
            wal,
            order: parking_lot::Mutex::new(()),
        });
        self
    }

    /// Replaces the wall clock (Unix ms) the ingester reads when samples
    /// arrive and flush cycles run; for tests.
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Flushes closed chunks to `sink`; `rank` tells this ingester's place
    /// among each series' replicas. Without a sink nothing is flushed and
    /// nothing is ever dropped from memory.
    pub fn with_flushing(mut self, sink: Arc<dyn ChunkSink>, rank: Arc<dyn FlushRank>) -> Self {
        self.sink = Some(sink);
        self.rank = rank;
        self
    }

    fn window_ms(&self) -> i64 {
        duration_ms(self.config.max_chunk_age).max(1)
    }

    /// Bytes of closed chunks waiting to be flushed.
    pub fn unflushed_bytes(&self) -> usize {
        self.unflushed_bytes.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &IngesterConfig {
        &self.config
    }

    pub fn tenant(&self, id: &str) -> Option<Arc<TenantDb>> {
        self.tenants.read().get(id).cloned()
    }

    pub fn series_count(&self) -> usize {
        self.series_total.load(Ordering::Relaxed)
    }

    fn tenant_or_create(&self, id: &str) -> Result<Arc<TenantDb>, IngesterError> {
        if let Some(t) = self.tenant(id) {
            return Ok(t);
        }
        validate_tenant_id(id)?;
        let mut tenants = self.tenants.write();
        if let Some(t) = tenants.get(id) {
            return Ok(t.clone());
        }
        if self.config.max_tenants > 0 && tenants.len() >= self.config.max_tenants {
            return Err(IngesterError::InstanceTenantLimit {
                limit: self.config.max_tenants,
            });
        }
        let t = Arc::new(TenantDb::new(id));
        tenants.insert(id.to_string(), t.clone());
        self.metrics.memory_tenants.set(tenants.len() as i64);
        Ok(t)
    }

    /// Decodes and appends an encoded remote write request.
    pub fn push(&self, tenant: &str, body: &[u8]) -> Result<PushOutcome, IngesterError> {
        let req = WriteRequestRef::decode(body)?;
        self.push_decoded(tenant, &req)
    }

    /// [`Ingester::push`], returning as well the write-ahead log records of
    /// what it appended, already queued: the push is durable once
    /// [`Pending::wait`] returns (`None` without a log, or when nothing was
    /// appended).
    pub fn push_durable(
        &self,
        tenant: &str,
        body: &[u8],
    ) -> Result<(PushOutcome, Option<Pending>), IngesterError> {
        let req = WriteRequestRef::decode(body)?;
        self.push_inner(tenant, &req)
    }

    /// Appends every sample of the request. Samples that break a per-series
    /// rule or a per-tenant limit are counted in the outcome and skipped; the
    /// instance-wide series limit fails the call with a retryable error after
    /// the series before it were appended (re-sending them is harmless:
    /// identical samples are ignored).
    pub fn push_decoded(
        &self,
        tenant: &str,
        req: &WriteRequestRef<'_>,
    ) -> Result<PushOutcome, IngesterError> {
        // Logged records are written in order even when nobody waits.
        self.push_inner(tenant, req).map(|(outcome, _)| outcome)
    }

    fn push_inner(
        &self,
        tenant: &str,
        req: &WriteRequestRef<'_>,
    ) -> Result<(PushOutcome, Option<Pending>), IngesterError> {
        self.metrics.push_requests.inc();
        let limit = self.config.max_unflushed_bytes;
        if limit > 0 && self.sink.is_some() {
            let bytes = self.unflushed_bytes();
            if bytes > limit {
                self.metrics.pushes_refused_flush_backlog.inc();
                return Err(IngesterError::FlushBacklog { bytes, limit });
            }
        }
        let db = self.tenant_or_create(tenant)?;
        let limits = self.limits_for(tenant);
        let max_samples = self.config.max_samples_per_chunk.max(1);
        let window_ms = self.window_ms();
        let now_ms = self.now_ms();
        let mut cut_bytes = 0;
        let mut outcome = PushOutcome::default();
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
        // What to log: series that got samples, and the samples.
        let logging = self.wal.is_some();
        let mut logged_series: Vec<Arc<crate::series::Series>> = Vec::new();
        let mut logged_samples: Vec<(u32, i64, f64)> = Vec::new();
        let mut had_samples = false;
        for series in req.series() {
            labels.clear();
            labels.extend(
                series
                    .labels()
                    .iter()
                    .filter(|l| !l.value.is_empty())
                    .map(|l| (l.name, l.value)),
            );
            if !labels.windows(2).all(|w| w[0].0 < w[1].0) {
                labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
                labels.dedup_by(|a, b| a.0 == b.0);
            }
            let samples = series.samples();
            if samples.is_empty() {
                continue;
            }
            had_samples = true;
            let fp = fingerprint(labels.iter().copied());
            // A series removed (it held nothing and was idle) between the
            // lookup and the lock is looked up again, which creates it anew.
            let mut attempts = 0;
            let refused = loop {
                attempts += 1;
                let created =
                    match db.get_or_create(fp, &labels, &limits, || self.admit_series(tenant)) {
                        Ok(c) => c,
                        Err(e) => {
                            // Samples appended before the failure stay; count
                            // them, and log them (queued before any retry's).
                            self.note_cut(cut_bytes);
                            db.add_appended(outcome.appended);
                            self.metrics.samples_appended.inc_by(outcome.appended);
                            self.log(tenant, &logged_series, &logged_samples, false)?;
                            return Err(e);
                        }
                    };
                let s = match created {
                    Ok(s) => s,
                    Err(err) => break Some(err),
                };
                let mut data = s.data.lock();
                if data.removed && attempts <= 8 {
                    continue;
                }
                for sample in samples {
                    match data.append(
                        sample.timestamp,
                        sample.value,
                        max_samples,
                        window_ms,
                        now_ms,
                    ) {
                        Ok(a) => {
                            if a.added {
                                outcome.appended += 1;
                                if logging {
                                    logged_samples.push((s.id, sample.timestamp, sample.value));
                                }
                            }
                            cut_bytes += a.cut_bytes;
                        }
                        Err(e) => {
                            self.metrics.rejected(tenant, e.reason(), 1);
                            outcome.reject(1, || {
                                format!(
                                    "{}: series {} sample at timestamp {} ({})",
                                    e.reason(),
                                    labels_text(&labels),
                                    sample.timestamp,
                                    match e {
                                        crate::series::AppendError::OutOfOrder =>
                                            "older than the newest sample of the series",
                                        crate::series::AppendError::DuplicateTimestamp =>
                                            "same timestamp as the newest sample but a different value",
                                    }
                                )
                            });
                        }
                    }
                }
                if logging && logged_series.last().is_none_or(|l| !Arc::ptr_eq(l, &s)) {
                    logged_series.push(s.clone());
                }
                break None;
            };
            if let Some(err) = refused {
                let (reason, msg) = match err {
                    CreateError::TenantLimit(limit) => (
                        "per_tenant_series_limit",
                        format!("tenant {tenant} reached its limit of {limit} series in this ingester"),
                    ),
                    CreateError::MetricLimit(limit) => (
                        "per_metric_series_limit",
                        format!("tenant {tenant} reached its limit of {limit} series for one metric name"),
                    ),
                    CreateError::IdsExhausted => (
                        "per_tenant_series_limit",
                        format!("tenant {tenant} created 2^32 series in this ingester since it started; restart the ingester"),
                    ),
                };
                self.metrics.rejected(tenant, reason, samples.len() as u64);
                outcome.reject(samples.len() as u64, || {
                    format!("{msg}; series {} was not created", labels_text(&labels))
                });
            }
        }
        self.note_cut(cut_bytes);
        db.add_appended(outcome.appended);
        self.metrics.samples_appended.inc_by(outcome.appended);
        if req.exemplar_count() > 0 {
            let capacity = self.config.max_exemplars;
            crate::exemplars::append_request(&db, req, capacity, &self.metrics);
        }
        self.store_metadata(&db, req);
        let pending = self.log(tenant, &logged_series, &logged_samples, had_samples)?;
        Ok((outcome, pending))
    }

    /// Queues the records of appended samples (and of their series the log
    /// does not know yet) to the write-ahead log.
    /// With `wait_even_if_empty`, a push that appended nothing new (a
    /// retry of samples already in memory) still waits for the log, so it is
    /// acknowledged only once what it re-sent is durable, and fails if the
    /// log does.
    fn log(
        &self,
        tenant: &str,
        series: &[Arc<crate::series::Series>],
        samples: &[(u32, i64, f64)],
        wait_even_if_empty: bool,
    ) -> Result<Option<Pending>, IngesterError> {
        let Some(state) = &self.wal else {
            return Ok(None);
        };
        if samples.is_empty() {
            if !wait_even_if_empty {
                return Ok(None);
            }
            return state
                .wal
                .submit(Vec::new())
                .map(Some)
                .map_err(|e| IngesterError::Wal(e.to_string()));
        }
        let samples_record = wal_records::encode_samples(tenant, samples);
        // Under the lock: a series is marked logged and its record queued
        // together, so no sample record that refers to it is queued first.
        let _order = state.order.lock();
        let new: Vec<&Arc<crate::series::Series>> = series
            .iter()
            .filter(|s| !s.wal_logged.swap(true, Ordering::AcqRel))
            .collect();
        let mut payloads = Vec::with_capacity(2);
        if !new.is_empty() {
            let pairs: Vec<Vec<(&str, &str)>> = new
                .iter()
                .map(|s| s.labels.iter().map(|(n, v)| (&**n, &**v)).collect())
                .collect();
            payloads.push(wal_records::encode_series(
                tenant,
                new.iter().zip(&pairs).map(|(s, p)| (s.id, p.as_slice())),
            ));
        }
        payloads.push(samples_record);
        match state.wal.submit(payloads) {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                for s in new {
                    s.wal_logged.store(false, Ordering::Release);
                }
                Err(IngesterError::Wal(e.to_string()))
            }
        }
    }

    /// Restores what the write-ahead log in `dir` holds (before pushes are
    /// taken and before the log is opened for appending). Samples already
    /// in memory are skipped as duplicates; a damaged tail is cut off and
    /// logged by the log itself.
    pub fn replay_wal(&self, dir: &std::path::Path) -> Result<WalReplayStats, IngesterError> {
        let mut stats = WalReplayStats::default();
        let mut refs: HashMap<(String, u32), Arc<crate::series::Series>> = HashMap::new();
        let log = strata_wal::replay(dir, |_, record| -> Result<(), IngesterError> {
            let record = match wal_records::decode(record) {
                Ok(r) => r,
                Err(e) => {
                    stats.bad_records += 1;
                    tracing::warn!(error = %e, "skipping a write-ahead log record");
                    return Ok(());
                }
            };
            match record {
                WalRecord::Epoch => refs.clear(),
                WalRecord::Series { tenant, series } => {
                    let db = self.tenant_or_create(&tenant)?;
                    let limits = self.limits_for(&tenant);
                    for (reference, labels) in series {
                        let pairs: Vec<(&str, &str)> = labels
                            .iter()
                            .map(|(n, v)| (n.as_str(), v.as_str()))
                            .collect();
                        let fp = fingerprint(pairs.iter().copied());
                        match db
                            .get_or_create(fp, &pairs, &limits, || self.admit_series(&tenant))?
                        {
                            Ok(s) => {
                                stats.series += 1;
                                refs.insert((tenant.clone(), reference), s);
                            }
                            Err(_) => {
                                tracing::warn!(
                                    tenant,
                                    "series limit reached replaying the write-ahead log"
                                );
                            }
                        }
                    }
                }
                WalRecord::Chunks { tenant, chunks } => {
                    // Decoded into samples and appended like them, so chunks
                    // are cut again where they were.
                    let mut samples = Vec::new();
                    for (reference, encoding, bytes) in chunks {
                        if u32::from(encoding) != crate::CHUNK_ENCODING_XOR {
                            stats.bad_records += 1;
                            continue;
                        }
                        samples.extend(
                            strata_chunk::XorIterator::new(&bytes).map(|(t, v)| (reference, t, v)),
                        );
                    }
                    self.replay_samples(&tenant, samples, &refs, &mut stats)?;
                }
                WalRecord::Samples { tenant, samples } => {
                    self.replay_samples(&tenant, samples, &refs, &mut stats)?;
                }
            }
            Ok(())
        })
        .map_err(|e| IngesterError::Wal(e.to_string()))??;
        stats.log = log;
        if stats.samples_unknown_series > 0 {
            tracing::warn!(
                samples = stats.samples_unknown_series,
                "write-ahead log samples without their series record were dropped"
            );
        }
        Ok(stats)
    }

    /// Appends replayed samples of `tenant` to the series their references name.
    fn replay_samples(
        &self,
        tenant: &str,
        samples: Vec<(u32, i64, f64)>,
        refs: &HashMap<(String, u32), Arc<crate::series::Series>>,
        stats: &mut WalReplayStats,
    ) -> Result<(), IngesterError> {
        let max_samples = self.config.max_samples_per_chunk.max(1);
        let window_ms = self.window_ms();
        let db = self.tenant_or_create(tenant)?;
        let now_ms = self.now_ms();
        let mut cut_bytes = 0;
        let mut appended = 0;
        let mut key = (tenant.to_string(), 0u32);
        for (reference, t, v) in samples {
            key.1 = reference;
            let Some(s) = refs.get(&key) else {
                stats.samples_unknown_series += 1;
                continue;
            };
            match s.data.lock().append(t, v, max_samples, window_ms, now_ms) {
                Ok(a) => {
                    if a.added {
                        appended += 1;
                    } else {
                        stats.samples_refused += 1;
                    }
                    cut_bytes += a.cut_bytes;
                }
                Err(_) => stats.samples_refused += 1,
            }
        }
        self.note_cut(cut_bytes);
        db.add_appended(appended);
        stats.samples += appended;
        Ok(())
    }

    /// Takes a checkpoint of the write-ahead log: cuts it, snapshots every
    /// series and every chunk not yet in long-term storage as records, and
    /// writes them as the checkpoint, which replaces the segments before the
    /// cut. Keeps the log (and the replay after a crash) about as big as the
    /// unflushed data. Returns the checkpoint's bytes (0 without a log).
    pub async fn checkpoint_wal(self: &Arc<Self>) -> Result<u64, IngesterError> {
        let Some(state) = &self.wal else {
            return Ok(0);
        };
        let wal_error = |e: strata_wal::WalError| IngesterError::Wal(e.to_string());
        let cut = state.wal.cut().await.map_err(wal_error)?;
        // Everything logged before the cut is in memory now (samples are
        // appended before their records are queued) or in the store. The
        // walk over every series and the write run on the blocking pool.
        let dir = state.wal.dir().to_path_buf();
        let me = self.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            strata_wal::write_checkpoint(&dir, cut, me.checkpoint_records())
        })
        .await
        .map_err(|e| IngesterError::Wal(format!("checkpoint task failed: {e}")))?
        .map_err(wal_error)?;
        self.metrics.wal_checkpoints.inc();
        Ok(bytes)
    }

    /// The records a checkpoint holds: a new epoch, every series under its
    /// ID, and the chunks of each that only memory holds.
    fn checkpoint_records(&self) -> Vec<Vec<u8>> {
        const PER_RECORD: usize = 10_000;
        let mut records = vec![wal_records::encode_epoch()];
        for db in self.all_tenants() {
            let tenant = db.id().to_string();
            let mut series: Vec<(u32, Vec<(String, String)>)> = Vec::new();
            let mut chunks: Vec<(u32, crate::ChunkData)> = Vec::new();
            let flush = |series: &mut Vec<(u32, Vec<(String, String)>)>,
                         chunks: &mut Vec<(u32, crate::ChunkData)>,
                         records: &mut Vec<Vec<u8>>| {
                if !series.is_empty() {
                    let pairs: Vec<Vec<(&str, &str)>> = series
                        .iter()
                        .map(|(_, l)| l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect())
                        .collect();
                    records.push(wal_records::encode_series(
                        &tenant,
                        series
                            .iter()
                            .zip(&pairs)
                            .map(|((r, _), p)| (*r, p.as_slice())),
                    ));
                    series.clear();
                }
                if !chunks.is_empty() {
                    let refs: Vec<(u32, u8, &[u8])> = chunks
                        .iter()
                        .map(|(r, c)| (*r, c.encoding as u8, &c.data[..]))
                        .collect();
                    records.push(wal_records::encode_chunks(&tenant, &refs));
                    chunks.clear();
                }
            };
            db.for_each_series(|s| {
                let unstored = s.data.lock().unstored();
                series.push((
                    s.id,
                    s.labels
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                ));
                chunks.extend(unstored.into_iter().map(|c| (s.id, c)));
                if series.len() >= PER_RECORD || chunks.len() >= PER_RECORD {
                    flush(&mut series, &mut chunks, &mut records);
                }
            });
            flush(&mut series, &mut chunks, &mut records);
        }
        records
    }

    /// Keeps the latest metadata of every family in the request. Entries
    /// over the tenant's family limit are dropped and counted; they never
    /// fail the push (the samples matter more than their descriptions).
    fn store_metadata(&self, db: &TenantDb, req: &WriteRequestRef<'_>) {
        let limit = self.limits_for(db.id()).max_metadata_per_tenant;
        for md in req.metadata() {
            if md.metric_family_name.is_empty() {
                self.metrics
                    .metadata_discarded
                    .get_or_create(&ReasonLabel {
                        reason: "missing_metric_name".to_string(),
                    })
                    .inc();
                continue;
            }
            let entry = FamilyMetadata {
                metric_type: md.metric_type.as_i32(),
                help: md.help.to_string(),
                unit: md.unit.to_string(),
            };
            if db.set_metadata(md.metric_family_name, entry, limit) {
                self.metrics.metadata_received.inc();
            } else {
                self.metrics
                    .metadata_discarded
                    .get_or_create(&ReasonLabel {
                        reason: "per_tenant_metadata_limit".to_string(),
                    })
                    .inc();
            }
        }
    }

    /// The tenant's metric metadata: one family or all, sorted by name, at
    /// most `limit` families (0 = all).
    pub fn metadata(
        &self,
        tenant: &str,
        family: Option<&str>,
        limit: usize,
    ) -> Vec<(String, FamilyMetadata)> {
        self.tenant(tenant)
            .map(|t| t.metadata(family, limit))
            .unwrap_or_default()
    }

    fn admit_series(&self, tenant: &str) -> Result<(), IngesterError> {
        let limit = self.config.max_series;
        let prev = self.series_total.fetch_add(1, Ordering::Relaxed);
        if limit > 0 && prev >= limit {
            self.series_total.fetch_sub(1, Ordering::Relaxed);
            self.metrics.rejected(tenant, "instance_series_limit", 1);
            return Err(IngesterError::InstanceSeriesLimit { limit });
        }
        self.metrics.series_created.inc();
        self.metrics.memory_series.set((prev + 1) as i64);
        Ok(())
    }

    pub fn query(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Vec<QueriedSeries> {
        self.tenant(tenant)
            .map(|t| t.query(matchers, start, end))
            .unwrap_or_default()
    }

    pub fn series(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Vec<Labels> {
        self.tenant(tenant)
            .map(|t| t.series(matchers, start, end, limit))
            .unwrap_or_default()
    }

    pub fn label_names(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Vec<String> {
        self.tenant(tenant)
            .map(|t| t.label_names(matchers, start, end))
            .unwrap_or_default()
    }

    pub fn label_values(
        &self,
        tenant: &str,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Vec<String> {
        self.tenant(tenant)
            .map(|t| t.label_values(name, matchers, start, end))
            .unwrap_or_default()
    }

    pub fn stats(&self, tenant: &str) -> TenantStats {
        self.tenant(tenant).map(|t| t.stats()).unwrap_or_default()
    }

    pub fn all_stats(&self) -> Vec<(String, TenantStats)> {
        let mut out: Vec<(String, TenantStats)> = self
            .tenants
            .read()
            .values()
            .map(|t| (t.id().to_string(), t.stats()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn note_cut(&self, bytes: usize) {
        if bytes > 0 {
            let total = self.unflushed_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
            self.metrics.unflushed_bytes.set(total as i64);
        }
    }

    fn all_tenants(&self) -> Vec<Arc<TenantDb>> {
        self.tenants.read().values().cloned().collect()
    }

    /// Closes the open chunk of every series, in every tenant, whose aligned
    /// window (`max_chunk_age`) is over by `now_ms` (Unix ms, wall clock).
    /// CPU work over every series: call it from a blocking thread
    /// ([`Ingester::run_chunk_age_sweep`] does).
    pub fn cut_aged_chunks(&self, now_ms: i64) -> SweepOutcome {
        let started = std::time::Instant::now();
        let window_ms = self.window_ms();
        let mut outcome = SweepOutcome::default();
        let mut bytes = 0;
        for t in self.all_tenants() {
            let (checked, cut, b) = t.cut_finished_heads(now_ms, window_ms);
            outcome.series_checked += checked;
            outcome.chunks_cut += cut;
            bytes += b;
        }
        self.note_cut(bytes);
        self.metrics
            .chunks_cut_by_age_sweep
            .inc_by(outcome.chunks_cut as u64);
        self.metrics.chunk_age_sweeps.inc();
        self.metrics
            .chunk_age_sweep_seconds
            .set(started.elapsed().as_secs_f64());
        outcome
    }

    /// One flush cycle at wall-clock time `now_ms` (see [`crate::flush`]).
    /// With `everything`, open chunks are closed and every unflushed chunk
    /// is written at once, whatever its window and this ingester's rank (as
    /// on shutdown and scale-down). Without a sink, returns at once.
    pub async fn flush_cycle(self: &Arc<Self>, now_ms: i64, everything: bool) -> FlushOutcome {
        let Some(sink) = self.sink.clone() else {
            return FlushOutcome::default();
        };
        let _one_at_a_time = self.flushing.lock().await;
        let started = std::time::Instant::now();
        let this = self.clone();
        let cut = tokio::task::spawn_blocking(move || {
            if everything {
                let mut bytes = 0;
                for t in this.all_tenants() {
                    bytes += t.cut_all_heads(now_ms).1;
                }
                this.note_cut(bytes);
            } else {
                this.cut_aged_chunks(now_ms);
            }
        })
        .await;
        if let Err(e) = cut {
            tracing::warn!(error = %e, "closing chunks before a flush failed");
        }
        let tenants = self.all_tenants();
        let concurrency = self.config.flush_concurrency.max(1);
        let mut outcome = FlushOutcome::default();
        let mut results = futures::stream::iter(tenants.into_iter().map(|t| {
            let this = self.clone();
            let sink = sink.clone();
            async move { this.flush_tenant(t, sink, now_ms, everything).await }
        }))
        .buffer_unordered(concurrency);
        while let Some(o) = results.next().await {
            outcome.add(o);
        }
        drop(results);

        // Release what the store now holds, and series holding nothing.
        let retain_ms = duration_ms(self.config.retain_period);
        let idle_ms = duration_ms(self.config.series_idle_timeout);
        let this = self.clone();
        let window_ms = self.window_ms();
        let released = tokio::task::spawn_blocking(move || {
            let mut total = Released::default();
            for t in this.all_tenants() {
                let r = t.release(
                    now_ms.saturating_sub(retain_ms),
                    now_ms.saturating_sub(idle_ms),
                    window_ms,
                );
                total.chunks_dropped += r.chunks_dropped;
                total.series_removed += r.series_removed;
                total.unflushed_bytes += r.unflushed_bytes;
                if let Some(o) = r.oldest_unflushed {
                    total.oldest_unflushed =
                        Some(total.oldest_unflushed.map_or(o, |x: i64| x.min(o)));
                }
            }
            let removed = total.series_removed;
            if removed > 0 {
                let prev = this.series_total.fetch_sub(removed, Ordering::Relaxed);
                this.metrics
                    .memory_series
                    .set(prev.saturating_sub(removed) as i64);
            }
            this.unflushed_bytes
                .store(total.unflushed_bytes, Ordering::Relaxed);
            this.metrics
                .unflushed_bytes
                .set(total.unflushed_bytes as i64);
            this.metrics.flush_queue_oldest_seconds.set(
                total
                    .oldest_unflushed
                    .map_or(0.0, |o| (now_ms.saturating_sub(o)).max(0) as f64 / 1000.0),
            );
            total
        })
        .await;
        match released {
            Ok(r) => {
                outcome.chunks_dropped = r.chunks_dropped;
                outcome.series_removed = r.series_removed;
                self.metrics.chunks_dropped.inc_by(r.chunks_dropped as u64);
                self.metrics.series_removed.inc_by(r.series_removed as u64);
            }
            Err(e) => tracing::warn!(error = %e, "releasing flushed chunks failed"),
        }
        self.metrics.flush_cycles.inc();
        self.metrics
            .flush_cycle_seconds
            .set(started.elapsed().as_secs_f64());
        outcome
    }

    async fn flush_tenant(
        self: Arc<Self>,
        tenant: Arc<TenantDb>,
        sink: Arc<dyn ChunkSink>,
        now_ms: i64,
        everything: bool,
    ) -> FlushOutcome {
        let window_ms = self.window_ms();
        let delay_ms = duration_ms(self.config.flush_delay);
        let takeover_ms = duration_ms(self.config.flush_takeover_delay);
        let this = self.clone();
        let t = tenant.clone();
        let pending = tokio::task::spawn_blocking(move || {
            let rank = this.rank.clone();
            let tenant_id = t.id().to_string();
            let due_at = if everything { i64::MAX } else { now_ms };
            t.pending_flushes(window_ms, due_at, (delay_ms, takeover_ms), |series| {
                let labels: Vec<(&str, &str)> =
                    series.labels.iter().map(|(n, v)| (&**n, &**v)).collect();
                rank.rank(&tenant_id, &labels)
            })
        })
        .await;
        let mut outcome = FlushOutcome::default();
        let pending = match pending {
            Ok(p) => p,
            Err(e) => {
                outcome.first_error = Some(format!("collecting chunks to flush failed: {e}"));
                return outcome;
            }
        };
        self.metrics.flush_queue_series.set(pending.len() as i64);
        for (window, group) in group_by_window(pending, window_ms) {
            let from = window.saturating_mul(window_ms);
            let to = from.saturating_add(window_ms);
            // Replicas other than the first look for identical chunks stored
            // by another replica before writing their own (flushing
            // everything ranks every series first).
            let (others, mut to_write): (Vec<PendingFlush>, Vec<PendingFlush>) =
                group.into_iter().partition(|p| p.rank > 0);
            if !others.is_empty() {
                let keys: Vec<(u64, u32)> = others
                    .iter()
                    .map(|p| (p.series.fingerprint, chunks_digest(&p.chunks)))
                    .collect();
                match sink.stored(tenant.id(), from, to, &keys).await {
                    Ok(stored) => {
                        for p in others {
                            if stored.contains(&p.series.fingerprint) {
                                let spans = spans_of(&p.chunks);
                                outcome.chunks_deduped += spans.len();
                                p.series.data.lock().mark_flushed(&spans, now_ms);
                            } else {
                                to_write.push(p);
                            }
                        }
                    }
                    Err(e) => {
                        // Unknown: write our copy rather than risk none.
                        tracing::warn!(tenant = tenant.id(), error = %e, "checking other replicas' flushes failed");
                        to_write.extend(others);
                    }
                }
            }
            let batch_size = self.config.flush_batch_series.max(1);
            while !to_write.is_empty() {
                let rest = to_write.split_off(to_write.len().min(batch_size));
                let part = std::mem::replace(&mut to_write, rest);
                let in_flight: Vec<InFlight> = part
                    .iter()
                    .map(|p| InFlight {
                        series: p.series.clone(),
                        spans: spans_of(&p.chunks),
                    })
                    .collect();
                let batch = FlushBatch {
                    tenant: tenant.id().to_string(),
                    window_start_ms: from,
                    window_end_ms: to,
                    series: part
                        .into_iter()
                        .map(|p| FlushSeries {
                            fingerprint: p.series.fingerprint,
                            labels: p.labels,
                            chunks: p.chunks,
                        })
                        .collect(),
                };
                let chunks: usize = batch.series.iter().map(|s| s.chunks.len()).sum();
                let bytes: usize = batch
                    .series
                    .iter()
                    .flat_map(|s| s.chunks.iter())
                    .map(|c| c.data.len())
                    .sum();
                match sink.write(&batch).await {
                    Ok(()) => {
                        for f in in_flight {
                            f.series.data.lock().mark_flushed(&f.spans, now_ms);
                        }
                        outcome.chunks_flushed += chunks;
                        self.metrics.chunks_flushed.inc_by(chunks as u64);
                        self.metrics.chunk_bytes_flushed.inc_by(bytes as u64);
                    }
                    Err(e) => {
                        outcome.batches_failed += 1;
                        self.metrics.flush_failures.inc();
                        tracing::warn!(tenant = tenant.id(), window_start_ms = from, series = batch.series.len(), error = %e, "flush failed; chunks stay in memory and are retried");
                        if outcome.first_error.is_none() {
                            outcome.first_error = Some(format!("tenant {}: {e}", tenant.id()));
                        }
                        // The store is failing: leave the rest for the next
                        // cycle rather than hammering it.
                        break;
                    }
                }
            }
        }
        self.metrics
            .chunks_flush_deduped
            .inc_by(outcome.chunks_deduped as u64);
        outcome
    }

    /// Flushes every chunk, open ones included, retrying failed batches
    /// until everything is stored or `deadline` passes. Returns the bytes
    /// still unflushed (0 when everything is stored).
    pub async fn flush_everything(self: &Arc<Self>, deadline: std::time::Instant) -> usize {
        if self.sink.is_none() {
            return 0;
        }
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            let outcome = self.flush_cycle(self.now_ms(), true).await;
            tracing::info!(
                chunks_flushed = outcome.chunks_flushed,
                failed_batches = outcome.batches_failed,
                "flushed everything"
            );
            let left = self.unflushed_bytes();
            if outcome.batches_failed == 0 && left == 0 {
                return 0;
            }
            if std::time::Instant::now() + backoff >= deadline {
                return left;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
        }
    }

    /// Runs a flush cycle every `flush_period` until `stop` completes. After
    /// a cycle in which batches failed (the store is unreachable), the next
    /// comes sooner: 1 s, then doubling up to `flush_period`, each of these
    /// retry waits jittered (a random point in its upper half) so that
    /// ingesters coming out of the same outage do not retry in lockstep. Failed chunks stay
    /// in memory and in the WAL until a cycle stores them.
    pub async fn run_flush_loop(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        let period = self.config.flush_period;
        if self.sink.is_none() || period.is_zero() {
            return;
        }
        tokio::pin!(stop);
        let mut wait = period;
        loop {
            let sleep = if wait < period { jittered(wait) } else { wait };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(sleep) => {}
            }
            let outcome = self.flush_cycle(self.now_ms(), false).await;
            if outcome != FlushOutcome::default() {
                tracing::info!(
                    chunks_flushed = outcome.chunks_flushed,
                    chunks_deduped = outcome.chunks_deduped,
                    failed_batches = outcome.batches_failed,
                    chunks_dropped = outcome.chunks_dropped,
                    series_removed = outcome.series_removed,
                    error = outcome.first_error.as_deref().unwrap_or(""),
                    "flush cycle"
                );
            }
            wait = if outcome.batches_failed > 0 {
                if wait >= period {
                    std::time::Duration::from_secs(1).min(period)
                } else {
                    (wait * 2).min(period)
                }
            } else {
                period
            };
        }
    }

    /// Runs [`Ingester::cut_aged_chunks`] every `chunk_age_check_period`
    /// (on the blocking pool) until `stop` completes. Returns at once when
    /// the period is zero.
    pub async fn run_chunk_age_sweep(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        every(self.config.chunk_age_check_period, stop, || async {
            let this = self.clone();
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || {
                let now = this.now_ms();
                this.cut_aged_chunks(now)
            })
            .await
            {
                Ok(outcome) => tracing::debug!(
                    series_checked = outcome.series_checked,
                    chunks_cut = outcome.chunks_cut,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "chunk age sweep"
                ),
                Err(err) => tracing::warn!(error = %err, "chunk age sweep task failed"),
            }
        })
        .await;
    }

    /// Refreshes per-tenant ingestion rates; call every `secs` seconds.
    pub fn tick_rates(&self, secs: f64) {
        let tenants = self.all_tenants();
        for t in &tenants {
            t.tick_rate(secs);
        }
        // Per-tenant usage: tenants that left memory leave the metric.
        let gauge = &self.metrics.tenant_memory_series;
        gauge.clear();
        for t in &tenants {
            gauge
                .get_or_create(&crate::metrics::TenantLabel {
                    tenant: t.id().to_string(),
                })
                .set(i64::try_from(t.series_count()).unwrap_or(i64::MAX));
        }
    }
}

/// Runs `work` every `period` (first after one period; a late run delays
/// the next) until `stop` completes; returns at once for a zero period.
async fn every<F, Fut>(
    period: std::time::Duration,
    stop: impl std::future::Future<Output = ()> + Send,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if period.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        work().await;
    }
}

/// A random duration in the upper half of `d` ("equal jitter").
fn jittered(d: std::time::Duration) -> std::time::Duration {
    let half = d / 2;
    let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    half + std::time::Duration::from_millis(rand::random_range(0..=spread))
}

/// What one chunk-age sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    pub series_checked: usize,
    pub chunks_cut: usize,
}

fn spans_of(chunks: &[crate::ChunkData]) -> Vec<(i64, i64)> {
    chunks.iter().map(|c| (c.min_time, c.max_time)).collect()
}

/// Wall-clock time in Unix milliseconds.
pub use strata_model::duration::now_ms as unix_now_ms;

fn labels_text(labels: &[(&str, &str)]) -> String {
    Labels::from_pairs(labels.iter().copied()).to_string()
}
