//! The public API: parsing single groups, serialisation, round trips,
//! error reporting, counts and lints.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use strata_rulefmt::{
    namespaces_to_yaml, parse_rule_file, parse_rule_group, DuplicateRule, ErrorKind, Location,
    Rule, RuleFile, RuleGroup,
};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sample_group() -> RuleGroup {
    RuleGroup {
        name: "api".to_string(),
        interval: Some(Duration::from_secs(90)),
        query_offset: None,
        limit: 5,
        rules: vec![
            Rule {
                record: Some("job:up:sum".to_string()),
                expr: "sum by (job) (up)".to_string(),
                labels: labels(&[("team", "infra")]),
                ..Rule::default()
            },
            Rule {
                alert: Some("Down".to_string()),
                expr: "up == 0".to_string(),
                for_: Duration::from_secs(5400),
                keep_firing_for: Duration::from_secs(600),
                labels: labels(&[("severity", "page")]),
                annotations: labels(&[("summary", "{{ $labels.instance }} is down")]),
                ..Rule::default()
            },
        ],
    }
}

#[test]
fn parses_a_single_group_document() {
    let group = parse_rule_group(
        "name: api\ninterval: 1m30s\nlimit: 5\nrules:\n- record: job:up:sum\n  expr: sum by (job) (up)\n  labels:\n    team: infra\n- alert: Down\n  expr: up == 0\n  for: 90m\n  keep_firing_for: 10m\n  labels:\n    severity: page\n  annotations:\n    summary: \"{{ $labels.instance }} is down\"\n",
    )
    .unwrap();
    assert_eq!(group, sample_group());
    assert_eq!(group.rule_count(), 2);
    assert!(group.rules[0].is_recording() && !group.rules[0].is_alerting());
    assert!(group.rules[1].is_alerting() && !group.rules[1].is_recording());
    assert_eq!(group.rules[1].name(), "Down");
}

#[test]
fn group_document_errors() {
    let err = parse_rule_group("").unwrap_err();
    assert_eq!(err.to_string(), "Groupname must not be empty");
    let err = parse_rule_group("groups:\n- name: a\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "group \"\": field groups not found in type rulefmt.RuleGroup"
    );
    let err = parse_rule_group("- name: a\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "group 1: cannot unmarshal !!seq into rulefmt.RuleGroup"
    );
    let err = parse_rule_group("name: a\nsource_tenants: [t1]\nrules: []\n").unwrap_err();
    assert!(
        err.to_string().contains("field source_tenants not found"),
        "{err}"
    );
    // Recording rules with bad names in a single group.
    let err = parse_rule_group("name: a\nrules:\n- record: 1x\n  expr: up\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "group \"a\", rule 1, \"1x\": invalid recording rule name: 1x"
    );
}

#[test]
fn group_yaml_output_is_prometheus_like() {
    let yaml = sample_group().to_yaml();
    assert_eq!(
        yaml,
        "name: api\n\
         interval: 1m30s\n\
         limit: 5\n\
         rules:\n\
         - record: job:up:sum\n  expr: sum by (job) (up)\n  labels:\n    team: infra\n\
         - alert: Down\n  expr: up == 0\n  for: 1h30m\n  keep_firing_for: 10m\n  labels:\n    severity: page\n  annotations:\n    summary: '{{ $labels.instance }} is down'\n"
    );
    assert_eq!(parse_rule_group(&yaml).unwrap(), sample_group());
}

#[test]
fn empty_fields_are_omitted() {
    let group = RuleGroup {
        name: "g".to_string(),
        interval: Some(Duration::ZERO),
        rules: vec![Rule {
            record: Some("r".to_string()),
            alert: Some(String::new()),
            expr: "up".to_string(),
            ..Rule::default()
        }],
        ..RuleGroup::default()
    };
    assert_eq!(
        group.to_yaml(),
        "name: g\nrules:\n- record: r\n  expr: up\n"
    );
    let empty = RuleGroup {
        name: "e".to_string(),
        ..RuleGroup::default()
    };
    assert_eq!(empty.to_yaml(), "name: e\nrules: []\n");
    assert_eq!(parse_rule_group(&empty.to_yaml()).unwrap(), empty);
}

#[test]
fn query_offset_zero_is_kept() {
    let group = parse_rule_group("name: g\nquery_offset: 0s\nrules: []\n").unwrap();
    assert_eq!(group.query_offset, Some(Duration::ZERO));
    assert_eq!(group.to_yaml(), "name: g\nquery_offset: 0s\nrules: []\n");
    let group = parse_rule_group("name: g\nquery_offset: 120s\nrules: []\n").unwrap();
    assert_eq!(group.query_offset, Some(Duration::from_secs(120)));
    assert_eq!(group.to_yaml(), "name: g\nquery_offset: 2m\nrules: []\n");
    let group = parse_rule_group("name: g\nrules: []\n").unwrap();
    assert_eq!(group.query_offset, None);
    // An interval of 0 is "the default", like no interval.
    let group = parse_rule_group("name: g\ninterval: 0s\nrules: []\n").unwrap();
    assert_eq!(group.interval, None);
}

#[test]
fn namespaces_yaml_has_cortex_shape() {
    let mut namespaces = BTreeMap::new();
    namespaces.insert(
        "ns2".to_string(),
        vec![RuleGroup {
            name: "b".to_string(),
            rules: vec![Rule {
                alert: Some("X".to_string()),
                expr: "vector(1)".to_string(),
                ..Rule::default()
            }],
            ..RuleGroup::default()
        }],
    );
    namespaces.insert(
        "ns1".to_string(),
        vec![RuleGroup {
            name: "a".to_string(),
            interval: Some(Duration::from_secs(60)),
            ..RuleGroup::default()
        }],
    );
    assert_eq!(
        namespaces_to_yaml(&namespaces),
        "ns1:\n- name: a\n  interval: 1m\n  rules: []\nns2:\n- name: b\n  rules:\n  - alert: X\n    expr: vector(1)\n"
    );
    assert_eq!(namespaces_to_yaml(&BTreeMap::new()), "{}\n");
}

#[test]
fn file_yaml_round_trip() {
    let file = RuleFile {
        groups: vec![
            sample_group(),
            RuleGroup {
                name: "second".to_string(),
                ..RuleGroup::default()
            },
        ],
    };
    let yaml = file.to_yaml();
    assert!(yaml.starts_with("groups:\n- name: api\n"), "{yaml}");
    assert_eq!(parse_rule_file(&yaml).unwrap(), file);
}

#[test]
fn scalars_keep_their_text() {
    let file = parse_rule_file(
        "groups:\n- name: 007\n  rules:\n  - record: 'true'\n    expr: 1.50\n    labels:\n      version: 1.10\n      code: 010\n      flag: True\n      none: ~\n",
    )
    .unwrap();
    let group = &file.groups[0];
    assert_eq!(group.name, "007");
    let rule = &group.rules[0];
    assert_eq!(rule.record.as_deref(), Some("true"));
    assert_eq!(rule.expr, "1.50");
    assert_eq!(
        rule.labels,
        labels(&[
            ("version", "1.10"),
            ("code", "010"),
            ("flag", "True"),
            ("none", "")
        ])
    );
    // And they survive serialisation as strings.
    assert_eq!(parse_rule_file(&file.to_yaml()).unwrap(), file);
}

#[test]
fn limits_decode_like_yaml_v3() {
    for (text, want) in [
        ("10", 10),
        ("0x10", 16),
        ("1_000", 1000),
        ("2.9", 2),
        ("1e3", 1000),
        ("-1", 0),
        ("~", 0),
    ] {
        let group = parse_rule_group(&format!("name: g\nlimit: {text}\nrules: []\n")).unwrap();
        assert_eq!(group.limit, want, "{text}");
    }
    for text in ["\"5\"", "true", "[1]", "abc", "1e30"] {
        let err = parse_rule_group(&format!("name: g\nlimit: {text}\nrules: []\n")).unwrap_err();
        assert!(err.to_string().contains("into int"), "{text}: {err}");
    }
}

#[test]
fn every_problem_is_reported_with_its_location() {
    let err = parse_rule_file(
        "groups:\n- name: g1\n  rules:\n  - record: a\n    expr: up\n  - record: 'my:rule'\n    expr: sum(\n    for: 1m\n    annotations:\n      x: y\n  - alert: A\n    record: b\n- name: g1\n- name: ''\n  rules:\n  - expr: up\n    labels:\n      __name__: x\n      ok: '{{ end }}'\n",
    )
    .unwrap_err();
    let lines: Vec<String> = err.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "group \"g1\", rule 2, \"my:rule\": could not parse expression: 1:5: parse error: unclosed left parenthesis",
            "group \"g1\", rule 2, \"my:rule\": invalid field 'annotations' in recording rule",
            "group \"g1\", rule 2, \"my:rule\": invalid field 'for' in recording rule",
            "group \"g1\", rule 3, \"A\": only one of 'record' and 'alert' must be set",
            "group \"g1\", rule 3, \"A\": field 'expr' must be set in rule",
            "groupname: \"g1\" is repeated in the same file",
            "Groupname must not be empty",
            "group \"\", rule 1, \"\": one of 'record' or 'alert' must be set",
            "group \"\", rule 1, \"\": invalid label name: __name__",
        ]
    );
    assert_eq!(err.len(), 9);
    assert_eq!(err.to_string(), lines.join("\n"));
    let first = &err.errors()[0];
    assert_eq!(
        first.location,
        Location::Rule {
            group: "g1".to_string(),
            index: 2,
            name: "my:rule".to_string()
        }
    );
    assert!(matches!(first.kind, ErrorKind::BadExpr(_)));
}

#[test]
fn structure_errors_are_all_collected() {
    let err = parse_rule_file(
        "groups:\n- name: g\n  foo: 1\n  interval: 5x\n  rules:\n  - record: x\n    expr: up\n    labels: [a]\n    bogus: 1\n- 5\n",
    )
    .unwrap_err();
    let lines: Vec<String> = err.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "group \"g\": field foo not found in type rulefmt.RuleGroup",
            "group \"g\": not a valid duration string: \"5x\"",
            "group \"g\", rule 1, \"x\": cannot unmarshal !!seq into map[string]string",
            "group \"g\", rule 1, \"x\": field bogus not found in type rulefmt.RuleNode",
            "group 2: cannot unmarshal !!int `5` into rulefmt.RuleGroup",
        ]
    );
}

#[test]
fn template_errors_name_label_or_annotation() {
    let err = parse_rule_group(
        "name: g\nrules:\n- alert: A\n  expr: up\n  labels:\n    l: '{{ $labels.foo '\n  annotations:\n    a: '{{ nosuch }}'\n    b: '{{ $value | humanize }}'\n",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "group \"g\", rule 1, \"A\": label \"l\": template: __alert_A:1: unclosed action\n\
         group \"g\", rule 1, \"A\": annotation \"a\": template: __alert_A:1: function \"nosuch\" not defined"
    );
}

#[test]
fn yaml_problems() {
    let err = parse_rule_file("groups:\n- name: a\n\t rules: []\n").unwrap_err();
    assert!(err.to_string().starts_with("yaml: "), "{err}");
    assert_eq!(err.errors()[0].location, Location::File);
    let err = parse_rule_file("groups: []\n---\ngroups: []\n").unwrap_err();
    assert_eq!(err.errors()[0].kind, ErrorKind::MultipleDocuments);
    // Trailing empty documents hold no rules and are fine.
    assert_eq!(
        parse_rule_file("groups: []\n---\n").unwrap(),
        RuleFile::default()
    );
    assert_eq!(parse_rule_file("").unwrap(), RuleFile::default());
    assert_eq!(parse_rule_file("# nothing\n").unwrap(), RuleFile::default());
    let err = parse_rule_file("{{ nope").unwrap_err();
    assert!(err.to_string().starts_with("yaml: "), "{err}");
}

#[test]
fn counts_for_limits() {
    let file = parse_rule_file(
        "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n  - record: y\n    expr: up\n- name: b\n  rules: []\n- name: c\n  rules:\n  - alert: Z\n    expr: up\n",
    )
    .unwrap();
    assert_eq!(file.group_count(), 3);
    assert_eq!(file.rule_count(), 3);
    assert_eq!(file.max_rules_per_group(), 2);
    assert_eq!(file.rules_per_group(), [("a", 2), ("b", 0), ("c", 1)]);
    assert_eq!(RuleFile::default().max_rules_per_group(), 0);
}

#[test]
fn duplicate_rules_lint() {
    let file = parse_rule_file(
        "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n  - record: x\n    expr: down\n  - record: x\n    expr: up\n    labels: {a: b}\n- name: b\n  rules:\n  - record: x\n    expr: sideways\n  - alert: x\n    expr: up\n",
    )
    .unwrap();
    assert_eq!(
        file.duplicate_rules(),
        [DuplicateRule {
            name: "x".to_string(),
            labels: BTreeMap::new()
        }]
    );
}

#[test]
fn validate_groups_built_in_code() {
    let mut group = sample_group();
    assert!(group.validate().is_ok());
    group.rules[0].for_ = Duration::from_secs(1);
    let err = group.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "group \"api\", rule 1, \"job:up:sum\": invalid field 'for' in recording rule"
    );
    let file = RuleFile {
        groups: vec![sample_group(), sample_group()],
    };
    assert_eq!(
        file.validate().unwrap_err().to_string(),
        "groupname: \"api\" is repeated in the same file"
    );
}

fn arb_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        (1u64..10_000_000_000).prop_map(Duration::from_millis),
        (1u64..1000).prop_map(|m| Duration::from_secs(60 * m)),
    ]
}

fn arb_label_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,12}".prop_filter("not __name__", |n| n != "__name__")
}

fn arb_text() -> impl Strategy<Value = String> {
    // Any text (newlines, quotes, YAML indicators, unicode) but no
    // template braces, which alerting rules would check.
    prop_oneof![
        "\\PC{0,30}",
        "[ -~\\n\\t]{0,30}",
        Just("null".to_string()),
        Just("~".to_string()),
        Just("1.10".to_string()),
        Just("0x10".to_string()),
        Just("- a".to_string()),
        Just("a: b".to_string()),
        Just(" lead and trail ".to_string()),
        Just("#x".to_string()),
    ]
    .prop_map(|s| s.replace('{', "(").replace('}', ")"))
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    let exprs = prop::sample::select(vec![
        "up",
        "sum by (job) (rate(http_requests_total[5m]))",
        "up == 0",
        "vector(1)\n",
        "  up  ",
        "histogram_quantile(0.9, rate(x_bucket[5m])) > 1",
        "\"string\"",
        "1.50",
    ]);
    (
        any::<bool>(),
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
        exprs,
        arb_duration(),
        arb_duration(),
        prop::collection::btree_map(arb_label_name(), arb_text(), 0..4),
        prop::collection::btree_map(arb_label_name(), arb_text(), 0..4),
    )
        .prop_map(|(alerting, name, expr, for_, keep, labels, annotations)| {
            if alerting {
                Rule {
                    alert: Some(name),
                    expr: expr.to_string(),
                    for_,
                    keep_firing_for: keep,
                    labels,
                    annotations,
                    ..Rule::default()
                }
            } else {
                Rule {
                    record: Some(name),
                    expr: expr.to_string(),
                    labels,
                    ..Rule::default()
                }
            }
        })
}

fn arb_group() -> impl Strategy<Value = RuleGroup> {
    (
        "\\PC{1,20}",
        prop::option::of(arb_duration().prop_filter("non-zero", |d| !d.is_zero())),
        prop::option::of(arb_duration()),
        0usize..100_000,
        prop::collection::vec(arb_rule(), 0..5),
    )
        .prop_map(|(name, interval, query_offset, limit, rules)| RuleGroup {
            name,
            interval,
            query_offset,
            limit,
            rules,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn group_round_trips(group in arb_group()) {
        let yaml = group.to_yaml();
        let parsed = parse_rule_group(&yaml);
        prop_assert!(parsed.is_ok(), "{yaml}\n{:?}", parsed);
        prop_assert_eq!(parsed.unwrap(), group);
    }

    #[test]
    fn namespaces_round_trip(groups in prop::collection::vec(arb_group(), 0..3)) {
        // Every group of a namespace reads back through the file parser
        // once wrapped in `groups:`.
        let mut namespaces = BTreeMap::new();
        namespaces.insert("ns".to_string(), groups.clone());
        let yaml = namespaces_to_yaml(&namespaces);
        let file_yaml = yaml.strip_prefix("ns:\n").map(|rest| format!("groups:\n{rest}"));
        if let Some(file_yaml) = file_yaml {
            let file: Result<RuleFile, _> = parse_rule_file(&file_yaml);
            // Repeated group names are an error in one file.
            let unique = groups.iter().map(|g| &g.name).collect::<std::collections::HashSet<_>>().len() == groups.len();
            if unique {
                prop_assert_eq!(file.unwrap().groups, groups);
            }
        } else {
            prop_assert!(groups.is_empty());
            prop_assert_eq!(yaml, "ns: []\n");
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_rule_file(&text);
        let _ = parse_rule_group(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(parts in prop::collection::vec(prop::sample::select(vec![
        "groups:", "\n", "- ", "  ", "name: ", "rules:", "record: ", "alert: ", "expr: ",
        "for: ", "labels:", "annotations:", "{", "}", "[", "]", "&a ", "*a", "<<: ", "~",
        "'", "\"", "---\n", "\t", "up", "5m", "{{ ", " }}", "limit: ", "1e3", "#", ": ", ",",
        "|\n", ">-\n", "!!str ", "!foo ", "query_offset: ", "keep_firing_for: ",
    ]), 0..60)) {
        let text: String = parts.concat();
        let _ = parse_rule_file(&text);
        let _ = parse_rule_group(&text);
    }
}
