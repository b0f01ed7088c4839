//! Reads one tenant's data from the ingesters that hold it.
//!
//! Which ingesters: when series are sharded by metric name and a selection
//! names its metric (`__name__="x"`), only the replication set of
//! `shard_key(tenant, "x")`; otherwise every healthy ingester. All of them
//! are asked in parallel; the answer is complete once enough of them
//! answered that the ones still missing (or failed) are within the set's
//! failure budget, and an `unavailable` error once too many failed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use strata_ingester_client::{Client, IngesterClientPool, LocalIngester};
use strata_model::{Labels, MatchOp, Matcher, METRIC_NAME};
use strata_promql::{SelectRequest, StoredSeries};
use strata_proto::ingester::{
    self as pb, LabelNamesRequest, LabelValuesRequest, MetricsMetadataRequest, QueryRequest,
    SeriesRequest,
};
use strata_remote_write::MetricType;
use strata_ring::{shard_key, Operation, ReplicationSet, Ring};

use crate::error::QuerierError;
use crate::merge::SeriesMerger;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngesterLabel {
    ingester: String,
}

/// Metrics of reads from ingesters.
#[derive(Clone, Default)]
pub struct IngesterReadMetrics {
    failures: Family<IngesterLabel, Counter>,
    incomplete_reads: Counter,
}

impl IngesterReadMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "querier_ingester_failures",
            "Failed reads from an ingester (errors, corrupt chunks), by ingester",
            self.failures.clone(),
        );
        registry.register(
            "querier_incomplete_reads",
            "Reads for which too few ingesters held complete data for part of the time range (refused, or answered with a warning when partial answers were asked for)",
            self.incomplete_reads.clone(),
        );
    }
}

/// One metric family's metadata as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetadataEntry {
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

/// How one ingester's call ended.
pub(crate) enum CallError {
    /// The ingester failed; counts against the replication set's budget.
    Failed(String),
    /// The whole read must stop (a limit was hit).
    Fatal(QuerierError),
}

impl From<tonic::Status> for CallError {
    fn from(s: tonic::Status) -> Self {
        CallError::Failed(format!("{:?}: {}", s.code(), s.message()))
    }
}

/// One ingester's answer to a selection: series and their chunks.
/// One source's series with their encoded chunks.
pub(crate) type SeriesList = Vec<(Labels, Vec<pb::Chunk>)>;

/// Bounds of what one selection may fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// Most distinct series (0 = unlimited).
    pub max_series: usize,
    /// Most bytes of chunks one selection may receive from ingesters, all
    /// replicas together, checked as they arrive (0 = unlimited).
    pub max_chunk_bytes: usize,
}

impl FetchLimits {
    /// Only a series limit.
    pub fn series(max_series: usize) -> Self {
        Self {
            max_series,
            max_chunk_bytes: 0,
        }
    }
}

pub struct IngesterQuerier {
    ring: Arc<Ring>,
    pool: Arc<IngesterClientPool>,
    shard_by_all_labels: bool,
    metrics: IngesterReadMetrics,
    /// Tenants with a shard size read only their shard of the ring.
    shuffle: Option<Arc<strata_ring::ShuffleSharding>>,
    /// This process's ingester, read by function calls rather than gRPC.
    local: Option<Arc<dyn LocalIngester>>,
}

impl IngesterQuerier {
    pub fn new(
        ring: Arc<Ring>,
        pool: Arc<IngesterClientPool>,
        shard_by_all_labels: bool,
        metrics: IngesterReadMetrics,
    ) -> Self {
        Self {
            ring,
            pool,
            shard_by_all_labels,
            metrics,
            shuffle: None,
            local: None,
        }
    }

    /// Selections read `local` (the ingester in this process, when it is
    /// in the read set) by function calls: its series and chunks arrive
    /// without being encoded, framed and decoded again.
    pub fn with_local_ingester(mut self, local: Arc<dyn LocalIngester>) -> Self {
        self.local = Some(local);
        self
    }

    /// Reads of a tenant with a shard size ask only its shuffle shard (and
    /// the members that joined within the sharding's lookback).
    pub fn with_shuffle_sharding(mut self, shuffle: Arc<strata_ring::ShuffleSharding>) -> Self {
        self.shuffle = Some(shuffle);
        self
    }

    /// The ring as `tenant`'s reads see it, and the time to judge
    /// heartbeats at.
    fn tenant_ring(&self, tenant: &str) -> (Arc<strata_ring::RingSnapshot>, i64) {
        let snapshot = self.ring.snapshot();
        let now = snapshot.judged_at(strata_model::duration::now_ms());
        match &self.shuffle {
            Some(s) => (s.shard(&snapshot, tenant, now), now),
            None => (snapshot, now),
        }
    }

    /// The ingesters that may hold series matching `matchers`.
    pub(crate) fn replication_set(
        &self,
        tenant: &str,
        matchers: &[Matcher],
    ) -> Result<ReplicationSet, QuerierError> {
        Ok(self.read_set(tenant, matchers)?.0)
    }

    /// [`Self::replication_set`], and whether it is one key's replication
    /// set (true) rather than every member.
    fn read_set(
        &self,
        tenant: &str,
        matchers: &[Matcher],
    ) -> Result<(ReplicationSet, bool), QuerierError> {
        let metric = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal)
            .map(|m| m.value.as_str());
        match metric {
            Some(name) if !self.shard_by_all_labels => Ok((self.set_for_key(tenant, name)?, true)),
            _ => Ok((self.all_healthy(tenant)?, false)),
        }
    }

    fn set_for_key(&self, tenant: &str, name: &str) -> Result<ReplicationSet, QuerierError> {
        let (ring, now) = self.tenant_ring(tenant);
        ring.get(shard_key(tenant, name), Operation::Read, now)
            .map_err(|e| {
                QuerierError::Unavailable(format!(
                    "not enough healthy ingesters hold metric {name:?}: {e}"
                ))
            })
    }

    fn all_healthy(&self, tenant: &str) -> Result<ReplicationSet, QuerierError> {
        let (ring, now) = self.tenant_ring(tenant);
        ring.get_all_healthy(Operation::Read, now)
            .map_err(|e| QuerierError::Unavailable(format!("not enough healthy ingesters: {e}")))
    }

    /// Calls every member of `set` in parallel and returns the answers,
    /// as soon as the members still pending could all fail within the
    /// set's budget.
    pub(crate) async fn fan_out<T, F>(
        &self,
        tenant: &str,
        set: &ReplicationSet,
        call: F,
    ) -> Result<Vec<T>, QuerierError>
    where
        T: Send + 'static,
        F: Fn(Client, TenantValue) -> CallFuture<T>,
    {
        let answers = self.fan_out_named(tenant, set, call).await?;
        Ok(answers.into_iter().map(|(_, answer)| answer).collect())
    }

    /// [`Self::fan_out`], with the ID of the ingester each answer came from.
    async fn fan_out_named<T, F>(
        &self,
        tenant: &str,
        set: &ReplicationSet,
        call: F,
    ) -> Result<Vec<(String, T)>, QuerierError>
    where
        T: Send + 'static,
        F: Fn(Client, TenantValue) -> CallFuture<T>,
    {
        let covered = self
            .fan_out_covering(
                tenant,
                set,
                None,
                |client, tenant_value| {
                    let fut = call(client, tenant_value);
                    Box::pin(async move { fut.await.map(|answer| (answer, Vec::new())) })
                },
                None,
            )
            .await?;
        Ok(covered.answers)
    }

    /// Calls every member of `set` in parallel, each answering with the
    /// parts of `range` it may lack data for (see `strata_ingester::gaps`).
    /// An ingester does not count towards the set's quorum for the parts it
    /// lacks: the read waits for further replicas until, at every instant
    /// of the range, the ingesters that answered with data for it are
    /// enough. The parts where they are not, once every ingester answered,
    /// come back in [`Covered::incomplete`]; the caller refuses or warns.
    /// `local`, when given, answers for its instance instead of `call`.
    async fn fan_out_covering<T, F>(
        &self,
        tenant: &str,
        set: &ReplicationSet,
        range: Option<(i64, i64)>,
        call: F,
        mut local: Option<LocalCall<T>>,
    ) -> Result<Covered<T>, QuerierError>
    where
        T: Send + 'static,
        F: Fn(Client, TenantValue) -> CallFuture<WithMissing<T>>,
    {
        let tenant_value: TenantValue = tenant
            .parse()
            .map_err(|_| QuerierError::Internal(format!("invalid tenant ID {tenant:?}")))?;
        let mut pending: HashSet<String> = HashSet::new();
        let mut calls: FuturesUnordered<NamedCall<WithMissing<T>>> = FuturesUnordered::new();
        for instance in &set.instances {
            pending.insert(instance.id.clone());
            let id = instance.id.clone();
            let fut: CallFuture<WithMissing<T>> =
                match local.take_if(|(local_id, _)| *local_id == id) {
                    Some((_, local_call)) => local_call(),
                    None => match self.pool.get(&instance.addr) {
                        Ok(client) => call(client, tenant_value.clone()),
                        Err(e) => {
                            let msg = e.to_string();
                            Box::pin(async move { Err(CallError::Failed(msg)) })
                        }
                    },
                };
            calls.push(Box::pin(async move { (id, fut.await) }));
        }
        let mut answers = Vec::with_capacity(set.instances.len());
        let mut failed: Vec<String> = Vec::new();
        let mut lacking: Vec<(String, Vec<(i64, i64)>)> = Vec::new();
        while let Some((id, result)) = calls.next().await {
            pending.remove(&id);
            match result {
                Ok((answer, missing)) => {
                    if !missing.is_empty() {
                        lacking.push((id.clone(), missing));
                    }
                    answers.push((id.clone(), answer));
                }
                Err(CallError::Fatal(e)) => return Err(e),
                Err(CallError::Failed(msg)) => {
                    tracing::warn!(ingester = %id, error = %msg, "read from ingester failed");
                    self.metrics
                        .failures
                        .get_or_create(&IngesterLabel {
                            ingester: id.clone(),
                        })
                        .inc();
                    failed.push(id.clone());
                    if !set.tolerates_failures(&failed) {
                        return Err(QuerierError::Unavailable(format!(
                            "too many ingesters failed to answer ({} of {}; last: ingester {id}: {msg})",
                            failed.len(),
                            set.instances.len()
                        )));
                    }
                }
            }
            if !pending.is_empty() {
                let mut if_all_fail = failed.clone();
                if_all_fail.extend(pending.iter().cloned());
                if uncovered(set, range, &if_all_fail, &lacking).is_empty() {
                    // Enough answers: the rest may be dropped.
                    break;
                }
            }
        }
        let incomplete = if pending.is_empty() {
            uncovered(set, range, &failed, &lacking)
        } else {
            Vec::new()
        };
        if !incomplete.is_empty() {
            self.metrics.incomplete_reads.inc();
        }
        Ok(Covered {
            answers,
            incomplete,
        })
    }
}

/// Answers of a read and the parts of its range they may not hold in full.
pub(crate) struct Covered<T> {
    pub answers: Vec<(String, T)>,
    /// Parts of the range (both ends included) where too few ingesters
    /// answered with complete data; empty when the answer is complete.
    pub incomplete: Vec<(i64, i64)>,
}

/// The parts of `range` where the ingesters in `failed`, together with
/// those that lack data there (`lacking`), are more than `set` tolerates.
/// Without a range only `failed` counts, over one point.
fn uncovered(
    set: &ReplicationSet,
    range: Option<(i64, i64)>,
    failed: &[String],
    lacking: &[(String, Vec<(i64, i64)>)],
) -> Vec<(i64, i64)> {
    let Some((start, end)) = range else {
        return if set.tolerates_failures(failed) {
            Vec::new()
        } else {
            vec![(0, 0)]
        };
    };
    // Who is missing changes only where a gap starts or ends.
    let mut cuts: Vec<i64> = vec![start];
    for (_, gaps) in lacking {
        for &(a, b) in gaps {
            if a > start && a <= end {
                cuts.push(a);
            }
            if b >= start && b < end {
                cuts.push(b + 1);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (i, &from) in cuts.iter().enumerate() {
        let to = cuts.get(i + 1).map_or(end, |next| next - 1);
        let mut missing: Vec<&str> = failed.iter().map(String::as_str).collect();
        for (id, gaps) in lacking {
            if gaps.iter().any(|&(a, b)| a <= from && b >= from) {
                missing.push(id);
            }
        }
        if !set.tolerates_failures(&missing) {
            match out.last_mut() {
                Some(last) if last.1 + 1 == from => last.1 = to,
                _ => out.push((from, to)),
            }
        }
    }
    out
}

/// An answer and the parts of the range its ingester may lack data for.
pub(crate) type WithMissing<T> = (T, Vec<(i64, i64)>);
type TenantValue = tonic::metadata::MetadataValue<tonic::metadata::Ascii>;
type CallFuture<T> = Pin<Box<dyn Future<Output = Result<T, CallError>> + Send>>;
/// The ID of the ingester in this process and how to ask it.
type LocalCall<T> = (
    String,
    Box<dyn FnOnce() -> CallFuture<WithMissing<T>> + Send>,
);
type NamedCall<T> = Pin<Box<dyn Future<Output = (String, Result<T, CallError>)> + Send>>;

/// A request carrying the tenant.
pub(crate) fn tenant_request<M>(message: M, tenant: TenantValue) -> tonic::Request<M> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert(strata_proto::TENANT_METADATA_KEY, tenant);
    req
}

impl IngesterQuerier {
    /// Series matching a selection, merged across replicas and sorted by
    /// labels. Their chunks stay encoded: the engine decodes what it reads
    /// (see [`crate::merge`]). Each ingester's answer is taken in as it
    /// streams in, and the read stops once it exceeds `limits`.
    pub async fn select(
        &self,
        tenant: &str,
        request: &SelectRequest,
        limits: FetchLimits,
    ) -> Result<Vec<StoredSeries>, QuerierError> {
        let covered = self.fetch(tenant, request, limits).await?;
        if let Some(&(from, to)) = covered.incomplete.first() {
            return Err(QuerierError::Unavailable(format!(
                "too few ingesters hold complete data for [{from}, {to}] (ms)"
            )));
        }
        merge_answers(named_ingesters(covered.answers), limits).await
    }

    /// Every replica's answer to a selection, still encoded, named by
    /// ingester, and the parts of its range no quorum of complete replicas
    /// answered for.
    pub(crate) async fn fetch(
        &self,
        tenant: &str,
        request: &SelectRequest,
        limits: FetchLimits,
    ) -> Result<Covered<SeriesList>, QuerierError> {
        // Reading one key's replicas, a member that joined after a time
        // holds none of that time's data, while the member it displaced is
        // not asked: it counts as missing there. Reading every member, the
        // displaced one is asked too, and the joiner simply held nothing
        // then.
        let (set, one_key) = self.read_set(tenant, &request.matchers)?;
        let matchers = matchers_to_pb(&request.matchers);
        let (start, end) = (request.start_ms, request.end_ms);
        let max_series = limits.max_series;
        let max_bytes = limits.max_chunk_bytes;
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let memory_limit = move || {
            CallError::Fatal(QuerierError::MemoryLimit(format!(
                "the query would fetch more than {} of chunks from ingesters, over the per-query memory limit (querier.max_query_memory); narrow the selectors or shorten the range",
                strata_promql::memory::human_bytes(max_bytes)
            )))
        };
        let local_call: Option<LocalCall<SeriesList>> = self.local.clone().map(|local| {
            let id = local.instance_id().to_string();
            let tenant = tenant.to_string();
            let matchers = request.matchers.clone();
            let received = received.clone();
            let call: Box<dyn FnOnce() -> CallFuture<WithMissing<SeriesList>> + Send> =
                Box::new(move || {
                    Box::pin(async move {
                        let answer = local
                            .query(&tenant, matchers, start, end)
                            .await
                            .map_err(CallError::from)?;
                        let mut missing = answer.missing;
                        if one_key {
                            missing.extend(answer.before_join);
                        }
                        let bytes: usize = answer
                            .series
                            .iter()
                            .flat_map(|(_, chunks)| chunks.iter().map(|c| c.data.len()))
                            .sum();
                        let total = received
                            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed)
                            .saturating_add(bytes);
                        if max_bytes > 0 && total > max_bytes {
                            return Err(memory_limit());
                        }
                        if max_series > 0 && answer.series.len() > max_series {
                            return Err(CallError::Fatal(too_many_series(max_series)));
                        }
                        Ok((answer.series, missing))
                    })
                });
            (id, call)
        });
        self.fan_out_covering(
            tenant,
            &set,
            Some((start, end)),
            move |mut client, tenant_value| {
                let req = tenant_request(
                    QueryRequest {
                        start_ms: start,
                        end_ms: end,
                        matchers: matchers.clone(),
                    },
                    tenant_value,
                );
                let received = received.clone();
                Box::pin(async move {
                    let mut stream = client.query_stream(req).await?.into_inner();
                    let mut list: SeriesList = Vec::new();
                    let mut missing: Vec<(i64, i64)> = Vec::new();
                    while let Some(msg) = stream.message().await? {
                        missing.extend(msg.missing.iter().map(|r| (r.start_ms, r.end_ms)));
                        if one_key {
                            missing.extend(msg.before_join.iter().map(|r| (r.start_ms, r.end_ms)));
                        }
                        let bytes: usize = msg
                            .series
                            .iter()
                            .flat_map(|s| s.chunks.iter().map(|c| c.data.len()))
                            .sum();
                        let total = received
                            .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed)
                            .saturating_add(bytes);
                        if max_bytes > 0 && total > max_bytes {
                            return Err(memory_limit());
                        }
                        for s in msg.series {
                            list.push((labels_from_pb(s.labels), s.chunks));
                        }
                        if max_series > 0 && list.len() > max_series {
                            return Err(CallError::Fatal(too_many_series(max_series)));
                        }
                    }
                    Ok((list, missing))
                })
            },
            local_call,
        )
        .await
    }

    /// Label names of the series matching any of `matcher_sets` (all names
    /// when there are none), sorted, at most `limit` (0 = all) plus one so
    /// the caller can tell the answer was cut.
    pub async fn label_names(
        &self,
        tenant: &str,
        start_ms: i64,
        end_ms: i64,
        matcher_sets: &[Vec<Matcher>],
        limit: usize,
    ) -> Result<Vec<String>, QuerierError> {
        self.string_union(
            tenant,
            matcher_sets,
            limit,
            move |mut client, tenant_value, matchers, ask| {
                let req = tenant_request(
                    LabelNamesRequest {
                        start_ms,
                        end_ms,
                        matchers,
                        limit: ask,
                    },
                    tenant_value,
                );
                Box::pin(async move { Ok(client.label_names(req).await?.into_inner().names) })
            },
        )
        .await
    }

    /// Values of label `name` among the series matching any of
    /// `matcher_sets` (all series when there are none); like
    /// [`Self::label_names`].
    pub async fn label_values(
        &self,
        tenant: &str,
        name: &str,
        start_ms: i64,
        end_ms: i64,
        matcher_sets: &[Vec<Matcher>],
        limit: usize,
    ) -> Result<Vec<String>, QuerierError> {
        let name = name.to_string();
        self.string_union(
            tenant,
            matcher_sets,
            limit,
            move |mut client, tenant_value, matchers, ask| {
                let req = tenant_request(
                    LabelValuesRequest {
                        name: name.clone(),
                        start_ms,
                        end_ms,
                        matchers,
                        limit: ask,
                    },
                    tenant_value,
                );
                Box::pin(async move { Ok(client.label_values(req).await?.into_inner().values) })
            },
        )
        .await
    }

    /// The sorted union of the strings `call` returns for each matcher set
    /// (one set without matchers when there are none, asked of every healthy
    /// ingester: names and metric names live everywhere), at most `limit`
    /// (0 = all) plus one. `call` gets the set's matchers and the per-ingester
    /// limit to ask for.
    async fn string_union<F>(
        &self,
        tenant: &str,
        matcher_sets: &[Vec<Matcher>],
        limit: usize,
        call: F,
    ) -> Result<Vec<String>, QuerierError>
    where
        F: Fn(Client, TenantValue, Vec<pb::LabelMatcher>, u64) -> CallFuture<Vec<String>>,
    {
        let ask = if limit > 0 { limit as u64 + 1 } else { 0 };
        let no_matchers = [Vec::new()];
        let sets = if matcher_sets.is_empty() {
            &no_matchers[..]
        } else {
            matcher_sets
        };
        let mut all: BTreeSet<String> = BTreeSet::new();
        for matchers in sets {
            let set = if matchers.is_empty() {
                self.all_healthy(tenant)?
            } else {
                self.replication_set(tenant, matchers)?
            };
            let pb_matchers = matchers_to_pb(matchers);
            let answers = self
                .fan_out(tenant, &set, |client, tenant_value| {
                    call(client, tenant_value, pb_matchers.clone(), ask)
                })
                .await?;
            all.extend(answers.into_iter().flatten());
        }
        Ok(truncate(all.into_iter().collect(), ask as usize))
    }

    /// Label sets of the series matching any of `matcher_sets`, sorted and
    /// deduplicated; like [`Self::label_names`] for the limit.
    pub async fn series(
        &self,
        tenant: &str,
        start_ms: i64,
        end_ms: i64,
        matcher_sets: &[Vec<Matcher>],
        limit: usize,
    ) -> Result<Vec<Labels>, QuerierError> {
        let ask = if limit > 0 { limit as u64 + 1 } else { 0 };
        let mut all: BTreeSet<Labels> = BTreeSet::new();
        for matchers in matcher_sets {
            let set = self.replication_set(tenant, matchers)?;
            let pb_set = pb::MatcherSet {
                matchers: matchers_to_pb(matchers),
            };
            let answers = self
                .fan_out(tenant, &set, move |mut client, tenant_value| {
                    let req = tenant_request(
                        SeriesRequest {
                            start_ms,
                            end_ms,
                            matcher_sets: vec![pb_set.clone()],
                            limit: ask,
                        },
                        tenant_value,
                    );
                    Box::pin(async move {
                        let resp = client.series(req).await?.into_inner();
                        Ok(resp
                            .series
                            .into_iter()
                            .map(|s| labels_from_pb(s.labels))
                            .collect::<Vec<Labels>>())
                    })
                })
                .await?;
            all.extend(answers.into_iter().flatten());
        }
        Ok(truncate(all.into_iter().collect(), ask as usize))
    }

    /// Metric metadata, by family name, merged across ingesters: every
    /// distinct (type, help, unit) of a family once. `metric` selects one
    /// family; `limit` caps the number of families (0 = all).
    pub async fn metadata(
        &self,
        tenant: &str,
        metric: Option<&str>,
        limit: usize,
    ) -> Result<BTreeMap<String, Vec<MetadataEntry>>, QuerierError> {
        // Metadata is placed by family name whatever the series sharding.
        let set = match metric {
            Some(name) => self.set_for_key(tenant, name)?,
            None => self.all_healthy(tenant)?,
        };
        let metric_text = metric.unwrap_or("").to_string();
        let answers = self
            .fan_out(tenant, &set, move |mut client, tenant_value| {
                let req = tenant_request(
                    MetricsMetadataRequest {
                        metric: metric_text.clone(),
                        limit: limit as u64,
                    },
                    tenant_value,
                );
                Box::pin(
                    async move { Ok(client.metrics_metadata(req).await?.into_inner().metadata) },
                )
            })
            .await?;
        let mut out: BTreeMap<String, BTreeSet<MetadataEntry>> = BTreeMap::new();
        for md in answers.into_iter().flatten() {
            out.entry(md.metric_family_name)
                .or_default()
                .insert(MetadataEntry {
                    metric_type: MetricType::from_i32(md.r#type).as_str().to_string(),
                    help: md.help,
                    unit: md.unit,
                });
        }
        let take = if limit == 0 { usize::MAX } else { limit };
        Ok(out
            .into_iter()
            .take(take)
            .map(|(name, entries)| (name, entries.into_iter().collect()))
            .collect())
    }
}

fn truncate<T>(mut items: Vec<T>, keep: usize) -> Vec<T> {
    if keep > 0 {
        items.truncate(keep);
    }
    items
}

fn too_many_series(limit: usize) -> QuerierError {
    QuerierError::TooManySeries(limit)
}

pub(crate) fn labels_from_pb(labels: Vec<strata_proto::prometheus::Label>) -> Labels {
    Labels::from_pairs(labels.into_iter().map(|l| (l.name, l.value)))
}

pub(crate) use strata_proto::convert::matchers_to_pb;

/// Names ingester answers `ingester <id>` for error messages.
pub(crate) fn named_ingesters(answers: Vec<(String, SeriesList)>) -> Vec<(String, SeriesList)> {
    answers
        .into_iter()
        .map(|(id, list)| (format!("ingester {id}"), list))
        .collect()
}

/// Merges answers of several sources (replicas, the long-term store) into
/// one list of series, on the blocking pool.
pub(crate) async fn merge_answers(
    answers: Vec<(String, SeriesList)>,
    limits: FetchLimits,
) -> Result<Vec<StoredSeries>, QuerierError> {
    let max_series = limits.max_series;
    strata_server::reads::run(move || {
        // Sources without series (the store before anything was flushed)
        // cost nothing.
        let answers: Vec<(String, SeriesList)> = answers
            .into_iter()
            .filter(|(_, list)| !list.is_empty())
            .collect();
        let names = answers.iter().map(|(id, _)| id.clone()).collect();
        let mut merger = SeriesMerger::new(names);
        for (replica, (id, list)) in answers.into_iter().enumerate() {
            for (labels, chunks) in list {
                merger
                    .add(replica, labels, chunks)
                    .map_err(|e| QuerierError::Internal(format!("{id}: {e}")))?;
            }
        }
        let merged = merger.finish();
        if max_series > 0 && merged.len() > max_series {
            return Err(too_many_series(max_series));
        }
        Ok(merged)
    })
    .await
    .map_err(|e| QuerierError::Internal(format!("merging task failed: {e}")))?
}
