//! A write-ahead log: records appended to numbered, checksummed segment files
//! in one directory, acknowledged once they are written (and, by the
//! [`SyncPolicy`], on stable storage), and read back in order on restart.
//!
//! - **Segments** are files named by a zero-padded sequence number
//!   (`00000001`, …). Each starts with an 8-byte header (`SWAL`, version,
//!   three zero bytes); each record is `length u32 LE | crc32 u32 LE |
//!   payload`, the CRC-32 (IEEE) over the payload. A segment is closed and
//!   the next one begun when it passes the configured size.
//! - **Group commit**: appends from many tasks are queued to one writer
//!   thread, which writes everything queued in one `write`, syncs once (per
//!   the policy) and then acknowledges every record of the group.
//! - **Replay** ([`replay`]) reads every segment in order and hands each
//!   record to a callback. A torn or corrupt record (a crash during a write,
//!   garbage appended) ends the log there: the segment is truncated at the
//!   last good record, later segments are removed, and a warning says how
//!   many bytes and segments were dropped. Replay never refuses to start.
//! - **Truncation**: [`Wal::cut`] closes the current segment; once the data
//!   of the segments before a number is safe elsewhere (flushed to the store),
//!   [`Wal::remove_before`] deletes them. A **checkpoint**
//!   ([`write_checkpoint`]) replaces the segments before a cut by the records
//!   of a snapshot taken after it; replay reads it first.
//!
//! The payload is opaque here: the ingester defines its records.

mod error;
mod lock;
mod segment;
mod wal;

pub use error::WalError;
pub use lock::DirLock;
pub use segment::{
    checkpoint_path, last_written, latest_checkpoint, list_segments, replay, segment_path,
    write_checkpoint, ReplayStats, MAX_RECORD_BYTES, SEGMENT_HEADER,
};
pub use wal::{Pending, SyncPolicy, Wal, WalConfig, WalMetrics};
