//! Encode/decode throughput of 120-sample XOR chunks (Prometheus' target chunk size).
//!
//! Run with `cargo bench -p strata-chunk`; criterion reports time per chunk and,
//! via `Throughput::Elements`, samples per second (ns/sample = 1e9 / that rate).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strata_chunk::{XorChunk, XorIterator};

const SAMPLES: usize = 120;

/// Small deterministic PRNG so the data is identical across runs.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

fn datasets() -> Vec<(&'static str, Vec<(i64, f64)>)> {
    let mut rng = Lcg(42);
    let start = 1_700_000_000_000i64;

    // 15s scrapes with a few ms of jitter; a gauge with 2-decimal moves and runs.
    let mut t = start;
    let mut v = 512.25f64;
    let mut realistic = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        realistic.push((t, v));
        t += 15_000 + (rng.next() % 7) as i64 - 3;
        if rng.next() % 3 != 0 {
            v = ((v * 100.0).round() + (rng.next() % 2001) as f64 - 1000.0) / 100.0;
        }
    }

    // Perfectly regular timestamps and a monotonically increasing counter.
    let counter: Vec<(i64, f64)> = (0..SAMPLES)
        .map(|i| (start + i as i64 * 15_000, (i * 17) as f64))
        .collect();

    // Worst case: irregular timestamps and random 64-bit value patterns.
    let mut t = start;
    let mut random = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        random.push((t, f64::from_bits(rng.next() ^ (rng.next() << 20))));
        t += 1 + (rng.next() % 2_000_000) as i64;
    }

    vec![
        ("realistic", realistic),
        ("counter", counter),
        ("random", random),
    ]
}

fn bench_xor(c: &mut Criterion) {
    let data = datasets();

    let mut group = c.benchmark_group("xor_encode");
    group.throughput(Throughput::Elements(SAMPLES as u64));
    for (name, samples) in &data {
        group.bench_with_input(BenchmarkId::from_parameter(name), samples, |b, samples| {
            b.iter(|| {
                let mut chunk = XorChunk::new();
                for &(t, v) in samples {
                    chunk.append(t, v);
                }
                black_box(chunk)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("xor_decode");
    group.throughput(Throughput::Elements(SAMPLES as u64));
    for (name, samples) in &data {
        let mut chunk = XorChunk::new();
        for &(t, v) in samples {
            chunk.append(t, v);
        }
        let bytes = chunk.into_bytes();
        eprintln!("{name}: {SAMPLES} samples -> {} bytes", bytes.len());
        group.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| {
                let mut acc = 0u64;
                for (t, v) in XorIterator::new(black_box(bytes)) {
                    acc = acc.wrapping_add(t as u64 ^ v.to_bits());
                }
                black_box(acc)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_xor);
criterion_main!(benches);
