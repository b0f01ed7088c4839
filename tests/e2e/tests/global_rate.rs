//! The global ingestion-rate strategy across real processes: two
//! distributors, which find each other in the distributor ring (dynalite),
//! each enforce half of a tenant's rate, so a tenant pushing as fast as it
//! can through both gets its configured rate, not twice it.

use std::time::{Duration, Instant};

use strata_e2e::*;

const RATE: f64 = 2000.0;
const BATCH: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_distributors_share_a_tenants_rate() {
    let limits = vec![
        "--distributor.ingestion-rate-strategy=global".to_string(),
        "--distributor.ring-heartbeat-period=1s".to_string(),
        format!("--distributor.limits.ingestion-rate={RATE}"),
        "--distributor.limits.ingestion-burst-size=400".to_string(),
    ];
    // Each distributor's ID in the distributor ring (in Kubernetes, the
    // pod name); both run on this host, so its name would not do.
    let mut first = limits.clone();
    first.push("--lifecycler.id=distributor-1".to_string());
    let extra = RoleFlags {
        distributor: first,
        ..RoleFlags::default()
    };
    let dynalite = Dynalite::start().await.expect("dynalite");
    let endpoint = dynalite.endpoint();
    let cluster = Cluster::start_on(dynalite, "global-rate", 1, 1, &extra)
        .await
        .expect("cluster");
    let mut flags = dynamo_ring_flags(&endpoint, 1);
    flags.extend(limits);
    flags.push("--lifecycler.id=distributor-2".to_string());
    let mut second = Strata::start("global-rate-distributor-2", "strata-distributor", &flags);
    second.wait_ready().await.expect("second distributor");
    let client = reqwest::Client::new();
    let distributors = [cluster.distributor.http(), second.http()];

    // Both see two healthy distributors.
    let deadline = Instant::now() + Duration::from_secs(20);
    for base in &distributors {
        loop {
            let (_, text) = get_text(&client, &format!("{base}/metrics")).await.unwrap();
            if metric_value(&text, "strata_distributor_ring_members{state=\"ACTIVE\"}") == Some(2.0)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{base} does not see both distributors:\n{}",
                text.lines()
                    .filter(|l| l.starts_with("strata_distributor_ring"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Push as fast as possible through both, 4 senders each, for 15 s;
    // count what is accepted.
    let run = Duration::from_secs(15);
    let started = Instant::now();
    let mut senders = Vec::new();
    for (d, base) in distributors.iter().enumerate() {
        for s in 0..4 {
            let base = base.clone();
            let client = client.clone();
            senders.push(tokio::spawn(async move {
                let (mut accepted, mut limited, mut other) = (0u64, 0u64, 0u64);
                let mut i = 0u64;
                while started.elapsed() < run {
                    let t = now_ms();
                    let series: Vec<_> = (0..BATCH)
                        .map(|k| {
                            let id = format!("{d}-{s}-{k}");
                            series(&[("__name__", "flood"), ("id", &id)], &[(t, i as f64)])
                        })
                        .collect();
                    i += 1;
                    match push(&client, &base, Some("greedy"), write_body(&series)).await {
                        Ok((200..=299, _)) => accepted += BATCH as u64,
                        Ok((429, _)) => limited += 1,
                        _ => other += 1,
                    }
                }
                (accepted, limited, other)
            }));
        }
    }
    let (mut accepted, mut limited, mut other) = (0, 0, 0);
    for s in senders {
        let (a, l, o) = s.await.unwrap();
        accepted += a;
        limited += l;
        other += o;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Each distributor starts with a full bucket (400) on top of the rate.
    let expected = RATE * elapsed + 2.0 * 400.0;
    let ratio = accepted as f64 / expected;
    eprintln!(
        "accepted {accepted} samples in {elapsed:.1} s ({:.0}/s; expected {expected:.0}, ratio {ratio:.3}); {limited} pushes limited, {other} other",
        accepted as f64 / elapsed
    );
    assert_eq!(other, 0, "pushes failed other than by the rate limit");
    assert!(
        limited > 0,
        "the senders never hit the limit: not pushing fast enough"
    );
    assert!(
        (0.85..=1.15).contains(&ratio),
        "accepted {accepted} samples in {elapsed:.1} s, expected {expected:.0} (±15 %)"
    );
}
