use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use strata_server::admission::RETRY_AFTER_SECONDS;
use strata_server::tenant::tenant_from_headers;

use crate::{Distributor, PushError};

#[derive(Clone)]
struct PushState {
    distributor: Arc<Distributor>,
    auth_enabled: bool,
}

/// `POST /api/v1/push` (and `/api/v1/write`, Prometheus's own receiver path).
pub fn push_routes(distributor: Arc<Distributor>, auth_enabled: bool) -> Router {
    Router::new()
        .route("/api/v1/push", post(push_handler))
        .route("/api/v1/write", post(push_handler))
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
    let mut response = (status, format!("{err}\n")).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
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

async fn push_handler(State(s): State<PushState>, headers: HeaderMap, body: Body) -> Response {
    match push(&s, &headers, body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error_response(e),
    }
}

async fn push(s: &PushState, headers: &HeaderMap, body: Body) -> Result<(), PushError> {
    let tenant = tenant_from_headers(headers, s.auth_enabled).map_err(|(status, msg)| {
        if status == StatusCode::UNAUTHORIZED {
            PushError::Unauthorized(msg)
        } else {
            PushError::BadRequest(msg)
        }
    })?;
    check_encoding(headers)?;
    // Admitted before the body is read, so refusing costs nothing. The
    // ticket is held until the push is answered.
    let mut ticket = s.distributor.admission().enter()?;
    let config = s.distributor.config();
    let limit = config.max_request_size;
    let too_large = || {
        PushError::TooLarge(format!(
            "request body is larger than the limit of {limit} bytes; send smaller batches"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared {
        if len > limit {
            return Err(too_large());
        }
        ticket.add_bytes(len)?;
    }
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(PushError::BadRequest(format!(
                "cannot read request body: {e}"
            )))
        }
    };
    let mut more = if declared.is_some() { 0 } else { body.len() };
    // What decoding will allocate: the block, and about as much again for
    // the batches re-encoded for the ingesters. A header that lies is
    // refused by the decoder before anything is allocated.
    if let Some(decoded) = strata_remote_write::declared_len(&body) {
        more = more.saturating_add(decoded.min(config.max_decompressed_size).saturating_mul(2));
    }
    ticket.add_bytes(more)?;
    s.distributor.push(&tenant, body).await.map(drop)
}
