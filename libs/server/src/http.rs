//! Routes every service serves: `/metrics`, `/ready` and a landing page.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::MetricsRegistry;

/// Decides whether the service is ready, with a reason when it is not.
pub type ReadyCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct CommonState {
    metrics: MetricsRegistry,
    ready: ReadyCheck,
    service: String,
    links: Vec<(String, String)>,
}

/// `/metrics`, `/ready` and `/` for one service; `links` are listed on `/`.
pub fn common_routes(
    service: &str,
    metrics: MetricsRegistry,
    ready: ReadyCheck,
    links: Vec<(String, String)>,
) -> Router {
    let state = CommonState {
        metrics,
        ready,
        service: service.to_string(),
        links,
    };
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/ready", get(ready_handler))
        .route("/", get(index_handler))
        .with_state(state)
}

async fn metrics_handler(State(s): State<CommonState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn ready_handler(State(s): State<CommonState>) -> Response {
    match (s.ready)() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn index_handler(State(s): State<CommonState>) -> Html<String> {
    let mut links = String::new();
    for (href, text) in &s.links {
        links.push_str(&format!("<li><a href=\"{href}\">{text}</a></li>\n"));
    }
    Html(format!(
        "<!DOCTYPE html><html><head><title>Strata {svc}</title></head><body>\
         <h1>Strata {svc}</h1><ul>{links}<li><a href=\"/metrics\">/metrics</a></li>\
         <li><a href=\"/ready\">/ready</a></li></ul></body></html>",
        svc = s.service
    ))
}
