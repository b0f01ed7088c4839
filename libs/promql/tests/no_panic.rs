//! Property test: no query string, however mangled, makes the engine
//! panic (parsing and evaluating, instant and range).

use std::time::Duration;

use proptest::prelude::*;
use strata_model::{Labels, STALE_NAN_BITS};
use strata_promql::promqltest::MemStorage;
use strata_promql::{Engine, EngineOptions};

const SEEDS: &[&str] = &[
    "up",
    "up{job=\"a\"} offset 5m",
    "rate(http_requests_total[5m])",
    "sum by (job) (rate(http_requests_total[5m] @ 100))",
    "histogram_quantile(0.9, sum by (le) (rate(req_bucket[5m])))",
    "histogram_fraction(0, 0.2, req_bucket)",
    "topk(2, up) or bottomk(1, up)",
    "up * on(job) group_left(instance) up",
    "label_replace(up, \"x\", \"$1\", \"job\", \"(.*)\")",
    "label_join(up, \"x\", \",\", \"job\", \"instance\")",
    "max_over_time(deriv(up[1m])[5m:30s])",
    "quantile_over_time(0.5, up[10m])",
    "count_values(\"v\", up)",
    "predict_linear(up[5m], 60)",
    "double_exponential_smoothing(up[5m], 0.5, 0.5)",
    "absent_over_time(nope[1m])",
    "scalar(up) + vector(time())",
    "sort_by_label(up, \"job\")",
    "clamp(up, 0, 1) ^ -1 % 0",
    "year(up) unless day_of_week()",
    "limitk(1, up) and limit_ratio(0.5, up)",
    "1 > bool 2",
    "\"str\"",
    "up[5m]",
    "up[5m:1m] offset -1m",
    "round(up, 0.1)",
    "quantile(2, up)",
];

const TOKENS: &[&str] = &[
    "up",
    "req_bucket",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "5m",
    "0s",
    "1ms",
    ":",
    ",",
    "+",
    "-",
    "*",
    "/",
    "%",
    "^",
    "==",
    "!=",
    ">",
    "<",
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "@",
    "start()",
    "end()",
    "sum",
    "avg",
    "topk",
    "rate",
    "irate",
    "time()",
    "1",
    "0",
    "-1",
    "NaN",
    "Inf",
    "1e308",
    "\"le\"",
    "le=\"0.1\"",
    "job=~\".*\"",
    "histogram_quantile",
    "label_replace",
    "count_values",
    "quantile_over_time",
    "absent",
    "scalar",
    "vector",
    "sort",
    "atan2",
];

fn storage() -> MemStorage {
    let mut s = MemStorage::new();
    let stale = f64::from_bits(STALE_NAN_BITS);
    for (i, job) in ["a", "b"].iter().enumerate() {
        s.add(
            Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", "x")]),
            (0..20).map(|k| {
                (
                    k * 30_000,
                    if k == 10 {
                        stale
                    } else {
                        (k as f64) * (i as f64 + 1.0)
                    },
                )
            }),
        );
        s.add(
            Labels::from_pairs([("__name__", "http_requests_total"), ("job", job)]),
            (0..20).map(|k| (k * 30_000, (k * 10) as f64)),
        );
        for le in ["0.1", "1", "+Inf", "bad"] {
            s.add(
                Labels::from_pairs([("__name__", "req_bucket"), ("job", job), ("le", le)]),
                (0..20).map(|k| (k * 30_000, (k as f64) * 2.0)),
            );
        }
    }
    s
}

fn engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta: Duration::from_secs(300),
        max_samples: 200_000,
        timeout: Duration::from_secs(5),
    })
}

fn run(query: &str) {
    let storage = storage();
    let engine = engine();
    let _ = engine.select_requests(query, 0, 600_000);
    let _ = engine.instant(&storage, query, 300_000);
    let _ = engine.instant(&storage, query, -300_000);
    let _ = engine.range(&storage, query, 0, 600_000, 45_000);
}

fn mutate(seed: &str, edits: &[(usize, u8, u8)]) -> String {
    let mut bytes: Vec<u8> = seed.as_bytes().to_vec();
    for &(pos, kind, b) in edits {
        let pos = if bytes.is_empty() {
            0
        } else {
            pos % (bytes.len() + 1)
        };
        const ALPHABET: &[u8] =
            b"()[]{}:,+-*/%^=!<>~\"'`@.0123456789 abcdefghijklmnopqrstuvwxyz_\\";
        let ch = ALPHABET[b as usize % ALPHABET.len()];
        match kind % 3 {
            0 => bytes.insert(pos, ch),
            1 if pos < bytes.len() => {
                bytes.remove(pos);
            }
            _ if pos < bytes.len() => bytes[pos] = ch,
            _ => bytes.push(ch),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_queries_do_not_panic(seed in 0..SEEDS.len(), edits in prop::collection::vec((0usize..200, 0u8..3, 0u8..66), 0..6)) {
        run(&mutate(SEEDS[seed], &edits));
    }

    #[test]
    fn token_soup_does_not_panic(tokens in prop::collection::vec(0..TOKENS.len(), 1..14)) {
        let q: Vec<&str> = tokens.iter().map(|i| TOKENS[*i]).collect();
        run(&q.join(" "));
    }

    #[test]
    fn composed_queries_do_not_panic(a in 0..SEEDS.len(), b in 0..SEEDS.len(), op in 0..8usize) {
        let ops = ["+", "/", "and", "or", "unless", "> bool", "* on(job) group_left", "atan2"];
        run(&format!("({}) {} ({})", SEEDS[a], ops[op], SEEDS[b]));
        run(&format!("sum_over_time(({})[2m:15s])", SEEDS[a]));
    }
}

#[test]
fn seeds_do_not_panic() {
    for q in SEEDS {
        run(q);
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    // Evaluate on a small stack like a tokio worker's.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let engine = engine();
            let storage = storage();
            for n in [10usize, 150, 199, 1000, 20_000] {
                let parens = format!("{}up{}", "(".repeat(n), ")".repeat(n));
                let unary = format!("{}up", "-".repeat(n));
                let binary = vec!["up"; n].join(" + ");
                for q in [parens, unary, binary] {
                    let _ = engine.instant(&storage, &q, 300_000);
                    let _ = engine.range(&storage, &q, 0, 600_000, 60_000);
                }
            }
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn out_of_range_number_durations_are_bad_data() {
    // The parser panicked on numbers used as durations that do not fit a
    // Duration (found by token_soup in CI); they must be client errors.
    let engine = engine();
    let storage = storage();
    for q in [
        "up[1e400]",
        "up[1e308]",
        "rate(up[1e308])",
        "up offset 1e308",
        "up[5m:1e308]",
        "up[-1e308]",
        "up[NaN]",
        "up[Inf]",
    ] {
        let res = engine.instant(&storage, q, 300_000);
        assert!(res.is_err(), "{q} should be rejected, got {res:?}");
        assert!(
            engine.select_requests(q, 0, 600_000).is_err(),
            "{q}: select_requests should fail too"
        );
    }
}
