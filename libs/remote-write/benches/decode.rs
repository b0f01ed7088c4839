//! Decode throughput of a realistic remote write request: 2000
//! node_exporter-like series (`__name__` plus 5-7 labels), one sample each.
//!
//! Run: `cargo bench -p strata-remote-write --bench decode`
//!
//! Criterion reports time per request and elements/s (elements = series)
//! twice: `remote_write/*` in wall-clock time, `remote_write_cpu/*` in
//! on-CPU time of the benchmark thread (robust when other processes share
//! the machine). A final summary prints ns per series directly.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata_remote_write::{
    compress, decompress_into, encode_write_request, OwnedTimeSeries, Sample, WriteRequestRef,
};

const SERIES: usize = 2000;
const MAX_DECODED: usize = 64 << 20;

/// node_exporter-like series across 20 hosts.
fn build_series() -> Vec<OwnedTimeSeries> {
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    let devices = ["nvme0n1", "sda", "sdb", "dm-0"];
    let ifaces = ["eth0", "eth1", "lo", "docker0"];
    let mut out = Vec::with_capacity(SERIES);
    let ts = 1_732_000_000_000i64;
    let mut i = 0usize;
    while out.len() < SERIES {
        let host = i % 20;
        let instance = format!("10.42.{}.{}:9100", host / 10, 100 + host);
        let cluster = "prod-eu-west-1";
        let job = "node-exporter";
        let value = (i as f64) * 1.37 + 12345.678;
        let kind = (i / 20) % 4;
        let k = i / 80;
        let labels: Vec<(&str, String)> = match kind {
            0 => vec![
                ("__name__", "node_cpu_seconds_total".into()),
                ("cluster", cluster.into()),
                ("cpu", (k % 16).to_string()),
                ("instance", instance),
                ("job", job.into()),
                ("mode", modes[k % modes.len()].into()),
                ("namespace", "monitoring".into()),
            ],
            1 => vec![
                ("__name__", "node_disk_read_bytes_total".into()),
                ("cluster", cluster.into()),
                ("device", devices[k % devices.len()].into()),
                ("instance", instance),
                ("job", job.into()),
                ("namespace", "monitoring".into()),
            ],
            2 => vec![
                ("__name__", "node_network_receive_bytes_total".into()),
                ("cluster", cluster.into()),
                ("device", ifaces[k % ifaces.len()].into()),
                ("instance", instance),
                ("job", job.into()),
                ("namespace", "monitoring".into()),
                ("pod", format!("node-exporter-{:05x}", 7919 * host)),
            ],
            _ => vec![
                ("__name__", "node_filesystem_avail_bytes".into()),
                ("cluster", cluster.into()),
                ("device", format!("/dev/{}", devices[k % devices.len()])),
                ("fstype", "ext4".into()),
                ("instance", instance),
                ("job", job.into()),
                ("mountpoint", format!("/mnt/data{}", k % 8)),
                ("namespace", "monitoring".into()),
            ],
        };
        out.push(OwnedTimeSeries::new(
            labels,
            [Sample {
                timestamp: ts + (i as i64 % 15_000),
                value,
            }],
        ));
        i += 1;
    }
    out
}

fn bench_decode<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let series = build_series();
    let raw = encode_write_request(&series, &[]);
    let body = compress(&raw);

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(SERIES as u64));

    g.bench_function("decode_fresh", |b| {
        b.iter(|| {
            let req = WriteRequestRef::decode(black_box(&raw)).expect("valid");
            black_box(req.series_count())
        })
    });

    let mut pool: WriteRequestRef<'static> = WriteRequestRef::new();
    g.bench_function("decode_reuse", |b| {
        b.iter(|| {
            let mut req = std::mem::take(&mut pool).recycle();
            req.decode_into(black_box(&raw)).expect("valid");
            black_box(req.series_count());
            pool = req.recycle();
        })
    });

    let mut buf = Vec::new();
    g.bench_function("decompress", |b| {
        b.iter(|| {
            decompress_into(black_box(&body), MAX_DECODED, &mut buf).expect("valid");
            black_box(buf.len())
        })
    });

    g.bench_function("decompress_decode_reuse", |b| {
        b.iter(|| {
            decompress_into(black_box(&body), MAX_DECODED, &mut buf).expect("valid");
            let mut req = std::mem::take(&mut pool).recycle();
            req.decode_into(&buf).expect("valid");
            black_box(req.series_count());
            pool = req.recycle();
        })
    });
    g.finish();
}

/// Wall-clock time (criterion's default measurement).
fn bench_wall(c: &mut Criterion) {
    bench_decode(c, "remote_write");
}

/// On-CPU time of the benchmark thread: the same benchmarks, but immune to
/// time spent descheduled while other processes share the machine.
fn bench_cpu(c: &mut Criterion<CpuTime>) {
    bench_decode(c, "remote_write_cpu");
}

/// Prints ns/series directly (best of 5 runs of 300 ms).
fn summary(_c: &mut Criterion) {
    let series = build_series();
    let raw = encode_write_request(&series, &[]);
    let body = compress(&raw);
    let labels: usize = series.iter().map(|s| s.labels.len()).sum();
    eprintln!(
        "request: {SERIES} series, {labels} labels ({:.2}/series), {} bytes raw ({:.0} B/series), {} bytes snappy",
        labels as f64 / SERIES as f64,
        raw.len(),
        raw.len() as f64 / SERIES as f64,
        body.len()
    );
    let mut pool: WriteRequestRef<'static> = WriteRequestRef::new();
    let mut buf = Vec::new();

    // Plain ns/series summary (criterion's figure divided by SERIES), in
    // wall-clock time and in on-CPU time of this thread
    // (CLOCK_THREAD_CPUTIME_ID), which excludes time the thread spent
    // descheduled when the machine is shared with other work.
    let ns_per_series = |f: &mut dyn FnMut()| {
        for _ in 0..50 {
            f();
        }
        let (mut best_wall, mut best_cpu) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            let start = Instant::now();
            let cpu0 = thread_cpu_ns();
            let mut n = 0u32;
            while start.elapsed() < Duration::from_millis(300) {
                f();
                n += 1;
            }
            let wall = start.elapsed().as_nanos() as f64;
            let cpu = thread_cpu_ns().zip(cpu0).map(|(b, a)| (b - a) as f64);
            let per = f64::from(n) * SERIES as f64;
            best_wall = best_wall.min(wall / per);
            if let Some(cpu) = cpu {
                best_cpu = best_cpu.min(cpu / per);
            }
        }
        format!("{best_wall:.1} ns/series wall, {best_cpu:.1} on-cpu")
    };
    let fresh = ns_per_series(&mut || {
        black_box(WriteRequestRef::decode(black_box(&raw)).map(|r| r.series_count()))
            .expect("valid");
    });
    let reuse = ns_per_series(&mut || {
        let mut req = std::mem::take(&mut pool).recycle();
        req.decode_into(black_box(&raw)).expect("valid");
        black_box(req.series_count());
        pool = req.recycle();
    });
    let both = ns_per_series(&mut || {
        decompress_into(black_box(&body), MAX_DECODED, &mut buf).expect("valid");
        let mut req = std::mem::take(&mut pool).recycle();
        req.decode_into(&buf).expect("valid");
        black_box(req.series_count());
        pool = req.recycle();
    });
    eprintln!(
        "summary (best of 5 x 300ms):\n  decode fresh:             {fresh}\n  decode reuse:             {reuse}\n  decompress+decode reuse:  {both}"
    );
}

/// On-CPU time of the current thread in ns (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// Criterion measurement: on-CPU nanoseconds of the benchmark thread.
struct CpuTime;

static WALL: WallTime = WallTime;

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns().unwrap_or(0)
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().unwrap_or(0).saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

criterion_group!(wall, bench_wall);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_cpu
}
criterion_group!(plain, summary);
criterion_main!(wall, cpu, plain);
