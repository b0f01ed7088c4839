//! Heavy and abandoned queries: a query that would need tens of gigabytes
//! is refused after spending at most its memory budget, two of them at once
//! leave the process alive and its memory bounded, and a query whose client
//! went away stops using CPU.

use std::time::{Duration, Instant};

use strata_e2e::*;

const HISTOGRAMS_PER_JOB: usize = 10;
const JOBS: usize = 5;
const BUCKETS: [&str; 10] = [
    "0.005", "0.01", "0.05", "0.1", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// 500 series of `x_bucket` (5 jobs × 10 histograms × 10 buckets) with an
/// hour of samples 15 s apart, ending now.
async fn write_histograms(base: &str) -> i64 {
    let client = reqwest::Client::new();
    let end = now_ms();
    let rounds = 240i64;
    let start = end - (rounds - 1) * 15_000;
    for round in 0..rounds {
        let t = start + round * 15_000;
        let mut batch = Vec::new();
        for job in 0..JOBS {
            for h in 0..HISTOGRAMS_PER_JOB {
                for (b, le) in BUCKETS.iter().enumerate() {
                    let value = (round as f64 + 1.0) * (b as f64 + 1.0);
                    batch.push(series(
                        &[
                            ("__name__", "x_bucket"),
                            ("job", &format!("job{job}")),
                            ("le", le),
                            ("series", &format!("s{h}")),
                        ],
                        &[(t, value)],
                    ));
                }
            }
        }
        push_ok(&client, base, None, write_body(&batch)).await;
    }
    end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_subqueries_are_refused_within_budget_and_the_process_survives() {
    let mut s = start_strata("overload-subquery", &[]).await;
    let base = s.http();
    let end = write_histograms(&base).await;
    let pid = s.proc.pid().expect("strata pid");
    let before = rss_bytes(pid);
    let peak = RssPeak::start(pid);

    // 3.6M inner steps over 500 series: about 29 GB of step vectors if
    // nothing stopped it.
    let query =
        "sum(max_over_time((histogram_quantile(2, rate(x_bucket[5m])))[1h:1ms])) by (job,series)";
    let time = format!("{:.3}", end as f64 / 1000.0);
    let started = Instant::now();
    let ask = || {
        let base = base.clone();
        let time = time.clone();
        async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(150))
                .build()
                .unwrap();
            api_get(
                &client,
                &base,
                "/prometheus/api/v1/query",
                None,
                &[("query", query), ("time", &time)],
            )
            .await
        }
    };
    let (a, b) = tokio::join!(ask(), ask());
    let took = started.elapsed();
    for answer in [a, b] {
        let (status, json) = answer.expect("the query is answered");
        assert!(
            status == 422 || status == 200,
            "expected a result or 422, got {status}: {json}"
        );
        if status == 422 {
            let error = json["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("memory limit") || error.contains("too many samples"),
                "the refusal names the limit: {error}"
            );
        }
    }
    assert!(
        took < Duration::from_secs(120),
        "both answered within the query timeout: {took:?}"
    );
    let rise = peak.peak().saturating_sub(before);
    eprintln!(
        "two huge subqueries: answered in {took:?}, resident memory rose by {:.0} MiB",
        mib(rise)
    );
    assert!(
        rise < 1536 << 20,
        "resident memory rose by {:.0} MiB (limit 1536 MiB)",
        mib(rise)
    );
    assert!(s.proc.is_running(), "strata died:\n{}", s.proc.log_text());
    // And still answers.
    let client = reqwest::Client::new();
    let answer = api_get(
        &client,
        &base,
        "/prometheus/api/v1/query",
        None,
        &[("query", "count(x_bucket)"), ("time", &time)],
    )
    .await
    .unwrap();
    assert_eq!(success(&answer)["result"][0]["value"][1], "500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_whose_client_went_away_stops_using_cpu() {
    let mut s = start_strata("overload-abandoned", &[]).await;
    let base = s.http();
    let end = write_histograms(&base).await;
    let pid = s.proc.pid().expect("strata pid");

    // Light on memory (500 series × 9000 steps), heavy on CPU: quantiles
    // over 240 samples at every step of every series (half a minute of
    // work in a debug build).
    let start = format!("{:.3}", (end - 3_600_000) as f64 / 1000.0);
    let stop = format!("{:.3}", end as f64 / 1000.0);
    let cpu_at_start = cpu_seconds(pid);
    let asked = Instant::now();
    let request = {
        let base = base.clone();
        tokio::spawn(async move {
            api_get(
                &reqwest::Client::new(),
                &base,
                "/prometheus/api/v1/query_range",
                None,
                &[
                    (
                        "query",
                        "quantile_over_time(0.5, x_bucket[1h]) + quantile_over_time(0.9, x_bucket[1h]) + quantile_over_time(0.99, x_bucket[1h])",
                    ),
                    ("start", &start),
                    ("end", &stop),
                    ("step", "0.4"),
                ],
            )
            .await
        })
    };
    // The client leaves once the query has kept a core busy for a while
    // (measured, not assumed: a loaded machine gives it less CPU).
    let deadline = Instant::now() + Duration::from_secs(60);
    let busy = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let busy = cpu_seconds(pid) - cpu_at_start;
        assert!(
            !request.is_finished(),
            "the query answered after {:?}, before using 1.5 CPU-seconds ({busy:.2}): make it heavier",
            asked.elapsed()
        );
        if busy > 1.5 {
            break busy;
        }
        assert!(
            Instant::now() < deadline,
            "the query used only {busy:.2} CPU-seconds in 60 s"
        );
    };
    request.abort();
    // Within a second of the disconnect, evaluation stops: the next two
    // seconds use (almost) no CPU.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_after_grace = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = cpu_seconds(pid) - cpu_after_grace;
    eprintln!("abandoned query: {busy:.2} CPU-s while asked, {idle:.2} CPU-s in the 2 s after");
    assert!(
        idle < 0.4,
        "{idle:.2} CPU-seconds used in the 2 s after the client left: the query kept running"
    );
    let (_, metrics) = get_text(&reqwest::Client::new(), &format!("{base}/metrics"))
        .await
        .unwrap();
    assert!(
        metric_value(&metrics, "strata_querier_queries_canceled_total").unwrap_or(0.0) >= 1.0,
        "the cancelled query is counted"
    );
    assert!(s.proc.is_running(), "strata died:\n{}", s.proc.log_text());
}
