//! The ruler's HTTP API: rule groups in and out as YAML on the paths
//! mimirtool, cortextool and Grafana use (`/prometheus/config/v1/rules`),
//! and Prometheus's JSON `/prometheus/api/v1/rules` and `/api/v1/alerts`,
//! gathered from every ruler replica. Every answer is the tenant's only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value as Json};
use strata_rulefmt::RuleGroup;

use crate::group::GroupView;
use crate::manager::RulerManager;
use crate::rules::{duration_ms, AlertState, RuleState};
use crate::store::GroupKey;

#[derive(Clone)]
struct ApiState {
    manager: Arc<RulerManager>,
    auth_enabled: bool,
    client: reqwest::Client,
}

pub fn ruler_routes(manager: Arc<RulerManager>, auth_enabled: bool) -> Router {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let state = ApiState {
        manager,
        auth_enabled,
        client,
    };
    Router::new()
        .route("/prometheus/config/v1/rules", get(list_all))
        .route(
            "/prometheus/config/v1/rules/{namespace}",
            get(list_namespace).post(set_group).delete(delete_namespace),
        )
        .route(
            "/prometheus/config/v1/rules/{namespace}/{group}",
            get(get_group).delete(delete_group),
        )
        .route(
            "/prometheus/api/v1/rules",
            get(prometheus_rules).post(prometheus_rules),
        )
        .route(
            "/prometheus/api/v1/alerts",
            get(prometheus_alerts).post(prometheus_alerts),
        )
        .route("/ruler/internal/rules", get(internal_rules))
        .with_state(state)
}

fn error(status: StatusCode, error_type: &str, message: impl Into<String>) -> Response {
    (
        status,
        [("content-type", "application/json")],
        json!({"status": "error", "errorType": error_type, "error": message.into()}).to_string(),
    )
        .into_response()
}

/// The request's tenant (`X-Scope-OrgID`), or the 400/401 answer.
struct Tenant(String);

impl axum::extract::FromRequestParts<ApiState> for Tenant {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        strata_server::tenant::tenant_from_headers(&parts.headers, state.auth_enabled)
            .map(Tenant)
            .map_err(|(status, msg)| {
                let kind = if status == StatusCode::UNAUTHORIZED {
                    "unauthorized"
                } else {
                    "bad_data"
                };
                error(status, kind, msg)
            })
    }
}

fn yaml(body: String) -> Response {
    (StatusCode::OK, [("content-type", "application/yaml")], body).into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        r#"{"status":"success","data":null,"errorType":"","error":""}"#,
    )
        .into_response()
}

fn store_failure(e: crate::RulerError) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

async fn list_all(State(s): State<ApiState>, Tenant(tenant): Tenant) -> Response {
    match s.manager.store().tenant_groups(&tenant).await {
        Ok(groups) if groups.is_empty() => {
            error(StatusCode::NOT_FOUND, "not_found", "no rule groups found")
        }
        Ok(groups) => yaml(strata_rulefmt::namespaces_to_yaml(&groups)),
        Err(e) => store_failure(e),
    }
}

async fn list_namespace(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    Path(namespace): Path<String>,
) -> Response {
    match s.manager.store().tenant_groups(&tenant).await {
        Ok(mut groups) => match groups.remove(&namespace) {
            Some(g) => yaml(strata_rulefmt::namespaces_to_yaml(&BTreeMap::from([(
                namespace, g,
            )]))),
            None => error(StatusCode::NOT_FOUND, "not_found", "no rule groups found"),
        },
        Err(e) => store_failure(e),
    }
}

async fn get_group(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    Path((namespace, group)): Path<(String, String)>,
) -> Response {
    match s
        .manager
        .store()
        .get(&GroupKey::new(&tenant, &namespace, &group))
        .await
    {
        Ok(Some(g)) => yaml(g.to_yaml()),
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", "group does not exist"),
        Err(e) => store_failure(e),
    }
}

/// Checks an uploaded group against the tenant's limits.
fn check_limits(
    manager: &RulerManager,
    tenant: &str,
    group: &RuleGroup,
    other_groups: usize,
) -> Result<(), String> {
    let config = &manager.deps().config;
    let limits = manager.limits_for(tenant);
    if limits.max_rules_per_group > 0 && group.rules.len() > limits.max_rules_per_group {
        return Err(format!(
            "group {:?} has {} rules, more than this tenant's limit of {} per group (ruler.limits.max_rules_per_group)",
            group.name,
            group.rules.len(),
            limits.max_rules_per_group
        ));
    }
    if limits.max_rule_groups > 0 && other_groups + 1 > limits.max_rule_groups {
        return Err(format!(
            "this tenant already has {other_groups} rule groups, its limit is {} (ruler.limits.max_rule_groups); delete one first",
            limits.max_rule_groups
        ));
    }
    let interval = crate::rules::group_interval(group, config.evaluation_interval);
    if interval < limits.min_evaluation_interval {
        return Err(format!(
            "group {:?} has interval {}, shorter than this tenant's minimum of {} (ruler.limits.min_evaluation_interval)",
            group.name,
            strata_model::duration::format_duration(interval),
            strata_model::duration::format_duration(limits.min_evaluation_interval)
        ));
    }
    Ok(())
}

async fn set_group(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    Path(namespace): Path<String>,
    body: Bytes,
) -> Response {
    let metrics = &s.manager.deps().metrics;
    if namespace.is_empty() {
        metrics.refused("invalid");
        return error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            "the namespace is empty",
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        metrics.refused("invalid");
        return error(
            StatusCode::BAD_REQUEST,
            "bad_data",
            "the rule group is not UTF-8 text; send one group as YAML",
        );
    };
    let group = match strata_rulefmt::parse_rule_group(text) {
        Ok(g) => g,
        Err(e) => {
            metrics.refused("invalid");
            return error(StatusCode::BAD_REQUEST, "bad_data", e.to_string());
        }
    };
    let key = GroupKey::new(&tenant, &namespace, &group.name);
    let existing = match s.manager.store().list(Some(&tenant)).await {
        Ok(k) => k,
        Err(e) => return store_failure(e),
    };
    let others = existing.iter().filter(|k| **k != key).count();
    if let Err(msg) = check_limits(&s.manager, &tenant, &group, others) {
        metrics.refused("limit");
        return error(StatusCode::BAD_REQUEST, "bad_data", msg);
    }
    if let Err(e) = s.manager.store().put(&key, &group).await {
        return store_failure(e);
    }
    tracing::info!(group = %key, rules = group.rules.len(), "rule group stored");
    s.manager.wake();
    accepted()
}

async fn delete_namespace(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    Path(namespace): Path<String>,
) -> Response {
    match s
        .manager
        .store()
        .delete_namespace(&tenant, &namespace)
        .await
    {
        Ok(0) => error(StatusCode::NOT_FOUND, "not_found", "no rule groups found"),
        Ok(_) => {
            s.manager.wake();
            accepted()
        }
        Err(e) => store_failure(e),
    }
}

async fn delete_group(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    Path((namespace, group)): Path<(String, String)>,
) -> Response {
    match s
        .manager
        .store()
        .delete(&GroupKey::new(&tenant, &namespace, &group))
        .await
    {
        Ok(false) => error(StatusCode::NOT_FOUND, "not_found", "group does not exist"),
        Ok(true) => {
            s.manager.wake();
            accepted()
        }
        Err(e) => store_failure(e),
    }
}

/// The `GET /api/v1/rules` filters.
#[derive(Default)]
struct Filters {
    kind: Option<&'static str>,
    rule_names: Vec<String>,
    groups: Vec<String>,
    files: Vec<String>,
    exclude_alerts: bool,
}

fn parse_filters(query: Option<&str>) -> Result<Filters, String> {
    let mut f = Filters::default();
    for (k, v) in form_pairs(query.unwrap_or("")) {
        match k.as_str() {
            "type" => {
                f.kind = match v.to_ascii_lowercase().as_str() {
                    "" => None,
                    "alert" => Some("alerting"),
                    "record" => Some("recording"),
                    other => {
                        return Err(format!(
                            "invalid parameter \"type\": {other:?}; use alert or record"
                        ))
                    }
                }
            }
            "rule_name[]" => f.rule_names.push(v),
            "rule_group[]" => f.groups.push(v),
            "file[]" => f.files.push(v),
            "exclude_alerts" => {
                f.exclude_alerts = match v.as_str() {
                    "" | "false" | "0" => false,
                    "true" | "1" => true,
                    other => {
                        return Err(format!(
                            "invalid parameter \"exclude_alerts\": {other:?}; use true or false"
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(f)
}

/// `application/x-www-form-urlencoded` pairs.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3339 with the precision Go's JSON gives `time.Time`.
fn rfc3339(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// A float as Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn labels_json<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Json {
    Json::Object(
        labels
            .into_iter()
            .map(|(k, v)| (k.to_string(), Json::String(v.to_string())))
            .collect(),
    )
}

fn alerts_json(rule: &RuleState) -> Vec<Json> {
    let mut alerts: Vec<&crate::rules::Alert> = rule
        .active
        .values()
        .filter(|a| a.state != AlertState::Inactive)
        .collect();
    alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
    alerts
        .into_iter()
        .map(|a| {
            let mut j = json!({
                "labels": labels_json(a.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))),
                "annotations": labels_json(a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                "state": a.state.as_str(),
                "activeAt": rfc3339(Some(a.active_at_ms)),
                "value": go_float_e(a.value),
            });
            if let Some(since) = a.keep_firing_since_ms {
                j["keepFiringSince"] = Json::String(rfc3339(Some(since)));
            }
            j
        })
        .collect()
}

fn rule_json(rule: &RuleState, exclude_alerts: bool) -> Json {
    let spec = &rule.spec;
    let mut j = if rule.is_alerting() {
        let mut j = json!({
            "state": rule.state().as_str(),
            "name": rule.name(),
            "query": spec.expr,
            "duration": spec.for_.as_secs_f64(),
            "keepFiringFor": spec.keep_firing_for.as_secs_f64(),
            "labels": labels_json(spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            "annotations": labels_json(spec.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            "health": rule.health.as_str(),
            "evaluationTime": rule.evaluation_seconds,
            "lastEvaluation": rfc3339(rule.last_evaluation_ms),
            "type": "alerting",
        });
        if !exclude_alerts {
            j["alerts"] = Json::Array(alerts_json(rule));
        }
        j
    } else {
        json!({
            "name": rule.name(),
            "query": spec.expr,
            "labels": labels_json(spec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            "health": rule.health.as_str(),
            "evaluationTime": rule.evaluation_seconds,
            "lastEvaluation": rfc3339(rule.last_evaluation_ms),
            "type": "recording",
        })
    };
    if let Some(e) = &rule.last_error {
        j["lastError"] = Json::String(e.clone());
    }
    j
}

fn groups_json(views: &[Arc<GroupView>], f: &Filters) -> Vec<Json> {
    let filtered =
        f.kind.is_some() || !f.rule_names.is_empty() || !f.groups.is_empty() || !f.files.is_empty();
    let mut out = Vec::new();
    for v in views {
        if !f.groups.is_empty() && !f.groups.contains(&v.key.group) {
            continue;
        }
        if !f.files.is_empty() && !f.files.contains(&v.key.namespace) {
            continue;
        }
        let rules: Vec<Json> = v
            .rules
            .iter()
            .filter(|r| {
                f.kind.is_none_or(|k| (k == "alerting") == r.is_alerting())
                    && (f.rule_names.is_empty() || f.rule_names.iter().any(|n| n == r.name()))
            })
            .map(|r| rule_json(r, f.exclude_alerts))
            .collect();
        if filtered && rules.is_empty() {
            continue;
        }
        let mut g = json!({
            "name": v.key.group,
            "file": v.key.namespace,
            "rules": rules,
            "interval": v.interval.as_secs_f64(),
            "limit": v.spec.limit,
            "evaluationTime": v.evaluation_seconds,
            "lastEvaluation": rfc3339(v.last_evaluation_ms),
        });
        if let Some(o) = v.spec.query_offset {
            g["queryOffset"] = json!(duration_ms(o) as f64 / 1000.0);
        }
        out.push(g);
    }
    out
}

/// The tenant's groups as every ruler replica runs them. The request's
/// `Authorization` goes along to the other replicas, so that in `auth.mode:
/// tokens` their edge authenticates the same tenant.
async fn gather(
    s: &ApiState,
    tenant: &str,
    authorization: Option<&http::HeaderValue>,
    query: Option<&str>,
) -> Result<Vec<Json>, Response> {
    let filters =
        parse_filters(query).map_err(|e| error(StatusCode::BAD_REQUEST, "bad_data", e))?;
    let mut groups = groups_json(&s.manager.local_groups(tenant), &filters);
    if let Some(ring) = s.manager.ring() {
        let snapshot = ring.ring.snapshot();
        let now = snapshot.judged_at(strata_model::duration::now_ms());
        let others: Vec<String> = snapshot
            .members()
            .iter()
            .filter(|m| m.desc.id != ring.instance_id)
            .filter(|m| snapshot.is_healthy(&m.desc, strata_ring::Operation::Read, now))
            .map(|m| m.desc.http_addr.clone())
            .collect();
        let asks = others.iter().map(|addr| {
            let url = format!(
                "http://{addr}/ruler/internal/rules{}",
                query.map(|q| format!("?{q}")).unwrap_or_default()
            );
            let mut request = s
                .client
                .get(url)
                .header(strata_server::tenant::TENANT_HEADER, tenant);
            if let Some(credentials) = authorization {
                request = request.header(http::header::AUTHORIZATION, credentials.clone());
            }
            async move {
                let answer = request.send().await.map_err(|e| format!("{addr}: {e}"))?;
                if !answer.status().is_success() {
                    return Err(format!("{addr}: HTTP {}", answer.status()));
                }
                let body: Json = answer.json().await.map_err(|e| format!("{addr}: {e}"))?;
                Ok::<Vec<Json>, String>(
                    body.get("groups")
                        .and_then(|g| g.as_array())
                        .cloned()
                        .unwrap_or_default(),
                )
            }
        });
        for answer in futures::future::join_all(asks).await {
            match answer {
                Ok(g) => groups.extend(g),
                Err(e) => {
                    return Err(error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        format!("cannot read the rules of another ruler replica: {e}"),
                    ))
                }
            }
        }
    }
    groups.sort_by(|a, b| {
        (a["file"].as_str(), a["name"].as_str()).cmp(&(b["file"].as_str(), b["name"].as_str()))
    });
    Ok(groups)
}

fn success(data: Json) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"status": "success", "data": data}).to_string(),
    )
        .into_response()
}

async fn prometheus_rules(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    headers: http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let authorization = headers.get(http::header::AUTHORIZATION);
    match gather(&s, &tenant, authorization, query.as_deref()).await {
        Ok(groups) => success(json!({ "groups": groups })),
        Err(r) => r,
    }
}

async fn prometheus_alerts(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    headers: http::HeaderMap,
) -> Response {
    let authorization = headers.get(http::header::AUTHORIZATION);
    match gather(&s, &tenant, authorization, Some("type=alert")).await {
        Ok(groups) => {
            let alerts: Vec<Json> = groups
                .iter()
                .filter_map(|g| g["rules"].as_array())
                .flatten()
                .filter_map(|r| r["alerts"].as_array())
                .flatten()
                .cloned()
                .collect();
            success(json!({ "alerts": alerts }))
        }
        Err(r) => r,
    }
}

/// This replica's groups of the tenant (what `gather` asks the others).
async fn internal_rules(
    State(s): State<ApiState>,
    Tenant(tenant): Tenant,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_filters(query.as_deref()) {
        Ok(f) => {
            let groups = groups_json(&s.manager.local_groups(&tenant), &f);
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                json!({ "groups": groups }).to_string(),
            )
                .into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "bad_data", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_go_does() {
        assert_eq!(go_float_e(1.0), "1e+00");
        assert_eq!(go_float_e(0.5), "5e-01");
        assert_eq!(go_float_e(1234.5), "1.2345e+03");
        assert_eq!(go_float_e(1e100), "1e+100");
        assert_eq!(go_float_e(f64::NAN), "NaN");
    }

    #[test]
    fn query_strings_decode() {
        let p = form_pairs("rule_name%5B%5D=a+b&type=alert&x=%zz");
        assert_eq!(p[0], ("rule_name[]".to_string(), "a b".to_string()));
        assert_eq!(p[1], ("type".to_string(), "alert".to_string()));
        assert_eq!(p[2].1, "%zz");
        assert!(parse_filters(Some("type=bogus")).is_err());
    }
}
