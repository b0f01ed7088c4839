//! The description of one ring member as stored in the ring store.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Lifecycle state of a ring member, in the order the lifecycler walks through them
/// (Cortex's meaning):
///
/// * `Pending`: registered, without tokens yet. Listed on ring pages, but owns no part of
///   the ring and is in no replication set (tokens a PENDING entry might carry are
///   ignored). Every start goes through it, including a restart that takes over the
///   entry of a previous run.
/// * `Joining`: has claimed its tokens (from the ring, the tokens file or freshly
///   generated) but takes no writes and serves no reads yet; replication walks past it
///   to the next member.
/// * `Active`: takes writes and serves reads. Reached after `join_after`.
/// * `Leaving`: shutting down. Takes no new writes (they go to the next member) but still
///   serves reads for the data it holds, until it is removed from the ring (or kept as
///   LEAVING when it does not unregister on shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceState {
    Pending,
    Joining,
    Active,
    Leaving,
}

impl InstanceState {
    /// All states, in lifecycle order.
    pub const ALL: [InstanceState; 4] = [
        InstanceState::Pending,
        InstanceState::Joining,
        InstanceState::Active,
        InstanceState::Leaving,
    ];

    /// Upper-case name, as shown on status pages and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "PENDING",
            InstanceState::Joining => "JOINING",
            InstanceState::Active => "ACTIVE",
            InstanceState::Leaving => "LEAVING",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ring member: where to reach it, which tokens it owns and when it last proved alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceDesc {
    /// Unique, stable id of the instance (for example the pod name).
    pub id: String,
    /// gRPC address, `host:port`.
    pub addr: String,
    /// HTTP address, `host:port`.
    pub http_addr: String,
    /// Availability zone; empty when zones are not used.
    #[serde(default)]
    pub zone: String,
    pub state: InstanceState,
    /// Tokens owned by the instance, sorted ascending, without duplicates.
    pub tokens: Vec<u32>,
    /// Last heartbeat, milliseconds since the Unix epoch.
    pub heartbeat_ms: i64,
    /// When the instance first registered, milliseconds since the Unix epoch.
    pub registered_ms: i64,
}

impl InstanceDesc {
    /// Whether the last heartbeat is recent enough.
    ///
    /// A zero `timeout` disables the check (every instance counts as alive). A heartbeat in
    /// the future (clock skew) counts as fresh.
    pub fn is_heartbeat_fresh(&self, now_ms: i64, timeout: Duration) -> bool {
        if timeout.is_zero() {
            return true;
        }
        heartbeat_age_ms(self.heartbeat_ms, now_ms) <= duration_ms(timeout)
    }
}

/// Age of a heartbeat in milliseconds, never negative.
pub(crate) fn heartbeat_age_ms(heartbeat_ms: i64, now_ms: i64) -> i64 {
    now_ms.saturating_sub(heartbeat_ms).max(0)
}

pub(crate) use strata_model::duration::duration_ms;
pub use strata_model::duration::now_ms;
