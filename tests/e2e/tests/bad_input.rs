//! Bad remote write input: each case gets the right status and a message
//! that says what is wrong, and nothing of it is stored.

use std::time::Duration;

use strata_e2e::*;

const TENANT: &str = "team-bad";

/// Series and samples per tenant, over every tenant the ingester holds.
async fn all_tenants(s: &Strata) -> std::collections::BTreeMap<String, TenantCounts> {
    ingester_tenants(&s.grpc_addr())
        .await
        .expect("ingester tenant stats")
}

async fn stored_series(s: &Strata, tenant: &str) -> usize {
    read_ingester(&s.grpc_addr(), tenant, 0, i64::MAX)
        .await
        .expect("read ingester")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_stores_nothing() {
    let mut s = start_strata(
        "strata-bad-input",
        &[
            "--auth-enabled=true",
            "--distributor.max-request-size=100000",
            "--distributor.max-decompressed-size=1000000",
            // A tiny rate limit for one tenant only.
            "--distributor.tenant-limits={limited: {ingestion_rate: 1, ingestion_burst_size: 10}}",
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let base = s.http();
    let now = now_ms();
    let good = |name: &str| series(&[("__name__", name), ("job", "x")], &[(now, 1.0)]);

    // A good request is stored, proving the read path works.
    push_ok(
        &client,
        &base,
        Some(TENANT),
        write_body(&[good("ok_metric")]),
    )
    .await;
    assert_eq!(stored_series(&s, TENANT).await, 1);
    let before = all_tenants(&s).await;
    assert_eq!(before.len(), 1, "{before:?}");

    struct Case {
        name: &'static str,
        tenant: Option<&'static str>,
        content_type: &'static str,
        body: Vec<u8>,
        status: u16,
        message: &'static str,
    }
    let raw_good = strata_remote_write::encode_write_request(&[good("x_metric")], &[]);
    let mut truncated = raw_good.clone();
    truncated.truncate(raw_good.len() - 3);
    let cases = vec![
        Case {
            name: "non-snappy body",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: b"this is not snappy at all".to_vec(),
            status: 400,
            message: "cannot decompress body",
        },
        Case {
            name: "truncated protobuf",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: strata_remote_write::compress(&truncated),
            status: 400,
            message: "cannot decode remote write request",
        },
        Case {
            name: "wrong content type",
            tenant: Some(TENANT),
            content_type: "application/json",
            body: write_body(&[good("x_metric")]),
            status: 415,
            message: "unsupported content type",
        },
        Case {
            name: "remote write 2.0 message",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            body: write_body(&[good("x_metric")]),
            status: 415,
            message: "only remote write 1.0",
        },
        Case {
            name: "unsorted labels",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: write_body(&[series(
                &[("job", "x"), ("__name__", "x_metric")],
                &[(now, 1.0)],
            )]),
            status: 400,
            message: "not sorted",
        },
        Case {
            name: "duplicate labels",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: write_body(&[series(
                &[("__name__", "x_metric"), ("job", "a"), ("job", "b")],
                &[(now, 1.0)],
            )]),
            status: 400,
            message: "more than once",
        },
        Case {
            name: "empty label name",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: write_body(&[series(
                &[("", "v"), ("__name__", "x_metric")],
                &[(now, 1.0)],
            )]),
            status: 400,
            message: "empty label name",
        },
        Case {
            name: "invalid metric name",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: write_body(&[series(&[("__name__", "1-bad name")], &[(now, 1.0)])]),
            status: 400,
            message: "invalid metric name",
        },
        Case {
            name: "invalid label name",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: write_body(&[series(
                &[("__name__", "x_metric"), ("bad-name", "v")],
                &[(now, 1.0)],
            )]),
            status: 400,
            message: "invalid label name",
        },
        Case {
            name: "missing metric name",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: write_body(&[series(&[("job", "x")], &[(now, 1.0)])]),
            status: 400,
            message: "no metric name",
        },
        Case {
            name: "sample too far in the future",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: write_body(&[series(
                &[("__name__", "x_metric")],
                &[(now + 3_600_000, 1.0)],
            )]),
            status: 400,
            message: "in the future",
        },
        Case {
            name: "missing tenant",
            tenant: None,
            content_type: "application/x-protobuf",
            body: write_body(&[good("x_metric")]),
            status: 401,
            message: "X-Scope-OrgID",
        },
        Case {
            name: "invalid tenant",
            tenant: Some("a/b"),
            content_type: "application/x-protobuf",
            body: write_body(&[good("x_metric")]),
            status: 400,
            message: "invalid X-Scope-OrgID",
        },
        Case {
            name: "too-large body",
            tenant: Some(TENANT),
            content_type: "application/x-protobuf",
            body: vec![0u8; 200_000],
            status: 413,
            message: "larger than the limit",
        },
    ];

    for case in cases {
        let mut req = client
            .post(format!("{base}/api/v1/push"))
            .header("Content-Type", case.content_type)
            .header("Content-Encoding", "snappy")
            .body(case.body);
        if let Some(t) = case.tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let resp = req.send().await.expect(case.name);
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, case.status, "{}: {text}", case.name);
        assert!(
            text.contains(case.message),
            "{}: message {text:?} should contain {:?}",
            case.name,
            case.message
        );
        assert_eq!(
            stored_series(&s, TENANT).await,
            1,
            "{}: something was stored",
            case.name
        );
        // Nothing anywhere else either (another tenant, `anonymous`, a
        // tenant made of part of an invalid ID).
        assert_eq!(
            all_tenants(&s).await,
            before,
            "{}: something was stored",
            case.name
        );
    }
    assert_eq!(stored_series(&s, "anonymous").await, 0);

    // A batch mixing valid and invalid series: 400 naming the problem, and
    // the valid series (before and after the invalid one) are stored.
    let (code, text) = push(
        &client,
        &base,
        Some(TENANT),
        write_body(&[
            good("mixed_first"),
            series(&[("__name__", "1-bad name")], &[(now, 1.0)]),
            good("mixed_last"),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("invalid metric name"), "{text}");
    let data = read_ingester(&s.grpc_addr(), TENANT, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        [
            "mixed_first{job=\"x\"}",
            "mixed_last{job=\"x\"}",
            "ok_metric{job=\"x\"}"
        ],
        "only the valid series of the mixed batch are stored"
    );
    assert_eq!(data["mixed_last{job=\"x\"}"], vec![(now, 1.0f64.to_bits())]);
    assert_eq!(all_tenants(&s).await.len(), 1);

    // Decompressed size over the limit (1 MB here): a 72 kB body that
    // really decodes to 1.5 MB. (A header announcing more than its body can
    // hold is a 400, as the snappy bomb test shows.)
    let inflating = strata_remote_write::compress(&vec![b'a'; 1_500_000]);
    assert!(inflating.len() < 100_000);
    let (code, text) = push(&client, &base, Some(TENANT), inflating).await.unwrap();
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("decodes to 1500000 bytes"), "{text}");

    // Rate limit: 1 sample/s with a burst of 10 for tenant "limited".
    let many: Vec<_> = (0..20)
        .map(|i| series(&[("__name__", "rl"), ("i", &i.to_string())], &[(now, 1.0)]))
        .collect();
    // A request larger than the burst can never pass: 400, not a 429 the
    // sender would retry forever.
    let (code, text) = push(&client, &base, Some("limited"), write_body(&many))
        .await
        .unwrap();
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("more than the ingestion burst size"),
        "{text}"
    );
    assert_eq!(stored_series(&s, "limited").await, 0);
    // Within the burst it is accepted; right after, the bucket is nearly
    // empty (1 sample/s refills it), so the next request is 429.
    push_ok(&client, &base, Some("limited"), write_body(&many[..8])).await;
    let (code, text) = push(&client, &base, Some("limited"), write_body(&many[8..16]))
        .await
        .unwrap();
    assert_eq!(code, 429, "{text}");
    assert!(text.contains("rate limit"), "{text}");
    assert_eq!(stored_series(&s, "limited").await, 8);

    // Out-of-order and conflicting samples are refused with 400 and do not
    // change what is stored.
    let (code, _) = push(
        &client,
        &base,
        Some(TENANT),
        write_body(&[series(&[("__name__", "ooo"), ("job", "x")], &[(now, 1.0)])]),
    )
    .await
    .unwrap();
    assert_eq!(code, 200);
    for (t, v, msg) in [
        (now - 1000, 5.0, "sample_out_of_order"),
        (now, 2.0, "new_value_for_timestamp"),
    ] {
        let (code, text) = push(
            &client,
            &base,
            Some(TENANT),
            write_body(&[series(&[("__name__", "ooo"), ("job", "x")], &[(t, v)])]),
        )
        .await
        .unwrap();
        assert_eq!(code, 400, "{text}");
        assert!(text.contains(msg), "{text}");
    }
    // Re-sending the same sample is accepted (idempotent retries).
    push_ok(
        &client,
        &base,
        Some(TENANT),
        write_body(&[series(&[("__name__", "ooo"), ("job", "x")], &[(now, 1.0)])]),
    )
    .await;
    let data = read_ingester(&s.grpc_addr(), TENANT, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(data["ooo{job=\"x\"}"], vec![(now, 1.0f64.to_bits())]);

    // Still alive after all of it.
    assert!(s.proc.is_running(), "strata died: {}", s.proc.log_text());
    assert!(
        s.proc.terminate(Duration::from_secs(20)),
        "clean shutdown on SIGTERM"
    );
}

/// The instance-wide in-memory series limit: a push that needs a new series
/// beyond it fails with a retryable 503 (whatever the tenant), while pushes
/// to series that exist keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_series_limit_refuses_new_series_with_503() {
    let mut s = start_strata("strata-series-limit", &["--ingester.max-series=2"]).await;
    let client = reqwest::Client::new();
    let base = s.http();
    let t = now_ms() - 10_000;
    let one = |name: &str, t: i64| series(&[("__name__", name)], &[(t, 1.0)]);

    let (code, text) = push(
        &client,
        &base,
        Some(TENANT),
        write_body(&[one("first", t), one("second", t), one("third", t)]),
    )
    .await
    .unwrap();
    assert_eq!(code, 503, "three new series with room for two: {text}");
    assert!(
        text.contains("holds 2 series") && text.contains("retry"),
        "{text}"
    );
    // The limit is never exceeded.
    let held = read_ingester(&s.grpc_addr(), TENANT, 0, i64::MAX)
        .await
        .unwrap();
    assert!(held.len() <= 2, "{held:?}");
    let total: u64 = ingester_tenants(&s.grpc_addr())
        .await
        .unwrap()
        .values()
        .map(|c| c.series)
        .sum();
    assert_eq!(total, held.len() as u64);

    // Fill the rest of the room, then only existing series are accepted.
    let existing: Vec<&str> = ["first", "second"].into();
    push_ok(
        &client,
        &base,
        Some(TENANT),
        write_body(&[one("first", t), one("second", t)]),
    )
    .await;
    let (code, text) = push(
        &client,
        &base,
        Some(TENANT),
        write_body(&[one("first", t + 1000), one("second", t + 1000)]),
    )
    .await
    .unwrap();
    assert_eq!(code, 200, "pushes to existing series: {text}");
    let held = read_ingester(&s.grpc_addr(), TENANT, 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(held.keys().collect::<Vec<_>>(), ["first{}", "second{}"]);
    for name in existing {
        assert_eq!(
            held[&format!("{name}{{}}")],
            [(t, 1.0f64.to_bits()), (t + 1000, 1.0f64.to_bits())],
            "{name}"
        );
    }
    // A new series is refused, for this tenant and any other.
    for tenant in [TENANT, "another-tenant"] {
        let (code, text) = push(
            &client,
            &base,
            Some(tenant),
            write_body(&[one("third", t + 2000)]),
        )
        .await
        .unwrap();
        assert_eq!(code, 503, "{tenant}: {text}");
        assert!(text.contains("holds 2 series"), "{text}");
    }
    assert!(read_ingester(&s.grpc_addr(), "another-tenant", 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());
    assert!(s.proc.terminate(Duration::from_secs(10)), "clean shutdown");
}

/// Snappy headers that promise far more than their body: each is refused
/// with 400 before anything is allocated, so a flood of them costs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decompression_bombs_are_refused_without_allocating() {
    use futures::stream::{self, StreamExt};
    let mut s = start_strata("strata-snappy-bombs", &[]).await;
    let base = s.http();
    let pid = s.proc.pid().expect("pid");
    // Ten bytes: a header announcing 60 MiB, then a few literal bytes.
    let mut bomb = Vec::new();
    let mut n = 60u32 << 20;
    while n >= 0x80 {
        bomb.push((n as u8) | 0x80);
        n >>= 7;
    }
    bomb.push(n as u8);
    bomb.resize(10, 0);
    assert_eq!(bomb.len(), 10);

    let client = reqwest::Client::new();
    let before = rss_bytes(pid);
    let peak = RssPeak::start(pid);
    let answers: Vec<(u16, String)> = stream::iter(0..1024)
        .map(|_| {
            let (client, base, bomb) = (client.clone(), base.clone(), bomb.clone());
            async move { push(&client, &base, None, bomb).await.expect("answered") }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    for (code, text) in &answers {
        assert_eq!(*code, 400, "{text}");
        assert!(text.contains("snappy"), "{text}");
    }
    let rise = peak.peak().saturating_sub(before);
    assert!(
        rise < 512 << 20,
        "1024 bombs raised resident memory by {:.0} MiB (limit 512 MiB)",
        mib(rise)
    );
    assert!(s.proc.is_running(), "strata died: {}", s.proc.log_text());
}

/// Two tenant headers are refused on every endpoint that takes a tenant,
/// and a sample at an absurd timestamp is refused with its reason, counted
/// per tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_tenant_headers_and_absurd_timestamps_are_refused() {
    let s = start_strata("strata-strict-edges", &[]).await;
    let base = s.http();
    let client = reqwest::Client::new();
    let now = now_ms();
    let body = write_body(&[series(&[("__name__", "edge")], &[(now, 1.0)])]);
    let twice = |req: reqwest::RequestBuilder| {
        req.header("X-Scope-OrgID", "team-a")
            .header("X-Scope-OrgID", "team-b")
    };
    let push_req = client
        .post(format!("{base}/api/v1/push"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .body(body.clone());
    let resp = twice(push_req).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 400, "push: {text}");
    assert!(text.contains("more than once"), "{text}");
    let t = format!("{}", now / 1000);
    let reads: [(&str, Vec<(&str, &str)>); 8] = [
        ("/prometheus/api/v1/query", vec![("query", "edge")]),
        (
            "/prometheus/api/v1/query_range",
            vec![
                ("query", "edge"),
                ("start", &t),
                ("end", &t),
                ("step", "15"),
            ],
        ),
        ("/prometheus/api/v1/series", vec![("match[]", "edge")]),
        ("/prometheus/api/v1/labels", vec![]),
        ("/prometheus/api/v1/label/__name__/values", vec![]),
        ("/prometheus/api/v1/metadata", vec![]),
        (
            "/prometheus/api/v1/query_exemplars",
            vec![("query", "edge")],
        ),
        ("/api/v1/query", vec![("query", "edge")]),
    ];
    for (path, params) in reads {
        let resp = twice(client.get(format!("{base}{path}")).query(&params))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if status == 404 && path == "/api/v1/query" {
            continue; // Not served without the /prometheus prefix.
        }
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains("more than once"), "{path}: {text}");
    }
    // Nothing was stored by the refused push.
    assert!(read_ingester(&s.grpc_addr(), "team-a", 0, i64::MAX)
        .await
        .unwrap()
        .is_empty());

    // i64::MIN: refused with a reason; the good sample beside it is kept.
    let body = write_body(&[
        series(&[("__name__", "ancient")], &[(i64::MIN, 1.0)]),
        series(&[("__name__", "fine")], &[(now, 2.0)]),
    ]);
    let (code, text) = push(&client, &base, Some("team-a"), body).await.unwrap();
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("before 1970") && text.contains("ancient"),
        "{text}"
    );
    let held = read_ingester(&s.grpc_addr(), "team-a", 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(held.keys().collect::<Vec<_>>(), ["fine{}"]);
    let (_, metrics) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
    assert_eq!(
        metric_value(
            &metrics,
            "strata_distributor_discarded_samples_total{tenant=\"team-a\",reason=\"sample_timestamp_out_of_range\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}
