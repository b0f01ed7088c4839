use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use strata_ingester_client::{with_tenant, IngesterClientPool, LocalIngester};
use strata_model::METRIC_NAME;
use strata_proto::RawWriteRequest;
use strata_remote_write::{
    decompress, encode_metadata_raw_into, encode_series_parts_into,
    encode_series_parts_with_exemplars_into, encode_series_raw_into, ExemplarView, LabelRef,
    WriteRequestRef,
};
use strata_ring::{
    now_ms, shard_key, shard_key_all_labels, Operation, Ring, RingError, RingSnapshot,
};
use strata_server::admission::Admission;

use crate::ha::{HaDecision, HaPending, HaStore, HaTracker, HaVerdict, MemoryHaStore};
use crate::metrics::TenantLabel;
use crate::validate::{
    exemplar_problem, series_text, validate_series, TimeWindow, TimestampProblem,
};
use crate::{DistributorConfig, DistributorMetrics, PushError, RateLimiter};

/// What a successful push stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushSummary {
    pub series: usize,
    pub samples: u64,
}

pub struct Distributor {
    config: DistributorConfig,
    ring: Arc<Ring>,
    pool: Arc<IngesterClientPool>,
    limiter: RateLimiter,
    metrics: DistributorMetrics,
    /// The ingester in this process, if any: batches for it skip gRPC.
    local: Option<Arc<dyn LocalIngester>>,
    /// Deduplication of HA pairs, when `config.ha_tracker.enabled`.
    ha: Option<Arc<HaTracker>>,
    /// Limits on push requests in flight.
    admission: Arc<Admission>,
    /// Per-tenant runtime overrides of `config.limits`, read per request.
    overrides: strata_overrides::Overrides,
    /// Tenants with a shard size (`ingestion_tenant_shard_size`) write to
    /// their shuffle shard of the ring only.
    shuffle: Option<Arc<strata_ring::ShuffleSharding>>,
    /// Healthy distributors (the global rate strategy divides by it); set
    /// once the push API serves.
    distributors: std::sync::OnceLock<Arc<strata_ring::Ring>>,
}

/// The series of one request destined for one ingester.
struct Batch {
    instance: String,
    addr: String,
    body: Vec<u8>,
    series: Vec<u32>,
}

/// Replication requirement of one series or metadata entry.
#[derive(Clone, Copy)]
struct Need {
    min_success: u16,
    max_errors: u16,
}

/// The outcome of decoding, validating and placing a request.
struct Plan {
    batches: Vec<Batch>,
    needs: Vec<Need>,
    samples: u64,
    /// Valid exemplars forwarded (invalid ones are dropped and counted).
    exemplars: u64,
    /// Series to store (`needs` also counts metadata entries).
    series: usize,
    /// Why the first refused series or sample was refused.
    refused: Option<String>,
    refused_samples: u64,
    /// A push of an HA replica the cache did not let through (`ha.rs`);
    /// nothing else is planned then.
    ha: Option<HaPending>,
    /// The tenant's limits the plan was made under (the rate check uses
    /// them too: looked up once per push).
    limits: crate::DistributorLimits,
    /// Every series and metadata entry of the request goes unchanged to
    /// every batch: a single batch can be the request's own body.
    unchanged: bool,
}

/// A push body: snappy-compressed from HTTP, or already raw in process.
#[derive(Clone)]
enum Body {
    Snappy(Bytes),
    Raw(Bytes),
}

impl Distributor {
    pub fn new(
        config: DistributorConfig,
        ring: Arc<Ring>,
        pool: Arc<IngesterClientPool>,
        metrics: DistributorMetrics,
    ) -> Self {
        let admission = Admission::new(
            "distributor overloaded",
            (
                config.max_inflight_push_requests,
                "distributor.max_inflight_push_requests",
            ),
            (
                config.max_inflight_push_bytes,
                "distributor.max_inflight_push_bytes",
            ),
        );
        // The one-process store; `with_ha_store` gives a shared one.
        let ha = config.ha_tracker.enabled.then(|| {
            Arc::new(HaTracker::new(
                config.ha_tracker.clone(),
                Arc::new(MemoryHaStore::new()),
                metrics.clone(),
            ))
        });
        Self {
            config,
            ring,
            pool,
            limiter: RateLimiter::new(),
            metrics,
            local: None,
            ha,
            admission,
            overrides: strata_overrides::Overrides::default(),
            shuffle: None,
            distributors: std::sync::OnceLock::new(),
        }
    }

    /// Reads each tenant's limits through `overrides` (the runtime config
    /// file) on every request.
    pub fn with_overrides(mut self, overrides: strata_overrides::Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// The limits in force for `tenant` now (runtime overrides, then
    /// `tenant_limits`, then `limits`).
    pub fn limits_for(&self, tenant: &str) -> crate::DistributorLimits {
        self.config.effective_limits(tenant, &self.overrides)
    }

    /// Limits on push requests in flight: the HTTP handler admits each
    /// request before it reads the body.
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// Sends batches for `local`'s instance ID to it by function call
    /// instead of gRPC (the one-process mode).
    pub fn with_local_ingester(mut self, local: Arc<dyn LocalIngester>) -> Self {
        self.local = Some(local);
        self
    }

    /// The distributor ring: with `ingestion_rate_strategy: global`, each
    /// tenant's rate is divided by its healthy members.
    pub fn set_distributor_ring(&self, ring: Arc<strata_ring::Ring>) {
        let _ = self.distributors.set(ring);
    }

    /// The share of a tenant's ingestion rate this distributor enforces.
    fn local_rate(&self, rate: f64) -> f64 {
        match (
            &self.config.ingestion_rate_strategy,
            self.distributors.get(),
        ) {
            (crate::config::RateStrategy::Global, Some(ring)) => {
                rate / ring.healthy_count().max(1) as f64
            }
            _ => rate,
        }
    }

    /// Places each tenant's series on its shuffle shard of the ring (see
    /// `ingestion_tenant_shard_size`).
    pub fn with_shuffle_sharding(mut self, shuffle: Arc<strata_ring::ShuffleSharding>) -> Self {
        self.shuffle = Some(shuffle);
        self
    }

    /// Keeps the elected replicas of HA pairs in `store` (shared with the
    /// other distributors) instead of this process's memory. Does nothing
    /// unless `ha_tracker.enabled`.
    pub fn with_ha_store(mut self, store: Arc<dyn HaStore>) -> Self {
        if self.config.ha_tracker.enabled {
            self.ha = Some(Arc::new(HaTracker::new(
                self.config.ha_tracker.clone(),
                store,
                self.metrics.clone(),
            )));
        }
        self
    }

    /// The HA tracker, when `ha_tracker.enabled`.
    pub fn ha_tracker(&self) -> Option<&Arc<HaTracker>> {
        self.ha.as_ref()
    }

    pub fn config(&self) -> &DistributorConfig {
        &self.config
    }

    pub fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }

    pub fn metrics(&self) -> &DistributorMetrics {
        &self.metrics
    }

    /// Handles one snappy-compressed remote write body for `tenant`.
    ///
    /// Invalid series are dropped and the rest stored, then the request is
    /// answered 400 naming the first problem (as Cortex and Mimir do), so one
    /// bad series never makes a sender drop a whole batch of good ones.
    pub async fn push(
        self: &Arc<Self>,
        tenant: &str,
        body: Bytes,
    ) -> Result<PushSummary, PushError> {
        let started = Instant::now();
        let result = self.push_inner(tenant, body).await;
        self.metrics
            .request_duration
            .observe(started.elapsed().as_secs_f64());
        let status = match &result {
            Ok(_) => "200".to_string(),
            Err(e) => e.status().as_u16().to_string(),
        };
        self.metrics
            .requests
            .get_or_create(&crate::metrics::StatusLabel { status })
            .inc();
        result
    }

    /// Writes series produced in this process (the ruler's results):
    /// validated, limited, replicated and counted as a remote write body
    /// is, without compressing and decompressing it.
    pub async fn push_series(
        self: &Arc<Self>,
        tenant: &str,
        series: &[strata_remote_write::OwnedTimeSeries],
    ) -> Result<PushSummary, PushError> {
        let raw = Bytes::from(strata_remote_write::encode_write_request(series, &[]));
        self.push_body(tenant, Body::Raw(raw)).await
    }

    async fn push_inner(
        self: &Arc<Self>,
        tenant: &str,
        body: Bytes,
    ) -> Result<PushSummary, PushError> {
        self.push_body(tenant, Body::Snappy(body)).await
    }

    async fn push_body(
        self: &Arc<Self>,
        tenant: &str,
        body: Body,
    ) -> Result<PushSummary, PushError> {
        // A push of an HA replica the cache did not let through is dropped
        // (202), or planned again with the store's answer.
        let mut answer = None;
        let plan = loop {
            let mut plan = self.plan_on_cpu(tenant, body.clone(), answer).await?;
            match (plan.ha.take(), &self.ha) {
                (Some(pending), Some(ha)) => answer = Some(ha.settle(tenant, pending).await?),
                _ => break plan,
            }
        };

        let limits = &plan.limits;
        // Exemplars count against the rate as samples do (as in Mimir).
        let units = plan.samples + plan.exemplars;
        if units > 0 {
            if let Err(err) = self.limiter.allow(
                tenant,
                units,
                self.local_rate(limits.ingestion_rate),
                limits.ingestion_burst_size,
            ) {
                return Err(if err.is_retryable() {
                    self.metrics.discarded(tenant, "rate_limited", plan.samples);
                    PushError::RateLimited(err.to_string())
                } else {
                    // Retrying cannot help: 400, or Prometheus retries forever.
                    self.metrics
                        .discarded(tenant, "request_larger_than_burst", plan.samples);
                    PushError::BadRequest(err.to_string())
                });
            }
        }

        let series = plan.series;
        let rejected = self.send(tenant, plan.batches, &plan.needs).await?;
        self.metrics
            .received_samples
            .get_or_create(&TenantLabel {
                tenant: tenant.to_string(),
            })
            .inc_by(plan.samples);

        if let Some(msg) = plan.refused {
            return Err(PushError::BadRequest(if plan.refused_samples > 1 {
                format!(
                    "{msg} (and more: {} samples refused in this request)",
                    plan.refused_samples
                )
            } else {
                msg
            }));
        }
        if let Some(msg) = rejected {
            return Err(PushError::BadRequest(msg));
        }
        Ok(PushSummary {
            series,
            samples: plan.samples,
        })
    }

    /// [`Distributor::plan`] or [`Distributor::plan_decoded`] on the
    /// blocking pool.
    async fn plan_on_cpu(
        self: &Arc<Self>,
        tenant: &str,
        body: Body,
        ha: Option<HaDecision>,
    ) -> Result<Plan, PushError> {
        let this = self.clone();
        let tenant = tenant.to_string();
        strata_server::cpu::run(move || match &body {
            Body::Snappy(b) => this.plan(&tenant, b, ha.as_ref()),
            Body::Raw(raw) => this.plan_decoded(&tenant, raw, ha.as_ref()),
        })
        .await
        .map_err(|e| PushError::Internal(format!("push task failed: {e}")))?
    }

    /// Decompresses, decodes, validates and places every series (CPU work,
    /// run on the blocking pool). `ha` is the HA tracker's answer for this
    /// push, when it had to ask its store.
    fn plan(&self, tenant: &str, body: &[u8], ha: Option<&HaDecision>) -> Result<Plan, PushError> {
        let raw = decompress(body, self.config.max_decompressed_size).map_err(|e| match e {
            e if e.is_too_large() => PushError::TooLarge(format!(
                "{e}; send smaller batches (Prometheus: queue_config.max_samples_per_send)"
            )),
            other => PushError::BadRequest(format!(
                "cannot decompress body: {other}; remote write bodies are snappy block-compressed"
            )),
        })?;
        let mut plan = self.plan_decoded(tenant, &raw, ha)?;
        // The usual one-ingester case (the one-process mode): the batch
        // would be a copy of the request, series by series. Send the
        // request's own bytes instead.
        if plan.unchanged && plan.batches.len() == 1 {
            if let Some(batch) = plan.batches.first_mut() {
                batch.body = raw;
            }
        }
        Ok(plan)
    }

    /// Decodes, validates and places every series of an uncompressed
    /// write request.
    fn plan_decoded(
        &self,
        tenant: &str,
        raw: &[u8],
        ha: Option<&HaDecision>,
    ) -> Result<Plan, PushError> {
        let req = WriteRequestRef::decode(raw).map_err(|e| {
            PushError::BadRequest(format!("cannot decode remote write request: {e}"))
        })?;

        let limits = &self.limits_for(tenant);
        // HA pairs (ha.rs): only the elected replica's pushes are stored,
        // without the replica label.
        let ha_strip = match self
            .ha
            .as_ref()
            .map(|t| t.verdict(tenant, &req, limits.max_label_value_length, ha, now_ms()))
        {
            None | Some(HaVerdict::Untouched) => None,
            Some(HaVerdict::Accept { strip }) => Some(strip),
            Some(HaVerdict::Pending(pending)) => {
                return Ok(Plan {
                    batches: Vec::new(),
                    needs: Vec::new(),
                    samples: 0,
                    exemplars: 0,
                    series: 0,
                    refused: None,
                    refused_samples: 0,
                    ha: Some(pending),
                    limits: limits.clone(),
                    unchanged: false,
                })
            }
        };
        // Samples before 1970, too far in the future or (with
        // `reject_old_samples_max_age`) too old are refused.
        let window = TimeWindow::new(limits, now_ms());
        let snapshot = self.ring.snapshot();
        // Heartbeats are judged as of the last successful ring refresh, so an
        // outage of the ring store does not make every ingester look dead.
        let now = snapshot.judged_at(now_ms());
        let snapshot = match &self.shuffle {
            Some(shuffle) => {
                shuffle.shard_sized(&snapshot, tenant, limits.ingestion_tenant_shard_size, now)
            }
            None => snapshot,
        };

        let mut plan = Plan {
            batches: Vec::new(),
            needs: Vec::with_capacity(req.series_count() + req.metadata().len()),
            samples: 0,
            exemplars: 0,
            series: 0,
            refused: None,
            refused_samples: 0,
            ha: None,
            limits: limits.clone(),
            unchanged: true,
        };
        let refuse = |plan: &mut Plan, reason: &str, n: u64, msg: &dyn Fn() -> String| {
            plan.unchanged = false;
            self.metrics.discarded(tenant, reason, n);
            plan.refused_samples += n;
            if plan.refused.is_none() {
                plan.refused = Some(msg());
            }
        };
        // Replication sets by shard key, and batch index by instance ID.
        let mut sets: HashMap<u32, (Vec<usize>, Need)> = HashMap::new();
        let mut batch_of: HashMap<String, usize> = HashMap::new();
        let mut labels: Vec<LabelRef<'_>> = Vec::with_capacity(16);
        let mut samples = Vec::with_capacity(16);
        // Allocated only by requests with exemplars.
        let mut exemplars: Vec<ExemplarView<'_, '_>> = Vec::new();

        for series in req.series() {
            let all_labels = series.labels();
            labels.clear();
            labels.extend(
                all_labels
                    .iter()
                    .filter(|l| !l.value.is_empty() && Some(l.name) != ha_strip)
                    .copied(),
            );
            let sample_count = series.samples().len() as u64 + series.histogram_count() as u64;
            if let Err(e) = validate_series(&labels, limits) {
                refuse(&mut plan, e.reason(), sample_count.max(1), &|| {
                    e.to_string()
                });
                continue;
            }
            if series.histogram_count() > 0 {
                let n = series.histogram_count() as u64;
                refuse(&mut plan, "native_histograms_unsupported", n, &|| {
                    format!(
                        "series {} carries native histogram samples, which this version does not store yet",
                        series_text(&labels)
                    )
                });
            }
            samples.clear();
            samples.extend(
                series
                    .samples()
                    .iter()
                    .filter(|s| window.contains(s.timestamp))
                    .copied(),
            );
            if samples.len() < series.samples().len() {
                // (count, first timestamp) of each kind of refusal.
                let mut refused = [(0u64, 0i64); TimestampProblem::ALL.len()];
                for s in series.samples() {
                    if let Some(p) = window.problem(s.timestamp) {
                        let tally = &mut refused[p as usize];
                        if tally.0 == 0 {
                            tally.1 = s.timestamp;
                        }
                        tally.0 += 1;
                    }
                }
                for p in TimestampProblem::ALL {
                    let (n, first) = refused[p as usize];
                    if n > 0 {
                        refuse(&mut plan, p.reason(), n, &|| {
                            window.message(p, &series_text(&labels), first)
                        });
                    }
                }
            }
            // Invalid exemplars are dropped and counted, never refused with
            // the request: as in Mimir, since OpenTelemetry senders emit empty
            // ones by default.
            exemplars.clear();
            let mut exemplars_dropped = false;
            if series.exemplar_count() > 0 {
                for e in series.exemplars() {
                    match exemplar_problem(&e, window.max_ts) {
                        None => exemplars.push(e),
                        Some(reason) => {
                            self.metrics.discarded_exemplar(tenant, reason);
                            exemplars_dropped = true;
                        }
                    }
                }
            }
            // Prometheus sends each exemplar in a series entry of its own,
            // without samples.
            if samples.is_empty() && exemplars.is_empty() {
                plan.unchanged = false;
                continue;
            }

            let key = if self.config.shard_by_all_labels {
                shard_key_all_labels(tenant, labels.iter().map(|l| (l.name, l.value)))
            } else {
                let name = labels
                    .iter()
                    .find(|l| l.name == METRIC_NAME)
                    .map(|l| l.value)
                    .unwrap_or("");
                shard_key(tenant, name)
            };
            let (targets, need) = replicas_for(
                key,
                &snapshot,
                now,
                &mut sets,
                &mut batch_of,
                &mut plan.batches,
            )?;
            let series_index = plan.needs.len() as u32;
            plan.needs.push(*need);
            let unchanged = labels.len() == all_labels.len()
                && samples.len() == series.samples().len()
                && series.histogram_count() == 0
                && !exemplars_dropped;
            plan.unchanged &= unchanged;
            for &t in targets.iter() {
                let batch = &mut plan.batches[t];
                if unchanged {
                    encode_series_raw_into(&mut batch.body, series.raw());
                } else if exemplars.is_empty() {
                    encode_series_parts_into(&mut batch.body, &labels, &samples);
                } else {
                    encode_series_parts_with_exemplars_into(
                        &mut batch.body,
                        &labels,
                        &samples,
                        &exemplars,
                    );
                }
                batch.series.push(series_index);
            }
            plan.samples += samples.len() as u64;
            plan.exemplars += exemplars.len() as u64;
            plan.series += 1;
        }

        // Metadata goes to the replicas of its metric family name, whatever
        // `shard_by_all_labels` says, so one family's description lives in
        // one place.
        for md in req.metadata() {
            if md.metric_family_name.is_empty() {
                refuse(&mut plan, "metadata_missing_metric_name", 1, &|| {
                    "metadata entry without a metric family name".to_string()
                });
                continue;
            }
            let longest = md
                .metric_family_name
                .len()
                .max(md.help.len())
                .max(md.unit.len());
            if longest > limits.max_metadata_length {
                refuse(&mut plan, "metadata_too_long", 1, &|| {
                    format!(
                        "metadata of metric family {:?} has a name, help or unit longer than {} bytes",
                        md.metric_family_name, limits.max_metadata_length
                    )
                });
                continue;
            }
            let key = shard_key(tenant, md.metric_family_name);
            let (targets, need) = replicas_for(
                key,
                &snapshot,
                now,
                &mut sets,
                &mut batch_of,
                &mut plan.batches,
            )?;
            let index = plan.needs.len() as u32;
            plan.needs.push(*need);
            for &t in targets.iter() {
                let batch = &mut plan.batches[t];
                encode_metadata_raw_into(&mut batch.body, md.raw);
                batch.series.push(index);
            }
        }
        Ok(plan)
    }

    /// Sends the batches in parallel and returns once every series reached
    /// its quorum (the slower replicas finish in the background), or as soon
    /// as one series cannot. `Ok(Some(msg))` reports samples the ingesters
    /// refused for their content.
    async fn send(
        &self,
        tenant: &str,
        batches: Vec<Batch>,
        needs: &[Need],
    ) -> Result<Option<String>, PushError> {
        if needs.is_empty() {
            return Ok(None);
        }
        let mut pending = FuturesUnordered::new();
        for batch in batches {
            let instance = batch.instance;
            let series = batch.series;
            if let Some(local) = self.local.as_ref().filter(|l| l.instance_id() == instance) {
                let local = local.clone();
                let tenant = tenant.to_string();
                let body = Bytes::from(batch.body);
                pending.push(tokio::spawn(async move {
                    let result = local
                        .push(&tenant, body)
                        .await
                        .map_err(|s| format!("{}: {}", status_name(s.code()), s.message()));
                    (instance, series, result)
                }));
                continue;
            }
            let client = self.pool.get(&batch.addr);
            let request = with_tenant(tenant, RawWriteRequest(Bytes::from(batch.body)));
            let handle = tokio::spawn(async move {
                let result = match (client, request) {
                    (Ok(mut c), Ok(r)) => c
                        .push(r)
                        .await
                        .map(|r| r.into_inner())
                        .map_err(|s| format!("{}: {}", status_name(s.code()), s.message())),
                    (Err(e), _) => Err(e.to_string()),
                    (_, Err(e)) => Err(e.to_string()),
                };
                (instance, series, result)
            });
            pending.push(handle);
        }

        let mut ok = vec![0u16; needs.len()];
        let mut failed = vec![0u16; needs.len()];
        let mut remaining = needs.len();
        let mut rejection: Option<String> = None;
        let mut last_error = String::new();
        while let Some(joined) = pending.next().await {
            let (instance, series, result) =
                joined.map_err(|e| PushError::Internal(format!("push task failed: {e}")))?;
            match result {
                Ok(resp) => {
                    if resp.samples_rejected > 0 && rejection.is_none() {
                        rejection = Some(resp.rejection);
                    }
                    for s in series {
                        let s = s as usize;
                        ok[s] += 1;
                        if ok[s] == needs[s].min_success {
                            remaining -= 1;
                        }
                    }
                    if remaining == 0 {
                        return Ok(rejection);
                    }
                }
                Err(msg) => {
                    tracing::warn!(ingester = %instance, error = %msg, "push to ingester failed");
                    self.metrics
                        .ingester_push_failures
                        .get_or_create(&crate::metrics::IngesterLabel {
                            ingester: instance.clone(),
                        })
                        .inc();
                    last_error = format!("ingester {instance}: {msg}");
                    for s in series {
                        let s = s as usize;
                        failed[s] += 1;
                        if failed[s] > needs[s].max_errors {
                            return Err(PushError::Unavailable(format!(
                                "could not write to a quorum of ingesters ({last_error}); retry later"
                            )));
                        }
                    }
                }
            }
        }
        if remaining == 0 {
            Ok(rejection)
        } else {
            Err(PushError::Unavailable(format!(
                "could not write to a quorum of ingesters ({last_error}); retry later"
            )))
        }
    }
}

/// The batches (by index) and replication need of a shard key, looked up in
/// the ring once per key and request.
fn replicas_for<'s>(
    key: u32,
    snapshot: &RingSnapshot,
    now: i64,
    sets: &'s mut HashMap<u32, (Vec<usize>, Need)>,
    batch_of: &mut HashMap<String, usize>,
    batches: &mut Vec<Batch>,
) -> Result<&'s (Vec<usize>, Need), PushError> {
    match sets.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => {
            let set = snapshot
                .get(key, Operation::Write, now)
                .map_err(|e| ring_error(&e))?;
            let need = Need {
                min_success: set.min_success() as u16,
                max_errors: set.max_errors as u16,
            };
            let mut idx = Vec::with_capacity(set.instances.len());
            for inst in set.instances {
                let next = batches.len();
                let i = *batch_of.entry(inst.id.clone()).or_insert(next);
                if i == next {
                    batches.push(Batch {
                        instance: inst.id,
                        addr: inst.addr,
                        body: Vec::new(),
                        series: Vec::new(),
                    });
                }
                idx.push(i);
            }
            Ok(e.insert((idx, need)))
        }
    }
}

fn status_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "deadline exceeded",
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::ResourceExhausted => "resource exhausted",
        tonic::Code::Unauthenticated => "unauthenticated",
        _ => "error",
    }
}

fn ring_error(e: &RingError) -> PushError {
    PushError::Unavailable(format!("no quorum of healthy ingesters in the ring: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DistributorLimits;
    use strata_ingester_client::PoolConfig;
    use strata_remote_write::{compress, encode_write_request, OwnedTimeSeries, Sample};

    /// A distributor over a one-member ring whose ingester is never reached:
    /// the rate limit is charged before anything is sent.
    async fn distributor(rate: f64, burst: u64) -> Arc<Distributor> {
        let ring = crate::test_support::one_member_ring().await;
        let config = DistributorConfig {
            limits: DistributorLimits {
                ingestion_rate: rate,
                ingestion_burst_size: burst,
                ..DistributorLimits::default()
            },
            ..DistributorConfig::default()
        };
        Arc::new(Distributor::new(
            config,
            Arc::new(ring),
            Arc::new(IngesterClientPool::new(PoolConfig::default())),
            DistributorMetrics::default(),
        ))
    }

    fn body(series: usize) -> Bytes {
        let now = now_ms();
        let series: Vec<OwnedTimeSeries> = (0..series)
            .map(|i| {
                OwnedTimeSeries::new(
                    [
                        ("__name__".to_string(), "m".to_string()),
                        ("i".to_string(), i.to_string()),
                    ],
                    [Sample {
                        timestamp: now,
                        value: 1.0,
                    }],
                )
            })
            .collect();
        Bytes::from(compress(&encode_write_request(&series, &[])))
    }

    /// Keeps the bodies pushed to it.
    #[derive(Default)]
    struct Bodies(parking_lot::Mutex<Vec<Bytes>>);

    #[async_trait::async_trait]
    impl LocalIngester for Bodies {
        fn instance_id(&self) -> &str {
            // The one member of `one_member_ring`.
            "ing-1"
        }

        async fn push(
            &self,
            _tenant: &str,
            body: Bytes,
        ) -> Result<strata_proto::ingester::PushResponse, tonic::Status> {
            self.0.lock().push(body);
            Ok(Default::default())
        }

        async fn query(
            &self,
            _tenant: &str,
            _matchers: Vec<strata_model::Matcher>,
            _start_ms: i64,
            _end_ms: i64,
        ) -> Result<strata_ingester_client::LocalQueryAnswer, tonic::Status> {
            Ok(Default::default())
        }
    }

    #[tokio::test]
    async fn a_request_going_unchanged_to_one_ingester_is_passed_on_as_is() {
        let bodies = Arc::new(Bodies::default());
        let ring = crate::test_support::one_member_ring().await;
        let d = Arc::new(
            Distributor::new(
                DistributorConfig::default(),
                Arc::new(ring),
                Arc::new(IngesterClientPool::new(PoolConfig::default())),
                DistributorMetrics::default(),
            )
            .with_local_ingester(bodies.clone()),
        );
        let compressed = body(3);
        let raw = strata_remote_write::decompress(&compressed, 1 << 20).unwrap();
        d.push("t", compressed).await.unwrap();
        assert_eq!(
            bodies.0.lock().pop().unwrap(),
            raw,
            "the request's own bytes"
        );

        // One series refused: the others go on, re-encoded.
        let now = now_ms();
        let series: Vec<OwnedTimeSeries> = ["ok", "bad name", "ok2"]
            .iter()
            .map(|m| {
                OwnedTimeSeries::new(
                    [("__name__".to_string(), m.to_string())],
                    [Sample {
                        timestamp: now,
                        value: 1.0,
                    }],
                )
            })
            .collect();
        let err = d
            .push(
                "t",
                Bytes::from(compress(&encode_write_request(&series, &[]))),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("bad name"), "{err}");
        let sent = bodies.0.lock().pop().unwrap();
        let req = WriteRequestRef::decode(&sent).unwrap();
        let names: Vec<&str> = req.series().filter_map(|s| s.metric_name()).collect();
        assert_eq!(names, ["ok", "ok2"]);
    }

    #[tokio::test]
    async fn request_larger_than_burst_is_a_400_naming_what_to_change() {
        let d = distributor(1.0, 10).await;
        let err = d.push("t", body(20)).await.unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST, "{err}");
        let msg = err.to_string();
        for part in [
            "20 samples",
            "burst size of 10",
            "max_samples_per_send",
            "ingestion_burst_size",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg:?}");
        }
        // A request within the burst but over what is left is a 429.
        let d = distributor(1.0, 10).await;
        d.limiter.allow("t", 8, 1.0, 10).unwrap();
        let err = d.push("t", body(5)).await.unwrap_err();
        assert_eq!(
            err.status(),
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "{err}"
        );
        assert!(err.to_string().contains("rate limit"), "{err}");
    }

    #[tokio::test]
    async fn exemplars_are_forwarded_and_invalid_ones_dropped() {
        use strata_remote_write::OwnedExemplar;
        let d = distributor(0.0, 1).await;
        let now = now_ms();
        let exemplar = |id: &str, timestamp: i64| OwnedExemplar {
            labels: vec![("trace_id".to_string(), id.to_string())],
            value: 1.0,
            timestamp,
        };
        let mut with_sample = OwnedTimeSeries::new(
            [("__name__", "a")],
            [Sample {
                timestamp: now,
                value: 1.0,
            }],
        );
        with_sample.exemplars = vec![exemplar("good", now)];
        // Exemplar-only entries, as Prometheus sends them.
        let mut only_exemplars = OwnedTimeSeries::new([("__name__", "b")], []);
        only_exemplars.exemplars = vec![exemplar("", now), exemplar("kept", now)];
        let mut only_invalid = OwnedTimeSeries::new([("__name__", "c")], []);
        only_invalid.exemplars = vec![exemplar("late", now + 3_600_000)];
        let body = compress(&encode_write_request(
            &[with_sample.clone(), only_exemplars, only_invalid],
            &[],
        ));
        let plan = d.plan("t", &body, None).unwrap();
        assert!(plan.refused.is_none(), "{:?}", plan.refused);
        assert_eq!((plan.series, plan.samples, plan.exemplars), (2, 1, 2));
        let [batch] = &plan.batches[..] else {
            panic!("one ingester, one batch: {}", plan.batches.len());
        };
        let sent = WriteRequestRef::decode(&batch.body).unwrap();
        let got: Vec<(Option<&str>, usize, Vec<&str>)> = sent
            .series()
            .map(|s| {
                let ids = s
                    .exemplars()
                    .flat_map(|e| e.labels.iter().map(|l| l.value))
                    .collect();
                (s.metric_name(), s.samples().len(), ids)
            })
            .collect();
        assert_eq!(
            got,
            [(Some("a"), 1, vec!["good"]), (Some("b"), 0, vec!["kept"])]
        );
        // A valid series is forwarded byte for byte.
        let mut raw = Vec::new();
        strata_remote_write::encode_series_into(&mut raw, &with_sample);
        assert!(batch.body.starts_with(&raw));
        let dropped = |reason: &str| {
            d.metrics
                .discarded_exemplars
                .get_or_create(&crate::metrics::TenantReasonLabel {
                    tenant: "t".to_string(),
                    reason: reason.to_string(),
                })
                .get()
        };
        assert_eq!(dropped("exemplar_labels_blank"), 1);
        assert_eq!(dropped("exemplar_too_far_in_future"), 1);
    }

    #[tokio::test]
    async fn samples_outside_the_sane_window_are_refused_per_tenant_and_reason() {
        let d = distributor(0.0, 1).await;
        let now = now_ms();
        let series = OwnedTimeSeries::new(
            [("__name__", "m")],
            [
                Sample {
                    timestamp: i64::MIN,
                    value: 1.0,
                },
                Sample {
                    timestamp: -1,
                    value: 2.0,
                },
                Sample {
                    timestamp: now,
                    value: 3.0,
                },
                Sample {
                    timestamp: i64::MAX,
                    value: 4.0,
                },
            ],
        );
        let body = compress(&encode_write_request(&[series], &[]));
        let plan = d.plan("tenant-a", &body, None).unwrap();
        let msg = plan.refused.clone().expect("refused");
        assert!(msg.contains("before 1970"), "{msg}");
        assert_eq!((plan.samples, plan.refused_samples), (1, 3));
        let [batch] = &plan.batches[..] else {
            panic!("one batch: {}", plan.batches.len());
        };
        let sent = WriteRequestRef::decode(&batch.body).unwrap();
        let kept: Vec<i64> = sent
            .series()
            .flat_map(|s| s.samples().iter().map(|x| x.timestamp).collect::<Vec<_>>())
            .collect();
        assert_eq!(kept, [now]);
        let discarded = |reason: &str| {
            d.metrics
                .discarded_samples
                .get_or_create(&crate::metrics::TenantReasonLabel {
                    tenant: "tenant-a".to_string(),
                    reason: reason.to_string(),
                })
                .get()
        };
        assert_eq!(discarded("sample_timestamp_out_of_range"), 2);
        assert_eq!(discarded("too_far_in_future"), 1);

        // With a maximum age, older samples are refused too.
        let mut d = distributor(0.0, 1).await;
        Arc::get_mut(&mut d)
            .unwrap()
            .config
            .limits
            .reject_old_samples_max_age = std::time::Duration::from_secs(3600);
        let old = OwnedTimeSeries::new(
            [("__name__", "m")],
            [
                Sample {
                    timestamp: now - 7_200_000,
                    value: 1.0,
                },
                Sample {
                    timestamp: now,
                    value: 2.0,
                },
            ],
        );
        let plan = d
            .plan("t", &compress(&encode_write_request(&[old], &[])), None)
            .unwrap();
        let msg = plan.refused.expect("refused");
        assert!(msg.contains("reject_old_samples_max_age"), "{msg}");
        assert_eq!((plan.samples, plan.refused_samples), (1, 1));
    }
}
