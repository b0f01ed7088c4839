// Throwaway: own client vs async-memcached against a local memcached.
#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_memcached::AsciiProtocol;
use bytes::Bytes;
use rand::Rng;
use strata_cache::{cache_key, Cache, CacheMetrics, MemcachedCache, MemcachedConfig};

const N: usize = 10_000;
const BATCH: usize = 100;
const KEYS: usize = 20_000;

fn pct(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e6;
    format!("p50 {:.0} µs  p99 {:.0} µs  max {:.0} µs", p(0.5), p(0.99), p(1.0))
}

fn batches(keys: &[String]) -> Vec<Vec<String>> {
    let mut rng = rand::rng();
    (0..N)
        .map(|_| (0..BATCH).map(|_| keys[rng.random_range(0..keys.len())].clone()).collect())
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = support::Memcached::start().expect("memcached");
    let keys: Vec<String> = (0..KEYS)
        .map(|i| cache_key(&[b"c", b"cmp", &(i as u64).to_le_bytes()]))
        .collect();
    for size in [1024usize, 16 * 1024] {
        let own = Arc::new(
            MemcachedCache::new(
                "own",
                MemcachedConfig {
                    addresses: vec![server.addr()],
                    timeout: Duration::from_secs(5),
                    max_batch: 128,
                    ..Default::default()
                },
                CacheMetrics::default(),
            )
            .unwrap(),
        );
        let value = Bytes::from(vec![0x5a; size]);
        for chunk in keys.chunks(1000) {
            own.set_multi(chunk.iter().map(|k| (k.clone(), value.clone())).collect()).await;
        }
        let work = batches(&keys);

        // Sequential, one request at a time.
        for round in 0..2 {
            let mut lat = Vec::with_capacity(N);
            let t = Instant::now();
            for b in &work {
                let s = Instant::now();
                let got = own.get_multi(b).await;
                lat.push(s.elapsed());
                assert!(got.len() >= 90);
            }
            println!("{size:>6} B own            sequential (round {round}): {:.2} s  {}", t.elapsed().as_secs_f64(), pct(lat));

            let mut client = async_memcached::Client::new(format!("tcp://{}", server.addr())).await.unwrap();
            let mut lat = Vec::with_capacity(N);
            let t = Instant::now();
            for b in &work {
                let s = Instant::now();
                let got = client.get_multi(b.iter()).await.unwrap();
                let got: std::collections::HashMap<String, Bytes> = got
                    .into_iter()
                    .map(|v| (String::from_utf8(v.key).unwrap(), Bytes::from(v.data.unwrap_or_default())))
                    .collect();
                lat.push(s.elapsed());
                assert!(got.len() >= 90);
            }
            println!("{size:>6} B async-memcached sequential (round {round}): {:.2} s  {}", t.elapsed().as_secs_f64(), pct(lat));
        }

        // 8 concurrent callers; own pool of 4 vs 4 async-memcached clients behind mutexes.
        let work = Arc::new(work);
        let t = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let (own, work) = (own.clone(), work.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    for b in work.iter().skip(w).step_by(8) {
                        let s = Instant::now();
                        own.get_multi(b).await;
                        lat.push(s.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        println!("{size:>6} B own            8 callers: {:.2} s  {}", t.elapsed().as_secs_f64(), pct(lat));

        let mut clients = Vec::new();
        for _ in 0..4 {
            clients.push(tokio::sync::Mutex::new(
                async_memcached::Client::new(format!("tcp://{}", server.addr())).await.unwrap(),
            ));
        }
        let clients = Arc::new(clients);
        let t = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let (clients, work) = (clients.clone(), work.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    for (i, b) in work.iter().skip(w).step_by(8).enumerate() {
                        let s = Instant::now();
                        let mut c = clients[(w + i) % 4].lock().await;
                        let got = c.get_multi(b.iter()).await.unwrap();
                        drop(c);
                        let _: Vec<(String, Bytes)> = got
                            .into_iter()
                            .map(|v| (String::from_utf8(v.key).unwrap(), Bytes::from(v.data.unwrap_or_default())))
                            .collect();
                        lat.push(s.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        println!("{size:>6} B async-memcached 8 callers: {:.2} s  {}", t.elapsed().as_secs_f64(), pct(lat));
    }
}
