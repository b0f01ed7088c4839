//! Prometheus's HTTP query API, under `/prometheus/api/v1/` and `/api/v1/`.
//!
//! Every endpoint takes GET with URL parameters and POST with a form body,
//! answers with Prometheus's JSON shapes, status codes and error types, and
//! reads only the data of the tenant named by `X-Scope-OrgID`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use strata_model::is_valid_label_name;
use strata_promql::{Annotations, QueryOutput, Value};
use strata_server::tenant::tenant_from_headers;

use crate::error::{ApiError, ErrorType, QuerierError};
use crate::format::{
    cap_annotations, error_body, push_json_str, push_labels, push_query_data, push_str_array,
    success_body,
};
use crate::params::{
    duration_param, limit_param, parse_matcher_sets, time_param, Params, MAX_TIME_MS, MIN_TIME_MS,
};
use crate::querier::{QueryOverrides, QueryRange};
use crate::Querier;

/// Largest form body accepted (long queries sent by POST).
const MAX_BODY_BYTES: usize = 8 << 20;
/// Points per series a range query may return, as in Prometheus.
const MAX_POINTS: i64 = 11_000;
/// The Prometheus version whose API this one follows, for clients (such as
/// Grafana) that pick features by version.
const PROMETHEUS_API_VERSION: &str = "3.0.0";
const TRUNCATED_WARNING: &str = "results truncated due to limit";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

/// Metrics of the query API.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabel, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        fn histogram() -> Histogram {
            Histogram::new(exponential_buckets(0.001, 4.0, 10))
        }
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram),
        }
    }
}

impl ApiMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "querier_requests",
            "Query API requests, by endpoint and HTTP status",
            self.requests.clone(),
        );
        registry.register(
            "querier_request_duration_seconds",
            "Time to answer query API requests, by endpoint",
            self.duration.clone(),
        );
    }
}

#[derive(Clone)]
struct ApiState {
    querier: Arc<Querier>,
    auth_enabled: bool,
    metrics: ApiMetrics,
}

/// A successful answer: the JSON of `data`, warnings and infos.
struct Answer {
    data: String,
    warnings: Vec<String>,
    infos: Vec<String>,
}

impl Answer {
    fn new(data: String) -> Self {
        Self::with_warnings(data, Vec::new())
    }

    fn with_warnings(data: String, warnings: Vec<String>) -> Self {
        Self {
            data,
            warnings,
            infos: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Query,
    QueryRange,
    Series,
    Labels,
    LabelValues,
    Metadata,
    BuildInfo,
    QueryExemplars,
    FormatQuery,
    ParseQuery,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Query => "query",
            Endpoint::QueryRange => "query_range",
            Endpoint::Series => "series",
            Endpoint::Labels => "labels",
            Endpoint::LabelValues => "label_values",
            Endpoint::Metadata => "metadata",
            Endpoint::BuildInfo => "buildinfo",
            Endpoint::QueryExemplars => "query_exemplars",
            Endpoint::FormatQuery => "format_query",
            Endpoint::ParseQuery => "parse_query",
        }
    }
}

/// The query API routes, under both `/prometheus/api/v1` and `/api/v1`.
pub fn api_routes(querier: Arc<Querier>, auth_enabled: bool, metrics: ApiMetrics) -> Router {
    let state = ApiState {
        querier,
        auth_enabled,
        metrics,
    };
    let mut router = Router::new();
    for prefix in ["/prometheus/api/v1", "/api/v1"] {
        router = router
            .route(&format!("{prefix}/query"), get(query).post(query))
            .route(
                &format!("{prefix}/query_range"),
                get(query_range).post(query_range),
            )
            .route(&format!("{prefix}/series"), get(series).post(series))
            .route(&format!("{prefix}/labels"), get(labels).post(labels))
            .route(
                &format!("{prefix}/label/{{name}}/values"),
                get(label_values).post(label_values),
            )
            .route(&format!("{prefix}/metadata"), get(metadata).post(metadata))
            .route(
                &format!("{prefix}/status/buildinfo"),
                get(buildinfo).post(buildinfo),
            )
            .route(
                &format!("{prefix}/query_exemplars"),
                get(query_exemplars).post(query_exemplars),
            )
            .route(
                &format!("{prefix}/format_query"),
                get(format_query).post(format_query),
            )
            .route(
                &format!("{prefix}/parse_query"),
                get(parse_query).post(parse_query),
            );
    }
    // Mimir's cardinality API sits beside Prometheus's.
    let cardinality = crate::cardinality::cardinality_routes(state.querier.clone(), auth_enabled);
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .merge(cardinality)
}

/// One axum handler per endpoint, all funnelled into [`serve`].
macro_rules! handler {
    ($name:ident, $endpoint:expr) => {
        async fn $name(
            State(s): State<ApiState>,
            headers: HeaderMap,
            RawQuery(query): RawQuery,
            body: Bytes,
        ) -> Response {
            serve(s, $endpoint, headers, query, body, None).await
        }
    };
}

handler!(query, Endpoint::Query);
handler!(query_range, Endpoint::QueryRange);
handler!(series, Endpoint::Series);
handler!(labels, Endpoint::Labels);
handler!(metadata, Endpoint::Metadata);
handler!(buildinfo, Endpoint::BuildInfo);
handler!(query_exemplars, Endpoint::QueryExemplars);
handler!(format_query, Endpoint::FormatQuery);
handler!(parse_query, Endpoint::ParseQuery);

async fn label_values(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    serve(s, Endpoint::LabelValues, headers, query, body, Some(name)).await
}

async fn serve(
    s: ApiState,
    endpoint: Endpoint,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
    label: Option<String>,
) -> Response {
    let started = std::time::Instant::now();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let params = Params::parse(query.as_deref(), content_type, &body);
    let result = match endpoint {
        Endpoint::Query => handle_query(&s, &headers, &params).await,
        Endpoint::QueryRange => handle_query_range(&s, &headers, &params).await,
        Endpoint::Series => handle_series(&s, &headers, &params).await,
        Endpoint::Labels => handle_labels(&s, &headers, &params).await,
        Endpoint::LabelValues => {
            handle_label_values(&s, &headers, &params, label.as_deref().unwrap_or("")).await
        }
        Endpoint::Metadata => handle_metadata(&s, &headers, &params).await,
        Endpoint::BuildInfo => Ok(Answer::new(buildinfo_json())),
        Endpoint::QueryExemplars => handle_query_exemplars(&s, &headers, &params).await,
        Endpoint::FormatQuery => handle_format_query(&params).await,
        Endpoint::ParseQuery => handle_parse_query(&params).await,
    };
    let response = match result {
        Ok(answer) => json_response(
            axum::http::StatusCode::OK,
            success_body(&answer.data, &answer.warnings, &answer.infos),
        ),
        Err(e) => {
            if e.typ.status().is_server_error() {
                tracing::warn!(endpoint = endpoint.name(), error = %e.message, "query API request failed");
            } else {
                tracing::debug!(endpoint = endpoint.name(), error = %e.message, "query API request refused");
            }
            json_response(e.status(), error_body(e.typ.as_str(), &e.message))
        }
    };
    s.metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint.name().to_string(),
            status: response.status().as_u16().to_string(),
        })
        .inc();
    s.metrics
        .duration
        .get_or_create(&EndpointLabel {
            endpoint: endpoint.name().to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

fn json_response(status: axum::http::StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn tenant(s: &ApiState, headers: &HeaderMap) -> Result<String, ApiError> {
    tenant_from_headers(headers, s.auth_enabled).map_err(|(status, message)| ApiError {
        typ: ErrorType::BadData,
        message,
        status: Some(status),
    })
}

use strata_model::duration::now_ms;

/// Parses `query` to report syntax errors as Prometheus does, before any
/// data is read.
fn check_query(query: &str) -> Result<promql_parser::parser::Expr, ApiError> {
    if query.trim().is_empty() {
        return Err(ApiError::invalid_param(
            "query",
            "1:1: parse error: no expression found in input",
        ));
    }
    strata_promql::parse(query).map_err(|e| ApiError::invalid_param("query", e))
}

/// Longest query parsed on the async thread; longer ones (whose error
/// location can take milliseconds) are parsed on the blocking pool.
const INLINE_PARSE_MAX: usize = 512;

/// [`check_query`] off the async threads when the query is long.
async fn check_query_async(query: &str) -> Result<promql_parser::parser::Expr, ApiError> {
    if query.len() <= INLINE_PARSE_MAX {
        return check_query(query);
    }
    let owned = query.to_string();
    tokio::task::spawn_blocking(move || check_query(&owned))
        .await
        .map_err(|e| ApiError::from(QuerierError::Internal(format!("query parsing failed: {e}"))))?
}

fn duration_of(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// The `timeout`, `lookback_delta` and `partial_response` parameters.
fn overrides(params: &Params) -> Result<QueryOverrides, ApiError> {
    let timeout = duration_param(params, "timeout")?.map(duration_of);
    let lookback = params.get("lookback_delta");
    let lookback_delta = if lookback.is_empty() {
        None
    } else {
        let ms = crate::params::parse_duration(lookback).map_err(|e| {
            ApiError::bad_data(format!("error parsing lookback delta duration: {e}"))
        })?;
        (ms > 0).then(|| duration_of(ms))
    };
    let partial_response = match params.get("partial_response") {
        "" => None,
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        other => {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"partial_response\": {other:?} is not true or false"
            )))
        }
    };
    Ok(QueryOverrides {
        timeout,
        lookback_delta,
        partial_response,
    })
}

/// Keeps at most `limit` series of a vector or matrix (0 = all).
fn apply_limit(value: Value, limit: usize) -> (Value, Vec<String>) {
    if limit == 0 {
        return (value, Vec::new());
    }
    let warn = || vec![TRUNCATED_WARNING.to_string()];
    match value {
        Value::Vector(mut v) if v.len() > limit => {
            v.truncate(limit);
            (Value::Vector(v), warn())
        }
        Value::Matrix(mut m) if m.len() > limit => {
            m.truncate(limit);
            (Value::Matrix(m), warn())
        }
        other => (other, Vec::new()),
    }
}

/// The answer to `query` or `query_range`: the result cut to `limit`,
/// with the engine's warnings and infos, at most ten of each as
/// Prometheus sends them (the truncation warning first, so it is never the
/// one left out).
async fn query_answer(output: QueryOutput, limit: usize) -> Result<Answer, ApiError> {
    let QueryOutput {
        value,
        annotations:
            Annotations {
                warnings: engine_warnings,
                infos,
            },
    } = output;
    let (value, mut warnings) = apply_limit(value, limit);
    warnings.extend(engine_warnings);
    let warnings = cap_annotations(warnings, "warning");
    let infos = cap_annotations(infos, "info");
    // Large results take a while to write out: off the async threads.
    let data = strata_server::reads::run(move || {
        let mut out = String::new();
        push_query_data(&mut out, &value);
        out
    })
    .await
    .map_err(|e| {
        ApiError::new(
            ErrorType::Internal,
            format!("encoding the result failed: {e}"),
        )
    })?;
    Ok(Answer {
        data,
        warnings,
        infos,
    })
}

async fn handle_query(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Answer, ApiError> {
    let tenant = tenant(s, headers)?;
    let limit = limit_param(params)?;
    let time_ms = time_param(params, "time", now_ms())?;
    let overrides = overrides(params)?;
    let query = params.get("query");
    check_query_async(query).await?;
    let output = s
        .querier
        .query(&tenant, query, QueryRange::Instant { time_ms }, overrides)
        .await?;
    query_answer(output, limit).await
}

async fn handle_query_range(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Answer, ApiError> {
    let tenant = tenant(s, headers)?;
    let limit = limit_param(params)?;
    let start_ms = crate::params::parse_time(params.get("start"))
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end_ms = crate::params::parse_time(params.get("end"))
        .map_err(|e| ApiError::invalid_param("end", e))?;
    if end_ms < start_ms {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step_ms = crate::params::parse_duration(params.get("step"))
        .map_err(|e| ApiError::invalid_param("step", e))?;
    if step_ms <= 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end_ms - start_ms) / step_ms > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let overrides = overrides(params)?;
    let query = params.get("query");
    check_query_async(query).await?;
    s.querier.check_length(&tenant, start_ms, end_ms)?;
    let output = s
        .querier
        .query(
            &tenant,
            query,
            QueryRange::Range {
                start_ms,
                end_ms,
                step_ms,
            },
            overrides,
        )
        .await?;
    query_answer(output, limit).await
}

/// `start` and `end` of the metadata endpoints, defaulting to all time.
fn time_range(s: &ApiState, tenant: &str, params: &Params) -> Result<(i64, i64), ApiError> {
    let start_ms = time_param(params, "start", MIN_TIME_MS)?;
    let end_ms = time_param(params, "end", MAX_TIME_MS)?;
    if !params.get("start").is_empty() && !params.get("end").is_empty() {
        s.querier.check_length(tenant, start_ms, end_ms)?;
    }
    Ok((start_ms, end_ms))
}

fn matcher_sets(params: &Params) -> Result<Vec<Vec<strata_model::Matcher>>, ApiError> {
    let selectors = params.get_all("match[]");
    if selectors.is_empty() {
        return Ok(Vec::new());
    }
    parse_matcher_sets(&selectors).map_err(|e| ApiError::invalid_param("match[]", e))
}

fn limited<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, Vec<String>) {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        return (items, vec![TRUNCATED_WARNING.to_string()]);
    }
    (items, Vec::new())
}

async fn handle_series(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Answer, ApiError> {
    let tenant = tenant(s, headers)?;
    if params.get_all("match[]").is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let limit = limit_param(params)?;
    let (start_ms, end_ms) = time_range(s, &tenant, params)?;
    let sets = matcher_sets(params)?;
    let series = s
        .querier
        .series(&tenant, start_ms, end_ms, &sets, limit)
        .await?;
    let (series, warnings) = limited(series, limit);
    let mut data = String::from("[");
    for (i, labels) in series.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        push_labels(&mut data, labels);
    }
    data.push(']');
    Ok(Answer::with_warnings(data, warnings))
}

async fn handle_labels(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Answer, ApiError> {
    let tenant = tenant(s, headers)?;
    let limit = limit_param(params)?;
    let (start_ms, end_ms) = time_range(s, &tenant, params)?;
    let sets = matcher_sets(params)?;
    let names = s
        .querier
        .label_names(&tenant, start_ms, end_ms, &sets, limit)
        .await?;
    let (names, warnings) = limited(names, limit);
    let mut data = String::new();
    push_str_array(&mut data, &names);
    Ok(Answer::with_warnings(data, warnings))
}

async fn handle_label_values(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
    name: &str,
) -> Result<Answer, ApiError> {
    let tenant = tenant(s, headers)?;
    if !is_valid_label_name(name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let limit = limit_param(params)?;
    let (start_ms, end_ms) = time_range(s, &tenant, params)?;
    let sets = matcher_sets(params)?;
    let values = s
        .querier
        .label_values(&tenant, name, start_ms, end_ms, &sets, limit)
        .await?;
    let (values, warnings) = limited(values, limit);
    let mut data = String::new();
    push_str_array(&mut data, &values);
    Ok(Answer::with_warnings(data, warnings))
}

/// Prometheus's optional integer parameters of `/metadata`: absent is -1.
fn metadata_int(params: &Params, name: &str) -> Result<i64, ApiError> {
    let text = params.get(name);
    if text.is_empty() {
        return Ok(-1);
    }
    text.parse()
        .map_err(|_| ApiError::bad_data(format!("{name} must be a number")))
}

async fn handle_metadata(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Answer, ApiError> {
    let tenant = tenant(s, headers)?;
    // As Prometheus: a negative limit is no limit, and 0 answers nothing.
    let limit = metadata_int(params, "limit")?;
    let per_metric = metadata_int(params, "limit_per_metric")?;
    if limit == 0 {
        return Ok(Answer::new("{}".to_string()));
    }
    let metric = params.get("metric");
    let metric = (!metric.is_empty()).then_some(metric);
    let families = s
        .querier
        .metadata(&tenant, metric, usize::try_from(limit).unwrap_or(0))
        .await?;
    let mut data = String::from("{");
    for (i, (name, entries)) in families.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        push_json_str(&mut data, name);
        data.push_str(":[");
        let keep = usize::try_from(per_metric)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(usize::MAX);
        for (j, e) in entries.iter().take(keep).enumerate() {
            if j > 0 {
                data.push(',');
            }
            data.push_str("{\"type\":");
            push_json_str(&mut data, &e.metric_type);
            data.push_str(",\"help\":");
            push_json_str(&mut data, &e.help);
            data.push_str(",\"unit\":");
            push_json_str(&mut data, &e.unit);
            data.push('}');
        }
        data.push(']');
    }
    data.push('}');
    Ok(Answer::new(data))
}

fn buildinfo_json() -> String {
    serde_json::json!({
        "version": PROMETHEUS_API_VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "application": "strata",
        "strataVersion": env!("CARGO_PKG_VERSION"),
    })
    .to_string()
}

async fn handle_query_exemplars(
    s: &ApiState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Answer, ApiError> {
    let tenant = tenant(s, headers)?;
    crate::exemplars::query_exemplars(&s.querier, &tenant, params)
        .await
        .map(Answer::new)
}

async fn handle_format_query(params: &Params) -> Result<Answer, ApiError> {
    let expr = check_query_async(params.get("query")).await?;
    let mut data = String::new();
    push_json_str(&mut data, &expr.prettify());
    Ok(Answer::new(data))
}

async fn handle_parse_query(params: &Params) -> Result<Answer, ApiError> {
    let expr = check_query_async(params.get("query")).await?;
    let data = serde_json::to_string(&expr).map_err(|e| {
        ApiError::new(
            ErrorType::Internal,
            format!("cannot encode the syntax tree: {e}"),
        )
    })?;
    Ok(Answer::new(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::Labels;
    use strata_promql::{Series, VectorSample};

    /// An instant vector of `n` samples labelled `i="0"`, `i="1"`, …
    fn vector(n: usize) -> Value {
        Value::Vector(
            (0..n)
                .map(|i| VectorSample::float(Labels::from_pairs([("i", i.to_string())]), 0, 0.0))
                .collect(),
        )
    }

    #[test]
    fn limits_truncate_with_a_warning() {
        let v = vector(3);
        let (out, warnings) = apply_limit(v.clone(), 2);
        assert!(matches!(out, Value::Vector(ref s) if s.len() == 2));
        assert_eq!(warnings, [TRUNCATED_WARNING]);
        let (out, warnings) = apply_limit(v.clone(), 3);
        assert_eq!(out, v);
        assert!(warnings.is_empty());
        let (_, warnings) = apply_limit(v, 0);
        assert!(warnings.is_empty());
        let m = Value::Matrix(vec![Series::default(); 2]);
        let (out, warnings) = apply_limit(m, 1);
        assert!(matches!(out, Value::Matrix(ref s) if s.len() == 1));
        assert_eq!(warnings.len(), 1);
        let (out, warnings) = apply_limit(Value::Scalar { t: 0, v: 1.0 }, 1);
        assert_eq!(out, Value::Scalar { t: 0, v: 1.0 });
        assert!(warnings.is_empty());
    }

    fn output(n: usize, warnings: &[&str], infos: &[&str]) -> QueryOutput {
        QueryOutput {
            value: vector(n),
            annotations: Annotations {
                warnings: warnings.iter().map(|w| w.to_string()).collect(),
                infos: infos.iter().map(|i| i.to_string()).collect(),
            },
        }
    }

    #[tokio::test]
    async fn query_answers_carry_the_engine_annotations() {
        let info = "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"g\"";
        let warning = "PromQL warning: quantile value should be between 0 and 1, got 2";
        let a = query_answer(output(2, &[warning], &[info]), 0)
            .await
            .unwrap();
        assert_eq!(a.warnings, [warning]);
        assert_eq!(a.infos, [info]);
        let body: serde_json::Value =
            serde_json::from_str(&success_body(&a.data, &a.warnings, &a.infos)).unwrap();
        assert_eq!(body["warnings"], serde_json::json!([warning]));
        assert_eq!(body["infos"], serde_json::json!([info]));
        // A limit adds its warning before the engine's.
        let a = query_answer(output(2, &[warning], &[]), 1).await.unwrap();
        assert_eq!(a.warnings, [TRUNCATED_WARNING, warning]);
        assert!(a.infos.is_empty());
        // Ten of each at most, and a word about the rest.
        let many: Vec<String> = (0..12).map(|i| format!("PromQL info: {i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let a = query_answer(output(0, &many, &many), 0).await.unwrap();
        assert_eq!(a.warnings.len(), 11);
        assert_eq!(a.warnings[10], "2 more warning annotations omitted");
        assert_eq!(a.infos[10], "2 more info annotations omitted");
    }

    #[test]
    fn query_syntax_errors_are_bad_data() {
        let e = check_query("").unwrap_err();
        assert_eq!(e.typ, ErrorType::BadData);
        assert!(
            e.message.starts_with("invalid parameter \"query\": "),
            "{}",
            e.message
        );
        let e = check_query("sum(").unwrap_err();
        assert!(
            e.message.starts_with("invalid parameter \"query\": "),
            "{}",
            e.message
        );
        assert!(check_query("sum by (job) (rate(up[5m]))").is_ok());
    }

    #[test]
    fn query_overrides() {
        let p = Params::from_pairs([("timeout", "5s"), ("lookback_delta", "1m")]);
        let o = overrides(&p).unwrap();
        assert_eq!(o.timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.lookback_delta, Some(Duration::from_secs(60)));
        let e = overrides(&Params::from_pairs([("timeout", "x")])).unwrap_err();
        assert_eq!(
            e.message,
            "invalid parameter \"timeout\": cannot parse \"x\" to a valid duration"
        );
        let e = overrides(&Params::from_pairs([("lookback_delta", "x")])).unwrap_err();
        assert_eq!(
            e.message,
            "error parsing lookback delta duration: cannot parse \"x\" to a valid duration"
        );
    }

    #[test]
    fn buildinfo_has_prometheus_fields() {
        let v: serde_json::Value = serde_json::from_str(&buildinfo_json()).unwrap();
        for key in [
            "version",
            "revision",
            "branch",
            "buildUser",
            "buildDate",
            "goVersion",
        ] {
            assert!(v[key].is_string(), "{key}");
        }
    }

    #[tokio::test]
    async fn format_and_parse_query() {
        let a = handle_format_query(&Params::from_pairs([("query", "sum(rate(x[5m]))by(job)")]))
            .await
            .unwrap();
        assert_eq!(a.data, "\"sum by (job) (rate(x[5m]))\"");
        let a = handle_parse_query(&Params::from_pairs([("query", "up{job=\"a\"}")]))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&a.data).unwrap();
        assert_eq!(v["type"], "vectorSelector");
        assert_eq!(v["name"], "up");
        let e = handle_parse_query(&Params::from_pairs([("query", "up{")]))
            .await
            .err()
            .unwrap();
        assert_eq!(e.typ, ErrorType::BadData);
    }
}
