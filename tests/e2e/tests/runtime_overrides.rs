//! Runtime overrides against the real `strata` binary: a tenant's write and
//! query limits come from `--runtime-config.file`, and a rewritten file
//! applies within the reload period without a restart, to that tenant only;
//! a broken file keeps the last good version; `/runtime_config` shows the
//! limits in force.

use std::path::Path;
use std::time::{Duration, Instant};

use strata_e2e::*;

const LIMITED: &str = "t1";
const OTHER: &str = "t2";
const METRIC: &str = "overrides_metric";

/// Replaces the file the way deployment tools should (write aside, then
/// rename), so the reloader never reads half a file.
fn write_overrides(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn overrides_file(rate: u64, burst: u64, max_series: usize) -> String {
    format!(
        "overrides:\n  {LIMITED}:\n    ingestion_rate: {rate}\n    ingestion_burst_size: {burst}\n    max_series_per_query: {max_series}\n    retention: 90d\n"
    )
}

/// Push bodies of 5 series of 20 samples each (100 samples), each body
/// of a tenant later than the one before (samples 100 ms apart from 5
/// minutes ago on), so every accepted push stores new samples.
struct Bodies {
    next_ms: std::collections::HashMap<&'static str, i64>,
    start_ms: i64,
}

impl Bodies {
    fn new() -> Self {
        Self {
            next_ms: Default::default(),
            start_ms: now_ms() - 300_000,
        }
    }

    /// The tenant's next body; the same until [`Bodies::accepted`].
    fn next(&self, tenant: &'static str) -> Vec<u8> {
        let start = *self.next_ms.get(tenant).unwrap_or(&self.start_ms);
        let series: Vec<_> = (0..5)
            .map(|i| {
                let samples: Vec<(i64, f64)> =
                    (0..20).map(|k| (start + k * 100, k as f64)).collect();
                series(&[("__name__", METRIC), ("i", &i.to_string())], &samples)
            })
            .collect();
        write_body(&series)
    }

    fn accepted(&mut self, tenant: &'static str) {
        *self.next_ms.entry(tenant).or_insert(self.start_ms) += 2_000;
    }

    /// Pushes the tenant's next body and asserts it is accepted.
    async fn push_ok(&mut self, client: &reqwest::Client, base: &str, tenant: &'static str) {
        push_ok(client, base, Some(tenant), self.next(tenant)).await;
        self.accepted(tenant);
    }
}

async fn query(client: &reqwest::Client, base: &str, tenant: &str) -> (u16, serde_json::Value) {
    let time = format!("{}", now_ms() / 1000);
    api_get(
        client,
        base,
        "/prometheus/api/v1/query",
        Some(tenant),
        &[("query", METRIC), ("time", &time)],
    )
    .await
    .unwrap()
}

/// The query of every series succeeds with all 5.
async fn assert_query_ok(client: &reqwest::Client, base: &str, tenant: &str) {
    let answer = query(client, base, tenant).await;
    let data = success(&answer);
    assert_eq!(
        data["result"].as_array().unwrap().len(),
        5,
        "{tenant}: {data}"
    );
}

/// The query is refused by the series limit of 2.
async fn assert_query_limited(client: &reqwest::Client, base: &str) {
    let (code, v) = query(client, base, LIMITED).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["errorType"], "execution", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("max number of series limit (limit: 2 series)"),
        "{error}"
    );
}

async fn runtime_config(client: &reqwest::Client, base: &str, diff: bool) -> String {
    let url = if diff {
        format!("{base}/runtime_config?mode=diff")
    } else {
        format!("{base}/runtime_config")
    };
    let (code, text) = get_text(client, &url).await.unwrap();
    assert_eq!(code, 200, "{text}");
    text
}

/// Polls `check` every 100 ms until it is true or `within` has passed;
/// returns how long it took.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn runtime_overrides_apply_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overrides.yaml");
    // 1 sample/s refills a spent bucket of 150 in minutes: only a reload
    // can let the second push through within the test's deadlines.
    write_overrides(&path, &overrides_file(1, 150, 2));
    let file_flag = format!("--runtime-config.file={}", path.display());
    let strata = start_strata(
        "runtime-overrides",
        &[&file_flag, "--runtime-config.reload-period=1s"],
    )
    .await;
    let base = strata.http();
    let client = reqwest::Client::new();
    // Generous against a slow machine; the reload period is 1 s.
    let deadline = Duration::from_secs(20);

    // (d) The page shows the file's values and, in diff mode, only them.
    let full = runtime_config(&client, &base, false).await;
    assert!(full.contains(&format!("  {LIMITED}:\n")), "{full}");
    assert!(full.contains("    ingestion_rate: 1.0\n"), "{full}");
    assert!(
        full.contains("    max_samples_per_query: 50000000\n"),
        "{full}"
    );
    let diff = runtime_config(&client, &base, true).await;
    assert!(
        diff.contains(&format!(
            "  {LIMITED}:\n    ingestion_rate: 1.0\n    ingestion_burst_size: 150\n    max_series_per_query: 2\n    retention: 2160h\n"
        )),
        "{diff}"
    );
    assert!(!diff.contains(OTHER), "{diff}");

    // (a) The write limit: the burst holds one push of 100 samples, not two.
    let mut bodies = Bodies::new();
    bodies.push_ok(&client, &base, LIMITED).await;
    let body = bodies.next(LIMITED);
    let (code, text) = push(&client, &base, Some(LIMITED), body.clone())
        .await
        .unwrap();
    assert_eq!(code, 429, "{text}");
    assert!(
        text.contains("ingestion rate limit of 1 samples/s"),
        "{text}"
    );
    // (c) The other tenant has the default limits.
    for _ in 0..3 {
        bodies.push_ok(&client, &base, OTHER).await;
    }

    // (b) The query limit: 5 series, 2 allowed.
    assert_query_limited(&client, &base).await;
    assert_query_ok(&client, &base, OTHER).await;

    // Raise the rate: the same push is taken once the file is reloaded.
    write_overrides(&path, &overrides_file(50_000, 500_000, 2));
    let took = eventually("the raised ingestion rate", deadline, || async {
        let (code, text) = push(&client, &base, Some(LIMITED), body.clone())
            .await
            .unwrap();
        assert!(code == 200 || code == 429, "{code}: {text}");
        code == 200
    })
    .await;
    eprintln!("raised ingestion rate in force after {took:?}");
    bodies.accepted(LIMITED);
    bodies.push_ok(&client, &base, LIMITED).await;
    let diff = runtime_config(&client, &base, true).await;
    assert!(diff.contains("    ingestion_rate: 50000.0\n"), "{diff}");
    assert!(
        diff.contains("    ingestion_burst_size: 500000\n"),
        "{diff}"
    );
    // The query limit did not change.
    assert_query_limited(&client, &base).await;
    assert_query_ok(&client, &base, OTHER).await;

    // Raise the series limit: the same query succeeds.
    write_overrides(&path, &overrides_file(50_000, 500_000, 10));
    let took = eventually("the raised series limit", deadline, || async {
        let (code, v) = query(&client, &base, LIMITED).await;
        assert!(code == 200 || code == 422, "{code}: {v}");
        code == 200
    })
    .await;
    eprintln!("raised series limit in force after {took:?}");
    assert_query_ok(&client, &base, LIMITED).await;
    assert_query_ok(&client, &base, OTHER).await;
    bodies.push_ok(&client, &base, OTHER).await;
    let full = runtime_config(&client, &base, false).await;
    assert!(full.contains("    max_series_per_query: 10\n"), "{full}");

    // A broken file is refused: the last good version stays in force and
    // the failure shows in the metrics.
    write_overrides(
        &path,
        &format!("overrides:\n  {LIMITED}:\n    max_series_per_querry: 2\n"),
    );
    eventually("the failed reload in the metrics", deadline, || async {
        let (_, metrics) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
        metric_value(&metrics, "strata_runtime_config_last_reload_successful") == Some(0.0)
            && metric_value(
                &metrics,
                "strata_runtime_config_reload_total{outcome=\"failure\"}",
            ) == Some(1.0)
    })
    .await;
    assert_query_ok(&client, &base, LIMITED).await;
    let full = runtime_config(&client, &base, false).await;
    assert!(full.contains("    max_series_per_query: 10\n"), "{full}");
    assert!(
        strata.proc.log_text().contains("max_series_per_querry"),
        "the log names the unknown field"
    );
    let (_, metrics) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
    assert_eq!(
        metric_value(
            &metrics,
            "strata_runtime_config_reload_total{outcome=\"success\"}"
        ),
        Some(3.0),
        "{metrics}"
    );
}

/// A broken file at start is an error naming the field: the process does
/// not start without its limits.
#[tokio::test]
async fn a_broken_overrides_file_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overrides.yaml");
    write_overrides(&path, "overrides:\n  t1:\n    ingestion_rat: 5\n");
    let file_flag = format!("--runtime-config.file={}", path.display());
    let mut strata = Strata::start("runtime-overrides-broken", "strata", &[file_flag]);
    let started = Instant::now();
    while strata.proc.is_running() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still running with a broken overrides file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = strata.proc.log_text();
    assert!(log.contains("ingestion_rat"), "{log}");
}
