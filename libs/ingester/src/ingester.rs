use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use strata_model::{fingerprint, validate_tenant_id, Labels, Matcher};
use strata_remote_write::WriteRequestRef;

use crate::metrics::ReasonLabel;
use crate::tenant::CreateError;
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
    metrics: IngesterMetrics,
}

impl Ingester {
    pub fn new(config: IngesterConfig, metrics: IngesterMetrics) -> Self {
        Self {
            config,
            tenants: RwLock::new(HashMap::new()),
            series_total: AtomicUsize::new(0),
            metrics,
        }
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
        self.metrics.push_requests.inc();
        let db = self.tenant_or_create(tenant)?;
        let max_samples = self.config.max_samples_per_chunk.max(1);
        let max_age_ms = i64::try_from(self.config.max_chunk_age.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let mut outcome = PushOutcome::default();
        let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
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
            let fp = fingerprint(labels.iter().copied());
            let created =
                match db.get_or_create(fp, &labels, &self.config.limits, || self.admit_series()) {
                    Ok(c) => c,
                    Err(e) => {
                        // Samples appended before the failure stay; count them.
                        db.add_appended(outcome.appended);
                        self.metrics.samples_appended.inc_by(outcome.appended);
                        return Err(e);
                    }
                };
            let s = match created {
                Ok(s) => s,
                Err(err) => {
                    let (reason, msg) = match err {
                        CreateError::TenantLimit(limit) => (
                            "per_tenant_series_limit",
                            format!("tenant {tenant} reached its limit of {limit} series in this ingester"),
                        ),
                        CreateError::MetricLimit(limit) => (
                            "per_metric_series_limit",
                            format!("tenant {tenant} reached its limit of {limit} series for one metric name"),
                        ),
                    };
                    self.metrics.rejected(reason, samples.len() as u64);
                    outcome.reject(samples.len() as u64, || {
                        format!("{msg}; series {} was not created", labels_text(&labels))
                    });
                    continue;
                }
            };
            let mut data = s.data.lock();
            for sample in samples {
                match data.append(sample.timestamp, sample.value, max_samples, max_age_ms) {
                    Ok(true) => outcome.appended += 1,
                    Ok(false) => {}
                    Err(e) => {
                        self.metrics.rejected(e.reason(), 1);
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
        }
        db.add_appended(outcome.appended);
        self.metrics.samples_appended.inc_by(outcome.appended);
        if req.exemplar_count() > 0 {
            let capacity = self.config.max_exemplars;
            crate::exemplars::append_request(&db, req, capacity, &self.metrics);
        }
        self.store_metadata(&db, req);
        Ok(outcome)
    }

    /// Keeps the latest metadata of every family in the request. Entries
    /// over the tenant's family limit are dropped and counted; they never
    /// fail the push (the samples matter more than their descriptions).
    fn store_metadata(&self, db: &TenantDb, req: &WriteRequestRef<'_>) {
        let limit = self.config.limits.max_metadata_per_tenant;
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

    fn admit_series(&self) -> Result<(), IngesterError> {
        let limit = self.config.max_series;
        let prev = self.series_total.fetch_add(1, Ordering::Relaxed);
        if limit > 0 && prev >= limit {
            self.series_total.fetch_sub(1, Ordering::Relaxed);
            self.metrics.rejected("instance_series_limit", 1);
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

    /// Closes the open chunk of every series, in every tenant, whose first
    /// open sample is at least `max_chunk_age` older than `now_ms` (Unix
    /// ms, wall clock). CPU work over every series: call it from a blocking
    /// thread ([`Ingester::run_chunk_age_sweep`] does).
    pub fn cut_aged_chunks(&self, now_ms: i64) -> SweepOutcome {
        let started = std::time::Instant::now();
        let max_age_ms = i64::try_from(self.config.max_chunk_age.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let tenants: Vec<Arc<TenantDb>> = self.tenants.read().values().cloned().collect();
        let mut outcome = SweepOutcome::default();
        for t in tenants {
            let (checked, cut) = t.cut_aged_heads(now_ms, max_age_ms);
            outcome.series_checked += checked;
            outcome.chunks_cut += cut;
        }
        self.metrics
            .chunks_cut_by_age_sweep
            .inc_by(outcome.chunks_cut as u64);
        self.metrics.chunk_age_sweeps.inc();
        self.metrics
            .chunk_age_sweep_seconds
            .set(started.elapsed().as_secs_f64());
        outcome
    }

    /// Runs [`Ingester::cut_aged_chunks`] every `chunk_age_check_period`
    /// (on the blocking pool) until `stop` completes. Returns at once when
    /// the period is zero.
    pub async fn run_chunk_age_sweep(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        let period = self.config.chunk_age_check_period;
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
            let this = self.clone();
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || this.cut_aged_chunks(unix_now_ms())).await {
                Ok(outcome) => tracing::debug!(
                    series_checked = outcome.series_checked,
                    chunks_cut = outcome.chunks_cut,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "chunk age sweep"
                ),
                Err(err) => tracing::warn!(error = %err, "chunk age sweep task failed"),
            }
        }
    }

    /// Refreshes per-tenant ingestion rates; call every `secs` seconds.
    pub fn tick_rates(&self, secs: f64) {
        let tenants: Vec<Arc<TenantDb>> = self.tenants.read().values().cloned().collect();
        for t in tenants {
            t.tick_rate(secs);
        }
    }
}

/// What one chunk-age sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    pub series_checked: usize,
    pub chunks_cut: usize,
}

fn unix_now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn labels_text(labels: &[(&str, &str)]) -> String {
    Labels::from_pairs(labels.iter().copied()).to_string()
}
