//! Token generation and the tokens file.
//!
//! The tokens file lets an instance that restarts (for example after a rollout, with its
//! write-ahead log on a persistent volume) come back with the same tokens, so the series it
//! holds keep hashing to it.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::RingError;

/// Generates `n` random tokens that are unique and absent from `taken`. Returned sorted.
pub fn generate_tokens(n: usize, taken: &HashSet<u32>) -> Vec<u32> {
    let mut rng = rand::rng();
    let mut chosen: HashSet<u32> = HashSet::with_capacity(n);
    while chosen.len() < n {
        let candidate: u32 = rng.random();
        if taken.contains(&candidate) {
            continue;
        }
        chosen.insert(candidate);
    }
    let mut tokens: Vec<u32> = chosen.into_iter().collect();
    tokens.sort_unstable();
    tokens
}

/// On-disk layout of the tokens file: `{"tokens":[1,2,3]}`.
#[derive(Debug, Serialize, Deserialize)]
struct TokensFile {
    tokens: Vec<u32>,
}

/// Reads a tokens file written by [`save_tokens`].
///
/// Returns `Ok(None)` when the file does not exist. The tokens come back sorted and
/// de-duplicated. This does blocking file I/O: from async code call it through
/// `tokio::task::spawn_blocking`.
pub fn load_tokens(path: &Path) -> Result<Option<Vec<u32>>, RingError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(tokens_file_error(path, err)),
    };
    let file: TokensFile = serde_json::from_slice(&bytes)?;
    let mut tokens = file.tokens;
    tokens.sort_unstable();
    tokens.dedup();
    Ok(Some(tokens))
}

/// Writes the tokens file atomically: the JSON goes to a temporary file in the same
/// directory, which is synced and then renamed over `path`. A crash leaves either the old
/// or the new file, never a torn one. Creates the parent directory if needed.
///
/// Blocking file I/O, see [`load_tokens`].
pub fn save_tokens(path: &Path, tokens: &[u32]) -> Result<(), RingError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|err| tokens_file_error(path, err))?;

    let body = serde_json::to_vec(&TokensFile {
        tokens: tokens.to_vec(),
    })?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tokens".to_string());
    let suffix: u32 = rand::rng().random();
    let tmp_path = dir.join(format!(
        ".{file_name}.{}.{suffix:08x}.tmp",
        std::process::id()
    ));

    let write_result = (|| {
        let mut file = std::fs::File::create(&tmp_path)?;
        file.write_all(&body)?;
        file.sync_all()?;
        std::fs::rename(&tmp_path, path)?;
        // Make the rename itself durable; failure to sync a directory is not fatal on
        // platforms that do not support it.
        if let Ok(dir_handle) = std::fs::File::open(&dir) {
            let _ = dir_handle.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    if let Err(err) = write_result {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(tokens_file_error(path, err));
    }
    Ok(())
}

fn tokens_file_error(path: &Path, source: std::io::Error) -> RingError {
    RingError::TokensFile {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_unique_sorted_and_avoid_taken() {
        let taken: HashSet<u32> = generate_tokens(1000, &HashSet::new()).into_iter().collect();
        let tokens = generate_tokens(500, &taken);
        assert_eq!(tokens.len(), 500);
        assert!(tokens.windows(2).all(|w| w[0] < w[1]));
        assert!(tokens.iter().all(|t| !taken.contains(t)));
    }

    #[test]
    fn tokens_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("tokens.json");
        assert_eq!(load_tokens(&path).unwrap(), None);
        save_tokens(&path, &[30, 10, 20]).unwrap();
        assert_eq!(load_tokens(&path).unwrap(), Some(vec![10, 20, 30]));
        save_tokens(&path, &[5]).unwrap();
        assert_eq!(load_tokens(&path).unwrap(), Some(vec![5]));
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn corrupt_tokens_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            load_tokens(&path),
            Err(RingError::Serialization(_))
        ));
    }
}
