//! The consistent-hash token ring.
//!
//! Ingesters register themselves with a [`Lifecycler`], which claims random 32-bit tokens
//! and keeps a heartbeat fresh in a [`RingStore`] (one item per instance, conditional
//! writes). Distributors and queriers run a [`Ring`] client, which polls the store, keeps
//! an immutable [`RingSnapshot`] and answers "which instances hold this key" without I/O.
//! Series are placed by [`shard_key`] (tenant and metric name).
//!
//! See the [`ring`] module for the replication and quorum rules.

mod desc;
mod error;
mod hash;
mod lifecycler;
pub mod ring;
mod shuffle;
mod status;
mod store;
mod tokens;

pub use desc::{now_ms, InstanceDesc, InstanceState};
pub use error::{BoxError, RingError};
pub use hash::{shard_key, shard_key_all_labels};
pub use lifecycler::{Lifecycler, LifecyclerConfig};
pub use ring::{quorum, Operation, ReplicationSet, Ring, RingConfig, RingMember, RingSnapshot};
pub use shuffle::{ShardSizeFn, ShuffleSharding};
pub use status::{escape_html, render_status_html};
pub use store::{MemoryRingStore, RingStore, Versioned};
pub use tokens::{generate_tokens, load_tokens, save_tokens};
