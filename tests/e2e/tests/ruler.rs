//! The ruler end to end: rule files uploaded through the API, recording
//! results compared with what a real Prometheus 2.42 computes over the same
//! data, alerts through pending and firing into a real Alertmanager 0.25
//! and resolved again, tenants kept apart, and groups shared by two ruler
//! replicas that take over from each other.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_e2e::*;

fn alertmanager_bin() -> PathBuf {
    std::env::var("ALERTMANAGER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/bin/prometheus-alertmanager"))
}

/// A real Alertmanager on 127.0.0.1 (clustering off).
struct Alertmanager {
    /// Killed on drop.
    _proc: Proc,
    base: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    async fn start() -> Alertmanager {
        let bin = alertmanager_bin();
        assert!(
            bin.exists(),
            "{} missing: install the Debian package prometheus-alertmanager (make test does) or set ALERTMANAGER_BIN",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: default\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: default\n",
        )
        .unwrap();
        let data = dir.path().join("data");
        let (proc, base) = start_http_server(
            "alertmanager",
            &bin,
            |port| {
                vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.path={}", data.display()),
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    "--cluster.listen-address=".to_string(),
                ]
            },
            "/-/ready",
        )
        .await
        .expect("alertmanager starts");
        Alertmanager {
            _proc: proc,
            base,
            _dir: dir,
        }
    }

    /// The active alerts Alertmanager holds.
    async fn alerts(&self, client: &reqwest::Client) -> Vec<Value> {
        let resp = client
            .get(format!("{}/api/v2/alerts", self.base))
            .send()
            .await
            .expect("alertmanager alerts");
        let body: Value = resp.json().await.expect("alertmanager json");
        body.as_array().cloned().unwrap_or_default()
    }
}

/// A real Prometheus 2.42 receiving remote writes and evaluating `rules`.
struct Prometheus {
    /// Killed on drop.
    _proc: Proc,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(rules: &str) -> Prometheus {
        let bin = prometheus_bin();
        assert!(
            bin.exists(),
            "{} missing: install the Debian package prometheus",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        std::fs::write(
            dir.path().join("prometheus.yml"),
            "global:\n  evaluation_interval: 2s\nrule_files:\n  - rules.yml\n",
        )
        .unwrap();
        let (config, data) = (dir.path().join("prometheus.yml"), dir.path().join("data"));
        let (proc, base) = start_http_server(
            "prometheus-rules",
            &bin,
            |port| {
                vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.tsdb.path={}", data.display()),
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    "--web.enable-remote-write-receiver".to_string(),
                ]
            },
            "/-/ready",
        )
        .await
        .expect("prometheus starts");
        Prometheus {
            _proc: proc,
            base,
            _dir: dir,
        }
    }

    async fn query(&self, client: &reqwest::Client, expr: &str, t_ms: i64) -> Value {
        let resp = client
            .get(format!("{}/api/v1/query", self.base))
            .query(&[
                ("query", expr),
                ("time", &format!("{:.3}", t_ms as f64 / 1000.0)),
            ])
            .send()
            .await
            .expect("query prometheus");
        let body: Value = resp.json().await.expect("prometheus json");
        assert_eq!(body["status"], "success", "{body}");
        body["data"]["result"].clone()
    }
}

/// `{labels} -> [(t_ms, v)]` of a matrix result.
fn matrix(result: &Value) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for s in result.as_array().into_iter().flatten() {
        let labels = strata_model::Labels::from_pairs(
            s["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
        );
        let values = s["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap_or_default() * 1000.0).round() as i64,
                    parse_prom_value(p[1].as_str().unwrap_or("NaN")),
                )
            })
            .collect();
        out.insert(labels.to_string(), values);
    }
    out
}

/// `{labels} -> v` of a vector result.
fn vector(result: &Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in result.as_array().into_iter().flatten() {
        let labels = strata_model::Labels::from_pairs(
            s["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
        );
        out.insert(
            labels.to_string(),
            parse_prom_value(s["value"][1].as_str().unwrap_or("NaN")),
        );
    }
    out
}

async fn upload(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    namespace: &str,
    group: &str,
) -> (u16, String) {
    let resp = client
        .post(format!("{base}/prometheus/config/v1/rules/{namespace}"))
        .header("X-Scope-OrgID", tenant)
        .header("Content-Type", "application/yaml")
        .body(group.to_string())
        .send()
        .await
        .expect("upload rules");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

async fn query_at(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    expr: &str,
    t_ms: i64,
) -> Value {
    let t = format!("{:.3}", t_ms as f64 / 1000.0);
    let answer = api_get(
        client,
        base,
        "/prometheus/api/v1/query",
        Some(tenant),
        &[("query", expr), ("time", &t)],
    )
    .await
    .expect("query strata");
    success(&answer)["result"].clone()
}

/// Pushes one sample per series at `t_ms` to Strata (as `tenant`) and to
/// Prometheus's remote-write receiver.
async fn push_both(
    client: &reqwest::Client,
    strata: &str,
    tenants: &[&str],
    prometheus: &str,
    series: &[OwnedSeriesSpec],
    t_ms: i64,
) {
    let owned: Vec<_> = series
        .iter()
        .map(|(labels, v)| {
            let l: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            strata_e2e::series(&l, &[(t_ms, *v)])
        })
        .collect();
    let body = write_body(&owned);
    for tenant in tenants {
        push_ok(client, strata, Some(tenant), body.clone()).await;
    }
    let resp = client
        .post(format!("{prometheus}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .expect("push to prometheus");
    assert!(
        resp.status().is_success(),
        "prometheus refused a write: {}",
        resp.status()
    );
}

type OwnedSeriesSpec = (Vec<(String, String)>, f64);

/// A series (labels sorted by name, as remote write wants) and its value.
fn spec(labels: &[(&str, &str)], v: f64) -> OwnedSeriesSpec {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (labels, v)
}

const RECORDING_GROUP: &str = r#"name: recording
interval: 2s
rules:
  - record: job:demo_requests:rate30s
    expr: sum by (job) (rate(demo_requests_total[30s]))
  - record: room:demo_temperature:max2
    expr: max by (room) (demo_temperature) * 2
    labels:
      source: ruler
"#;

const ALERT_GROUP: &str = r#"name: alerts
interval: 1s
rules:
  - alert: HotRoom
    expr: demo_temperature > 30
    for: 3s
    labels:
      severity: page
    annotations:
      summary: "Room {{ $labels.room }} is at {{ $value }} degrees"
"#;

/// Acceptance 1, 2 and 5 in the one-process mode: rules uploaded through
/// the API of a `strata` with no ruler configuration besides where to send
/// alerts, recording results equal to Prometheus 2.42's, an alert pending,
/// firing, in Alertmanager, resolved; and a second tenant with the same
/// names that sees only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_match_prometheus_and_alerts_reach_alertmanager() {
    let client = reqwest::Client::new();
    let am = Alertmanager::start().await;
    let am_flag = format!("--ruler.alertmanager-urls=[{}]", am.base);
    let mut strata = start_strata("strata-ruler", &[&am_flag, "--ruler.resend-delay=1s"]).await;
    let base = strata.http();
    // Prometheus evaluates the same recording rules over the same data.
    let prom_rules = format!(
        "groups:\n  - {}",
        RECORDING_GROUP.replace('\n', "\n    ").trim_end()
    );
    let prom = Prometheus::start(&prom_rules).await;

    // The recording group is evaluated one second in the past
    // (`query_offset`), so every sample it reads has arrived.
    let ours = RECORDING_GROUP.replacen("interval: 2s\n", "interval: 2s\nquery_offset: 1s\n", 1);
    assert_eq!(upload(&client, &base, "team-a", "ns1", &ours).await.0, 202);
    assert_eq!(
        upload(&client, &base, "team-a", "ns1", ALERT_GROUP).await.0,
        202
    );
    // The second tenant: same namespace, group and rule names, other
    // expressions.
    let other = "name: recording\ninterval: 2s\nrules:\n  - record: job:demo_requests:rate30s\n    expr: vector(42)\n";
    assert_eq!(upload(&client, &base, "team-b", "ns1", other).await.0, 202);

    // Data: two counters and two rooms; "lab" heats up for a while.
    let started = Instant::now();
    let mut counter = 0.0;
    // Each sample is pushed 300 ms before its timestamp, so that whenever
    // either system evaluates a rule at time T, every sample up to T has
    // arrived: neither reads a half-arrived second.
    let mut t_ms = (now_ms() / 1000) * 1000 + 1337;
    let mut seen_pending = false;
    let mut seen_firing = false;
    let mut in_alertmanager = None;
    let mut resolved = false;
    let mut cooled_at = None;
    // (sample timestamp, when its push had reached both systems).
    let mut pushed: Vec<(i64, i64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(90) {
        let wait = t_ms - 300 - now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let elapsed = started.elapsed().as_secs();
        // Hot from 35 s until the alert reached Alertmanager (at least
        // 10 s), then cool again.
        let hot = elapsed >= 35 && cooled_at.is_none();
        if hot && in_alertmanager.is_some() && elapsed >= 45 {
            cooled_at = Some(Instant::now());
        }
        // Counters start at 0: where a series starts inside a rate's window
        // with a value above 0, Prometheus 2.42 and 3 (whose semantics we
        // follow) extrapolate towards the counter's zero point differently.
        let value = counter;
        counter += 7.0 + (elapsed % 5) as f64;
        let series = vec![
            spec(
                &[
                    ("__name__", "demo_requests_total"),
                    ("job", "api"),
                    ("instance", "a"),
                ],
                value,
            ),
            spec(
                &[
                    ("__name__", "demo_requests_total"),
                    ("job", "api"),
                    ("instance", "b"),
                ],
                value * 2.0,
            ),
            spec(
                &[
                    ("__name__", "demo_requests_total"),
                    ("job", "db"),
                    ("instance", "a"),
                ],
                value / 3.0,
            ),
            spec(
                &[("__name__", "demo_temperature"), ("room", "lab")],
                if hot { 40.0 } else { 20.0 },
            ),
            spec(&[("__name__", "demo_temperature"), ("room", "hall")], 21.5),
        ];
        push_both(
            &client,
            &base,
            &["team-a", "team-b"],
            &prom.base,
            &series,
            t_ms,
        )
        .await;
        pushed.push((t_ms, now_ms()));

        // Alert state as our API shows it.
        let alerts = api_get(
            &client,
            &base,
            "/prometheus/api/v1/alerts",
            Some("team-a"),
            &[],
        )
        .await
        .expect("alerts API");
        let alerts = success(&alerts)["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for a in &alerts {
            assert_eq!(a["labels"]["alertname"], "HotRoom", "{a}");
            assert_eq!(a["labels"]["room"], "lab", "{a}");
            match a["state"].as_str() {
                Some("pending") => seen_pending = true,
                Some("firing") => {
                    assert!(seen_pending || seen_firing, "firing before pending: {a}");
                    seen_firing = true;
                    assert_eq!(
                        a["annotations"]["summary"], "Room lab is at 40 degrees",
                        "{a}"
                    );
                }
                other => panic!("unexpected alert state {other:?}: {a}"),
            }
        }
        if seen_firing && in_alertmanager.is_none() {
            let held = am.alerts(&client).await;
            if let Some(a) = held.iter().find(|a| a["labels"]["alertname"] == "HotRoom") {
                in_alertmanager = Some(a.clone());
            }
        }
        if let Some(cooled) = cooled_at {
            let held = am.alerts(&client).await;
            let still = held.iter().any(|a| a["labels"]["alertname"] == "HotRoom");
            if alerts.is_empty() && !still {
                resolved = true;
                assert!(cooled.elapsed() < Duration::from_secs(30));
                if started.elapsed() > Duration::from_secs(70) {
                    break;
                }
            }
        }
        t_ms += 1000;
    }
    assert!(
        seen_pending,
        "the alert was never pending; log:\n{}",
        strata.proc.log_text()
    );
    assert!(
        seen_firing,
        "the alert never fired; log:\n{}",
        strata.proc.log_text()
    );
    let in_am = in_alertmanager.unwrap_or_else(|| {
        panic!(
            "the alert never reached Alertmanager; log:\n{}",
            strata.proc.log_text()
        )
    });
    assert_eq!(in_am["labels"]["room"], "lab", "{in_am}");
    assert_eq!(in_am["labels"]["severity"], "page", "{in_am}");
    assert_eq!(
        in_am["annotations"]["summary"], "Room lab is at 40 degrees",
        "{in_am}"
    );
    assert!(
        in_am["generatorURL"]
            .as_str()
            .unwrap_or_default()
            .contains("/graph?g0.expr="),
        "{in_am}"
    );
    assert!(
        resolved,
        "the alert did not resolve in Strata and Alertmanager after cooling"
    );

    // Recording results: every sample we wrote equals Prometheus's value of
    // the same expression at the same time over the same data.
    let end = now_ms();
    let rules = [
        (
            "job:demo_requests:rate30s",
            "sum by (job) (rate(demo_requests_total[30s]))",
        ),
        (
            "room:demo_temperature:max2",
            "max by (room) (demo_temperature) * 2",
        ),
    ];
    // Whether every sample up to `t` had arrived by `deadline` (wall
    // clock): an evaluation at `t` that ran before then read a second
    // that was still arriving (the push loop fell behind on a loaded
    // machine), which says nothing about either engine.
    let arrived = |t: i64, deadline: i64| {
        pushed
            .iter()
            .rev()
            .find(|(ts, _)| *ts <= t)
            .is_none_or(|(_, done)| *done <= deadline)
    };
    let mut compared = 0;
    let mut compared_theirs = 0;
    let mut late = 0;
    for (record, expr) in rules {
        let recorded =
            matrix(&query_at(&client, &base, "team-a", &format!("{record}[2m]"), end).await);
        assert!(
            !recorded.is_empty(),
            "no {record} recorded; log:\n{}",
            strata.proc.log_text()
        );
        for (labels, samples) in &recorded {
            assert!(
                samples.len() >= 20,
                "{labels}: only {} samples",
                samples.len()
            );
            for &(t, v) in samples {
                // Prometheus 2.42 closes range windows on the left, we (as
                // Prometheus 3) do not: a sample exactly at the window's
                // start would count for one and not the other.
                if (t - 337).rem_euclid(1000) == 0 {
                    continue;
                }
                // Evaluated one second (query_offset) after `t`.
                if !arrived(t, t + 1000) {
                    late += 1;
                    continue;
                }
                let theirs = vector(&prom.query(&client, expr, t).await);
                let mut want: Vec<(String, f64)> = theirs.into_iter().collect();
                // The recorded series carry the record name and rule labels.
                let key_matches = |l: &str| {
                    want.iter().position(|(k, _)| {
                        let inner = k.trim_start_matches('{').trim_end_matches('}');
                        inner.split(", ").all(|p| l.contains(p))
                    })
                };
                let i = key_matches(labels).unwrap_or_else(|| {
                    panic!("{labels} at {t}: Prometheus has no such series: {want:?}")
                });
                let (_, expected) = want.remove(i);
                if (v - expected).abs() > 1e-9 * expected.abs().max(1.0) {
                    let now_ours = query_at(&client, &base, "team-a", expr, t).await;
                    let raw_ours = query_at(
                        &client,
                        &base,
                        "team-a",
                        "demo_requests_total{job=\"api\"}[35s]",
                        t,
                    )
                    .await;
                    let raw_theirs = prom
                        .query(&client, "demo_requests_total{job=\"api\"}[35s]", t)
                        .await;
                    panic!("{labels} at {t}: ours {v}, Prometheus {expected}; our query now {now_ours}\nours raw {raw_ours}\ntheirs raw {raw_theirs}");
                }
                compared += 1;
            }
        }
        // And Prometheus's own recorded samples equal our expression's
        // value at its evaluation times.
        let theirs = matrix(&prom.query(&client, &format!("{record}[2m]"), end).await);
        assert!(!theirs.is_empty(), "Prometheus recorded no {record}");
        for (labels, samples) in &theirs {
            for &(t, v) in samples
                .iter()
                .filter(|(t, _)| (t - 337).rem_euclid(1000) != 0)
            {
                // Prometheus evaluates at `t`, without an offset.
                if !arrived(t, t) {
                    late += 1;
                    continue;
                }
                let ours = vector(&query_at(&client, &base, "team-a", expr, t).await);
                let got = ours
                    .iter()
                    .find(|(k, _)| {
                        let inner = k.trim_start_matches('{').trim_end_matches('}');
                        inner.split(", ").all(|p| labels.contains(p))
                    })
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| panic!("{labels} at {t}: we have no such series: {ours:?}"));
                assert!(
                    (v - got).abs() <= 1e-9 * v.abs().max(1.0),
                    "{labels} at {t}: Prometheus recorded {v}, our query gives {got}"
                );
                compared += 1;
                compared_theirs += 1;
            }
        }
    }
    eprintln!("{compared} recorded samples compared ({compared_theirs} of Prometheus's), {late} left out as evaluated before their data arrived");
    assert!(
        compared > 100 && compared_theirs > 20,
        "only {compared} samples compared ({compared_theirs} of Prometheus's; {late} evaluated before their data arrived)"
    );

    // ALERTS and ALERTS_FOR_STATE were written for the tenant.
    let alerts_series = matrix(&query_at(&client, &base, "team-a", "ALERTS[2m]", end).await);
    assert!(
        alerts_series
            .keys()
            .any(|k| k.contains("alertstate=\"firing\"")),
        "{alerts_series:?}"
    );
    assert!(
        alerts_series
            .keys()
            .any(|k| k.contains("alertstate=\"pending\"")),
        "{alerts_series:?}"
    );
    let for_state = matrix(&query_at(&client, &base, "team-a", "ALERTS_FOR_STATE[2m]", end).await);
    assert_eq!(for_state.len(), 1, "{for_state:?}");

    // Tenants apart: team-b's rules, series and alerts are its own, and a
    // request without a tenant (the default tenant) sees neither's group.
    let (status, text) = get_text(
        &client,
        &format!("{base}/prometheus/config/v1/rules/ns1/recording"),
    )
    .await
    .unwrap();
    assert_eq!(status, 404, "{text}");
    let b_config = client
        .get(format!("{base}/prometheus/config/v1/rules"))
        .header("X-Scope-OrgID", "team-b")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        b_config.contains("vector(42)") && !b_config.contains("HotRoom"),
        "{b_config}"
    );
    let a_config = client
        .get(format!("{base}/prometheus/config/v1/rules"))
        .header("X-Scope-OrgID", "team-a")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !a_config.contains("vector(42)") && a_config.contains("HotRoom"),
        "{a_config}"
    );
    let b_recorded =
        vector(&query_at(&client, &base, "team-b", "job:demo_requests:rate30s", end).await);
    assert_eq!(b_recorded.len(), 1, "{b_recorded:?}");
    assert_eq!(b_recorded.values().next().copied(), Some(42.0));
    let b_alerts = matrix(&query_at(&client, &base, "team-b", "ALERTS[5m]", end).await);
    assert!(b_alerts.is_empty(), "team-b sees alerts: {b_alerts:?}");
    let b_rules = api_get(
        &client,
        &base,
        "/prometheus/api/v1/rules",
        Some("team-b"),
        &[],
    )
    .await
    .unwrap();
    let groups = success(&b_rules)["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["rules"][0]["query"], "vector(42)");
    assert_eq!(groups[0]["rules"][0]["health"], "ok");
    let a_rules = api_get(
        &client,
        &base,
        "/prometheus/api/v1/rules",
        Some("team-a"),
        &[("type", "alert")],
    )
    .await
    .unwrap();
    let groups = success(&a_rules)["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["name"], "alerts");
    assert_eq!(groups[0]["file"], "ns1");
    assert_eq!(groups[0]["rules"][0]["health"], "ok", "{groups:?}");
    assert_eq!(groups[0]["rules"][0]["duration"], 3.0, "{groups:?}");

    // Deleting team-b's namespace leaves team-a's alone.
    let resp = client
        .delete(format!("{base}/prometheus/config/v1/rules/ns1"))
        .header("X-Scope-OrgID", "team-b")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let b_after = client
        .get(format!("{base}/prometheus/config/v1/rules"))
        .header("X-Scope-OrgID", "team-b")
        .send()
        .await
        .unwrap();
    assert_eq!(b_after.status().as_u16(), 404);
    let resp = client
        .get(format!("{base}/prometheus/config/v1/rules/ns1/alerts"))
        .header("X-Scope-OrgID", "team-a")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    drop(prom);
    strata.proc.terminate(Duration::from_secs(20));
    drop(am);
}

/// Bad uploads get a 400 naming the problem, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rule_uploads_are_refused() {
    let client = reqwest::Client::new();
    let strata = start_strata(
        "strata-ruler-bad",
        &[
            "--ruler.limits.max-rules-per-group=2",
            "--ruler.limits.max-rule-groups=2",
        ],
    )
    .await;
    let base = strata.http();
    let cases = [
        ("name: g\nrules:\n  - record: a:b\n    expr: sum(\n", "parse"),
        ("name: g\nrules:\n  - record: 1abc\n    expr: up\n", "1abc"),
        ("name: g\nrules:\n  - alert: A\n    expr: up\n    annotations:\n      x: '{{ $labels.foo '\n", "template"),
        ("name: g\nrules:\n  - record: a\n    alert: b\n    expr: up\n", "record"),
        ("name: g\nbogus: 1\nrules: []\n", "bogus"),
        ("name: g\ninterval: 100ms\nrules:\n  - record: a\n    expr: up\n", "interval"),
        ("name: g\nrules:\n  - record: a\n    expr: up\n  - record: b\n    expr: up\n  - record: c\n    expr: up\n", "limit"),
        ("[not, a, group]", ""),
    ];
    for (body, needle) in cases {
        let (status, text) = upload(&client, &base, "t", "ns", body).await;
        assert_eq!(status, 400, "{body:?} -> {status} {text}");
        assert!(text.to_lowercase().contains(needle), "{body:?} -> {text}");
    }
    let resp = client
        .get(format!("{base}/prometheus/config/v1/rules"))
        .header("X-Scope-OrgID", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404, "a refused upload was stored");
    for g in ["g1", "g2"] {
        let body = format!("name: {g}\nrules:\n  - record: a\n    expr: up\n");
        assert_eq!(upload(&client, &base, "t", "ns", &body).await.0, 202);
    }
    let (status, text) = upload(&client, &base, "t", "ns", "name: g3\nrules: []\n").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("max_rule_groups"), "{text}");
    // Replacing an existing group is not a new one.
    assert_eq!(
        upload(&client, &base, "t", "ns", "name: g2\nrules: []\n")
            .await
            .0,
        202
    );
    // Deleting what does not exist is a 404.
    let resp = client
        .delete(format!("{base}/prometheus/config/v1/rules/ns/nope"))
        .header("X-Scope-OrgID", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
