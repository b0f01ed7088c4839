//! The parsed object index: matcher selection, label names and values, and the index's size.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use strata_model::{MatchOp, Matcher};

use super::*;
use crate::ObjectIndex;

/// Series selected by checking every matcher against every series' materialised labels.
fn brute_force(index: &ObjectIndex, matchers: &[Matcher]) -> Vec<usize> {
    (0..index.len())
        .filter(|&i| {
            let labels = index.labels(i);
            matchers
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        })
        .collect()
}

fn matcher(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

/// Series over a small vocabulary, some without `env` or `zone`.
fn vocabulary_object() -> BuiltObject {
    let jobs = ["api", "db", "cache", "queue"];
    let envs = ["prod", "staging", ""];
    let zones = ["a", "b", "c", "", ""];
    let names = ["up", "requests_total", "errors_total"];
    let series: Vec<TestSeries> = (0..360usize)
        .map(|n| TestSeries {
            labels: labels(&[
                ("__name__", names[n % 3]),
                ("job", jobs[n / 3 % 4]),
                ("env", envs[n / 12 % 3]),
                ("zone", zones[n / 36 % 5]),
                ("instance", &format!("host-{}", n / 180)),
                ("n", &n.to_string()),
            ]),
            chunks: vec![chunk(n as i64, n as i64 + 10, 1, b"x")],
        })
        .collect();
    build("t", "k", &series)
}

#[test]
fn select_agrees_with_brute_force_for_every_operator() {
    use MatchOp::{Equal, NotEqual, RegexMatch, RegexNoMatch};
    let built = vocabulary_object();
    let index = &built.index;
    assert_eq!(index.len(), 360);
    let cases: Vec<Vec<Matcher>> = vec![
        vec![],
        vec![matcher(Equal, "job", "api")],
        vec![
            matcher(Equal, "__name__", "up"),
            matcher(Equal, "job", "db"),
        ],
        vec![matcher(NotEqual, "job", "api")],
        vec![matcher(RegexMatch, "job", "api|db")],
        vec![matcher(RegexMatch, "job", "a.*")],
        vec![matcher(RegexNoMatch, "job", "a.*")],
        vec![
            matcher(RegexMatch, "n", "1.*"),
            matcher(NotEqual, "env", "prod"),
        ],
        // Absent labels: "" matches series without the label.
        vec![matcher(Equal, "env", "")],
        vec![matcher(NotEqual, "env", "")],
        vec![matcher(RegexMatch, "zone", "")],
        vec![matcher(RegexMatch, "zone", "a|")],
        vec![matcher(RegexMatch, "zone", ".*")],
        vec![matcher(RegexMatch, "zone", ".+")],
        vec![matcher(RegexNoMatch, "zone", ".+")],
        vec![matcher(RegexNoMatch, "zone", "")],
        // A label no series has.
        vec![matcher(Equal, "nope", "")],
        vec![matcher(Equal, "nope", "x")],
        vec![matcher(NotEqual, "nope", "x")],
        vec![matcher(NotEqual, "nope", "")],
        vec![matcher(RegexMatch, "nope", ".*")],
        vec![matcher(RegexMatch, "nope", ".+")],
        vec![matcher(RegexNoMatch, "nope", "x")],
        // A value no series has, and a value that is a symbol of another label.
        vec![matcher(Equal, "job", "nope")],
        vec![matcher(NotEqual, "job", "nope")],
        vec![matcher(Equal, "job", "prod")],
        vec![matcher(Equal, "zone", "api")],
        // A label name that only occurs as a value.
        vec![matcher(Equal, "api", "")],
        vec![matcher(Equal, "api", "db")],
        // Contradictions and overlaps.
        vec![matcher(Equal, "job", "api"), matcher(Equal, "job", "db")],
        vec![
            matcher(RegexMatch, "job", "api|db"),
            matcher(RegexNoMatch, "job", "db"),
            matcher(NotEqual, "zone", "b"),
            matcher(Equal, "instance", "host-1"),
        ],
    ];
    for matchers in cases {
        let got = index.select(&matchers);
        let want = brute_force(index, &matchers);
        let shown: Vec<String> = matchers.iter().map(ToString::to_string).collect();
        assert_eq!(got, want, "{shown:?}");
    }
    assert_eq!(index.select(&[]).len(), 360);
    assert_eq!(index.select(&[matcher(Equal, "job", "api")]).len(), 90);
    assert_eq!(index.select(&[matcher(Equal, "env", "")]).len(), 120);
}

#[test]
fn label_names_and_values() {
    let built = vocabulary_object();
    let index = &built.index;
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in 0..index.len() {
        for l in &index.labels(i) {
            expected
                .entry(l.name.clone())
                .or_default()
                .insert(l.value.clone());
        }
    }
    let names: Vec<&str> = expected.keys().map(String::as_str).collect();
    assert_eq!(index.label_names(), names);
    assert_eq!(names, ["__name__", "env", "instance", "job", "n", "zone"]);
    for (name, values) in &expected {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        assert_eq!(index.label_values(name), values, "{name}");
        assert_eq!(built.label_values[name], values, "{name}");
    }
    assert_eq!(built.label_values.len(), expected.len());
    assert_eq!(index.all_label_values(), built.label_values);
    assert_eq!(index.label_values("zone"), ["a", "b", "c"]);
    assert_eq!(
        index.label_values("__name__"),
        ["errors_total", "requests_total", "up"]
    );
    assert!(index.label_values("nope").is_empty());
    // "api" is a symbol, but only a value.
    assert!(index.label_values("api").is_empty());
    for i in 0..index.len() {
        let labels = index.labels(i);
        for name in ["job", "zone", "env", "n", "api", "nope"] {
            assert_eq!(index.label_value(i, name), labels.get(name), "{name}");
        }
    }
}

fn matcher_strategy() -> impl Strategy<Value = Matcher> {
    let names = prop::sample::select(vec!["__name__", "job", "env", "zone", "n", "nope", "api"]);
    let values = prop::sample::select(vec![
        "", "api", "db", "prod", "a", "up", "1", "nope", "a|b", "a.*", ".*", ".+", "(a|)", "1.?",
        "[0-9]+", "host-.*",
    ]);
    let ops = prop::sample::select(vec![
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::RegexMatch,
        MatchOp::RegexNoMatch,
    ]);
    (ops, names, values).prop_map(|(op, name, value)| matcher(op, name, value))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn select_matches_brute_force_on_random_matchers(
        matchers in prop::collection::vec(matcher_strategy(), 0..4),
    ) {
        let built = vocabulary_object();
        let got = built.index.select(&matchers);
        prop_assert_eq!(got, brute_force(&built.index, &matchers));
    }

    #[test]
    fn select_matches_brute_force_on_random_objects(
        written in series_strategy(),
        matchers in prop::collection::vec(
            (
                prop::sample::select(vec![MatchOp::Equal, MatchOp::NotEqual, MatchOp::RegexMatch, MatchOp::RegexNoMatch]),
                "[a-z_]{1,2}",
                "[ -~]{0,3}|\\.\\*|\\.\\+",
            ),
            0..3,
        ),
    ) {
        let built = build("t", "k", &written);
        let matchers: Vec<Matcher> = matchers
            .into_iter()
            .filter_map(|(op, name, value)| Matcher::new(op, name, value).ok())
            .collect();
        prop_assert_eq!(built.index.select(&matchers), brute_force(&built.index, &matchers));
    }
}

/// A small deterministic generator (the size test must not depend on a random seed).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` realistic series: 10 labels with values of about 15 bytes drawn from a shared
/// vocabulary of a few thousand strings (a few hundred metric names, a few thousand
/// pods/instances, small sets of jobs, namespaces, zones...), and 2 chunks of ~120 samples
/// at a 15 s interval, back to back, starting anywhere in a 2 h flush window.
fn realistic_series(n: usize) -> Vec<TestSeries> {
    let mut rng = SplitMix(42);
    let metric_names: Vec<String> = (0..300)
        .map(|i| format!("app_metric_{i:03}_total"))
        .collect();
    let pods: Vec<String> = (0..2500)
        .map(|i| format!("svc-{:02}-7d9f8c-{:05}", i % 60, i))
        .collect();
    let instances: Vec<String> = (0..1200)
        .map(|i| format!("10.0.{}.{}:9100", i / 250, i % 250))
        .collect();
    let jobs: Vec<String> = (0..40).map(|i| format!("kubernetes-job-{i:02}")).collect();
    let namespaces: Vec<String> = (0..30).map(|i| format!("team-namespace-{i:02}")).collect();
    let containers: Vec<String> = (0..80).map(|i| format!("container-{i:04}-app")).collect();
    let services: Vec<String> = (0..150).map(|i| format!("service-name-{i:03}")).collect();
    let clusters = ["prod-eu-west-1a", "prod-us-east-1b", "prod-ap-south-1"];
    let envs = ["production-blue", "production-green"];
    let zones = ["eu-west-1a-zone", "eu-west-1b-zone", "eu-west-1c-zone"];
    let pick = |rng: &mut SplitMix, v: &[String]| v[rng.below(v.len() as u64) as usize].clone();
    let window_start: i64 = 1_700_000_000_000;
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let l = labels(&[
            ("__name__", &pick(&mut rng, &metric_names)),
            ("cluster", clusters[rng.below(3) as usize]),
            ("container", &pick(&mut rng, &containers)),
            ("env", envs[rng.below(2) as usize]),
            ("instance", &pick(&mut rng, &instances)),
            ("job", &pick(&mut rng, &jobs)),
            ("namespace", &pick(&mut rng, &namespaces)),
            ("pod", &pick(&mut rng, &pods)),
            ("service", &pick(&mut rng, &services)),
            ("zone", zones[rng.below(3) as usize]),
        ]);
        if !seen.insert(l.clone()) {
            continue;
        }
        let first_min = window_start + rng.below(7_200_000) as i64;
        let first_max = first_min + 119 * 15_000 + rng.below(500) as i64;
        let second_min = first_max + 15_000 + rng.below(200) as i64;
        let second_max = second_min + 119 * 15_000 + rng.below(500) as i64;
        let payload = vec![0xA5u8; 150 + rng.below(200) as usize];
        out.push(TestSeries {
            labels: l,
            chunks: vec![
                chunk(first_min, first_max, 1, &payload),
                chunk(second_min, second_max, 1, &payload[..payload.len() - 20]),
            ],
        });
    }
    out
}

#[test]
fn the_index_costs_under_70_bytes_per_series() {
    let series = realistic_series(10_000);
    let built = build("tenant-1", "tenant-1/chunks/19000/w-1", &series);
    let index = &built.index;
    assert_eq!(index.len(), 10_000);
    let per_series = f64::from(built.index_len) / 10_000.0;
    let data_per_series = (built.index_offset as f64) / 10_000.0;
    eprintln!(
        "index section: {} bytes for 10000 series = {per_series:.1} bytes per series \
         (symbol table included); chunk records: {data_per_series:.0} bytes per series; \
         in memory: {} bytes per series",
        built.index_len,
        index.heap_size() / 10_000
    );
    assert!(per_series < 70.0, "{per_series} bytes per series");

    // The big object still answers matchers like brute force.
    use MatchOp::{Equal, NotEqual, RegexMatch, RegexNoMatch};
    for matchers in [
        vec![matcher(Equal, "__name__", "app_metric_007_total")],
        vec![
            matcher(RegexMatch, "pod", "svc-0[0-4]-.*"),
            matcher(NotEqual, "zone", "eu-west-1a-zone"),
        ],
        vec![
            matcher(RegexNoMatch, "instance", "10\\.0\\.[0-2]\\..*"),
            matcher(Equal, "cluster", "prod-eu-west-1a"),
        ],
    ] {
        let got = index.select(&matchers);
        assert!(!got.is_empty());
        assert_eq!(got, brute_force(index, &matchers));
    }
}
