//! A real Prometheus (2.42, Debian package) scrapes itself and
//! remote-writes into the one-process mode; every sample it sent must be
//! stored exactly, as read back through the ingester query path.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_e2e::*;

async fn prom_query(client: &reqwest::Client, base: &str, query: &str, time: f64) -> Value {
    let resp = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", query), ("time", &format!("{time:.3}"))])
        .send()
        .await
        .expect("query prometheus");
    let body: Value = resp.json().await.expect("prometheus json");
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["result"].clone()
}

async fn prom_scalar(client: &reqwest::Client, base: &str, query: &str) -> Option<f64> {
    let t = now_ms() as f64 / 1000.0;
    let result = prom_query(client, base, query, t).await;
    result.as_array()?.first()?["value"][1]
        .as_str()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_write_is_stored_exactly() {
    let bin = prometheus_bin();
    assert!(
        bin.exists(),
        "{} missing: install the Debian package `prometheus` (make test does)",
        bin.display()
    );
    let version = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .expect("prometheus --version");
    let version = format!(
        "{}{}",
        String::from_utf8_lossy(&version.stdout),
        String::from_utf8_lossy(&version.stderr)
    );
    assert!(
        version.contains("prometheus, version 2.42."),
        "the sender must be Prometheus 2.42 (Debian package), found:\n{version}"
    );
    let mut strata = start_strata("strata-prom", &[]).await;

    let prom_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{prom_port}"]
remote_write:
  - url: "{}/api/v1/push"
    remote_timeout: 5s
    queue_config:
      min_shards: 1
      max_shards: 1
      batch_send_deadline: 500ms
      max_samples_per_send: 500
      min_backoff: 50ms
      max_backoff: 1s
"#,
        strata.http()
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let args = vec![
        format!("--config.file={}", config_path.display()),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{prom_port}"),
    ];
    let mut prom = Proc::start("prometheus", &bin, &args, None);
    let prom_base = format!("http://127.0.0.1:{prom_port}");
    wait_ready(
        &format!("{prom_base}/-/ready"),
        Duration::from_secs(30),
        &mut prom,
    )
    .await
    .expect("prometheus ready");

    // Let it scrape for a while.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let client = reqwest::Client::new();
    let cutoff_ms = now_ms() - 2000;
    let cutoff = cutoff_ms as f64 / 1000.0;

    // With one shard, samples go out in WAL order: once the highest sent
    // timestamp passes the cutoff, everything up to it was sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = prom_scalar(
            &client,
            &prom_base,
            "max(prometheus_remote_storage_queue_highest_sent_timestamp_seconds)",
        )
        .await
        .unwrap_or(0.0);
        if sent > cutoff + 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never sent past the cutoff (highest sent {sent}, cutoff {cutoff}); strata log:\n{}",
            strata.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let failed = prom_scalar(
        &client,
        &prom_base,
        "sum(prometheus_remote_storage_samples_failed_total)",
    )
    .await
    .unwrap_or(0.0);
    assert_eq!(failed, 0.0, "prometheus saw failed remote writes");

    // Prometheus's own copy: raw samples of every series up to the cutoff.
    let result = prom_query(&client, &prom_base, r#"{__name__=~".+"}[10m]"#, cutoff).await;
    let mut expected: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut sample_count = 0;
    for s in result.as_array().expect("matrix") {
        let labels = strata_model::Labels::from_pairs(
            s["metric"]
                .as_object()
                .expect("metric")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
        );
        let values: Vec<(i64, f64)> = s["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().expect("ts") * 1000.0).round() as i64;
                (t, parse_prom_value(p[1].as_str().expect("value")))
            })
            .collect();
        sample_count += values.len();
        expected.insert(labels.to_string(), values);
    }
    assert!(
        expected.len() > 100,
        "prometheus has only {} series",
        expected.len()
    );
    assert!(
        sample_count > 1000,
        "prometheus has only {sample_count} samples"
    );

    // Ours, through the ingester query path; staleness markers are not
    // part of Prometheus's range results, so leave them out.
    let ours = read_ingester(&strata.grpc_addr(), "anonymous", 0, cutoff_ms)
        .await
        .expect("read ingester");
    let mut missing = Vec::new();
    for (name, want) in &expected {
        let got: Vec<(i64, f64)> = ours
            .get(name)
            .map(|v| {
                v.iter()
                    .map(|&(t, bits)| (t, f64::from_bits(bits)))
                    .filter(|(_, v)| !strata_model::is_stale_nan(*v))
                    .collect()
            })
            .unwrap_or_default();
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(a, b)| a.0 == b.0 && (a.1 == b.1 || (a.1.is_nan() && b.1.is_nan())));
        if !same {
            missing.push(format!("{name}: want {want:?}, got {got:?}"));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} series differ, e.g.:\n{}",
        missing.len(),
        expected.len(),
        missing
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // And nothing that Prometheus does not have.
    for name in ours.keys() {
        let only_stale = ours[name]
            .iter()
            .all(|&(_, bits)| strata_model::is_stale_nan(f64::from_bits(bits)));
        assert!(
            expected.contains_key(name) || only_stale,
            "strata has a series prometheus does not: {name}"
        );
    }

    assert!(prom.terminate(Duration::from_secs(30)));
    assert!(
        strata.proc.terminate(Duration::from_secs(20)),
        "clean shutdown"
    );
}

/// `strata` started exactly as `make run` starts it (`mkdir -p data`, then
/// `strata --data-dir=data` from that directory, no port flags): it answers
/// on the documented default ports, keeps its ring tokens under `data/`,
/// stores what is pushed, and exits 0 on SIGTERM. (The only test that uses
/// the fixed ports 9009 and 9095.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_run_serves_on_the_default_ports() {
    for port in [9009, 9095] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            panic!(
                "127.0.0.1:{port} is in use ({e}); this test starts strata on the default ports \
                 as `make run` does: stop whatever listens there (another `make run`?) and rerun"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let mut strata = Proc::start(
        "strata-make-run",
        &binary("strata"),
        &["--data-dir=data".to_string()],
        Some(dir.path()),
    );
    let base = "http://127.0.0.1:9009";
    wait_ready(
        &format!("{base}/ready"),
        Duration::from_secs(30),
        &mut strata,
    )
    .await
    .expect("strata ready on 127.0.0.1:9009");
    let tokens = std::fs::read_to_string(dir.path().join("data/tokens.json"))
        .expect("data/tokens.json written");
    assert!(tokens.contains("tokens"), "{tokens}");

    let client = reqwest::Client::new();
    let (_, page) = get_text(&client, &format!("{base}/ring")).await.unwrap();
    let members = ring_members(&page);
    assert_eq!(members.len(), 1, "{page}");
    let id = members.keys().next().unwrap().clone();
    wait_for_active(&client, base, &[&id], Duration::from_secs(10))
        .await
        .unwrap();

    // Auth is off: pushes go to tenant `anonymous`, readable over gRPC on 9095.
    let t = now_ms() - 1000;
    let body = write_body(&[series(&[("__name__", "make_run_metric")], &[(t, 4.0)])]);
    push_ok(&client, base, None, body).await;
    let data = read_ingester("127.0.0.1:9095", "anonymous", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(data["make_run_metric{}"], [(t, 4.0f64.to_bits())]);

    assert!(
        strata.terminate(Duration::from_secs(10)),
        "no clean exit on SIGTERM; log:\n{}",
        strata.log_text()
    );
}
