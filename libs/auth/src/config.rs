//! The `auth` section of the configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::SaltedHash;

/// How the HTTP edge decides a request's tenant.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication: `X-Scope-OrgID` names the tenant when given,
    /// `anonymous` otherwise (the historical `auth_enabled: false`).
    #[default]
    None,
    /// `X-Scope-OrgID` is required and trusted as sent, for deployments
    /// behind an authenticating proxy (the historical `auth_enabled: true`).
    Header,
    /// API tokens from the tenants file: HTTP basic auth (user = tenant,
    /// password = token) or `Authorization: Bearer <token>`. A client's own
    /// `X-Scope-OrgID` never selects a tenant.
    Tokens,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Header => "header",
            AuthMode::Tokens => "tokens",
        }
    }
}

/// `auth:` in the configuration file (`docs/auth.md`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `none`, `header` or `tokens`. The top-level `auth_enabled: true`
    /// turns `none` into `header` (see [`AuthConfig::effective_mode`]).
    pub mode: AuthMode,
    /// The tenants file: tenant → API tokens as salted hashes. Required in
    /// `tokens` mode and for the admin API.
    pub tenants_file: String,
    /// How often every service re-reads the tenants file.
    #[serde(with = "strata_model::duration::serde")]
    pub reload_period: Duration,
    /// `sha256:<salt hex>:<hash hex>` of the admin token
    /// (`strata-admin hash-admin-token`); empty: no admin API.
    pub admin_token_hash: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            tenants_file: String::new(),
            reload_period: Duration::from_secs(10),
            admin_token_hash: String::new(),
        }
    }
}

impl AuthConfig {
    /// The mode in force, given the top-level `auth_enabled`: `auth_enabled:
    /// true` is the old spelling of `mode: header`, so it turns `none` into
    /// `header` and leaves the other modes alone. It can only make
    /// authentication stricter, never switch it off.
    pub fn effective_mode(&self, auth_enabled: bool) -> AuthMode {
        match (self.mode, auth_enabled) {
            (AuthMode::None, true) => AuthMode::Header,
            (mode, _) => mode,
        }
    }

    pub fn tenants_file(&self) -> Option<PathBuf> {
        (!self.tenants_file.is_empty()).then(|| PathBuf::from(&self.tenants_file))
    }

    /// The admin token's hash, when the admin API is configured.
    pub fn admin_hash(&self) -> Result<Option<SaltedHash>, String> {
        if self.admin_token_hash.is_empty() {
            return Ok(None);
        }
        SaltedHash::parse(&self.admin_token_hash)
            .map(Some)
            .map_err(|e| format!("auth.admin_token_hash: {e}"))
    }

    /// Checks the keys that depend on each other; the message names the key
    /// to fix.
    pub fn validate(&self, auth_enabled: bool) -> Result<(), String> {
        let mode = self.effective_mode(auth_enabled);
        if mode == AuthMode::Tokens && self.tenants_file.is_empty() {
            return Err("auth.mode is tokens but auth.tenants_file is not set".to_string());
        }
        if self.reload_period.is_zero() {
            return Err("auth.reload_period must be more than 0".to_string());
        }
        if self.admin_hash()?.is_some() && self.tenants_file.is_empty() {
            return Err(
                "auth.admin_token_hash is set but auth.tenants_file is not: the admin API manages that file"
                    .to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_enabled_maps_to_header_mode() {
        let mut c = AuthConfig::default();
        assert_eq!(c.effective_mode(false), AuthMode::None);
        assert_eq!(c.effective_mode(true), AuthMode::Header);
        c.mode = AuthMode::Tokens;
        assert_eq!(c.effective_mode(false), AuthMode::Tokens);
        assert_eq!(c.effective_mode(true), AuthMode::Tokens);
        c.mode = AuthMode::Header;
        assert_eq!(c.effective_mode(false), AuthMode::Header);
    }

    #[test]
    fn yaml_round_trips_and_validates() {
        let c: AuthConfig = serde_yaml::from_str(
            "mode: tokens\ntenants_file: /etc/strata/tenants.yaml\nreload_period: 2s\n",
        )
        .unwrap();
        assert_eq!(c.mode, AuthMode::Tokens);
        assert_eq!(c.reload_period, Duration::from_secs(2));
        assert!(c.validate(false).is_ok());
        let back: AuthConfig = serde_yaml::from_str(&serde_yaml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);

        let missing_file = AuthConfig {
            mode: AuthMode::Tokens,
            ..AuthConfig::default()
        };
        assert!(missing_file
            .validate(false)
            .unwrap_err()
            .contains("tenants_file"));
        let bad_hash = AuthConfig {
            admin_token_hash: "nope".into(),
            tenants_file: "t.yaml".into(),
            ..AuthConfig::default()
        };
        assert!(bad_hash
            .validate(false)
            .unwrap_err()
            .contains("admin_token_hash"));
        assert!(serde_yaml::from_str::<AuthConfig>("mode: basic\n").is_err());
        assert!(serde_yaml::from_str::<AuthConfig>("tenant_file: x\n").is_err());
    }
}
