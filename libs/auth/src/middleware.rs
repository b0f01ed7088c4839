//! The HTTP edge in `tokens` mode: one middleware around a service's whole
//! router. It authenticates the request, removes every `X-Scope-OrgID` the
//! client sent and sets the authenticated tenant as the only one, so every
//! handler behind it reads the tenant as before and can trust it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use strata_server::tenant::TENANT_HEADER;

use crate::authenticator::{Authenticator, Failure};
use crate::config::AuthMode;

/// Paths served without credentials: operational pages that hold no
/// tenant's data. They are meant for the cluster's network, not the
/// internet (`docs/auth.md`).
pub const OPEN_PATHS: [&str; 5] = ["/", "/metrics", "/ready", "/ring", "/ingester/ring"];

/// Where a tenant's credentials lead: the push, query and rules APIs, and
/// the ruler replicas' internal gathering. Any other path is an operator's
/// (flush, shutdown, every tenant's limits, the HA tracker's state, pages
/// added later) and takes the admin token: secure by default, since such
/// pages show or change more than one tenant.
pub const TENANT_PREFIXES: [&str; 2] = ["/api/v1/", "/prometheus/"];
pub const TENANT_PATHS: [&str; 1] = ["/ruler/internal/rules"];

/// The admin API's prefix; its routes check the admin token themselves.
pub const ADMIN_PREFIX: &str = "/admin/";

/// What a path needs.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum PathClass {
    /// Nothing.
    Open,
    /// The admin token, checked by the admin API's routes.
    Admin,
    /// The admin token, checked here.
    Operator,
    /// A tenant's credentials.
    Tenant,
}

/// Exact matches for the open paths: any other spelling of them (a
/// trailing slash, a doubled one) is an operator's path, and then finds no
/// route.
pub fn classify(path: &str) -> PathClass {
    if OPEN_PATHS.contains(&path) {
        PathClass::Open
    } else if path.starts_with(ADMIN_PREFIX) || path == "/admin" {
        PathClass::Admin
    } else if TENANT_PREFIXES.iter().any(|p| path.starts_with(p)) || TENANT_PATHS.contains(&path) {
        PathClass::Tenant
    } else {
        PathClass::Operator
    }
}

/// Wraps `router` (a service's every route) in the middleware when the
/// mode is `tokens`; otherwise returns it unchanged.
pub fn apply(router: Router, auth: Arc<Authenticator>) -> Router {
    if auth.mode() != AuthMode::Tokens {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

/// The middleware (see the module's documentation).
pub async fn authenticate(
    State(auth): State<Arc<Authenticator>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    match classify(&path) {
        PathClass::Open | PathClass::Admin => {}
        PathClass::Operator => {
            if let Err(f) = auth.authenticate_admin(req.headers()) {
                return refusal(f, &path);
            }
        }
        PathClass::Tenant => {
            let tenant = match auth.authenticate(req.headers()) {
                Ok(t) => t,
                Err(f) => return refusal(f, &path),
            };
            // Tenant IDs in the file are validated: visible ASCII.
            let Ok(value) = HeaderValue::from_str(&tenant) else {
                return (StatusCode::INTERNAL_SERVER_ERROR, "invalid tenant ID\n").into_response();
            };
            let headers = req.headers_mut();
            headers.remove(TENANT_HEADER);
            headers.insert(TENANT_HEADER, value);
            return next.run(req).await;
        }
    }
    req.headers_mut().remove(TENANT_HEADER);
    next.run(req).await
}

/// The answer to refused credentials: 401 with a `WWW-Authenticate`
/// challenge (so browsers and Grafana ask for basic auth), or 403; JSON in
/// Prometheus's error shape on the query and rules APIs, text elsewhere.
pub fn refusal(f: Failure, path: &str) -> Response {
    let json_api = (path.starts_with("/prometheus/") || path.starts_with("/api/v1/"))
        && !matches!(path, "/api/v1/push" | "/api/v1/write");
    let mut response = if json_api {
        let kind = if f.status == StatusCode::FORBIDDEN {
            "forbidden"
        } else {
            "unauthorized"
        };
        (
            f.status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"status": "error", "errorType": kind, "error": f.message})
                .to_string(),
        )
            .into_response()
    } else {
        (f.status, format!("{}\n", f.message)).into_response()
    };
    if f.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"strata\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authenticator::tests::{basic, bearer, fixture};
    use axum::body::Body;
    use axum::http::HeaderMap;
    use axum::routing::{any, get, post};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    /// A stand-in for the services' routes: answers with the tenant
    /// headers it was given.
    async fn echo(headers: HeaderMap) -> String {
        let tenants: Vec<&str> = headers
            .get_all(TENANT_HEADER)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        tenants.join(",")
    }

    fn router(auth: Arc<Authenticator>) -> Router {
        let routes = Router::new()
            .route("/api/v1/push", post(echo))
            .route("/prometheus/api/v1/query", any(echo))
            .route("/prometheus/config/v1/rules/{ns}", any(echo))
            .route("/ruler/internal/rules", get(echo))
            .route("/ingester/shutdown", post(echo))
            .route("/ingester/ring", get(echo).post(echo));
        let mut routes = routes;
        for p in ["/", "/metrics", "/ready", "/ring"] {
            routes = routes.route(p, get(echo));
        }
        apply(routes, auth)
    }

    async fn call(
        router: &Router,
        method: &str,
        path: &str,
        headers: &[(&str, HeaderValue)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, v.clone());
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_forged_tenant_header_never_selects_the_tenant() {
        let f = fixture();
        let r = router(f.auth.clone());
        let a = &f.alpha.token;
        let forged = HeaderValue::from_static("beta");
        for (method, path) in [
            ("POST", "/api/v1/push"),
            ("GET", "/prometheus/api/v1/query"),
            ("POST", "/prometheus/config/v1/rules/ns"),
            ("GET", "/ruler/internal/rules"),
        ] {
            for creds in [basic("alpha", a), bearer(a)] {
                let (status, _, body) = call(
                    &r,
                    method,
                    path,
                    &[
                        ("x-scope-orgid", forged.clone()),
                        ("X-Scope-OrgID", HeaderValue::from_static("gamma")),
                        ("authorization", creds),
                    ],
                )
                .await;
                assert_eq!(status, StatusCode::OK, "{path}: {body}");
                assert_eq!(body, "alpha", "{method} {path}: acts as alpha only");
            }
        }
        // Beta's own credentials act as beta.
        let (_, _, body) = call(
            &r,
            "POST",
            "/api/v1/push",
            &[
                ("x-scope-orgid", HeaderValue::from_static("alpha")),
                ("authorization", basic("beta", &f.beta.token)),
            ],
        )
        .await;
        assert_eq!(body, "beta");
    }

    #[tokio::test]
    async fn bad_or_missing_credentials_get_401_with_a_challenge() {
        let f = fixture();
        let r = router(f.auth.clone());
        for creds in [
            vec![],
            vec![("x-scope-orgid", HeaderValue::from_static("alpha"))],
            vec![("authorization", basic("alpha", "wrong"))],
            vec![("authorization", basic("beta", &f.alpha.token))],
            vec![("authorization", bearer("strata_nope"))],
            vec![("authorization", HeaderValue::from_static("Basic"))],
        ] {
            let (status, headers, body) = call(&r, "POST", "/api/v1/push", &creds).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{creds:?}");
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"strata\"");
            assert!(
                body.contains("credentials") || body.contains("Authorization"),
                "{body}"
            );
            assert_ne!(body, "alpha", "the handler never ran");
        }
        // The query API answers in Prometheus's error shape.
        let (status, headers, body) = call(&r, "GET", "/prometheus/api/v1/query", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["errorType"], "unauthorized");
        assert!(
            json["error"].as_str().unwrap().contains("basic auth"),
            "{json}"
        );
        // Other paths take the admin token: no probing without it, and a
        // tenant's credentials do not open them.
        for path in ["/nothing/here", "/metrics/", "/runtime_config"] {
            let (status, _, _) = call(&r, "GET", path, &[]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            let creds = [("authorization", bearer(&f.alpha.token))];
            let (status, _, _) = call(&r, "GET", path, &creds).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
    }

    #[tokio::test]
    async fn operational_paths_are_open_and_carry_no_tenant() {
        let f = fixture();
        let r = router(f.auth.clone());
        for path in OPEN_PATHS {
            let (status, _, body) = call(
                &r,
                "GET",
                path,
                &[("x-scope-orgid", HeaderValue::from_static("beta"))],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(body, "", "{path}: the client's tenant header is removed");
        }
        // Operator actions take the admin token only.
        let (status, _, _) = call(&r, "POST", "/ingester/shutdown", &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let tenant = [("authorization", bearer(&f.alpha.token))];
        let (status, _, _) = call(&r, "POST", "/ingester/shutdown", &tenant).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let admin = [("authorization", bearer(&f.admin_token))];
        let (status, _, _) = call(&r, "POST", "/ingester/shutdown", &admin).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[test]
    fn paths_are_classified_exactly() {
        assert_eq!(classify("/metrics"), PathClass::Open);
        assert_eq!(classify("/ingester/ring"), PathClass::Open);
        assert_eq!(classify("/metrics/"), PathClass::Operator);
        assert_eq!(classify("//metrics"), PathClass::Operator);
        assert_eq!(classify("/ringx"), PathClass::Operator);
        assert_eq!(classify("/admin/tenants"), PathClass::Admin);
        assert_eq!(classify("/administrator"), PathClass::Operator);
        assert_eq!(classify("/ingester/flush"), PathClass::Operator);
        assert_eq!(classify("/runtime_config"), PathClass::Operator);
        assert_eq!(classify("/distributor/ha_tracker"), PathClass::Operator);
        assert_eq!(classify("/api/v1/push"), PathClass::Tenant);
        assert_eq!(classify("/api/v1/query"), PathClass::Tenant);
        assert_eq!(classify("/prometheus/api/v1/query"), PathClass::Tenant);
        assert_eq!(
            classify("/prometheus/config/v1/rules/ns"),
            PathClass::Tenant
        );
        assert_eq!(classify("/ruler/internal/rules"), PathClass::Tenant);
    }
}
