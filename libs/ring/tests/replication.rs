//! Placement, replication-set and quorum rules, on snapshots built by hand.

use std::collections::HashSet;
use std::time::Duration;

use strata_ring::{
    generate_tokens, InstanceDesc, InstanceState, Operation, RingConfig, RingError, RingSnapshot,
    Versioned,
};

const NOW: i64 = 1_700_000_000_000;
const FRESH: i64 = NOW - 1_000;
const STALE: i64 = NOW - 5 * 60 * 1_000;

fn instance(
    id: &str,
    zone: &str,
    state: InstanceState,
    tokens: Vec<u32>,
    heartbeat_ms: i64,
) -> Versioned<InstanceDesc> {
    Versioned {
        value: InstanceDesc {
            id: id.to_string(),
            addr: format!("{id}:9095"),
            http_addr: format!("{id}:9009"),
            zone: zone.to_string(),
            state,
            tokens,
            heartbeat_ms,
            registered_ms: 0,
        },
        version: 1,
    }
}

fn active(id: &str, tokens: Vec<u32>) -> Versioned<InstanceDesc> {
    instance(id, "", InstanceState::Active, tokens, FRESH)
}

/// `n` instances with random tokens, all ACTIVE and fresh, ids `ing-0..`.
fn random_ring(n: usize, tokens_each: usize) -> Vec<Versioned<InstanceDesc>> {
    let mut taken = HashSet::new();
    (0..n)
        .map(|i| {
            let tokens = generate_tokens(tokens_each, &taken);
            taken.extend(tokens.iter().copied());
            active(&format!("ing-{i}"), tokens)
        })
        .collect()
}

fn config(rf: usize) -> RingConfig {
    RingConfig {
        replication_factor: rf,
        ..RingConfig::default()
    }
}

fn ids(set: &strata_ring::ReplicationSet) -> Vec<&str> {
    set.instances.iter().map(|i| i.id.as_str()).collect()
}

fn sample_keys() -> impl Iterator<Item = u32> {
    (0..2_000u32).map(|i| i.wrapping_mul(2_654_435_761))
}

#[test]
fn empty_ring_is_an_error() {
    let snap = RingSnapshot::new(Vec::new(), &config(3), NOW);
    assert!(matches!(
        snap.get(1, Operation::Write, NOW),
        Err(RingError::EmptyRing)
    ));
    assert!(matches!(
        snap.get_all_healthy(Operation::Read, NOW),
        Err(RingError::EmptyRing)
    ));
}

#[test]
fn walk_is_clockwise_and_wraps() {
    // a owns 100, b owns 200, c owns 300, d owns 400.
    let snap = RingSnapshot::new(
        vec![
            active("a", vec![100]),
            active("b", vec![200]),
            active("c", vec![300]),
            active("d", vec![400]),
        ],
        &config(3),
        NOW,
    );
    assert_eq!(
        ids(&snap.get(150, Operation::Write, NOW).unwrap()),
        ["b", "c", "d"]
    );
    // A key equal to a token belongs to that token.
    assert_eq!(
        ids(&snap.get(200, Operation::Write, NOW).unwrap()),
        ["b", "c", "d"]
    );
    assert_eq!(
        ids(&snap.get(350, Operation::Write, NOW).unwrap()),
        ["d", "a", "b"]
    );
    // Past the largest token the walk wraps to the smallest.
    assert_eq!(
        ids(&snap.get(401, Operation::Write, NOW).unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(
        ids(&snap.get(0, Operation::Write, NOW).unwrap()),
        ["a", "b", "c"]
    );
}

#[test]
fn replication_set_with_three_four_and_five_instances() {
    for n in [3usize, 4, 5] {
        let snap = RingSnapshot::new(random_ring(n, 128), &config(3), NOW);
        for key in sample_keys() {
            let set = snap.get(key, Operation::Write, NOW).unwrap();
            assert_eq!(set.instances.len(), 3, "n={n}");
            assert_eq!(set.max_errors, 1, "n={n}");
            assert_eq!(set.min_success(), 2);
            let distinct: HashSet<&str> = ids(&set).into_iter().collect();
            assert_eq!(distinct.len(), 3, "replicas must be distinct instances");
        }
    }
}

#[test]
fn same_instance_holding_consecutive_tokens_is_counted_once() {
    let snap = RingSnapshot::new(
        vec![
            active("a", vec![10, 20, 30]),
            active("b", vec![40, 50]),
            active("c", vec![60]),
        ],
        &config(3),
        NOW,
    );
    assert_eq!(
        ids(&snap.get(5, Operation::Write, NOW).unwrap()),
        ["a", "b", "c"]
    );
}

#[test]
fn fewer_instances_than_rf() {
    let two = RingSnapshot::new(random_ring(2, 16), &config(3), NOW);
    let set = two.get(42, Operation::Write, NOW).unwrap();
    assert_eq!(set.instances.len(), 2);
    assert_eq!(set.max_errors, 0, "quorum of RF 3 is 2: both must succeed");

    let one = RingSnapshot::new(random_ring(1, 16), &config(3), NOW);
    assert!(matches!(
        one.get(42, Operation::Write, NOW),
        Err(RingError::TooManyUnhealthy {
            needed: 2,
            healthy: 1
        })
    ));

    let one_rf1 = RingSnapshot::new(random_ring(1, 16), &config(1), NOW);
    let set = one_rf1.get(42, Operation::Write, NOW).unwrap();
    assert_eq!(set.instances.len(), 1);
    assert_eq!(set.max_errors, 0);
}

#[test]
fn unhealthy_instances_count_against_quorum() {
    let tokens = |t| vec![t];
    let ring = |stale: &[&str]| {
        let items = ["a", "b", "c", "d"]
            .iter()
            .zip([100u32, 200, 300, 400])
            .map(|(id, t)| {
                let hb = if stale.contains(id) { STALE } else { FRESH };
                instance(id, "", InstanceState::Active, tokens(t), hb)
            })
            .collect();
        RingSnapshot::new(items, &config(3), NOW)
    };

    // One of three replicas dead: the dead one keeps its slot (no extension to d), the
    // two others must both succeed.
    let set = ring(&["b"]).get(150, Operation::Write, NOW).unwrap();
    assert_eq!(ids(&set), ["c", "d"]);
    let set = ring(&["c"]).get(150, Operation::Write, NOW).unwrap();
    assert_eq!(ids(&set), ["b", "d"]);
    assert_eq!(set.max_errors, 0);

    // Two of three dead: no quorum.
    let err = ring(&["b", "c"])
        .get(150, Operation::Write, NOW)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RingError::TooManyUnhealthy {
                needed: 2,
                healthy: 1
            }
        ),
        "{err}"
    );

    // Reads follow the same rule.
    assert!(ring(&["b", "c"]).get(150, Operation::Read, NOW).is_err());
    assert_eq!(
        ring(&["d"])
            .get(150, Operation::Read, NOW)
            .unwrap()
            .instances
            .len(),
        2
    );
}

#[test]
fn heartbeat_timeout_decides_health() {
    let items = vec![
        instance("a", "", InstanceState::Active, vec![100], NOW - 59_000),
        instance("b", "", InstanceState::Active, vec![200], NOW - 61_000),
        instance("c", "", InstanceState::Active, vec![300], NOW + 5_000), // clock skew
    ];
    let snap = RingSnapshot::new(items.clone(), &config(3), NOW);
    assert_eq!(snap.healthy_count(NOW), 2);
    assert_eq!(
        ids(&snap.get(50, Operation::Write, NOW).unwrap()),
        ["a", "c"]
    );

    let no_check = RingConfig {
        heartbeat_timeout: Duration::ZERO,
        ..config(3)
    };
    let snap = RingSnapshot::new(items, &no_check, NOW);
    assert_eq!(snap.healthy_count(NOW), 3);
    assert_eq!(
        snap.get(50, Operation::Write, NOW).unwrap().instances.len(),
        3
    );
}

#[test]
fn joining_and_leaving_instances_extend_the_walk() {
    let items = vec![
        instance("a", "", InstanceState::Active, vec![100], FRESH),
        instance("b", "", InstanceState::Joining, vec![200], FRESH),
        instance("c", "", InstanceState::Leaving, vec![300], FRESH),
        instance("d", "", InstanceState::Active, vec![400], FRESH),
        instance("e", "", InstanceState::Active, vec![500], FRESH),
        instance("f", "", InstanceState::Pending, vec![600], FRESH),
    ];
    let snap = RingSnapshot::new(items, &config(3), NOW);

    // Writes skip JOINING b and LEAVING c (and PENDING f) and still get three replicas.
    let set = snap.get(150, Operation::Write, NOW).unwrap();
    assert_eq!(ids(&set), ["d", "e", "a"]);
    assert_eq!(set.max_errors, 1);

    // Reads skip JOINING but include LEAVING, which still holds its data.
    let set = snap.get(150, Operation::Read, NOW).unwrap();
    assert_eq!(ids(&set), ["c", "d", "e"]);

    // All-instance reads ask LEAVING members but not JOINING or PENDING ones.
    let all = snap.get_all_healthy(Operation::Read, NOW).unwrap();
    assert_eq!(ids(&all), ["a", "c", "d", "e"]);
    let all = snap.get_all_healthy(Operation::Write, NOW).unwrap();
    assert_eq!(ids(&all), ["a", "d", "e"]);
}

#[test]
fn not_enough_active_instances_after_skipping() {
    let items = vec![
        instance("a", "", InstanceState::Active, vec![100], FRESH),
        instance("b", "", InstanceState::Joining, vec![200], FRESH),
        instance("c", "", InstanceState::Joining, vec![300], FRESH),
    ];
    let snap = RingSnapshot::new(items, &config(3), NOW);
    assert!(matches!(
        snap.get(150, Operation::Write, NOW),
        Err(RingError::TooManyUnhealthy {
            needed: 2,
            healthy: 1
        })
    ));
}

fn zoned_ring(zones: &[&str], per_zone: usize, stale: &[&str]) -> Vec<Versioned<InstanceDesc>> {
    let mut taken = HashSet::new();
    let mut items = Vec::new();
    for zone in zones {
        for i in 0..per_zone {
            let id = format!("{zone}-{i}");
            let tokens = generate_tokens(64, &taken);
            taken.extend(tokens.iter().copied());
            let hb = if stale.contains(&id.as_str()) {
                STALE
            } else {
                FRESH
            };
            items.push(instance(&id, zone, InstanceState::Active, tokens, hb));
        }
    }
    items
}

fn zone_config(rf: usize) -> RingConfig {
    RingConfig {
        zone_awareness: true,
        ..config(rf)
    }
}

#[test]
fn zone_awareness_places_replicas_in_distinct_zones() {
    let snap = RingSnapshot::new(
        zoned_ring(&["za", "zb", "zc"], 3, &[]),
        &zone_config(3),
        NOW,
    );
    for key in sample_keys() {
        let set = snap.get(key, Operation::Write, NOW).unwrap();
        assert_eq!(set.instances.len(), 3);
        let zones: HashSet<&str> = set.instances.iter().map(|i| i.zone.as_str()).collect();
        assert_eq!(zones.len(), 3, "one replica per zone");
    }

    // Without zone awareness the same ring puts replicas in the same zone sometimes.
    let snap = RingSnapshot::new(zoned_ring(&["za", "zb", "zc"], 3, &[]), &config(3), NOW);
    let same_zone = sample_keys().any(|key| {
        let set = snap.get(key, Operation::Write, NOW).unwrap();
        let zones: HashSet<&str> = set.instances.iter().map(|i| i.zone.as_str()).collect();
        zones.len() < 3
    });
    assert!(same_zone);
}

#[test]
fn zone_awareness_with_fewer_zones_than_rf() {
    // Two zones with RF 3: only two replicas can be placed; quorum (2) needs both.
    let snap = RingSnapshot::new(zoned_ring(&["za", "zb"], 3, &[]), &zone_config(3), NOW);
    for key in sample_keys().take(100) {
        let set = snap.get(key, Operation::Write, NOW).unwrap();
        assert_eq!(set.instances.len(), 2);
        assert_eq!(set.max_errors, 0);
        assert_ne!(set.instances[0].zone, set.instances[1].zone);
    }
    // One zone: never a quorum.
    let snap = RingSnapshot::new(zoned_ring(&["za"], 3, &[]), &zone_config(3), NOW);
    assert!(snap.get(1, Operation::Write, NOW).is_err());
}

#[test]
fn get_all_healthy_without_zones() {
    let snap = RingSnapshot::new(random_ring(3, 8), &config(3), NOW);
    let set = snap.get_all_healthy(Operation::Read, NOW).unwrap();
    assert_eq!(set.instances.len(), 3);
    assert_eq!(set.max_errors, 1);
    assert!(set.tolerates_failures(&["ing-0"]));
    assert!(!set.tolerates_failures(&["ing-0", "ing-1"]));

    let snap = RingSnapshot::new(random_ring(6, 8), &config(3), NOW);
    assert_eq!(
        snap.get_all_healthy(Operation::Read, NOW)
            .unwrap()
            .max_errors,
        1
    );

    // One unhealthy member uses up the allowance.
    let mut items = random_ring(4, 8);
    items[1].value.heartbeat_ms = STALE;
    let snap = RingSnapshot::new(items.clone(), &config(3), NOW);
    let set = snap.get_all_healthy(Operation::Read, NOW).unwrap();
    assert_eq!(set.instances.len(), 3);
    assert_eq!(set.max_errors, 0);
    assert!(!set.instances.iter().any(|i| i.id == "ing-1"));

    // Two unhealthy: a series may have lost two of its three replicas.
    items[2].value.heartbeat_ms = STALE;
    let snap = RingSnapshot::new(items, &config(3), NOW);
    assert!(matches!(
        snap.get_all_healthy(Operation::Read, NOW),
        Err(RingError::TooManyUnhealthy {
            needed: 3,
            healthy: 2
        })
    ));

    // RF 5 tolerates two.
    let snap = RingSnapshot::new(random_ring(5, 8), &config(5), NOW);
    assert_eq!(
        snap.get_all_healthy(Operation::Read, NOW)
            .unwrap()
            .max_errors,
        2
    );

    // A single instance with RF 3 cannot answer; with RF 1 it can.
    let snap = RingSnapshot::new(random_ring(1, 8), &config(3), NOW);
    assert!(snap.get_all_healthy(Operation::Read, NOW).is_err());
    let snap = RingSnapshot::new(random_ring(1, 8), &config(1), NOW);
    let set = snap.get_all_healthy(Operation::Read, NOW).unwrap();
    assert_eq!((set.instances.len(), set.max_errors), (1, 0));
}

#[test]
fn get_all_healthy_with_zones_tolerates_one_zone() {
    let snap = RingSnapshot::new(
        zoned_ring(&["za", "zb", "zc"], 2, &[]),
        &zone_config(3),
        NOW,
    );
    let set = snap.get_all_healthy(Operation::Read, NOW).unwrap();
    assert_eq!(set.instances.len(), 6);
    assert_eq!(set.max_errors, 0);
    assert_eq!(set.max_unavailable_zones, 1);
    assert!(
        set.tolerates_failures(&["za-0", "za-1"]),
        "a whole zone may fail"
    );
    assert!(
        !set.tolerates_failures(&["za-0", "zb-0"]),
        "but not two zones"
    );
    assert!(set.tolerates_failures::<&str>(&[]));

    // An unhealthy member takes its whole zone out of the set.
    let snap = RingSnapshot::new(
        zoned_ring(&["za", "zb", "zc"], 2, &["za-1"]),
        &zone_config(3),
        NOW,
    );
    let set = snap.get_all_healthy(Operation::Read, NOW).unwrap();
    let zones: HashSet<&str> = set.instances.iter().map(|i| i.zone.as_str()).collect();
    assert_eq!(zones, HashSet::from(["zb", "zc"]));
    assert_eq!(set.instances.len(), 4);
    assert_eq!(set.max_unavailable_zones, 0);
    assert!(!set.tolerates_failures(&["zb-0"]));

    // Unhealthy members in two zones: error.
    let snap = RingSnapshot::new(
        zoned_ring(&["za", "zb", "zc"], 2, &["za-1", "zb-0"]),
        &zone_config(3),
        NOW,
    );
    assert!(matches!(
        snap.get_all_healthy(Operation::Read, NOW),
        Err(RingError::TooManyFailedZones {
            failed: 2,
            tolerated: 1
        })
    ));

    // Two zones for RF 3: the missing zone uses up the allowance.
    let snap = RingSnapshot::new(zoned_ring(&["za", "zb"], 2, &[]), &zone_config(3), NOW);
    let set = snap.get_all_healthy(Operation::Read, NOW).unwrap();
    assert_eq!(set.max_unavailable_zones, 0);
    let snap = RingSnapshot::new(
        zoned_ring(&["za", "zb"], 2, &["zb-1"]),
        &zone_config(3),
        NOW,
    );
    assert!(snap.get_all_healthy(Operation::Read, NOW).is_err());
}

#[test]
fn ownership_sums_to_one_and_is_roughly_even() {
    for n in [1usize, 3, 4, 10] {
        let snap = RingSnapshot::new(random_ring(n, 128), &config(3), NOW);
        let total: f64 = snap.members().iter().map(|m| m.ownership).sum();
        assert!((total - 1.0).abs() < 1e-9, "n={n} total={total}");
        let fair = 1.0 / n as f64;
        for member in snap.members() {
            // 128 random tokens keep every share within ±50 % of fair (a very loose bound:
            // the standard deviation is about 9 % of fair, so this never flakes).
            assert!(
                (member.ownership - fair).abs() < 0.5 * fair,
                "n={n} {} owns {}",
                member.desc.id,
                member.ownership
            );
        }
    }
}

#[test]
fn ownership_of_hand_placed_tokens() {
    let quarter = 1u32 << 30;
    let snap = RingSnapshot::new(
        vec![
            active("a", vec![quarter]),
            active("b", vec![2 * quarter, 3 * quarter]),
        ],
        &config(1),
        NOW,
    );
    // a owns (3q, 2^32) ∪ [0, q] = half; b owns (q, 3q] = half.
    let a = snap.member("a").unwrap().ownership;
    let b = snap.member("b").unwrap().ownership;
    assert!((a - 0.5).abs() < 1e-12, "{a}");
    assert!((b - 0.5).abs() < 1e-12, "{b}");

    let single = RingSnapshot::new(vec![active("a", vec![7])], &config(1), NOW);
    assert_eq!(single.member("a").unwrap().ownership, 1.0);
}

#[test]
fn keys_spread_over_instances() {
    let snap = RingSnapshot::new(random_ring(4, 128), &config(1), NOW);
    let mut counts = std::collections::HashMap::new();
    for metric in 0..4_000 {
        let key = strata_ring::shard_key("tenant", &format!("metric_{metric}"));
        let set = snap.get(key, Operation::Write, NOW).unwrap();
        *counts.entry(set.instances[0].id.clone()).or_insert(0usize) += 1;
    }
    assert_eq!(counts.len(), 4);
    for (id, count) in counts {
        assert!((500..1_500).contains(&count), "{id} got {count} of 4000");
    }
}

#[test]
fn pending_instance_owns_no_tokens_and_is_in_no_replication_set() {
    // "p" is PENDING but its entry carries tokens (a lifecycler never writes them; the
    // store could still hold anything): they are ignored. "q" is PENDING without tokens,
    // as the lifecycler writes it.
    let items = vec![
        instance("a", "", InstanceState::Active, vec![100], FRESH),
        instance("p", "", InstanceState::Pending, vec![150, 250, 350], FRESH),
        instance("q", "", InstanceState::Pending, vec![], FRESH),
        instance("b", "", InstanceState::Active, vec![200], FRESH),
        instance("c", "", InstanceState::Active, vec![300], FRESH),
    ];
    let snap = RingSnapshot::new(items, &config(3), NOW);
    assert_eq!(snap.instances_count(), 5, "PENDING members are listed");
    assert_eq!(snap.tokens_count(), 3, "PENDING tokens are not in the ring");
    for id in ["p", "q"] {
        assert_eq!(snap.member(id).unwrap().ownership, 0.0, "{id}");
    }
    let total: f64 = snap.members().iter().map(|m| m.ownership).sum();
    assert!((total - 1.0).abs() < 1e-9);
    // Key 120 would belong to p's token 150; it goes to b instead.
    assert_eq!(
        ids(&snap.get(120, Operation::Write, NOW).unwrap()),
        ["b", "c", "a"]
    );
    for rf in [1, 3] {
        let snap = RingSnapshot::new(
            snap.members()
                .iter()
                .map(|m| Versioned {
                    value: m.desc.clone(),
                    version: m.version,
                })
                .collect(),
            &config(rf),
            NOW,
        );
        for key in sample_keys().chain([0, 120, 150, 250, 350, u32::MAX]) {
            for op in [Operation::Write, Operation::Read] {
                let set = snap.get(key, op, NOW).unwrap();
                assert!(
                    set.instances.iter().all(|i| i.id != "p" && i.id != "q"),
                    "rf {rf} key {key} {op:?}: {:?}",
                    ids(&set)
                );
            }
        }
        for op in [Operation::Write, Operation::Read] {
            let all = snap.get_all_healthy(op, NOW).unwrap();
            assert_eq!(ids(&all), ["a", "b", "c"], "rf {rf} {op:?}");
        }
    }
    // A ring of PENDING members only has nothing to place keys on.
    let only_pending = RingSnapshot::new(
        vec![instance("p", "", InstanceState::Pending, vec![1, 2], FRESH)],
        &config(1),
        NOW,
    );
    assert!(matches!(
        only_pending.get(1, Operation::Write, NOW),
        Err(RingError::EmptyRing)
    ));
    assert_eq!(only_pending.member("p").unwrap().ownership, 0.0);
}

#[test]
fn first_healthy_skips_dead_and_transitional_members() {
    let snap = RingSnapshot::new(
        vec![
            active("a", vec![100]),
            instance("b", "", InstanceState::Active, vec![200], STALE),
            instance("c", "", InstanceState::Leaving, vec![300], FRESH),
            active("d", vec![400]),
        ],
        &config(1),
        NOW,
    );
    let owner = |key| {
        snap.first_healthy(key, Operation::Write, NOW)
            .map(|d| d.id.clone())
    };
    assert_eq!(owner(50).as_deref(), Some("a"));
    // b's heartbeat is stale and c is LEAVING: d takes over their keys.
    assert_eq!(owner(150).as_deref(), Some("d"));
    assert_eq!(owner(250).as_deref(), Some("d"));
    // Past the last token the walk wraps to a.
    assert_eq!(owner(450).as_deref(), Some("a"));
    let empty = RingSnapshot::new(Vec::new(), &config(1), NOW);
    assert!(empty.first_healthy(1, Operation::Write, NOW).is_none());
}

fn member_ids(snap: &RingSnapshot) -> Vec<String> {
    snap.members().iter().map(|m| m.desc.id.clone()).collect()
}

#[test]
fn shuffle_shards_are_stable_sized_and_spread() {
    let snap = RingSnapshot::new(random_ring(12, 64), &config(3), NOW);
    let a = snap.shuffle_shard("tenant-a", 4);
    assert_eq!(a.members().len(), 4);
    // Deterministic: the same tenant always gets the same members.
    assert_eq!(
        member_ids(&a),
        member_ids(&snap.shuffle_shard("tenant-a", 4))
    );
    // Replication stays inside the shard.
    let inside: HashSet<String> = member_ids(&a).into_iter().collect();
    for key in sample_keys().take(200) {
        for i in a.get(key, Operation::Write, NOW).unwrap().instances {
            assert!(inside.contains(&i.id));
        }
    }
    // Tenants get different shards, and all members are used by someone.
    let mut used = HashSet::new();
    let mut distinct = HashSet::new();
    for t in 0..50 {
        let ids = member_ids(&snap.shuffle_shard(&format!("t{t}"), 4));
        distinct.insert(ids.clone());
        used.extend(ids);
    }
    assert!(
        distinct.len() > 20,
        "only {} distinct shards",
        distinct.len()
    );
    assert_eq!(used.len(), 12);
    // Size 0 or the whole ring: every member.
    assert_eq!(snap.shuffle_shard("x", 0).members().len(), 12);
    assert_eq!(snap.shuffle_shard("x", 12).members().len(), 12);
}

#[test]
fn a_joining_member_changes_a_shard_by_at_most_one() {
    let mut ring = random_ring(10, 64);
    let before = RingSnapshot::new(ring.clone(), &config(3), NOW);
    let taken: HashSet<u32> = ring.iter().flat_map(|m| m.value.tokens.clone()).collect();
    ring.push(active("ing-new", generate_tokens(64, &taken)));
    let after = RingSnapshot::new(ring, &config(3), NOW);
    for t in 0..100 {
        let tenant = format!("tenant-{t}");
        let old: HashSet<String> = member_ids(&before.shuffle_shard(&tenant, 3))
            .into_iter()
            .collect();
        let new: HashSet<String> = member_ids(&after.shuffle_shard(&tenant, 3))
            .into_iter()
            .collect();
        let gone = old.difference(&new).count();
        assert!(gone <= 1, "{tenant}: {old:?} -> {new:?}");
        if gone == 1 {
            assert!(new.contains("ing-new"), "{tenant}: {old:?} -> {new:?}");
        }
    }
}

#[test]
fn zone_aware_shards_take_members_from_every_zone() {
    let mut taken = HashSet::new();
    let ring: Vec<_> = (0..9)
        .map(|i| {
            let tokens = generate_tokens(32, &taken);
            taken.extend(tokens.iter().copied());
            instance(
                &format!("ing-{i}"),
                ["a", "b", "c"][i % 3],
                InstanceState::Active,
                tokens,
                FRESH,
            )
        })
        .collect();
    let snap = RingSnapshot::new(
        ring,
        &RingConfig {
            zone_awareness: true,
            ..config(3)
        },
        NOW,
    );
    let shard = snap.shuffle_shard("tenant", 3);
    let zones: HashSet<String> = shard
        .members()
        .iter()
        .map(|m| m.desc.zone.clone())
        .collect();
    assert_eq!(shard.members().len(), 3);
    assert_eq!(zones.len(), 3);
}

#[test]
fn reads_keep_the_member_a_newcomer_displaced() {
    let mut ring = random_ring(10, 64);
    let before = RingSnapshot::new(ring.clone(), &config(3), NOW);
    let taken: HashSet<u32> = ring.iter().flat_map(|m| m.value.tokens.clone()).collect();
    let mut newcomer = active("ing-new", generate_tokens(64, &taken));
    newcomer.value.registered_ms = NOW - 60_000;
    ring.push(newcomer);
    let after = RingSnapshot::new(ring, &config(3), NOW);
    for t in 0..100 {
        let tenant = format!("tenant-{t}");
        let old: HashSet<String> = member_ids(&before.shuffle_shard(&tenant, 3))
            .into_iter()
            .collect();
        let read: HashSet<String> =
            member_ids(&after.shuffle_shard_with_lookback(&tenant, 3, 10 * 60_000, NOW))
                .into_iter()
                .collect();
        assert!(
            old.is_subset(&read),
            "{tenant}: wrote to {old:?}, reads {read:?}"
        );
        // Once the newcomer is older than the lookback, reads are the shard.
        let settled = after.shuffle_shard_with_lookback(&tenant, 3, 30_000, NOW);
        assert_eq!(settled.members().len(), 3);
    }
}
