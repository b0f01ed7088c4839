//! Delivery to a real Alertmanager (0.25, the Debian package
//! `prometheus-alertmanager`). The binary is `$ALERTMANAGER_BIN`, else
//! `/usr/bin/prometheus-alertmanager`; the test fails when it is missing.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use prometheus_client::registry::Registry;
use serde_json::Value;
use strata_notifier::{Alert, NotifierConfig, NotifierManager, NotifierMetrics};
use tokio::time::Instant;

const DEFAULT_BIN: &str = "/usr/bin/prometheus-alertmanager";
const CONFIG: &str = "route:\n  receiver: default\nreceivers:\n  - name: default\n";

/// A running Alertmanager, killed when dropped (also when a test panics).
struct Alertmanager {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    fn binary() -> PathBuf {
        let bin = std::env::var_os("ALERTMANAGER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
        assert!(
            bin.is_file(),
            "Alertmanager binary {} not found: install the Debian package prometheus-alertmanager \
             or set ALERTMANAGER_BIN to an Alertmanager 0.25+ binary",
            bin.display()
        );
        bin
    }

    /// Starts Alertmanager on a free port and waits until it is ready.
    /// Retries with another port if the one picked was taken meanwhile.
    async fn start() -> Self {
        let bin = Self::binary();
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("am.yml");
            std::fs::write(&config, CONFIG).unwrap();
            let port = free_port();
            let log = File::create(dir.path().join("am.log")).unwrap();
            let child = Command::new(&bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut am = Alertmanager {
                child,
                url: format!("http://127.0.0.1:{port}"),
                dir,
            };
            if am.wait_ready().await {
                return am;
            }
            last_log = am.log();
        }
        panic!("Alertmanager did not start; its last log:\n{last_log}");
    }

    /// Polls `/-/ready` for up to 30 s; false if the process exits first.
    async fn wait_ready(&mut self) -> bool {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("Alertmanager exited with {status}");
                return false;
            }
            let ready = client
                .get(format!("{}/-/ready", self.url))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager not ready after 30 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default()
    }

    /// `GET /api/v2/alerts` with a query, as JSON.
    async fn alerts(&self, query: &str) -> Vec<Value> {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v2/alerts?{query}", self.url))
            .send()
            .await
            .expect("GET /api/v2/alerts");
        assert!(
            response.status().is_success(),
            "GET /api/v2/alerts: {}",
            response.status()
        );
        match response.json::<Value>().await.expect("JSON alerts") {
            Value::Array(alerts) => alerts,
            other => panic!("expected an array of alerts, got {other}"),
        }
    }

    /// Polls `query` until `check` holds, for up to 20 s.
    async fn poll(&self, what: &str, query: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let alerts = self.alerts(query).await;
            if check(&alerts) {
                return alerts;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer: {alerts:?}\nAlertmanager log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().unwrap().port()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn metric(registry: &Registry, series: &str) -> Option<f64> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_then_resolved_alert_reaches_a_real_alertmanager() {
    let am = Alertmanager::start().await;
    let metrics = NotifierMetrics::default();
    let mut registry = Registry::default();
    metrics.register(registry.sub_registry_with_prefix("strata"));
    let manager = NotifierManager::new(
        NotifierConfig {
            alertmanager_urls: vec![am.url.clone()],
            external_labels: map(&[("cluster", "test")]),
            ..Default::default()
        },
        metrics,
    )
    .unwrap();

    let now = SystemTime::now();
    let firing = Alert {
        labels: map(&[("alertname", "StrataNotifierTest"), ("severity", "page")]),
        annotations: map(&[("summary", "it works"), ("runbook", "none")]),
        starts_at: now - Duration::from_secs(60),
        ends_at: Some(now + Duration::from_secs(3600)),
        generator_url: "http://ruler.example/graph?g0.expr=up".into(),
    };
    manager.send("team-a", vec![firing.clone()]);

    let filter = "filter=alertname%3D%22StrataNotifierTest%22";
    let alerts = am
        .poll("the firing alert", filter, |alerts| alerts.len() == 1)
        .await;
    let got = &alerts[0];
    assert_eq!(
        got["labels"],
        serde_json::json!({"alertname": "StrataNotifierTest", "severity": "page", "cluster": "test"})
    );
    assert_eq!(
        got["annotations"],
        serde_json::json!({"summary": "it works", "runbook": "none"})
    );
    assert_eq!(got["generatorURL"], "http://ruler.example/graph?g0.expr=up");
    assert_eq!(got["status"]["state"], "active");
    let endpoint = format!("{}/api/v2/alerts", am.url);
    let sent = format!(
        "strata_ruler_notifications_sent_total{{tenant=\"team-a\",alertmanager=\"{endpoint}\"}}"
    );
    // Alertmanager stores the alert before it answers: the count may lag.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&registry, &sent) != Some(1.0) {
        assert!(Instant::now() < deadline, "sent_total never reached 1");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Resolved: the same alert with endsAt in the past.
    let resolved = Alert {
        ends_at: Some(SystemTime::now() - Duration::from_secs(1)),
        ..firing
    };
    manager.send("team-a", vec![resolved]);
    am.poll(
        "the alert to be resolved",
        &format!("{filter}&active=true"),
        |alerts| alerts.is_empty(),
    )
    .await;
    // Resolved alerts are not listed at all, whatever the filters.
    assert!(am.alerts(filter).await.is_empty());

    manager.stop().await;
    assert_eq!(metric(&registry, &sent), Some(2.0));
    let errors = format!(
        "strata_ruler_notifications_errors_total{{tenant=\"team-a\",alertmanager=\"{endpoint}\"}}"
    );
    assert_eq!(metric(&registry, &errors), Some(0.0));
    assert_eq!(
        metric(
            &registry,
            "strata_ruler_notifications_dropped_total{tenant=\"team-a\"}"
        ),
        Some(0.0)
    );
}
