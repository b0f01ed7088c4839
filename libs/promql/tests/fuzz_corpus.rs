//! Replays the `promql` fuzz corpus (`fuzz/corpus/promql/`, grown by
//! `make fuzz`) and the inputs of past crashes (`fuzz/crashes/promql/`, if
//! any) through the fuzz target's check, so `cargo test` keeps every
//! query the fuzzer found interesting passing without cargo-fuzz. See
//! docs/fuzzing.md.

use std::fs;
use std::path::{Path, PathBuf};

use strata_promql::fuzzing::check_query;

#[path = "support/query_gen.rs"]
mod query_gen;

const TARGET: &str = "promql";

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
        let outcome = std::panic::catch_unwind(|| check_query(&data));
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
        files.len() >= 20,
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

/// Real queries: the property tests' seeds and every `eval` of the
/// PromQL test scripts in testdata/.
fn seed_queries() -> Vec<String> {
    let mut out: Vec<String> = query_gen::SEEDS.iter().map(|s| s.to_string()).collect();
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for path in inputs(&testdata) {
        if path.extension().is_some_and(|e| e == "test") {
            let text = fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                if let Some(q) = eval_query(line.trim()) {
                    out.push(q.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The query of `eval[_fail|_warn|...] instant at <t> <query>` or
/// `eval[...] range from <a> to <b> step <s> <query>`.
fn eval_query(line: &str) -> Option<&str> {
    let mut words = line.splitn(2, ' ');
    if !words.next()?.starts_with("eval") {
        return None;
    }
    let rest = words.next()?.trim_start();
    let skip = if rest.starts_with("instant") { 3 } else { 7 };
    let mut rest = rest;
    for _ in 0..skip {
        rest = rest.split_once(' ')?.1.trim_start();
    }
    (!rest.is_empty()).then_some(rest)
}

#[test]
fn seeds_pass() {
    let seeds = seed_queries();
    assert!(seeds.len() > 50, "only {} seed queries", seeds.len());
    for q in &seeds {
        check_query(q.as_bytes());
    }
}

/// Writes the seed queries into the corpus (`make fuzz` runs it before
/// fuzzing; the corpus minimisation afterwards drops the redundant ones).
#[test]
#[ignore = "writes into fuzz/corpus; run by make fuzz"]
fn write_seeds() {
    let dir = fuzz_dir("corpus");
    fs::create_dir_all(&dir).unwrap();
    for (i, q) in seed_queries().iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:03}")), q).unwrap();
    }
}
