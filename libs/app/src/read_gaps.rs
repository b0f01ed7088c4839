//! A separate ingester's read gaps at start and once it is ACTIVE (see
//! `strata_ingester::gaps`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strata_ingester::Ingester;
use strata_ring::{Lifecycler, Ring};

use crate::config::Config;

/// Where an ingester keeps its read gaps (see `strata_ingester::gaps`).
pub const READ_GAPS_FILE: &str = "read-gaps";

/// Sets the ingester's read gaps at start: those of earlier runs that have
/// not expired, and the one this start opens (saved at once, so a crash
/// before it is back in the ring keeps it).
pub async fn open_read_gaps(
    ingester: &Ingester,
    config: &Config,
    me: &str,
    ring: &Ring,
    tokens_file: &std::path::Path,
    wal_last_written: Option<std::time::SystemTime>,
    data_dir: &std::path::Path,
) {
    use strata_ingester::gaps;
    if let Err(e) = ring.refresh().await {
        tracing::warn!(error = %e, "ring refresh failed");
    }
    let snapshot = ring.snapshot();
    let facts = gaps::StartFacts {
        wal_last_written_ms: wal_last_written.map(strata_model::duration::unix_ms),
        was_member: tokens_file.exists() || snapshot.member(me).is_some(),
        ring_full_without_it: config.ingester.read_gap_on_join
            && snapshot
                .members()
                .iter()
                .filter(|m| {
                    m.desc.id != me
                        && m.desc.state == strata_ring::InstanceState::Active
                        && !m.desc.tokens.is_empty()
                })
                .count()
                >= config.ring.replication_factor,
        lookback_ms: strata_model::duration::duration_ms(config.ingester.read_gap_lookback),
    };
    let path = data_dir.join(READ_GAPS_FILE);
    let mut all = gaps::load(&path);
    let opened = gaps::gap_at_start(&facts);
    all.extend(opened);
    ingester.set_read_gaps(all);
    let kept = ingester.read_gaps();
    if let Err(e) = gaps::save(&path, &kept) {
        tracing::warn!(path = %path.display(), error = %e, "cannot save the read gaps");
    }
    tracing::info!(
        opened = ?opened.map(|g| g.start_ms),
        facts = ?facts,
        gaps = kept.len(),
        "read gaps: queriers will not count this ingester for these ranges"
    );
}

/// Once the ingester is ACTIVE, ends its open read gap when every
/// distributor will have seen it (two ring polls later), and saves the gaps.
pub async fn close_read_gaps(
    ingester: Arc<Ingester>,
    lifecycler: Arc<tokio::sync::Mutex<Option<Lifecycler>>>,
    poll_interval: Duration,
    path: PathBuf,
) {
    use strata_ingester::gaps;
    loop {
        let active = lifecycler
            .lock()
            .await
            .as_ref()
            .is_some_and(|l| l.is_ready());
        if active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = strata_model::duration::now_ms().saturating_add(strata_model::duration::duration_ms(
        poll_interval.saturating_mul(2),
    ));
    let mut all = ingester.read_gaps();
    gaps::close_open(&mut all, end);
    ingester.set_read_gaps(all);
    if let Err(e) = gaps::save(&path, &ingester.read_gaps()) {
        tracing::warn!(path = %path.display(), error = %e, "cannot save the read gaps");
    }
}
