//! `DynamoRingStore` against a real dynalite server.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use strata_aws::{dynamodb_client, AwsConfig};
use strata_ring::{
    now_ms, InstanceDesc, InstanceState, Lifecycler, LifecyclerConfig, Operation, Ring, RingConfig,
    RingError, RingStore,
};
use strata_ring_dynamodb::{DynamoRingStore, DynamoRingStoreConfig};
use support::Dynalite;

const TABLE: &str = "strata_ring";

fn store_config(dynalite: &Dynalite, ring: &str) -> DynamoRingStoreConfig {
    DynamoRingStoreConfig {
        aws: AwsConfig {
            endpoint_url: Some(dynalite.endpoint.clone()),
            ..AwsConfig::default()
        },
        ..DynamoRingStoreConfig::new(TABLE, ring)
    }
}

async fn store(dynalite: &Dynalite, ring: &str) -> DynamoRingStore {
    let store = DynamoRingStore::connect(&store_config(dynalite, ring)).await;
    store.ensure_table().await.expect("ensure table");
    store
}

fn desc(id: &str, heartbeat_ms: i64) -> InstanceDesc {
    InstanceDesc {
        id: id.to_string(),
        addr: format!("{id}:9095"),
        http_addr: format!("{id}:9009"),
        zone: "zone-a".to_string(),
        state: InstanceState::Active,
        tokens: (0..128u32)
            .map(|i| i * 33_554_432 + id.len() as u32)
            .collect(),
        heartbeat_ms,
        registered_ms: heartbeat_ms,
    }
}

#[tokio::test]
async fn put_list_conflict_delete() {
    let dynalite = Dynalite::start();
    let store = store(&dynalite, "ingester").await;
    store
        .ensure_table()
        .await
        .expect("ensure_table is idempotent");
    assert!(store.list().await.unwrap().is_empty());

    let mut d = desc("ing-1", now_ms());
    let v1 = store.put(&d, None).await.unwrap();
    assert!(
        matches!(store.put(&d, None).await, Err(RingError::Conflict { .. })),
        "create twice"
    );

    d.state = InstanceState::Leaving;
    let v2 = store.put(&d, Some(v1)).await.unwrap();
    assert_ne!(v1, v2);
    assert!(
        store.put(&d, Some(v1)).await.unwrap_err().is_conflict(),
        "stale version"
    );
    assert!(
        store
            .put(&desc("ing-9", 0), Some(v1))
            .await
            .unwrap_err()
            .is_conflict(),
        "absent item"
    );

    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].value, d);
    assert_eq!(listed[0].version, v2);

    assert!(store
        .delete("ing-1", Some(v1))
        .await
        .unwrap_err()
        .is_conflict());
    assert_eq!(
        store.list().await.unwrap().len(),
        1,
        "failed delete removes nothing"
    );
    store.delete("ing-1", Some(v2)).await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert!(store
        .delete("ing-1", Some(v2))
        .await
        .unwrap_err()
        .is_conflict());
    store.delete("ing-1", None).await.unwrap();

    // Re-created items do not reuse the old versions.
    let v3 = store.put(&d, None).await.unwrap();
    assert!(v3 != v1 && v3 != v2);
}

#[tokio::test]
async fn rings_share_a_table_but_not_members() {
    let dynalite = Dynalite::start();
    let ingesters = store(&dynalite, "ingester").await;
    let rulers = store(&dynalite, "ruler").await;
    ingesters.put(&desc("a", 1), None).await.unwrap();
    ingesters.put(&desc("b", 1), None).await.unwrap();
    rulers.put(&desc("a", 1), None).await.unwrap();
    assert_eq!(ingesters.list().await.unwrap().len(), 2);
    assert_eq!(rulers.list().await.unwrap().len(), 1);
    rulers.delete("a", None).await.unwrap();
    assert_eq!(ingesters.list().await.unwrap().len(), 2);
}

#[tokio::test]
async fn list_follows_pagination() {
    let dynalite = Dynalite::start();
    let store = store(&dynalite, "ingester").await.with_page_limit(2);
    for i in 0..5 {
        store
            .put(&desc(&format!("ing-{i}"), 1), None)
            .await
            .unwrap();
    }
    let mut ids: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.value.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["ing-0", "ing-1", "ing-2", "ing-3", "ing-4"]);
}

#[tokio::test]
async fn concurrent_conditional_writes_have_one_winner() {
    let dynalite = Dynalite::start();
    let store = Arc::new(store(&dynalite, "ingester").await);
    let version = store.put(&desc("ing-1", 1), None).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store.put(&desc("ing-1", writer), Some(version)).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(err) => assert!(err.is_conflict(), "{err}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn malformed_items_are_skipped() {
    let dynalite = Dynalite::start();
    let config = store_config(&dynalite, "ingester");
    let store = store(&dynalite, "ingester").await;
    store.put(&desc("good", 1), None).await.unwrap();

    let client = dynamodb_client(&config.aws).await;
    let item = HashMap::from([
        (
            "ring".to_string(),
            AttributeValue::S("ingester".to_string()),
        ),
        ("instance".to_string(), AttributeValue::S("bad".to_string())),
        (
            "desc".to_string(),
            AttributeValue::S("{not json".to_string()),
        ),
        ("version".to_string(), AttributeValue::N("1".to_string())),
    ]);
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();

    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].value.id, "good");
}

#[tokio::test]
async fn store_errors_are_reported() {
    let dynalite = Dynalite::start();
    // No ensure_table: the table does not exist.
    let store = DynamoRingStore::connect(&store_config(&dynalite, "ingester")).await;
    let err = store.list().await.unwrap_err();
    assert!(matches!(err, RingError::Store(_)), "{err}");
    assert!(err.to_string().contains("ResourceNotFound"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecyclers_and_ring_on_dynamodb() {
    let dynalite = Dynalite::start();
    let store: Arc<dyn RingStore> = Arc::new(store(&dynalite, "ingester").await);

    // A member that died long ago, to be forgotten automatically.
    store
        .put(&desc("dead", now_ms() - 30 * 60_000), None)
        .await
        .unwrap();

    let mut lifecyclers = Vec::new();
    for i in 0..3 {
        let config = LifecyclerConfig {
            num_tokens: 128,
            heartbeat_period: Duration::from_millis(200),
            zone: format!("zone-{i}"),
            ..LifecyclerConfig::new(
                format!("ing-{i}"),
                format!("10.0.0.{i}:9095"),
                format!("10.0.0.{i}:9009"),
            )
        };
        lifecyclers.push(Lifecycler::start(config, Arc::clone(&store)).await.unwrap());
    }
    assert!(lifecyclers.iter().all(|l| l.is_ready()));

    let ring = Ring::new(
        RingConfig {
            zone_awareness: true,
            poll_interval: Duration::from_millis(100),
            ..RingConfig::default()
        },
        Arc::clone(&store),
    )
    .unwrap();
    ring.refresh().await.unwrap();
    let snap = ring.snapshot();
    assert_eq!(
        snap.instances_count(),
        3,
        "dead member forgotten: {:?}",
        snap.members()
    );
    assert!(snap
        .members()
        .iter()
        .all(|m| m.desc.state == InstanceState::Active));
    assert_eq!(snap.tokens_count(), 3 * 128);
    let total: f64 = snap.members().iter().map(|m| m.ownership).sum();
    assert!((total - 1.0).abs() < 1e-9);

    for metric in ["up", "http_requests_total", "process_cpu_seconds_total"] {
        let set = ring
            .get(strata_ring::shard_key("tenant-1", metric), Operation::Write)
            .unwrap();
        assert_eq!(set.instances.len(), 3);
        assert_eq!(set.max_errors, 1);
    }
    let all = ring.get_all_healthy(Operation::Read).unwrap();
    assert_eq!(all.instances.len(), 3);
    assert_eq!(all.max_unavailable_zones, 1);

    // Heartbeats advance in the store.
    let before: i64 = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|m| m.value.heartbeat_ms)
        .min()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after: i64 = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|m| m.value.heartbeat_ms)
        .min()
        .unwrap();
    assert!(
        after > before,
        "heartbeats should advance ({before} -> {after})"
    );

    // One member leaves; the background poll notices.
    let leaving = lifecyclers.pop().unwrap();
    leaving.shutdown().await.unwrap();
    for _ in 0..100 {
        if ring.instances_count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ring.instances_count(), 2);
    let set = ring
        .get(strata_ring::shard_key("tenant-1", "up"), Operation::Write)
        .unwrap();
    assert_eq!(set.instances.len(), 2);
    assert_eq!(set.max_errors, 0);

    for lifecycler in lifecyclers {
        lifecycler.shutdown().await.unwrap();
    }
    assert!(store.list().await.unwrap().is_empty());
}

/// Heartbeats do not carry tokens: a reader fetches a member's tokens once,
/// then again only when they change; items written with their tokens in
/// `desc` (older versions) still read.
#[tokio::test]
async fn tokens_are_read_only_when_they_change() {
    let dynalite = Dynalite::start();
    let config = store_config(&dynalite, "ingester");
    let writer = store(&dynalite, "ingester").await;
    let reader = store(&dynalite, "ingester").await;
    let client = dynamodb_client(&config.aws).await;

    let mut d = desc("ing-1", 1);
    let v1 = writer.put(&d, None).await.unwrap();
    let listed = reader.list().await.unwrap();
    assert_eq!(listed[0].value, d);

    // The heartbeat item alone is small: no tokens in it.
    let item = client
        .get_item()
        .table_name(TABLE)
        .key("ring", AttributeValue::S("ingester".to_string()))
        .key("instance", AttributeValue::S("ing-1".to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let json = item.item().unwrap()["desc"].as_s().unwrap().clone();
    assert!(json.contains("\"tokens\":[]"), "{json}");
    assert!(json.len() < 300, "{} bytes: {json}", json.len());

    // Remove the tokens item behind the stores' backs: a heartbeat with the
    // same tokens is still read whole (from the reader's cache), which shows
    // the tokens are not read again.
    let delete_tokens_item = || async {
        let key = HashMap::from([
            (
                "ring".to_string(),
                AttributeValue::S("ingester#tokens".to_string()),
            ),
            (
                "instance".to_string(),
                AttributeValue::S("ing-1".to_string()),
            ),
        ]);
        client
            .delete_item()
            .table_name(TABLE)
            .set_key(Some(key))
            .send()
            .await
            .unwrap();
    };
    delete_tokens_item().await;
    d.heartbeat_ms = 2;
    let v2 = writer.put(&d, Some(v1)).await.unwrap();
    let listed = reader.list().await.unwrap();
    assert_eq!(
        (listed[0].value.clone(), listed[0].version),
        (d.clone(), v2)
    );

    // New tokens are written and read.
    d.tokens = vec![7, 8, 9];
    d.heartbeat_ms = 3;
    writer.put(&d, Some(v2)).await.unwrap();
    assert_eq!(reader.list().await.unwrap()[0].value.tokens, [7, 8, 9]);
    // A fresh reader, without a cache, reads them too.
    let fresh = store(&dynalite, "ingester").await;
    assert_eq!(fresh.list().await.unwrap()[0].value, d);

    // A member whose heartbeat names tokens that are not stored (a writer
    // between its two writes) is left out until they are.
    delete_tokens_item().await;
    let another = store(&dynalite, "ingester").await;
    assert!(another.list().await.unwrap().is_empty());

    // An item of the old layout: tokens inside `desc`, no hash.
    let old = desc("old-1", 5);
    client
        .put_item()
        .table_name(TABLE)
        .item("ring", AttributeValue::S("ingester".to_string()))
        .item("instance", AttributeValue::S("old-1".to_string()))
        .item(
            "desc",
            AttributeValue::S(serde_json::to_string(&old).unwrap()),
        )
        .item("version", AttributeValue::N("1".to_string()))
        .send()
        .await
        .unwrap();
    let listed = another.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].value, old);

    // Deleting a member removes both items.
    writer.delete("ing-1", None).await.unwrap();
    let scan = client.scan().table_name(TABLE).send().await.unwrap();
    let left: Vec<String> = scan
        .items()
        .iter()
        .map(|i| i["instance"].as_s().unwrap().clone())
        .collect();
    assert_eq!(left, ["old-1"]);
}
