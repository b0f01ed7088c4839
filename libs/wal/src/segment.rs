//! Segment files: naming, framing, and replay with repair.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::WalError;

/// First bytes of every segment: magic, format version, three zero bytes.
pub const SEGMENT_HEADER: [u8; 8] = *b"SWAL\x01\0\0\0";
/// Largest record payload; a length above it can only be damage.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Bytes a record adds around its payload: length and CRC-32.
pub(crate) const FRAME_BYTES: usize = 8;

/// The file of segment `n` in `dir`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Segment numbers in `dir`, ascending. Files whose names are not all digits are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WalError::io("list segments", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list segments", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = name.parse::<u64>() {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The checkpoint file taken when segment `n` began.
pub fn checkpoint_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("checkpoint.{n:08}"))
}

/// When the log in `dir` was last written: the newest modification time of
/// its segments and checkpoint, or `None` when it holds neither (a new or
/// lost log). Read it before [`crate::Wal::open`], which writes.
pub fn last_written(dir: &Path) -> Result<Option<std::time::SystemTime>, WalError> {
    let mut newest = None;
    let mut paths: Vec<PathBuf> = list_segments(dir)?
        .into_iter()
        .map(|n| segment_path(dir, n))
        .collect();
    if let Some(n) = latest_checkpoint(dir)? {
        paths.push(checkpoint_path(dir, n));
    }
    for path in paths {
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|source| WalError::io("reading the modification time", &path, source))?;
        newest = newest.max(Some(modified));
    }
    Ok(newest)
}

/// The number of the newest complete checkpoint in `dir`.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<u64>, WalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WalError::io("list checkpoints", dir, e)),
    };
    let mut newest = None;
    for entry in entries {
        let entry = entry.map_err(|e| WalError::io("list checkpoints", dir, e))?;
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(|n| n.strip_prefix("checkpoint.")) else {
            continue;
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            continue; // e.g. an unfinished "checkpoint.N.tmp"
        }
        if let Ok(n) = number.parse::<u64>() {
            newest = newest.max(Some(n));
        }
    }
    Ok(newest)
}

/// Writes a checkpoint: `records` (the state that the segments before `n`
/// built, as records that replay restores it from) into `checkpoint.N`,
/// synced and renamed into place, then removes every segment before `n`,
/// older checkpoints and unfinished ones. Call it after [`crate::Wal::cut`]
/// returned `n`, with a snapshot taken after that. Returns the bytes written.
pub fn write_checkpoint(
    dir: &Path,
    n: u64,
    records: impl IntoIterator<Item = Vec<u8>>,
) -> Result<u64, WalError> {
    use std::io::Write;
    let final_path = checkpoint_path(dir, n);
    let tmp = dir.join(format!("checkpoint.{n:08}.tmp"));
    let file = File::create(&tmp).map_err(|e| WalError::io("create checkpoint", &tmp, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = SEGMENT_HEADER.len() as u64;
    out.write_all(&SEGMENT_HEADER)
        .map_err(|e| WalError::io("write checkpoint", &tmp, e))?;
    let mut buf = Vec::new();
    for record in records {
        if record.len() > MAX_RECORD_BYTES {
            return Err(WalError::RecordTooLarge {
                len: record.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        buf.clear();
        frame(&mut buf, &record);
        out.write_all(&buf)
            .map_err(|e| WalError::io("write checkpoint", &tmp, e))?;
        written += buf.len() as u64;
    }
    let file = out
        .into_inner()
        .map_err(|e| WalError::io("write checkpoint", &tmp, e.into_error()))?;
    file.sync_all()
        .map_err(|e| WalError::io("sync checkpoint", &tmp, e))?;
    std::fs::rename(&tmp, &final_path)
        .map_err(|e| WalError::io("rename checkpoint", &final_path, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io("sync directory", dir, e))?;
    // What the checkpoint replaces.
    for m in list_segments(dir)? {
        if m >= n {
            break;
        }
        let p = segment_path(dir, m);
        std::fs::remove_file(&p).map_err(|e| WalError::io("remove segment", &p, e))?;
    }
    let entries = std::fs::read_dir(dir).map_err(|e| WalError::io("list checkpoints", dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("checkpoint.") && entry.path() != final_path {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| WalError::io("remove checkpoint", &p, e))?;
        }
    }
    Ok(written)
}

/// Appends one framed record to `out`.
pub(crate) fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What a replay read and what it dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Bytes cut off the damaged segment (torn or corrupt tail).
    pub truncated_bytes: u64,
    /// Whole segments after the damage that were removed.
    pub removed_segments: usize,
    /// Highest segment number seen (0 for an empty log).
    pub last_segment: u64,
    /// The checkpoint replayed first, if any.
    pub checkpoint: Option<u64>,
    /// The checkpoint had a damaged record (disk corruption: checkpoints are
    /// written whole and renamed into place).
    pub checkpoint_damaged: bool,
}

/// Where a segment's good records end and why reading stopped.
enum Stop {
    End,
    Damaged { at: u64, reason: String },
}

/// Reads every record of every segment of `dir` in order, calling `each`
/// with the segment number and the payload. A torn or corrupt record ends the
/// log: its segment is truncated to the last good record, every later
/// segment is removed, and the loss is logged. An error from `each` stops the
/// replay and is returned.
///
/// When the directory holds a checkpoint (`checkpoint.N`, see
/// [`write_checkpoint`]), its records come first and only segments from `N`
/// on follow; older segments left by an interrupted cleanup are removed.
pub fn replay<E>(
    dir: &Path,
    mut each: impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<Result<ReplayStats, E>, WalError> {
    let mut stats = ReplayStats::default();
    let checkpoint = latest_checkpoint(dir)?;
    let mut segments = list_segments(dir)?;
    if let Some(n) = checkpoint {
        let path = checkpoint_path(dir, n);
        let (stop, result) = read_segment(&path, n, &mut stats, &mut each)?;
        if let Err(e) = result {
            return Ok(Err(e));
        }
        if let Stop::Damaged { at, reason } = stop {
            stats.checkpoint_damaged = true;
            tracing::error!(
                checkpoint = n,
                offset = at,
                reason = %reason,
                "write-ahead log checkpoint damaged: replaying what precedes the damage, then the segments"
            );
        }
        stats.checkpoint = Some(n);
        for &m in segments.iter().filter(|m| **m < n) {
            let p = segment_path(dir, m);
            std::fs::remove_file(&p).map_err(|e| WalError::io("remove segment", &p, e))?;
        }
        segments.retain(|m| *m >= n);
    }
    for (i, &n) in segments.iter().enumerate() {
        stats.segments += 1;
        stats.last_segment = n;
        let path = segment_path(dir, n);
        let (stop, result) = read_segment(&path, n, &mut stats, &mut each)?;
        if let Err(e) = result {
            return Ok(Err(e));
        }
        if let Stop::Damaged { at, reason } = stop {
            let len = std::fs::metadata(&path)
                .map_err(|e| WalError::io("stat segment", &path, e))?
                .len();
            let keep = at.max(SEGMENT_HEADER.len() as u64);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| WalError::io("open segment for repair", &path, e))?;
            if at < SEGMENT_HEADER.len() as u64 {
                // Not even a header: rewrite it so the segment is valid and empty.
                use std::io::Write;
                let mut f = &file;
                f.set_len(0)
                    .and_then(|_| f.write_all(&SEGMENT_HEADER))
                    .map_err(|e| WalError::io("repair segment header", &path, e))?;
            } else {
                file.set_len(keep)
                    .map_err(|e| WalError::io("truncate segment", &path, e))?;
            }
            file.sync_all()
                .map_err(|e| WalError::io("sync repaired segment", &path, e))?;
            stats.truncated_bytes = len.saturating_sub(keep);
            let later = &segments[i + 1..];
            for &m in later {
                let p = segment_path(dir, m);
                std::fs::remove_file(&p).map_err(|e| WalError::io("remove segment", &p, e))?;
            }
            stats.removed_segments = later.len();
            tracing::warn!(
                segment = n,
                offset = at,
                reason = %reason,
                truncated_bytes = stats.truncated_bytes,
                removed_segments = later.len(),
                "write-ahead log damaged: kept every record before the damage, dropped the rest"
            );
            break;
        }
    }
    Ok(Ok(stats))
}

fn read_segment<E>(
    path: &Path,
    n: u64,
    stats: &mut ReplayStats,
    each: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
) -> Result<(Stop, Result<(), E>), WalError> {
    let mut file = File::open(path).map_err(|e| WalError::io("open segment", path, e))?;
    let len = file
        .seek(SeekFrom::End(0))
        .and_then(|l| file.seek(SeekFrom::Start(0)).map(|_| l))
        .map_err(|e| WalError::io("seek segment", path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; 8];
    if len < 8 {
        return Ok((
            Stop::Damaged {
                at: 0,
                reason: format!("segment is {len} bytes, shorter than its header"),
            },
            Ok(()),
        ));
    }
    reader
        .read_exact(&mut header)
        .map_err(|e| WalError::io("read segment", path, e))?;
    if header != SEGMENT_HEADER {
        return Ok((
            Stop::Damaged {
                at: 0,
                reason: "segment header is not SWAL version 1".to_string(),
            },
            Ok(()),
        ));
    }
    let mut pos = 8u64;
    let mut payload = Vec::new();
    loop {
        if pos == len {
            return Ok((Stop::End, Ok(())));
        }
        if len - pos < FRAME_BYTES as u64 {
            return Ok((
                Stop::Damaged {
                    at: pos,
                    reason: format!(
                        "{} bytes at the end are not a whole record frame",
                        len - pos
                    ),
                },
                Ok(()),
            ));
        }
        let mut frame = [0u8; FRAME_BYTES];
        reader
            .read_exact(&mut frame)
            .map_err(|e| WalError::io("read segment", path, e))?;
        let size = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let available = len - pos - FRAME_BYTES as u64;
        if size > MAX_RECORD_BYTES || size as u64 > available {
            return Ok((
                Stop::Damaged {
                    at: pos,
                    reason: format!(
                        "a record claims {size} bytes, {available} remain in the segment"
                    ),
                },
                Ok(()),
            ));
        }
        payload.resize(size, 0);
        reader
            .read_exact(&mut payload)
            .map_err(|e| WalError::io("read segment", path, e))?;
        if crc32fast::hash(&payload) != crc {
            return Ok((
                Stop::Damaged {
                    at: pos,
                    reason: "a record fails its checksum".to_string(),
                },
                Ok(()),
            ));
        }
        if let Err(e) = each(n, &payload) {
            return Ok((Stop::End, Err(e)));
        }
        stats.records += 1;
        stats.bytes += size as u64;
        pos += (FRAME_BYTES + size) as u64;
    }
}
