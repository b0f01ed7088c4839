//! Runs the scripted PromQL tests: our own (`testdata/*.test`, all must
//! pass) and Prometheus's reference suite (float-only cases must pass
//! unless listed in `testdata/known-failures.txt`).
//!
//! `PROMQL_COMPAT_REPORT=1` writes `docs/promql-compatibility.md` (keeping
//! its hand-kept sections);
//! `PROMQL_UPDATE_KNOWN_FAILURES=1` rewrites the known-failures list;
//! `PROMQL_PRINT_FAILURES=1` prints every failing case of every class.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use strata_promql::promqltest::{
    render_report, run_dir, run_dir_differential, run_script, summarize_results, with_hand_kept,
    CaseClass, CaseResult,
};

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
                "FAIL [{}: {}] {} `{}`: {}",
                r.class.as_str(),
                r.class_reason,
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
        let existing = std::fs::read_to_string(&doc).unwrap_or_default();
        let text = with_hand_kept(&render_report(&results), &existing);
        std::fs::write(&doc, text).expect("write compatibility report");
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

fn case(results: &[CaseResult], line: usize) -> &CaseResult {
    results
        .iter()
        .find(|r| r.line == line)
        .unwrap_or_else(|| panic!("no case at line {line}: {results:?}"))
}

/// Cases are classified by the syntax they use, not by whether
/// promql-parser parses them: experimental and native-histogram syntax is
/// recognised in the text, and a stable query the parser rejects stays
/// float-only (so a parser gap would fail the float-only count).
#[test]
fn classification_follows_the_syntax_used() {
    let script = "\
load 1m
  foo{a=\"b\"} 1 2 3
  hist {{schema:0 sum:1 count:1}}x2

eval instant at 2m rate(foo)
  expect fail msg: 1:6: parse error: expected type range vector in call to function \"rate\", got instant vector

eval instant at 2m foo bar
  foo 1

eval instant at 2m increase(foo[2m] anchored)
  {a=\"b\"} 2

eval instant at 2m foo offset (1m + 1m)
  foo{a=\"b\"} 1

eval instant at 2m count_over_time(foo[step()*2])
  {a=\"b\"} 2

eval instant at 2m foo >/ 1
  foo{a=\"b\"} 3

eval instant at 2m info(foo, {x=~\".*\"})
  foo{a=\"b\"} 3

eval instant at 2m limitk(1, foo)
  foo{a=\"b\"} 3

eval instant at 2m foo + fill(0) foo
  {a=\"b\"} 6

eval instant at 2m sort_by_label(foo, \"a\")
  foo{a=\"b\"} 3

eval instant at 2m foo{a!=\"anchored\"}
  foo{a=\"b\"} 3

eval instant at 2m hist
  hist {{schema:0 sum:1 count:1}}

eval instant at 2m count(hist)
  {} 1

eval instant at 2m foo @ 60
  foo{a=\"b\"} 2
";
    let results = run_script("classes.test", script);
    let expect = |line: usize, class: CaseClass, reason: &str, passed: bool| {
        let r = case(&results, line);
        assert_eq!(r.class, class, "line {line}: {r:?}");
        assert!(
            r.class_reason.contains(reason),
            "line {line}: reason {:?} lacks {reason:?}",
            r.class_reason
        );
        assert_eq!(r.passed(), passed, "line {line}: {r:?}");
    };
    // Stable syntax: float-only, whether it parses or not.
    expect(5, CaseClass::FloatOnly, "", true);
    expect(8, CaseClass::FloatOnly, "", false);
    expect(44, CaseClass::FloatOnly, "", true);
    // A label value that looks like a keyword is not syntax.
    expect(35, CaseClass::FloatOnly, "", true);
    expect(11, CaseClass::Experimental, "anchored", false);
    expect(14, CaseClass::Experimental, "duration expressions", false);
    expect(17, CaseClass::Experimental, "duration expressions", false);
    expect(20, CaseClass::NativeHistogram, "trim operators", false);
    expect(23, CaseClass::Experimental, "`info`", false);
    expect(26, CaseClass::Experimental, "limitk", true);
    expect(29, CaseClass::Experimental, "fill", false);
    expect(32, CaseClass::Experimental, "sort_by_label", true);
    expect(
        38,
        CaseClass::NativeHistogram,
        "expects a native histogram",
        false,
    );
    expect(41, CaseClass::NativeHistogram, "reads series", false);
}

/// The report lists every non-passing case of every class, grouped by
/// reason, with per-file counts and lines.
#[test]
fn report_lists_every_non_passing_case_by_reason() {
    let mk = |file: &str, line: usize, class: CaseClass, reason: &str, failure: Option<&str>| {
        CaseResult {
            file: file.into(),
            line,
            query: "q".into(),
            class,
            class_reason: reason.into(),
            failure: failure.map(String::from),
        }
    };
    let nh = "expects a native histogram in the result";
    let results = vec![
        mk("a.test", 3, CaseClass::FloatOnly, "", None),
        mk(
            "a.test",
            5,
            CaseClass::NativeHistogram,
            nh,
            Some("expected 2 series, got 0: "),
        ),
        mk(
            "a.test",
            9,
            CaseClass::NativeHistogram,
            nh,
            Some("expected 1 series, got 0: "),
        ),
        mk(
            "b.test",
            7,
            CaseClass::NativeHistogram,
            nh,
            Some("expected 1 series, got 3: "),
        ),
        mk("b.test", 8, CaseClass::NativeHistogram, nh, None),
        mk(
            "b.test",
            12,
            CaseClass::Experimental,
            "duration expressions",
            Some("unexpected error: 1:3: parse error: unexpected \"(\""),
        ),
        mk(
            "b.test",
            14,
            CaseClass::FloatOnly,
            "",
            Some("expected 1 series, got 0: "),
        ),
    ];
    let report = render_report(&results);
    assert!(
        report.contains(
            "- **expects a native histogram in the result — different result**: 3\n  \
             - a.test (2): 5, 9\n  - b.test (1): 7\n"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "- **duration expressions — promql-parser cannot parse the query**: 1\n  \
             - b.test (1): 12\n"
        ),
        "{report}"
    );
    assert!(
        report.contains("- `b.test:14` `q`: expected 1 series"),
        "{report}"
    );
    assert!(report.contains("| b.test | 0/1 | 1/2 | 0/1 |"), "{report}");
    // Regenerating keeps the hand-kept part.
    let doc = with_hand_kept(&report, "old\n\n<!-- Hand-kept from here on: PROMQL_COMPAT_REPORT=1 regenerates only what is above. -->\n## Mine\n");
    assert!(doc.starts_with("# PromQL compatibility"), "{doc}");
    assert!(
        doc.ends_with("regenerates only what is above. -->\n## Mine\n"),
        "{doc}"
    );
    assert!(!doc.contains("old"), "{doc}");
}

/// Splitting work over threads changes nothing: every query of our scripts
/// and of Prometheus's suite, evaluated with every split-able piece of work
/// split (into 2 and 3 parts, whatever its size), gives the same answer bit
/// for bit (values, order, annotations, errors) as serial evaluation, and
/// passes the same cases.
#[test]
fn split_evaluation_matches_serial() {
    let mut dirs = vec![manifest_dir().join("testdata")];
    let reference = manifest_dir().join("../../../shared/reference/promql-testdata");
    if reference.is_dir() {
        dirs.push(reference);
    }
    for dir in dirs {
        let serial = run_dir(&dir).expect("read tests");
        for parts in [2, 3] {
            let (results, differences) = run_dir_differential(&dir, parts).expect("read tests");
            assert!(
                differences.is_empty(),
                "{} queries differ when split into {parts} parts:\n{}",
                differences.len(),
                differences.join("\n")
            );
            let passed = |rs: &[CaseResult]| -> Vec<String> {
                rs.iter().filter(|r| r.passed()).map(|r| r.id()).collect()
            };
            assert_eq!(passed(&results), passed(&serial), "{}", dir.display());
        }
    }
}
