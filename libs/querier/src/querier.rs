//! PromQL evaluation over ingester data, and the metadata reads, for one
//! tenant at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strata_model::duration::{duration_ms, now_ms};
use strata_model::{Labels, Matcher};
use strata_promql::{
    CancelFlag, Engine, EngineOptions, MemoryPool, QueryOutput, SelectRequest, StoredSeries,
};
use strata_store::{Store, StoreSeries};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::{ApiError, QuerierError};
use crate::ingesters::{
    merge_answers, named_ingesters, FetchLimits, IngesterQuerier, MetadataEntry, SeriesList,
};
use crate::storage::{plan_fetches, PrefetchedStorage};
use crate::{QuerierConfig, QueryLimits};

/// What to evaluate a query over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryRange {
    Instant {
        time_ms: i64,
    },
    Range {
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    },
}

impl QueryRange {
    fn bounds(self) -> (i64, i64) {
        match self {
            QueryRange::Instant { time_ms } => (time_ms, time_ms),
            QueryRange::Range {
                start_ms, end_ms, ..
            } => (start_ms, end_ms),
        }
    }
}

/// Per-request overrides of the configured engine options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryOverrides {
    /// Shortens the configured timeout.
    pub timeout: Option<Duration>,
    pub lookback_delta: Option<Duration>,
    /// Answer with a warning, instead of refusing, when the ingesters cannot
    /// give a complete answer for part of the range (`partial_response`
    /// parameter; `None` takes `querier.partial_response`).
    pub partial_response: Option<bool>,
}

pub struct Querier {
    config: QuerierConfig,
    ingesters: IngesterQuerier,
    store: Option<Arc<Store>>,
    /// The process's query slots.
    slots: SlotQueue,
    /// Each tenant's own slots.
    tenants: Mutex<HashMap<String, Arc<SlotQueue>>>,
    /// What all queries of this process may hold together.
    memory: Arc<MemoryPool>,
    metrics: QueryMetrics,
    /// Per-tenant runtime overrides of the query limits, read per request.
    overrides: strata_overrides::Overrides,
}

/// Query slots and a bounded queue of queries waiting for one.
struct SlotQueue {
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    max_queued: usize,
}

impl SlotQueue {
    fn new(slots: usize, max_queued: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            queued: AtomicUsize::new(0),
            max_queued,
        }
    }

    /// A free slot, or one waited for until `deadline`; `None` at once
    /// when `max_queued` queries are waiting already.
    async fn take(&self, deadline: Instant) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Some(permit));
        }
        // Counted as waiting until this returns or is dropped (the client
        // went away while it waited).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let waiting = Waiting(&self.queued);
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.max_queued {
            return Ok(None);
        }
        let waited = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
        drop(waiting);
        match waited {
            Ok(Ok(permit)) => Ok(Some(permit)),
            Ok(Err(_)) => Err(QuerierError::Internal("querier is shutting down".into()).into()),
            Err(_) => Err(QuerierError::Timeout("query queue".into()).into()),
        }
    }
}

/// Metrics of query admission and memory.
#[derive(Clone, Default)]
pub struct QueryMetrics {
    /// Bytes the running queries hold (the process pool), as of the last
    /// query to end.
    memory_bytes: Gauge,
    memory_limit_bytes: Gauge,
    /// Queries refused without waiting: tenant queue full (429) or process
    /// queue full (503).
    refused: prometheus_client::metrics::family::Family<ReasonLabel, Counter>,
    canceled: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

impl QueryMetrics {
    fn refuse(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }
}

/// The incomplete parts of a read, for messages: ranges of Unix seconds,
/// as the query API takes them.
fn incomplete_text(parts: &[(i64, i64)]) -> String {
    let time = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let shown: Vec<String> = parts
        .iter()
        .take(3)
        .map(|&(a, b)| format!("[{}, {}]", time(a), time(b)))
        .collect();
    let more = parts.len().saturating_sub(3);
    if more > 0 {
        format!("{} (and {more} more ranges)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Name of the long-term store among a series' sources.
const STORE_SOURCE: &str = "long-term storage";

impl Querier {
    pub fn new(config: QuerierConfig, ingesters: IngesterQuerier) -> Self {
        let slots = SlotQueue::new(config.max_concurrent, config.max_queued);
        let memory = Arc::new(MemoryPool::new(config.effective_max_memory()));
        let metrics = QueryMetrics::default();
        metrics
            .memory_limit_bytes
            .set(i64::try_from(memory.limit()).unwrap_or(i64::MAX));
        Self {
            config,
            ingesters,
            store: None,
            slots,
            tenants: Mutex::new(HashMap::new()),
            memory,
            metrics,
            overrides: strata_overrides::Overrides::default(),
        }
    }

    /// Reads each tenant's query limits through `overrides` (the runtime
    /// config file) on every request.
    pub fn with_overrides(mut self, overrides: strata_overrides::Overrides) -> Self {
        self.overrides = overrides;
        self
    }

    /// The query limits in force for `tenant` now.
    pub fn limits_for(&self, tenant: &str) -> QueryLimits {
        self.config.limits_for(tenant, &self.overrides)
    }

    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.metrics;
        registry.register(
            "querier_query_memory_bytes",
            "Bytes held by running queries, counted as they evaluate (as of the last query to end)",
            m.memory_bytes.clone(),
        );
        registry.register(
            "querier_query_memory_limit_bytes",
            "Bytes all queries of this process may hold together (querier.max_memory)",
            m.memory_limit_bytes.clone(),
        );
        registry.register(
            "querier_queries_refused",
            "Queries refused without waiting, by reason (tenant_queue_full: 429, queue_full: 503)",
            m.refused.clone(),
        );
        registry.register(
            "querier_queries_canceled",
            "Queries whose evaluation stopped because the client went away or the query timed out",
            m.canceled.clone(),
        );
    }

    /// Waits for one of the tenant's slots and one of the process's, within
    /// the deadline. Full queues refuse at once: a tenant's with 429, the
    /// process's with 503.
    async fn admit(
        &self,
        tenant: &str,
        deadline: Instant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), ApiError> {
        let per_tenant = match self.config.max_concurrent_per_tenant {
            0 => self.config.max_concurrent.max(1),
            n => n,
        };
        let own = {
            let mut tenants = self
                .tenants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tenants
                .entry(tenant.to_string())
                .or_insert_with(|| {
                    Arc::new(SlotQueue::new(
                        per_tenant,
                        self.config.max_queued_per_tenant,
                    ))
                })
                .clone()
        };
        let Some(tenant_permit) = own.take(deadline).await? else {
            self.metrics.refuse("tenant_queue_full");
            return Err(QuerierError::TooManyQueries(format!(
                "tenant {tenant} has {per_tenant} queries running and {} waiting in this querier, its limit (querier.max_concurrent_per_tenant, querier.max_queued_per_tenant); retry later",
                self.config.max_queued_per_tenant
            ))
            .into());
        };
        let Some(permit) = self.slots.take(deadline).await? else {
            self.metrics.refuse("queue_full");
            return Err(QuerierError::Overloaded(format!(
                "this querier is running {} queries and {} more are waiting (querier.max_concurrent, querier.max_queued); retry later",
                self.config.max_concurrent, self.config.max_queued
            ))
            .into());
        };
        Ok((tenant_permit, permit))
    }

    /// Also reads long-term storage (for the ranges `query_store_after`
    /// allows) and merges it with the ingesters' answers.
    pub fn with_store(mut self, store: Arc<Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The part of `[start, end]` to read from the store, if any.
    fn store_range(&self, start_ms: i64, end_ms: i64) -> Option<(Arc<Store>, i64, i64)> {
        let store = self.store.clone()?;
        let after = self.config.query_store_after;
        let end = if after.is_zero() {
            end_ms
        } else {
            end_ms.min(now_ms().saturating_sub(duration_ms(after)))
        };
        (start_ms <= end).then_some((store, start_ms, end))
    }

    /// The part of `[start, end]` to ask ingesters for, if any.
    fn ingester_range(&self, start_ms: i64, end_ms: i64) -> Option<(i64, i64)> {
        let within = self.config.query_ingesters_within;
        if within.is_zero() || self.store.is_none() {
            return Some((start_ms, end_ms));
        }
        let start = start_ms.max(now_ms().saturating_sub(duration_ms(within)));
        (start <= end_ms).then_some((start, end_ms))
    }

    /// One selection's series from the ingesters and the store, merged,
    /// and a warning when the ingesters could only answer part of the range
    /// completely and `partial` allows that (without it, that is an
    /// `unavailable` error).
    async fn select(
        &self,
        tenant: &str,
        request: &SelectRequest,
        limits: FetchLimits,
        partial: bool,
    ) -> Result<(Vec<StoredSeries>, Option<String>), QuerierError> {
        let from_ingesters = async {
            match self.ingester_range(request.start_ms, request.end_ms) {
                Some((start_ms, end_ms)) => {
                    let r = SelectRequest {
                        matchers: request.matchers.clone(),
                        start_ms,
                        end_ms,
                    };
                    let covered = self.ingesters.fetch(tenant, &r, limits).await?;
                    let mut warning = None;
                    if !covered.incomplete.is_empty() {
                        let text = incomplete_text(&covered.incomplete);
                        if !partial {
                            return Err(QuerierError::Unavailable(format!(
                                "too few ingesters hold complete data for {text} (replicas restarted or joined and their peers are unavailable); retry later, or ask for a partial answer with partial_response=true"
                            )));
                        }
                        warning = Some(format!(
                            "partial answer: too few ingesters hold complete data for {text}; samples may be missing there"
                        ));
                    }
                    Ok((named_ingesters(covered.answers), warning))
                }
                None => Ok((Vec::new(), None)),
            }
        };
        let from_store = async {
            match self.store_range(request.start_ms, request.end_ms) {
                Some((store, start_ms, end_ms)) => {
                    let series = store
                        .select(tenant, &request.matchers, start_ms, end_ms)
                        .await?;
                    Ok::<_, QuerierError>(Some((STORE_SOURCE.to_string(), store_series(series))))
                }
                None => Ok(None),
            }
        };
        let ((mut answers, warning), stored) = tokio::try_join!(from_ingesters, from_store)?;
        answers.extend(stored);
        Ok((merge_answers(answers, limits).await?, warning))
    }

    pub fn config(&self) -> &QuerierConfig {
        &self.config
    }

    pub(crate) fn ingesters(&self) -> &IngesterQuerier {
        &self.ingesters
    }

    /// Refuses time ranges longer than the tenant's `max_query_length`.
    pub fn check_length(&self, tenant: &str, start_ms: i64, end_ms: i64) -> Result<(), ApiError> {
        let limit = self.limits_for(tenant).max_query_length;
        if limit.is_zero() {
            return Ok(());
        }
        let length_ms = end_ms.saturating_sub(start_ms);
        let limit_ms = duration_ms(limit);
        if length_ms > limit_ms {
            return Err(ApiError::bad_data(format!(
                "the query time range exceeds the limit (query length: {}, limit: {}); query a shorter range",
                strata_model::duration::format_duration(Duration::from_millis(length_ms as u64)),
                strata_model::duration::format_duration(limit)
            )));
        }
        Ok(())
    }

    /// Evaluates `query` for `tenant`: asks the engine what it needs,
    /// fetches it from the ingesters in parallel, then evaluates on the
    /// blocking pool, all within the timeout. The answer carries the
    /// warnings and infos evaluation produced.
    pub async fn query(
        &self,
        tenant: &str,
        query: &str,
        range: QueryRange,
        overrides: QueryOverrides,
    ) -> Result<QueryOutput, ApiError> {
        let timeout = overrides
            .timeout
            .map_or(self.config.timeout, |t| t.min(self.config.timeout));
        let deadline = Instant::now() + timeout;
        let tenant_limits = self.limits_for(tenant);
        let permit = self.admit(tenant, deadline).await?;
        // Dropping this future (the client went away, or the timeout below)
        // cancels evaluation on the blocking pool at its next check.
        let cancel = CancelFlag::new();
        let _cancel_on_drop = cancel.cancel_on_drop();
        let options = |remaining: Duration| EngineOptions {
            lookback_delta: overrides
                .lookback_delta
                .unwrap_or(self.config.lookback_delta),
            max_samples: tenant_limits.max_samples,
            max_bytes: tenant_limits.max_query_memory,
            memory_pool: Some(self.memory.clone()),
            cancel: Some(cancel.clone()),
            timeout: remaining,
        };

        let (start_ms, end_ms) = range.bounds();
        let planner = Engine::new(options(timeout));
        let text = query.to_string();
        let requests = blocking(move || planner.select_requests(&text, start_ms, end_ms))
            .await?
            .map_err(ApiError::from)?;

        let fetches = plan_fetches(requests);
        let max_series = tenant_limits.max_series;
        let limits = FetchLimits {
            max_series,
            max_chunk_bytes: tenant_limits.max_query_memory,
        };
        let partial = overrides
            .partial_response
            .unwrap_or(self.config.partial_response);
        let lookback = tenant_limits.max_query_lookback;
        let reads = fetches.iter().map(|request| async move {
            // Only what `max_query_lookback` lets the tenant read.
            match within_lookback(lookback, request.start_ms, request.end_ms) {
                Some((start_ms, end_ms)) => {
                    let allowed = SelectRequest {
                        matchers: request.matchers.clone(),
                        start_ms,
                        end_ms,
                    };
                    self.select(tenant, &allowed, limits, partial).await
                }
                None => Ok((Vec::new(), None)),
            }
        });
        let answers =
            match tokio::time::timeout_at(deadline, futures::future::try_join_all(reads)).await {
                Ok(result) => result?,
                Err(_) => return Err(QuerierError::Timeout("query execution".into()).into()),
            };
        let mut storage = PrefetchedStorage::new();
        let mut read_warnings: Vec<String> = Vec::new();
        for (request, (series, warning)) in fetches.iter().zip(answers) {
            storage.insert(request, series);
            read_warnings.extend(warning);
        }
        read_warnings.dedup();
        if max_series > 0 && storage.series() > max_series {
            return Err(QuerierError::TooManySeries(max_series).into());
        }

        let remaining = deadline.saturating_duration_since(Instant::now());
        let engine = Engine::new(options(remaining));
        let text = query.to_string();
        let memory = self.memory.clone();
        let gauge = self.metrics.memory_bytes.clone();
        let canceled = self.metrics.canceled.clone();
        let flag = cancel.clone();
        let evaluation = blocking(move || {
            let _report = OnDrop(move || {
                gauge.set(i64::try_from(memory.used()).unwrap_or(i64::MAX));
                if flag.is_cancelled() {
                    canceled.inc();
                }
            });
            // The slot is held until evaluation ends, even if the request
            // timed out meanwhile, so abandoned work stays bounded too.
            let _permit = permit;
            match range {
                QueryRange::Instant { time_ms } => engine.instant_query(&storage, &text, time_ms),
                QueryRange::Range {
                    start_ms,
                    end_ms,
                    step_ms,
                } => engine.range_query(&storage, &text, start_ms, end_ms, step_ms),
            }
        });
        match tokio::time::timeout_at(deadline, evaluation).await {
            Ok(result) => {
                let mut output = result?.map_err(ApiError::from)?;
                output.annotations.warnings.splice(0..0, read_warnings);
                Ok(output)
            }
            Err(_) => Err(QuerierError::Timeout("query execution".into()).into()),
        }
    }

    pub async fn series(
        &self,
        tenant: &str,
        start_ms: i64,
        end_ms: i64,
        matcher_sets: &[Vec<Matcher>],
        limit: usize,
    ) -> Result<Vec<Labels>, ApiError> {
        let lookback = self.limits_for(tenant).max_query_lookback;
        let Some((start_ms, end_ms)) = within_lookback(lookback, start_ms, end_ms) else {
            return Ok(Vec::new());
        };
        self.union_with_store(
            (start_ms, end_ms),
            matcher_sets,
            limit,
            |s, e| self.ingesters.series(tenant, s, e, matcher_sets, limit),
            |store, set, s, e| async move { store.series(tenant, &set, s, e).await },
        )
        .await
    }

    pub async fn label_names(
        &self,
        tenant: &str,
        start_ms: i64,
        end_ms: i64,
        matcher_sets: &[Vec<Matcher>],
        limit: usize,
    ) -> Result<Vec<String>, ApiError> {
        let lookback = self.limits_for(tenant).max_query_lookback;
        let Some((start_ms, end_ms)) = within_lookback(lookback, start_ms, end_ms) else {
            return Ok(Vec::new());
        };
        self.union_with_store(
            (start_ms, end_ms),
            matcher_sets,
            limit,
            |s, e| {
                self.ingesters
                    .label_names(tenant, s, e, matcher_sets, limit)
            },
            |store, set, s, e| async move { store.label_names(tenant, &set, s, e).await },
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn label_values(
        &self,
        tenant: &str,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        matcher_sets: &[Vec<Matcher>],
        limit: usize,
    ) -> Result<Vec<String>, ApiError> {
        let lookback = self.limits_for(tenant).max_query_lookback;
        let Some((start_ms, end_ms)) = within_lookback(lookback, start_ms, end_ms) else {
            return Ok(Vec::new());
        };
        self.union_with_store(
            (start_ms, end_ms),
            matcher_sets,
            limit,
            |s, e| {
                self.ingesters
                    .label_values(tenant, name, s, e, matcher_sets, limit)
            },
            |store, set, s, e| async move { store.label_values(tenant, name, &set, s, e).await },
        )
        .await
    }

    /// The sorted union of what the ingesters answer for their part of the
    /// range and what the store answers for its part, once per matcher set
    /// (or once without matchers when there are none), cut at `limit` plus
    /// one so the caller can tell the answer was cut.
    async fn union_with_store<'a, T, I, S, SF>(
        &'a self,
        (start_ms, end_ms): (i64, i64),
        matcher_sets: &'a [Vec<Matcher>],
        limit: usize,
        from_ingesters: impl FnOnce(i64, i64) -> I,
        from_store: S,
    ) -> Result<Vec<T>, ApiError>
    where
        T: Ord,
        I: std::future::Future<Output = Result<Vec<T>, QuerierError>>,
        S: Fn(Arc<Store>, Vec<Matcher>, i64, i64) -> SF,
        SF: std::future::Future<Output = Result<Vec<T>, strata_store::StoreError>>,
    {
        let ingesters = async {
            match self.ingester_range(start_ms, end_ms) {
                Some((s, e)) => from_ingesters(s, e).await,
                None => Ok(Vec::new()),
            }
        };
        let store = async {
            let mut out = Vec::new();
            if let Some((store, s, e)) = self.store_range(start_ms, end_ms) {
                let no_matchers = [Vec::new()];
                let sets = if matcher_sets.is_empty() {
                    &no_matchers[..]
                } else {
                    matcher_sets
                };
                for set in sets {
                    out.extend(from_store(store.clone(), set.clone(), s, e).await?);
                }
            }
            Ok::<_, QuerierError>(out)
        };
        self.with_timeout(async {
            let (mut all, stored) = tokio::try_join!(ingesters, store)?;
            all.extend(stored);
            all.sort();
            all.dedup();
            if limit > 0 {
                all.truncate(limit + 1);
            }
            Ok(all)
        })
        .await
    }

    pub async fn metadata(
        &self,
        tenant: &str,
        metric: Option<&str>,
        limit: usize,
    ) -> Result<BTreeMap<String, Vec<MetadataEntry>>, ApiError> {
        self.with_timeout(self.ingesters.metadata(tenant, metric, limit))
            .await
    }

    async fn with_timeout<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, QuerierError>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.config.timeout, fut).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(QuerierError::Timeout("query execution".into()).into()),
        }
    }
}

/// `[start_ms, end_ms]` cut to what a lookback limit lets a tenant read
/// (`now - lookback` on; a zero lookback is no limit), `None` when all of it
/// lies before.
fn within_lookback(lookback: Duration, start_ms: i64, end_ms: i64) -> Option<(i64, i64)> {
    if lookback.is_zero() {
        return Some((start_ms, end_ms));
    }
    let earliest = now_ms().saturating_sub(duration_ms(lookback));
    (end_ms >= earliest).then(|| (start_ms.max(earliest), end_ms))
}

/// Runs a closure when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    strata_server::reads::run(f).await.map_err(|e| {
        ApiError::from(QuerierError::Internal(format!(
            "query evaluation failed unexpectedly: {e}"
        )))
    })
}

/// The store's series as a source for the merger.
fn store_series(series: Vec<StoreSeries>) -> SeriesList {
    series
        .into_iter()
        .map(|s| {
            let chunks = s
                .chunks
                .into_iter()
                .map(|c| strata_proto::ingester::Chunk {
                    start_ms: c.min_time,
                    end_ms: c.max_time,
                    encoding: u32::from(c.encoding),
                    data: c.data,
                })
                .collect();
            (s.labels, chunks)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookback_cuts_the_start_or_everything() {
        let day = Duration::from_secs(86_400);
        let now = now_ms();
        let day_ms = duration_ms(day);
        assert_eq!(within_lookback(Duration::ZERO, 5, 10), Some((5, 10)));
        let (start, end) = within_lookback(day, now - 3 * day_ms, now).unwrap();
        assert!((now - day_ms..=now_ms() - day_ms).contains(&start));
        assert_eq!(end, now);
        let inside = now - day_ms / 2;
        assert_eq!(within_lookback(day, inside, now), Some((inside, now)));
        assert_eq!(within_lookback(day, 0, now - 2 * day_ms), None);
    }

    #[tokio::test]
    async fn slot_queue_refuses_beyond_its_queue_and_forgets_abandoned_waiters() {
        let q = Arc::new(SlotQueue::new(1, 1));
        let far = Instant::now() + Duration::from_secs(60);
        let held = q.take(far).await.unwrap().expect("a free slot");
        // One waiter fits in the queue; a second is refused at once.
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.take(far).await.map(|p| p.is_some()) }
        });
        while q.queued.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(q.take(far).await.unwrap().is_none());
        // The waiter goes away: its place in the queue is given back.
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(q.queued.load(Ordering::Relaxed), 0);
        // A waiter past its deadline times out; one that waits gets the slot.
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(q.take(soon).await.is_err());
        drop(held);
        assert!(q.take(far).await.unwrap().is_some());
    }
}
