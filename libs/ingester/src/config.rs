use std::time::Duration;

use serde::{Deserialize, Serialize};
use strata_overrides::{apply, Overrides, TenantOverrides};

/// Per-tenant limits enforced by the ingester.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Active series one tenant may hold in one ingester (0 = unlimited).
    pub max_series_per_tenant: usize,
    /// Active series of one metric name for one tenant (0 = unlimited).
    pub max_series_per_metric: usize,
    /// Metric families whose metadata (type, help, unit) one tenant may
    /// keep in one ingester; metadata of further families is dropped
    /// (0 = unlimited).
    pub max_metadata_per_tenant: usize,
    /// Series one tenant may hold in the whole cluster; each ingester
    /// enforces its share, this × replication factor ÷ the ingesters the
    /// tenant's series spread over (its shuffle shard, or every healthy
    /// ingester), under `max_series_per_tenant` (0 = no global limit).
    pub max_global_series_per_tenant: usize,
    /// The same for the series of one metric name.
    pub max_global_series_per_metric: usize,
}

/// How a tenant's series spread: over how many ingesters, each series on
/// how many (the replication factor).
pub type SeriesSpreadFn = std::sync::Arc<dyn Fn(&str) -> (usize, usize) + Send + Sync>;

/// This ingester's share of a cluster-wide series limit.
pub fn local_share(global: usize, ingesters: usize, replication_factor: usize) -> usize {
    if global == 0 {
        return 0;
    }
    let ingesters = ingesters.max(1);
    let share = (global as u128 * replication_factor.max(1) as u128).div_ceil(ingesters as u128);
    usize::try_from(share).unwrap_or(usize::MAX).max(1)
}

/// The tighter of a local limit and a global limit's share (0 = none).
fn tighter(local: usize, share: usize) -> usize {
    match (local, share) {
        (0, s) => s,
        (l, 0) => l,
        (l, s) => l.min(s),
    }
}

impl Limits {
    /// These limits with the global series limits turned into this
    /// ingester's share (`spread`: ingesters of the tenant, replication
    /// factor).
    pub fn with_global_shares(mut self, spread: (usize, usize)) -> Self {
        let (ingesters, rf) = spread;
        self.max_series_per_tenant = tighter(
            self.max_series_per_tenant,
            local_share(self.max_global_series_per_tenant, ingesters, rf),
        );
        self.max_series_per_metric = tighter(
            self.max_series_per_metric,
            local_share(self.max_global_series_per_metric, ingesters, rf),
        );
        self
    }

    /// These limits with the fields `o` sets replaced.
    pub fn with_overrides(mut self, o: &TenantOverrides) -> Self {
        apply(&mut self.max_series_per_tenant, &o.max_series_per_tenant);
        apply(&mut self.max_series_per_metric, &o.max_series_per_metric);
        apply(
            &mut self.max_metadata_per_tenant,
            &o.max_metadata_per_tenant,
        );
        apply(
            &mut self.max_global_series_per_tenant,
            &o.max_global_series_per_tenant,
        );
        apply(
            &mut self.max_global_series_per_metric,
            &o.max_global_series_per_metric,
        );
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_series_per_tenant: 5_000_000,
            max_series_per_metric: 1_000_000,
            max_metadata_per_tenant: 10_000,
            max_global_series_per_tenant: 0,
            max_global_series_per_metric: 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterConfig {
    /// Samples after which the open chunk of a series is closed (Prometheus
    /// uses 120).
    pub max_samples_per_chunk: usize,
    /// Length of the aligned time windows chunks are cut at: a chunk never
    /// holds samples of two windows (`t / max_chunk_age` differs), so
    /// replicas with the same samples cut identical chunks. Also the unit of
    /// flushing: a window's chunks are flushed together once it is over.
    #[serde(with = "strata_model::duration::serde")]
    pub max_chunk_age: Duration,
    /// How often the ingester closes the open chunk of every series whose
    /// window is over by the wall clock, so a series that stopped receiving
    /// samples does not keep its chunk open forever. Zero disables the sweep.
    #[serde(with = "strata_model::duration::serde")]
    pub chunk_age_check_period: Duration,
    /// Series one ingester holds across all tenants before it refuses new
    /// series with a retryable error (0 = unlimited).
    pub max_series: usize,
    /// Tenants one ingester holds before it refuses new ones (0 = unlimited).
    pub max_tenants: usize,
    /// Exemplars one tenant may keep in one ingester; the oldest are
    /// overwritten beyond it (0 = exemplar storage off).
    pub max_exemplars: usize,
    /// How often closed chunks are flushed to long-term storage, flushed
    /// chunks past the retain period dropped and idle series removed.
    #[serde(with = "strata_model::duration::serde")]
    pub flush_period: Duration,
    /// Wait after a window's end before flushing its chunks (samples that
    /// arrive a little late still join them).
    #[serde(with = "strata_model::duration::serde")]
    pub flush_delay: Duration,
    /// Replica `r` of a series (its position in the series' replication
    /// set) flushes `r` times this later than the first, and only chunks
    /// the earlier ones did not store: one copy in the store, not three.
    #[serde(with = "strata_model::duration::serde")]
    pub flush_takeover_delay: Duration,
    /// Tenants flushed at the same time.
    pub flush_concurrency: usize,
    /// Series per flush batch (one chunk object and its index entries).
    pub flush_batch_series: usize,
    /// How long flushed chunks stay in memory so recent queries need not
    /// read the store.
    #[serde(with = "strata_model::duration::serde")]
    pub retain_period: Duration,
    /// A series that holds no chunk and received no sample for this long is
    /// removed; its limits and index entries are released.
    #[serde(with = "strata_model::duration::serde")]
    pub series_idle_timeout: Duration,
    /// Bytes of closed chunks waiting for the store above which pushes are
    /// refused with a retryable error (0 = no limit).
    pub max_unflushed_bytes: usize,
    /// Push calls (gRPC) worked on at once; more are refused at once with
    /// `UNAVAILABLE`, which the distributor counts as a failed replica
    /// (0 = no limit).
    pub max_inflight_push_requests: usize,
    /// Bytes of push calls worked on at once (0 = no limit).
    pub max_inflight_push_bytes: usize,
    /// On shutdown, flush every chunk including open ones before leaving.
    /// Needed when no other replica holds the data (the one-process mode,
    /// and scale-down); see also `POST /ingester/shutdown`.
    pub flush_on_shutdown: bool,
    /// After a restart, samples pushed while the ingester was away may be
    /// timestamped up to this long before its WAL's last write; the read gap
    /// it reports starts that much earlier (see docs/operations.md, "Honest
    /// reads").
    #[serde(with = "strata_model::duration::serde")]
    pub read_gap_lookback: Duration,
    /// A new ingester joining a ring that already has replication-factor
    /// ACTIVE members reports everything before its join as a read gap (the
    /// ranges it takes over were held by others). Turn off only while
    /// building a new cluster into which nothing has been written yet.
    pub read_gap_on_join: bool,
    pub limits: Limits,
    pub wal: WalSection,
}

/// When the write-ahead log syncs what it wrote (see docs/operations.md).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WalSync {
    /// Before every acknowledgement: survives a machine crash.
    Always,
    /// At most `sync_interval` after writing: survives a process crash; a
    /// machine crash can lose the last interval.
    Interval,
    /// Only when a segment is closed: survives a process crash.
    Never,
}

/// The write-ahead log: every accepted sample is in it before a push is
/// acknowledged, and it is replayed on start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WalSection {
    pub enabled: bool,
    /// Directory of the log; empty means `<data_dir>/wal`.
    pub dir: String,
    pub sync: WalSync,
    #[serde(with = "strata_model::duration::serde")]
    pub sync_interval: Duration,
    /// A segment is closed and the next begun past this many bytes.
    pub segment_bytes: u64,
    /// How often the log is checkpointed (what memory alone holds is
    /// written once, and the segments before it are removed). 0 = never.
    #[serde(with = "strata_model::duration::serde")]
    pub checkpoint_period: Duration,
}

impl Default for WalSection {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: String::new(),
            sync: WalSync::Interval,
            sync_interval: Duration::from_millis(100),
            segment_bytes: 128 << 20,
            checkpoint_period: Duration::from_secs(30 * 60),
        }
    }
}

impl IngesterConfig {
    /// The limits in force for `tenant`: the runtime overrides' fields over
    /// `limits` (the ingester has no static per-tenant limits).
    pub fn limits_for(&self, tenant: &str, overrides: &Overrides) -> Limits {
        match overrides.get(tenant) {
            Some(o) => self.limits.clone().with_overrides(&o),
            None => self.limits.clone(),
        }
    }
}

impl WalSection {
    /// The log's settings for `strata-wal`, in `dir`.
    pub fn to_wal_config(&self, dir: std::path::PathBuf) -> strata_wal::WalConfig {
        strata_wal::WalConfig {
            dir,
            segment_bytes: self.segment_bytes.max(4096),
            sync: match self.sync {
                WalSync::Always => strata_wal::SyncPolicy::Always,
                WalSync::Interval => strata_wal::SyncPolicy::Interval(self.sync_interval),
                WalSync::Never => strata_wal::SyncPolicy::Never,
            },
        }
    }
}

impl Default for IngesterConfig {
    fn default() -> Self {
        Self {
            max_samples_per_chunk: 120,
            max_chunk_age: Duration::from_secs(2 * 3600),
            chunk_age_check_period: Duration::from_secs(60),
            max_series: 10_000_000,
            max_tenants: 100_000,
            max_exemplars: 100_000,
            flush_period: Duration::from_secs(60),
            flush_delay: Duration::from_secs(60),
            flush_takeover_delay: Duration::from_secs(300),
            flush_concurrency: 4,
            flush_batch_series: 100_000,
            retain_period: Duration::from_secs(15 * 60),
            series_idle_timeout: Duration::from_secs(10 * 60),
            max_unflushed_bytes: 2 << 30,
            max_inflight_push_requests: 512,
            max_inflight_push_bytes: 512 << 20,
            flush_on_shutdown: false,
            read_gap_lookback: Duration::from_secs(30),
            read_gap_on_join: true,
            limits: Limits::default(),
            wal: WalSection::default(),
        }
    }
}

#[cfg(test)]
mod global_limit_tests {
    use super::*;

    #[test]
    fn a_global_series_limit_becomes_each_ingesters_share() {
        // 1000 series, replication factor 3, over 6 ingesters: each holds
        // about half of them.
        assert_eq!(local_share(1000, 6, 3), 500);
        // Over a shard of 3 at RF 3: every ingester holds every series.
        assert_eq!(local_share(1000, 3, 3), 1000);
        assert_eq!(local_share(10, 7, 1), 2, "rounded up");
        assert_eq!(local_share(0, 6, 3), 0, "no global limit");
        assert_eq!(local_share(5, 0, 3), 15, "no ingesters counts as one");
        let limits = Limits {
            max_series_per_tenant: 400,
            max_series_per_metric: 0,
            max_global_series_per_tenant: 1000,
            max_global_series_per_metric: 300,
            ..Limits::default()
        }
        .with_global_shares((6, 3));
        assert_eq!(limits.max_series_per_tenant, 400, "the tighter of the two");
        assert_eq!(limits.max_series_per_metric, 150);
        let loose = Limits {
            max_series_per_tenant: 5_000_000,
            max_global_series_per_tenant: 1000,
            ..Limits::default()
        }
        .with_global_shares((6, 3));
        assert_eq!(loose.max_series_per_tenant, 500);
    }
}
