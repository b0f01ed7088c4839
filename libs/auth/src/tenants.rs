//! The tenants file: every tenant's API tokens, as salted hashes.
//!
//! ```yaml
//! tenants:
//!   team-a:
//!     - id: 4f1c2a9b7e3d
//!       salt: 9a0c…            # 16 random bytes, hex
//!       hash: e3b0…            # SHA-256(salt ‖ token), hex
//!       created: 2026-01-02T03:04:05Z
//! ```
//!
//! Writers (the admin API, `strata-admin`) hold an exclusive `flock` on
//! `<file>.lock` while they read, change and replace the file, and replace
//! it atomically (a temporary file in the same directory, fsynced, then
//! renamed over it), so readers only ever see a whole old or a whole new
//! version.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::secret::{self, SaltedHash};

const HEADER: &str =
    "# Strata tenants file: API tokens as salted SHA-256 hashes, never the tokens.\n\
# Managed by `strata-admin tokens ...` or the admin API; see docs/auth.md.\n";

/// The file as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    #[serde(default)]
    pub tenants: BTreeMap<String, Vec<TokenRecord>>,
}

/// One token of a tenant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub id: String,
    /// Hex.
    pub salt: String,
    /// Hex of SHA-256(salt ‖ token).
    pub hash: String,
    /// RFC 3339, UTC.
    pub created: String,
}

/// A token just created: the plaintext exists only here.
#[derive(Clone, Debug, Serialize)]
pub struct NewToken {
    pub tenant: String,
    pub id: String,
    pub token: String,
    pub created: String,
}

/// A token as the verifier keeps it.
#[derive(Debug)]
pub struct StoredToken {
    pub tenant: Arc<str>,
    pub hash: SaltedHash,
}

/// A checked tenants file, indexed for verification.
#[derive(Debug, Default)]
pub struct Tenants {
    /// Token id → tenant and hash (ids are unique across the file).
    by_id: HashMap<String, StoredToken>,
    /// Tenant → its number of tokens.
    tenants: HashMap<Arc<str>, usize>,
}

impl Tenants {
    pub fn token(&self, id: &str) -> Option<&StoredToken> {
        self.by_id.get(id)
    }

    pub fn is_known(&self, tenant: &str) -> bool {
        self.tenants.contains_key(tenant)
    }

    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    pub fn token_count(&self) -> usize {
        self.by_id.len()
    }
}

#[derive(Debug, Error)]
pub enum FileError {
    #[error("cannot read tenants file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write tenants file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tenants file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Why a change to the file was not made.
#[derive(Debug, Error)]
pub enum UpdateError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
}

impl TenantsFile {
    /// Parses and checks the file's text; blank text is a file without
    /// tenants.
    pub fn parse(text: &str) -> Result<(TenantsFile, Tenants), String> {
        let file: TenantsFile = if text.trim().is_empty() {
            TenantsFile::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| e.to_string())?
        };
        let tenants = file.index()?;
        Ok((file, tenants))
    }

    /// Checks every entry and indexes the tokens by id.
    pub fn index(&self) -> Result<Tenants, String> {
        let mut out = Tenants::default();
        for (tenant, tokens) in &self.tenants {
            strata_model::validate_tenant_id(tenant)
                .map_err(|e| format!("tenant {tenant:?}: {e}"))?;
            let name: Arc<str> = Arc::from(tenant.as_str());
            for t in tokens {
                if !secret::valid_token_id(&t.id) {
                    return Err(format!(
                        "tenant {tenant:?}: token id {:?} is not 1 to 64 letters, digits or dashes",
                        t.id
                    ));
                }
                let hash = SaltedHash::from_hex(&t.salt, &t.hash)
                    .map_err(|e| format!("tenant {tenant:?}, token {}: {e}", t.id))?;
                let stored = StoredToken {
                    tenant: name.clone(),
                    hash,
                };
                if let Some(other) = out.by_id.insert(t.id.clone(), stored) {
                    return Err(format!(
                        "token id {} appears twice (tenants {:?} and {tenant:?})",
                        t.id, other.tenant
                    ));
                }
            }
            out.tenants.insert(name, tokens.len());
        }
        Ok(out)
    }

    /// The file's text, with a header comment.
    pub fn to_yaml(&self) -> String {
        let body = serde_yaml::to_string(self).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Adds a fresh token for `tenant` (created when new).
    pub fn create_token(&mut self, tenant: &str) -> Result<NewToken, UpdateError> {
        strata_model::validate_tenant_id(tenant)
            .map_err(|e| UpdateError::BadRequest(format!("invalid tenant ID {tenant:?}: {e}")))?;
        let taken: std::collections::HashSet<&str> = self
            .tenants
            .values()
            .flatten()
            .map(|t| t.id.as_str())
            .collect();
        let id = loop {
            let id = secret::new_token_id();
            if !taken.contains(id.as_str()) {
                break id;
            }
        };
        let token = secret::new_tenant_token(&id);
        let hash = SaltedHash::new(&token);
        let created = now_rfc3339();
        self.tenants
            .entry(tenant.to_string())
            .or_default()
            .push(TokenRecord {
                id: id.clone(),
                salt: hash.salt_hex(),
                hash: hash.hash_hex(),
                created: created.clone(),
            });
        Ok(NewToken {
            tenant: tenant.to_string(),
            id,
            token,
            created,
        })
    }

    /// Removes `tenant`'s token `id`; a tenant left without tokens is
    /// removed too.
    pub fn revoke_token(&mut self, tenant: &str, id: &str) -> Result<(), UpdateError> {
        let not_found = || UpdateError::NotFound(format!("tenant {tenant:?} has no token {id:?}"));
        let tokens = self.tenants.get_mut(tenant).ok_or_else(not_found)?;
        let before = tokens.len();
        tokens.retain(|t| t.id != id);
        if tokens.len() == before {
            return Err(not_found());
        }
        if tokens.is_empty() {
            self.tenants.remove(tenant);
        }
        Ok(())
    }
}

pub fn now_rfc3339() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Reads the file; `None` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(FileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parses file bytes as read by [`read`].
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<(TenantsFile, Tenants), FileError> {
    let invalid = |reason: String| FileError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    TenantsFile::parse(text).map_err(invalid)
}

/// Reads and parses the file; a missing file has no tenants.
pub fn load(path: &Path) -> Result<TenantsFile, FileError> {
    match read(path)? {
        Some(bytes) => Ok(parse_bytes(path, &bytes)?.0),
        None => Ok(TenantsFile::default()),
    }
}

/// Changes the file under its lock: reads it (a missing file has no
/// tenants), applies `change`, and replaces it atomically. Returns what
/// `change` returned and the new file. Blocking.
pub fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut TenantsFile) -> Result<T, UpdateError>,
) -> Result<(T, TenantsFile), UpdateError> {
    let _lock = lock(path)?;
    let mut file = load(path)?;
    let out = change(&mut file)?;
    file.index().map_err(|reason| FileError::Invalid {
        path: path.to_path_buf(),
        reason,
    })?;
    write_atomically(path, file.to_yaml().as_bytes())?;
    Ok((out, file))
}

/// An exclusive advisory lock on `<path>.lock`, released when dropped.
fn lock(path: &Path) -> Result<File, FileError> {
    let mut lock_path = OsString::from(path.as_os_str());
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let write_error = |source| FileError::Write {
        path: lock_path.clone(),
        source,
    };
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(write_error)?;
    // SAFETY: flock on a descriptor this function owns; it is released
    // when the descriptor is closed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(write_error(std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// Replaces `path` with `contents`: a temporary file in the same directory
/// (same permissions as the file it replaces, 0600 for a new one), fsynced,
/// renamed over it, then the directory fsynced.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let write_error = |source| FileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| write_error(std::io::Error::other("the path names no file")))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        secret::new_token_id()
    ));
    let tmp = dir.join(tmp_name);
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_verify_and_revoked_ones_go() {
        let mut f = TenantsFile::default();
        let a1 = f.create_token("alpha").unwrap();
        let a2 = f.create_token("alpha").unwrap();
        let b = f.create_token("beta").unwrap();
        assert_ne!(a1.id, a2.id);
        let text = f.to_yaml();
        assert!(!text.contains(&a1.token), "plaintext never stored");
        assert!(
            !text.contains(&a1.token[20..]),
            "no part of the secret stored"
        );
        let (back, tenants) = TenantsFile::parse(&text).unwrap();
        assert_eq!(back, f);
        assert_eq!(tenants.tenant_count(), 2);
        assert_eq!(tenants.token_count(), 3);
        let stored = tenants.token(&a2.id).unwrap();
        assert_eq!(&*stored.tenant, "alpha");
        assert!(stored.hash.verify(&a2.token));
        assert!(!stored.hash.verify(&a1.token));
        assert!(tenants.token(&b.id).unwrap().hash.verify(&b.token));

        f.revoke_token("alpha", &a1.id).unwrap();
        assert!(matches!(
            f.revoke_token("alpha", &a1.id),
            Err(UpdateError::NotFound(_))
        ));
        assert!(matches!(
            f.revoke_token("beta", &a2.id),
            Err(UpdateError::NotFound(_))
        ));
        f.revoke_token("beta", &b.id).unwrap();
        assert!(
            !f.tenants.contains_key("beta"),
            "a tenant without tokens goes"
        );
        assert!(matches!(
            f.create_token("no/slash"),
            Err(UpdateError::BadRequest(_))
        ));
    }

    #[test]
    fn broken_files_are_refused_with_a_reason() {
        let mut f = TenantsFile::default();
        let a = f.create_token("alpha").unwrap();
        let good = f.to_yaml();
        let rec = &f.tenants["alpha"][0];
        let cases = [
            ("tenants: [", "expected a map"),
            ("tenants:\n  alpha:\n    - id: x\n", "missing field"),
            ("tenant: {}\n", "unknown field"),
            (
                &good.replace("alpha", "al/pha") as &str,
                "tenant \"al/pha\"",
            ),
            (&good.replace(&rec.salt, "00ff"), "salt has 2 bytes"),
            (&good.replace(&rec.hash, "zz"), "hash is not hex"),
            (&good.replace(&a.id, "a_b"), "token id"),
        ];
        for (text, want) in cases {
            let err = TenantsFile::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}\n→ {err} (want {want:?})");
        }
        let twice = format!(
            "{good}  beta:\n    - id: {}\n      salt: {}\n      hash: {}\n      created: x\n",
            a.id, rec.salt, rec.hash
        );
        assert!(TenantsFile::parse(&twice)
            .unwrap_err()
            .contains("appears twice"));
        assert_eq!(TenantsFile::parse("").unwrap().1.tenant_count(), 0);
        assert_eq!(
            TenantsFile::parse("# nothing\n").unwrap().1.tenant_count(),
            0
        );
        assert_eq!(
            TenantsFile::parse("tenants: {}\n").unwrap().1.token_count(),
            0
        );
    }

    #[test]
    fn updates_replace_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.yaml");
        assert_eq!(load(&path).unwrap(), TenantsFile::default());
        let (new, file) = update(&path, |f| f.create_token("alpha")).unwrap();
        assert_eq!(load(&path).unwrap(), file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (_, file) = update(&path, |f| f.create_token("beta")).unwrap();
        assert_eq!(file.tenants.len(), 2);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the permissions of the replaced file are kept");
        let err = update(&path, |f| f.revoke_token("alpha", "nope")).unwrap_err();
        assert!(matches!(err, UpdateError::NotFound(_)));
        update(&path, |f| f.revoke_token("alpha", &new.id)).unwrap();
        assert_eq!(
            load(&path).unwrap().tenants.keys().collect::<Vec<_>>(),
            ["beta"]
        );
        // No temporary files left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        // A broken file is not overwritten.
        std::fs::write(&path, "tenants: [").unwrap();
        assert!(matches!(
            update(&path, |f| f.create_token("alpha")),
            Err(UpdateError::File(FileError::Invalid { .. }))
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "tenants: [");
    }

    #[test]
    fn concurrent_writers_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.yaml");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        update(&path, |f| f.create_token(&format!("t{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (_, tenants) = parse_bytes(&path, &std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(tenants.token_count(), 40);
    }
}
