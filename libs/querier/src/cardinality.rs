//! Mimir's cardinality API: which label names and values of a tenant hold
//! how many series, to find what makes a tenant's series count grow.
//!
//! - `GET|POST /prometheus/api/v1/cardinality/label_names?selector=&limit=`
//! - `GET|POST /prometheus/api/v1/cardinality/label_values?label_names[]=&selector=&limit=`
//!
//! Counted over the series with samples in the last [`WINDOW_MS`] (what the
//! ingesters hold in memory), optionally narrowed by one `selector`. Answers
//! have Mimir's shapes (a bare JSON object, not Prometheus's envelope).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use strata_model::{Labels, MatchOp, Matcher};
use strata_server::tenant::tenant_from_headers;

use crate::error::ApiError;
use crate::params::{parse_matcher_sets, Params};
use crate::querier::Querier;

/// The series counted: those with samples in the last hour.
pub const WINDOW_MS: i64 = 60 * 60 * 1000;
/// Entries per answer (per label for `label_values`) without `limit`.
pub const DEFAULT_LIMIT: usize = 20;
/// Largest `limit` accepted, as Mimir's.
pub const MAX_LIMIT: usize = 500;

#[derive(Clone)]
struct CardinalityState {
    querier: Arc<Querier>,
    auth_enabled: bool,
}

pub fn cardinality_routes(querier: Arc<Querier>, auth_enabled: bool) -> Router {
    let mut router = Router::new();
    for prefix in ["/prometheus/api/v1/cardinality", "/api/v1/cardinality"] {
        router = router
            .route(
                &format!("{prefix}/label_names"),
                get(label_names).post(label_names),
            )
            .route(
                &format!("{prefix}/label_values"),
                get(label_values).post(label_values),
            );
    }
    router.with_state(CardinalityState {
        querier,
        auth_enabled,
    })
}

fn answer(result: Result<serde_json::Value, ApiError>) -> Response {
    match result {
        Ok(v) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => (
            e.status(),
            [(header::CONTENT_TYPE, "application/json")],
            json!({"status": "error", "errorType": e.typ.as_str(), "error": e.message}).to_string(),
        )
            .into_response(),
    }
}

/// The request's tenant, parameters and the series they select.
async fn selected(
    s: &CardinalityState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<(Params, Vec<Labels>), ApiError> {
    let tenant = tenant_from_headers(headers, s.auth_enabled).map_err(|(status, message)| {
        let mut e = ApiError::bad_data(message);
        e.status = Some(status);
        e
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let params = Params::parse(query, content_type, body);
    let selector = params.get("selector");
    let sets = if selector.is_empty() {
        vec![vec![Matcher::new(MatchOp::NotEqual, "__name__", "")
            .map_err(|e| {
                ApiError::bad_data(format!("internal matcher: {e}"))
            })?]]
    } else {
        parse_matcher_sets(&[selector]).map_err(|e| ApiError::invalid_param("selector", e))?
    };
    let now = strata_model::duration::now_ms();
    let series = s
        .querier
        .series(&tenant, now - WINDOW_MS, now, &sets, 0)
        .await?;
    Ok((params, series))
}

fn limit(params: &Params) -> Result<usize, ApiError> {
    match params.get("limit") {
        "" => Ok(DEFAULT_LIMIT),
        text => match text.parse::<usize>() {
            Ok(n) if n <= MAX_LIMIT => Ok(n),
            _ => Err(ApiError::invalid_param(
                "limit",
                format!("must be an integer from 0 to {MAX_LIMIT}"),
            )),
        },
    }
}

async fn label_names(
    State(s): State<CardinalityState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(
        async {
            let (params, series) = selected(&s, &headers, query.as_deref(), &body).await?;
            let limit = limit(&params)?;
            Ok(label_names_json(&series, limit))
        }
        .await,
    )
}

async fn label_values(
    State(s): State<CardinalityState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    answer(
        async {
            let (params, series) = selected(&s, &headers, query.as_deref(), &body).await?;
            let limit = limit(&params)?;
            let names: Vec<String> = params
                .get_all("label_names[]")
                .into_iter()
                .map(str::to_string)
                .collect();
            if names.is_empty() {
                return Err(ApiError::bad_data(
                    "'label_names[]' param is required: name the labels to count the values of",
                ));
            }
            if let Some(bad) = names.iter().find(|n| !strata_model::is_valid_label_name(n)) {
                return Err(ApiError::invalid_param(
                    "label_names[]",
                    format!("{bad:?} is not a valid label name"),
                ));
            }
            Ok(label_values_json(&series, &names, limit))
        }
        .await,
    )
}

/// `{label_values_count_total, label_names_count, cardinality: [{label_name,
/// label_values_count}]}`, the names with most values first.
pub fn label_names_json(series: &[Labels], limit: usize) -> serde_json::Value {
    let mut values: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for labels in series {
        for l in labels.iter() {
            values.entry(&l.name).or_default().insert(&l.value);
        }
    }
    let total: usize = values.values().map(|v| v.len()).sum();
    let mut names: Vec<(&str, usize)> = values.iter().map(|(k, v)| (*k, v.len())).collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let names_count = names.len();
    names.truncate(limit);
    json!({
        "label_values_count_total": total,
        "label_names_count": names_count,
        "cardinality": names
            .into_iter()
            .map(|(n, c)| json!({"label_name": n, "label_values_count": c}))
            .collect::<Vec<_>>(),
    })
}

/// `{series_count_total, labels: [{label_name, label_values_count,
/// series_count, cardinality: [{label_value, series_count}]}]}`.
pub fn label_values_json(series: &[Labels], names: &[String], limit: usize) -> serde_json::Value {
    let mut labels = Vec::with_capacity(names.len());
    for name in names {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for s in series {
            if let Some(v) = s.get(name) {
                *counts.entry(v).or_insert(0) += 1;
            }
        }
        let series_count: usize = counts.values().sum();
        let mut values: Vec<(&str, usize)> = counts.into_iter().collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let values_count = values.len();
        values.truncate(limit);
        labels.push((
            series_count,
            json!({
                "label_name": name,
                "label_values_count": values_count,
                "series_count": series_count,
                "cardinality": values
                    .into_iter()
                    .map(|(v, c)| json!({"label_value": v, "series_count": c}))
                    .collect::<Vec<_>>(),
            }),
        ));
    }
    labels.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1["label_name"].as_str().cmp(&b.1["label_name"].as_str()))
    });
    json!({
        "series_count_total": series.len(),
        "labels": labels.into_iter().map(|(_, j)| j).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<Labels> {
        vec![
            Labels::from_pairs([("__name__", "up"), ("job", "a"), ("pod", "1")]),
            Labels::from_pairs([("__name__", "up"), ("job", "a"), ("pod", "2")]),
            Labels::from_pairs([("__name__", "up"), ("job", "b"), ("pod", "3")]),
            Labels::from_pairs([("__name__", "http_requests_total"), ("job", "a")]),
        ]
    }

    #[test]
    fn label_names_count_values_most_first() {
        let j = label_names_json(&series(), 20);
        assert_eq!(j["label_names_count"], 3);
        assert_eq!(j["label_values_count_total"], 2 + 2 + 3);
        assert_eq!(
            j["cardinality"][0],
            json!({"label_name": "pod", "label_values_count": 3})
        );
        assert_eq!(j["cardinality"][1]["label_name"], "__name__");
        assert_eq!(j["cardinality"][2]["label_name"], "job");
        let j = label_names_json(&series(), 1);
        assert_eq!(j["cardinality"].as_array().map(Vec::len), Some(1));
        assert_eq!(j["label_names_count"], 3);
    }

    #[test]
    fn label_values_count_series_per_value() {
        let j = label_values_json(
            &series(),
            &["job".into(), "__name__".into(), "nope".into()],
            20,
        );
        assert_eq!(j["series_count_total"], 4);
        assert_eq!(j["labels"][0]["label_name"], "__name__");
        assert_eq!(j["labels"][1]["label_name"], "job");
        let job = &j["labels"][1];
        assert_eq!(job["label_values_count"], 2);
        assert_eq!(job["series_count"], 4);
        assert_eq!(
            job["cardinality"][0],
            json!({"label_value": "a", "series_count": 3})
        );
        assert_eq!(j["labels"][2]["series_count"], 0);
        let j = label_values_json(&series(), &["pod".into()], 2);
        assert_eq!(
            j["labels"][0]["cardinality"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(j["labels"][0]["label_values_count"], 3);
    }
}
