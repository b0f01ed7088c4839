//! Replays the `remote_write` fuzz corpus (`fuzz/corpus/remote_write/`,
//! grown by `make fuzz`) and the inputs of past crashes
//! (`fuzz/crashes/remote_write/`, if any) through the fuzz target's
//! check, so `cargo test` keeps every input the fuzzer found interesting
//! passing without cargo-fuzz. See docs/fuzzing.md.

use std::fs;
use std::path::{Path, PathBuf};

use strata_remote_write::fuzzing::{check_remote_write, seed_inputs};

const TARGET: &str = "remote_write";

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(TARGET)
}

/// Every regular file under `dir`, sorted (empty if `dir` is missing).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("read corpus entry").path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn replay(files: &[PathBuf]) {
    for path in files {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check_remote_write(&data));
        if outcome.is_err() {
            panic!("fuzz input {} fails the check (above)", path.display());
        }
    }
}

#[test]
fn corpus_passes() {
    let dir = fuzz_dir("corpus");
    let files = inputs(&dir);
    assert!(
        files.len() >= 5,
        "{} is missing or holds {} inputs: the corpus must be committed (make fuzz grows it)",
        dir.display(),
        files.len()
    );
    replay(&files);
}

#[test]
fn crashes_pass() {
    replay(&inputs(&fuzz_dir("crashes")));
}

#[test]
fn seeds_pass() {
    for (_, data) in seed_inputs() {
        check_remote_write(&data);
    }
}

/// Writes the seed inputs into the corpus (`make fuzz` runs it before
/// fuzzing; the corpus minimisation afterwards drops the redundant ones).
#[test]
#[ignore = "writes into fuzz/corpus; run by make fuzz"]
fn write_seeds() {
    let dir = fuzz_dir("corpus");
    fs::create_dir_all(&dir).unwrap();
    for (name, data) in seed_inputs() {
        fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}
