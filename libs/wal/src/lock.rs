//! One process per log directory.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::WalError;

/// An exclusive lock on a log directory (`flock` on `<dir>/lock`), held
/// while the value lives. A second process (or a second lock in this one)
/// that tries to take it fails at once instead of interleaving its writes.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, WalError> {
        std::fs::create_dir_all(dir).map_err(|e| WalError::io("create directory", dir, e))?;
        let path = dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| WalError::io("open lock file", &path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock takes a valid open descriptor, which `file` owns
            // for as long as the lock lives.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc != 0 {
                return Err(WalError::Locked {
                    path,
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        Ok(DirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
