//! The ingester's gRPC service.

use std::pin::Pin;
use std::sync::Arc;

use strata_server::admission::Admission;

use futures::Stream;
use strata_model::Matcher;
use strata_proto::ingester::{
    self as pb, ingester_server::Ingester as IngesterRpc, AllTenantStatsRequest,
    AllTenantStatsResponse, LabelNamesRequest, LabelNamesResponse, LabelValuesRequest,
    LabelValuesResponse, MetricsMetadataRequest, MetricsMetadataResponse, PushResponse,
    QueryRequest, QueryStreamResponse, SeriesRequest, SeriesResponse, TenantStatsRequest,
    TenantStatsResponse,
};
use strata_proto::prometheus::{Label as PbLabel, MetricMetadata as PbMetricMetadata};
use strata_proto::{RawWriteRequest, TENANT_METADATA_KEY};
use tonic::{Request, Response, Status};

use crate::{Ingester, IngesterError, TenantStats};

/// Series per streamed query message.
const QUERY_BATCH: usize = 128;

pub use strata_proto::ingester::ingester_server::IngesterServer;

#[derive(Clone)]
pub struct IngesterService {
    ingester: Arc<Ingester>,
    /// Limits on push calls in flight (gRPC only: a distributor in the same
    /// process admits its requests itself).
    admission: Option<Arc<Admission>>,
}

impl IngesterService {
    pub fn new(ingester: Arc<Ingester>) -> Self {
        Self {
            ingester,
            admission: None,
        }
    }

    /// Refuses push calls beyond `admission`'s limits with `UNAVAILABLE`.
    pub fn with_admission(mut self, admission: Arc<Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    pub fn into_server(self) -> IngesterServer<Self> {
        IngesterServer::new(self)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20)
    }
}

impl IngesterService {
    /// Appends an encoded remote write request for `tenant`: the push RPC
    /// without gRPC, also called directly by a distributor in this process.
    pub async fn push_body(
        &self,
        tenant: String,
        body: bytes::Bytes,
    ) -> Result<PushResponse, Status> {
        strata_model::validate_tenant_id(&tenant)
            .map_err(|e| Status::invalid_argument(format!("invalid tenant ID: {e}")))?;
        let ingester = self.ingester.clone();
        let (outcome, durable) = blocking(move || ingester.push_durable(&tenant, &body)).await??;
        // Acknowledged only once the write-ahead log holds it.
        if let Some(durable) = durable {
            durable
                .wait()
                .await
                .map_err(|e| Status::from(IngesterError::Wal(e.to_string())))?;
        }
        Ok(PushResponse {
            samples_appended: outcome.appended,
            samples_rejected: outcome.rejected,
            rejection: outcome.first_rejection.unwrap_or_default(),
        })
    }

    /// The query RPC without gRPC, for a querier in this process: the
    /// matching series (labels and chunk data shared, nothing encoded),
    /// then the parts of the range this ingester may lack as a member and
    /// from before it joined.
    pub async fn query_local(
        &self,
        tenant: String,
        matchers: Vec<Matcher>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<LocalQuery, Status> {
        strata_model::validate_tenant_id(&tenant)
            .map_err(|e| Status::invalid_argument(format!("invalid tenant ID: {e}")))?;
        let (joined, member): (Vec<_>, Vec<_>) = self
            .ingester
            .missing_in(start_ms, end_ms)
            .into_iter()
            .partition(|g| g.joined);
        let spans = |gaps: Vec<crate::ReadGap>| -> Vec<(i64, i64)> {
            gaps.into_iter().map(|g| (g.start_ms, g.end_ms)).collect()
        };
        let ingester = self.ingester.clone();
        let series = read(move || ingester.query(&tenant, &matchers, start_ms, end_ms)).await?;
        Ok(LocalQuery {
            series,
            missing: spans(member),
            before_join: spans(joined),
        })
    }
}

/// What [`IngesterService::query_local`] answers.
pub struct LocalQuery {
    pub series: Vec<crate::QueriedSeries>,
    pub missing: Vec<(i64, i64)>,
    pub before_join: Vec<(i64, i64)>,
}

/// The tenant of a call, from its `x-scope-orgid` metadata.
pub fn tenant_of<T>(req: &Request<T>) -> Result<String, Status> {
    let value = req
        .metadata()
        .get(TENANT_METADATA_KEY)
        .ok_or_else(|| Status::unauthenticated("no tenant ID in x-scope-orgid metadata"))?;
    let id = value
        .to_str()
        .map_err(|_| Status::invalid_argument("tenant ID is not valid ASCII"))?;
    strata_model::validate_tenant_id(id)
        .map_err(|e| Status::invalid_argument(format!("invalid tenant ID: {e}")))?;
    Ok(id.to_string())
}

/// Converts matchers from their protobuf form (a bad one is the caller's
/// error).
pub fn matchers_from_pb(ms: &[pb::LabelMatcher]) -> Result<Vec<Matcher>, Status> {
    strata_proto::convert::matchers_from_pb(ms).map_err(Status::invalid_argument)
}

/// Converts matcher sets from their protobuf form.
fn matcher_sets_from_pb(sets: &[pb::MatcherSet]) -> Result<Vec<Vec<Matcher>>, Status> {
    sets.iter().map(|s| matchers_from_pb(&s.matchers)).collect()
}

/// Converts a label set to its protobuf form.
pub(crate) fn labels_to_pb(labels: &strata_model::Labels) -> Vec<PbLabel> {
    labels
        .iter()
        .map(|l| PbLabel {
            name: l.name.clone(),
            value: l.value.clone(),
        })
        .collect()
}

fn stats_to_pb(tenant: String, s: TenantStats) -> pb::TenantStats {
    pb::TenantStats {
        tenant,
        series: s.series,
        samples_appended: s.samples_appended,
        ingestion_rate: s.ingestion_rate,
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    strata_server::cpu::run(f)
        .await
        .map_err(|e| Status::internal(format!("ingester task failed: {e}")))
}

/// Reads run on the read pool, behind pushes (see `strata_server::reads`).
async fn read<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Status> {
    strata_server::reads::run(f)
        .await
        .map_err(|e| Status::internal(format!("ingester read failed: {e}")))
}

type QueryStream = Pin<Box<dyn Stream<Item = Result<QueryStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngesterRpc for IngesterService {
    async fn push(&self, req: Request<RawWriteRequest>) -> Result<Response<PushResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let body = req.into_inner().0;
        let _ticket = match &self.admission {
            Some(a) => {
                let mut ticket = a.enter().map_err(|e| Status::unavailable(e.to_string()))?;
                // The body, and about as much again for what it decodes to.
                ticket
                    .add_bytes(body.len().saturating_mul(2))
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                Some(ticket)
            }
            None => None,
        };
        self.push_body(tenant, body).await.map(Response::new)
    }

    type QueryStreamStream = QueryStream;

    async fn query_stream(
        &self,
        req: Request<QueryRequest>,
    ) -> Result<Response<Self::QueryStreamStream>, Status> {
        let tenant = tenant_of(&req)?;
        let req = req.into_inner();
        let matchers = matchers_from_pb(&req.matchers)?;
        let ingester = self.ingester.clone();
        let (joined, member): (Vec<_>, Vec<_>) = self
            .ingester
            .missing_in(req.start_ms, req.end_ms)
            .into_iter()
            .partition(|g| g.joined);
        let ranges = |gaps: Vec<crate::ReadGap>| -> Vec<pb::TimeRange> {
            gaps.into_iter()
                .map(|g| pb::TimeRange {
                    start_ms: g.start_ms,
                    end_ms: g.end_ms,
                })
                .collect()
        };
        let mut missing = ranges(member);
        let mut before_join = ranges(joined);
        let series =
            read(move || ingester.query(&tenant, &matchers, req.start_ms, req.end_ms)).await?;
        // Batches are encoded as the client reads them, so the answer is
        // never held twice (snapshot and messages) and a client that stops
        // reading stops the work. The first message carries the missing
        // ranges (alone, when no series match).
        let mut rest = series.into_iter();
        let mut first = true;
        let batches = std::iter::from_fn(move || {
            let batch: Vec<pb::SeriesChunks> = rest
                .by_ref()
                .take(QUERY_BATCH)
                .map(|s| pb::SeriesChunks {
                    labels: labels_to_pb(&s.labels),
                    chunks: s
                        .chunks
                        .into_iter()
                        .map(|c| pb::Chunk {
                            start_ms: c.min_time,
                            end_ms: c.max_time,
                            encoding: c.encoding,
                            data: c.data,
                        })
                        .collect(),
                })
                .collect();
            let missing = std::mem::take(&mut missing);
            let before_join = std::mem::take(&mut before_join);
            let send =
                !batch.is_empty() || (first && !(missing.is_empty() && before_join.is_empty()));
            first = false;
            send.then_some(Ok(QueryStreamResponse {
                series: batch,
                missing,
                before_join,
            }))
        });
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn label_names(
        &self,
        req: Request<LabelNamesRequest>,
    ) -> Result<Response<LabelNamesResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let req = req.into_inner();
        let matchers = matchers_from_pb(&req.matchers)?;
        let ingester = self.ingester.clone();
        let mut names =
            read(move || ingester.label_names(&tenant, &matchers, req.start_ms, req.end_ms))
                .await?;
        if req.limit > 0 {
            names.truncate(req.limit as usize);
        }
        Ok(Response::new(LabelNamesResponse { names }))
    }

    async fn label_values(
        &self,
        req: Request<LabelValuesRequest>,
    ) -> Result<Response<LabelValuesResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let req = req.into_inner();
        let matchers = matchers_from_pb(&req.matchers)?;
        let ingester = self.ingester.clone();
        let name = req.name.clone();
        let mut values = read(move || {
            ingester.label_values(&tenant, &name, &matchers, req.start_ms, req.end_ms)
        })
        .await?;
        if req.limit > 0 {
            values.truncate(req.limit as usize);
        }
        Ok(Response::new(LabelValuesResponse { values }))
    }

    async fn series(
        &self,
        req: Request<SeriesRequest>,
    ) -> Result<Response<SeriesResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let req = req.into_inner();
        let sets = matcher_sets_from_pb(&req.matcher_sets)?;
        let ingester = self.ingester.clone();
        let limit = req.limit as usize;
        let series = read(move || {
            let mut all: Vec<strata_model::Labels> = sets
                .iter()
                .flat_map(|ms| ingester.series(&tenant, ms, req.start_ms, req.end_ms, 0))
                .collect();
            all.sort();
            all.dedup();
            if limit > 0 {
                all.truncate(limit);
            }
            all
        })
        .await?;
        Ok(Response::new(SeriesResponse {
            series: series
                .iter()
                .map(|l| pb::LabelSet {
                    labels: labels_to_pb(l),
                })
                .collect(),
        }))
    }

    async fn tenant_stats(
        &self,
        req: Request<TenantStatsRequest>,
    ) -> Result<Response<TenantStatsResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let stats = self.ingester.stats(&tenant);
        Ok(Response::new(TenantStatsResponse {
            stats: Some(stats_to_pb(tenant, stats)),
        }))
    }

    async fn all_tenant_stats(
        &self,
        _req: Request<AllTenantStatsRequest>,
    ) -> Result<Response<AllTenantStatsResponse>, Status> {
        let stats = self
            .ingester
            .all_stats()
            .into_iter()
            .map(|(t, s)| stats_to_pb(t, s))
            .collect();
        Ok(Response::new(AllTenantStatsResponse { stats }))
    }

    async fn metrics_metadata(
        &self,
        req: Request<MetricsMetadataRequest>,
    ) -> Result<Response<MetricsMetadataResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let req = req.into_inner();
        let family = (!req.metric.is_empty()).then_some(req.metric.as_str());
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        let metadata = self
            .ingester
            .metadata(&tenant, family, limit)
            .into_iter()
            .map(|(name, md)| PbMetricMetadata {
                r#type: md.metric_type,
                metric_family_name: name,
                help: md.help,
                unit: md.unit,
            })
            .collect();
        Ok(Response::new(MetricsMetadataResponse { metadata }))
    }

    async fn query_exemplars(
        &self,
        req: Request<pb::ExemplarQueryRequest>,
    ) -> Result<Response<pb::ExemplarQueryResponse>, Status> {
        let tenant = tenant_of(&req)?;
        let req = req.into_inner();
        let sets = matcher_sets_from_pb(&req.matcher_sets)?;
        let ingester = self.ingester.clone();
        let series =
            read(move || ingester.query_exemplars(&tenant, &sets, req.start_ms, req.end_ms))
                .await?;
        Ok(Response::new(crate::exemplars::to_pb(series)))
    }
}
