//! `DynamoRowStore` and the index on it, against a real dynalite server.

mod common;
mod support;

use std::sync::Arc;

use common::*;
use strata_aws::AwsConfig;
use strata_index::{DynamoRowStore, EmbeddedRowStore, IndexError, IndexItem, RowStore, WriteStats};
use strata_model::{Labels, MatchOp};
use support::Dynalite;

async fn store(dynalite: &Dynalite) -> DynamoRowStore {
    DynamoRowStore::connect(&AwsConfig {
        endpoint_url: Some(dynalite.endpoint.clone()),
        ..AwsConfig::default()
    })
    .await
}

fn item(hash: &str, range: Vec<u8>, value: Vec<u8>) -> IndexItem {
    IndexItem {
        hash: hash.to_string(),
        range,
        value,
    }
}

#[tokio::test]
async fn tables_writes_and_prefix_queries() {
    let Some(dynalite) = Dynalite::start("tables_writes_and_prefix_queries") else {
        return;
    };
    let store = store(&dynalite).await;
    assert_eq!(store.kind(), "dynamodb");
    assert!(matches!(
        store.query("idx", "h", b"").await,
        Err(IndexError::TableMissing { .. })
    ));
    assert!(matches!(
        store.write("idx", vec![item("h", vec![1], vec![1])]).await,
        Err(IndexError::TableMissing { .. })
    ));
    store.ensure_table("idx").await.unwrap();
    store.ensure_table("idx").await.unwrap();

    // 60 items: three BatchWriteItem calls; a duplicate key (last put wins) and empty values.
    let mut items: Vec<IndexItem> = (0..60u32)
        .map(|i| {
            item(
                if i % 2 == 0 { "even" } else { "odd" },
                format!("k{:03}\0x", 59 - i).into_bytes(),
                if i % 10 == 0 {
                    Vec::new()
                } else {
                    vec![i as u8; 100]
                },
            )
        })
        .collect();
    items.push(item("even", b"k059\0x".to_vec(), b"last".to_vec()));
    let stats = store.write("idx", items.clone()).await.unwrap();
    assert_eq!(stats.items, 60, "the duplicate counts once");

    let even = store.query("idx", "even", b"").await.unwrap();
    assert_eq!(even.len(), 30);
    assert!(
        even.windows(2).all(|w| w[0].range < w[1].range),
        "sorted by range"
    );
    assert_eq!(even.last().unwrap().value, b"last");
    assert!(
        even.iter().any(|i| i.value.is_empty()),
        "empty values read back empty"
    );
    let k05 = store.query("idx", "odd", b"k05").await.unwrap();
    let ranges: Vec<String> = k05
        .iter()
        .map(|i| String::from_utf8(i.range.clone()).unwrap())
        .collect();
    assert_eq!(
        ranges,
        ["k050\0x", "k052\0x", "k054\0x", "k056\0x", "k058\0x"]
    );
    assert!(store.query("idx", "none", b"").await.unwrap().is_empty());
    // Binary prefixes with bytes above 0x7f.
    store
        .write("idx", vec![item("bin", vec![0xff, 0x00, 1], vec![9])])
        .await
        .unwrap();
    assert_eq!(store.query("idx", "bin", &[0xff]).await.unwrap().len(), 1);
    assert!(store.query("idx", "bin", &[0xfe]).await.unwrap().is_empty());
}

#[tokio::test]
async fn queries_follow_pages_over_one_megabyte() {
    let Some(dynalite) = Dynalite::start("queries_follow_pages_over_one_megabyte") else {
        return;
    };
    let store = store(&dynalite).await;
    store.ensure_table("idx").await.unwrap();
    // 48 items of 30 KB under one hash key: 1.4 MB, more than one 1 MB page.
    let items: Vec<IndexItem> = (0..48u32)
        .map(|i| {
            item(
                "big",
                i.to_be_bytes().to_vec(),
                vec![(i % 251) as u8; 30_000],
            )
        })
        .collect();
    let stats = store.write("idx", items.clone()).await.unwrap();
    assert_eq!(stats, WriteStats::of(&items));
    assert_eq!(stats.write_units, 48 * 30, "30 KB items cost 30 units each");
    let before = store.pages_read();
    let read = store.query("idx", "big", b"").await.unwrap();
    assert!(store.pages_read() - before >= 2, "more than one page");
    assert_eq!(read, items);
}

#[tokio::test]
async fn oversized_items_are_refused_before_writing() {
    let Some(dynalite) = Dynalite::start("oversized_items_are_refused_before_writing") else {
        return;
    };
    let store = store(&dynalite).await;
    store.ensure_table("idx").await.unwrap();
    let ok = item("h", vec![1], vec![0; 1000]);
    let too_big = item("h", vec![2], vec![0; 400 * 1024]);
    let err = store
        .write("idx", vec![ok.clone(), too_big])
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::ItemTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("limit of 409600 bytes"), "{err}");
    assert!(
        store.query("idx", "h", b"").await.unwrap().is_empty(),
        "nothing of the refused write was stored"
    );
    let long_key = item("h", vec![7; 1025], vec![]);
    assert!(matches!(
        store.write("idx", vec![long_key]).await,
        Err(IndexError::BadKey { .. })
    ));
    // Just under the limit is stored.
    let max = item("h", vec![3], vec![0; 400 * 1024 - 5]);
    store.write("idx", vec![max]).await.unwrap();
}

/// Malformed items written behind the index's back are errors.
#[tokio::test]
async fn foreign_items_are_reported_as_corrupt() {
    let Some(dynalite) = Dynalite::start("foreign_items_are_reported_as_corrupt") else {
        return;
    };
    let store = store(&dynalite).await;
    store.ensure_table("idx").await.unwrap();
    let client = strata_aws::dynamodb_client(&AwsConfig {
        endpoint_url: Some(dynalite.endpoint.clone()),
        ..AwsConfig::default()
    })
    .await;
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    client
        .put_item()
        .table_name("idx")
        .item("h", AttributeValue::S("h".into()))
        .item("r", AttributeValue::B(Blob::new(vec![1])))
        .item("v", AttributeValue::S("not binary".into()))
        .send()
        .await
        .unwrap();
    let err = store.query("idx", "h", b"").await.unwrap_err();
    assert!(matches!(err, IndexError::Corrupt { .. }), "{err}");
}

/// The same writes and reads through the index on DynamoDB and on the embedded store give
/// the same answers.
#[tokio::test]
async fn index_end_to_end_matches_the_embedded_store() {
    let Some(dynalite) = Dynalite::start("index_end_to_end_matches_the_embedded_store") else {
        return;
    };
    let schema = schema(vec![
        period("2024-01-01", "idx_v1", 4),
        period("2024-03-03", "idx_v2", 8),
    ]);
    let dynamo: Arc<dyn RowStore> = Arc::new(store(&dynalite).await);
    let dir = tempfile::tempdir().unwrap();
    let embedded: Arc<dyn RowStore> = Arc::new(EmbeddedRowStore::open(dir.path()).unwrap());
    let on_dynamo = index_on(dynamo, schema.clone()).await;
    let on_embedded = index_on(embedded, schema).await;

    let many: Vec<Labels> = (0..3000)
        .map(|i| {
            labels(&[
                (
                    "__name__",
                    if i % 3 == 0 {
                        "up"
                    } else {
                        "http_requests_total"
                    },
                ),
                ("job", ["api", "db", "web"][i % 3]),
                ("pod", &format!("pod-{}", i % 40)),
                ("i", &i.to_string()),
            ])
        })
        .collect();
    let nameless = [labels(&[("job", "api"), ("orphan", "1")])];
    for index in [&on_dynamo, &on_embedded] {
        let a = add(index, "team-a", "team-a/obj-1", at(1, 0), at(2, 10), &many)
            .await
            .unwrap();
        let b = add(
            index,
            "team-a",
            "team-a/obj-2",
            at(2, 0),
            at(2, 0),
            &nameless,
        )
        .await
        .unwrap();
        assert!(a.items > 4 && b.items > 0);
    }

    let selectors = vec![
        vec![eq("__name__", "up")],
        vec![eq("job", "api")],
        vec![
            matcher(MatchOp::RegexMatch, "job", "api|web"),
            eq("pod", "pod-7"),
        ],
        vec![matcher(MatchOp::RegexMatch, "pod", "pod-1.")],
        vec![eq("i", "2999")],
        vec![eq("i", "absent")],
        vec![eq("orphan", "1")],
        vec![eq("orphan", "")],
        vec![eq("__name__", "")],
    ];
    for (from, to) in [
        (at(1, 0), at(1, 0)),
        (at(2, 0), at(2, 0)),
        (at(0, 0), at(3, 0)),
    ] {
        for matchers in &selectors {
            let want = on_embedded
                .candidates("team-a", from, to, matchers)
                .await
                .unwrap();
            let got = on_dynamo
                .candidates("team-a", from, to, matchers)
                .await
                .unwrap();
            assert_eq!(got, want, "{matchers:?} {from}..{to}");
        }
        assert_eq!(
            on_dynamo.label_names("team-a", from, to).await.unwrap(),
            on_embedded.label_names("team-a", from, to).await.unwrap()
        );
        assert_eq!(
            on_dynamo
                .label_values("team-a", from, to, "pod")
                .await
                .unwrap(),
            on_embedded
                .label_values("team-a", from, to, "pod")
                .await
                .unwrap()
        );
    }
    let ups = on_dynamo
        .candidates("team-a", at(1, 0), at(2, 0), &[eq("__name__", "up")])
        .await
        .unwrap();
    assert_eq!(keys(&ups), ["team-a/obj-1"]);
    assert_eq!(ups[0].index_offset, 4096);
    assert_eq!(ups[0].series_count, 3000);
    let orphan = on_dynamo
        .candidates("team-a", at(0, 0), at(3, 0), &[eq("orphan", "1")])
        .await
        .unwrap();
    assert_eq!(keys(&orphan), ["team-a/obj-2"]);
    let jobs = on_dynamo
        .label_values("team-a", at(0, 0), at(3, 0), "job")
        .await
        .unwrap();
    assert_eq!(
        jobs.values.into_iter().collect::<Vec<_>>(),
        ["api", "db", "web"]
    );
    let ids = on_dynamo
        .label_values("team-a", at(0, 0), at(3, 0), "i")
        .await
        .unwrap();
    assert_eq!(
        keys(&ids.unresolved),
        ["team-a/obj-1"],
        "3000 ids are filtered"
    );
    assert!(on_dynamo
        .objects("team-a", at(3, 0), at(4, 0))
        .await
        .unwrap()
        .is_empty());
    assert!(on_dynamo
        .candidates("team-b", at(0, 0), at(3, 0), &[eq("job", "api")])
        .await
        .unwrap()
        .is_empty());
}
