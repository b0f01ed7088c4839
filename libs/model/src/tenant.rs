use thiserror::Error;

/// Tenant used for every request when authentication is disabled.
pub const DEFAULT_TENANT: &str = "anonymous";

/// Longest tenant ID accepted (the same limit Cortex and Mimir use).
pub const MAX_TENANT_ID_LEN: usize = 150;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("tenant ID is empty")]
    Empty,
    #[error("tenant ID is {0} characters long, the maximum is {MAX_TENANT_ID_LEN}")]
    TooLong(usize),
    #[error("tenant ID {0:?} is not allowed")]
    Reserved(String),
    #[error("tenant ID contains {0:?}; allowed are letters, digits and the characters !-_.*'()")]
    InvalidChar(char),
}

/// Checks a tenant ID: 1-150 characters from `[a-zA-Z0-9!-_.*'()]`, and not
/// `.` or `..` (tenant IDs become path segments and object key prefixes).
pub fn validate_tenant_id(id: &str) -> Result<(), TenantError> {
    if id.is_empty() {
        return Err(TenantError::Empty);
    }
    if id.len() > MAX_TENANT_ID_LEN {
        return Err(TenantError::TooLong(id.len()));
    }
    if id == "." || id == ".." {
        return Err(TenantError::Reserved(id.to_string()));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c)))
    {
        return Err(TenantError::InvalidChar(c));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates() {
        assert!(validate_tenant_id("team-a_1").is_ok());
        assert_eq!(validate_tenant_id(""), Err(TenantError::Empty));
        assert_eq!(
            validate_tenant_id("a/b"),
            Err(TenantError::InvalidChar('/'))
        );
        assert_eq!(
            validate_tenant_id("a|b"),
            Err(TenantError::InvalidChar('|'))
        );
        assert!(matches!(
            validate_tenant_id(".."),
            Err(TenantError::Reserved(_))
        ));
        assert!(matches!(
            validate_tenant_id(&"a".repeat(151)),
            Err(TenantError::TooLong(151))
        ));
    }
}
