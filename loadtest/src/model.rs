//! The shape of the generated data: scrape targets that look like a
//! Kubernetes node seen by Prometheus. Each target carries the node's
//! node_exporter series, the kube-state-metrics series of the pods on it,
//! and the HTTP request histograms of two application pods; 265 series in
//! all, with label names and value lengths like real ones.
//!
//! Everything is derived from `(seed, target, generation)`, so the write
//! and query subcommands agree on names without talking to each other.
//! A target's generation changes when it churns: the node and its pods get
//! new names, so all its series are replaced.

use crate::util::{hash_words, mix64, unit};

/// The cluster label every series carries.
pub const CLUSTER: &str = "eu-west-1-prod-a";
/// The kube-state-metrics target's address (one per cluster).
const KSM_INSTANCE: &str = "10.32.0.15:8080";

const CPUS: usize = 4;
const CPU_MODES: [(&str, f64); 8] = [
    ("idle", 12.0),
    ("iowait", 0.05),
    ("irq", 0.01),
    ("nice", 0.0),
    ("softirq", 0.08),
    ("steal", 0.02),
    ("system", 0.7),
    ("user", 2.1),
];
const MEMORY: [&str; 10] = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "Active",
    "Inactive",
    "Dirty",
    "SwapTotal",
    "SwapFree",
];
const FILESYSTEMS: [(&str, &str, &str); 4] = [
    ("/dev/nvme0n1p1", "ext4", "/"),
    ("/dev/nvme1n1", "xfs", "/var/lib/kubelet"),
    ("tmpfs", "tmpfs", "/run"),
    (
        "shm",
        "tmpfs",
        "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/shm",
    ),
];
const NET_DEVICES: [&str; 4] = ["eth0", "eth1", "lo", "cni0"];
const NET_COUNTERS: [(&str, f64); 8] = [
    ("node_network_receive_bytes_total", 3.0e6),
    ("node_network_transmit_bytes_total", 1.8e6),
    ("node_network_receive_packets_total", 2500.0),
    ("node_network_transmit_packets_total", 2100.0),
    ("node_network_receive_errs_total", 0.01),
    ("node_network_transmit_errs_total", 0.01),
    ("node_network_receive_drop_total", 0.05),
    ("node_network_transmit_drop_total", 0.0),
];
const DISKS: [&str; 2] = ["nvme0n1", "nvme1n1"];
const DISK_COUNTERS: [(&str, f64, i32); 5] = [
    ("node_disk_reads_completed_total", 120.0, 0),
    ("node_disk_writes_completed_total", 900.0, 0),
    ("node_disk_read_bytes_total", 4.0e6, 0),
    ("node_disk_written_bytes_total", 9.0e6, 0),
    ("node_disk_io_time_seconds_total", 1.2, 3),
];
const APPS: [&str; 10] = [
    "api-gateway",
    "checkout",
    "payments-worker",
    "user-profile",
    "search-indexer",
    "notification-dispatcher",
    "inventory",
    "frontend",
    "cart",
    "recommendations",
];
const NAMESPACES: [&str; 6] = [
    "team-payments-prod",
    "team-search-prod",
    "team-identity-prod",
    "platform-ingress",
    "team-checkout-prod",
    "observability",
];
const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];
const PODS_PER_TARGET: usize = 6;
const APP_PODS_PER_TARGET: usize = 2;
const HANDLERS: [&str; 3] = ["/api/v1/orders", "/api/v1/users/{id}", "/healthz"];
/// Bucket bounds of `http_request_duration_seconds` and the share of
/// requests at or below each.
const BUCKETS: [(&str, f64); 12] = [
    ("0.005", 0.05),
    ("0.01", 0.12),
    ("0.025", 0.30),
    ("0.05", 0.50),
    ("0.1", 0.70),
    ("0.25", 0.85),
    ("0.5", 0.93),
    ("1", 0.97),
    ("2.5", 0.99),
    ("5", 0.995),
    ("10", 0.999),
    ("+Inf", 1.0),
];

/// Series per target.
pub const SERIES_PER_TARGET: usize = 265;

/// How a series' value evolves from round to round.
#[derive(Clone, Copy, Debug)]
pub enum Model {
    /// A monotonic counter growing by about `per_round` each round.
    Counter { per_round: f64, decimals: i32 },
    /// A gauge jittering around `base` by ± `amp`/2 (relative).
    Gauge { base: f64, amp: f64, decimals: i32 },
    /// A constant.
    Const(f64),
    /// A cumulative histogram bucket (or `_count` with `cdf` 1): the
    /// group's request total times `cdf`, floored. Buckets of one histogram
    /// share the group seed, so they stay cumulative.
    Bucket { cdf: f64, per_round: f64 },
    /// A histogram's `_sum`: the group's request total times `mean`.
    HistSum { per_round: f64, mean: f64 },
}

/// One generated series.
#[derive(Clone, Debug)]
pub struct SeriesDef {
    /// Labels sorted by name, `__name__` included.
    pub labels: Vec<(String, String)>,
    /// Seed of this series' values.
    pub seed: u64,
    /// Seed shared by the series of one histogram.
    pub group: u64,
    pub model: Model,
}

fn round_to(v: f64, decimals: i32) -> f64 {
    if decimals <= 0 {
        return v.round();
    }
    let scale = 10f64.powi(decimals);
    (v * scale).round() / scale
}

/// A counter's value at `round`: strictly increasing whenever `per_round`
/// is positive (each step adds between 0.5 and 1.5 `per_round`).
fn counter_value(seed: u64, per_round: f64, round: u64) -> f64 {
    let rate = per_round * (0.5 + unit(seed));
    let base = rate * (1000 + seed % 100_000) as f64;
    let u = unit(mix64(seed ^ round.wrapping_mul(0x2545_f491_4f6c_dd1d)));
    base + rate * (round as f64 + 0.5 * u)
}

impl Model {
    /// The value of a series with these seeds at `round`.
    #[inline]
    pub fn value(&self, seed: u64, group: u64, round: u64) -> f64 {
        match *self {
            Model::Counter {
                per_round,
                decimals,
            } => round_to(counter_value(seed, per_round, round), decimals),
            Model::Gauge {
                base,
                amp,
                decimals,
            } => {
                let b = base * (0.5 + unit(seed));
                let u = unit(mix64(seed ^ round.wrapping_mul(0x2545_f491_4f6c_dd1d)));
                round_to(b * (1.0 + amp * (u - 0.5)), decimals)
            }
            Model::Const(v) => v,
            Model::Bucket { cdf, per_round } => {
                (counter_value(group, per_round, round) * cdf).floor()
            }
            Model::HistSum { per_round, mean } => {
                round_to(counter_value(group, per_round, round) * mean, 3)
            }
        }
    }
}

/// Number of targets needed for `series` series.
pub fn targets_for(series: usize) -> usize {
    series.div_ceil(SERIES_PER_TARGET)
}

/// The node_exporter `instance` label of a target.
pub fn node_instance(target: u32, generation: u32) -> String {
    let t = target as u64;
    let a = 16 + ((t >> 16) + u64::from(generation) * 4) % 200;
    format!(
        "ip-10-{a}-{}-{}.eu-west-1.compute.internal:9100",
        (t >> 8) & 255,
        t & 255
    )
}

/// Kubernetes-style random suffix characters.
const POD_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn pod_suffix(mut h: u64, len: usize) -> String {
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(POD_ALPHABET[(h % POD_ALPHABET.len() as u64) as usize] as char);
        h /= POD_ALPHABET.len() as u64;
        if h == 0 {
            h = mix64(s.len() as u64);
        }
    }
    s
}

fn uuid(h: u64, g: u64) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        g >> 52,
        g & 0xffff_ffff_ffff
    )
}

struct Pod {
    app: &'static str,
    name: String,
    replicaset: String,
    namespace: &'static str,
    uid: String,
    ip: String,
}

fn pod(seed: u64, target: u32, generation: u32, index: usize) -> Pod {
    let h = hash_words(&[
        seed,
        7,
        u64::from(target),
        u64::from(generation),
        index as u64,
    ]);
    let app = APPS[(h % APPS.len() as u64) as usize];
    let rs = pod_suffix(mix64(h ^ 1), 10);
    let replicaset = format!("{app}-{rs}");
    let name = format!("{replicaset}-{}", pod_suffix(mix64(h ^ 2), 5));
    let t = u64::from(target);
    Pod {
        app,
        name,
        replicaset,
        namespace: NAMESPACES[((h >> 20) % NAMESPACES.len() as u64) as usize],
        uid: uuid(mix64(h ^ 3), mix64(h ^ 4)),
        ip: format!(
            "10.{}.{}.{}",
            128 + (t >> 8) % 64,
            t & 255,
            2 + (index as u64 * 17 + u64::from(generation) * 5) % 250
        ),
    }
}

/// Builds the series of one target (at most `limit` of them).
pub fn target_series(seed: u64, target: u32, generation: u32, limit: usize) -> Vec<SeriesDef> {
    let mut out: Vec<SeriesDef> = Vec::with_capacity(SERIES_PER_TARGET.min(limit));
    let node_inst = node_instance(target, generation);
    let node_name = node_inst.split(':').next().unwrap_or_default().to_string();
    let base_seed = hash_words(&[seed, u64::from(target), u64::from(generation)]);
    let mut push = |name: &str,
                    job: &str,
                    instance: &str,
                    extra: Vec<(&str, String)>,
                    model: Model,
                    group: u64| {
        if out.len() >= limit {
            return;
        }
        let mut labels: Vec<(String, String)> = Vec::with_capacity(extra.len() + 4);
        labels.push(("__name__".to_string(), name.to_string()));
        labels.push(("cluster".to_string(), CLUSTER.to_string()));
        labels.push(("instance".to_string(), instance.to_string()));
        labels.push(("job".to_string(), job.to_string()));
        labels.extend(extra.into_iter().map(|(n, v)| (n.to_string(), v)));
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        let s = mix64(base_seed ^ (out.len() as u64).wrapping_mul(0x9e37_79b9));
        out.push(SeriesDef {
            labels,
            seed: s,
            group: if group == 0 { s } else { group },
            model,
        });
    };

    // node_exporter: 115 series.
    for cpu in 0..CPUS {
        for (mode, rate) in CPU_MODES {
            push(
                "node_cpu_seconds_total",
                "node-exporter",
                &node_inst,
                vec![("cpu", cpu.to_string()), ("mode", mode.to_string())],
                Model::Counter {
                    per_round: rate,
                    decimals: 2,
                },
                0,
            );
        }
    }
    for field in MEMORY {
        let model = match field {
            "MemTotal" | "SwapTotal" => Model::Const(16.0 * 1024.0 * 1024.0 * 1024.0),
            "SwapFree" => Model::Const(15.5 * 1024.0 * 1024.0 * 1024.0),
            _ => Model::Gauge {
                base: 4.0e9,
                amp: 0.05,
                decimals: 0,
            },
        };
        push(
            &format!("node_memory_{field}_bytes"),
            "node-exporter",
            &node_inst,
            Vec::new(),
            model,
            0,
        );
    }
    for (device, fstype, mountpoint) in FILESYSTEMS {
        for (metric, model) in [
            (
                "node_filesystem_avail_bytes",
                Model::Gauge {
                    base: 6.0e10,
                    amp: 0.01,
                    decimals: 0,
                },
            ),
            (
                "node_filesystem_free_bytes",
                Model::Gauge {
                    base: 6.5e10,
                    amp: 0.01,
                    decimals: 0,
                },
            ),
            ("node_filesystem_size_bytes", Model::Const(1.07e11)),
            ("node_filesystem_files", Model::Const(6_553_600.0)),
            (
                "node_filesystem_files_free",
                Model::Gauge {
                    base: 6.0e6,
                    amp: 0.001,
                    decimals: 0,
                },
            ),
            ("node_filesystem_readonly", Model::Const(0.0)),
        ] {
            push(
                metric,
                "node-exporter",
                &node_inst,
                vec![
                    ("device", device.to_string()),
                    ("fstype", fstype.to_string()),
                    ("mountpoint", mountpoint.to_string()),
                ],
                model,
                0,
            );
        }
    }
    for device in NET_DEVICES {
        for (metric, rate) in NET_COUNTERS {
            push(
                metric,
                "node-exporter",
                &node_inst,
                vec![("device", device.to_string())],
                Model::Counter {
                    per_round: rate,
                    decimals: 0,
                },
                0,
            );
        }
    }
    for device in DISKS {
        for (metric, rate, decimals) in DISK_COUNTERS {
            push(
                metric,
                "node-exporter",
                &node_inst,
                vec![("device", device.to_string())],
                Model::Counter {
                    per_round: rate,
                    decimals,
                },
                0,
            );
        }
    }
    for (metric, base) in [
        ("node_load1", 1.5),
        ("node_load5", 1.3),
        ("node_load15", 1.2),
    ] {
        push(
            metric,
            "node-exporter",
            &node_inst,
            Vec::new(),
            Model::Gauge {
                base,
                amp: 0.4,
                decimals: 2,
            },
            0,
        );
    }
    for (metric, rate) in [
        ("node_context_switches_total", 45_000.0),
        ("node_intr_total", 30_000.0),
        ("node_forks_total", 60.0),
    ] {
        push(
            metric,
            "node-exporter",
            &node_inst,
            Vec::new(),
            Model::Counter {
                per_round: rate,
                decimals: 0,
            },
            0,
        );
    }
    push(
        "node_boot_time_seconds",
        "node-exporter",
        &node_inst,
        Vec::new(),
        Model::Const(1.7e9 + f64::from(target % 86_400)),
        0,
    );

    // kube-state-metrics: 9 series per pod.
    let pods: Vec<Pod> = (0..PODS_PER_TARGET)
        .map(|i| pod(seed, target, generation, i))
        .collect();
    for p in &pods {
        for phase in PHASES {
            push(
                "kube_pod_status_phase",
                "kube-state-metrics",
                KSM_INSTANCE,
                vec![
                    ("namespace", p.namespace.to_string()),
                    ("phase", phase.to_string()),
                    ("pod", p.name.clone()),
                    ("uid", p.uid.clone()),
                ],
                Model::Const(if phase == "Running" { 1.0 } else { 0.0 }),
                0,
            );
        }
        push(
            "kube_pod_container_status_restarts_total",
            "kube-state-metrics",
            KSM_INSTANCE,
            vec![
                ("container", p.app.to_string()),
                ("namespace", p.namespace.to_string()),
                ("pod", p.name.clone()),
                ("uid", p.uid.clone()),
            ],
            Model::Counter {
                per_round: 0.002,
                decimals: 0,
            },
            0,
        );
        push(
            "kube_pod_info",
            "kube-state-metrics",
            KSM_INSTANCE,
            vec![
                ("created_by_kind", "ReplicaSet".to_string()),
                ("created_by_name", p.replicaset.clone()),
                ("host_ip", node_name.clone()),
                ("namespace", p.namespace.to_string()),
                ("node", node_name.clone()),
                ("pod", p.name.clone()),
                ("pod_ip", p.ip.clone()),
                ("uid", p.uid.clone()),
            ],
            Model::Const(1.0),
            0,
        );
        for (resource, unit, value) in [("cpu", "core", 0.25), ("memory", "byte", 536_870_912.0)] {
            push(
                "kube_pod_container_resource_requests",
                "kube-state-metrics",
                KSM_INSTANCE,
                vec![
                    ("container", p.app.to_string()),
                    ("namespace", p.namespace.to_string()),
                    ("node", node_name.clone()),
                    ("pod", p.name.clone()),
                    ("resource", resource.to_string()),
                    ("uid", p.uid.clone()),
                    ("unit", unit.to_string()),
                ],
                Model::Const(value),
                0,
            );
        }
    }

    // Application pods: request histograms and counters, 48 series each.
    for (pod_index, p) in pods.iter().take(APP_PODS_PER_TARGET).enumerate() {
        let instance = format!("{}:8080", p.ip);
        for (handler_index, handler) in HANDLERS.into_iter().enumerate() {
            let group = hash_words(&[base_seed, 11, pod_index as u64, handler_index as u64]);
            let rps = 15.0 * (5.0 + 195.0 * unit(group));
            let app_labels = |extra: Vec<(&'static str, String)>| -> Vec<(&'static str, String)> {
                let mut v = vec![
                    ("handler", handler.to_string()),
                    ("method", "GET".to_string()),
                    ("namespace", p.namespace.to_string()),
                    ("pod", p.name.clone()),
                ];
                v.extend(extra);
                v
            };
            for (le, cdf) in BUCKETS {
                push(
                    "http_request_duration_seconds_bucket",
                    "api",
                    &instance,
                    app_labels(vec![("code", "200".to_string()), ("le", le.to_string())]),
                    Model::Bucket {
                        cdf,
                        per_round: rps,
                    },
                    group,
                );
            }
            push(
                "http_request_duration_seconds_count",
                "api",
                &instance,
                app_labels(vec![("code", "200".to_string())]),
                Model::Bucket {
                    cdf: 1.0,
                    per_round: rps,
                },
                group,
            );
            push(
                "http_request_duration_seconds_sum",
                "api",
                &instance,
                app_labels(vec![("code", "200".to_string())]),
                Model::HistSum {
                    per_round: rps,
                    mean: 0.08,
                },
                group,
            );
            for (code, share) in [("200", 0.99), ("500", 0.01)] {
                push(
                    "http_requests_total",
                    "api",
                    &instance,
                    app_labels(vec![("code", code.to_string())]),
                    Model::Counter {
                        per_round: rps * share,
                        decimals: 0,
                    },
                    0,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_target_has_the_advertised_series_count_and_unique_label_sets() {
        let s = target_series(1, 3, 0, usize::MAX);
        assert_eq!(s.len(), SERIES_PER_TARGET);
        let set: HashSet<_> = s.iter().map(|d| d.labels.clone()).collect();
        assert_eq!(set.len(), s.len());
        for d in &s {
            assert!(
                d.labels.windows(2).all(|w| w[0].0 < w[1].0),
                "{:?}",
                d.labels
            );
        }
        assert_eq!(target_series(1, 3, 0, 10).len(), 10);
    }

    #[test]
    fn targets_and_generations_do_not_collide() {
        let mut set = HashSet::new();
        for t in 0..40 {
            for g in 0..3 {
                for d in target_series(9, t, g, usize::MAX) {
                    assert!(set.insert(d.labels), "duplicate series t={t} g={g}");
                }
            }
        }
    }

    #[test]
    fn counters_grow_and_histograms_stay_cumulative() {
        let s = target_series(1, 0, 0, usize::MAX);
        for d in &s {
            if let Model::Counter { per_round, .. } = d.model {
                if per_round >= 1.0 {
                    let mut prev = f64::MIN;
                    for r in 0..50 {
                        let v = d.model.value(d.seed, d.group, r);
                        assert!(v > prev, "{:?}", d.labels);
                        prev = v;
                    }
                }
            }
        }
        let buckets: Vec<&SeriesDef> = s
            .iter()
            .filter(|d| d.labels[0].1 == "http_request_duration_seconds_bucket")
            .take(BUCKETS.len())
            .collect();
        for r in 0..20 {
            let vals: Vec<f64> = buckets
                .iter()
                .map(|d| d.model.value(d.seed, d.group, r))
                .collect();
            assert!(vals.windows(2).all(|w| w[0] <= w[1]), "{vals:?}");
        }
    }
}
