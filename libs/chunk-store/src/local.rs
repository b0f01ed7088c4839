//! [`ObjectStore`] in a directory of the local filesystem.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::error::StoreError;
use crate::store::{validate_key, ObjectStore};

/// Numbers temporary files, unique within the process (the file name adds the process ID).
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Temporary files older than this are left over from a crash and removed at start.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Objects as files under a directory: key `a/b/c` is the file `<dir>/objects/a/b/c`.
///
/// A put writes `<dir>/tmp/<unique>`, fsyncs it, renames it into place and fsyncs the
/// directory, so an object is either wholly there or not at all, also after a crash. Keys
/// with `..`, `.` or empty segments, or a leading `/`, are refused. File IO runs on tokio's
/// blocking pool.
#[derive(Debug, Clone)]
pub struct LocalObjectStore {
    inner: Arc<Dirs>,
}

#[derive(Debug)]
struct Dirs {
    objects: PathBuf,
    tmp: PathBuf,
}

impl LocalObjectStore {
    /// Opens (creating if needed) the store in `dir`, removing temporary files a crashed
    /// writer left behind.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let objects = dir.join("objects");
        let tmp = dir.join("tmp");
        for d in [&objects, &tmp] {
            fs::create_dir_all(d).map_err(|e| StoreError::io("create directory", d, e))?;
        }
        remove_stale_temps(&tmp);
        Ok(Self {
            inner: Arc::new(Dirs { objects, tmp }),
        })
    }

    /// The directory objects live in.
    pub fn objects_dir(&self) -> &Path {
        &self.inner.objects
    }

    async fn blocking<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Dirs) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let dirs = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&dirs))
            .await
            .map_err(|e| StoreError::io(operation, &self.inner.objects, io::Error::other(e)))?
    }
}

fn remove_stale_temps(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if stale {
            if let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove stale temporary file");
            }
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync directory", dir, e))
}

/// Creates the directories from `root` down to `dir` (which lies under `root`), fsyncing the
/// parent of each directory created.
fn create_dirs(root: &Path, dir: &Path) -> Result<(), StoreError> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Ok(());
    };
    let mut current = root.to_path_buf();
    for part in rel.components() {
        let next = current.join(part);
        match fs::create_dir(&next) {
            Ok(()) => sync_dir(&current)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io("create directory", &next, e)),
        }
        current = next;
    }
    Ok(())
}

/// Opens the object file, mapping a missing file (or a directory) to NotFound.
fn open_object(key: &str, path: &Path) -> Result<(File, u64), StoreError> {
    let not_found = || StoreError::NotFound {
        key: key.to_string(),
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(not_found())
        }
        Err(e) => return Err(StoreError::io("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| StoreError::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(not_found());
    }
    Ok((file, meta.len()))
}

fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(())
        }
        Err(e) => return Err(StoreError::io("list directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list directory", dir, e))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| StoreError::io("stat", &path, e))?;
        let Some(key) = path
            .strip_prefix(root)
            .ok()
            .and_then(|rel| rel.to_str())
            .map(|rel| rel.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            continue;
        };
        if file_type.is_dir() {
            // Only descend where keys can still start with the prefix.
            let dir_key = format!("{key}/");
            if dir_key.starts_with(prefix) || prefix.starts_with(&dir_key) {
                walk(root, &path, prefix, out)?;
            }
        } else if file_type.is_file() && key.starts_with(prefix) {
            out.push(key);
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking("put", move |dirs| {
            let path = dirs.objects.join(&key);
            let parent = path.parent().unwrap_or(&dirs.objects).to_path_buf();
            create_dirs(&dirs.objects, &parent)?;
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let temp = dirs.tmp.join(format!("{}-{n}", std::process::id()));
            let written = File::create(&temp).and_then(|mut f| {
                f.write_all(&body)?;
                f.sync_all()
            });
            if let Err(e) = written {
                let _ = fs::remove_file(&temp);
                return Err(StoreError::io("write", &temp, e));
            }
            if let Err(e) = fs::rename(&temp, &path) {
                let _ = fs::remove_file(&temp);
                return Err(StoreError::io("rename into place", &path, e));
            }
            sync_dir(&parent)
        })
        .await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking("read", move |dirs| {
            let path = dirs.objects.join(&key);
            let (mut file, size) = open_object(&key, &path)?;
            let available = size.saturating_sub(offset).min(len);
            let mut buf = Vec::with_capacity(usize::try_from(available).unwrap_or(0));
            if available > 0 {
                file.seek(SeekFrom::Start(offset))
                    .and_then(|_| file.take(available).read_to_end(&mut buf))
                    .map_err(|e| StoreError::io("read", &path, e))?;
            }
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn get_tail(&self, key: &str, len: u64) -> Result<Bytes, StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking("read", move |dirs| {
            let path = dirs.objects.join(&key);
            let (mut file, size) = open_object(&key, &path)?;
            let start = size.saturating_sub(len);
            let mut buf = Vec::with_capacity(usize::try_from(size - start).unwrap_or(0));
            file.seek(SeekFrom::Start(start))
                .and_then(|_| file.take(size - start).read_to_end(&mut buf))
                .map_err(|e| StoreError::io("read", &path, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking("read", move |dirs| {
            let path = dirs.objects.join(&key);
            let (mut file, size) = open_object(&key, &path)?;
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut buf)
                .map_err(|e| StoreError::io("read", &path, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // The directory part of the prefix must be a valid key path too.
        if let Some((dir, _)) = prefix.rsplit_once('/') {
            validate_key(dir)?;
        } else if prefix.contains('\\') || prefix.contains('\0') {
            validate_key(prefix)?;
        }
        let prefix = prefix.to_string();
        self.blocking("list", move |dirs| {
            let start = match prefix.rsplit_once('/') {
                Some((dir, _)) => dirs.objects.join(dir),
                None => dirs.objects.clone(),
            };
            let mut keys = Vec::new();
            walk(&dirs.objects, &start, &prefix, &mut keys)?;
            keys.sort();
            Ok(keys)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        self.blocking("delete", move |dirs| {
            let path = dirs.objects.join(&key);
            match fs::remove_file(&path) {
                Ok(()) => {
                    let parent = path.parent().unwrap_or(&dirs.objects);
                    sync_dir(parent)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound
                            | io::ErrorKind::NotADirectory
                            | io::ErrorKind::IsADirectory
                    ) =>
                {
                    Ok(())
                }
                Err(e) => Err(StoreError::io("delete", &path, e)),
            }
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}
