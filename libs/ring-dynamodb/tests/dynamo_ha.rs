//! `DynamoHaStore` (the distributors' HA tracker records) against a real
//! dynalite server, in the table the ring uses.

mod support;

use strata_aws::AwsConfig;
use strata_ring::{now_ms, InstanceDesc, InstanceState, RingStore};
use strata_ring_dynamodb::{
    DynamoHaStore, DynamoHaStoreConfig, DynamoRingStore, DynamoRingStoreConfig, HaRecord, HaWrite,
};
use support::Dynalite;

const TABLE: &str = "strata_ring";

async fn store(dynalite: &Dynalite) -> DynamoHaStore {
    let config = DynamoHaStoreConfig {
        aws: AwsConfig {
            endpoint_url: Some(dynalite.endpoint.clone()),
            ..AwsConfig::default()
        },
        ..DynamoHaStoreConfig::new(TABLE)
    };
    let store = DynamoHaStore::connect(&config).await;
    store.ensure_table().await.expect("ensure table");
    store
}

fn record(replica: &str, received_at_ms: i64) -> HaRecord {
    HaRecord {
        replica: replica.to_string(),
        received_at_ms,
    }
}

#[tokio::test]
async fn create_read_and_compare_and_swap() {
    let dynalite = Dynalite::start();
    let store = store(&dynalite).await;
    assert_eq!(store.get("t", "pair").await.unwrap(), None);

    // The first write creates; a second creation loses.
    let t0 = now_ms();
    let HaWrite::Written { version: v1 } = store
        .compare_and_swap("t", "pair", None, &record("r1", t0))
        .await
        .unwrap()
    else {
        panic!("creation refused");
    };
    assert_eq!(
        store
            .compare_and_swap("t", "pair", None, &record("r2", t0))
            .await
            .unwrap(),
        HaWrite::Conflict
    );
    assert_eq!(
        store.get("t", "pair").await.unwrap(),
        Some((record("r1", t0), v1))
    );

    // An update at the version read succeeds once; a stale one loses.
    let t1 = t0 + 15_000;
    assert_eq!(
        store
            .compare_and_swap("t", "pair", Some(v1), &record("r1", t1))
            .await
            .unwrap(),
        HaWrite::Written { version: v1 + 1 }
    );
    assert_eq!(
        store
            .compare_and_swap("t", "pair", Some(v1), &record("r2", t1))
            .await
            .unwrap(),
        HaWrite::Conflict
    );
    assert_eq!(
        store.get("t", "pair").await.unwrap(),
        Some((record("r1", t1), v1 + 1))
    );

    // Tenants and clusters are apart; long cluster values work.
    assert_eq!(store.get("u", "pair").await.unwrap(), None);
    assert_eq!(store.get("t", "other").await.unwrap(), None);
    let long = "c".repeat(2048);
    assert!(matches!(
        store
            .compare_and_swap("t", &long, None, &record("r2", t0))
            .await
            .unwrap(),
        HaWrite::Written { .. }
    ));
    assert_eq!(
        store.get("t", &long).await.unwrap().unwrap().0.replica,
        "r2"
    );
    assert_eq!(store.get("t", &"c".repeat(2047)).await.unwrap(), None);
}

#[tokio::test]
async fn concurrent_elections_have_one_winner() {
    let dynalite = Dynalite::start();
    let store = store(&dynalite).await;
    // Eight distributors try to elect their replica at once.
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .compare_and_swap("t", "pair", None, &record(&format!("r{i}"), now_ms()))
                .await
                .unwrap()
        })
    });
    let outcomes = futures_join(attempts).await;
    let won: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, HaWrite::Written { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    let (stored, version) = store.get("t", "pair").await.unwrap().unwrap();
    assert_eq!(stored.replica, format!("r{}", won[0]));
    // And eight updates from the same version: one wins.
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .compare_and_swap(
                    "t",
                    "pair",
                    Some(version),
                    &record(&format!("s{i}"), now_ms()),
                )
                .await
                .unwrap()
        })
    });
    let outcomes = futures_join(attempts).await;
    let won = outcomes
        .iter()
        .filter(|o| {
            **o == HaWrite::Written {
                version: version + 1,
            }
        })
        .count();
    assert_eq!(won, 1, "{outcomes:?}");
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn records_share_the_ring_table_without_disturbing_the_ring() {
    let dynalite = Dynalite::start();
    let ha = store(&dynalite).await;
    let ring = DynamoRingStore::connect(&DynamoRingStoreConfig {
        aws: AwsConfig {
            endpoint_url: Some(dynalite.endpoint.clone()),
            ..AwsConfig::default()
        },
        ..DynamoRingStoreConfig::new(TABLE, "ingester")
    })
    .await;
    let now = now_ms();
    ring.put(
        &InstanceDesc {
            id: "ingester-0".to_string(),
            addr: "a:9095".to_string(),
            http_addr: "a:9009".to_string(),
            zone: String::new(),
            state: InstanceState::Active,
            tokens: vec![1, 2, 3],
            heartbeat_ms: now,
            registered_ms: now,
        },
        None,
    )
    .await
    .unwrap();
    // A tenant named like the ring cannot collide with it.
    for tenant in ["ingester", "t"] {
        ha.compare_and_swap(tenant, "ingester-0", None, &record("r1", now))
            .await
            .unwrap();
    }
    let members = ring.list().await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].value.tokens, [1, 2, 3]);
    assert_eq!(
        ha.get("ingester", "ingester-0").await.unwrap().unwrap().0,
        record("r1", now)
    );
}
