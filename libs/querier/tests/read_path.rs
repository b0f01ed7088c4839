//! The read path against real ingester gRPC servers on 127.0.0.1: replica
//! merging, failure budgets, corrupt replicas, tenant isolation, and the HTTP
//! API on top.

mod support;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use futures::Stream;
use http_body_util::BodyExt;
use strata_ingester::service::IngesterService;
use strata_ingester::{Ingester, IngesterConfig, IngesterMetrics};
use strata_model::Labels;
use strata_model::{MatchOp, Matcher};
use strata_promql::SelectRequest;
use strata_proto::ingester::ingester_server::Ingester as IngesterRpc;
use strata_proto::ingester::{self as pb};
use strata_proto::RawWriteRequest;
use strata_querier::merge::read_all;
use strata_querier::{
    api_routes, ApiMetrics, FetchLimits, IngesterQuerier, Querier, QuerierConfig, QuerierError,
};
use strata_remote_write::{MetricType, OwnedMetadata};
use support::{reader, ring_of, serve, start_ingester, three, ts, TestIngester};
use tonic::{Request, Response, Status};
use tower::ServiceExt;

/// Answers queries with a corrupt chunk for every series; everything else
/// as a normal ingester.
struct CorruptIngester(IngesterService);

type QueryStream = Pin<Box<dyn Stream<Item = Result<pb::QueryStreamResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngesterRpc for CorruptIngester {
    async fn push(
        &self,
        r: Request<RawWriteRequest>,
    ) -> Result<Response<pb::PushResponse>, Status> {
        self.0.push(r).await
    }
    type QueryStreamStream = QueryStream;
    async fn query_stream(
        &self,
        r: Request<pb::QueryRequest>,
    ) -> Result<Response<QueryStream>, Status> {
        let _ = r;
        let msg = pb::QueryStreamResponse {
            series: vec![pb::SeriesChunks {
                labels: vec![strata_proto::prometheus::Label {
                    name: "__name__".into(),
                    value: "m".into(),
                }],
                chunks: vec![pb::Chunk {
                    start_ms: 0,
                    end_ms: i64::MAX,
                    encoding: 1,
                    data: bytes::Bytes::from_static(&[0x00, 0x05, 0xff, 0x01]),
                }],
            }],
            missing: Vec::new(),
            before_join: Vec::new(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter([Ok(msg)]))))
    }
    async fn label_names(
        &self,
        r: Request<pb::LabelNamesRequest>,
    ) -> Result<Response<pb::LabelNamesResponse>, Status> {
        self.0.label_names(r).await
    }
    async fn label_values(
        &self,
        r: Request<pb::LabelValuesRequest>,
    ) -> Result<Response<pb::LabelValuesResponse>, Status> {
        self.0.label_values(r).await
    }
    async fn series(
        &self,
        r: Request<pb::SeriesRequest>,
    ) -> Result<Response<pb::SeriesResponse>, Status> {
        self.0.series(r).await
    }
    async fn tenant_stats(
        &self,
        r: Request<pb::TenantStatsRequest>,
    ) -> Result<Response<pb::TenantStatsResponse>, Status> {
        self.0.tenant_stats(r).await
    }
    async fn all_tenant_stats(
        &self,
        r: Request<pb::AllTenantStatsRequest>,
    ) -> Result<Response<pb::AllTenantStatsResponse>, Status> {
        self.0.all_tenant_stats(r).await
    }
    async fn metrics_metadata(
        &self,
        r: Request<pb::MetricsMetadataRequest>,
    ) -> Result<Response<pb::MetricsMetadataResponse>, Status> {
        self.0.metrics_metadata(r).await
    }
    async fn query_exemplars(
        &self,
        r: Request<pb::ExemplarQueryRequest>,
    ) -> Result<Response<pb::ExemplarQueryResponse>, Status> {
        self.0.query_exemplars(r).await
    }
}

async fn start_corrupt_ingester(id: &str) -> TestIngester {
    let ingester = Arc::new(Ingester::new(
        IngesterConfig::default(),
        IngesterMetrics::default(),
    ));
    serve(
        CorruptIngester(IngesterService::new(ingester.clone())),
        id,
        ingester,
    )
    .await
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchOp::Equal, name, value).unwrap()
}

fn select(matchers: Vec<Matcher>) -> SelectRequest {
    SelectRequest {
        matchers,
        start_ms: 0,
        end_ms: i64::MAX,
    }
}

#[tokio::test]
async fn replicas_are_merged_without_double_counting() {
    let (a, b, c) = three().await;
    let full = [
        ts(
            &[("__name__", "m"), ("job", "x")],
            &[(1000, 1.0), (2000, 2.0), (3000, 3.0)],
        ),
        ts(&[("__name__", "m"), ("job", "y")], &[(1000, 10.0)]),
    ];
    a.push("t", &full, &[]);
    b.push("t", &full, &[]);
    // The third replica missed a sample and has one the others lack.
    c.push(
        "t",
        &[
            ts(
                &[("__name__", "m"), ("job", "x")],
                &[(1000, 1.0), (3000, 3.0), (4000, 4.0)],
            ),
            ts(&[("__name__", "m"), ("job", "y")], &[(1000, 10.0)]),
        ],
        &[],
    );
    let r = reader(ring_of(&[&a, &b, &c]).await);
    for request in [
        select(vec![eq("__name__", "m")]),
        select(vec![eq("job", "x")]),
        select(vec![
            Matcher::new(MatchOp::RegexMatch, "__name__", "m|n").unwrap()
        ]),
    ] {
        let series = fetch(&r, "t", &request).await.unwrap();
        let x: Vec<_> = series
            .iter()
            .filter(|s| s.0.get("job") == Some("x"))
            .collect();
        assert_eq!(x.len(), 1, "{request:?}");
        // Any two replicas hold every sample written to a quorum; the union
        // of what was asked never repeats a timestamp.
        let times: Vec<i64> = x[0].1.iter().map(|s| s.0).collect();
        let mut dedup = times.clone();
        dedup.dedup();
        assert_eq!(times, dedup);
        assert!(
            times.starts_with(&[1000]) && times.contains(&3000),
            "{times:?}"
        );
    }
    // Another tenant sees nothing.
    let other = fetch(&r, "other", &select(vec![eq("__name__", "m")]))
        .await
        .unwrap();
    assert!(other.is_empty());
}

#[tokio::test]
async fn one_failed_ingester_is_tolerated_two_are_not() {
    let (a, mut b, mut c) = three().await;
    let data = [ts(&[("__name__", "m")], &[(1000, 1.0)])];
    for ing in [&a, &b, &c] {
        ing.push("t", &data, &[]);
    }
    let r = reader(ring_of(&[&a, &b, &c]).await);
    b.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = fetch(&r, "t", &select(vec![eq("__name__", "m")]))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, vec![(1000, 1.0)]);
    let names = r.label_names("t", 0, i64::MAX, &[], 0).await.unwrap();
    assert_eq!(names, ["__name__"]);

    c.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = fetch(&r, "t", &select(vec![eq("__name__", "m")]))
        .await
        .unwrap_err();
    assert!(matches!(err, QuerierError::Unavailable(_)), "{err:?}");
    let err = r.label_names("t", 0, i64::MAX, &[], 0).await.unwrap_err();
    assert!(matches!(err, QuerierError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn a_corrupt_replica_is_left_out() {
    let mut a = start_ingester("ing-0").await;
    let b = start_ingester("ing-1").await;
    let bad = start_corrupt_ingester("ing-2").await;
    let data = [ts(&[("__name__", "m")], &[(1000, 1.0), (2000, 2.0)])];
    a.push("t", &data, &[]);
    b.push("t", &data, &[]);
    let r = reader(ring_of(&[&a, &b, &bad]).await);
    // Whichever two replicas answer first, a good one covers the corrupt
    // one's time span: the answer is complete.
    for _ in 0..5 {
        let got = fetch(&r, "t", &select(vec![eq("__name__", "m")]))
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, vec![(1000, 1.0), (2000, 2.0)]);
    }
    // Two corrupt replicas: complete when the good one is among the
    // answers, otherwise an error naming the problem; never a wrong answer
    // or a panic.
    let bad2 = start_corrupt_ingester("ing-1").await;
    let r = reader(ring_of(&[&a, &bad2, &bad]).await);
    for _ in 0..5 {
        match fetch(&r, "t", &select(vec![eq("__name__", "m")])).await {
            Ok(got) => assert_eq!(got[0].1, vec![(1000, 1.0), (2000, 2.0)]),
            Err(QuerierError::Internal(msg)) => {
                assert!(msg.contains("corrupt chunk from ingester"), "{msg}")
            }
            Err(other) => panic!("expected data or a corrupt-chunk error, got {other:?}"),
        }
    }
    // Only the corrupt replicas left: always the error.
    a.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    match fetch(&r, "t", &select(vec![eq("__name__", "m")])).await {
        Err(QuerierError::Internal(msg)) => {
            assert!(msg.contains("corrupt chunk from ingester ing-"), "{msg}")
        }
        other => panic!("expected a corrupt-chunk error, got {other:?}"),
    }
}

#[tokio::test]
async fn series_limit_is_enforced() {
    let (a, b, c) = three().await;
    let series: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|job| ts(&[("__name__", "m"), ("job", job)], &[(1000, 1.0)]))
        .collect();
    for ing in [&a, &b, &c] {
        ing.push("t", &series, &[]);
    }
    let r = reader(ring_of(&[&a, &b, &c]).await);
    let request = select(vec![eq("__name__", "m")]);
    let err = r
        .select("t", &request, FetchLimits::series(2))
        .await
        .unwrap_err();
    assert!(matches!(err, QuerierError::TooManySeries(2)), "{err:?}");
    assert!(err
        .to_string()
        .contains("max number of series limit (limit: 2 series)"));
    let got = r
        .select("t", &request, FetchLimits::series(3))
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
}

#[tokio::test]
async fn chunk_bytes_are_limited_as_they_arrive() {
    let (a, b, c) = three().await;
    let series: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|job| {
            ts(
                &[("__name__", "m"), ("job", job)],
                &[(1000, 1.0), (2000, 2.0)],
            )
        })
        .collect();
    for ing in [&a, &b, &c] {
        ing.push("t", &series, &[]);
    }
    let r = reader(ring_of(&[&a, &b, &c]).await);
    let request = select(vec![eq("__name__", "m")]);
    let tight = FetchLimits {
        max_series: 0,
        max_chunk_bytes: 10,
    };
    let err = r.select("t", &request, tight).await.unwrap_err();
    assert!(matches!(err, QuerierError::MemoryLimit(_)), "{err:?}");
    assert!(
        err.to_string().contains("querier.max_query_memory"),
        "{err}"
    );
    let roomy = FetchLimits {
        max_series: 0,
        max_chunk_bytes: 1 << 20,
    };
    assert_eq!(r.select("t", &request, roomy).await.unwrap().len(), 3);
}

/// Selects without limits and reads every series over the request's range.
async fn fetch(
    r: &IngesterQuerier,
    tenant: &str,
    request: &SelectRequest,
) -> Result<Vec<(Labels, Vec<(i64, f64)>)>, QuerierError> {
    let series = r.select(tenant, request, FetchLimits::series(0)).await?;
    series
        .iter()
        .map(|s| {
            read_all(s, request.start_ms, request.end_ms)
                .map(|samples| (s.labels.clone(), samples))
                .map_err(|e| QuerierError::Internal(e.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn labels_series_and_metadata_merge_across_ingesters() {
    let (a, b, c) = three().await;
    // Spread series so that no single ingester holds all of them.
    a.push(
        "t",
        &[ts(&[("__name__", "up"), ("job", "api")], &[(1000, 1.0)])],
        &[],
    );
    b.push(
        "t",
        &[
            ts(&[("__name__", "up"), ("job", "api")], &[(1000, 1.0)]),
            ts(
                &[("__name__", "up"), ("job", "db"), ("zone", "z1")],
                &[(1000, 1.0)],
            ),
        ],
        &[OwnedMetadata {
            metric_type: MetricType::Gauge,
            metric_family_name: "up".into(),
            help: "Whether the target is up.".into(),
            unit: String::new(),
        }],
    );
    c.push(
        "t",
        &[ts(
            &[("__name__", "up"), ("job", "db"), ("zone", "z1")],
            &[(1000, 1.0)],
        )],
        &[OwnedMetadata {
            metric_type: MetricType::Gauge,
            metric_family_name: "up".into(),
            help: "Whether the target is up.".into(),
            unit: String::new(),
        }],
    );
    // Every series is on two of the three replicas (a write quorum).
    for ing in [&b, &c] {
        ing.push(
            "u",
            &[ts(&[("__name__", "secret"), ("team", "u")], &[(1000, 1.0)])],
            &[],
        );
    }
    let r = reader(ring_of(&[&a, &b, &c]).await);

    let names = r.label_names("t", 0, i64::MAX, &[], 0).await.unwrap();
    assert_eq!(names, ["__name__", "job", "zone"]);
    let names = r
        .label_names("t", 0, i64::MAX, &[vec![eq("job", "api")]], 0)
        .await
        .unwrap();
    assert_eq!(names, ["__name__", "job"]);
    let values = r
        .label_values("t", "job", 0, i64::MAX, &[], 0)
        .await
        .unwrap();
    assert_eq!(values, ["api", "db"]);
    let series = r
        .series("t", 0, i64::MAX, &[vec![eq("__name__", "up")]], 0)
        .await
        .unwrap();
    assert_eq!(series.len(), 2);
    // Limits leave one extra so the caller can say the answer was cut.
    let values = r
        .label_values("t", "job", 0, i64::MAX, &[], 1)
        .await
        .unwrap();
    assert_eq!(values, ["api", "db"]);

    let md = r.metadata("t", None, 0).await.unwrap();
    assert_eq!(md.len(), 1);
    assert_eq!(md["up"].len(), 1, "replicas are deduplicated");
    assert_eq!(md["up"][0].metric_type, "gauge");
    assert!(r.metadata("u", None, 0).await.unwrap().is_empty());
    // Tenant isolation of names and values.
    let names = r.label_names("u", 0, i64::MAX, &[], 0).await.unwrap();
    assert_eq!(names, ["__name__", "team"]);
    assert!(!r
        .label_values("t", "__name__", 0, i64::MAX, &[], 0)
        .await
        .unwrap()
        .contains(&"secret".to_string()));
}

async fn get(router: &axum::Router, uri: &str, tenant: &str) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .uri(uri)
        .header("X-Scope-OrgID", tenant)
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

#[tokio::test]
async fn http_api_over_ingesters() {
    let (a, b, c) = three().await;
    let data = [
        ts(&[("__name__", "up"), ("job", "api")], &[(1000, 1.0)]),
        ts(&[("__name__", "up"), ("job", "db")], &[(1000, 0.0)]),
    ];
    for ing in [&a, &b, &c] {
        ing.push("t", &data, &[]);
    }
    let ring = ring_of(&[&a, &b, &c]).await;
    let querier = Arc::new(Querier::new(QuerierConfig::default(), reader(ring)));
    let router = api_routes(querier, true, ApiMetrics::default());

    let (code, v) = get(&router, "/prometheus/api/v1/labels", "t").await;
    assert_eq!(code, 200);
    assert_eq!(
        v,
        serde_json::json!({"status":"success","data":["__name__","job"]})
    );
    let (code, v) = get(&router, "/api/v1/label/job/values?match[]=up", "t").await;
    assert_eq!(code, 200);
    assert_eq!(v["data"], serde_json::json!(["api", "db"]));
    let (code, v) = get(&router, "/api/v1/series?match[]=up&limit=1", "t").await;
    assert_eq!(code, 200);
    assert_eq!(
        v["data"],
        serde_json::json!([{"__name__":"up","job":"api"}])
    );
    assert_eq!(
        v["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );
    let (code, v) = get(&router, "/api/v1/labels", "nobody").await;
    assert_eq!((code, v["data"].clone()), (200, serde_json::json!([])));
    let (code, v) = get(&router, "/api/v1/series", "t").await;
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert_eq!(v["error"], "no match[] parameter provided");
    let (code, v) = get(&router, "/api/v1/label/job-name/values", "t").await;
    assert_eq!(code, 400);
    assert_eq!(v["error"], "invalid label name: \"job-name\"");

    // Without a tenant, with authentication on: 401.
    let req = http::Request::builder()
        .uri("/api/v1/labels")
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

/// An XOR chunk of `samples`, as the store keeps it.
fn store_chunk(samples: &[(i64, f64)]) -> strata_store::StoreChunk {
    let mut c = strata_chunk::XorChunk::new();
    for &(t, v) in samples {
        c.append(t, v);
    }
    strata_store::StoreChunk {
        min_time: samples[0].0,
        max_time: samples[samples.len() - 1].0,
        encoding: 1,
        data: bytes::Bytes::copy_from_slice(c.bytes()),
    }
}

#[tokio::test]
async fn store_and_ingesters_answer_together_and_store_limits_are_422() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = strata_store::StoreConfig::default();
    config.limits.max_chunks_per_query = 1;
    let store = Arc::new(
        strata_store::Store::open(&config, dir.path(), "t1", &Default::default())
            .await
            .unwrap(),
    );
    // Older samples only in the store (one series only there), newer ones
    // only in the ingesters, one sample in both.
    let labels = Labels::from_pairs([("__name__", "up"), ("job", "api")]);
    let old_only = Labels::from_pairs([("__name__", "up"), ("job", "old")]);
    let series = |l: &Labels, samples: &[(i64, f64)]| strata_store::WriteSeries {
        fingerprint: strata_model::fingerprint(l.iter().map(|l| (&*l.name, &*l.value))),
        labels: l.clone(),
        digest: 0,
        chunks: vec![store_chunk(samples)],
    };
    store
        .write(&strata_store::WriteBatch {
            tenant: "t".into(),
            window_start_ms: 0,
            window_end_ms: 7_200_000,
            series: vec![
                series(&labels, &[(1000, 1.0), (2000, 2.0), (3000, 3.0)]),
                series(&old_only, &[(1000, 7.0)]),
            ],
        })
        .await
        .unwrap();
    let (a, b, c) = three().await;
    for ing in [&a, &b, &c] {
        ing.push(
            "t",
            &[ts(
                &[("__name__", "up"), ("job", "api")],
                &[(3000, 3.0), (4000, 4.0)],
            )],
            &[],
        );
    }
    let ring = ring_of(&[&a, &b, &c]).await;
    let querier = Arc::new(Querier::new(QuerierConfig::default(), reader(ring)).with_store(store));
    let router = api_routes(querier, true, ApiMetrics::default());

    let (code, v) = get(
        &router,
        "/api/v1/query_range?query=up%7Bjob%3D%22api%22%7D&start=1&end=4&step=1",
        "t",
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["data"]["result"][0]["values"],
        serde_json::json!([[1, "1"], [2, "2"], [3, "3"], [4, "4"]]),
        "store and ingesters merged, the shared sample once"
    );
    let (code, v) = get(&router, "/api/v1/label/job/values?start=0&end=10", "t").await;
    assert_eq!(
        (code, v["data"].clone()),
        (200, serde_json::json!(["api", "old"]))
    );
    let (code, v) = get(
        &router,
        "/api/v1/series?match[]=%7Bjob%3D~%22.%2B%22%7D&start=0&end=10",
        "t",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2), "{v}");
    let (code, v) = get(
        &router,
        "/api/v1/labels?match[]=up%7Bjob%3D%22old%22%7D&start=0&end=10",
        "t",
    )
    .await;
    assert_eq!(
        (code, v["data"].clone()),
        (200, serde_json::json!(["__name__", "job"]))
    );
    // Another tenant sees nothing of it.
    let (code, v) = get(&router, "/api/v1/label/job/values", "other").await;
    assert_eq!((code, v["data"].clone()), (200, serde_json::json!([])));

    // Two chunks in the store for `up`, the limit is one: 422 naming it.
    let (code, v) = get(
        &router,
        "/api/v1/query?query=count_over_time(up%5B1h%5D)&time=10",
        "t",
    )
    .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["errorType"], "execution");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains("storage.limits.max_chunks_per_query"), "{msg}");
}

/// Replicas that report read gaps (they restarted, or joined) do not count
/// towards the quorum for those ranges: a query reads the other replicas,
/// and when too few complete ones remain it refuses (503) or, asked for a
/// partial answer, answers with a warning.
#[tokio::test]
async fn replicas_with_read_gaps_do_not_make_up_a_quorum() {
    use strata_ingester::ReadGap;
    let (a, b, mut c) = three().await;
    let samples: Vec<(i64, f64)> = (0..10).map(|i| (i * 100_000, i as f64)).collect();
    let full = [ts(&[("__name__", "m")], &samples)];
    for ing in [&a, &b, &c] {
        ing.push("t", &full, &[]);
    }
    let ring = ring_of(&[&a, &b, &c]).await;
    let querier = Arc::new(Querier::new(QuerierConfig::default(), reader(ring)));
    let router = api_routes(querier, true, ApiMetrics::default());
    let query = "/api/v1/query_range?query=m&start=0&end=900&step=100";
    let points = |v: &serde_json::Value| {
        v["data"]["result"][0]["values"]
            .as_array()
            .map_or(0, |p| p.len())
    };

    // One replica at a time lacking part of the range: complete.
    a.ingester
        .set_read_gaps(vec![ReadGap::new(100_000, 300_000)]);
    b.ingester
        .set_read_gaps(vec![ReadGap::new(500_000, 700_000)]);
    let (code, v) = get(&router, query, "t").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(points(&v), 10, "{v}");
    assert!(v.get("warnings").is_none(), "{v}");

    // Two of three lack [250 s, 300 s]: a quorum of complete replicas is
    // impossible there.
    b.ingester
        .set_read_gaps(vec![ReadGap::new(250_000, 700_000)]);
    let (code, v) = get(&router, query, "t").await;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["errorType"], "unavailable");
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("[250.000, 300.000]"), "{error}");
    assert!(error.contains("partial_response=true"), "{error}");
    // Outside the gaps' overlap (with the 5 m lookback, the selection
    // starts at 400 s), the same data answers.
    let (code, v) = get(
        &router,
        "/api/v1/query_range?query=m&start=700&end=900&step=100",
        "t",
    )
    .await;
    assert_eq!((code, points(&v)), (200, 3), "{v}");
    // Asked for a partial answer: what the replicas hold, with a warning.
    let (code, v) = get(&router, &format!("{query}&partial_response=true"), "t").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(points(&v), 10, "{v}");
    let warning = v["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("partial answer"), "{v}");
    let (code, v) = get(&router, &format!("{query}&partial_response=maybe"), "t").await;
    assert_eq!(
        (code, v["errorType"].as_str()),
        (400, Some("bad_data")),
        "{v}"
    );

    // Gaps from before two replicas joined: reading the metric's replication
    // set, the members they displaced are not asked, so that is incomplete;
    // reading every member (no metric name), the joiners simply held
    // nothing then.
    a.ingester
        .set_read_gaps(vec![ReadGap::before_join(i64::MIN, 300_000)]);
    b.ingester
        .set_read_gaps(vec![ReadGap::before_join(i64::MIN, 300_000)]);
    let (code, v) = get(&router, query, "t").await;
    assert_eq!(code, 503, "{v}");
    let every_member =
        "/api/v1/query_range?query=%7B__name__%3D~%22m%22%7D&start=0&end=900&step=100";
    let (code, v) = get(&router, every_member, "t").await;
    assert_eq!((code, points(&v)), (200, 10), "{v}");
    a.ingester
        .set_read_gaps(vec![ReadGap::new(100_000, 300_000)]);

    // A failed replica and one lacking part of the range: incomplete there
    // too, though each alone is within the failure budget.
    b.ingester.set_read_gaps(Vec::new());
    c.stop();
    // Its server stops once its open connection is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (code, v) = loop {
        let (code, v) = get(&router, query, "t").await;
        if code != 200 || std::time::Instant::now() > deadline {
            break (code, v);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code, 503, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("[100.000, 300.000]"),
        "{v}"
    );
    a.ingester.set_read_gaps(Vec::new());
    let (code, v) = get(&router, query, "t").await;
    assert_eq!((code, points(&v)), (200, 10), "{v}");
}
