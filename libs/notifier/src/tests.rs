//! Delivery against in-process fake Alertmanagers.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{Alert, NotifierConfig, NotifierError, NotifierManager, NotifierMetrics};

/// One request a fake Alertmanager received.
#[derive(Clone, Debug)]
struct Captured {
    method: Method,
    path: String,
    tenant: Option<String>,
    content_type: Option<String>,
    authorization: Option<String>,
    body: serde_json::Value,
}

impl Captured {
    fn alert_names(&self) -> Vec<String> {
        self.body
            .as_array()
            .expect("body is a JSON array")
            .iter()
            .map(|a| {
                a["labels"]["alertname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

#[derive(Clone)]
struct FakeState {
    requests: Arc<Mutex<Vec<Captured>>>,
    status: Arc<AtomicU16>,
    delay: Arc<Mutex<Duration>>,
    gate: watch::Receiver<bool>,
}

/// An Alertmanager stand-in on 127.0.0.1 that records every request and
/// answers with a settable status, after a settable delay, once its gate
/// is open.
struct FakeAm {
    addr: SocketAddr,
    state: FakeState,
    gate: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeAm {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (gate, gate_rx) = watch::channel(true);
        let state = FakeState {
            requests: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            delay: Arc::default(),
            gate: gate_rx,
        };
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            state,
            gate,
            server,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Captured> {
        self.state.requests.lock().clone()
    }

    fn alert_names(&self) -> Vec<String> {
        self.requests()
            .iter()
            .flat_map(Captured::alert_names)
            .collect()
    }

    fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock() = delay;
    }

    fn set_gate(&self, open: bool) {
        self.gate.send_replace(open);
    }
}

impl Drop for FakeAm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    axum::extract::State(state): axum::extract::State<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    state.requests.lock().push(Captured {
        method,
        path: uri.path().to_string(),
        tenant: header("x-scope-orgid"),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    let mut gate = state.gate.clone();
    while !*gate.borrow_and_update() {
        if gate.changed().await.is_err() {
            break;
        }
    }
    let delay = *state.delay.lock();
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(state.status.load(Ordering::SeqCst))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A URL nothing listens on.
async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn alert(name: &str) -> Alert {
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    Alert {
        labels: [("alertname".to_string(), name.to_string())].into(),
        annotations: BTreeMap::new(),
        starts_at: start,
        ends_at: Some(start + Duration::from_secs(240)),
        generator_url: String::new(),
    }
}

fn alerts(prefix: &str, n: usize) -> Vec<Alert> {
    (0..n).map(|i| alert(&format!("{prefix}{i}"))).collect()
}

fn names(prefix: &str, range: impl Iterator<Item = usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// A manager whose metrics are registered the way the app registers them.
struct Harness {
    manager: NotifierManager,
    registry: Registry,
}

impl Harness {
    fn new(config: NotifierConfig) -> Self {
        let metrics = NotifierMetrics::default();
        let mut registry = Registry::default();
        metrics.register(registry.sub_registry_with_prefix("strata"));
        let manager = NotifierManager::new(config, metrics).unwrap();
        Self { manager, registry }
    }

    fn with_urls(urls: Vec<String>) -> Self {
        Self::new(NotifierConfig {
            alertmanager_urls: urls,
            ..Default::default()
        })
    }

    fn exposition(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    /// The value of the series `name{labels}`, if exposed.
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let series = if labels.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", labels.join(","))
        };
        self.exposition().lines().find_map(|line| {
            let value = line.strip_prefix(&series)?.strip_prefix(' ')?;
            value.split_whitespace().next()?.parse().ok()
        })
    }

    fn sent(&self, tenant: &str, am: &FakeAm) -> f64 {
        self.am_metric("sent", tenant, &am.url())
    }

    fn errors(&self, tenant: &str, base: &str) -> f64 {
        self.am_metric("errors", tenant, base)
    }

    fn am_metric(&self, what: &str, tenant: &str, base: &str) -> f64 {
        let endpoint = format!("{base}/api/v2/alerts");
        self.metric(
            &format!("strata_ruler_notifications_{what}_total"),
            &[("tenant", tenant), ("alertmanager", &endpoint)],
        )
        .unwrap_or(0.0)
    }

    fn dropped(&self, tenant: &str) -> f64 {
        self.metric(
            "strata_ruler_notifications_dropped_total",
            &[("tenant", tenant)],
        )
        .unwrap_or(0.0)
    }
}

/// Polls `check` until it holds, failing after 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `f`, failing if it takes more than `limit`.
async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} took more than {limit:?}"),
    }
}

#[tokio::test]
async fn sends_batches_of_at_most_max_batch_size_in_order() {
    let am = FakeAm::start().await;
    let h = Harness::with_urls(vec![am.url()]);
    h.manager.send("team-a", alerts("a", 150));

    eventually("150 alerts delivered", || am.alert_names().len() == 150).await;
    let requests = am.requests();
    let sizes: Vec<usize> = requests.iter().map(|r| r.alert_names().len()).collect();
    assert_eq!(sizes, [64, 64, 22]);
    assert_eq!(am.alert_names(), names("a", 0..150));
    for r in &requests {
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/api/v2/alerts");
        assert_eq!(r.tenant.as_deref(), Some("team-a"));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.authorization, None);
    }
    eventually("sent counted", || h.sent("team-a", &am) == 150.0).await;
    assert_eq!(h.dropped("team-a"), 0.0);
    assert_eq!(
        h.metric(
            "strata_ruler_notifications_queue_length",
            &[("tenant", "team-a")]
        ),
        Some(0.0)
    );
    assert_eq!(
        h.metric("strata_ruler_notifications_queue_capacity", &[]),
        Some(10_000.0)
    );
    assert_eq!(
        h.metric("strata_ruler_notification_latency_seconds_count", &[]),
        Some(3.0)
    );
}

#[tokio::test]
async fn posts_alertmanager_v2_json_under_the_base_path() {
    let am = FakeAm::start().await;
    let h = Harness::with_urls(vec![format!("{}/alertmanager/", am.url())]);
    let start = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    let firing = Alert {
        labels: [("alertname", "HighLatency"), ("job", "api")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        annotations: [("summary".to_string(), "p99 > 1s".to_string())].into(),
        starts_at: start,
        ends_at: Some(start + Duration::from_secs(240)),
        generator_url: "http://ruler/graph?g0.expr=up".into(),
    };
    let open_ended = Alert {
        ends_at: None,
        generator_url: String::new(),
        annotations: BTreeMap::new(),
        ..alert("NoEnd")
    };
    h.manager.send("team-a", vec![firing, open_ended]);

    eventually("a request", || !am.requests().is_empty()).await;
    let r = &am.requests()[0];
    assert_eq!(r.path, "/alertmanager/api/v2/alerts");
    assert_eq!(
        r.body,
        serde_json::json!([
            {
                "labels": {"alertname": "HighLatency", "job": "api"},
                "annotations": {"summary": "p99 > 1s"},
                "startsAt": "2023-11-14T22:13:20.123Z",
                "endsAt": "2023-11-14T22:17:20.123Z",
                "generatorURL": "http://ruler/graph?g0.expr=up",
            },
            {
                "labels": {"alertname": "NoEnd"},
                "annotations": {},
                "startsAt": "2023-11-14T22:13:20.000Z",
            },
        ])
    );
}

#[tokio::test]
async fn full_queue_drops_the_oldest_alerts_and_counts_them() {
    let am = FakeAm::start().await;
    let h = Harness::new(NotifierConfig {
        alertmanager_urls: vec![am.url()],
        queue_capacity: 4,
        max_batch_size: 2,
        ..Default::default()
    });
    // Hold the first batch at the Alertmanager so the queue fills up.
    am.set_gate(false);
    h.manager.send("t", alerts("a", 2));
    eventually("first batch in flight", || am.requests().len() == 1).await;

    h.manager
        .send("t", names("a", 2..8).iter().map(|n| alert(n)).collect());
    assert_eq!(h.manager.queue_len("t"), 4);
    assert_eq!(h.dropped("t"), 2.0);
    assert_eq!(
        h.metric(
            "strata_ruler_notifications_queue_length",
            &[("tenant", "t")]
        ),
        Some(4.0)
    );

    am.set_gate(true);
    eventually("the rest delivered", || am.alert_names().len() == 6).await;
    assert_eq!(am.alert_names(), ["a0", "a1", "a4", "a5", "a6", "a7"]);
    eventually("sent counted", || h.sent("t", &am) == 6.0).await;
    assert_eq!(h.dropped("t"), 2.0);
}

#[tokio::test]
async fn a_send_larger_than_the_queue_keeps_its_newest_alerts() {
    let am = FakeAm::start().await;
    let h = Harness::new(NotifierConfig {
        alertmanager_urls: vec![am.url()],
        queue_capacity: 10,
        ..Default::default()
    });
    h.manager.send("t", alerts("a", 25));
    eventually("10 alerts delivered", || am.alert_names().len() == 10).await;
    assert_eq!(am.alert_names(), names("a", 15..25));
    assert_eq!(h.dropped("t"), 15.0);
}

#[tokio::test]
async fn tenants_can_override_the_alertmanagers() {
    let default_am = FakeAm::start().await;
    let other_am = FakeAm::start().await;
    let h = Harness::with_urls(vec![default_am.url()]);
    h.manager
        .set_tenant_urls("team-b", Some(vec![other_am.url()]))
        .unwrap();
    assert_eq!(
        h.manager.alertmanagers("team-b"),
        [format!("{}/api/v2/alerts", other_am.url())]
    );
    assert_eq!(
        h.manager.alertmanagers("team-a"),
        [format!("{}/api/v2/alerts", default_am.url())]
    );

    h.manager.send("team-a", vec![alert("A")]);
    h.manager.send("team-b", vec![alert("B")]);
    eventually("both delivered", || {
        default_am.requests().len() == 1 && other_am.requests().len() == 1
    })
    .await;
    let a = &default_am.requests()[0];
    assert_eq!(
        (a.tenant.as_deref(), a.alert_names()),
        (Some("team-a"), vec!["A".to_string()])
    );
    let b = &other_am.requests()[0];
    assert_eq!(
        (b.tenant.as_deref(), b.alert_names()),
        (Some("team-b"), vec!["B".to_string()])
    );

    // Back to the default list.
    h.manager.set_tenant_urls("team-b", None).unwrap();
    h.manager.send("team-b", vec![alert("B2")]);
    eventually("delivered to the default", || {
        default_am.requests().len() == 2
    })
    .await;
    assert_eq!(default_am.requests()[1].tenant.as_deref(), Some("team-b"));
    assert_eq!(other_am.requests().len(), 1);

    // An empty override sends nowhere: the alerts are dropped.
    h.manager.set_tenant_urls("team-b", Some(vec![])).unwrap();
    h.manager.send("team-b", vec![alert("B3")]);
    eventually("dropped", || h.dropped("team-b") == 1.0).await;
}

#[tokio::test]
async fn one_alertmanager_down_still_counts_as_sent() {
    let up = FakeAm::start().await;
    let down = closed_url().await;
    let h = Harness::with_urls(vec![down.clone(), up.url()]);
    h.manager.send("t", alerts("a", 3));

    eventually("errors counted for the down one", || {
        h.errors("t", &down) == 3.0
    })
    .await;
    assert_eq!(h.sent("t", &up), 3.0);
    assert_eq!(h.am_metric("sent", "t", &down), 0.0);
    assert_eq!(h.errors("t", &up.url()), 0.0);
    assert_eq!(h.dropped("t"), 0.0);
    assert_eq!(up.alert_names(), names("a", 0..3));
}

#[tokio::test]
async fn every_alertmanager_failing_drops_the_batch() {
    let failing = FakeAm::start().await;
    failing.set_status(500);
    let down = closed_url().await;
    let h = Harness::with_urls(vec![failing.url(), down.clone()]);
    h.manager.send("t", alerts("a", 5));

    eventually("dropped counted", || h.dropped("t") == 5.0).await;
    assert_eq!(h.errors("t", &failing.url()), 5.0);
    assert_eq!(h.errors("t", &down), 5.0);
    assert_eq!(h.sent("t", &failing), 0.0);
    // Not retried.
    assert_eq!(failing.requests().len(), 1);

    // 4xx is an error too; 2xx other than 200 is success.
    failing.set_status(400);
    h.manager.send("t", alerts("b", 1));
    eventually("400 counted", || h.errors("t", &failing.url()) == 6.0).await;
    failing.set_status(202);
    h.manager.send("t", alerts("c", 1));
    eventually("202 counted as sent", || h.sent("t", &failing) == 1.0).await;
}

#[tokio::test]
async fn a_slow_alertmanager_is_bounded_by_the_timeout() {
    let slow = FakeAm::start().await;
    slow.set_delay(Duration::from_secs(60));
    let fast = FakeAm::start().await;
    let h = Harness::new(NotifierConfig {
        alertmanager_urls: vec![slow.url(), fast.url()],
        timeout: Duration::from_millis(300),
        ..Default::default()
    });

    let started = Instant::now();
    h.manager.send("t", vec![alert("first")]);
    eventually("the slow one timed out", || {
        h.errors("t", &slow.url()) == 1.0
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(h.sent("t", &fast), 1.0);
    assert_eq!(h.dropped("t"), 0.0);

    // The queue keeps moving.
    h.manager.send("t", vec![alert("second")]);
    eventually("second delivered", || h.sent("t", &fast) == 2.0).await;
    assert_eq!(fast.alert_names(), ["first", "second"]);
    eventually("second timed out too", || h.errors("t", &slow.url()) == 2.0).await;
}

#[tokio::test]
async fn external_labels_are_added_where_missing() {
    let am = FakeAm::start().await;
    let h = Harness::new(NotifierConfig {
        alertmanager_urls: vec![am.url()],
        external_labels: [("cluster", "eu1"), ("replica", "a")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        ..Default::default()
    });
    let mut own = alert("Own");
    own.labels.insert("cluster".into(), "us1".into());
    h.manager.send("t", vec![own, alert("Bare")]);

    eventually("delivered", || am.alert_names().len() == 2).await;
    let body = &am.requests()[0].body;
    assert_eq!(
        body[0]["labels"],
        serde_json::json!({"alertname": "Own", "cluster": "us1", "replica": "a"})
    );
    assert_eq!(
        body[1]["labels"],
        serde_json::json!({"alertname": "Bare", "cluster": "eu1", "replica": "a"})
    );
}

#[tokio::test]
async fn credentials_in_the_url_become_basic_auth_and_stay_out_of_labels() {
    let am = FakeAm::start().await;
    let url = format!("http://admin:s3cret@{}", am.addr);
    let h = Harness::with_urls(vec![url]);
    h.manager.send("t", vec![alert("a")]);

    eventually("delivered", || !am.requests().is_empty()).await;
    // base64("admin:s3cret")
    assert_eq!(
        am.requests()[0].authorization.as_deref(),
        Some("Basic YWRtaW46czNjcmV0")
    );
    eventually("sent counted", || h.sent("t", &am) == 1.0).await;
    assert!(!h.exposition().contains("s3cret"));
    assert_eq!(
        h.manager.alertmanagers("t"),
        [format!("{}/api/v2/alerts", am.url())]
    );
}

#[tokio::test]
async fn stop_drains_the_queues_then_refuses_alerts() {
    let am = FakeAm::start().await;
    let h = Harness::new(NotifierConfig {
        alertmanager_urls: vec![am.url()],
        max_batch_size: 10,
        ..Default::default()
    });
    h.manager.send("t1", alerts("a", 200));
    h.manager.send("t2", alerts("b", 5));
    within(Duration::from_secs(10), "stop", h.manager.stop()).await;
    assert_eq!(am.alert_names().len(), 205);
    assert_eq!(h.sent("t1", &am), 200.0);
    assert_eq!(h.sent("t2", &am), 5.0);

    h.manager.send("t1", alerts("late", 3));
    assert_eq!(h.dropped("t1"), 3.0);
    h.manager.send("t3", alerts("late", 3));
    assert_eq!(h.manager.queue_len("t3"), 0);
    assert!(matches!(
        h.manager.set_tenant_urls("t4", Some(vec![am.url()])),
        Err(NotifierError::Stopped)
    ));
    // Stopping twice is fine.
    within(Duration::from_secs(1), "second stop", h.manager.stop()).await;
    assert_eq!(am.alert_names().len(), 205);
}

#[tokio::test]
async fn stop_gives_up_draining_after_the_drain_timeout() {
    let stuck = FakeAm::start().await;
    stuck.set_gate(false);
    let h = Harness::new(NotifierConfig {
        alertmanager_urls: vec![stuck.url()],
        max_batch_size: 2,
        timeout: Duration::from_secs(60),
        drain_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    h.manager.send("t", alerts("a", 2));
    eventually("first batch in flight", || stuck.requests().len() == 1).await;
    h.manager.send("t", alerts("b", 5));

    within(Duration::from_secs(5), "bounded stop", h.manager.stop()).await;
    assert_eq!(h.dropped("t"), 7.0);
    assert_eq!(h.manager.queue_len("t"), 0);
}

#[tokio::test]
async fn dropping_the_manager_still_drains_in_the_background() {
    let am = FakeAm::start().await;
    let Harness {
        manager,
        registry: _registry,
    } = Harness::with_urls(vec![am.url()]);
    manager.send("t", alerts("a", 100));
    drop(manager);
    eventually("drained after drop", || am.alert_names().len() == 100).await;
}

#[tokio::test]
async fn removing_a_tenant_deletes_its_series() {
    let am = FakeAm::start().await;
    let h = Harness::with_urls(vec![am.url()]);
    h.manager.send("gone", vec![alert("a")]);
    h.manager.send("kept", vec![alert("b")]);
    eventually("sent", || {
        h.sent("gone", &am) == 1.0 && h.sent("kept", &am) == 1.0
    })
    .await;

    h.manager.remove_tenant("gone");
    let text = h.exposition();
    assert!(!text.contains("tenant=\"gone\""), "{text}");
    assert!(text.contains("tenant=\"kept\""));

    // It comes back afresh.
    h.manager.send("gone", vec![alert("c")]);
    eventually("sent again", || h.sent("gone", &am) == 1.0).await;
}

#[tokio::test]
async fn no_alertmanagers_means_dropped() {
    let h = Harness::with_urls(vec![]);
    h.manager.send("t", alerts("a", 3));
    eventually("dropped", || h.dropped("t") == 3.0).await;
    assert!(h.manager.alertmanagers("t").is_empty());
}

#[tokio::test]
async fn invalid_input_is_rejected() {
    let am = FakeAm::start().await;
    let h = Harness::with_urls(vec![am.url()]);
    assert!(matches!(
        h.manager
            .set_tenant_urls("bad tenant", Some(vec![am.url()])),
        Err(NotifierError::InvalidTenant { .. })
    ));
    assert!(matches!(
        h.manager
            .set_tenant_urls("t", Some(vec!["https://am".into()])),
        Err(NotifierError::InvalidUrl { .. })
    ));
    // Invalid tenants are logged and discarded, never put in labels.
    h.manager.send("bad\ntenant", vec![alert("a")]);
    assert!(!h.exposition().contains("bad"));

    // Alerts whose times Alertmanager could not parse are dropped alone.
    let mut far = alert("far");
    far.starts_at = UNIX_EPOCH + Duration::from_secs(400_000 * 365 * 86_400);
    h.manager.send("t", vec![far, alert("ok")]);
    eventually("ok delivered", || am.alert_names() == ["ok"]).await;
    assert_eq!(h.dropped("t"), 1.0);

    let err = NotifierManager::new(
        NotifierConfig {
            alertmanager_urls: vec!["http://u:pw@[::1".into()],
            ..Default::default()
        },
        NotifierMetrics::default(),
    )
    .err()
    .expect("invalid URL");
    assert!(!err.to_string().contains("pw"), "{err}");
}

#[test]
fn new_needs_a_runtime() {
    let result = NotifierManager::new(NotifierConfig::default(), NotifierMetrics::default());
    assert!(matches!(result, Err(NotifierError::NoRuntime)));
}

#[tokio::test]
async fn send_never_waits_for_alertmanager() {
    let stuck = FakeAm::start().await;
    stuck.set_gate(false);
    let h = Harness::new(NotifierConfig {
        alertmanager_urls: vec![stuck.url()],
        queue_capacity: 100,
        max_batch_size: 1,
        drain_timeout: Duration::from_millis(100),
        ..Default::default()
    });
    let started = SystemTime::now();
    for i in 0..1000 {
        h.manager.send("t", vec![alert(&format!("a{i}"))]);
    }
    assert!(started.elapsed().unwrap() < Duration::from_secs(2));
    assert!(h.manager.queue_len("t") <= 100);
    within(Duration::from_secs(5), "stop", h.manager.stop()).await;
}
