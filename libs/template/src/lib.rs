//! A Go `text/template` engine with Prometheus's template functions, for
//! alerting-rule `labels:` and `annotations:`.
//!
//! ```
//! use std::collections::BTreeMap;
//! use strata_template::{expand_alert, AlertTemplateData};
//!
//! let labels = BTreeMap::from([
//!     ("instance".to_string(), "db-1:9100".to_string()),
//!     ("job".to_string(), "node".to_string()),
//! ]);
//! let external = BTreeMap::new();
//! let data = AlertTemplateData {
//!     labels: &labels,
//!     external_labels: &external,
//!     external_url: "http://prom.example.com",
//!     value: 93.456,
//! };
//! let out = expand_alert(
//!     "__alert_HighLoad",
//!     "{{ $labels.instance | stripPort }} of job {{ $labels.job }}: {{ printf \"%.1f\" $value }}%",
//!     &data,
//!     None,
//! )
//! .unwrap();
//! assert_eq!(out, "db-1 of job node: 93.5%");
//! ```
//!
//! # What is supported
//!
//! The language as Go ≥ 1.23 parses and executes it, with Prometheus's
//! option `missingkey=zero`:
//!
//! * text and `{{ }}` actions, trim markers `{{- ` / ` -}}`, comments
//!   `{{/* */}}`, actions spanning lines;
//! * pipelines with `|` (the piped value becomes the last argument),
//!   parenthesised sub-pipelines, `(pipeline).Field` chains;
//! * variables: `$x := …`, `$x = …`, `$`, two-variable `range $i, $e := …`,
//!   Go's scoping (a variable declared inside a control structure ends at
//!   its `{{end}}`; `{{template}}` calls see only `$`);
//! * field chains `.A.b`, `$x.a`: map keys (a missing key of a label map is
//!   `""`, of a `map[string]any` is nil, printed `<no value>`), struct fields
//!   (a missing struct field is an error, as in Go), sample `.Labels`/`.Value`,
//!   and the methods of `toTime`/`toDuration` results (`.Format "2006-01-02"`,
//!   `.Unix`, `.UnixMilli`, `.Add`, `.Sub`, `.String`, `.Seconds`, …);
//! * literals: interpreted strings with Go escapes, raw strings, character
//!   constants, ints (decimal, `0x`, `0o`, `0b`, legacy octal, `_`
//!   separators), floats (also hex floats), `true`, `false`, `nil`; numeric
//!   constants take Go's types (`80` is an int, `80.0` a float64 — and Go's
//!   comparison functions refuse to compare the two, so
//!   `{{ if gt $value 80 }}` is an error here as in Prometheus);
//! * `if` / `else if` / `else`, `range` (lists; maps in sorted key order;
//!   integers; `else` when empty; `break` / `continue`), `with` / `else with`
//!   / `else`, `define`, `template "name" pipeline`, `block`;
//! * Go's builtins `and`, `or` (short-circuiting), `not`, `len`, `index`,
//!   `slice`, `print`, `printf`, `println`, `eq` (several operands), `ne`,
//!   `lt`, `le`, `gt`, `ge`, `html`, `js`, `urlquery`; Go's truth rules;
//! * `printf` with Go's `fmt` semantics: verbs `v s d f F e E g G q x X o O
//!   b c U t T %`, flags `- 0 + space #`, width and precision (also `*`),
//!   argument indexes `%[n]d`, and Go's error forms (`%!d(string=foo)`,
//!   `%!d(MISSING)`, `%!(EXTRA …)`, `%!(NOVERB)`); floats print with Go's
//!   shortest `%v` (`1e+06`, `1.5`, `100`, `1e-05`);
//! * Prometheus's functions: `query`, `first`, `label`, `value`, `strvalue`,
//!   `sortByLabel`, `args`, `humanize`, `humanize1024`, `humanizeDuration`,
//!   `humanizePercentage`, `humanizeTimestamp`, `toTime`, `toDuration`, `now`,
//!   `title`, `toUpper`, `toLower`, `match`, `reReplaceAll`, `safeHtml`,
//!   `stripPort`, `stripDomain`, `parseDuration`, `externalURL`, `pathPrefix`,
//!   `graphLink`, `tableLink`, `urlQueryEscape`.
//!
//! Errors read like Go's: `template: NAME:LINE: function "foo" not defined`,
//! `template: NAME:1:3: executing "NAME" at <humanize "one">: error calling
//! humanize: strconv.ParseFloat: parsing "one": invalid syntax`.
//!
//! # What is not supported
//!
//! * `call` (parses, fails when executed), custom delimiters, `html/template`
//!   contextual escaping (Prometheus's console templates and `tmpl`);
//! * complex-number constants (`1i`) — a parse error here;
//! * native histograms as sample values (samples are floats);
//! * `printf`'s `#` flag on floats (`%#g`, `%#v`), `%b`/`%x` of floats (print
//!   like `%g`), `%p`, and Go-syntax `%#v` of maps, lists and structs;
//! * strings holding invalid UTF-8: `\xff`-style escapes above 0x7F become
//!   U+FFFD, and `slice` of a string cutting a character yields U+FFFD;
//! * time zones: times are UTC (as Prometheus's are); the `Month`/`Weekday`
//!   methods;
//! * regular expressions use the `regex` crate, whose syntax is RE2's with
//!   small differences (e.g. `\d`, `\w` are Unicode-aware);
//! * printing a query result list shows the samples (`[&{map[…] 1}]`) where
//!   Go would print pointer addresses.
//!
//! # Robustness
//!
//! Parsing and execution never panic. Nesting of control structures and
//! parentheses is limited to 100 levels at parse time; execution is bounded
//! by [`Limits`]: output size (1 MiB by default, which also bounds any single
//! string a function builds), executed steps, `range` iterations, `template`
//! call depth and evaluation depth.

mod error;
mod exec;
mod funcs;
mod gofmt;
mod lex;
mod parse;
mod timefmt;
mod value;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub use error::TemplateError;
pub use value::{Sample, Struct, Time, Value};

/// Evaluates PromQL for the `query` template function.
pub trait QueryFunc {
    /// Runs the instant query `expr`; an error aborts the template with
    /// `error calling query: <error>`.
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String>;
}

impl<F> QueryFunc for F
where
    F: Fn(&str) -> Result<Vec<QuerySample>, String>,
{
    fn query(&self, expr: &str) -> Result<Vec<QuerySample>, String> {
        self(expr)
    }
}

/// One element of a `query` result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuerySample {
    /// The series labels (including `__name__` when present).
    pub labels: BTreeMap<String, String>,
    /// The sample value.
    pub value: f64,
}

/// Resource bounds for one execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum output size in bytes; also the maximum size of any string a
    /// function (`printf`, `reReplaceAll`, …) builds.
    pub max_output_bytes: usize,
    /// Maximum number of executed nodes and commands.
    pub max_steps: u64,
    /// Maximum number of `range` iterations, in total.
    pub max_range_iterations: u64,
    /// Maximum depth of nested `{{template}}` calls.
    pub max_template_depth: usize,
    /// Maximum evaluation nesting (lists, pipelines and calls together).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_output_bytes: 1 << 20,
            max_steps: 1_000_000,
            max_range_iterations: 100_000,
            max_template_depth: 50,
            max_depth: 200,
        }
    }
}

/// Everything besides the data that an execution may use.
#[derive(Clone, Copy, Default)]
pub struct ExecOptions<'a> {
    /// The evaluator behind `query`; without one, `query` fails.
    pub query: Option<&'a dyn QueryFunc>,
    /// What `externalURL` returns; `pathPrefix` returns its path.
    pub external_url: &'a str,
    /// The evaluation time `now` returns, in Unix milliseconds; the system
    /// clock when unset.
    pub now_millis: Option<i64>,
    /// Resource bounds.
    pub limits: Limits,
}

impl fmt::Debug for ExecOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecOptions")
            .field("query", &self.query.is_some())
            .field("external_url", &self.external_url)
            .field("now_millis", &self.now_millis)
            .field("limits", &self.limits)
            .finish()
    }
}

/// A parsed template (with the templates it `define`s), reusable and
/// shareable between threads.
pub struct Template {
    name: String,
    /// The source, kept for error positions (empty on the no-action path).
    text: String,
    trees: HashMap<String, Vec<parse::Node>>,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.trees.keys().collect();
        names.sort();
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("templates", &names)
            .finish()
    }
}

impl Template {
    /// Parses `text` as the template `name`.
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        if !text.contains("{{") {
            let list = if text.is_empty() {
                Vec::new()
            } else {
                vec![parse::Node::Text(text.to_string())]
            };
            return Ok(Template {
                name: name.to_string(),
                text: String::new(),
                trees: HashMap::from([(name.to_string(), list)]),
            });
        }
        let trees = parse::parse(name, text)?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            trees,
        })
    }

    /// Parses an alert label/annotation template the way Prometheus's ruler
    /// does: [`ALERT_TEMPLATE_DEFS`] prepended to `text`.
    pub fn parse_alert(name: &str, text: &str) -> Result<Template, TemplateError> {
        Template::parse(name, &format!("{ALERT_TEMPLATE_DEFS}{text}"))
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of the templates this one `define`s (and its own), sorted.
    pub fn template_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.trees.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Executes with `data` as dot, `query` behind the `query` function and
    /// default [`Limits`].
    pub fn execute(
        &self,
        data: &Value,
        query: Option<&dyn QueryFunc>,
    ) -> Result<String, TemplateError> {
        self.execute_with(
            data,
            &ExecOptions {
                query,
                ..ExecOptions::default()
            },
        )
    }

    /// Executes with `data` as dot and everything else from `opts`.
    pub fn execute_with(
        &self,
        data: &Value,
        opts: &ExecOptions<'_>,
    ) -> Result<String, TemplateError> {
        if let Some([parse::Node::Text(t)]) = self.trees.get(&self.name).map(Vec::as_slice) {
            if t.len() <= opts.limits.max_output_bytes {
                return Ok(t.clone());
            }
        }
        exec::execute(self, data, opts)
    }

    /// Executes a template from [`Template::parse_alert`] against alert data,
    /// with `externalURL` returning `data.external_url`.
    pub fn execute_alert(
        &self,
        data: &AlertTemplateData<'_>,
        query: Option<&dyn QueryFunc>,
    ) -> Result<String, TemplateError> {
        self.execute_with(
            &data.to_value(),
            &ExecOptions {
                query,
                external_url: data.external_url,
                ..ExecOptions::default()
            },
        )
    }
}

/// The definitions Prometheus's ruler prepends to every alert label and
/// annotation template.
pub const ALERT_TEMPLATE_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// The data of an alert template: Prometheus's `AlertTemplateData`.
#[derive(Clone, Copy, Debug)]
pub struct AlertTemplateData<'a> {
    /// The alert's labels (`.Labels`, `$labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// The external labels (`.ExternalLabels`, `$externalLabels`).
    pub external_labels: &'a BTreeMap<String, String>,
    /// The external URL (`.ExternalURL`, `$externalURL`, `externalURL`).
    pub external_url: &'a str,
    /// The sample value (`.Value`, `$value`).
    pub value: f64,
}

impl AlertTemplateData<'_> {
    /// The template data: a struct with `Labels`, `ExternalLabels`,
    /// `ExternalURL` and `Value`.
    pub fn to_value(&self) -> Value {
        Value::structure(
            "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }",
            [
                ("Labels", Value::from(self.labels.clone())),
                ("ExternalLabels", Value::from(self.external_labels.clone())),
                ("ExternalURL", Value::string(self.external_url)),
                ("Value", Value::Float(self.value)),
            ],
        )
    }
}

/// Prometheus's alert template expansion: parses [`ALERT_TEMPLATE_DEFS`] +
/// `text` and executes it against `data`. Text without `{{` is returned as
/// is.
pub fn expand_alert(
    name: &str,
    text: &str,
    data: &AlertTemplateData<'_>,
    query: Option<&dyn QueryFunc>,
) -> Result<String, TemplateError> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    Template::parse_alert(name, text)?.execute_alert(data, query)
}

/// What `promtool check rules` checks: that `text`, with
/// [`ALERT_TEMPLATE_DEFS`] prepended, parses.
pub fn check_alert_template(name: &str, text: &str) -> Result<(), TemplateError> {
    if !text.contains("{{") {
        return Ok(());
    }
    Template::parse_alert(name, text).map(|_| ())
}

/// The names of the functions templates can call (Go's builtins and
/// Prometheus's).
pub fn function_names() -> impl Iterator<Item = &'static str> {
    funcs::names()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn template_is_send_sync() {
        assert_send_sync::<Template>();
        assert_send_sync::<Value>();
        assert_send_sync::<TemplateError>();
    }
}
