//! The per-input check of the `promql` fuzz target (`fuzz/`), shared with
//! the corpus replay test (`tests/fuzz_corpus.rs`) so `cargo test` runs
//! exactly what the fuzzer ran, without cargo-fuzz. Not an API: see
//! `docs/fuzzing.md`.

#![doc(hidden)]

use std::sync::OnceLock;
use std::time::Duration;

use strata_model::{Labels, STALE_NAN_BITS};

use crate::promqltest::MemStorage;
use crate::{parse, Engine, EngineOptions};

/// Longer inputs are skipped: the parser and planner are linear in the
/// query's length, longer ones only make the fuzzer slower.
pub const MAX_QUERY_LEN: usize = 4096;

/// Runs one fuzz input (a query, lossily decoded as UTF-8) through the
/// parse / plan path, then evaluates it over a tiny in-memory storage
/// with a small sample limit and a short timeout. Panics (the fuzzer's
/// crash signal) on an engine panic or when planning accepts a query the
/// parser refused.
pub fn check_query(data: &[u8]) {
    if data.len() > MAX_QUERY_LEN {
        return;
    }
    let query = String::from_utf8_lossy(data);
    let query = query.as_ref();

    let parsed = parse(query);
    let planner = Engine::new(EngineOptions::default());
    for (start, end) in [(300_000, 300_000), (0, 600_000), (-3_600_000, i64::MAX / 4)] {
        let planned = planner.select_requests(query, start, end);
        assert!(
            parsed.is_ok() || planned.is_err(),
            "select_requests accepted a query parse refused: {query:?}"
        );
    }
    if parsed.is_err() {
        return;
    }

    let storage = storage();
    let engine = Engine::new(EngineOptions {
        lookback_delta: Duration::from_secs(300),
        max_samples: 5_000,
        max_bytes: 1 << 20,
        memory_pool: None,
        cancel: None,
        timeout: Duration::from_millis(50),
    });
    let _ = engine.instant_query(storage, query, 300_000);
    let _ = engine.instant_query(storage, query, -60_000);
    let _ = engine.range_query(storage, query, 0, 600_000, 45_000);
}

/// Two jobs of `up` (with a staleness marker), a counter and a classic
/// histogram (with a bad `le`), 20 samples each at a 30 s interval.
fn storage() -> &'static MemStorage {
    static STORAGE: OnceLock<MemStorage> = OnceLock::new();
    STORAGE.get_or_init(|| {
        let mut s = MemStorage::new();
        let stale = f64::from_bits(STALE_NAN_BITS);
        for (i, job) in ["a", "b"].iter().enumerate() {
            s.add(
                Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", "x")]),
                (0..20).map(|k| {
                    let v = if k == 10 {
                        stale
                    } else {
                        k as f64 * (i as f64 + 1.0)
                    };
                    (k * 30_000, v)
                }),
            );
            s.add(
                Labels::from_pairs([("__name__", "http_requests_total"), ("job", job)]),
                (0..20).map(|k| (k * 30_000, (k * 10) as f64)),
            );
            for le in ["0.1", "1", "+Inf", "bad"] {
                s.add(
                    Labels::from_pairs([("__name__", "req_bucket"), ("job", job), ("le", le)]),
                    (0..20).map(|k| (k * 30_000, k as f64 * 2.0)),
                );
            }
        }
        s
    })
}
