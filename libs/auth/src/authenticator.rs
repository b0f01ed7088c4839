//! Verifies credentials against the tenants file in force, which it
//! re-reads every `auth.reload_period`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use parking_lot::RwLock;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{AuthConfig, AuthMode};
use crate::metrics::{AuthMetrics, UNKNOWN_TENANT};
use crate::secret::{self, SaltedHash};
use crate::tenants::{self, Tenants, TenantsFile};

/// Why a request was refused: the answer's status and message, and the
/// labels it is counted under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    /// `strata_auth_failures_total`'s `reason`.
    pub reason: &'static str,
    /// `strata_auth_failures_total`'s `tenant`: a tenant of the file, or
    /// `unknown`.
    pub tenant: String,
    pub message: String,
}

/// The reasons a request is refused, as counted.
pub mod reason {
    /// No `Authorization` header.
    pub const MISSING: &str = "missing_credentials";
    /// An `Authorization` header that is not basic auth or a bearer token.
    pub const MALFORMED: &str = "malformed_credentials";
    /// Basic auth naming a tenant that is not in the tenants file.
    pub const UNKNOWN_TENANT: &str = "unknown_tenant";
    /// A token that is not (or no longer) in the tenants file.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// A valid token of another tenant than the basic auth user.
    pub const TENANT_MISMATCH: &str = "tenant_mismatch";
    /// A wrong admin token on an admin path.
    pub const INVALID_ADMIN_TOKEN: &str = "invalid_admin_token";
    /// A tenant's valid credentials on an admin path.
    pub const NOT_ADMIN: &str = "not_admin";
    /// An admin path when no admin token is configured.
    pub const ADMIN_DISABLED: &str = "admin_disabled";
}

const INVALID_CREDENTIALS: &str =
    "invalid credentials: unknown tenant, or a wrong or revoked token";

/// What a request presents.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    /// HTTP basic auth: user = tenant ID (may be empty), password = token.
    Basic {
        user: String,
        token: String,
    },
    Bearer(String),
}

/// The tenants file in force and what was learnt from it.
struct State {
    tenants: Arc<Tenants>,
    /// SHA-256 of the file's bytes as loaded; `None` before a file existed.
    loaded: Option<[u8; 32]>,
    /// SHA-256(token) → tenant, for tokens verified against `tenants`;
    /// cleared whenever another file comes into force, so a revoked token
    /// stops working with the reload. Holds at most one entry per token of
    /// the file (only successes are cached). Keyed by a digest, so the
    /// process keeps no token in memory.
    cache: HashMap<[u8; 32], Arc<str>>,
    /// Why the file on disk is not the one in force (logged once).
    error: Option<String>,
}

/// Authenticates requests in `tokens` mode and admin requests in any mode.
pub struct Authenticator {
    mode: AuthMode,
    path: Option<PathBuf>,
    admin: Option<SaltedHash>,
    state: RwLock<State>,
    metrics: AuthMetrics,
}

impl Authenticator {
    /// Loads the tenants file (when configured). A missing file means no
    /// tenants yet (logged; every request is refused until it exists); a
    /// broken one is an error, since there is no earlier version to keep.
    pub fn new(
        config: &AuthConfig,
        auth_enabled: bool,
        metrics: AuthMetrics,
    ) -> anyhow::Result<Arc<Self>> {
        config.validate(auth_enabled).map_err(anyhow::Error::msg)?;
        let auth = Authenticator {
            mode: config.effective_mode(auth_enabled),
            path: config.tenants_file(),
            admin: config.admin_hash().map_err(anyhow::Error::msg)?,
            state: RwLock::new(State {
                tenants: Arc::new(Tenants::default()),
                loaded: None,
                cache: HashMap::new(),
                error: None,
            }),
            metrics,
        };
        if let Some(path) = &auth.path {
            match tenants::read(path)? {
                Some(bytes) => {
                    let (_, parsed) = tenants::parse_bytes(path, &bytes)?;
                    auth.install(parsed, secret::sha256(&[&bytes]));
                }
                None => {
                    tracing::warn!(
                        path = %path.display(),
                        "the tenants file does not exist yet: no tenant can authenticate until it does"
                    );
                    auth.metrics.reload_ok.set(1);
                }
            }
        }
        Ok(Arc::new(auth))
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    pub fn admin_enabled(&self) -> bool {
        self.admin.is_some() && self.path.is_some()
    }

    pub fn tenants_file(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    pub fn metrics(&self) -> &AuthMetrics {
        &self.metrics
    }

    fn install(&self, tenants: Tenants, digest: [u8; 32]) {
        let (tenant_count, token_count) = (tenants.tenant_count(), tenants.token_count());
        {
            let mut s = self.state.write();
            s.tenants = Arc::new(tenants);
            s.cache.clear();
            s.loaded = Some(digest);
            s.error = None;
        }
        self.metrics.reload(true);
        self.metrics.tenants.set(tenant_count as i64);
        self.metrics.tokens.set(token_count as i64);
        tracing::info!(
            tenants = tenant_count,
            tokens = token_count,
            "tenants file loaded"
        );
    }

    /// Records that the file on disk cannot be used; the one in force stays.
    fn broken(&self, why: String) {
        self.metrics.reload(false);
        let mut s = self.state.write();
        if s.error.as_deref() != Some(why.as_str()) {
            tracing::error!(error = %why, "keeping the last good tenants file");
            s.error = Some(why);
        }
    }

    /// Re-reads the tenants file and puts it in force when it changed and is
    /// valid; a broken or vanished file leaves the last good one in force.
    /// Returns whether another file came into force. Blocking (file I/O).
    pub fn reload(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let bytes = match tenants::read(path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                if self.state.read().loaded.is_some() {
                    self.broken(format!("tenants file {} has vanished", path.display()));
                }
                return false;
            }
            Err(e) => {
                self.broken(e.to_string());
                return false;
            }
        };
        let digest = secret::sha256(&[&bytes]);
        {
            let mut s = self.state.write();
            if s.loaded == Some(digest) {
                if s.error.take().is_some() {
                    tracing::info!("the tenants file is back to the version in force");
                    self.metrics.reload_ok.set(1);
                }
                return false;
            }
        }
        match tenants::parse_bytes(path, &bytes) {
            Ok((_, parsed)) => {
                self.install(parsed, digest);
                true
            }
            Err(e) => {
                self.broken(e.to_string());
                false
            }
        }
    }

    /// Puts a file this process just wrote in force at once (the admin
    /// API), without waiting for the next reload.
    pub fn install_written(&self, file: &TenantsFile) {
        match file.index() {
            Ok(parsed) => {
                let digest = secret::sha256(&[file.to_yaml().as_bytes()]);
                self.install(parsed, digest);
            }
            Err(e) => self.broken(e),
        }
    }

    /// Re-reads the file every `period` until `stop`.
    pub fn spawn_reloader(
        self: &Arc<Self>,
        period: Duration,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let me = me.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || me.reload()).await {
                    tracing::error!(error = %e, "reloading the tenants file failed");
                }
            }
        })
    }

    /// The tenant whose credentials `headers` carry.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<String, Failure> {
        let result = self.verify_tenant(headers);
        match &result {
            Ok(tenant) => self.metrics.success(tenant),
            Err(f) => self.metrics.failure(&f.tenant, f.reason),
        }
        result
    }

    fn verify_tenant(&self, headers: &HeaderMap) -> Result<String, Failure> {
        let (user, token) = match credentials(headers)? {
            Credentials::Basic { user, token } => (Some(user).filter(|u| !u.is_empty()), token),
            Credentials::Bearer(token) => (None, token),
        };
        let key = secret::sha256(&[token.as_bytes()]);
        let (cached, tenants) = {
            let s = self.state.read();
            (s.cache.get(&key).cloned(), s.tenants.clone())
        };
        // The label and reason for a failure: a basic auth user is labelled
        // only when it is a tenant of the file.
        let refuse = |reason: &'static str, label: &str| Failure {
            status: StatusCode::UNAUTHORIZED,
            reason,
            tenant: label.to_string(),
            message: INVALID_CREDENTIALS.to_string(),
        };
        let user_label = |user: &str| {
            if tenants.is_known(user) {
                user.to_string()
            } else {
                UNKNOWN_TENANT.to_string()
            }
        };
        if let Some(owner) = cached {
            self.metrics.cache_hits.inc();
            return match &user {
                Some(u) if u.as_str() != &*owner => {
                    Err(refuse(reason::TENANT_MISMATCH, &user_label(u)))
                }
                _ => Ok(owner.to_string()),
            };
        }
        let stored = secret::token_id(&token).and_then(|id| tenants.token(id));
        let Some(stored) = stored else {
            // As much work as a real verification, so that the answer's
            // timing does not tell whether a token id exists.
            std::hint::black_box(secret::sha256(&[
                &[0u8; secret::SALT_LEN],
                token.as_bytes(),
            ]));
            return Err(match &user {
                Some(u) if tenants.is_known(u) => refuse(reason::INVALID_TOKEN, u),
                Some(_) => refuse(reason::UNKNOWN_TENANT, UNKNOWN_TENANT),
                None => refuse(reason::INVALID_TOKEN, UNKNOWN_TENANT),
            });
        };
        if !stored.hash.verify(&token) {
            return Err(match &user {
                Some(u) if tenants.is_known(u) => refuse(reason::INVALID_TOKEN, u),
                Some(_) => refuse(reason::UNKNOWN_TENANT, UNKNOWN_TENANT),
                None => refuse(reason::INVALID_TOKEN, &stored.tenant),
            });
        }
        if let Some(u) = &user {
            if u.as_str() != &*stored.tenant {
                return Err(refuse(reason::TENANT_MISMATCH, &user_label(u)));
            }
        }
        let owner = stored.tenant.clone();
        let mut s = self.state.write();
        // Only while the file it was verified against is still in force.
        if Arc::ptr_eq(&s.tenants, &tenants) {
            s.cache.insert(key, owner.clone());
        }
        Ok(owner.to_string())
    }

    /// Checks the admin token (`Authorization: Bearer <admin token>`, or as
    /// the basic auth password with any user). A tenant's valid credentials
    /// are a 403, anything else a 401.
    pub fn authenticate_admin(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let result = self.verify_admin(headers);
        if let Err(f) = &result {
            self.metrics.failure(&f.tenant, f.reason);
        }
        result
    }

    fn verify_admin(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let Some(admin) = &self.admin else {
            return Err(Failure {
                status: StatusCode::FORBIDDEN,
                reason: reason::ADMIN_DISABLED,
                tenant: UNKNOWN_TENANT.to_string(),
                message: "this path needs the admin token, and none is configured (auth.admin_token_hash)"
                    .to_string(),
            });
        };
        let token = match credentials(headers)? {
            Credentials::Basic { token, .. } | Credentials::Bearer(token) => token,
        };
        if admin.verify(&token) {
            return Ok(());
        }
        if let Ok(tenant) = self.verify_tenant(headers) {
            return Err(Failure {
                status: StatusCode::FORBIDDEN,
                reason: reason::NOT_ADMIN,
                tenant,
                message:
                    "a tenant's credentials do not give access to this path: use the admin token"
                        .to_string(),
            });
        }
        Err(Failure {
            status: StatusCode::UNAUTHORIZED,
            reason: reason::INVALID_ADMIN_TOKEN,
            tenant: UNKNOWN_TENANT.to_string(),
            message: "invalid admin token: send Authorization: Bearer <admin token>".to_string(),
        })
    }
}

/// The credentials of the request's one `Authorization` header.
fn credentials(headers: &HeaderMap) -> Result<Credentials, Failure> {
    let malformed = |why: &str| Failure {
        status: StatusCode::UNAUTHORIZED,
        reason: reason::MALFORMED,
        tenant: UNKNOWN_TENANT.to_string(),
        message: format!("malformed Authorization header: {why}"),
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Failure {
            status: StatusCode::UNAUTHORIZED,
            reason: reason::MISSING,
            tenant: UNKNOWN_TENANT.to_string(),
            message: "authentication required: use HTTP basic auth with your tenant ID as the user name and an API token as the password, or send Authorization: Bearer <token>".to_string(),
        });
    };
    if values.next().is_some() {
        return Err(malformed("sent more than once"));
    }
    let value = value
        .to_str()
        .map_err(|_| malformed("not visible ASCII"))?
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(malformed("empty bearer token"));
        }
        return Ok(Credentials::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| malformed("basic credentials are not base64"))?;
        let text =
            String::from_utf8(decoded).map_err(|_| malformed("basic credentials are not UTF-8"))?;
        let Some((user, token)) = text.split_once(':') else {
            return Err(malformed(
                "basic credentials have no ':' between user and password",
            ));
        };
        if token.is_empty() {
            return Err(malformed("empty password: the password is an API token"));
        }
        return Ok(Credentials::Basic {
            user: user.to_string(),
            token: token.to_string(),
        });
    }
    Err(malformed(
        "use Basic (tenant ID and API token) or Bearer (API token)",
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tenants::NewToken;
    use axum::http::HeaderValue;

    pub fn basic(user: &str, password: &str) -> HeaderValue {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {b64}")).unwrap()
    }

    pub fn bearer(token: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
    }

    pub fn auth_headers(value: HeaderValue) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value);
        h
    }

    /// A tenants file in a temporary directory with tokens for alpha and
    /// beta, and an authenticator in tokens mode over it.
    pub struct Fixture {
        /// Keeps the directory until the test ends.
        pub _dir: tempfile::TempDir,
        pub path: PathBuf,
        pub alpha: NewToken,
        pub beta: NewToken,
        pub admin_token: String,
        pub auth: Arc<Authenticator>,
    }

    pub fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.yaml");
        let (alpha, _) = tenants::update(&path, |f| f.create_token("alpha")).unwrap();
        let (beta, _) = tenants::update(&path, |f| f.create_token("beta")).unwrap();
        let admin_token = secret::new_admin_token();
        let config = AuthConfig {
            mode: AuthMode::Tokens,
            tenants_file: path.display().to_string(),
            admin_token_hash: SaltedHash::new(&admin_token).to_string(),
            ..AuthConfig::default()
        };
        let auth = Authenticator::new(&config, false, AuthMetrics::default()).unwrap();
        Fixture {
            _dir: dir,
            path,
            alpha,
            beta,
            admin_token,
            auth,
        }
    }

    fn failures(auth: &Authenticator, tenant: &str, reason: &str) -> u64 {
        auth.metrics
            .failures
            .get_or_create(&crate::metrics::FailureLabels {
                tenant: tenant.into(),
                reason: reason.into(),
            })
            .get()
    }

    #[test]
    fn basic_and_bearer_name_the_tenant() {
        let f = fixture();
        let a = &f.alpha.token;
        assert_eq!(
            f.auth
                .authenticate(&auth_headers(basic("alpha", a)))
                .unwrap(),
            "alpha"
        );
        assert_eq!(
            f.auth.authenticate(&auth_headers(bearer(a))).unwrap(),
            "alpha"
        );
        assert_eq!(
            f.auth.authenticate(&auth_headers(basic("", a))).unwrap(),
            "alpha"
        );
        assert_eq!(
            f.auth
                .authenticate(&auth_headers(bearer(&f.beta.token)))
                .unwrap(),
            "beta"
        );
        // Scheme names are case-insensitive.
        let lower = HeaderValue::from_str(&format!("bearer {a}")).unwrap();
        assert_eq!(f.auth.authenticate(&auth_headers(lower)).unwrap(), "alpha");
    }

    #[test]
    fn wrong_credentials_are_refused_and_counted() {
        let f = fixture();
        let a = &f.alpha.token;
        let wrong_secret = format!("{}0", &a[..a.len() - 1]);
        let wrong_secret = if wrong_secret == *a {
            format!("{}1", &a[..a.len() - 1])
        } else {
            wrong_secret
        };
        let cases: Vec<(HeaderMap, &str, &str)> = vec![
            (HeaderMap::new(), reason::MISSING, "unknown"),
            (
                auth_headers(HeaderValue::from_static("Digest abc")),
                reason::MALFORMED,
                "unknown",
            ),
            (
                auth_headers(HeaderValue::from_static("Basic !!!")),
                reason::MALFORMED,
                "unknown",
            ),
            (
                auth_headers(basic("alpha", "")),
                reason::MALFORMED,
                "unknown",
            ),
            (
                auth_headers(basic("alpha", &wrong_secret)),
                reason::INVALID_TOKEN,
                "alpha",
            ),
            (
                auth_headers(basic("alpha", "guess")),
                reason::INVALID_TOKEN,
                "alpha",
            ),
            (
                auth_headers(bearer(&wrong_secret)),
                reason::INVALID_TOKEN,
                "alpha",
            ),
            (
                auth_headers(bearer("guess")),
                reason::INVALID_TOKEN,
                "unknown",
            ),
            // Attackers' tenant names never become label values.
            (
                auth_headers(basic("mallory-1", a)),
                reason::TENANT_MISMATCH,
                "unknown",
            ),
            (
                auth_headers(basic("mallory-2", "x")),
                reason::UNKNOWN_TENANT,
                "unknown",
            ),
            // Alpha's token does not open beta.
            (
                auth_headers(basic("beta", a)),
                reason::TENANT_MISMATCH,
                "beta",
            ),
        ];
        for (headers, want_reason, want_label) in cases {
            let before = failures(&f.auth, want_label, want_reason);
            let err = f.auth.authenticate(&headers).unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED, "{headers:?}");
            assert_eq!(
                (err.reason, err.tenant.as_str()),
                (want_reason, want_label),
                "{headers:?}"
            );
            assert_eq!(failures(&f.auth, want_label, want_reason), before + 1);
        }
        // Two Authorization headers are refused.
        let mut two = auth_headers(bearer(a));
        two.append(header::AUTHORIZATION, bearer(a));
        assert_eq!(
            f.auth.authenticate(&two).unwrap_err().reason,
            reason::MALFORMED
        );
        // After a cached success, a mismatch is still refused.
        f.auth.authenticate(&auth_headers(bearer(a))).unwrap();
        let err = f
            .auth
            .authenticate(&auth_headers(basic("beta", a)))
            .unwrap_err();
        assert_eq!(err.reason, reason::TENANT_MISMATCH);
        let text = {
            let mut r = prometheus_client::registry::Registry::default();
            f.auth.metrics.register(&mut r);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
            out
        };
        assert!(
            text.contains(
                "strata_auth_failures_total{tenant=\"beta\",reason=\"tenant_mismatch\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("strata_auth_successes_total{tenant=\"alpha\"} 1"),
            "{text}"
        );
        assert!(!text.contains("mallory"), "{text}");
    }

    #[test]
    fn successes_are_cached_and_the_cache_follows_the_file() {
        let f = fixture();
        let h = auth_headers(bearer(&f.alpha.token));
        f.auth.authenticate(&h).unwrap();
        assert_eq!(f.auth.metrics.cache_hits.get(), 0);
        f.auth.authenticate(&h).unwrap();
        f.auth
            .authenticate(&auth_headers(basic("alpha", &f.alpha.token)))
            .unwrap();
        assert_eq!(f.auth.metrics.cache_hits.get(), 2);
        assert_eq!(f.auth.state.read().cache.len(), 1);

        // Revoked in the file: refused once the file is reloaded.
        tenants::update(&f.path, |file| file.revoke_token("alpha", &f.alpha.id)).unwrap();
        assert_eq!(
            f.auth.authenticate(&h).unwrap(),
            "alpha",
            "until the reload"
        );
        assert!(f.auth.reload());
        assert!(f.auth.state.read().cache.is_empty());
        assert_eq!(
            f.auth.authenticate(&h).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            f.auth
                .authenticate(&auth_headers(bearer(&f.beta.token)))
                .unwrap(),
            "beta"
        );
        assert!(!f.auth.reload(), "an unchanged file is not loaded again");
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_one() {
        let f = fixture();
        let good = std::fs::read(&f.path).unwrap();
        std::fs::write(&f.path, "tenants: [broken").unwrap();
        assert!(!f.auth.reload());
        assert_eq!(f.auth.metrics.reload_ok.get(), 0);
        assert!(f.auth.state.read().error.is_some());
        assert_eq!(
            f.auth
                .authenticate(&auth_headers(bearer(&f.alpha.token)))
                .unwrap(),
            "alpha"
        );
        // Vanished: the same.
        std::fs::remove_file(&f.path).unwrap();
        assert!(!f.auth.reload());
        assert_eq!(
            f.auth
                .authenticate(&auth_headers(bearer(&f.beta.token)))
                .unwrap(),
            "beta"
        );
        // Back as it was: healthy again without a reload.
        std::fs::write(&f.path, &good).unwrap();
        assert!(!f.auth.reload());
        assert_eq!(f.auth.metrics.reload_ok.get(), 1);
        assert!(f.auth.state.read().error.is_none());
        // A new valid version comes into force.
        let (gamma, _) = tenants::update(&f.path, |file| file.create_token("gamma")).unwrap();
        assert!(f.auth.reload());
        assert_eq!(
            f.auth
                .authenticate(&auth_headers(bearer(&gamma.token)))
                .unwrap(),
            "gamma"
        );
        let reloads = |result: &str| {
            f.auth
                .metrics
                .reloads
                .get_or_create(&crate::metrics::ResultLabel {
                    result: result.into(),
                })
                .get()
        };
        assert_eq!((reloads("success"), reloads("failure")), (2, 2));
    }

    #[test]
    fn a_missing_file_at_start_means_no_tenants_and_a_broken_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.yaml");
        let config = AuthConfig {
            mode: AuthMode::Tokens,
            tenants_file: path.display().to_string(),
            ..AuthConfig::default()
        };
        let auth = Authenticator::new(&config, false, AuthMetrics::default()).unwrap();
        let (t, _) = tenants::update(&path, |f| f.create_token("alpha")).unwrap();
        assert!(auth.authenticate(&auth_headers(bearer(&t.token))).is_err());
        assert!(auth.reload());
        assert!(auth.authenticate(&auth_headers(bearer(&t.token))).is_ok());

        std::fs::write(&path, "nope: 1").unwrap();
        let err = Authenticator::new(&config, false, AuthMetrics::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("invalid"), "{err}");
    }

    #[test]
    fn admin_token_and_tenant_tokens_are_kept_apart() {
        let f = fixture();
        assert!(f
            .auth
            .authenticate_admin(&auth_headers(bearer(&f.admin_token)))
            .is_ok());
        assert!(f
            .auth
            .authenticate_admin(&auth_headers(basic("admin", &f.admin_token)))
            .is_ok());
        let err = f
            .auth
            .authenticate_admin(&auth_headers(basic("alpha", &f.alpha.token)))
            .unwrap_err();
        assert_eq!(
            (err.status, err.reason),
            (StatusCode::FORBIDDEN, reason::NOT_ADMIN)
        );
        let err = f
            .auth
            .authenticate_admin(&auth_headers(bearer("x")))
            .unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        let err = f.auth.authenticate_admin(&HeaderMap::new()).unwrap_err();
        assert_eq!(err.reason, reason::MISSING);
        // The admin token is no tenant's token.
        assert!(f
            .auth
            .authenticate(&auth_headers(bearer(&f.admin_token)))
            .is_err());
    }
}
