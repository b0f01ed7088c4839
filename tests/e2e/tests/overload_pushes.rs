//! Push overload: 512 senders offering twice what the process can take.
//! The excess is refused at once (429/503 with Retry-After), the pushes
//! that are accepted keep a bounded latency, memory stays bounded, and
//! every acknowledged sample is stored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strata_e2e::*;

/// Series per push: enough that the server's work per push, not the
/// generator's (in this same process, on the same cores), sets the pace.
const SERIES_PER_PUSH: usize = 200;

#[derive(Default)]
struct Outcomes {
    acked: Samples,
    accepted_ms: Vec<f64>,
    refused_ms: Vec<f64>,
    refused_without_retry_after: usize,
    /// Anything but 2xx, 429 and 503 (errors, timeouts), with one example.
    other: usize,
    other_example: String,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// One sender: its own series (`sender` label), one push every `every`
/// (none while its previous push is pending), until `stop`.
async fn sender(
    id: usize,
    base: String,
    every: Duration,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Outcomes>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let sender = format!("s{id}");
    let mut last_t = 0i64;
    let mut next = tokio::time::Instant::now() + every.mul_f64((id % 97) as f64 / 97.0);
    // Bounded: at most 10,000 pushes per sender.
    for round in 0..10_000u64 {
        tokio::time::sleep_until(next).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        next += every;
        let t = now_ms().max(last_t + 1);
        last_t = t;
        let batch: Vec<_> = (0..SERIES_PER_PUSH)
            .map(|i| {
                series(
                    &[
                        ("__name__", "overload"),
                        ("i", &i.to_string()),
                        ("sender", &sender),
                    ],
                    &[(t, (round * 100 + i as u64) as f64)],
                )
            })
            .collect();
        // Encoded before the clock starts: only the exchange is timed.
        let body = write_body(&batch);
        let started = Instant::now();
        let result = client
            .post(format!("{base}/api/v1/push"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .body(body)
            .send()
            .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut out = out.lock();
        match result {
            Ok(resp) if resp.status().is_success() => {
                out.accepted_ms.push(ms);
                for s in &batch {
                    let key =
                        strata_model::Labels::from_pairs(s.labels.iter().cloned()).to_string();
                    out.acked
                        .entry(key)
                        .or_default()
                        .insert((t, s.samples[0].value.to_bits()));
                }
            }
            Ok(resp) if matches!(resp.status().as_u16(), 429 | 503) => {
                out.refused_ms.push(ms);
                if !resp.headers().contains_key("retry-after") {
                    out.refused_without_retry_after += 1;
                }
            }
            Ok(resp) => {
                out.other += 1;
                out.other_example = format!("status {}", resp.status());
            }
            Err(e) => {
                out.other += 1;
                out.other_example = e.to_string();
            }
        }
    }
}

/// Runs `senders` senders for `duration`, each pushing every `every`.
async fn offer(base: &str, senders: usize, every: Duration, duration: Duration) -> Outcomes {
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let tasks: Vec<_> = (0..senders)
        .map(|id| {
            tokio::spawn(sender(
                id,
                base.to_string(),
                every,
                stop.clone(),
                out.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(out)
        .map_err(|_| ())
        .expect("senders ended")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_shed_quickly_and_nothing_acknowledged_is_lost() {
    // At most 64 pushes worked on at once (the default is 256): what the
    // process sustains is measured at that concurrency, so twice that rate
    // must overload it, whatever the machine's speed. (Measured with fewer
    // senders than the limit, the process could take "twice" by running
    // more pushes at once, and nothing would need shedding.)
    let limit = 64;
    let mut s = start_strata(
        "overload-pushes",
        &[&format!("--distributor.max-inflight-push-requests={limit}")],
    )
    .await;
    let base = s.http();
    let pid = s.proc.pid().expect("pid");

    // What the process sustains: as many senders as the limit, back to back.
    let measured = Duration::from_secs(8);
    let capacity = offer(&base, limit, Duration::ZERO, measured).await;
    let sustainable =
        (capacity.accepted_ms.len() * SERIES_PER_PUSH) as f64 / measured.as_secs_f64();
    assert!(sustainable > 0.0, "nothing accepted while measuring");

    // 512 senders offering twice that for 60 s.
    let senders = 512;
    let every = Duration::from_secs_f64((senders * SERIES_PER_PUSH) as f64 / (2.0 * sustainable));
    let before = rss_bytes(pid);
    let peak = RssPeak::start(pid);
    let mut o = offer(&base, senders, every, Duration::from_secs(60)).await;
    let rise = peak.peak().saturating_sub(before);
    let (accepted, refused) = (o.accepted_ms.len(), o.refused_ms.len());
    let p99_accepted = percentile(&mut o.accepted_ms, 0.99);
    let p99_refused = percentile(&mut o.refused_ms, 0.99);
    eprintln!(
        "sustainable {sustainable:.0} samples/s; offered 2× by {senders} senders (one push of {SERIES_PER_PUSH} every {every:?}): \
         {accepted} accepted (p99 {p99_accepted:.0} ms), {refused} refused (p99 {p99_refused:.0} ms), {} other; \
         resident memory {:.0} MiB before, peak {:.0} MiB",
        o.other,
        mib(before),
        mib(peak.peak())
    );
    assert!(
        refused > 0,
        "twice the sustainable rate, yet nothing was shed"
    );
    assert!(accepted > 0, "nothing accepted under overload");
    assert_eq!(
        o.refused_without_retry_after, 0,
        "refusals carry Retry-After"
    );
    assert!(
        p99_accepted < 5000.0,
        "p99 of accepted pushes {p99_accepted:.0} ms (limit 5 s)"
    );
    // Timed by this process, which shares the two cores with the server
    // and runs 512 senders in a debug build: its own scheduling adds about a
    // second here (an outside `curl` saw the server answer in 5–165 ms
    // meanwhile). How fast the server itself refuses is measured alone by
    // `a_push_beyond_the_limit_is_refused_at_once`.
    assert!(
        p99_refused < 5000.0,
        "refusals took p99 {p99_refused:.0} ms"
    );
    assert_eq!(
        o.other, 0,
        "pushes neither accepted nor refused with 429/503 (last: {})",
        o.other_example
    );
    // The admission limits (64 requests, 512 MiB in flight) bound what the
    // load can add.
    assert!(
        rise < 768 << 20,
        "resident memory rose by {:.0} MiB under overload (limit 768 MiB)",
        mib(rise)
    );

    // Nothing acknowledged is lost.
    let mut acked = capacity.acked;
    for (k, v) in o.acked {
        acked.entry(k).or_default().extend(v);
    }
    let (missing, total) = missing(&acked, &held_by(&s).await);
    assert_eq!(
        missing, 0,
        "{missing} of {total} acknowledged samples are missing"
    );
    assert!(s.proc.is_running(), "strata died: {}", s.proc.log_text());
    let (_, metrics) = get_text(&reqwest::Client::new(), &format!("{base}/metrics"))
        .await
        .unwrap();
    // Refused by the distributor's admission (503) or the tenant's rate
    // limit (429).
    let count = |name: &str| metric_value(&metrics, name).unwrap_or_default();
    eprintln!(
        "refusals: {} for requests in flight, {} for bytes in flight, {} samples rate-limited",
        count("strata_distributor_push_refused_total{reason=\"inflight_requests\"}"),
        count("strata_distributor_push_refused_total{reason=\"inflight_bytes\"}"),
        count("strata_distributor_discarded_samples_total{tenant=\"anonymous\",reason=\"rate_limited\"}"),
    );
}

/// With every admission slot taken (uploads that never finish their body),
/// one more push is refused at once with 503 and Retry-After, before its
/// body is read; once the slots free up, pushes are accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_beyond_the_limit_is_refused_at_once() {
    use tokio::io::AsyncWriteExt;
    let limit = 4;
    let s = start_strata(
        "overload-limit",
        &[&format!("--distributor.max-inflight-push-requests={limit}")],
    )
    .await;
    let base = s.http();
    let body = write_body(&[series(&[("__name__", "m")], &[(now_ms(), 1.0)])]);
    let mut stalled = Vec::new();
    for _ in 0..limit {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", s.http_port))
            .await
            .unwrap();
        let head = format!(
            "POST /api/v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nContent-Length: {}\r\n\r\n",
            body.len() + 1000
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&body[..1]).await.unwrap();
        stalled.push(conn);
    }
    let client = reqwest::Client::new();
    let (_, page) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut page = page;
    while metric_value(&page, "strata_distributor_push_inflight_requests") != Some(limit as f64) {
        assert!(
            Instant::now() < deadline,
            "the stalled uploads were not admitted:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        page = get_text(&client, &format!("{base}/metrics"))
            .await
            .unwrap()
            .1;
    }
    let started = Instant::now();
    let resp = client
        .post(format!("{base}/api/v1/push"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("1".to_string())
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("distributor.max_inflight_push_requests"),
        "{text}"
    );
    assert!(
        took < Duration::from_millis(500),
        "the refusal took {took:?}"
    );
    // Slots free up: accepted again.
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, text) = push(&client, &base, None, body.clone()).await.unwrap();
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {code} {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
