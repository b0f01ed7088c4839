//! MemcachedCache against a real local memcached: batch reads and writes of
//! chunk-sized values. Skipped (with a message) when no memcached binary is installed.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strata_cache::{cache_key, Cache, CacheMetrics, LruCache, MemcachedCache, MemcachedConfig};

fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| cache_key(&[b"c", b"bench", &(i as u64).to_le_bytes()]))
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let lru = LruCache::new("bench-lru", 256 << 20, CacheMetrics::default());
    let all = keys(10_000);
    let value = Bytes::from(vec![0xa5u8; 1024]);
    rt.block_on(lru.set_multi(all.iter().map(|k| (k.clone(), value.clone())).collect()));
    let mut g = c.benchmark_group("lru");
    g.throughput(Throughput::Elements(100));
    g.bench_function("get_multi_100x1KiB", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 100) % 9_900;
            rt.block_on(lru.get_multi(&all[i..i + 100]))
        })
    });
    g.finish();

    let Some(server) = support::Memcached::start() else {
        eprintln!("skipped memcached benchmarks: no memcached binary (Debian package `memcached`)");
        return;
    };
    let cache = MemcachedCache::new(
        "bench",
        MemcachedConfig {
            addresses: vec![server.addr()],
            timeout: Duration::from_secs(1),
            ..Default::default()
        },
        CacheMetrics::default(),
    )
    .unwrap();

    let mut g = c.benchmark_group("memcached");
    for size in [1024usize, 16 * 1024] {
        // Stay well inside the test server's 64 MB, so nothing is evicted.
        let n = all.len().min((32 << 20) / size);
        let keys = &all[..n];
        let value = Bytes::from(vec![0x5au8; size]);
        rt.block_on(cache.set_multi(keys.iter().map(|k| (k.clone(), value.clone())).collect()));
        g.throughput(Throughput::Bytes((100 * size) as u64));
        g.bench_with_input(BenchmarkId::new("get_multi_100", size), &size, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 100) % (n - 100);
                let got = rt.block_on(cache.get_multi(&keys[i..i + 100]));
                assert_eq!(got.len(), 100);
                got
            })
        });
        g.bench_with_input(BenchmarkId::new("set_multi_100", size), &size, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 100) % (n - 100);
                let items = keys[i..i + 100]
                    .iter()
                    .map(|k| (k.clone(), value.clone()))
                    .collect();
                rt.block_on(cache.set_multi(items))
            })
        });
    }
    g.finish();
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
