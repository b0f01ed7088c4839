//! The ring status page: members, their state, heartbeat and token
//! ownership, with a button to forget a dead member.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use strata_ring::{escape_html, now_ms, render_status_html, Ring};

#[derive(Deserialize)]
struct ForgetForm {
    forget: String,
}

pub fn ring_routes(ring: Arc<Ring>) -> Router {
    Router::new()
        .route("/ring", get(status).post(forget))
        .route("/ingester/ring", get(status).post(forget))
        .with_state(ring)
}

async fn status(State(ring): State<Arc<Ring>>) -> Html<String> {
    Html(render_status_html(
        "Ingester ring",
        &ring.snapshot(),
        now_ms(),
    ))
}

async fn forget(State(ring): State<Arc<Ring>>, Form(form): Form<ForgetForm>) -> Response {
    match ring.forget(&form.forget).await {
        Ok(()) => {
            tracing::info!(instance = %form.forget, "instance forgotten from the status page");
            if let Err(e) = ring.refresh().await {
                tracing::warn!(error = %e, "ring refresh after forget failed");
            }
            Redirect::to("/ring").into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(format!(
                "<p>cannot forget {}: {}</p>",
                escape_html(&form.forget),
                escape_html(&e.to_string())
            )),
        )
            .into_response(),
    }
}
