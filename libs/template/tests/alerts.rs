//! Alert label/annotation templates as users write them, through
//! `expand_alert` / `check_alert_template`.

use std::collections::BTreeMap;

use strata_template::{
    check_alert_template, expand_alert, AlertTemplateData, QueryFunc, QuerySample, Template,
};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expand_with(text: &str, value: f64, query: Option<&dyn QueryFunc>) -> Result<String, String> {
    let l = labels(&[
        ("__name__", "up"),
        ("instance", "web-1.example.com:9100"),
        ("job", "node"),
        ("severity", "page"),
    ]);
    let ext = labels(&[("cluster", "eu-1")]);
    let data = AlertTemplateData {
        labels: &l,
        external_labels: &ext,
        external_url: "https://prom.example.com/prometheus",
        value,
    };
    expand_alert("__alert_Test", text, &data, query).map_err(|e| e.to_string())
}

fn expand(text: &str, value: f64) -> String {
    expand_with(text, value, None).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

struct FakeQuery;

impl QueryFunc for FakeQuery {
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        let s = |pairs: &[(&str, &str)], v: f64| QuerySample {
            labels: labels(pairs),
            value: v,
        };
        match expr {
            "up" => Ok(vec![
                s(
                    &[("__name__", "up"), ("instance", "b:9100"), ("job", "node")],
                    1.0,
                ),
                s(
                    &[("__name__", "up"), ("instance", "a:9100"), ("job", "node")],
                    0.0,
                ),
            ]),
            "node_memory_bytes" => Ok(vec![s(&[("instance", "a")], 17_179_869_184.0)]),
            "empty" => Ok(vec![]),
            "bad" => Err("parse error: unexpected end of input".into()),
            _ => Ok(vec![s(&[], 1234567.0)]),
        }
    }
}

#[test]
fn typical_annotations() {
    assert_eq!(
        expand(
            "{{ $labels.instance }} of job {{ $labels.job }} has been down for more than 5 minutes. Value: {{ $value }}",
            0.0
        ),
        "web-1.example.com:9100 of job node has been down for more than 5 minutes. Value: 0"
    );
    assert_eq!(expand("{{ printf \"%.2f\" $value }}", 93.456), "93.46");
    assert_eq!(expand("{{ printf \"%.2f\" $value }}%", 5.0), "5.00%");
    assert_eq!(
        expand("{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}", 93.0),
        "high"
    );
    assert_eq!(
        expand("{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}", 12.0),
        "ok"
    );
    assert_eq!(
        expand(
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
            1.0
        ),
        "__name__=up instance=web-1.example.com:9100 job=node severity=page "
    );
    assert_eq!(expand("{{ $value }}", 1234567.0), "1.234567e+06");
    assert_eq!(expand("{{ $value }}", 0.5), "0.5");
    assert_eq!(expand("{{ $value | humanize }}", 1234567.0), "1.235M");
    assert_eq!(
        expand("{{ $value | humanizePercentage }}", 0.1234),
        "12.34%"
    );
    assert_eq!(
        expand("{{ $value | humanizeDuration }}", 3661.0),
        "1h 1m 1s"
    );
    assert_eq!(
        expand("{{ $value | humanize1024 }}B", 17179869184.0),
        "16GiB"
    );
    assert_eq!(expand("{{ .Value }} {{ .Labels.job }}", 2.0), "2 node");
    assert_eq!(expand("{{ $externalLabels.cluster }}", 2.0), "eu-1");
    assert_eq!(
        expand(
            "{{ $externalURL }} {{ externalURL }} [{{ pathPrefix }}]",
            2.0
        ),
        "https://prom.example.com/prometheus https://prom.example.com/prometheus [/prometheus]"
    );
    assert_eq!(
        expand("{{ $labels.instance | stripPort }}", 1.0),
        "web-1.example.com"
    );
    assert_eq!(
        expand("{{ $labels.instance | stripDomain }}", 1.0),
        "web-1:9100"
    );
    assert_eq!(expand("{{ $labels.missing }}|", 1.0), "|");
    assert_eq!(
        expand(
            "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}",
            1.0
        ),
        "web-1.example.com"
    );
    assert_eq!(
        expand(
            "{{ $labels.severity | toUpper }} {{ title \"disk full\" }}",
            1.0
        ),
        "PAGE Disk Full"
    );
    assert_eq!(
        expand(
            "{{- if eq $labels.severity \"page\" \"critical\" -}}\n  PAGE\n{{- end }}",
            1.0
        ),
        "PAGE"
    );
    assert_eq!(
        expand(
            "{{ with $labels.team }}team {{ . }}{{ else }}no team{{ end }}",
            1.0
        ),
        "no team"
    );
    assert_eq!(
        expand("{{ index $labels \"job\" }} {{ len $labels }}", 1.0),
        "node 4"
    );
    assert_eq!(
        expand(
            "{{ if and (ge $value 1.0) (lt $value 10.0) }}in{{ end }}",
            5.0
        ),
        "in"
    );
    assert_eq!(
        expand("{{ if match \"^web-\" $labels.instance }}web{{ end }}", 5.0),
        "web"
    );
    assert_eq!(expand("plain text", 5.0), "plain text");
    assert_eq!(expand("", 5.0), "");
}

#[test]
fn queries_in_annotations() {
    let q: &dyn QueryFunc = &FakeQuery;
    let e = |t: &str| expand_with(t, 1.0, Some(q)).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert_eq!(
        e("{{ with query \"up\" }}{{ . | first | value | humanize }}{{ end }}"),
        "1"
    );
    assert_eq!(
        e("{{ with query \"other\" }}{{ . | first | value | humanize }}{{ end }}"),
        "1.235M"
    );
    assert_eq!(
        e("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }};{{ end }}"),
        "a:9100=0;b:9100=1;"
    );
    assert_eq!(
        e("{{ with query \"empty\" }}some{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        e("{{ (query \"node_memory_bytes\" | first | value) | humanize1024 }}"),
        "16Gi"
    );
    assert_eq!(
        e("{{ $x := query \"up\" | first }}{{ label \"instance\" $x }} {{ $x.Labels.job }}"),
        "b:9100 node"
    );
    assert_eq!(e("{{ len (query \"up\") }}"), "2");
    let err = expand_with("{{ query \"bad\" }}", 1.0, Some(q)).unwrap_err();
    assert!(
        err.ends_with("error calling query: parse error: unexpected end of input"),
        "{err}"
    );
    let err = expand_with("{{ query \"empty\" | first }}", 1.0, Some(q)).unwrap_err();
    assert!(
        err.ends_with("first() called on vector with no elements"),
        "{err}"
    );
    // Without a query function.
    let err = expand_with("{{ query \"up\" }}", 1.0, None).unwrap_err();
    assert!(err.contains("error calling query"), "{err}");
}

#[test]
fn go_type_rules_for_comparisons() {
    // Go refuses to compare float64 with an int constant (a well known
    // Prometheus gotcha); we do the same.
    let err = expand_with("{{ if gt $value 80 }}high{{ end }}", 90.0, None).unwrap_err();
    assert_eq!(
        err,
        "template: __alert_Test:1:118: executing \"__alert_Test\" at <gt $value 80>: error calling gt: incompatible types for comparison"
    );
    let err = expand_with("{{ printf \"%d\" $value }}", 90.0, None).unwrap();
    assert_eq!(err, "%!d(float64=90)");
}

#[test]
fn parse_errors_like_promtool() {
    assert!(check_alert_template("__alert_X", "{{ $labels.job }} down").is_ok());
    assert!(check_alert_template("__alert_X", "no template").is_ok());
    let e = |t: &str| {
        check_alert_template("__alert_X", t)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e("{{ foo $labels }}"),
        "template: __alert_X:1: function \"foo\" not defined"
    );
    assert_eq!(
        e("{{ $labels.job"),
        "template: __alert_X:1: unclosed action"
    );
    assert_eq!(
        e("x {{ end }}"),
        "template: __alert_X:1: unexpected {{end}}"
    );
    assert_eq!(
        e("{{ if $value }}x"),
        "template: __alert_X:1: unexpected EOF"
    );
    assert_eq!(
        e("{{ $foo }}"),
        "template: __alert_X:1: undefined variable \"$foo\""
    );
    assert_eq!(
        e("line1\nline2 {{ humanise $value }}"),
        "template: __alert_X:2: function \"humanise\" not defined"
    );
    let err = check_alert_template("__alert_X", "{{ else }}").unwrap_err();
    assert!(err.is_parse());
    assert_eq!(
        err.prometheus_message("__alert_X"),
        "error parsing template __alert_X: template: __alert_X:1: unexpected {{else}}"
    );
}

#[test]
fn precompiled_alert_template_is_reusable_across_threads() {
    let t = std::sync::Arc::new(
        Template::parse_alert("__alert_T", "{{ $labels.instance }}={{ $value }}").unwrap(),
    );
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let l = labels(&[("instance", "a")]);
                let ext = BTreeMap::new();
                let data = AlertTemplateData {
                    labels: &l,
                    external_labels: &ext,
                    external_url: "",
                    value: i as f64,
                };
                t.execute_alert(&data, None).unwrap()
            })
        })
        .collect();
    let outs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outs, vec!["a=0", "a=1", "a=2", "a=3"]);
}

#[test]
fn struct_field_errors_like_go() {
    let err = expand_with("{{ .Labelz }}", 1.0, None).unwrap_err();
    assert!(
        err.ends_with("can't evaluate field Labelz in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }"),
        "{err}"
    );
}
