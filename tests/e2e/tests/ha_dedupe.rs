//! HA-pair deduplication (the distributor's HA tracker) end to end.
//!
//! Two real Prometheus 2.42 servers run as an HA pair: both scrape the same
//! target (Strata's own `/metrics`) every second and remote-write to the
//! one-process `strata`, differing only in the external label `__replica__`
//! (`r1`, `r2`); both carry `cluster: pair`. Strata must store one copy of
//! each sample, without the replica label, and when the elected Prometheus
//! dies the other must take over within the failover timeout, leaving no
//! longer gap in the stored data.
//!
//! A second test runs two separate distributors sharing their elections
//! through the DynamoDB store (dynalite).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_e2e::*;

/// The failover timeout both tests configure, in seconds.
const FAILOVER_S: i64 = 5;
/// What a failover may take beyond the timeout: the elected replica's
/// record is written every `update_timeout` (1 s here, ± 0.5 s jitter), a
/// Prometheus sends every `batch_send_deadline` (0.5 s) and scrapes every
/// second, and the test polls every 100 ms.
const SLACK_S: i64 = 3;

fn ha_flags(failover_s: i64) -> Vec<String> {
    vec![
        "--distributor.ha-tracker.enabled=true".to_string(),
        format!("--distributor.ha-tracker.failover-timeout={failover_s}s"),
        // The defaults (15 s ± 5 s) must stay below the failover timeout.
        "--distributor.ha-tracker.update-timeout=1s".to_string(),
        "--distributor.ha-tracker.update-timeout-jitter-max=500ms".to_string(),
    ]
}

/// Starts a Prometheus of the pair: scrapes `target` every second and
/// remote-writes to `strata`, with `__replica__: replica`.
async fn start_replica(
    replica: &str,
    target: &str,
    strata: &str,
    dir: &std::path::Path,
) -> (Proc, String) {
    let config = format!(
        r#"
global:
  scrape_interval: 1s
  evaluation_interval: 1s
  external_labels:
    cluster: pair
    __replica__: {replica}
scrape_configs:
  - job_name: strata
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: "{strata}/api/v1/push"
    remote_timeout: 5s
    queue_config:
      min_shards: 1
      max_shards: 1
      batch_send_deadline: 500ms
      max_samples_per_send: 2000
      min_backoff: 50ms
      max_backoff: 1s
"#
    );
    let dir = dir.join(replica);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let data = dir.join("data");
    start_http_server(
        &format!("prometheus-{replica}"),
        &prometheus_bin(),
        |port| {
            vec![
                format!("--config.file={}", config_path.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ]
        },
        "/-/ready",
    )
    .await
    .expect("prometheus ready")
}

async fn prom_query(client: &reqwest::Client, base: &str, query: &str, time_ms: i64) -> Value {
    let answer = api_get(
        client,
        base,
        "/api/v1/query",
        None,
        &[
            ("query", query),
            ("time", &format!("{:.3}", time_ms as f64 / 1000.0)),
        ],
    )
    .await
    .expect("query");
    success(&answer)["result"].clone()
}

/// The first value of an instant-vector answer.
fn first_value(result: &Value) -> Option<f64> {
    result.as_array()?.first()?["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// Waits until the Prometheus at `base` has sent everything up to `t_ms`
/// (one shard sends in order).
async fn wait_sent(client: &reqwest::Client, base: &str, t_ms: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Its own metrics (it scrapes only the target).
        let sent = metric_value(
            &metrics_text(client, base).await,
            "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
        );
        if sent.unwrap_or(0.0) * 1000.0 > t_ms as f64 {
            return;
        }
        assert!(Instant::now() < deadline, "{base} never sent past {t_ms}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Timestamps (ms) of `up{job="strata"}` in Prometheus at `base`, in
/// `(start, end]`.
async fn prom_up_timestamps(
    client: &reqwest::Client,
    base: &str,
    start: i64,
    end: i64,
) -> Vec<i64> {
    let range = (end - start) / 1000;
    let result = prom_query(client, base, &format!("up[{range}s]"), end).await;
    let series = result.as_array().expect("matrix");
    assert_eq!(series.len(), 1, "{result}");
    series[0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|p| (p[0].as_f64().expect("ts") * 1000.0).round() as i64)
        .filter(|t| *t > start)
        .collect()
}

/// Stored series of the default tenant in `[start, end]`, by labels.
async fn stored(strata: &Strata, start: i64, end: i64) -> BTreeMap<String, Vec<(i64, u64)>> {
    read_ingester(&strata.grpc_addr(), "anonymous", start, end)
        .await
        .expect("read ingester")
}

/// Timestamps of the stored `up` series (exactly one must exist).
fn up_timestamps(series: &BTreeMap<String, Vec<(i64, u64)>>) -> Vec<i64> {
    let ups: Vec<&String> = series.keys().filter(|k| k.starts_with("up{")).collect();
    assert_eq!(ups.len(), 1, "one `up` series expected: {ups:?}");
    assert!(
        ups[0].contains("cluster=\"pair\"") && ups[0].contains("job=\"strata\""),
        "{}",
        ups[0]
    );
    series[ups[0]].iter().map(|(t, _)| *t).collect()
}

async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    get_text(client, &format!("{base}/metrics"))
        .await
        .expect("metrics")
        .1
}

/// The replica the distributor at `base` sees elected for `cluster="pair"`.
async fn elected(client: &reqwest::Client, base: &str) -> Option<String> {
    let text = metrics_text(client, base).await;
    text.lines()
        .filter(|l| l.starts_with("strata_distributor_ha_elected_replica{"))
        .filter(|l| l.contains("cluster=\"pair\"") && l.ends_with(" 1"))
        .find_map(|l| {
            let from = l.find("replica=\"")? + "replica=\"".len();
            let len = l[from..].find('"')?;
            Some(l[from..from + len].to_string())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_ha_pair_is_stored_once_and_fails_over() {
    assert!(
        prometheus_bin().exists(),
        "{} missing: install the Debian package `prometheus` (make test does)",
        prometheus_bin().display()
    );
    let flags = ha_flags(FAILOVER_S);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut strata = start_strata("strata-ha", &flags).await;
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("127.0.0.1:{}", strata.http_port);
    let started = now_ms();
    let mut proms = BTreeMap::new();
    for replica in ["r1", "r2"] {
        let (proc, base) = start_replica(replica, &target, &strata.http(), dir.path()).await;
        proms.insert(replica.to_string(), (proc, base));
    }

    // Both send for a while.
    for (_, base) in proms.values() {
        wait_sent(&client, base, started + 12_000).await;
    }
    let first = elected(&client, &strata.http())
        .await
        .expect("an elected replica in strata_distributor_ha_elected_replica");
    let other = if first == "r1" { "r2" } else { "r1" };
    eprintln!("elected: {first}");

    // One copy: in a window where both scraped and sent, the stored `up`
    // samples are exactly the elected Prometheus's, and as many as one
    // scraper's (the other scrapes at other instants).
    let end = now_ms() - 2_000;
    let start = end - 8_000;
    wait_sent(&client, &proms[&first].1, end).await;
    let series = stored(&strata, start, end).await;
    assert!(
        series.keys().all(|k| !k.contains("__replica__")),
        "a stored series kept the replica label: {:?}",
        series.keys().find(|k| k.contains("__replica__"))
    );
    let ours: Vec<i64> = up_timestamps(&series)
        .into_iter()
        .filter(|t| *t > start)
        .collect();
    let theirs = prom_up_timestamps(&client, &proms[&first].1, start, end).await;
    let loser = prom_up_timestamps(&client, &proms[other].1, start, end).await;
    assert!(ours.len() >= 6, "too few stored samples: {ours:?}");
    assert_eq!(ours, theirs, "stored samples are not the elected replica's");
    assert!(
        loser.iter().all(|t| !ours.contains(t)),
        "samples of the other replica stored: ours {ours:?}, {other}'s {loser:?}"
    );
    // The same through PromQL, as a user would see it.
    let count_query = "count_over_time(up[8s])";
    let answer = api_get(
        &client,
        &strata.http(),
        "/prometheus/api/v1/query",
        None,
        &[
            ("query", count_query),
            ("time", &format!("{:.3}", end as f64 / 1000.0)),
        ],
    )
    .await
    .unwrap();
    let result = &success(&answer)["result"];
    assert_eq!(result.as_array().map(Vec::len), Some(1), "{result}");
    let ours_count = first_value(result).expect("a count");
    let theirs_count = first_value(&prom_query(&client, &proms[&first].1, count_query, end).await)
        .expect("a count");
    assert_eq!(
        ours_count, theirs_count,
        "{count_query}: strata {ours_count}, the elected Prometheus {theirs_count}"
    );
    // The other replica's pushes were answered 202, which Prometheus takes
    // as delivered: dropped and counted, never failed nor retried.
    let text = metrics_text(&client, &strata.http()).await;
    let dropped = metric_value(
        &text,
        "strata_distributor_ha_dropped_samples_total{tenant=\"anonymous\",cluster=\"pair\"}",
    )
    .unwrap_or(0.0);
    assert!(dropped > 100.0, "dropped samples: {dropped}");
    let accepted = metric_value(
        &text,
        "strata_distributor_push_requests_total{status=\"202\"}",
    );
    assert!(accepted.unwrap_or(0.0) > 0.0, "no 202 answers");
    let text = metrics_text(&client, &proms[other].1).await;
    for metric in [
        "prometheus_remote_storage_samples_failed_total",
        "prometheus_remote_storage_samples_retried_total",
    ] {
        assert_eq!(metric_value(&text, metric), Some(0.0), "{other}: {metric}");
    }

    // The elected Prometheus dies; the other takes over.
    let (mut dead, _) = proms.remove(&first).unwrap();
    let killed = now_ms();
    dead.kill();
    let limit = Duration::from_secs((FAILOVER_S + SLACK_S) as u64);
    let took_over = loop {
        if elected(&client, &strata.http()).await.as_deref() == Some(other) {
            break now_ms();
        }
        assert!(
            now_ms() - killed < limit.as_millis() as i64,
            "{other} did not take over within {limit:?} of {first}'s death; strata log:\n{}",
            strata.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "{other} took over {} ms after {first} died",
        took_over - killed
    );

    // Let the new replica send a while, then look for the largest gap in
    // the stored data across the failover.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let end = now_ms() - 2_000;
    let start = killed - 15_000;
    wait_sent(&client, &proms[other].1, end).await;
    let series = stored(&strata, start, end).await;
    assert!(series.keys().all(|k| !k.contains("__replica__")));
    let ts = up_timestamps(&series);
    let (gap, at) = ts
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max()
        .expect("samples");
    eprintln!(
        "largest gap {gap} ms, after {} ms before the kill",
        killed - at
    );
    assert!(
        gap <= (FAILOVER_S + SLACK_S) * 1000,
        "a gap of {gap} ms in the stored data (failover timeout {FAILOVER_S}s + {SLACK_S}s slack)"
    );
    // After the takeover the stored samples are the new replica's, once.
    let after: Vec<i64> = ts.iter().copied().filter(|t| *t > took_over).collect();
    let new_ones = prom_up_timestamps(&client, &proms[other].1, took_over, end).await;
    assert!(after.len() >= 4, "{after:?}");
    assert_eq!(after, new_ones);
    let changes = metric_value(
        &metrics_text(&client, &strata.http()).await,
        "strata_distributor_ha_elected_replica_changes_total{tenant=\"anonymous\",cluster=\"pair\"}",
    );
    assert_eq!(changes, Some(2.0));
    // No refusal on the way (out-of-order samples from the new replica, say).
    let text = metrics_text(&client, &strata.http()).await;
    assert!(
        !text.contains("strata_distributor_discarded_samples_total{"),
        "samples were refused:\n{}",
        text.lines()
            .filter(|l| l.starts_with("strata_distributor_discarded_samples_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    for (_, (mut proc, _)) in proms {
        assert!(proc.terminate(Duration::from_secs(30)));
    }
    assert!(
        strata.proc.terminate(Duration::from_secs(20)),
        "clean shutdown"
    );
}

/// Two separate distributors agree on the elected replica through the HA
/// tracker's records in DynamoDB (dynalite), in the ring's table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_distributors_share_elections_through_dynamodb() {
    let failover_s = 3;
    let dynalite = Dynalite::start().await.expect("dynalite");
    let extra = RoleFlags {
        distributor: ha_flags(failover_s),
        ..RoleFlags::default()
    };
    let cluster = Cluster::start_on(dynalite, "ha", 1, 1, &extra)
        .await
        .expect("cluster");
    let mut flags = dynamo_ring_flags(&cluster.dynalite.endpoint(), 1);
    flags.extend(ha_flags(failover_s));
    let mut b = Strata::start("ha-distributor-b", "strata-distributor", &flags);
    b.wait_ready().await.expect("second distributor ready");
    let client = reqwest::Client::new();
    wait_for_active(
        &client,
        &b.http(),
        &[&Cluster::ingester_id(0)],
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    let a = cluster.distributor.http();
    let b_base = b.http();

    let body = |replica: &str, t: i64, v: f64| {
        write_body(&[series(
            &[
                ("__name__", "ha_e2e"),
                ("__replica__", replica),
                ("cluster", "pair"),
                ("job", "x"),
            ],
            &[(t, v)],
        )])
    };
    let t0 = now_ms();
    push_ok(&client, &a, None, body("r1", t0, 1.0)).await;
    // b reads a's election from the store.
    let (code, text) = push(&client, &b_base, None, body("r2", t0 + 1, 2.0))
        .await
        .unwrap();
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("elected=r1"), "{text}");
    push_ok(&client, &b_base, None, body("r1", t0 + 2, 3.0)).await;
    for base in [&a, &b_base] {
        assert_eq!(elected(&client, base).await.as_deref(), Some("r1"));
    }

    // r1 goes quiet for longer than the failover timeout: r2 takes over at
    // b, and a, whose cache still says r1, learns it from the store.
    tokio::time::sleep(Duration::from_millis(failover_s as u64 * 1000 + 500)).await;
    let t1 = now_ms();
    push_ok(&client, &b_base, None, body("r2", t1, 4.0)).await;
    let (code, text) = push(&client, &a, None, body("r1", t1 + 1, 5.0))
        .await
        .unwrap();
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("elected=r2"), "{text}");
    for base in [&a, &b_base] {
        assert_eq!(elected(&client, base).await.as_deref(), Some("r2"));
    }

    let data = read_ingester(&cluster.ingesters[0].grpc_addr(), "anonymous", 0, i64::MAX)
        .await
        .unwrap();
    let keys: Vec<&String> = data.keys().collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains("__replica__"), "{}", keys[0]);
    let values: Vec<(i64, f64)> = data[keys[0]]
        .iter()
        .map(|(t, bits)| (*t, f64::from_bits(*bits)))
        .collect();
    assert_eq!(values, [(t0, 1.0), (t0 + 2, 3.0), (t1, 4.0)]);
    let page = get_text(&client, &format!("{a}/distributor/ha_tracker"))
        .await
        .unwrap()
        .1;
    assert!(page.contains("<td>pair</td><td>r2</td>"), "{page}");
    assert!(b.proc.terminate(Duration::from_secs(20)));
}
