//! The index schema over the embedded and in-memory row stores.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use proptest::prelude::*;
use strata_index::{
    EmbeddedRowStore, Index, IndexError, IndexItem, IndexMetrics, MemoryRowStore, NameIndex,
    NewObject, RowStore, SchemaConfig, WriteStats, MAX_ITEM_BYTES,
};
use strata_model::{Labels, MatchOp, Matcher};

const TENANT: &str = "team-a";

fn memory() -> Arc<dyn RowStore> {
    Arc::new(MemoryRowStore::new())
}

fn set(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[tokio::test]
async fn new_refuses_an_invalid_schema() {
    let err = Index::new(
        memory(),
        schema(vec![period("2024-01-01", "idx", 0)]),
        IndexMetrics::new(),
    )
    .unwrap_err();
    assert!(matches!(err, IndexError::InvalidSchema(_)), "{err}");
    assert!(err.to_string().contains("period #1"), "{err}");
}

/// Three objects with listed (few) values: every matcher type rules objects in or out exactly.
#[tokio::test]
async fn candidates_follow_every_matcher_type() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let api = [
        labels(&[("__name__", "up"), ("job", "api"), ("env", "prod")]),
        labels(&[("__name__", "http_requests_total"), ("job", "api")]),
    ];
    let db = [labels(&[("__name__", "up"), ("job", "db"), ("env", "dev")])];
    let nameless = [labels(&[("job", "batch"), ("orphan", "1")])];
    add(&index, TENANT, "t/api", at(0, 10), at(0, 20), &api)
        .await
        .unwrap();
    add(&index, TENANT, "t/db", at(0, 10), at(0, 20), &db)
        .await
        .unwrap();
    add(
        &index,
        TENANT,
        "t/nameless",
        at(0, 30),
        at(0, 40),
        &nameless,
    )
    .await
    .unwrap();
    let (from, to) = (at(0, 0), at(0, 100));
    let cases: Vec<(Vec<Matcher>, Vec<&str>)> = vec![
        (vec![eq("__name__", "up")], vec!["t/api", "t/db"]),
        (vec![eq("job", "api")], vec!["t/api"]),
        (vec![eq("job", "api"), eq("env", "dev")], vec![]),
        (vec![eq("job", "nope")], vec![]),
        (
            vec![matcher(MatchOp::RegexMatch, "job", "db|batch")],
            vec!["t/db", "t/nameless"],
        ),
        (
            vec![matcher(MatchOp::RegexMatch, "__name__", "http_.*")],
            vec!["t/api"],
        ),
        // Matchers that accept the empty string rule nothing out on their own.
        (
            vec![matcher(MatchOp::NotEqual, "job", "api")],
            vec!["t/api", "t/db", "t/nameless"],
        ),
        (
            vec![matcher(MatchOp::RegexNoMatch, "env", "prod|dev")],
            vec!["t/api", "t/db", "t/nameless"],
        ),
        (vec![eq("env", "")], vec!["t/api", "t/db", "t/nameless"]),
        // A metric-less selector, and series without a metric name.
        (vec![eq("orphan", "1")], vec!["t/nameless"]),
        (
            vec![eq("__name__", ""), eq("job", "batch")],
            vec!["t/nameless"],
        ),
        (vec![], vec!["t/api", "t/db", "t/nameless"]),
    ];
    for (matchers, want) in cases {
        let got = index.candidates(TENANT, from, to, &matchers).await.unwrap();
        assert_eq!(keys(&got), set(&want), "{matchers:?}");
    }
    // Time: objects whose span misses the range are not candidates.
    let got = index
        .candidates(TENANT, at(0, 25), at(0, 35), &[])
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/nameless"]));
    // Tenants are apart.
    assert!(index
        .candidates("team-b", from, to, &[])
        .await
        .unwrap()
        .is_empty());
    // The catalog carries what the store needs to read each object's own index.
    let all = index.objects(TENANT, from, to).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(
        (all[0].index_offset, all[0].index_len, all[0].series_count),
        (4096, 512, 2)
    );
    let names = all[0].names.as_ref().unwrap();
    assert_eq!(names.get("job"), Some(&NameIndex::Values));
}

/// A label with many values per object is indexed by a Bloom filter: equality still finds the
/// object, absent values almost never do, regexes keep the object in.
#[tokio::test]
async fn many_values_go_to_bloom_filters() {
    let counting = CountingStore::new(memory());
    let index = index_on(counting.clone(), SchemaConfig::default()).await;
    let series: Vec<Labels> = (0..20_000)
        .map(|i| {
            labels(&[
                ("__name__", "kube_pod_info"),
                ("pod", &format!("checkout-7d9f8b6c5-{i:05}")),
            ])
        })
        .collect();
    add(&index, TENANT, "t/pods", at(0, 0), at(0, 10), &series)
        .await
        .unwrap();
    add(
        &index,
        TENANT,
        "t/other",
        at(0, 0),
        at(0, 10),
        &series[..10],
    )
    .await
    .unwrap();
    let objects = index.objects(TENANT, at(0, 0), at(0, 10)).await.unwrap();
    let names = objects[1].names.as_ref().unwrap();
    assert_eq!(objects[1].key, "t/pods");
    assert!(
        matches!(names.get("pod"), Some(NameIndex::Filter { shards }) if *shards >= 4),
        "{names:?}"
    );
    // Small objects list their values.
    assert_eq!(
        objects[0].names.as_ref().unwrap().get("pod"),
        Some(&NameIndex::Values)
    );
    let written = counting.take_written();
    assert!(
        written.iter().all(|w| w.size <= 8 * 1024),
        "filters are split"
    );

    for i in [0, 17, 12_345, 19_999] {
        let m = [eq("pod", &format!("checkout-7d9f8b6c5-{i:05}"))];
        let got = index
            .candidates(TENANT, at(0, 0), at(0, 10), &m)
            .await
            .unwrap();
        assert!(keys(&got).contains(&"t/pods".to_string()), "pod {i}");
    }
    let mut false_positives = 0;
    for i in 0..500 {
        let m = [eq("pod", &format!("absent-{i}"))];
        false_positives += index
            .candidates(TENANT, at(0, 0), at(0, 10), &m)
            .await
            .unwrap()
            .len();
    }
    assert!(
        false_positives < 25,
        "{false_positives} of 500 absent values"
    );
    let literals = [matcher(
        MatchOp::RegexMatch,
        "pod",
        "checkout-7d9f8b6c5-00003|absent",
    )];
    let got = index
        .candidates(TENANT, at(0, 0), at(0, 10), &literals)
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/other", "t/pods"]));
    let regex = [matcher(MatchOp::RegexMatch, "pod", "checkout-.*-1.*")];
    let got = index
        .candidates(TENANT, at(0, 0), at(0, 10), &regex)
        .await
        .unwrap();
    assert_eq!(
        keys(&got),
        set(&["t/pods"]),
        "listed values rule t/other out"
    );
    // Label values: listed ones answered, the filtered object left to its own index.
    let values = index
        .label_values(TENANT, at(0, 0), at(0, 10), "pod")
        .await
        .unwrap();
    assert_eq!(values.values.len(), 10);
    assert_eq!(keys(&values.unresolved), set(&["t/pods"]));
}

#[tokio::test]
async fn objects_across_days_and_before_1970() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let s = [labels(&[("__name__", "m"), ("job", "api")])];
    add(&index, TENANT, "t/span", at(1, 5), at(3, 5), &s)
        .await
        .unwrap();
    add(&index, TENANT, "t/old", -5, 5, &s).await.unwrap();
    for day in 1..=3 {
        let got = index
            .candidates(TENANT, at(day, 0), at(day, 10), &[eq("job", "api")])
            .await
            .unwrap();
        assert_eq!(keys(&got), set(&["t/span"]), "day {day}");
    }
    assert!(index
        .candidates(TENANT, at(0, 0), at(1, 4), &[])
        .await
        .unwrap()
        .is_empty());
    let got = index
        .candidates(TENANT, at(0, 0), at(5, 0), &[])
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "one entry per object across its days");
    let got = index.candidates(TENANT, -10, -1, &[]).await.unwrap();
    assert_eq!(keys(&got), set(&["t/old"]));
    let got = index.candidates(TENANT, 1, 10, &[]).await.unwrap();
    assert_eq!(keys(&got), set(&["t/old"]));
}

#[tokio::test]
async fn all_time_reads_are_bounded_and_find_recent_data() {
    let counting = CountingStore::new(memory());
    let index = index_on(counting.clone(), SchemaConfig::default()).await;
    let s = [labels(&[("__name__", "recent"), ("job", "api")])];
    let now = strata_model::duration::now_ms();
    add(&index, TENANT, "t/now", now - 1000, now, &s)
        .await
        .unwrap();
    let got = index
        .candidates(TENANT, i64::MIN, i64::MAX, &[eq("job", "api")])
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/now"]));
    let asked = counting.queries.lock().len();
    assert!(asked <= 2 * 3661, "{asked} row queries");
    let names = index.label_names(TENANT, i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(
        names.values.into_iter().collect::<Vec<_>>(),
        ["__name__", "job"]
    );
    let values = index
        .label_values(TENANT, i64::MIN, i64::MAX, "job")
        .await
        .unwrap();
    assert_eq!(values.values.into_iter().collect::<Vec<_>>(), ["api"]);
    assert!(values.unresolved.is_empty());
}

#[tokio::test]
async fn schema_periods_switch_tables_and_filter_caps() {
    let counting = CountingStore::new(memory());
    // Day 0 of the tests is 2024-03-01; the new period starts on day 2.
    let index = index_on(
        counting.clone(),
        schema(vec![
            period("2024-01-01", "idx_v1", 2),
            period("2024-03-03", "idx_v2", 8),
        ]),
    )
    .await;
    let many: Vec<Labels> = (0..20_000)
        .map(|i| labels(&[("__name__", "m"), ("i", &format!("value-{i}"))]))
        .collect();
    add(&index, TENANT, "t/before", at(1, 0), at(1, 10), &many)
        .await
        .unwrap();
    let written = counting.take_written();
    assert!(written.iter().all(|w| w.table == "idx_v1"));
    assert!(written.iter().any(|w| w.hash.contains(":f:2:1:i")));
    assert!(!written.iter().any(|w| w.hash.contains(":f:4:")));

    add(&index, TENANT, "t/after", at(2, 0), at(2, 10), &many)
        .await
        .unwrap();
    let written = counting.take_written();
    assert!(written.iter().all(|w| w.table == "idx_v2"));
    assert!(written.iter().any(|w| w.hash.contains(":f:8:7:i")));

    // An object spanning the boundary is written to both.
    add(&index, TENANT, "t/span", at(1, 5), at(2, 5), &many[..3])
        .await
        .unwrap();
    let tables: BTreeSet<String> = counting
        .take_written()
        .into_iter()
        .map(|w| w.table)
        .collect();
    assert_eq!(tables, BTreeSet::from(["idx_v1".into(), "idx_v2".into()]));

    let m = [eq("i", "value-123")];
    let got = index
        .candidates(TENANT, at(1, 0), at(2, 0), &m)
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/after", "t/before"]));
    let got = index
        .candidates(TENANT, at(2, 0), at(2, 0), &m)
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/after"]));
    // Days before the first period belong to the first period.
    add(
        &index,
        TENANT,
        "t/ancient",
        at(-400, 0),
        at(-400, 0),
        &many[..1],
    )
    .await
    .unwrap();
    assert!(counting.take_written().iter().all(|w| w.table == "idx_v1"));
    let got = index
        .candidates(TENANT, at(-400, 0), at(-400, 0), &[eq("i", "value-0")])
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/ancient"]));
}

#[tokio::test]
async fn label_names_and_values() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    add(
        &index,
        TENANT,
        "t/1",
        at(0, 0),
        at(0, 10),
        &[
            labels(&[("__name__", "up"), ("job", "api")]),
            labels(&[("__name__", "up"), ("job", "db"), ("zone", "a\0b")]),
        ],
    )
    .await
    .unwrap();
    add(
        &index,
        TENANT,
        "t/2",
        at(1, 0),
        at(1, 10),
        &[labels(&[("job", "web"), ("other", "x")])],
    )
    .await
    .unwrap();
    add(
        &index,
        "team-b",
        "b/1",
        at(0, 0),
        at(0, 10),
        &[labels(&[("secret", "1")])],
    )
    .await
    .unwrap();
    let names = index
        .label_names(TENANT, at(0, 0), at(0, 10))
        .await
        .unwrap();
    assert_eq!(
        names.values.into_iter().collect::<Vec<_>>(),
        ["__name__", "job", "zone"]
    );
    let names = index
        .label_names(TENANT, at(0, 0), at(1, 10))
        .await
        .unwrap();
    assert_eq!(
        names.values.into_iter().collect::<Vec<_>>(),
        ["__name__", "job", "other", "zone"]
    );
    let values = index
        .label_values(TENANT, at(0, 0), at(1, 10), "job")
        .await
        .unwrap();
    assert_eq!(
        values.values.into_iter().collect::<Vec<_>>(),
        ["api", "db", "web"]
    );
    let values = index
        .label_values(TENANT, at(0, 0), at(1, 10), "zone")
        .await
        .unwrap();
    assert_eq!(values.values.into_iter().collect::<Vec<_>>(), ["a\0b"]);
    assert!(index
        .label_values(TENANT, at(0, 0), at(1, 10), "nope")
        .await
        .unwrap()
        .values
        .is_empty());
    assert!(index
        .label_values(TENANT, at(5, 0), at(4, 0), "job")
        .await
        .unwrap()
        .values
        .is_empty());
}

#[tokio::test]
async fn write_stats_are_what_dynamodb_would_bill() {
    let counting = CountingStore::new(memory());
    let index = index_on(counting.clone(), SchemaConfig::default()).await;
    let series: Vec<Labels> = (0..5000)
        .map(|i| {
            labels(&[
                ("__name__", "m"),
                ("job", ["api", "db"][i % 2]),
                ("id", &format!("{i:06}")),
            ])
        })
        .collect();
    let stats = add(&index, TENANT, "t/obj", at(0, 0), at(0, 10), &series)
        .await
        .unwrap();
    let written = counting.take_written();
    let sizes: u64 = written.iter().map(|w| w.size as u64).sum();
    let units: u64 = written.iter().map(|w| w.units).sum();
    assert_eq!(stats.items, written.len() as u64);
    assert_eq!(stats.bytes, sizes);
    assert_eq!(stats.write_units, units);
    for w in &written {
        assert_eq!(w.units, (w.size as u64).div_ceil(1024).max(1));
    }
    // A few items, not one per series: catalog, two listed labels, the id filter.
    assert!(stats.items <= 8, "{stats:?}");
    assert!(stats.write_units <= 12, "{stats:?}");
}

/// Acceptance: one metric with 200 000 series (in four objects of 50 000, as flushes cut
/// them): no item over 64 KB, no hash key with more than 10 % of the write units.
#[tokio::test]
async fn one_big_metric_spreads_over_many_small_items() {
    let counting = CountingStore::new(memory());
    let index = index_on(counting.clone(), SchemaConfig::default()).await;
    let big: Vec<Labels> = (0..200_000)
        .map(|i| {
            labels(&[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", &format!("10.0.{}.{}:9090", i % 50, i % 7)),
                ("id", &format!("{i:08}")),
            ])
        })
        .collect();
    let mut stats = WriteStats::default();
    for (n, part) in big.chunks(50_000).enumerate() {
        stats += add(
            &index,
            TENANT,
            &format!("tenant/chunks/{n}"),
            at(0, 1000),
            at(0, 2000),
            part,
        )
        .await
        .unwrap();
    }
    let written = counting.take_written();
    assert_eq!(stats.items, written.len() as u64);
    let largest = written.iter().map(|w| w.size).max().unwrap();
    assert!(largest <= 64 * 1024, "largest item is {largest} bytes");
    assert!(largest <= MAX_ITEM_BYTES, "largest item is {largest} bytes");
    let total: u64 = written.iter().map(|w| w.units).sum();
    let by_hash = CountingStore::units_by_hash(&written);
    let (hottest, units) = by_hash.iter().max_by_key(|(_, u)| **u).unwrap();
    assert!(
        *units * 10 <= total,
        "hash key {hottest} gets {units} of {total} write units"
    );
    // Far below one unit per series.
    assert!(total < 1000, "{total} write units for 200 000 series");

    // And it reads back: one id selects one object.
    let one = index
        .candidates(
            TENANT,
            at(0, 0),
            at(0, 5000),
            &[eq("job", "api"), eq("id", "00123456")],
        )
        .await
        .unwrap();
    assert!(keys(&one).contains(&"tenant/chunks/2".to_string()));
    assert!(one.len() <= 2, "{:?}", keys(&one));
    let all = index
        .candidates(
            TENANT,
            at(0, 0),
            at(0, 5000),
            &[eq("__name__", "http_requests_total")],
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().map(|o| o.series_count).sum::<u64>(), 200_000);
}

/// A row store that loses the catalog's second part, as a write that failed half-way would.
struct LosingStore(Arc<dyn RowStore>);

#[async_trait]
impl RowStore for LosingStore {
    async fn ensure_table(&self, table: &str) -> Result<(), IndexError> {
        self.0.ensure_table(table).await
    }
    async fn write(&self, table: &str, items: Vec<IndexItem>) -> Result<WriteStats, IndexError> {
        let kept: Vec<IndexItem> = items
            .into_iter()
            .filter(|i| !(i.hash.ends_with(":c") && i.range.ends_with(&[0, 0, 0, 1])))
            .collect();
        self.0.write(table, kept).await
    }
    async fn query(&self, t: &str, h: &str, p: &[u8]) -> Result<Vec<IndexItem>, IndexError> {
        self.0.query(t, h, p).await
    }
    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[tokio::test]
async fn incomplete_catalog_entries_rule_nothing_out() {
    let index = index_on(Arc::new(LosingStore(memory())), SchemaConfig::default()).await;
    // Enough label names for two catalog parts.
    let pairs: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("label_name_number_{i:05}"), "v".to_string()))
        .collect();
    let wide = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    add(&index, TENANT, "t/wide", at(0, 0), at(0, 10), &[wide])
        .await
        .unwrap();
    let objects = index.objects(TENANT, at(0, 0), at(0, 10)).await.unwrap();
    assert_eq!(objects.len(), 1);
    assert!(objects[0].names.is_none());
    let got = index
        .candidates(TENANT, at(0, 0), at(0, 10), &[eq("anything", "x")])
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/wide"]));
    let names = index
        .label_names(TENANT, at(0, 0), at(0, 10))
        .await
        .unwrap();
    assert_eq!(keys(&names.unresolved), set(&["t/wide"]));
}

#[tokio::test]
async fn bad_requests_are_errors() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let s = [labels(&[("__name__", "m")])];
    let invalid = |r: Result<WriteStats, IndexError>| match r {
        Err(IndexError::InvalidRequest(message)) => message,
        other => panic!("expected an invalid request, got {other:?}"),
    };
    assert!(invalid(add(&index, "", "k", 0, 0, &s).await).contains("tenant"));
    assert!(invalid(add(&index, TENANT, "k", 10, 0, &s).await).contains("from <= to"));
    assert!(
        invalid(add(&index, TENANT, "k", 0, 400 * strata_index::DAY_MS, &s).await).contains("days")
    );
    assert!(invalid(add(&index, TENANT, "", 0, 0, &s).await).contains("object key"));
    assert!(invalid(add(&index, TENANT, &"k".repeat(1200), 0, 0, &s).await).contains("object key"));
    let huge = [labels(&[("__name__", "m"), ("v", &"x".repeat(20_000))])];
    assert!(invalid(add(&index, TENANT, "k", 0, 0, &huge).await).contains("label v"));
    let unsorted = BTreeMap::from([("a".to_string(), vec!["b".to_string(), "a".to_string()])]);
    let object = NewObject {
        key: "k",
        index_offset: 0,
        index_len: 0,
        min_time: 0,
        max_time: 0,
        series_count: 1,
        label_values: &unsorted,
    };
    assert!(invalid(index.add_object(TENANT, &object).await).contains("sorted"));
    // A label name too long for a key is recorded as unindexed, not refused.
    let long_name = [labels(&[("__name__", "m"), (&"n".repeat(2000), "x")])];
    add(&index, TENANT, "t/long", 0, 0, &long_name)
        .await
        .unwrap();
    let got = index
        .candidates(TENANT, 0, 0, &[eq(&"n".repeat(2000), "y")])
        .await
        .unwrap();
    assert_eq!(keys(&got), set(&["t/long"]));
    // Nothing was written by the refused calls.
    assert_eq!(index.objects(TENANT, 0, 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn missing_tables_are_reported() {
    let index = Index::new(memory(), SchemaConfig::default(), IndexMetrics::new()).unwrap();
    let err = index
        .candidates(TENANT, 0, 0, &[eq("a", "b")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ensure_tables"), "{err}");
}

/// Garbage under the index's hash keys: every call answers, with an error where it reads
/// garbage, and never panics.
#[tokio::test]
async fn garbage_in_stored_items_is_an_error_not_a_panic() {
    let store = memory();
    let index = index_on(store.clone(), SchemaConfig::default()).await;
    let day = BASE_DAY;
    let put = |hash: String, range: &[u8], value: &[u8]| {
        let store = store.clone();
        let item = IndexItem {
            hash,
            range: range.to_vec(),
            value: value.to_vec(),
        };
        async move { store.write("strata_index", vec![item]).await.unwrap() }
    };
    // A good object, then garbage in its label's values row.
    add(
        &index,
        TENANT,
        "t/o",
        at(0, 0),
        at(0, 10),
        &[labels(&[("job", "api")])],
    )
    .await
    .unwrap();
    put(
        format!("{TENANT}:{day}:v:job"),
        b"t/o\0\0\0\0\0",
        &[2, 1, 200],
    )
    .await;
    let err = index
        .candidates(TENANT, at(0, 0), at(0, 0), &[eq("job", "api")])
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("corrupt index item"), "{err}");
    assert!(index
        .label_values(TENANT, at(0, 0), at(0, 0), "job")
        .await
        .is_err());
    // Catalog items with garbage.
    put(format!("{TENANT}:{}:c", day + 1), b"key\0\0\0\0\0", &[2, 5]).await;
    assert!(index.objects(TENANT, at(1, 0), at(1, 0)).await.is_err());
    put(format!("{TENANT}:{}:c", day + 2), b"no part number", &[]).await;
    assert!(index.objects(TENANT, at(2, 0), at(2, 0)).await.is_err());
    assert!(index.label_names(TENANT, at(2, 0), at(2, 0)).await.is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random bytes under every kind of hash key never panic any read.
    #[test]
    fn random_stored_bytes_never_panic(
        range in proptest::collection::vec(any::<u8>(), 0..24),
        value in proptest::collection::vec(any::<u8>(), 0..48),
        kind in 0usize..3,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = memory();
            let index = index_on(store.clone(), schema(vec![period("2024-01-01", "t_idx", 1)])).await;
            let many: Vec<Labels> = (0..2000)
                .map(|i| labels(&[("__name__", "m"), ("i", &format!("{i}"))]))
                .collect();
            add(&index, TENANT, "t/o", at(0, 0), at(0, 0), &many).await.unwrap();
            let hash = match kind {
                0 => format!("{TENANT}:{BASE_DAY}:c"),
                1 => format!("{TENANT}:{BASE_DAY}:v:__name__"),
                _ => format!("{TENANT}:{BASE_DAY}:f:1:0:i"),
            };
            store.write("t_idx", vec![IndexItem { hash, range, value }]).await.unwrap();
            let (from, to) = (at(0, 0), at(0, 0));
            let _ = index.candidates(TENANT, from, to, &[matcher(MatchOp::RegexMatch, "__name__", ".+")]).await;
            let _ = index.candidates(TENANT, from, to, &[eq("i", "7")]).await;
            let _ = index.objects(TENANT, from, to).await;
            let _ = index.label_names(TENANT, from, to).await;
            let _ = index.label_values(TENANT, from, to, "__name__").await;
        });
    }
}

// ---- brute force against random series ------------------------------------------------------

#[derive(Clone, Debug)]
struct RandomObject {
    series: Vec<Labels>,
    start_day: i64,
    days: i64,
}

fn random_labels() -> impl Strategy<Value = Labels> {
    let value = |choices: &'static [&'static str]| prop::option::of(prop::sample::select(choices));
    (
        value(&["m1", "m2", "m3"]),
        value(&["x", "y", "z", "xy"]),
        value(&["x", "y", "a\0b"]),
        value(&["x", "m1", "ü"]),
        0u32..400,
    )
        .prop_map(|(name, a, b, c, id)| {
            let id = format!("id-{id}");
            let mut pairs = Vec::new();
            for (n, v) in [("__name__", name), ("a", a), ("b", b), ("c", c)] {
                if let Some(v) = v {
                    pairs.push((n, v));
                }
            }
            pairs.push(("id", id.as_str()));
            Labels::from_pairs(pairs)
        })
}

fn random_object() -> impl Strategy<Value = RandomObject> {
    (
        proptest::collection::vec(random_labels(), 1..12),
        0i64..5,
        0i64..2,
        any::<bool>(),
    )
        .prop_map(|(series, start_day, days, big)| {
            let mut series = series;
            if big {
                // Enough distinct ids for a Bloom filter.
                series.extend(
                    (0..2000).map(|i| labels(&[("__name__", "m9"), ("id", &format!("big-{i}"))])),
                );
            }
            RandomObject {
                series,
                start_day,
                days,
            }
        })
}

fn random_matcher() -> impl Strategy<Value = Matcher> {
    (
        prop::sample::select(
            &[
                MatchOp::Equal,
                MatchOp::NotEqual,
                MatchOp::RegexMatch,
                MatchOp::RegexNoMatch,
            ][..],
        ),
        prop::sample::select(&["__name__", "a", "b", "c", "d", "id"][..]),
        prop::sample::select(
            &[
                "",
                "x",
                "y",
                "xy",
                "m1",
                "a\0b",
                "x|y",
                "x|",
                "m1|m3",
                ".*",
                ".+",
                "x.*",
                "m.",
                "(x|xy)",
                "[xy]+",
                "ü|z",
                "id-7",
                "big-3",
                "id-1.*",
                "big-5|id-9",
            ][..],
        ),
    )
        .prop_map(|(op, name, value)| matcher(op, name, value))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Every matcher type, metric-less selectors, several days, listed and filtered labels
    /// and a schema change in the middle, on the embedded store: the candidates always hold
    /// every object with a matching series, and rule out every object that a listed label
    /// or a missing label rules out.
    #[test]
    fn candidates_agree_with_brute_force(
        objects in proptest::collection::vec(random_object(), 1..8),
        queries in proptest::collection::vec(
            (proptest::collection::vec(random_matcher(), 0..4), 0i64..7, 0i64..3),
            12,
        ),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn RowStore> = Arc::new(EmbeddedRowStore::open(dir.path()).unwrap());
            // Days 0-2 in one table, from day 3 on another with another filter cap.
            let index = index_on(
                store,
                schema(vec![period("2024-01-01", "idx_a", 1), period("2024-03-04", "idx_b", 4)]),
            )
            .await;
            for (n, o) in objects.iter().enumerate() {
                add(&index, TENANT, &format!("t/{n}"), at(o.start_day, 1234), at(o.start_day + o.days, 5678), &o.series)
                    .await
                    .unwrap();
            }
            for (matchers, from_day, len) in &queries {
                let to_day = from_day + len;
                let got: BTreeSet<String> = index
                    .candidates(TENANT, at(*from_day, 0), at(to_day, 99_999), matchers)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|o| o.key)
                    .collect();
                let shown: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
                for (n, o) in objects.iter().enumerate() {
                    let key = format!("t/{n}");
                    let in_time = o.start_day <= to_day && o.start_day + o.days >= *from_day;
                    let has_match = o.series.iter().any(|s| {
                        matchers.iter().all(|m| m.matches(s.get(&m.name).unwrap_or("")))
                    });
                    if in_time && has_match {
                        prop_assert!(got.contains(&key), "{key} missing for {shown:?} days {from_day}+{len}");
                    }
                    // Per selecting matcher, some series of the object must have a value it
                    // accepts; for listed labels the index knows exactly.
                    let listed_ruled_out = matchers.iter().filter(|m| !m.matches_empty()).any(|m| {
                        let values: BTreeSet<&str> = o.series.iter().filter_map(|s| s.get(&m.name)).collect();
                        let listed = values.len() < 100;
                        (values.is_empty() || listed) && !values.iter().any(|v| m.matches(v))
                    });
                    if !in_time || listed_ruled_out {
                        prop_assert!(!got.contains(&key), "{key} not ruled out for {shown:?} days {from_day}+{len}");
                    }
                }
            }
            // Label names and listed values agree with the series too.
            let all: Vec<&Labels> = objects.iter().flat_map(|o| o.series.iter()).collect();
            let names = index.label_names(TENANT, at(0, 0), at(9, 0)).await.unwrap();
            let want_names: BTreeSet<String> =
                all.iter().flat_map(|s| s.iter().map(|l| l.name.clone())).collect();
            prop_assert_eq!(names.values, want_names);
            let values = index.label_values(TENANT, at(0, 0), at(9, 0), "a").await.unwrap();
            let want_values: BTreeSet<String> =
                all.iter().filter_map(|s| s.get("a").map(str::to_string)).collect();
            prop_assert_eq!(values.values, want_values);
            prop_assert!(values.unresolved.is_empty());
            Ok(())
        })?;
    }
}
