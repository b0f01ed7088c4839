//! Configuration and Alertmanager URLs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::NotifierError;

/// The path Alertmanager's v2 API takes alerts on, under a base URL.
pub const ALERTS_PATH: &str = "/api/v2/alerts";

/// How alerts are delivered. Every tenant gets its own queue of
/// `queue_capacity` alerts and sends to `alertmanager_urls` unless
/// [`NotifierManager::set_tenant_urls`](crate::NotifierManager::set_tenant_urls)
/// overrides the list for it.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifierConfig {
    /// Base URLs of the Alertmanagers every alert goes to, such as
    /// `http://127.0.0.1:9093` or `http://am:9093/alertmanager`; alerts are
    /// posted to `<base>/api/v2/alerts`. Credentials in the URL
    /// (`http://user:pass@host`) are sent as HTTP basic auth and kept out
    /// of metric labels and logs. Only `http` is supported: this build of
    /// the HTTP client has no TLS.
    pub alertmanager_urls: Vec<String>,
    /// Alerts each tenant's queue holds; when full, the oldest are dropped.
    pub queue_capacity: usize,
    /// Most alerts in one request.
    pub max_batch_size: usize,
    /// Bound on one request to one Alertmanager, from connecting to reading
    /// the response.
    pub timeout: Duration,
    /// How long [`NotifierManager::stop`](crate::NotifierManager::stop) (or
    /// dropping the manager) keeps delivering what is queued before
    /// dropping the rest.
    pub drain_timeout: Duration,
    /// Labels added to every alert that lacks them (Prometheus's
    /// `external_labels`).
    pub external_labels: BTreeMap<String, String>,
}

/// Default per-tenant queue capacity (Prometheus's
/// `--alertmanager.notification-queue-capacity`).
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default batch size: Prometheus's before 3.x raised it to 256.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 64;
/// Default request timeout (Prometheus's `alertmanager_config.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on draining queues at shutdown.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            alertmanager_urls: Vec::new(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            timeout: DEFAULT_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            external_labels: BTreeMap::new(),
        }
    }
}

impl NotifierConfig {
    pub(crate) fn validate(&self) -> Result<(), NotifierError> {
        let invalid = |msg: String| Err(NotifierError::InvalidConfig(msg));
        if self.queue_capacity == 0 {
            return invalid("queue_capacity must be at least 1".into());
        }
        if self.max_batch_size == 0 {
            return invalid("max_batch_size must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return invalid("timeout must be positive".into());
        }
        for (name, value) in &self.external_labels {
            if !strata_model::is_valid_label_name(name) {
                return invalid(format!(
                    "external label name {name:?} is not a valid label name"
                ));
            }
            if value.is_empty() {
                return invalid(format!("external label {name:?} has an empty value"));
            }
        }
        Ok(())
    }
}

/// One Alertmanager's alerts endpoint.
#[derive(Clone)]
pub(crate) struct Target {
    /// Where to post, credentials included (the HTTP client moves them to
    /// an `Authorization: Basic` header).
    pub(crate) url: Url,
    /// The endpoint without credentials: the `alertmanager` label and what
    /// logs show.
    pub(crate) label: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

pub(crate) type Targets = Arc<[Target]>;

/// Parses base URLs into alerts endpoints, dropping duplicates.
pub(crate) fn parse_targets(urls: &[String]) -> Result<Targets, NotifierError> {
    let mut targets: Vec<Target> = Vec::with_capacity(urls.len());
    for raw in urls {
        let target = parse_target(raw)?;
        if !targets.iter().any(|t| t.url == target.url) {
            targets.push(target);
        }
    }
    Ok(targets.into())
}

fn parse_target(raw: &str) -> Result<Target, NotifierError> {
    // Never echo the raw URL in errors: it may hold a password.
    let mut url = Url::parse(raw.trim()).map_err(|e| NotifierError::InvalidUrl {
        url: redact(raw),
        reason: e.to_string(),
    })?;
    let fail = |reason: &str| NotifierError::InvalidUrl {
        url: redact(raw),
        reason: reason.to_string(),
    };
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(fail(
                "https is not supported: the HTTP client is built without TLS",
            ))
        }
        _ => return Err(fail("the scheme must be http")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(fail("a base URL takes no query or fragment"));
    }
    let path = format!("{}{ALERTS_PATH}", url.path().trim_end_matches('/'));
    url.set_path(&path);

    let mut bare = url.clone();
    // Cannot fail for http URLs with a host, checked above.
    let stripped = bare.set_username("").is_ok() && bare.set_password(None).is_ok();
    if !stripped {
        return Err(fail("cannot remove credentials from the URL"));
    }
    Ok(Target {
        label: bare.to_string(),
        url,
    })
}

/// The URL with any userinfo replaced, for error messages.
fn redact(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(mut url) => {
            if !url.username().is_empty() || url.password().is_some() {
                let _ = url.set_username("redacted");
                let _ = url.set_password(None);
            }
            url.to_string()
        }
        // Unparsable: keep what is before any '@' out of the message.
        Err(_) => match raw.rsplit_once('@') {
            Some((_, host)) => format!("<redacted>@{host}"),
            None => raw.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &str) -> Result<Target, NotifierError> {
        parse_target(raw)
    }

    #[test]
    fn appends_the_alerts_path() {
        let t = one("http://127.0.0.1:9093").unwrap();
        assert_eq!(t.url.as_str(), "http://127.0.0.1:9093/api/v2/alerts");
        let t = one("http://am:9093/alertmanager/").unwrap();
        assert_eq!(t.url.as_str(), "http://am:9093/alertmanager/api/v2/alerts");
        assert_eq!(t.label, "http://am:9093/alertmanager/api/v2/alerts");
    }

    #[test]
    fn keeps_credentials_out_of_the_label() {
        let t = one("http://user:s3cret@am:9093").unwrap();
        assert_eq!(t.url.as_str(), "http://user:s3cret@am:9093/api/v2/alerts");
        assert_eq!(t.label, "http://am:9093/api/v2/alerts");
        assert_eq!(format!("{t:?}"), "http://am:9093/api/v2/alerts");
    }

    #[test]
    fn rejects_bad_urls_without_leaking_passwords() {
        for bad in [
            "am:9093",
            "ftp://am",
            "https://am:9093",
            "http://am:9093/?x=1",
            "http://user:s3cret@am:9093/#frag",
            "not a url",
        ] {
            let err = one(bad).unwrap_err().to_string();
            assert!(!err.contains("s3cret"), "{err}");
        }
        assert!(matches!(
            one("https://am"),
            Err(NotifierError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn drops_duplicates() {
        let urls = ["http://am:9093".to_string(), "http://am:9093/".to_string()];
        assert_eq!(parse_targets(&urls).unwrap().len(), 1);
    }

    #[test]
    fn validates_config() {
        assert!(NotifierConfig::default().validate().is_ok());
        let bad = [
            NotifierConfig {
                queue_capacity: 0,
                ..Default::default()
            },
            NotifierConfig {
                max_batch_size: 0,
                ..Default::default()
            },
            NotifierConfig {
                timeout: Duration::ZERO,
                ..Default::default()
            },
            NotifierConfig {
                external_labels: [("1x".to_string(), "v".to_string())].into(),
                ..Default::default()
            },
            NotifierConfig {
                external_labels: [("x".to_string(), String::new())].into(),
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(
                matches!(c.validate(), Err(NotifierError::InvalidConfig(_))),
                "{c:?}"
            );
        }
    }
}
