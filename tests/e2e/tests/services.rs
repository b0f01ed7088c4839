//! Every service — ingester, distributor, querier, ruler, and the
//! one-process `strata` — serves `/ready`, `/metrics` with its own metrics
//! and the ring status page listing the ingesters as ACTIVE, and exits 0
//! soon after SIGTERM.

use std::time::{Duration, Instant};

use strata_e2e::*;

const TENANT: &str = "team-svc";
const IDS: [&str; 3] = ["ingester-0", "ingester-1", "ingester-2"];

/// `/ready` is 200, the ring page shows `ids` ACTIVE, and `/metrics` is 200
/// with every `(series, at least)` of `metrics`.
async fn check_service(
    client: &reqwest::Client,
    service: &Strata,
    ids: &[&str],
    metrics: &[(&str, f64)],
) {
    let name = &service.proc.name;
    let base = service.http();
    let (code, text) = get_text(client, &format!("{base}/ready")).await.unwrap();
    assert_eq!(code, 200, "{name} /ready: {text}");
    let members = wait_for_active(client, &base, ids, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    assert_eq!(members.len(), ids.len(), "{name}'s ring: {members:?}");
    let (code, text) = get_text(client, &format!("{base}/metrics")).await.unwrap();
    assert_eq!(code, 200, "{name} /metrics: {text}");
    for &(series, least) in metrics {
        let value = metric_value(&text, series);
        assert!(
            value.is_some_and(|v| v >= least),
            "{name}: /metrics has {series} = {value:?}, want at least {least}:\n{text}"
        );
    }
}

/// Pushes one sample of `svc_metric` to `writer` as `tenant`, then asserts
/// an instant query of it through `reader` answers 200 with its value, so
/// that the write and read metrics move.
async fn write_and_read_one_sample(
    client: &reqwest::Client,
    writer: &Strata,
    reader: &Strata,
    tenant: Option<&str>,
) {
    let t = now_ms() - 1000;
    let body = write_body(&[series(&[("__name__", "svc_metric")], &[(t, 1.0)])]);
    push_ok(client, &writer.http(), tenant, body).await;
    let (code, answer) = api_get(
        client,
        &reader.http(),
        "/prometheus/api/v1/query",
        tenant,
        &[
            ("query", "svc_metric"),
            ("time", &format!("{}", t / 1000 + 1)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["data"]["result"][0]["value"][1], "1", "{answer}");
}

/// SIGTERM, then a successful exit within 5 s.
fn stop(service: &mut Strata) {
    let started = Instant::now();
    assert!(
        service.proc.terminate(Duration::from_secs(5)),
        "{} did not exit 0 within 5 s of SIGTERM; log:\n{}",
        service.proc.name,
        service.proc.log_text()
    );
    eprintln!("{} stopped in {:?}", service.proc.name, started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_services_serve_ready_metrics_ring_and_stop_on_sigterm() {
    let dynalite = Dynalite::start().await.expect("dynalite");
    let flags = dynamo_ring_flags(&dynalite.endpoint(), 3);
    let mut ingesters = Vec::new();
    for id in IDS {
        let mut f = flags.clone();
        f.push(format!("--lifecycler.id={id}"));
        ingesters.push(Strata::start(id, "strata-ingester", &f));
    }
    for ing in &mut ingesters {
        ing.wait_ready().await.expect("ingester ready");
    }
    let mut dist = Strata::start("svc-distributor", "strata-distributor", &flags);
    let mut querier = Strata::start("svc-querier", "strata-querier", &flags);
    let mut ruler = Strata::start("svc-ruler", "strata-ruler", &flags);
    for s in [&mut dist, &mut querier, &mut ruler] {
        s.wait_ready().await.expect("service ready");
    }
    let client = reqwest::Client::new();
    for s in [&dist, &querier, &ruler] {
        wait_for_active(&client, &s.http(), &IDS, Duration::from_secs(20))
            .await
            .unwrap();
    }

    write_and_read_one_sample(&client, &dist, &querier, Some(TENANT)).await;

    let three_active = ("strata_ring_members{state=\"ACTIVE\"}", 3.0);
    for ing in &ingesters {
        check_service(
            &client,
            ing,
            &IDS,
            &[
                three_active,
                // RF 3 over 3 ingesters: each holds the series.
                ("strata_ingester_memory_series", 1.0),
                ("strata_ingester_samples_appended_total", 1.0),
                (
                    "strata_lifecycler_ring_lifecycler_state{state=\"ACTIVE\"}",
                    1.0,
                ),
            ],
        )
        .await;
    }
    let received = format!("strata_distributor_received_samples_total{{tenant=\"{TENANT}\"}}");
    check_service(&client, &dist, &IDS, &[three_active, (&received, 1.0)]).await;
    check_service(
        &client,
        &querier,
        &IDS,
        &[three_active, ("strata_querier_requests_total", 1.0)],
    )
    .await;
    check_service(&client, &ruler, &IDS, &[three_active]).await;

    stop(&mut ruler);
    stop(&mut querier);
    stop(&mut dist);
    for ing in &mut ingesters {
        stop(ing);
    }
    drop(dynalite);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_serves_ready_metrics_ring_and_stops_on_sigterm() {
    let mut strata = start_strata("svc-strata", &["--lifecycler.id=strata-one"]).await;
    let client = reqwest::Client::new();
    write_and_read_one_sample(&client, &strata, &strata, None).await;

    check_service(
        &client,
        &strata,
        &["strata-one"],
        &[
            ("strata_ring_members{state=\"ACTIVE\"}", 1.0),
            ("strata_ingester_memory_series", 1.0),
            (
                "strata_distributor_received_samples_total{tenant=\"anonymous\"}",
                1.0,
            ),
            ("strata_querier_requests_total", 1.0),
        ],
    )
    .await;
    stop(&mut strata);
}
