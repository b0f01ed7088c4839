//! The tenant of an HTTP request.

use http::{HeaderMap, StatusCode};
use strata_model::{validate_tenant_id, DEFAULT_TENANT};

pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// The tenant named by `X-Scope-OrgID`. With authentication disabled a
/// missing header means the default tenant; with it enabled, it is a 401.
/// The header given twice is a 400: silently picking one of the values
/// would let a proxy's header and a client's disagree about the tenant.
pub fn tenant_from_headers(
    headers: &HeaderMap,
    auth_enabled: bool,
) -> Result<String, (StatusCode, String)> {
    let mut values = headers.get_all(TENANT_HEADER).iter();
    let first = values.next();
    if first.is_some() && values.next().is_some() {
        return Err((
            StatusCode::BAD_REQUEST,
            "X-Scope-OrgID is set more than once; send exactly one tenant header".to_string(),
        ));
    }
    let Some(value) = first else {
        if auth_enabled {
            return Err((
                StatusCode::UNAUTHORIZED,
                "no tenant ID: set the X-Scope-OrgID header".to_string(),
            ));
        }
        return Ok(DEFAULT_TENANT.to_string());
    };
    let id = value.to_str().map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            "X-Scope-OrgID header is not valid ASCII".to_string(),
        )
    })?;
    if id.contains('|') {
        return Err((
            StatusCode::BAD_REQUEST,
            "X-Scope-OrgID names several tenants; pushes and queries take exactly one".to_string(),
        ));
    }
    validate_tenant_id(id).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("invalid X-Scope-OrgID: {e}"),
        )
    })?;
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(TENANT_HEADER, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn one_header_names_the_tenant() {
        assert_eq!(
            tenant_from_headers(&headers(&["team-a"]), true).unwrap(),
            "team-a"
        );
        assert_eq!(
            tenant_from_headers(&headers(&[]), false).unwrap(),
            DEFAULT_TENANT
        );
        assert_eq!(
            tenant_from_headers(&headers(&[]), true).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn duplicated_header_is_refused() {
        for auth in [false, true] {
            for pair in [["a", "b"], ["a", "a"]] {
                let (status, msg) = tenant_from_headers(&headers(&pair), auth).unwrap_err();
                assert_eq!(status, StatusCode::BAD_REQUEST);
                assert!(msg.contains("more than once"), "{msg}");
            }
        }
    }
}
