//! Generators of PromQL query strings for property tests, shared by the
//! engine's no-panic test (`libs/promql/tests/no_panic.rs`) and the
//! querier's HTTP API fuzz test (`libs/querier/tests/http_fuzz.rs`, which
//! includes this file by path).
//!
//! Queries are built three ways: real queries with random byte edits,
//! random sequences of PromQL tokens, and pairs of real queries joined by
//! an operator or wrapped in a subquery.

#![allow(dead_code)]

use proptest::prelude::*;

/// Valid queries covering every syntax family, mutated or composed below.
pub const SEEDS: &[&str] = &[
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

/// Fragments of PromQL, joined at random.
pub const TOKENS: &[&str] = &[
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

/// `seed` with byte-level edits: `(position, kind, byte)` inserts, removes
/// or replaces a character from a PromQL-ish alphabet.
pub fn mutate(seed: &str, edits: &[(usize, u8, u8)]) -> String {
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

/// Binary operators (and modifiers) used to compose two queries.
pub const OPS: &[&str] = &[
    "+",
    "/",
    "and",
    "or",
    "unless",
    "> bool",
    "* on(job) group_left",
    "atan2",
];

/// A seed query with up to five random edits.
pub fn mutated_query() -> impl Strategy<Value = String> {
    (
        0..SEEDS.len(),
        prop::collection::vec((0usize..200, 0u8..3, 0u8..66), 0..6),
    )
        .prop_map(|(seed, edits)| mutate(SEEDS[seed], &edits))
}

/// One to thirteen random tokens separated by spaces.
pub fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(0..TOKENS.len(), 1..14).prop_map(|tokens| {
        tokens
            .iter()
            .map(|i| TOKENS[*i])
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Two seeds joined by an operator, or one seed inside a subquery.
pub fn composed_query() -> impl Strategy<Value = String> {
    (0..SEEDS.len(), 0..SEEDS.len(), 0..OPS.len(), any::<bool>()).prop_map(
        |(a, b, op, subquery)| {
            if subquery {
                format!("sum_over_time(({})[2m:15s])", SEEDS[a])
            } else {
                format!("({}) {} ({})", SEEDS[a], OPS[op], SEEDS[b])
            }
        },
    )
}

/// Any of the above.
pub fn any_query() -> impl Strategy<Value = String> {
    prop_oneof![mutated_query(), token_soup(), composed_query()]
}
