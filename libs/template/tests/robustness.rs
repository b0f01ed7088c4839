//! No panics, no hangs, no unbounded memory or recursion.

use std::collections::BTreeMap;

use proptest::prelude::*;
use strata_template::{
    expand_alert, AlertTemplateData, ExecOptions, Limits, QuerySample, Template, TemplateError,
    Value,
};

fn data() -> Value {
    Value::map([
        (
            "L",
            Value::list([1.into(), "x".into(), Value::Float(2.5), Value::Nil]),
        ),
        ("M", Value::string_map([("a", "1"), ("b", "2")])),
        ("S", Value::from("str")),
        ("N", Value::Int(3)),
        ("F", Value::Float(-0.5)),
    ])
}

fn fake_query(expr: &str) -> Result<Vec<QuerySample>, String> {
    if expr.is_empty() {
        return Err("empty".into());
    }
    Ok(vec![QuerySample {
        labels: BTreeMap::from([("instance".to_string(), expr.to_string())]),
        value: expr.len() as f64,
    }])
}

/// Runs on a thread with a 2 MiB stack, the size of tokio's workers, so a
/// recursion bug shows up as a test failure rather than passing thanks to
/// a big main-thread stack.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

fn exec(text: &str) -> Result<String, TemplateError> {
    let q = fake_query;
    Template::parse("t", text)?.execute_with(
        &data(),
        &ExecOptions {
            query: Some(&q),
            now_millis: Some(0),
            ..ExecOptions::default()
        },
    )
}

fn is_limit(r: &Result<String, TemplateError>) -> bool {
    matches!(r, Err(TemplateError::Limit { .. }))
}

#[test]
fn infinite_template_recursion_is_stopped() {
    let r = on_small_stack(|| {
        exec("{{ define \"r\" }}x{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}")
    });
    assert!(is_limit(&r), "{r:?}");
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("exceeded maximum template depth"));
}

#[test]
fn deep_nesting_within_limits_does_not_overflow_the_stack() {
    // 95 nested ifs inside 50 nested template calls: the evaluation-depth
    // limit trips long before the stack runs out.
    let body = format!(
        "{}{{{{ template \"r\" . }}}}{}",
        "{{ if 1 }}{{ with . }}".repeat(47),
        "{{ end }}{{ end }}".repeat(47)
    );
    let text = format!("{{{{ define \"r\" }}}}{body}{{{{ end }}}}{{{{ template \"r\" 1 }}}}");
    let r = on_small_stack(move || exec(&text));
    assert!(is_limit(&r), "{r:?}");

    // Deep parentheses and range nesting at the parse limit.
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(95), ")".repeat(95));
    assert_eq!(on_small_stack(move || exec(&parens)).unwrap(), "1");
    let ranges = format!("{}x{}", "{{ range 2 }}".repeat(16), "{{ end }}".repeat(16));
    let r = on_small_stack(move || exec(&ranges));
    assert!(is_limit(&r), "{r:?}");
}

#[test]
fn worst_case_recursion_mix_fits_a_small_stack_with_default_limits() {
    // Template recursion through if/range/with, then 95 nested
    // parenthesised calls at the bottom: whatever the recursion depth, the
    // default limits stop it before a 2 MiB stack (debug build) overflows.
    let parens = format!("{}1{}", "(print ".repeat(95), ")".repeat(95));
    let text = format!(
        "{{{{ define \"r\" }}}}{{{{ if . }}}}{{{{ range 1 }}}}{{{{ with 1 }}}}{{{{ template \"r\" (slice $ 1) }}}}{{{{ end }}}}{{{{ end }}}}{{{{ else }}}}{{{{ len {parens} }}}}{{{{ end }}}}{{{{ end }}}}{{{{ template \"r\" . }}}}"
    );
    for k in [0usize, 10, 20, 30, 49, 50, 100, 1000] {
        let text = text.clone();
        let r = on_small_stack(move || {
            let t = Template::parse("t", &text).unwrap();
            let data = Value::list((0..k).map(|i| Value::Int(i as i64)));
            t.execute(&data, None)
        });
        assert!(r.is_ok() || is_limit(&r), "k={k}: {r:?}");
    }
}

#[test]
fn output_is_capped() {
    let r = exec("{{ range 1000000 }}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{{ end }}");
    assert!(is_limit(&r), "{r:?}");
    let r = exec("{{ $x := \"aaaaaaaaaaaaaaaa\" }}{{ range 64 }}{{ $x = printf \"%s%s\" $x $x }}{{ end }}{{ len $x }}");
    assert!(is_limit(&r), "{r:?}");
    let r = exec(
        "{{ $x := \"aaaaaaaaaaaaaaaa\" }}{{ range 64 }}{{ $x = reReplaceAll \"\" $x $x }}{{ end }}",
    );
    assert!(is_limit(&r), "{r:?}");
    let r = exec("{{ printf \"%999999d%999999d\" 1 2 }}");
    assert!(is_limit(&r), "{r:?}");
    let r = exec("{{ $x := printf \"%900000d\" 1 }}{{ print $x $x $x }}");
    assert!(is_limit(&r), "{r:?}");
}

#[test]
fn loops_are_bounded() {
    let r = exec("{{ range 1000000000 }}{{ end }}");
    assert!(is_limit(&r), "{r:?}");
    let small = Limits {
        max_steps: 20,
        ..Limits::default()
    };
    let t = Template::parse(
        "t",
        "{{ range .L }}{{ range $.L }}{{ . }}{{ end }}{{ end }}",
    )
    .unwrap();
    let r = t.execute_with(
        &data(),
        &ExecOptions {
            limits: small,
            ..ExecOptions::default()
        },
    );
    assert!(is_limit(&r), "{r:?}");
}

#[test]
fn big_data_in_loops_is_charged() {
    let start = std::time::Instant::now();
    let r =
        exec("{{ $x := printf \"%900000d\" 1 }}{{ range 100000 }}{{ $y := toUpper $x }}{{ end }}");
    assert!(is_limit(&r), "{r:?}");
    let r = exec("{{ range 100000 }}{{ $y := match (printf \"a%d\" .) \"a\" }}{{ end }}");
    assert!(is_limit(&r), "{r:?}");
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn alert_expansion_errors_are_values_not_panics() {
    let l = BTreeMap::new();
    let d = AlertTemplateData {
        labels: &l,
        external_labels: &l,
        external_url: "",
        value: f64::NAN,
    };
    assert_eq!(expand_alert("a", "{{ $value }}", &d, None).unwrap(), "NaN");
    assert_eq!(
        expand_alert("a", "{{ $value | humanize }}", &d, None).unwrap(),
        "NaN"
    );
    assert!(expand_alert("a", "{{ $value | toTime }}", &d, None).is_err());
    assert!(expand_alert("a", "{{ index $labels 1 }}", &d, None).is_err());
}

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/*",
    "*/}}",
    " ",
    "\n",
    ".",
    ".L",
    ".M",
    ".S",
    ".N",
    ".F",
    ".M.a",
    "$",
    "$x",
    "$y",
    ":=",
    "=",
    "|",
    "(",
    ")",
    ",",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
    "\"t\"",
    "\"%d%s%v%.2f%q%x\"",
    "`raw`",
    "'a'",
    "1",
    "-1",
    "2.5",
    "1e3",
    "0x1F",
    "nil",
    "true",
    "false",
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "sortByLabel",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "now",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    ".Format",
    ".Add",
    ".Unix",
    "\"(\"",
    "\"a+\"",
    "\u{a0}",
    "é",
    "\"\\x41\\u00e9\"",
    "x",
];

fn template_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let _ = exec(&text);
    }

    #[test]
    fn token_soup_never_panics(text in template_text()) {
        let _ = exec(&text);
        let l = BTreeMap::from([("job".to_string(), "x".to_string())]);
        let d = AlertTemplateData { labels: &l, external_labels: &l, external_url: "http://h/p", value: 1.5 };
        let _ = expand_alert("a", &text, &d, None);
    }

    #[test]
    fn well_formed_actions_never_panic(
        f in prop::sample::select(TOKENS),
        a in prop::sample::select(TOKENS),
        b in prop::sample::select(TOKENS),
    ) {
        let _ = exec(&format!("{{{{ {f} {a} {b} }}}}"));
        let _ = exec(&format!("{{{{ {a} | {f} {b} }}}}"));
        let _ = exec(&format!("{{{{ range $i, $e := {a} }}}}{{{{ {f} $e {b} }}}}{{{{ end }}}}"));
    }

    #[test]
    fn printf_never_panics(format in any::<String>(), n in any::<i64>(), x in any::<f64>(), s in any::<String>()) {
        let t = Template::parse("t", "{{ printf .Fmt .N .X .S .N }}").unwrap();
        let d = Value::map([
            ("Fmt", Value::from(format)),
            ("N", Value::Int(n)),
            ("X", Value::Float(x)),
            ("S", Value::from(s)),
        ]);
        let _ = t.execute(&d, None);
    }

    #[test]
    fn humanize_functions_never_panic(x in any::<f64>(), s in any::<String>()) {
        let t = Template::parse("t", "{{ humanize .X }}{{ humanize1024 .X }}{{ humanizeDuration .X }}{{ humanizePercentage .X }}{{ humanizeTimestamp .X }}{{ toTime .X }}{{ toDuration .X }}{{ humanize .S }}{{ parseDuration .S }}{{ stripDomain .S }}{{ stripPort .S }}{{ title .S }}").unwrap();
        let d = Value::map([("X", Value::Float(x)), ("S", Value::from(s))]);
        let _ = t.execute(&d, None);
    }
}
