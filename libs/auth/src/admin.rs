//! The admin API: creates, lists and revokes tenants' API tokens in the
//! tenants file, guarded by the admin token (`auth.admin_token_hash`).
//!
//! - `POST /admin/tenants/{tenant}/tokens` → 201 `{tenant, id, token,
//!   created}`: the plaintext token, this once.
//! - `GET /admin/tenants` → `{tenants: [{tenant, tokens: [{id, created}]}]}`,
//!   never hashes nor salts.
//! - `DELETE /admin/tenants/{tenant}/tokens/{id}` → 204.
//!
//! Changes go to the file under its lock and replace it atomically; this
//! process uses the new version at once, the others at their next reload.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde_json::json;

use crate::authenticator::Authenticator;
use crate::middleware::refusal;
use crate::tenants::{self, TenantsFile, UpdateError};

#[derive(Clone)]
struct AdminState {
    auth: Arc<Authenticator>,
    path: PathBuf,
}

/// The admin API's routes, when the admin token and the tenants file are
/// configured.
pub fn admin_routes(auth: Arc<Authenticator>) -> Option<Router> {
    if !auth.admin_enabled() {
        return None;
    }
    let path = auth.tenants_file()?.clone();
    let state = AdminState {
        auth: auth.clone(),
        path,
    };
    Some(
        Router::new()
            .route("/admin/tenants", get(list))
            .route("/admin/tenants/{tenant}/tokens", post(create))
            .route("/admin/tenants/{tenant}/tokens/{id}", delete(revoke))
            .route_layer(axum::middleware::from_fn_with_state(auth, require_admin))
            .with_state(state),
    )
}

async fn require_admin(
    State(auth): State<Arc<Authenticator>>,
    req: Request,
    next: Next,
) -> Response {
    match auth.authenticate_admin(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(f) => refusal(f, req.uri().path()),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn update_error(e: UpdateError) -> Response {
    match e {
        UpdateError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        UpdateError::BadRequest(m) => error(StatusCode::BAD_REQUEST, m),
        UpdateError::File(e) => {
            tracing::error!(error = %e, "admin API cannot change the tenants file");
            error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// Runs a change of the file on the blocking pool, then puts the result in
/// force in this process.
async fn change<T: Send + 'static>(
    s: &AdminState,
    f: impl FnOnce(&mut TenantsFile) -> Result<T, UpdateError> + Send + 'static,
) -> Result<T, Response> {
    let path = s.path.clone();
    let result = tokio::task::spawn_blocking(move || tenants::update(&path, f))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (out, file) = result.map_err(update_error)?;
    s.auth.install_written(&file);
    Ok(out)
}

async fn create(State(s): State<AdminState>, Path(tenant): Path<String>) -> Response {
    match change(&s, move |f| f.create_token(&tenant)).await {
        Ok(new) => {
            tracing::info!(tenant = %new.tenant, id = %new.id, "admin API created a token");
            (
                StatusCode::CREATED,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(new),
            )
                .into_response()
        }
        Err(r) => r,
    }
}

async fn revoke(
    State(s): State<AdminState>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    let (t, i) = (tenant.clone(), id.clone());
    match change(&s, move |f| f.revoke_token(&t, &i)).await {
        Ok(()) => {
            tracing::info!(tenant = %tenant, id = %id, "admin API revoked a token");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

async fn list(State(s): State<AdminState>) -> Response {
    let path = s.path.clone();
    let loaded = tokio::task::spawn_blocking(move || tenants::load(&path)).await;
    let file = match loaded {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    axum::Json(listing(&file)).into_response()
}

/// Tenants with their tokens' ids and creation times; no hash, no salt.
pub fn listing(file: &TenantsFile) -> serde_json::Value {
    let tenants: Vec<_> = file
        .tenants
        .iter()
        .map(|(tenant, tokens)| {
            let tokens: Vec<_> = tokens
                .iter()
                .map(|t| json!({"id": t.id, "created": t.created}))
                .collect();
            json!({"tenant": tenant, "tokens": tokens})
        })
        .collect();
    json!({ "tenants": tenants })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authenticator::tests::{auth_headers, basic, bearer, fixture};
    use axum::body::Body;
    use axum::http::HeaderValue;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    async fn call(
        router: &Router,
        method: &str,
        path: &str,
        auth: Option<HeaderValue>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    #[tokio::test]
    async fn tokens_are_created_listed_and_revoked() {
        let f = fixture();
        let r = admin_routes(f.auth.clone()).expect("admin API configured");
        let admin = || Some(bearer(&f.admin_token));

        let (status, created) = call(&r, "POST", "/admin/tenants/gamma/tokens", admin()).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let token = created["token"].as_str().unwrap().to_string();
        let id = created["id"].as_str().unwrap().to_string();
        assert!(token.starts_with("strata_"));
        assert_eq!(created["tenant"], "gamma");
        // In force at once in this process.
        assert_eq!(
            f.auth
                .authenticate(&auth_headers(basic("gamma", &token)))
                .unwrap(),
            "gamma"
        );
        let on_disk = std::fs::read_to_string(&f.path).unwrap();
        assert!(!on_disk.contains(&token));

        let (status, listed) = call(&r, "GET", "/admin/tenants", admin()).await;
        assert_eq!(status, StatusCode::OK);
        let text = listed.to_string();
        assert!(text.contains(&id) && text.contains(&f.alpha.id), "{text}");
        assert!(!text.contains("hash") && !text.contains("salt"), "{text}");
        let names: Vec<&str> = listed["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenant"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["alpha", "beta", "gamma"]);

        let path = format!("/admin/tenants/gamma/tokens/{id}");
        let (status, _) = call(&r, "DELETE", &path, admin()).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(f.auth.authenticate(&auth_headers(bearer(&token))).is_err());
        let (status, body) = call(&r, "DELETE", &path, admin()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = call(&r, "POST", "/admin/tenants/a%7Cb/tokens", admin()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    #[tokio::test]
    async fn only_the_admin_token_opens_it() {
        let f = fixture();
        let r = admin_routes(f.auth.clone()).unwrap();
        for (creds, want) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some(bearer("strata-admin-guess")), StatusCode::UNAUTHORIZED),
            (Some(basic("alpha", &f.alpha.token)), StatusCode::FORBIDDEN),
            (Some(bearer(&f.beta.token)), StatusCode::FORBIDDEN),
        ] {
            for (method, path) in [
                ("GET", "/admin/tenants"),
                ("POST", "/admin/tenants/alpha/tokens"),
                (
                    "DELETE",
                    &format!("/admin/tenants/beta/tokens/{}", f.beta.id) as &str,
                ),
            ] {
                let (status, _) = call(&r, method, path, creds.clone()).await;
                assert_eq!(status, want, "{method} {path} with {creds:?}");
            }
        }
        let file = tenants::load(&f.path).unwrap();
        assert_eq!(file.tenants["alpha"].len(), 1, "nothing created");
        assert_eq!(file.tenants["beta"].len(), 1, "nothing revoked");
    }

    #[test]
    fn no_admin_api_without_an_admin_token() {
        let f = fixture();
        let config = crate::AuthConfig {
            mode: crate::AuthMode::Tokens,
            tenants_file: f.path.display().to_string(),
            ..Default::default()
        };
        let auth =
            Authenticator::new(&config, false, crate::metrics::AuthMetrics::default()).unwrap();
        assert!(admin_routes(auth).is_none());
    }
}
