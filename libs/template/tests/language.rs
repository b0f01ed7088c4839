//! The text/template language: control structures, variables, builtins and
//! execution errors, checked against Go's behaviour.

use std::collections::BTreeMap;

use strata_template::{Template, Value};

fn data() -> Value {
    let labels: BTreeMap<String, String> = [
        ("job".to_string(), "api".to_string()),
        ("instance".to_string(), "h1:80".to_string()),
    ]
    .into();
    Value::map([
        ("Labels", Value::from(labels)),
        ("List", Value::list(["a".into(), "b".into(), "c".into()])),
        ("Empty", Value::list([])),
        ("N", Value::Int(3)),
        ("F", Value::Float(2.5)),
        ("S", Value::from("str")),
        ("T", Value::Bool(true)),
        (
            "Nested",
            Value::map([("Inner", Value::map([("X", Value::Int(7))]))]),
        ),
    ])
}

fn run(text: &str) -> Result<String, String> {
    Template::parse("t", text)
        .and_then(|t| t.execute(&data(), None))
        .map_err(|e| e.to_string())
}

fn ok(text: &str) -> String {
    run(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn control_structures() {
    let cases = [
        ("{{ if .T }}y{{ end }}", "y"),
        ("{{ if .Empty }}y{{ else }}n{{ end }}", "n"),
        (
            "{{ if not .T }}a{{ else if eq .N 3 }}b{{ else }}c{{ end }}",
            "b",
        ),
        (
            "{{ if eq .N 1 }}a{{ else if eq .N 2 }}b{{ else }}c{{ end }}",
            "c",
        ),
        ("{{ with .S }}[{{ . }}]{{ end }}", "[str]"),
        ("{{ with .Missing }}x{{ else }}none{{ end }}", "none"),
        (
            "{{ with .Missing }}x{{ else with .S }}{{ . }}{{ end }}",
            "str",
        ),
        ("{{ range .List }}{{ . }}{{ end }}", "abc"),
        (
            "{{ range $i, $e := .List }}{{ $i }}{{ $e }},{{ end }}",
            "0a,1b,2c,",
        ),
        ("{{ range $e := .List }}{{ $e }}{{ end }}", "abc"),
        ("{{ range .Empty }}x{{ else }}empty{{ end }}", "empty"),
        ("{{ range .Missing }}x{{ else }}nil{{ end }}", "nil"),
        (
            "{{ range $k, $v := .Labels }}{{ $k }}:{{ $v }} {{ end }}",
            "instance:h1:80 job:api ",
        ),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        ("{{ range $i := .N }}{{ $i }}{{ end }}", "012"),
        (
            "{{ range .List }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}",
            "a",
        ),
        (
            "{{ range .List }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}",
            "ac",
        ),
        (
            "{{ range .List }}{{ range $.List }}{{ break }}{{ end }}{{ . }}{{ end }}",
            "abc",
        ),
        ("{{ .Nested.Inner.X }}", "7"),
        ("{{ (index .List 1) }}{{ index .Labels \"job\" }}", "bapi"),
        ("{{ .Labels.job }}{{ $.Labels.job }}", "apiapi"),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text), want, "{text}");
    }
}

#[test]
fn variables_and_scoping() {
    let cases = [
        ("{{ $x := 1 }}{{ $x }}", "1"),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"),
        ("{{ $x := 0 }}{{ range .List }}{{ $x = . }}{{ end }}{{ $x }}", "c"),
        ("{{ $x := \"out\" }}{{ if .T }}{{ $x := \"in\" }}{{ $x }}{{ end }}{{ $x }}", "inout"),
        ("{{ with $y := .S }}{{ $y }}{{ end }}", "str"),
        ("{{ $ }}", "map[Empty:[] F:2.5 Labels:map[instance:h1:80 job:api] List:[a b c] N:3 Nested:map[Inner:map[X:7]] S:str T:true]"),
        ("{{ range .List }}{{ $.S }}{{ end }}", "strstrstr"),
        ("{{ define \"x\" }}{{ . }}{{ $ }}{{ end }}{{ $v := 1 }}{{ template \"x\" .S }}", "strstr"),
        ("{{ template \"x\" }}{{ define \"x\" }}[{{ . }}]{{ end }}", "[<no value>]"),
        ("{{ block \"b\" .N }}<{{ . }}>{{ end }}", "<3>"),
        ("{{ define \"T1\" }}ONE{{ end }}{{ define \"T2\" }}TWO {{ template \"T1\" }}{{ end }}{{ template \"T2\" }}", "TWO ONE"),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text), want, "{text}");
    }
}

#[test]
fn redefinition_in_one_text_is_an_error_as_in_go() {
    assert_eq!(
        run("{{ define \"b\" }}override{{ end }}{{ block \"b\" . }}default{{ end }}").unwrap_err(),
        "template: t:1: template: multiple definition of template \"b\""
    );
    // An empty definition may be replaced.
    assert_eq!(
        ok("{{ define \"b\" }} {{ end }}{{ block \"b\" 1 }}x{{ . }}{{ end }}"),
        "x1"
    );
}

#[test]
fn builtins() {
    let cases = [
        ("{{ and 1 0 \"x\" }}", "0"),
        ("{{ and 1 2 }}", "2"),
        ("{{ or 0 \"\" }}", ""),
        ("{{ or 0 \"x\" 1 }}", "x"),
        // and/or short-circuit: the failing call is never made.
        ("{{ or .T (index .List 99) }}", "true"),
        ("{{ and .Missing (index .List 99) }}", "<no value>"),
        ("{{ not .T }} {{ not .Empty }}", "false true"),
        ("{{ len .List }} {{ len .S }} {{ len .Labels }}", "3 3 2"),
        ("{{ index .Nested \"Inner\" \"X\" }}", "7"),
        ("{{ index .S 0 }}", "115"),
        (
            "{{ slice .S 1 }} {{ slice .List 1 2 }} {{ slice .S 0 2 }}",
            "tr [b] st",
        ),
        ("{{ print 1 2 \"a\" \"b\" 3 }}", "1 2ab3"),
        ("{{ println 1 \"a\" }}", "1 a\n"),
        (
            "{{ printf \"%s-%d-%.1f-%v-%t\" .S .N .F .List .T }}",
            "str-3-2.5-[a b c]-true",
        ),
        (
            "{{ printf \"%5.1f|%-4s|%04d|%x|%q\" 3.04159 \"ab\" 42 255 \"q\" }}",
            "  3.0|ab  |0042|ff|\"q\"",
        ),
        (
            "{{ printf \"%v %v %v %v\" 1e6 1.5 100.0 0.00001 }}",
            "1e+06 1.5 100 1e-05",
        ),
        (
            "{{ printf \"%d %s\" \"foo\" 5 }}",
            "%!d(string=foo) %!s(int=5)",
        ),
        (
            "{{ eq .N 1 2 3 }} {{ eq .S \"x\" }} {{ ne .N 4 }}",
            "true false true",
        ),
        (
            "{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 1.5 2.5 }}",
            "true true true false",
        ),
        ("{{ eq .Missing nil }}", "true"),
        (
            "{{ html \"<a href='x'>&\\\"\" }}",
            "&lt;a href=&#39;x&#39;&gt;&amp;&#34;",
        ),
        ("{{ js \"it's <b>\" }}", "it\\'s \\u003Cb\\u003E"),
        ("{{ urlquery \"a b&c=d\" }}", "a+b%26c%3Dd"),
        ("{{ \"x\" | printf \"%s%s\" \"y\" }}", "yx"),
        ("{{ .S | len | printf \"%03d\" }}", "003"),
        (
            "{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ -2 }} {{ 0o17 }} {{ 1_000 }} {{ 010 }}",
            "97 31 1000 -2 15 1000 8",
        ),
        ("{{ `raw\\n` }}", "raw\\n"),
        ("{{ \"tab\\there\" }}", "tab\there"),
        ("{{ print nil }} {{ .Missing }}", "<nil> <no value>"),
        (
            "{{ .F }} {{ 3.0 }} {{ 1.0e21 }} {{ -0.0 }}",
            "2.5 3 1e+21 -0",
        ),
        ("{{ print .F 1.0 }}", "2.5 1"),
        ("{{ args 1 \"x\" }}", "map[arg0:1 arg1:x]"),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text), want, "{text}");
    }
}

#[test]
fn whitespace_and_comments() {
    let cases = [
        ("a  {{- .S -}}  b", "astrb"),
        ("a\n\t{{- /* comment */ -}}\n b", "ab"),
        ("a {{/* comment */}} b", "a  b"),
        ("{{ .S\n}}", "str"),
        ("x{{- 3 }}", "x3"),
        ("x {{-3}}", "x -3"),
        ("{{ if .T -}}\n  yes\n{{- end }}", "yes"),
    ];
    for (text, want) in cases {
        assert_eq!(ok(text), want, "{text}");
    }
}

#[test]
fn execution_errors() {
    let cases = [
        ("{{ template \"nope\" }}", "template: t:1:12: executing \"t\" at <{{template \"nope\"}}>: template \"nope\" not defined"),
        ("{{ nil }}", "template: t:1:3: executing \"t\" at <nil>: nil is not a command"),
        ("{{ 1 2 }}", "template: t:1:3: executing \"t\" at <1>: can't give argument to non-function 1"),
        ("{{ len }}", "template: t:1:3: executing \"t\" at <len>: wrong number of args for len: want 1 got 0"),
        ("{{ toUpper 1 }}", "template: t:1:3: executing \"t\" at <toUpper 1>: wrong type for value; expected string; got int"),
        ("{{ index .List 5 }}", "template: t:1:3: executing \"t\" at <index .List 5>: error calling index: index out of range: 5"),
        ("{{ range .F }}{{ end }}", "template: t:1:9: executing \"t\" at <{{range .F}}{{end}}>: range can't iterate over 2.5"),
        ("{{ .S.foo }}", "template: t:1:5: executing \"t\" at <.S.foo>: can't evaluate field foo in type string"),
        ("{{ .Labels.job 1 }}", "template: t:1:10: executing \"t\" at <.Labels.job>: job is not a method but has arguments"),
        ("{{ $x = 1 }}", "template: t:1:3: executing \"t\" at <$x = 1>: undefined variable: $x"),
        ("{{ lt .T .T }}", "template: t:1:3: executing \"t\" at <lt .T .T>: error calling lt: invalid type for comparison"),
        ("{{ eq .List .List }}", "template: t:1:3: executing \"t\" at <eq .List .List>: error calling eq: non-comparable type [a b c]: []interface {}"),
        ("{{ eq 1 }}", "template: t:1:3: executing \"t\" at <eq 1>: error calling eq: missing argument for comparison"),
        ("{{ call .S }}", "template: t:1:3: executing \"t\" at <call .S>: error calling call: call is not supported"),
        ("{{ reReplaceAll \"(\" \"\" \"x\" }}", "template: t:1:3: executing \"t\" at <reReplaceAll \"(\" \"\" \"x\">: error calling reReplaceAll: regexp: Compile(`(`): error parsing regexp: unclosed group: `(`"),
        ("{{ range $i, $e := 3 }}{{ end }}", "template: t:1:9: executing \"t\" at <{{range $i, $e := 3}}{{end}}>: can't use 3 to iterate over more than one variable"),
        ("a\nb {{ humanize true }}", "template: t:2:5: executing \"t\" at <humanize true>: error calling humanize: can't convert bool to float"),
    ];
    for (text, want) in cases {
        assert_eq!(run(text).unwrap_err(), want, "{text}");
    }
}

#[test]
fn errors_inside_defined_templates_name_them() {
    let err = run("{{ define \"inner\" }}\n{{ humanize \"x\" }}{{ end }}{{ template \"inner\" }}")
        .unwrap_err();
    assert!(
        err.starts_with("template: t:2:3: executing \"inner\" at <humanize \"x\">"),
        "{err}"
    );
}

#[test]
fn plain_text_fast_path() {
    let t = Template::parse("t", "no actions here { } }}").unwrap();
    assert_eq!(
        t.execute(&Value::Nil, None).unwrap(),
        "no actions here { } }}"
    );
    let t = Template::parse("t", "").unwrap();
    assert_eq!(t.execute(&Value::Nil, None).unwrap(), "");
}
