use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use strata_server::tenant::tenant_from_headers;

use crate::{Distributor, PushError};

#[derive(Clone)]
struct PushState {
    distributor: Arc<Distributor>,
    auth_enabled: bool,
}

/// `POST /api/v1/push` (and `/api/v1/write`, Prometheus's own receiver path).
pub fn push_routes(distributor: Arc<Distributor>, auth_enabled: bool) -> Router {
    let limit = distributor.config().max_request_size;
    Router::new()
        .route("/api/v1/push", post(push_handler))
        .route("/api/v1/write", post(push_handler))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(PushState {
            distributor,
            auth_enabled,
        })
}

fn error_response(err: PushError) -> Response {
    let status = err.status();
    if status.is_server_error() {
        tracing::warn!(%status, error = %err, "push failed");
    } else {
        tracing::debug!(%status, error = %err, "push refused");
    }
    (status, format!("{err}\n")).into_response()
}

/// Checks the headers the remote write 1.0 spec requires.
fn check_encoding(headers: &HeaderMap) -> Result<(), PushError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        if media != "application/x-protobuf" {
            return Err(PushError::UnsupportedMediaType(format!(
                "unsupported content type {ct:?}: remote write bodies are application/x-protobuf"
            )));
        }
        for p in parts {
            if let Some(proto) = p.strip_prefix("proto=") {
                if proto != "prometheus.WriteRequest" {
                    return Err(PushError::UnsupportedMediaType(format!(
                        "unsupported protobuf message {proto:?}: only remote write 1.0 (prometheus.WriteRequest) is accepted"
                    )));
                }
            }
        }
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("");
        if !enc.eq_ignore_ascii_case("snappy") {
            return Err(PushError::UnsupportedMediaType(format!(
                "unsupported content encoding {enc:?}: remote write bodies are snappy-compressed"
            )));
        }
    }
    Ok(())
}

async fn push_handler(
    State(s): State<PushState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let tenant = match tenant_from_headers(&headers, s.auth_enabled) {
        Ok(t) => t,
        Err((StatusCode::UNAUTHORIZED, msg)) => {
            return error_response(PushError::Unauthorized(msg))
        }
        Err((_, msg)) => return error_response(PushError::BadRequest(msg)),
    };
    if let Err(e) = check_encoding(&headers) {
        return error_response(e);
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(PushError::TooLarge(format!(
                "request body is larger than the limit of {} bytes; send smaller batches",
                s.distributor.config().max_request_size
            )))
        }
        Err(rejection) => {
            return error_response(PushError::BadRequest(format!(
                "cannot read request body: {rejection}"
            )))
        }
    };
    match s.distributor.push(&tenant, body).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => error_response(e),
    }
}
