//! Rule-file corpus checked against our parser and `promtool check rules`.
//!
//! Every file's first line states what we must do with it: `# expect: ok`
//! or `# expect: error <text our error message contains>`.
//!
//! * `tests/corpus/`: our verdict must also be promtool's (Prometheus 2.42,
//!   exit code 0 = accepted). promtool comes from `$PROMTOOL`, else `PATH`;
//!   without it the test fails (it is the reference, so never skipped).
//! * `tests/corpus-newer/`: files using `query_offset`, which Prometheus
//!   added in 2.53 and our product honours; promtool 2.42 rejects the field
//!   as unknown, so these are checked against our parser only.
//! * `tests/corpus-divergent/`: where we refuse on purpose what promtool
//!   2.42 accepts (see its README); promtool must still disagree, so a
//!   change on either side shows up here.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Ok,
    Error(String),
}

fn corpus(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn expectation(path: &Path, text: &str) -> Expect {
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .next()
        .unwrap_or("");
    let rest = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: first line must be `# expect: ...`", path.display()));
    if rest == "ok" {
        Expect::Ok
    } else if let Some(substring) = rest.strip_prefix("error ") {
        Expect::Error(substring.to_string())
    } else {
        panic!("{}: cannot read expectation {rest:?}", path.display())
    }
}

/// Checks our parser against the file's expectation; returns whether we
/// accepted the file.
fn check_ours(path: &Path) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let want = expectation(path, &text);
    let got = strata_rulefmt::parse_rule_file(&text);
    match (&want, &got) {
        (Expect::Ok, Ok(file)) => {
            // Whatever we accept must survive a trip through our YAML.
            let again = strata_rulefmt::parse_rule_file(&file.to_yaml())
                .map_err(|e| format!("{}: re-parsing our output: {e}", path.display()))?;
            if &again != file {
                return Err(format!("{}: round trip changed the file", path.display()));
            }
            Ok(true)
        }
        (Expect::Error(substring), Err(errors)) => {
            let message = errors.to_string();
            if message.contains(substring.as_str()) {
                Ok(false)
            } else {
                Err(format!(
                    "{}: error message does not contain {substring:?}:\n{message}",
                    path.display()
                ))
            }
        }
        (Expect::Ok, Err(errors)) => Err(format!(
            "{}: expected ok, got errors:\n{errors}",
            path.display()
        )),
        (Expect::Error(substring), Ok(_)) => Err(format!(
            "{}: expected an error containing {substring:?}, but it was accepted",
            path.display()
        )),
    }
}

fn promtool() -> String {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => bin,
        Ok(out) => panic!(
            "`{bin} --version` failed ({}); these tests need Prometheus's promtool \
             (Debian: apt-get install prometheus, or set PROMTOOL=/path/to/promtool)\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run promtool as `{bin}`: {e}; these tests need Prometheus's promtool 2.42 \
             (Debian: apt-get install prometheus, or set PROMTOOL=/path/to/promtool)"
        ),
    }
}

/// promtool's verdict (exit 0 = accepted) and its output.
fn promtool_accepts(bin: &str, path: &Path) -> (bool, String) {
    let out = Command::new(bin)
        .args(["check", "rules"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn corpus_matches_promtool() {
    let bin = promtool();
    let files = corpus("corpus");
    assert!(files.len() >= 30, "only {} corpus files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let ours = match check_ours(path) {
            Ok(accepted) => accepted,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let (theirs, output) = promtool_accepts(&bin, path);
        if ours != theirs {
            failures.push(format!(
                "{}: we {}, promtool {}:\n{output}",
                path.display(),
                if ours { "accept" } else { "reject" },
                if theirs { "accepts" } else { "rejects" },
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn newer_corpus_matches_expectations() {
    // Only our parser: promtool 2.42 does not know `query_offset`.
    let files = corpus("corpus-newer");
    assert!(!files.is_empty());
    let failures: Vec<String> = files.iter().filter_map(|p| check_ours(p).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn divergent_corpus_still_diverges() {
    let bin = promtool();
    let files = corpus("corpus-divergent");
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for path in &files {
        match check_ours(path) {
            Ok(ours) => {
                let (theirs, output) = promtool_accepts(&bin, path);
                if ours == theirs {
                    failures.push(format!(
                        "{}: promtool now agrees with us; move the file to tests/corpus\n{output}",
                        path.display()
                    ));
                }
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
