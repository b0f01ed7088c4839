//! Two ruler replicas share the groups through the ruler ring (in
//! dynalite), with the rule groups in S3 (s3s-fs): each group is evaluated
//! by exactly one; when one is killed its groups resume on the other within
//! the configured time, an alert's `for` state carried over; restarted, it
//! takes its share back and still no group runs twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_e2e::*;

const GROUPS: usize = 8;
const TENANT: &str = "team-r";

/// `rule_group -> evaluations` of a ruler's `/metrics`.
async fn evaluations(client: &reqwest::Client, ruler: &Strata) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok((200, text)) = get_text(client, &format!("{}/metrics", ruler.http())).await else {
        return out;
    };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("strata_ruler_group_evaluations_total{") else {
            continue;
        };
        if !rest.contains(&format!("tenant=\"{TENANT}\"")) {
            continue;
        }
        let Some(start) = rest.find("rule_group=\"") else {
            continue;
        };
        let name = &rest[start + 12..];
        let name = &name[..name.find('"').unwrap_or(0)];
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        out.insert(name.to_string(), value);
    }
    out
}

fn all_groups() -> BTreeSet<String> {
    let mut g: BTreeSet<String> = (0..GROUPS).map(|i| format!("ns;g{i}")).collect();
    g.insert("ns;slow".to_string());
    g
}

/// Which groups each ruler is evaluating now: those whose counter grows
/// over `window`.
async fn running(
    client: &reqwest::Client,
    rulers: &[&Strata],
    window: Duration,
) -> Vec<BTreeSet<String>> {
    let mut before = Vec::new();
    for r in rulers {
        before.push(evaluations(client, r).await);
    }
    tokio::time::sleep(window).await;
    let mut out = Vec::new();
    for (r, before) in rulers.iter().zip(before) {
        let after = evaluations(client, r).await;
        out.push(
            after
                .iter()
                .filter(|(k, v)| **v > before.get(*k).copied().unwrap_or(0.0))
                .map(|(k, _)| k.clone())
                .collect(),
        );
    }
    out
}

async fn alert_active_at(client: &reqwest::Client, ruler: &Strata) -> Option<(String, f64)> {
    let answer = api_get(
        client,
        &ruler.http(),
        "/prometheus/api/v1/alerts",
        Some(TENANT),
        &[],
    )
    .await
    .ok()?;
    if answer.0 != 200 {
        return None;
    }
    let alerts: Vec<Value> = answer.1["data"]["alerts"].as_array().cloned()?;
    let a = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "AlwaysOn")?;
    let active_at = a["activeAt"].as_str()?.to_string();
    Some((
        a["state"].as_str()?.to_string(),
        rfc3339_seconds(&active_at)?,
    ))
}

/// Seconds since the epoch of an RFC 3339 UTC time (`...Z`).
fn rfc3339_seconds(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min, sec) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + min * 60) as f64 + sec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rulers_share_groups_and_take_over() {
    let dynalite = Dynalite::start().await.expect("dynalite");
    let s3 = S3sFs::start().await.expect("s3s-fs");
    let store = store_flags(&s3, &dynalite.endpoint(), &[]);
    let extra = RoleFlags {
        ingester: store.clone(),
        distributor: store.clone(),
        querier: store.clone(),
    };
    let endpoint = dynalite.endpoint();
    let cluster = Cluster::start_on(dynalite, "ruler-ring", 1, 1, &extra)
        .await
        .expect("cluster");
    let mut ruler_flags = dynamo_ring_flags(&endpoint, 1);
    ruler_flags.extend(store.iter().cloned());
    ruler_flags.extend(
        [
            "--ruler.storage.backend=s3",
            "--ruler.poll-interval=1s",
            "--ruler.ring.heartbeat-period=1s",
            "--ruler.ring.heartbeat-timeout=4s",
            "--ruler.ring.poll-interval=500ms",
            "--ruler.for-grace-period=1s",
        ]
        .map(String::from),
    );
    let flags_for = |id: &str| {
        let mut f = ruler_flags.clone();
        f.push(format!("--lifecycler.id={id}"));
        f
    };
    let mut a = Strata::start("ruler-a", "strata-ruler", &flags_for("ruler-a"));
    a.wait_ready().await.expect("ruler a ready");
    let mut b = Strata::start("ruler-b", "strata-ruler", &flags_for("ruler-b"));
    b.wait_ready().await.expect("ruler b ready");
    let client = reqwest::Client::new();

    // Groups uploaded through one ruler's API land in S3 for both.
    for i in 0..GROUPS {
        let body = format!(
            "name: g{i}\ninterval: 1s\nrules:\n  - record: g{i}:value\n    expr: vector({i})\n"
        );
        let resp = client
            .post(format!("{}/prometheus/config/v1/rules/ns", a.http()))
            .header("X-Scope-OrgID", TENANT)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
    }
    let slow =
        "name: slow\ninterval: 1s\nrules:\n  - alert: AlwaysOn\n    expr: vector(1)\n    for: 1m\n";
    let resp = client
        .post(format!("{}/prometheus/config/v1/rules/ns", b.http()))
        .header("X-Scope-OrgID", TENANT)
        .body(slow)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let stored = s3
        .objects(S3_BUCKET)
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("@rules/{TENANT}/")))
        .count();
    assert_eq!(
        stored,
        GROUPS + 1,
        "rule groups in S3: {:?}",
        s3.objects(S3_BUCKET)
    );

    // Every group runs, each on exactly one replica.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (on_a, on_b) = loop {
        let now = running(&client, &[&a, &b], Duration::from_secs(3)).await;
        let (on_a, on_b) = (now[0].clone(), now[1].clone());
        let both: BTreeSet<String> = on_a.intersection(&on_b).cloned().collect();
        assert!(both.is_empty(), "groups evaluated by both rulers: {both:?}");
        let union: BTreeSet<String> = on_a.union(&on_b).cloned().collect();
        if union == all_groups() {
            break (on_a, on_b);
        }
        assert!(
            Instant::now() < deadline,
            "not every group runs: a {on_a:?}, b {on_b:?}; logs:\n{}\n{}",
            a.proc.log_text(),
            b.proc.log_text()
        );
    };
    eprintln!("ruler-a runs {on_a:?}, ruler-b runs {on_b:?}");
    // The recorded series are there, once per evaluation (a second
    // evaluator would be seen above; here: the data).
    let answer = api_get(
        &client,
        &cluster.querier.http(),
        "/prometheus/api/v1/query",
        Some(TENANT),
        &[("query", "g3:value")],
    )
    .await
    .unwrap();
    let result = success(&answer)["result"].clone();
    assert_eq!(result[0]["value"][1], "3", "{result}");

    // The alert has been pending a while; kill the ruler that runs it.
    let (state, first_active_at) = loop {
        let found = match alert_active_at(&client, &a).await {
            Some(x) => Some(x),
            None => alert_active_at(&client, &b).await,
        };
        if let Some(x) = found {
            break x;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(state, "pending");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let slow_on_a = on_a.contains("ns;slow");
    let (victim, survivor) = if slow_on_a {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    victim.proc.kill();
    let killed = Instant::now();
    let killed_at = now_ms() as f64 / 1000.0;

    // Its groups resume on the other within the heartbeat timeout (4 s),
    // a ring poll and a sync.
    let taken_over = loop {
        let now = running(&client, &[&*survivor], Duration::from_millis(1500)).await;
        if now[0] == all_groups() {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the survivor runs only {:?}; log:\n{}",
            now[0],
            survivor.proc.log_text()
        );
    };
    eprintln!("groups taken over {taken_over:?} after the kill");
    assert!(
        taken_over <= Duration::from_secs(4 + 1 + 2 + 3),
        "took {taken_over:?}, more than heartbeat timeout + ring poll + sync + one measuring window"
    );

    // The alert's `for` state came along from ALERTS_FOR_STATE: still
    // counted from when it first went pending, not from the takeover (the
    // time the group was not evaluated is added, as Prometheus does).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some((state, active_at)) = alert_active_at(&client, survivor).await {
            if active_at < killed_at {
                assert_eq!(state, "pending");
                assert!(
                    active_at >= first_active_at
                        && active_at <= first_active_at + killed.elapsed().as_secs_f64() + 2.0,
                    "restored activeAt {active_at}, first {first_active_at}, killed at {killed_at}"
                );
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the alert's for state was not restored; log:\n{}",
            survivor.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The killed ruler comes back (with its tokens, so with its share of
    // the groups), and still no group runs on both.
    victim.restart();
    victim.wait_ready().await.expect("ruler ready again");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = running(&client, &[&a, &b], Duration::from_secs(3)).await;
        let both: BTreeSet<String> = now[0].intersection(&now[1]).cloned().collect();
        let union: BTreeSet<String> = now[0].union(&now[1]).cloned().collect();
        if both.is_empty() && union == all_groups() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the restart: a {:?}, b {:?}",
            now[0],
            now[1]
        );
    }

    // The restarted ruler took back its groups, "slow" among them (its
    // tokens are the same): it restored the alert's `for` state from what
    // the other wrote meanwhile, so the alert still counts from before the
    // kill.
    let victim = if slow_on_a { &a } else { &b };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let on_victim = evaluations(&client, victim).await;
        if on_victim.contains_key("ns;slow") {
            if let Some((state, active_at)) = alert_active_at(&client, victim).await {
                if active_at < killed_at {
                    assert!(state == "pending" || state == "firing", "{state}");
                    assert!(
                        active_at >= first_active_at,
                        "restored activeAt {active_at} before the first {first_active_at}"
                    );
                    break;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the restarted ruler did not take back the alert with its for state; log:\n{}",
            victim.proc.log_text_of_this_run()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(cluster);
}
