//! Lifecycler and ring client against the in-memory store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_ring::{
    now_ms, InstanceDesc, InstanceState, Lifecycler, LifecyclerConfig, MemoryRingStore, Operation,
    Ring, RingConfig, RingError, RingStore, Versioned,
};

fn lifecycler_config(id: &str) -> LifecyclerConfig {
    LifecyclerConfig {
        num_tokens: 32,
        heartbeat_period: Duration::from_millis(50),
        ..LifecyclerConfig::new(id, format!("{id}:9095"), format!("{id}:9009"))
    }
}

fn ring_config() -> RingConfig {
    RingConfig {
        poll_interval: Duration::from_secs(3600), // tests refresh explicitly
        ..RingConfig::default()
    }
}

async fn stored(store: &dyn RingStore, id: &str) -> Option<Versioned<InstanceDesc>> {
    store
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|item| item.value.id == id)
}

/// Polls `check` every 20 ms for up to 5 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..250 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn desc(id: &str, heartbeat_ms: i64) -> InstanceDesc {
    InstanceDesc {
        id: id.to_string(),
        addr: format!("{id}:9095"),
        http_addr: format!("{id}:9009"),
        zone: String::new(),
        state: InstanceState::Active,
        tokens: vec![id.len() as u32 * 1000],
        heartbeat_ms,
        registered_ms: heartbeat_ms,
    }
}

#[tokio::test]
async fn memory_store_conditional_writes() {
    let store = MemoryRingStore::new();
    let d = desc("a", 1);
    let v1 = store.put(&d, None).await.unwrap();
    assert!(
        store.put(&d, None).await.unwrap_err().is_conflict(),
        "must not exist"
    );
    assert!(store
        .put(&d, Some(v1 + 100))
        .await
        .unwrap_err()
        .is_conflict());
    let v2 = store.put(&d, Some(v1)).await.unwrap();
    assert_ne!(v1, v2);
    assert!(
        store.put(&d, Some(v1)).await.unwrap_err().is_conflict(),
        "stale version"
    );
    assert!(store.delete("a", Some(v1)).await.unwrap_err().is_conflict());
    store.delete("a", Some(v2)).await.unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert!(
        store.delete("a", Some(v2)).await.unwrap_err().is_conflict(),
        "gone"
    );
    store.delete("a", None).await.unwrap();
    // A re-created item never reuses an old version.
    let v3 = store.put(&d, None).await.unwrap();
    assert!(v3 > v2);
    assert!(store.put(&d, Some(v1)).await.unwrap_err().is_conflict());
}

#[tokio::test]
async fn lifecycler_registers_and_heartbeats() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let lifecycler = Lifecycler::start(lifecycler_config("ing-1"), Arc::clone(&store))
        .await
        .unwrap();
    assert_eq!(lifecycler.state(), InstanceState::Active);
    assert!(lifecycler.is_ready());

    let first = stored(store.as_ref(), "ing-1").await.unwrap();
    assert_eq!(first.value.state, InstanceState::Active);
    assert_eq!(first.value.tokens.len(), 32);
    assert!(first.value.tokens.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(first.value.addr, "ing-1:9095");

    let first_heartbeat = first.value.heartbeat_ms;
    eventually("a newer heartbeat", || {
        let store = Arc::clone(&store);
        async move {
            stored(store.as_ref(), "ing-1")
                .await
                .unwrap()
                .value
                .heartbeat_ms
                > first_heartbeat
        }
    })
    .await;

    let ring = Ring::new(ring_config(), Arc::clone(&store)).unwrap();
    ring.refresh().await.unwrap();
    assert_eq!(ring.instances_count(), 1);
    assert_eq!(ring.healthy_count(), 1);

    lifecycler.shutdown().await.unwrap();
    assert!(
        stored(store.as_ref(), "ing-1").await.is_none(),
        "unregistered on shutdown"
    );
}

#[tokio::test]
async fn lifecyclers_claim_disjoint_tokens_and_ring_sees_them() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let mut lifecyclers = Vec::new();
    for i in 0..3 {
        let config = LifecyclerConfig {
            num_tokens: 128,
            ..lifecycler_config(&format!("ing-{i}"))
        };
        lifecyclers.push(Lifecycler::start(config, Arc::clone(&store)).await.unwrap());
    }
    let ring = Ring::new(ring_config(), Arc::clone(&store)).unwrap();
    ring.refresh().await.unwrap();
    let snap = ring.snapshot();
    assert_eq!(snap.instances_count(), 3);
    assert_eq!(snap.tokens_count(), 3 * 128, "no token claimed twice");
    let total: f64 = snap.members().iter().map(|m| m.ownership).sum();
    assert!((total - 1.0).abs() < 1e-9);

    let set = ring
        .get(strata_ring::shard_key("t", "up"), Operation::Write)
        .unwrap();
    assert_eq!(set.instances.len(), 3);
    assert_eq!(set.max_errors, 1);

    for lifecycler in lifecyclers {
        lifecycler.shutdown().await.unwrap();
    }
    ring.refresh().await.unwrap();
    assert_eq!(ring.instances_count(), 0);
}

#[tokio::test]
async fn tokens_file_keeps_tokens_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("tokens.json");
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let config = LifecyclerConfig {
        tokens_file: Some(tokens_file.clone()),
        ..lifecycler_config("ing-1")
    };

    let first = Lifecycler::start(config.clone(), Arc::clone(&store))
        .await
        .unwrap();
    let tokens = first.tokens().await;
    assert_eq!(
        strata_ring::load_tokens(&tokens_file).unwrap().as_deref(),
        Some(tokens.as_slice())
    );
    first.shutdown().await.unwrap();
    assert!(stored(store.as_ref(), "ing-1").await.is_none());

    // The ring entry is gone; the tokens come back from the file.
    let second = Lifecycler::start(config.clone(), Arc::clone(&store))
        .await
        .unwrap();
    assert_eq!(second.tokens().await, tokens);
    assert_eq!(
        stored(store.as_ref(), "ing-1").await.unwrap().value.tokens,
        tokens
    );
    second.shutdown().await.unwrap();

    // Even against a fresh store (for example a new ring table).
    let other_store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let third = Lifecycler::start(config, other_store).await.unwrap();
    assert_eq!(third.tokens().await, tokens);
    third.shutdown().await.unwrap();
}

#[tokio::test]
async fn tokens_file_with_fewer_tokens_is_topped_up() {
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("tokens.json");
    strata_ring::save_tokens(&tokens_file, &[5, 10]).unwrap();
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let config = LifecyclerConfig {
        tokens_file: Some(tokens_file.clone()),
        ..lifecycler_config("ing-1")
    };
    let lifecycler = Lifecycler::start(config, store).await.unwrap();
    let tokens = lifecycler.tokens().await;
    assert_eq!(tokens.len(), 32);
    assert!(tokens.contains(&5) && tokens.contains(&10));
    assert_eq!(
        strata_ring::load_tokens(&tokens_file).unwrap().unwrap(),
        tokens
    );
    lifecycler.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_takes_over_existing_entry() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let config = LifecyclerConfig {
        unregister_on_shutdown: false,
        ..lifecycler_config("ing-1")
    };
    let first = Lifecycler::start(config.clone(), Arc::clone(&store))
        .await
        .unwrap();
    let tokens = first.tokens().await;
    first.shutdown().await.unwrap();
    let left = stored(store.as_ref(), "ing-1")
        .await
        .expect("entry kept on shutdown");
    assert_eq!(left.value.tokens, tokens);

    // Simulate the previous run dying while LEAVING, and the new pod getting a new address.
    let mut leaving = left.value.clone();
    leaving.state = InstanceState::Leaving;
    store.put(&leaving, Some(left.version)).await.unwrap();
    let restarted_config = LifecyclerConfig {
        addr: "10.9.9.9:9095".to_string(),
        ..config
    };
    let second = Lifecycler::start(restarted_config, Arc::clone(&store))
        .await
        .unwrap();
    assert_eq!(second.tokens().await, tokens, "tokens taken over");
    assert_eq!(second.state(), InstanceState::Active);
    let items = store.list().await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].value.addr, "10.9.9.9:9095");
    assert_eq!(items[0].value.state, InstanceState::Active);
    assert_eq!(items[0].value.registered_ms, left.value.registered_ms);
    drop(second);
}

#[tokio::test]
async fn join_after_delays_active() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let config = LifecyclerConfig {
        join_after: Duration::from_millis(300),
        ..lifecycler_config("ing-1")
    };
    let lifecycler = Lifecycler::start(config, Arc::clone(&store)).await.unwrap();
    assert_eq!(lifecycler.state(), InstanceState::Joining);
    assert!(!lifecycler.is_ready());
    assert_eq!(
        stored(store.as_ref(), "ing-1").await.unwrap().value.state,
        InstanceState::Joining
    );

    let ring = Ring::new(
        RingConfig {
            replication_factor: 1,
            ..ring_config()
        },
        Arc::clone(&store),
    )
    .unwrap();
    ring.refresh().await.unwrap();
    assert!(
        ring.get(1, Operation::Write).is_err(),
        "JOINING takes no writes"
    );

    eventually("ACTIVE", || async { lifecycler.is_ready() }).await;
    assert_eq!(
        stored(store.as_ref(), "ing-1").await.unwrap().value.state,
        InstanceState::Active
    );
    ring.refresh().await.unwrap();
    assert_eq!(ring.get(1, Operation::Write).unwrap().instances.len(), 1);
    lifecycler.shutdown().await.unwrap();
}

#[tokio::test]
async fn set_state_is_written_at_once() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let lifecycler = Lifecycler::start(lifecycler_config("ing-1"), Arc::clone(&store))
        .await
        .unwrap();
    lifecycler.set_state(InstanceState::Leaving).await.unwrap();
    assert_eq!(lifecycler.state(), InstanceState::Leaving);
    assert!(!lifecycler.is_ready());
    assert_eq!(
        stored(store.as_ref(), "ing-1").await.unwrap().value.state,
        InstanceState::Leaving
    );
    // Heartbeats keep the state.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        stored(store.as_ref(), "ing-1").await.unwrap().value.state,
        InstanceState::Leaving
    );
    lifecycler.shutdown().await.unwrap();
}

#[tokio::test]
async fn heartbeat_recovers_from_conflicting_write() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let lifecycler = Lifecycler::start(lifecycler_config("ing-1"), Arc::clone(&store))
        .await
        .unwrap();

    // Someone else rewrites our item, bumping its version under the lifecycler.
    let current = stored(store.as_ref(), "ing-1").await.unwrap();
    let mut foreign = current.value.clone();
    foreign.heartbeat_ms = 0;
    let foreign_version = store.put(&foreign, Some(current.version)).await.unwrap();

    eventually("a heartbeat on top of the foreign write", || {
        let store = Arc::clone(&store);
        async move {
            let item = stored(store.as_ref(), "ing-1").await.unwrap();
            item.version != foreign_version && item.value.heartbeat_ms > 0
        }
    })
    .await;
    assert!(lifecycler.is_ready());
    lifecycler.shutdown().await.unwrap();
    assert!(stored(store.as_ref(), "ing-1").await.is_none());
}

#[tokio::test]
async fn forgotten_instance_registers_again() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let lifecycler = Lifecycler::start(lifecycler_config("ing-1"), Arc::clone(&store))
        .await
        .unwrap();
    let tokens = lifecycler.tokens().await;
    let ring = Ring::new(ring_config(), Arc::clone(&store)).unwrap();

    let before = stored(store.as_ref(), "ing-1").await.unwrap();
    ring.forget("ing-1").await.unwrap();
    ring.forget("no-such-instance").await.unwrap();

    // The next heartbeat finds its item gone and creates it again.
    eventually("re-registration", || {
        let store = Arc::clone(&store);
        async move {
            stored(store.as_ref(), "ing-1")
                .await
                .is_some_and(|item| item.version > before.version)
        }
    })
    .await;
    assert_eq!(
        stored(store.as_ref(), "ing-1").await.unwrap().value.tokens,
        tokens
    );
    lifecycler.shutdown().await.unwrap();
}

#[tokio::test]
async fn auto_forget_deletes_only_stale_instances() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let now = now_ms();
    store.put(&desc("fresh", now), None).await.unwrap();
    store
        .put(&desc("unhealthy", now - 2 * 60_000), None)
        .await
        .unwrap();
    store
        .put(&desc("dead", now - 20 * 60_000), None)
        .await
        .unwrap();

    let ring = Ring::new(ring_config(), Arc::clone(&store)).unwrap();
    ring.refresh().await.unwrap();
    let mut remaining: Vec<String> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.value.id)
        .collect();
    remaining.sort();
    assert_eq!(remaining, ["fresh", "unhealthy"]);
    assert_eq!(ring.instances_count(), 2);
    assert_eq!(ring.healthy_count(), 1);

    // Never forgotten when disabled.
    store
        .put(&desc("dead2", now - 20 * 60_000), None)
        .await
        .unwrap();
    let keep = Ring::new(
        RingConfig {
            forget_timeout: None,
            ..ring_config()
        },
        Arc::clone(&store),
    )
    .unwrap();
    keep.refresh().await.unwrap();
    assert_eq!(keep.instances_count(), 3);
}

/// A store that lets the instance heartbeat between the ring's `list` and its `delete`.
struct RacingStore {
    inner: MemoryRingStore,
}

#[async_trait]
impl RingStore for RacingStore {
    async fn list(&self) -> Result<Vec<Versioned<InstanceDesc>>, RingError> {
        let items = self.inner.list().await?;
        for item in &items {
            let mut revived = item.value.clone();
            revived.heartbeat_ms = now_ms();
            self.inner.put(&revived, Some(item.version)).await?;
        }
        Ok(items)
    }

    async fn put(&self, desc: &InstanceDesc, expected: Option<u64>) -> Result<u64, RingError> {
        self.inner.put(desc, expected).await
    }

    async fn delete(&self, id: &str, expected: Option<u64>) -> Result<(), RingError> {
        self.inner.delete(id, expected).await
    }
}

#[tokio::test]
async fn auto_forget_keeps_instance_that_heartbeated_meanwhile() {
    let racing = Arc::new(RacingStore {
        inner: MemoryRingStore::new(),
    });
    racing
        .inner
        .put(&desc("dead", now_ms() - 20 * 60_000), None)
        .await
        .unwrap();
    let ring = Ring::new(ring_config(), Arc::clone(&racing) as Arc<dyn RingStore>).unwrap();
    ring.refresh().await.unwrap();
    assert_eq!(
        racing.inner.list().await.unwrap().len(),
        1,
        "conditional delete lost the race"
    );
}

#[tokio::test]
async fn ring_polls_in_the_background() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let ring = Ring::new(
        RingConfig {
            poll_interval: Duration::from_millis(20),
            ..RingConfig::default()
        },
        Arc::clone(&store),
    )
    .unwrap();
    let lifecycler = Lifecycler::start(lifecycler_config("ing-1"), Arc::clone(&store))
        .await
        .unwrap();
    eventually("the ring to see the new member", || async {
        ring.instances_count() == 1
    })
    .await;
    lifecycler.shutdown().await.unwrap();
    eventually("the ring to see it leave", || async {
        ring.instances_count() == 0
    })
    .await;
}

#[tokio::test]
async fn metrics_are_exported() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let now = now_ms();
    store.put(&desc("a", now), None).await.unwrap();
    store.put(&desc("bb", now), None).await.unwrap();
    store
        .put(&desc("ccc", now - 2 * 60_000), None)
        .await
        .unwrap();
    let ring = Ring::new(ring_config(), Arc::clone(&store)).unwrap();
    let lifecycler = Lifecycler::start(lifecycler_config("ing-1"), Arc::clone(&store))
        .await
        .unwrap();
    ring.refresh().await.unwrap();

    let mut registry = prometheus_client::registry::Registry::default();
    ring.register_metrics(&mut registry);
    lifecycler.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("ring_members{state=\"ACTIVE\"} 3"), "{text}");
    assert!(
        text.contains("ring_members{state=\"UNHEALTHY\"} 1"),
        "{text}"
    );
    assert!(text.contains("ring_members{state=\"JOINING\"} 0"), "{text}");
    assert!(text.contains("ring_tokens 35"), "{text}");
    assert!(
        text.contains("ring_lifecycler_state{state=\"ACTIVE\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ring_lifecycler_state{state=\"LEAVING\"} 0"),
        "{text}"
    );
    lifecycler.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_configs_are_rejected() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let ring = Ring::new(
        RingConfig {
            replication_factor: 0,
            ..RingConfig::default()
        },
        Arc::clone(&store),
    );
    assert!(matches!(ring, Err(RingError::InvalidConfig(_))));
    let lifecycler = Lifecycler::start(LifecyclerConfig::default(), store).await;
    assert!(matches!(lifecycler, Err(RingError::InvalidConfig(_))));
}

#[tokio::test]
async fn status_page_renders_live_ring() {
    let store: Arc<dyn RingStore> = Arc::new(MemoryRingStore::new());
    let lifecycler = Lifecycler::start(lifecycler_config("ing-1"), Arc::clone(&store))
        .await
        .unwrap();
    let ring = Ring::new(ring_config(), Arc::clone(&store)).unwrap();
    ring.refresh().await.unwrap();
    let page = strata_ring::render_status_html("Ingester ring", &ring.snapshot(), now_ms());
    assert!(page.contains("<td>ing-1</td>"));
    assert!(page.contains("100.00%"));
    assert!(page.contains("<td class=\"num\">32</td>"));
    lifecycler.shutdown().await.unwrap();
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ring>();
    assert_send_sync::<Lifecycler>();
    assert_send_sync::<MemoryRingStore>();
    assert_send_sync::<strata_ring::RingSnapshot>();
}

/// What a [`RecordingStore`] saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Put {
        id: String,
        state: InstanceState,
        tokens: usize,
    },
    Delete {
        id: String,
    },
}

/// Records every put and delete on the way to an in-memory store; a put of the state
/// `hold_state` waits until `release` is notified.
#[derive(Default)]
struct RecordingStore {
    inner: MemoryRingStore,
    events: parking_lot::Mutex<Vec<Event>>,
    hold_state: parking_lot::Mutex<Option<InstanceState>>,
    release: tokio::sync::Notify,
}

/// The states an instance that registers and then shuts down writes, in
/// order, the last one its deletion (see [`RecordingStore::state_sequence`]).
const REGISTERED_THEN_DELETED: [Option<InstanceState>; 5] = [
    Some(InstanceState::Pending),
    Some(InstanceState::Joining),
    Some(InstanceState::Active),
    Some(InstanceState::Leaving),
    None,
];

impl RecordingStore {
    /// Starts a lifecycler with `config` on this store.
    async fn start(self: &Arc<Self>, config: LifecyclerConfig) -> Lifecycler {
        Lifecycler::start(config, Arc::clone(self) as Arc<dyn RingStore>)
            .await
            .unwrap()
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    /// The states `id` was written with, consecutive repeats (heartbeats) folded, and
    /// `None` for a delete.
    fn state_sequence(&self, id: &str) -> Vec<Option<InstanceState>> {
        let mut out: Vec<Option<InstanceState>> = Vec::new();
        for event in self.events() {
            let step = match event {
                Event::Put {
                    id: put_id, state, ..
                } if put_id == id => Some(state),
                Event::Delete { id: deleted } if deleted == id => None,
                _ => continue,
            };
            if out.last() != Some(&step) {
                out.push(step);
            }
        }
        out
    }
}

#[async_trait]
impl RingStore for RecordingStore {
    async fn list(&self) -> Result<Vec<Versioned<InstanceDesc>>, RingError> {
        self.inner.list().await
    }

    async fn put(&self, desc: &InstanceDesc, expected: Option<u64>) -> Result<u64, RingError> {
        let hold = *self.hold_state.lock() == Some(desc.state);
        if hold {
            self.release.notified().await;
        }
        let version = self.inner.put(desc, expected).await?;
        self.events.lock().push(Event::Put {
            id: desc.id.clone(),
            state: desc.state,
            tokens: desc.tokens.len(),
        });
        Ok(version)
    }

    async fn delete(&self, id: &str, expected: Option<u64>) -> Result<(), RingError> {
        self.inner.delete(id, expected).await?;
        self.events
            .lock()
            .push(Event::Delete { id: id.to_string() });
        Ok(())
    }
}

#[tokio::test]
async fn lifecycle_walks_pending_joining_active_leaving_then_deleted() {
    use InstanceState::*;
    let store = Arc::new(RecordingStore::default());
    let lifecycler = store.start(lifecycler_config("ing-1")).await;
    assert_eq!(lifecycler.state(), Active);

    // Some heartbeats while ACTIVE, then LEAVING; heartbeats keep it LEAVING while the
    // process drains, until shutdown removes it.
    tokio::time::sleep(Duration::from_millis(120)).await;
    lifecycler.leave().await.unwrap();
    assert_eq!(lifecycler.state(), Leaving);
    assert!(!lifecycler.is_ready());
    eventually("a heartbeat while LEAVING", || {
        let store = Arc::clone(&store);
        async move {
            store
                .events()
                .iter()
                .filter(|e| matches!(e, Event::Put { state: Leaving, .. }))
                .count()
                >= 2
        }
    })
    .await;
    assert_eq!(
        stored(&store.inner, "ing-1").await.unwrap().value.state,
        Leaving,
        "heartbeats keep LEAVING"
    );
    lifecycler.shutdown().await.unwrap();

    assert_eq!(
        store.state_sequence("ing-1"),
        REGISTERED_THEN_DELETED,
        "{:?}",
        store.events()
    );
    // PENDING carries no tokens; every later write carries all of them.
    for event in store.events() {
        if let Event::Put { state, tokens, .. } = event {
            let expected = if state == Pending { 0 } else { 32 };
            assert_eq!(tokens, expected, "{state}");
        }
    }
    assert!(stored(&store.inner, "ing-1").await.is_none());
}

#[tokio::test]
async fn shutdown_without_leave_still_goes_through_leaving() {
    let store = Arc::new(RecordingStore::default());
    let lifecycler = store.start(lifecycler_config("ing-1")).await;
    lifecycler.shutdown().await.unwrap();
    assert_eq!(store.state_sequence("ing-1"), REGISTERED_THEN_DELETED);
}

#[tokio::test]
async fn kept_entry_stays_leaving_and_restart_walks_the_states_again() {
    use InstanceState::*;
    let store = Arc::new(RecordingStore::default());
    let config = LifecyclerConfig {
        unregister_on_shutdown: false,
        ..lifecycler_config("ing-1")
    };
    let first = store.start(config.clone()).await;
    let tokens = first.tokens().await;
    first.shutdown().await.unwrap();
    assert_eq!(
        store.state_sequence("ing-1"),
        [Some(Pending), Some(Joining), Some(Active), Some(Leaving)],
        "no delete"
    );
    let kept = stored(&store.inner, "ing-1").await.unwrap();
    assert_eq!(kept.value.state, Leaving);
    assert_eq!(kept.value.tokens, tokens);

    // The restart takes the entry over: back to PENDING without tokens, then the same
    // tokens again, then ACTIVE; the registration time is kept.
    store.events.lock().clear();
    let second = store.start(config).await;
    assert_eq!(
        store.state_sequence("ing-1"),
        [Some(Pending), Some(Joining), Some(Active)]
    );
    assert_eq!(
        store.events()[0],
        Event::Put {
            id: "ing-1".to_string(),
            state: Pending,
            tokens: 0
        }
    );
    assert_eq!(second.tokens().await, tokens);
    let now = stored(&store.inner, "ing-1").await.unwrap();
    assert_eq!(now.value.registered_ms, kept.value.registered_ms);
    drop(second);
}

#[tokio::test]
async fn pending_instance_is_listed_but_owns_nothing_and_takes_no_traffic() {
    let store = Arc::new(RecordingStore::default());
    let dyn_store = Arc::clone(&store) as Arc<dyn RingStore>;
    let other = Lifecycler::start(lifecycler_config("ing-0"), Arc::clone(&dyn_store))
        .await
        .unwrap();

    // Hold ing-1 in PENDING: its JOINING write waits.
    *store.hold_state.lock() = Some(InstanceState::Joining);
    let starting = tokio::spawn({
        let dyn_store = Arc::clone(&dyn_store);
        async move { Lifecycler::start(lifecycler_config("ing-1"), dyn_store).await }
    });
    eventually("ing-1 PENDING", || {
        let store = Arc::clone(&store);
        async move { stored(&store.inner, "ing-1").await.is_some() }
    })
    .await;

    let ring = Ring::new(
        RingConfig {
            replication_factor: 1,
            ..ring_config()
        },
        Arc::clone(&dyn_store),
    )
    .unwrap();
    ring.refresh().await.unwrap();
    let snap = ring.snapshot();
    assert_eq!(snap.instances_count(), 2, "PENDING is listed");
    let pending = snap.member("ing-1").unwrap();
    assert_eq!(pending.desc.state, InstanceState::Pending);
    assert!(pending.desc.tokens.is_empty());
    assert_eq!(pending.ownership, 0.0);
    assert_eq!(snap.member("ing-0").unwrap().ownership, 1.0);
    assert_eq!(snap.tokens_count(), 32);
    for key in (0..500u32).map(|i| i.wrapping_mul(2_654_435_761)) {
        for op in [Operation::Write, Operation::Read] {
            let set = ring.get(key, op).unwrap();
            assert!(set.instances.iter().all(|i| i.id == "ing-0"));
        }
    }
    for op in [Operation::Write, Operation::Read] {
        let all = ring.get_all_healthy(op).unwrap();
        assert!(all.instances.iter().all(|i| i.id == "ing-0"), "{op:?}");
    }
    let page = strata_ring::render_status_html("Ingester ring", &snap, now_ms());
    assert!(page.contains("<td>ing-1</td>") && page.contains("<td>PENDING</td>"));

    // Released, it claims tokens and turns ACTIVE.
    *store.hold_state.lock() = None;
    store.release.notify_one();
    let joined = starting.await.unwrap().unwrap();
    assert_eq!(joined.state(), InstanceState::Active);
    ring.refresh().await.unwrap();
    assert!(ring.snapshot().member("ing-1").unwrap().ownership > 0.0);
    joined.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

/// A store whose reads can be switched off, as during an outage of DynamoDB.
struct FlakyStore {
    inner: MemoryRingStore,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl RingStore for FlakyStore {
    async fn list(&self) -> Result<Vec<Versioned<InstanceDesc>>, RingError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RingError::store("ring store unreachable"));
        }
        self.inner.list().await
    }

    async fn put(&self, desc: &InstanceDesc, expected: Option<u64>) -> Result<u64, RingError> {
        self.inner.put(desc, expected).await
    }

    async fn delete(&self, id: &str, expected: Option<u64>) -> Result<(), RingError> {
        self.inner.delete(id, expected).await
    }
}

#[tokio::test]
async fn ring_store_outage_does_not_make_members_unhealthy() {
    let store = Arc::new(FlakyStore {
        inner: MemoryRingStore::new(),
        down: std::sync::atomic::AtomicBool::new(false),
    });
    for id in ["a", "bb", "ccc"] {
        store.inner.put(&desc(id, now_ms()), None).await.unwrap();
    }
    let ring = Ring::new(
        RingConfig {
            heartbeat_timeout: Duration::from_millis(300),
            ..ring_config()
        },
        Arc::clone(&store) as Arc<dyn RingStore>,
    )
    .unwrap();
    ring.refresh().await.unwrap();
    assert_eq!(ring.healthy_count(), 3);

    // The store goes away for longer than the heartbeat timeout: the last
    // snapshot's verdict stands, writes still find their replicas.
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(ring.refresh().await.is_err());
    assert_eq!(ring.healthy_count(), 3);
    assert_eq!(
        ring.get(1, Operation::Write).unwrap().instances.len(),
        3,
        "members judged dead during a ring store outage"
    );
    assert_eq!(
        ring.get_all_healthy(Operation::Read)
            .unwrap()
            .instances
            .len(),
        3
    );

    // Once the store answers again, members get a heartbeat timeout's
    // grace to write their heartbeats (they could not while it was away)...
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    ring.refresh().await.unwrap();
    assert_eq!(
        ring.healthy_count(),
        3,
        "members judged dead right after the ring store came back"
    );
    // ... and those that really stopped heartbeating are found out after it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    ring.refresh().await.unwrap();
    assert_eq!(ring.healthy_count(), 0);
    assert!(ring.get(1, Operation::Write).is_err());
}
