//! The index schema over the embedded and in-memory row stores.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use strata_index::{
    EmbeddedRowStore, Index, IndexError, IndexItem, IndexMetrics, MemoryRowStore, ObjectEntry,
    RowStore, SchemaConfig, WriteStats, MAX_ITEM_BYTES,
};
use strata_model::{Labels, MatchOp, Matcher};

const TENANT: &str = "team-a";

fn memory() -> Arc<dyn RowStore> {
    Arc::new(MemoryRowStore::new())
}

fn fps(list: &[&(u64, Labels)]) -> BTreeSet<u64> {
    list.iter().map(|(fp, _)| *fp).collect()
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

#[tokio::test]
async fn equality_regex_and_negative_matchers() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let a = series(&[("__name__", "up"), ("job", "api"), ("env", "prod")]);
    let b = series(&[("__name__", "up"), ("job", "db")]);
    let c = series(&[
        ("__name__", "http_requests_total"),
        ("job", "api"),
        ("code", "500"),
    ]);
    let d = series(&[("job", "api"), ("nameless", "yes")]);
    let all = [a.clone(), b.clone(), c.clone(), d.clone()];
    index
        .add_series(TENANT, at(0, 0), at(0, 1000), &all, "obj-1")
        .await
        .unwrap();
    let (from, to) = (at(0, 0), at(0, 5000));
    let look = |matchers: Vec<Matcher>| {
        let index = &index;
        async move { index.lookup(TENANT, from, to, &matchers).await.unwrap() }
    };

    assert_eq!(look(vec![eq("__name__", "up")]).await, fps(&[&a, &b]));
    // No metric name.
    assert_eq!(look(vec![eq("job", "api")]).await, fps(&[&a, &c, &d]));
    assert_eq!(
        look(vec![matcher(MatchOp::RegexMatch, "job", "api|db")]).await,
        fps(&[&a, &b, &c, &d])
    );
    assert_eq!(
        look(vec![matcher(MatchOp::RegexMatch, "__name__", "http_.*")]).await,
        fps(&[&c])
    );
    // != selects series without the label too.
    assert_eq!(
        look(vec![matcher(MatchOp::NotEqual, "env", "prod")]).await,
        fps(&[&b, &c, &d])
    );
    assert_eq!(
        look(vec![
            eq("__name__", "up"),
            matcher(MatchOp::RegexNoMatch, "job", "d.")
        ])
        .await,
        fps(&[&a])
    );
    // env="" selects series without env.
    assert_eq!(look(vec![eq("env", "")]).await, fps(&[&b, &c, &d]));
    assert_eq!(
        look(vec![matcher(MatchOp::NotEqual, "env", "")]).await,
        fps(&[&a])
    );
    // A series without __name__ is found by __name__="" and by matchers on other labels.
    assert_eq!(look(vec![eq("__name__", "")]).await, fps(&[&d]));
    assert_eq!(look(vec![eq("nameless", "yes")]).await, fps(&[&d]));
    assert_eq!(look(vec![]).await, fps(&[&a, &b, &c, &d]));
    assert!(look(vec![eq("job", "nope")]).await.is_empty());
    assert!(look(vec![eq("absent_label", "x")]).await.is_empty());
    // Time ranges outside the day see nothing; reversed ranges see nothing.
    assert!(index
        .lookup(TENANT, at(1, 0), at(2, 0), &[eq("job", "api")])
        .await
        .unwrap()
        .is_empty());
    assert!(index
        .lookup(TENANT, to, from, &[eq("job", "api")])
        .await
        .unwrap()
        .is_empty());
    // Other tenants see nothing, also one whose ID only differs by an escaped character.
    assert!(index
        .lookup("team-a:0", from, to, &[eq("job", "api")])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn lookups_across_several_days() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let day0 = series(&[("__name__", "m"), ("i", "0")]);
    let days01 = series(&[("__name__", "m"), ("i", "01")]);
    let day3 = series(&[("__name__", "m"), ("i", "3")]);
    index
        .add_series(
            TENANT,
            at(0, 10),
            at(0, 20),
            std::slice::from_ref(&day0),
            "b0",
        )
        .await
        .unwrap();
    // Spans midnight: postings in both days.
    index
        .add_series(
            TENANT,
            at(0, 86_000_000),
            at(1, 1000),
            std::slice::from_ref(&days01),
            "b01",
        )
        .await
        .unwrap();
    index
        .add_series(
            TENANT,
            at(3, 0),
            at(3, 0),
            std::slice::from_ref(&day3),
            "b3",
        )
        .await
        .unwrap();
    let m = [eq("__name__", "m")];
    let look = |from, to| {
        let (index, m) = (&index, &m);
        async move { index.lookup(TENANT, from, to, m).await.unwrap() }
    };
    assert_eq!(look(at(0, 0), at(0, 0)).await, fps(&[&day0, &days01]));
    assert_eq!(look(at(1, 5), at(1, 6)).await, fps(&[&days01]));
    assert!(look(at(2, 0), at(2, DAY_MS_MINUS_1)).await.is_empty());
    assert_eq!(look(at(1, 0), at(3, 0)).await, fps(&[&days01, &day3]));
    assert_eq!(
        look(at(-5, 0), at(9, 0)).await,
        fps(&[&day0, &days01, &day3])
    );
    // Day buckets are UTC days: the last millisecond of day 2 is still day 2.
    assert!(look(at(3, -1), at(3, -1)).await.is_empty());
    assert_eq!(look(at(3, 0), at(3, 0)).await, fps(&[&day3]));
}

const DAY_MS_MINUS_1: i64 = strata_index::DAY_MS - 1;

#[tokio::test]
async fn times_before_1970_use_floor_days() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let s = series(&[("__name__", "old")]);
    index
        .add_series(TENANT, -10, -5, std::slice::from_ref(&s), "b")
        .await
        .unwrap();
    let m = [eq("__name__", "old")];
    assert_eq!(index.lookup(TENANT, -1, -1, &m).await.unwrap(), fps(&[&s]));
    assert!(index.lookup(TENANT, 0, 10, &m).await.unwrap().is_empty());
}

#[tokio::test]
async fn all_time_reads_are_bounded_and_find_recent_data() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let s = series(&[("__name__", "recent"), ("job", "api")]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    index
        .add_series(TENANT, now - 1000, now, std::slice::from_ref(&s), "b")
        .await
        .unwrap();
    let m = [eq("job", "api")];
    assert_eq!(
        index.lookup(TENANT, i64::MIN, i64::MAX, &m).await.unwrap(),
        fps(&[&s])
    );
    assert_eq!(
        index.label_names(TENANT, i64::MIN, i64::MAX).await.unwrap(),
        vec!["__name__", "job"]
    );
    assert_eq!(
        index
            .label_values(TENANT, i64::MIN, i64::MAX, "job")
            .await
            .unwrap(),
        vec!["api"]
    );
}

#[tokio::test]
async fn schema_periods_switch_tables_and_shards() {
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
    let before: Vec<(u64, Labels)> = (0..64)
        .map(|i| series(&[("__name__", "m"), ("i", &format!("b{i}"))]))
        .collect();
    let after: Vec<(u64, Labels)> = (0..64)
        .map(|i| series(&[("__name__", "m"), ("i", &format!("a{i}"))]))
        .collect();
    index
        .add_series(TENANT, at(1, 0), at(1, 10), &before, "before")
        .await
        .unwrap();
    let written = counting.take_written();
    assert!(written.iter().all(|w| w.table == "idx_v1"));
    let shards = postings_shards(&written);
    assert_eq!(shards, BTreeSet::from([0, 1]));

    index
        .add_series(TENANT, at(2, 0), at(2, 10), &after, "after")
        .await
        .unwrap();
    let written = counting.take_written();
    assert!(written.iter().all(|w| w.table == "idx_v2"));
    assert_eq!(postings_shards(&written), (0..8).collect());

    // A write spanning the boundary lands in both.
    let spanning = series(&[("__name__", "m"), ("i", "span")]);
    index
        .add_series(
            TENANT,
            at(1, 5),
            at(2, 5),
            std::slice::from_ref(&spanning),
            "span",
        )
        .await
        .unwrap();
    let tables: BTreeSet<String> = counting
        .take_written()
        .into_iter()
        .map(|w| w.table)
        .collect();
    assert_eq!(tables, BTreeSet::from(["idx_v1".into(), "idx_v2".into()]));

    let m = [eq("__name__", "m")];
    let mut expected: BTreeSet<u64> = before.iter().chain(&after).map(|(fp, _)| *fp).collect();
    expected.insert(spanning.0);
    assert_eq!(
        index.lookup(TENANT, at(1, 0), at(2, 0), &m).await.unwrap(),
        expected
    );
    let only_after = index.lookup(TENANT, at(2, 0), at(2, 0), &m).await.unwrap();
    assert_eq!(only_after.len(), 65);
    assert!(index
        .lookup(TENANT, at(2, 0), at(2, 0), &[eq("i", "b3")])
        .await
        .unwrap()
        .is_empty());
    // Days before the first period belong to the first period.
    index
        .add_series(TENANT, at(-400, 0), at(-400, 0), &before[..1], "ancient")
        .await
        .unwrap();
    assert!(counting.take_written().iter().all(|w| w.table == "idx_v1"));
    assert_eq!(
        index
            .lookup(TENANT, at(-400, 0), at(-400, 0), &m)
            .await
            .unwrap(),
        fps(&[&before[0]])
    );
}

/// The shard numbers of the postings hash keys written.
fn postings_shards(written: &[Written]) -> BTreeSet<u32> {
    written
        .iter()
        .filter_map(|w| {
            let fields: Vec<&str> = w.hash.split(':').collect();
            (fields.get(2) == Some(&"p")).then(|| fields[3].parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn label_names_and_values() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let long_value = "v".repeat(3000);
    let all = [
        series(&[("__name__", "up"), ("job", "api"), ("zone", "eu")]),
        series(&[("__name__", "up"), ("job", "db")]),
        series(&[
            ("__name__", "errors"),
            ("job", "api"),
            ("path", &long_value),
        ]),
    ];
    index
        .add_series(TENANT, at(0, 0), at(0, 0), &all, "b1")
        .await
        .unwrap();
    index
        .add_series(
            TENANT,
            at(2, 0),
            at(2, 0),
            &[series(&[
                ("__name__", "late"),
                ("job", "cron"),
                ("only_late", "1"),
            ])],
            "b2",
        )
        .await
        .unwrap();
    index
        .add_series(
            TENANT,
            at(0, 0),
            at(0, 0),
            &[series(&[("x", "nameless")])],
            "b3",
        )
        .await
        .unwrap();

    let names = index.label_names(TENANT, at(0, 0), at(1, 0)).await.unwrap();
    assert_eq!(names, ["__name__", "job", "path", "x", "zone"]);
    let names = index.label_names(TENANT, at(0, 0), at(2, 0)).await.unwrap();
    assert_eq!(names, ["__name__", "job", "only_late", "path", "x", "zone"]);
    assert_eq!(
        index
            .label_values(TENANT, at(0, 0), at(0, 0), "job")
            .await
            .unwrap(),
        ["api", "db"]
    );
    assert_eq!(
        index
            .label_values(TENANT, at(0, 0), at(3, 0), "job")
            .await
            .unwrap(),
        ["api", "cron", "db"]
    );
    // The nameless series' empty metric name is not a value.
    assert_eq!(
        index
            .label_values(TENANT, at(0, 0), at(0, 0), "__name__")
            .await
            .unwrap(),
        ["errors", "up"]
    );
    assert_eq!(
        index
            .label_values(TENANT, at(0, 0), at(0, 0), "path")
            .await
            .unwrap(),
        std::slice::from_ref(&long_value)
    );
    assert!(index
        .label_values(TENANT, at(0, 0), at(0, 0), "nope")
        .await
        .unwrap()
        .is_empty());
    assert!(index
        .label_names("other", at(0, 0), at(3, 0))
        .await
        .unwrap()
        .is_empty());

    // Long values are found by = and by regex.
    let found = index
        .lookup(TENANT, at(0, 0), at(0, 0), &[eq("path", &long_value)])
        .await
        .unwrap();
    assert_eq!(found, BTreeSet::from([all[2].0]));
    let other_long = format!("{}w", "v".repeat(2999));
    assert!(index
        .lookup(TENANT, at(0, 0), at(0, 0), &[eq("path", &other_long)])
        .await
        .unwrap()
        .is_empty());
    let found = index
        .lookup(
            TENANT,
            at(0, 0),
            at(0, 0),
            &[matcher(MatchOp::RegexMatch, "path", "v{3000}")],
        )
        .await
        .unwrap();
    assert_eq!(found, BTreeSet::from([all[2].0]));
}

#[tokio::test]
async fn values_with_separator_bytes_stay_apart() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let plain = series(&[("__name__", "m"), ("v", "a")]);
    let nul = series(&[("__name__", "m"), ("v", "a\0b")]);
    let one = series(&[("__name__", "m"), ("v", "a\u{1}")]);
    index
        .add_series(
            TENANT,
            at(0, 0),
            at(0, 0),
            &[plain.clone(), nul.clone(), one.clone()],
            "b\0x",
        )
        .await
        .unwrap();
    let look = |v: &str| {
        let m = [eq("v", v)];
        let index = &index;
        async move { index.lookup(TENANT, at(0, 0), at(0, 0), &m).await.unwrap() }
    };
    assert_eq!(look("a").await, fps(&[&plain]));
    assert_eq!(look("a\0b").await, fps(&[&nul]));
    assert_eq!(look("a\u{1}").await, fps(&[&one]));
    assert_eq!(
        index
            .label_values(TENANT, at(0, 0), at(0, 0), "v")
            .await
            .unwrap(),
        ["a", "a\0b", "a\u{1}"]
    );
}

#[tokio::test]
async fn batches_do_not_overwrite_each_other_and_rewrites_are_harmless() {
    let counting = CountingStore::new(memory());
    let index = index_on(counting.clone(), SchemaConfig::default()).await;
    let one = series(&[("__name__", "m"), ("job", "api"), ("i", "1")]);
    let two = series(&[("__name__", "m"), ("job", "api"), ("i", "2")]);
    let first = index
        .add_series(
            TENANT,
            at(0, 0),
            at(0, 0),
            std::slice::from_ref(&one),
            "obj-a",
        )
        .await
        .unwrap();
    index
        .add_series(
            TENANT,
            at(0, 0),
            at(0, 0),
            std::slice::from_ref(&two),
            "obj-b",
        )
        .await
        .unwrap();
    let again = index
        .add_series(
            TENANT,
            at(0, 0),
            at(0, 0),
            std::slice::from_ref(&one),
            "obj-a",
        )
        .await
        .unwrap();
    assert_eq!(first, again, "the same batch writes the same items");
    let found = index
        .lookup(TENANT, at(0, 0), at(0, 0), &[eq("job", "api")])
        .await
        .unwrap();
    assert_eq!(found, fps(&[&one, &two]));
}

#[tokio::test]
async fn write_stats_are_what_dynamodb_would_bill() {
    let counting = CountingStore::new(memory());
    let index = index_on(counting.clone(), SchemaConfig::default()).await;
    let many: Vec<(u64, Labels)> = (0..5000)
        .map(|i| {
            series(&[
                ("__name__", "m"),
                ("pod", &format!("pod-{}", i % 7)),
                ("i", &i.to_string()),
            ])
        })
        .collect();
    let stats = index
        .add_series(TENANT, at(0, 0), at(1, 0), &many, "obj")
        .await
        .unwrap();
    let written = counting.take_written();
    let expected = WriteStats {
        items: written.len() as u64,
        bytes: written.iter().map(|w| w.size as u64).sum(),
        write_units: written.iter().map(|w| (w.size as u64).div_ceil(1024)).sum(),
    };
    assert_eq!(stats, expected);
    // Two days: every item twice.
    assert_eq!(stats.items % 2, 0);
    assert!(
        stats.write_units > stats.items,
        "some parts span several KiB"
    );

    let object = ObjectEntry {
        key: "team-a/objects/1".into(),
        index_offset: 100,
        index_len: 10,
        min_time: at(0, 0),
        max_time: at(0, 10),
        series: many.iter().map(|(fp, _)| (*fp, 7)).collect(),
    };
    let stats = index.add_object(TENANT, &object).await.unwrap();
    let written = counting.take_written();
    assert_eq!(stats.items, written.len() as u64);
    assert_eq!(
        stats.write_units,
        written
            .iter()
            .map(|w| (w.size as u64).div_ceil(1024))
            .sum::<u64>()
    );
}

/// The acceptance test of the index layout: one metric with 200k series (Cortex's worst case
/// was a single row holding 300k+ series).
#[tokio::test]
async fn one_big_metric_spreads_over_many_small_items() {
    let counting = CountingStore::new(memory());
    let index = index_on(counting.clone(), SchemaConfig::default()).await;
    let big: Vec<(u64, Labels)> = (0..200_000)
        .map(|i| {
            series(&[
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("instance", &format!("10.0.{}.{}:9090", i % 50, i % 7)),
                ("id", &format!("{i:08}")),
            ])
        })
        .collect();
    let stats = index
        .add_series(
            TENANT,
            at(0, 1000),
            at(0, 2000),
            &big,
            "tenant/objects/0001",
        )
        .await
        .unwrap();
    let object = ObjectEntry {
        key: "tenant/objects/0001".into(),
        index_offset: 1 << 30,
        index_len: 1 << 20,
        min_time: at(0, 1000),
        max_time: at(0, 2000),
        series: big
            .iter()
            .map(|(fp, _)| (*fp, (*fp as u32) ^ 0xdead))
            .collect(),
    };
    let object_stats = index.add_object(TENANT, &object).await.unwrap();
    let written = counting.take_written();
    assert_eq!(
        stats.items + object_stats.items,
        written.len() as u64,
        "all items of a call go through RowStore::write"
    );

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
    // Spread over shards × label names (+ object and name rows).
    assert!(by_hash.len() >= 16 * 4, "{} hash keys", by_hash.len());

    // And it all reads back.
    let found = index
        .lookup(
            TENANT,
            at(0, 0),
            at(0, 0),
            &[eq("__name__", "http_requests_total")],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 200_000);
    let one = index
        .lookup(
            TENANT,
            at(0, 0),
            at(0, 0),
            &[eq("job", "api"), eq("id", "00123456")],
        )
        .await
        .unwrap();
    assert_eq!(one, BTreeSet::from([big[123_456].0]));
    let objects = index
        .objects(TENANT, at(0, 0), at(0, 5000), Some(&one))
        .await
        .unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(
        objects[0].series,
        [(big[123_456].0, (big[123_456].0 as u32) ^ 0xdead)]
    );
    let all = index
        .objects(TENANT, at(0, 0), at(0, 5000), None)
        .await
        .unwrap();
    assert_eq!(all[0].series.len(), 200_000);
}

#[tokio::test]
async fn objects_filter_by_time_and_fingerprints() {
    let counting = CountingStore::new(memory());
    let index = index_on(
        counting.clone(),
        schema(vec![period("2024-01-01", "idx", 4)]),
    )
    .await;
    let fp: Vec<u64> = (0..20u64).map(|i| i * 0x1234_5678_9abc + 1).collect();
    let object = |key: &str, min: i64, max: i64, series: &[usize]| ObjectEntry {
        key: key.to_string(),
        index_offset: 1000 + min as u64 % 1000,
        index_len: 42,
        min_time: min,
        max_time: max,
        series: series.iter().map(|&i| (fp[i], i as u32 * 3)).collect(),
    };
    let early = object("t/o/early", at(0, 0), at(0, 3_600_000), &[0, 1, 2, 3]);
    let late = object("t/o/late", at(0, 7_200_000), at(1, 600_000), &[2, 3, 4, 5]);
    let next = object("t/o/next", at(1, 700_000), at(1, 800_000), &[6, 0]);
    for o in [&early, &late, &next] {
        index.add_object(TENANT, o).await.unwrap();
    }
    let keys = |entries: &[ObjectEntry]| -> Vec<String> {
        entries.iter().map(|e| e.key.clone()).collect()
    };

    let all = index
        .objects(TENANT, at(0, 0), at(1, 0), None)
        .await
        .unwrap();
    assert_eq!(keys(&all), ["t/o/early", "t/o/late"]);
    assert_eq!(all[0], early, "all series, header intact");
    assert_eq!(all[1], late);
    let all = index
        .objects(TENANT, at(0, 0), at(2, 0), None)
        .await
        .unwrap();
    assert_eq!(keys(&all), ["t/o/early", "t/o/late", "t/o/next"]);
    let mut next_sorted = next.clone();
    next_sorted.series.sort();
    assert_eq!(
        all[2], next_sorted,
        "series come back sorted by fingerprint"
    );

    // Only the day bucket matters for the rows, the object's own range for the answer.
    let mid = index
        .objects(TENANT, at(0, 3_700_000), at(0, 7_100_000), None)
        .await
        .unwrap();
    assert!(mid.is_empty(), "{mid:?}");
    let edge = index
        .objects(TENANT, at(0, 3_600_000), at(0, 3_600_000), None)
        .await
        .unwrap();
    assert_eq!(keys(&edge), ["t/o/early"]);

    // Fingerprint filters keep only the wanted series and drop objects without any.
    let wanted = BTreeSet::from([fp[3], fp[5], fp[19]]);
    let some = index
        .objects(TENANT, at(0, 0), at(1, DAY_MS_MINUS_1), Some(&wanted))
        .await
        .unwrap();
    assert_eq!(keys(&some), ["t/o/early", "t/o/late"]);
    assert_eq!(some[0].series, [(fp[3], 9)]);
    assert_eq!(some[1].series, [(fp[3], 9), (fp[5], 15)]);
    assert!(index
        .objects(TENANT, at(0, 0), at(1, 0), Some(&BTreeSet::new()))
        .await
        .unwrap()
        .is_empty());
    // Only the shards of the wanted series are read.
    counting.queries.lock().clear();
    index
        .objects(TENANT, at(0, 0), at(0, 0), Some(&BTreeSet::from([fp[0]])))
        .await
        .unwrap();
    assert_eq!(counting.queries.lock().len(), 1);
    assert!(index
        .objects("someone-else", at(0, 0), at(2, 0), None)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn bad_requests_are_errors() {
    let index = index_on(memory(), SchemaConfig::default()).await;
    let s = [series(&[("__name__", "m")])];
    let invalid = |r: Result<WriteStats, IndexError>| match r {
        Err(IndexError::InvalidRequest(message)) => message,
        other => panic!("expected an invalid request, got {other:?}"),
    };
    assert!(invalid(index.add_series("", 0, 0, &s, "b").await).contains("tenant"));
    assert!(invalid(index.add_series(TENANT, 10, 0, &s, "b").await).contains("from <= to"));
    assert!(invalid(
        index
            .add_series(TENANT, 0, 400 * strata_index::DAY_MS, &s, "b")
            .await
    )
    .contains("days"));
    assert!(invalid(index.add_series(TENANT, 0, 0, &s, "").await).contains("batch"));
    assert!(invalid(index.add_series(TENANT, 0, 0, &s, &"b".repeat(300)).await).contains("batch"));
    let huge = [series(&[("__name__", "m"), ("v", &"x".repeat(20_000))])];
    assert!(invalid(index.add_series(TENANT, 0, 0, &huge, "b").await).contains("value of label v"));
    let long_name = [series(&[("__name__", "m"), (&"n".repeat(2000), "x")])];
    assert!(invalid(index.add_series(TENANT, 0, 0, &long_name, "b").await).contains("label name"));
    let object = ObjectEntry {
        key: String::new(),
        index_offset: 0,
        index_len: 0,
        min_time: 0,
        max_time: 0,
        series: vec![(1, 1)],
    };
    assert!(invalid(index.add_object(TENANT, &object).await).contains("object key"));
    // Nothing is written for an empty batch of series.
    assert_eq!(
        index.add_series(TENANT, 0, 0, &[], "b").await.unwrap(),
        WriteStats::default()
    );
}

#[tokio::test]
async fn missing_tables_are_reported() {
    let index = Index::new(memory(), SchemaConfig::default(), IndexMetrics::new()).unwrap();
    let err = index
        .lookup(TENANT, 0, 0, &[eq("a", "b")])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ensure_tables"), "{err}");
}

/// Garbage under the index's hash keys: every call answers, with an error where it reads
/// garbage, and never panics.
#[tokio::test]
async fn garbage_in_stored_items_is_an_error_not_a_panic() {
    let store = memory();
    let index = index_on(
        store.clone(),
        schema(vec![period("2024-01-01", "strata_index", 1)]),
    )
    .await;
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
    // A well-formed key with a garbage value.
    put(
        format!("{TENANT}:{day}:p:0:job"),
        b"api\0b\0\0\0\0\0",
        &[1, 0, 200, 200, 200],
    )
    .await;
    let err = index
        .lookup(TENANT, at(0, 0), at(0, 0), &[eq("job", "api")])
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("corrupt index item"), "{err}");
    // A garbage range key (bad escape) is found by scans.
    put(
        format!("{TENANT}:{day}:p:0:env"),
        b"\x01\x09\0b\0\0\0\0\0",
        &[1, 0, 0],
    )
    .await;
    let err = index
        .lookup(
            TENANT,
            at(0, 0),
            at(0, 0),
            &[matcher(MatchOp::RegexMatch, "env", ".+")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
    assert!(index
        .label_values(TENANT, at(0, 0), at(0, 0), "env")
        .await
        .is_err());
    // Label names that are not UTF-8.
    put(format!("{TENANT}:{day}:n"), &[0xff, 0xfe], b"").await;
    assert!(index.label_names(TENANT, at(0, 0), at(0, 0)).await.is_err());
    // Object items with garbage.
    put(format!("{TENANT}:{day}:o:0"), b"key\0\0\0\0\0", &[1, 5]).await;
    assert!(index
        .objects(TENANT, at(0, 0), at(0, 0), None)
        .await
        .is_err());
    put(format!("{TENANT}:{}:o:0", day + 1), b"no part number", &[]).await;
    assert!(index
        .objects(TENANT, at(1, 0), at(1, 0), None)
        .await
        .is_err());
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
            let hash = match kind {
                0 => format!("{TENANT}:{BASE_DAY}:p:0:__name__"),
                1 => format!("{TENANT}:{BASE_DAY}:o:0"),
                _ => format!("{TENANT}:{BASE_DAY}:n"),
            };
            store.write("t_idx", vec![IndexItem { hash, range, value }]).await.unwrap();
            let (from, to) = (at(0, 0), at(0, 0));
            let _ = index.lookup(TENANT, from, to, &[matcher(MatchOp::RegexMatch, "__name__", ".*")]).await;
            let _ = index.lookup(TENANT, from, to, &[]).await;
            let _ = index.objects(TENANT, from, to, None).await;
            let _ = index.label_names(TENANT, from, to).await;
            let _ = index.label_values(TENANT, from, to, "__name__").await;
        });
    }
}

// ---- brute force against random series ------------------------------------------------------

#[derive(Clone, Debug)]
struct RandomSeries {
    labels: Labels,
    start_day: i64,
    days: i64,
}

fn random_series() -> impl Strategy<Value = RandomSeries> {
    let value = |choices: &'static [&'static str]| prop::option::of(prop::sample::select(choices));
    (
        value(&["m1", "m2", "m3"]),
        value(&["x", "y", "z", "xy"]),
        value(&["x", "y", "a\0b"]),
        value(&["x", "m1", "ü"]),
        0i64..5,
        0i64..2,
    )
        .prop_map(|(name, a, b, c, start_day, days)| {
            let mut pairs = Vec::new();
            for (n, v) in [("__name__", name), ("a", a), ("b", b), ("c", c)] {
                if let Some(v) = v {
                    pairs.push((n, v));
                }
            }
            if pairs.is_empty() {
                pairs.push(("c", "x"));
            }
            RandomSeries {
                labels: Labels::from_pairs(pairs),
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
        prop::sample::select(&["__name__", "a", "b", "c", "d"][..]),
        prop::sample::select(
            &[
                "", "x", "y", "xy", "m1", "a\0b", "x|y", "x|", "m1|m3", ".*", ".+", "x.*", "m.",
                "(x|xy)", "[xy]+", "ü|z",
            ][..],
        ),
    )
        .prop_map(|(op, name, value)| matcher(op, name, value))
}

fn brute_force(
    all: &[RandomSeries],
    from_day: i64,
    to_day: i64,
    matchers: &[Matcher],
) -> BTreeSet<u64> {
    all.iter()
        .filter(|s| s.start_day <= to_day && s.start_day + s.days >= from_day)
        .filter(|s| {
            matchers
                .iter()
                .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
        })
        .map(|s| s.labels.fingerprint())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Every matcher type, metric-less selectors, several days and a schema change in the
    /// middle, on the embedded store, against a brute-force evaluation.
    #[test]
    fn lookups_agree_with_brute_force(
        all in proptest::collection::vec(random_series(), 1..40),
        queries in proptest::collection::vec(
            (proptest::collection::vec(random_matcher(), 0..4), 0i64..7, 0i64..3),
            12,
        ),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn RowStore> = Arc::new(EmbeddedRowStore::open(dir.path()).unwrap());
            // Days 0-2 in one table with 3 shards, from day 3 on another with 5.
            let index = index_on(
                store,
                schema(vec![period("2024-01-01", "idx_a", 3), period("2024-03-04", "idx_b", 5)]),
            )
            .await;
            let mut batches: BTreeMap<(i64, i64), Vec<(u64, Labels)>> = BTreeMap::new();
            for s in &all {
                batches
                    .entry((s.start_day, s.days))
                    .or_default()
                    .push((s.labels.fingerprint(), s.labels.clone()));
            }
            for ((start, days), series) in &batches {
                index
                    .add_series(
                        TENANT,
                        at(*start, 1234),
                        at(start + days, 5678),
                        series,
                        &format!("batch-{start}-{days}"),
                    )
                    .await
                    .unwrap();
            }
            for (matchers, from_day, len) in &queries {
                let got = index
                    .lookup(TENANT, at(*from_day, 0), at(from_day + len, 999), matchers)
                    .await
                    .unwrap();
                let want = brute_force(&all, *from_day, from_day + len, matchers);
                let shown: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
                assert_eq!(got, want, "matchers {shown:?} days {from_day}+{len}");
            }
            // Label names and values agree with the series too.
            let names = index.label_names(TENANT, at(0, 0), at(9, 0)).await.unwrap();
            let mut want_names: BTreeSet<String> =
                all.iter().flat_map(|s| s.labels.iter().map(|l| l.name.clone())).collect();
            want_names.insert("__name__".to_string());
            assert_eq!(names, want_names.into_iter().collect::<Vec<_>>());
            let values = index.label_values(TENANT, at(0, 0), at(9, 0), "a").await.unwrap();
            let want_values: BTreeSet<String> = all
                .iter()
                .filter_map(|s| s.labels.get("a").map(str::to_string))
                .collect();
            assert_eq!(values, want_values.into_iter().collect::<Vec<_>>());
        });
    }
}
