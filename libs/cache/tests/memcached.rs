//! MemcachedCache against a real memcached (Debian package `memcached`; `make test`
//! installs it). Without the binary each test prints that it was skipped.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_cache::{
    cache_key, Cache, CacheMetrics, LruCache, MemcachedCache, MemcachedConfig, TieredCache,
};

/// Generous timeout: tests run in parallel on a busy 2-core machine, and a request
/// that times out marks its server down for a second (see the failover test for the
/// default timeout's behaviour).
const TEST_TIMEOUT: Duration = Duration::from_secs(2);

fn cache(addrs: &[String], metrics: &CacheMetrics) -> MemcachedCache {
    MemcachedCache::new(
        "test",
        MemcachedConfig {
            addresses: addrs.to_vec(),
            timeout: TEST_TIMEOUT,
            ..Default::default()
        },
        metrics.clone(),
    )
    .expect("valid config")
}

fn value_for(key: &str, len: usize) -> Bytes {
    let seed = key.as_bytes();
    Bytes::from(
        (0..len)
            .map(|i| seed[i % seed.len().max(1)].wrapping_add(i as u8))
            .collect::<Vec<u8>>(),
    )
}

fn items(keys: &[String], len: usize) -> Vec<(String, Bytes)> {
    keys.iter()
        .map(|k| (k.clone(), value_for(k, len)))
        .collect()
}

fn chunk_keys(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| cache_key(&[b"c", tag.as_bytes(), &(i as u64).to_le_bytes()]))
        .collect()
}

fn encoded(metrics: &CacheMetrics) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
    out
}

fn metric(metrics: &CacheMetrics, series: &str) -> f64 {
    encoded(metrics)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn get_set_round_trip() {
    let mc = memcached_or_skip!("get_set_round_trip");
    let metrics = CacheMetrics::default();
    let c = cache(&[mc.addr()], &metrics);
    assert_eq!(c.name(), "test");
    c.set_multi(vec![
        ("c:one".into(), Bytes::from_static(b"1")),
        ("c:two".into(), Bytes::from_static(b"22")),
        ("c:empty".into(), Bytes::new()),
    ])
    .await;
    let got = c
        .get_multi(&[
            "c:one".into(),
            "c:two".into(),
            "c:empty".into(),
            "c:none".into(),
        ])
        .await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got["c:one"], "1");
    assert_eq!(got["c:two"], "22");
    assert_eq!(got["c:empty"], "");
    // Overwrite.
    c.set_multi(vec![("c:one".into(), Bytes::from_static(b"uno"))])
        .await;
    assert_eq!(c.get_multi(&["c:one".into()]).await["c:one"], "uno");

    assert_eq!(
        metric(&metrics, "strata_cache_hits_total{name=\"test\"}"),
        4.0
    );
    assert_eq!(
        metric(&metrics, "strata_cache_misses_total{name=\"test\"}"),
        1.0
    );
    assert_eq!(
        metric(&metrics, "strata_cache_items_stored_total{name=\"test\"}"),
        4.0
    );
    assert_eq!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"test\",op=\"get\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn multi_get_of_500_keys() {
    let mc = memcached_or_skip!("multi_get_of_500_keys");
    let metrics = CacheMetrics::default();
    let c = cache(&[mc.addr()], &metrics);
    let keys = chunk_keys(500, "multi");
    // Sizes from empty to 20 KB, so data blocks straddle read buffers.
    let stored: Vec<(String, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), value_for(k, (i * 41) % 20_000)))
        .collect();
    c.set_multi(stored.clone()).await;

    let mut ask = keys.clone();
    ask.extend(chunk_keys(50, "absent"));
    ask.push(keys[7].clone()); // a duplicate
    let got = c.get_multi(&ask).await;
    assert_eq!(got.len(), 500);
    for (k, v) in &stored {
        assert_eq!(got.get(k), Some(v), "{k}");
    }
    assert_eq!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"test\",op=\"get\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"test\",op=\"set\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn values_near_the_max_size() {
    let mc = memcached_or_skip!("values_near_the_max_size");
    let metrics = CacheMetrics::default();
    let c = cache(&[mc.addr()], &metrics);
    let max = MemcachedConfig::default().max_item_size;
    // The longest key memcached takes with the largest value we write: must fit a
    // memcached started with its default item size limit.
    let long_key = "k".repeat(250);
    let items = vec![
        (long_key.clone(), value_for("max", max)),
        ("c:half".to_string(), value_for("half", max / 2)),
        ("c:too-big".to_string(), value_for("big", max + 1)),
    ];
    c.set_multi(items.clone()).await;
    let got = c
        .get_multi(&[long_key.clone(), "c:half".into(), "c:too-big".into()])
        .await;
    assert_eq!(got.get(&long_key), Some(&items[0].1));
    assert_eq!(got.get("c:half"), Some(&items[1].1));
    assert!(
        !got.contains_key("c:too-big"),
        "values above max_item_size are skipped"
    );
    assert_eq!(
        metric(&metrics, "strata_cache_items_skipped_total{name=\"test\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"test\",op=\"set\"}"
        ),
        0.0
    );

    // A smaller configured limit skips on our side, before memcached sees it.
    let small = MemcachedCache::new(
        "small",
        MemcachedConfig {
            addresses: vec![mc.addr()],
            timeout: TEST_TIMEOUT,
            max_item_size: 1000,
            ..Default::default()
        },
        metrics.clone(),
    )
    .unwrap();
    small
        .set_multi(vec![
            ("c:s1".into(), value_for("s1", 1000)),
            ("c:s2".into(), value_for("s2", 1001)),
        ])
        .await;
    let got = small.get_multi(&["c:s1".into(), "c:s2".into()]).await;
    assert!(got.contains_key("c:s1") && !got.contains_key("c:s2"));
}

#[tokio::test]
async fn long_and_odd_keys() {
    let mc = memcached_or_skip!("long_and_odd_keys");
    let metrics = CacheMetrics::default();
    let c = cache(&[mc.addr()], &metrics);
    let hashed_form_of_space_key = {
        // What "a b" is sent as: a raw key spelled like that must not alias it.
        let h = twox_hash::XxHash3_128::oneshot(b"a b");
        format!("~{h:032x}")
    };
    let keys: Vec<String> = vec![
        "x".repeat(250),
        "x".repeat(251),
        "y".repeat(10_000),
        "a b".into(),
        "a  b".into(),
        "tab\there".into(),
        "line\r\nbreak".into(),
        "get other\r\n".into(),
        String::new(),
        "~tilde".into(),
        "ünïcödé".into(),
        "\u{0}\u{1}".into(),
        hashed_form_of_space_key,
        "iq:tenant/{job=\"api\"}".into(),
    ];
    let stored: Vec<(String, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), Bytes::from(format!("value {i}"))))
        .collect();
    c.set_multi(stored.clone()).await;
    let got = c.get_multi(&keys).await;
    for (k, v) in &stored {
        assert_eq!(got.get(k), Some(v), "{k:?}");
    }
    assert_eq!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"test\",op=\"set\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"test\",op=\"get\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn two_servers_share_the_keys() {
    let a = memcached_or_skip!("two_servers_share_the_keys");
    let b = support::Memcached::start().expect("second memcached");
    let metrics = CacheMetrics::default();
    let both = cache(&[a.addr(), b.addr()], &metrics);
    let keys = chunk_keys(400, "spread");
    let stored = items(&keys, 64);
    both.set_multi(stored.clone()).await;
    assert_eq!(both.get_multi(&keys).await.len(), 400);

    // Ask each server alone what it holds.
    let only_a = cache(&[a.addr()], &metrics).get_multi(&keys).await;
    let only_b = cache(&[b.addr()], &metrics).get_multi(&keys).await;
    assert!(
        only_a.len() > 100 && only_b.len() > 100,
        "{} / {}",
        only_a.len(),
        only_b.len()
    );
    assert_eq!(only_a.len() + only_b.len(), 400);
    for k in &keys {
        let holder = if only_a.contains_key(k) {
            a.addr()
        } else {
            b.addr()
        };
        assert_eq!(both.server_for(k), holder);
    }
    // The same list in another order places keys the same way.
    let swapped = cache(&[b.addr(), a.addr()], &metrics);
    assert_eq!(swapped.get_multi(&keys).await.len(), 400);
}

#[tokio::test]
async fn a_killed_server_costs_misses_not_errors_and_comes_back() {
    let a = memcached_or_skip!("a_killed_server_costs_misses_not_errors_and_comes_back");
    let mut b = support::Memcached::start().expect("second memcached");
    let metrics = CacheMetrics::default();
    let timeout = Duration::from_secs(1);
    let c = MemcachedCache::new(
        "failover",
        MemcachedConfig {
            addresses: vec![a.addr(), b.addr()],
            timeout,
            ..Default::default()
        },
        metrics.clone(),
    )
    .unwrap();
    let keys = chunk_keys(300, "failover");
    let stored = items(&keys, 256);
    c.set_multi(stored.clone()).await;
    assert_eq!(c.get_multi(&keys).await.len(), 300);
    let on_a: HashSet<&String> = keys
        .iter()
        .filter(|k| c.server_for(k) == a.addr())
        .collect();
    let on_b = keys.len() - on_a.len();
    assert!(!on_a.is_empty() && on_b > 0);

    // Kill B with connections to it pooled.
    b.kill();
    for round in 0..3 {
        let t = Instant::now();
        let got = c.get_multi(&keys).await;
        let took = t.elapsed();
        assert!(
            took < timeout + Duration::from_millis(200),
            "round {round}: {took:?}"
        );
        assert_eq!(got.len(), on_a.len(), "round {round}: A's keys are hits");
        assert!(got.keys().all(|k| on_a.contains(k)));
        // Writes to the dead server are dropped quietly.
        c.set_multi(stored[..20].to_vec()).await;
    }
    assert_eq!(
        metric(&metrics, "strata_cache_servers_down{name=\"failover\"}"),
        1.0
    );
    assert!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"failover\",op=\"get\"}"
        ) >= 1.0
    );

    // Back, empty, on the same port: after its backoff it is used again.
    let b2 = support::Memcached::start_on(b.port()).expect("memcached restarts on its port");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        c.set_multi(stored.clone()).await;
        if c.get_multi(&keys).await.len() == 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted server never used again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        metric(&metrics, "strata_cache_servers_down{name=\"failover\"}"),
        0.0
    );
    drop(b2);
}

#[tokio::test]
async fn a_restart_between_requests_is_not_counted_as_a_failure() {
    let mut mc = memcached_or_skip!("a_restart_between_requests_is_not_counted_as_a_failure");
    let metrics = CacheMetrics::default();
    let c = cache(&[mc.addr()], &metrics);
    let keys = chunk_keys(10, "restart");
    c.set_multi(items(&keys, 10)).await;
    assert_eq!(c.get_multi(&keys).await.len(), 10);
    // The pooled connection now points at a dead process.
    let port = mc.port();
    mc.kill();
    let _mc = support::Memcached::start_on(port).expect("memcached restarts on its port");
    // The stale connection fails, a fresh one is tried at once: no error, no backoff.
    assert!(
        c.get_multi(&keys).await.is_empty(),
        "a restarted memcached is empty"
    );
    c.set_multi(items(&keys, 10)).await;
    assert_eq!(c.get_multi(&keys).await.len(), 10);
    assert_eq!(
        metric(
            &metrics,
            "strata_cache_errors_total{name=\"test\",op=\"get\"}"
        ),
        0.0
    );
    assert_eq!(
        metric(&metrics, "strata_cache_servers_down{name=\"test\"}"),
        0.0
    );
}

#[tokio::test]
async fn tiered_fills_l1_from_memcached() {
    let mc = memcached_or_skip!("tiered_fills_l1_from_memcached");
    let metrics = CacheMetrics::default();
    let l1 = Arc::new(LruCache::new("l1", 1 << 20, metrics.clone()));
    let l2 = Arc::new(cache(&[mc.addr()], &metrics));
    let keys = chunk_keys(50, "tiered");
    l2.set_multi(items(&keys, 512)).await;
    let tiered = TieredCache::new(vec![l1.clone(), l2.clone()]);

    let got = tiered.get_multi(&keys).await;
    assert_eq!(got.len(), 50);
    assert_eq!(l1.len(), 50, "L1 filled with L2's hits");
    for k in &keys {
        assert_eq!(l1.get(k), Some(value_for(k, 512)));
    }
    // Second read is all L1.
    let before = metric(&metrics, "strata_cache_keys_requested_total{name=\"test\"}");
    assert_eq!(tiered.get_multi(&keys).await.len(), 50);
    assert_eq!(
        metric(&metrics, "strata_cache_keys_requested_total{name=\"test\"}"),
        before
    );
    // Writes reach both.
    tiered
        .set_multi(vec![("c:both".into(), Bytes::from_static(b"v"))])
        .await;
    assert!(l1.get("c:both").is_some());
    assert_eq!(l2.get_multi(&["c:both".into()]).await.len(), 1);
}
