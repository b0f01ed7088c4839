//! Runs the scripted PromQL tests: our own (`testdata/*.test`, all must
//! pass) and Prometheus's reference suite (float-only cases must pass
//! unless listed in `testdata/known-failures.txt`).
//!
//! `PROMQL_COMPAT_REPORT=1` writes `docs/promql-compatibility.md`;
//! `PROMQL_UPDATE_KNOWN_FAILURES=1` rewrites the known-failures list;
//! `PROMQL_PRINT_FAILURES=1` prints every failing case of every class.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use strata_promql::promqltest::{render_report, run_dir, summarize_results, CaseClass};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn own_scripts_pass() {
    let results = run_dir(&manifest_dir().join("testdata")).expect("read testdata");
    assert!(!results.is_empty(), "no test cases found in testdata");
    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| {
            format!(
                "{} `{}`: {}",
                r.id(),
                r.query,
                r.failure.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

fn read_known_failures(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn prometheus_reference_suite() {
    let dir = manifest_dir().join("../../../shared/reference/promql-testdata");
    if !dir.is_dir() {
        println!("skipping: reference tests not found at {}", dir.display());
        return;
    }
    let results = run_dir(&dir).expect("read reference tests");
    for (file, classes) in summarize_results(&results) {
        let cells: Vec<String> = classes
            .iter()
            .map(|(c, (p, t))| format!("{} {p}/{t}", c.as_str()))
            .collect();
        println!("{file}: {}", cells.join(", "));
    }
    if std::env::var("PROMQL_PRINT_FAILURES").is_ok_and(|v| v == "1") {
        for r in results.iter().filter(|r| !r.passed()) {
            println!(
                "FAIL [{}] {} `{}`: {}",
                r.class.as_str(),
                r.id(),
                r.query,
                r.failure.as_deref().unwrap_or("")
            );
        }
    }
    let known_path = manifest_dir().join("testdata/known-failures.txt");
    let known = read_known_failures(&known_path);
    let failing: Vec<_> = results
        .iter()
        .filter(|r| r.class == CaseClass::FloatOnly && !r.passed())
        .collect();
    if std::env::var("PROMQL_UPDATE_KNOWN_FAILURES").is_ok_and(|v| v == "1") {
        let mut text = String::from(
            "# Float-only cases of Prometheus's PromQL test suite that fail today (file:line).\n\
             # Regenerate with PROMQL_UPDATE_KNOWN_FAILURES=1 cargo test -p strata-promql --test promqltest\n",
        );
        for r in &failing {
            let reason: String = r
                .failure
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(120)
                .collect();
            text.push_str(&format!("{}  # {}\n", r.id(), reason.replace('\n', " ")));
        }
        std::fs::write(&known_path, text).expect("write known failures");
        return;
    }
    if std::env::var("PROMQL_COMPAT_REPORT").is_ok_and(|v| v == "1") {
        let doc = manifest_dir().join("../../docs/promql-compatibility.md");
        std::fs::write(&doc, render_report(&results)).expect("write compatibility report");
        println!("wrote {}", doc.display());
    }
    let now_passing: Vec<&String> = known
        .iter()
        .filter(|id| results.iter().any(|r| &r.id() == *id && r.passed()))
        .collect();
    if !now_passing.is_empty() {
        println!("known failures that now pass (remove them from known-failures.txt):");
        for id in now_passing {
            println!("  {id}");
        }
    }
    let regressions: Vec<String> = failing
        .iter()
        .filter(|r| !known.contains(&r.id()))
        .map(|r| {
            format!(
                "{} `{}`: {}",
                r.id(),
                r.query,
                r.failure.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        regressions.is_empty(),
        "float-only cases failing that are not in known-failures.txt:\n{}",
        regressions.join("\n")
    );
}
