//! The tenant of an HTTP request.

use http::{HeaderMap, StatusCode};
use strata_model::{validate_tenant_id, DEFAULT_TENANT};

pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// The tenant named by `X-Scope-OrgID`. With authentication disabled a
/// missing header means the default tenant; with it enabled, it is a 401.
pub fn tenant_from_headers(
    headers: &HeaderMap,
    auth_enabled: bool,
) -> Result<String, (StatusCode, String)> {
    let Some(value) = headers.get(TENANT_HEADER) else {
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
