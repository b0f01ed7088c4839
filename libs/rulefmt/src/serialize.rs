//! Rule groups to YAML, as Prometheus marshals `rulefmt.RuleGroup`
//! (`omitempty` fields left out, durations as `model.Duration` prints
//! them) and Cortex's `GET /config/v1/rules` lists them per namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::duration::format_duration;
use crate::{Rule, RuleFile, RuleGroup};

#[derive(Serialize)]
struct FileOut<'a> {
    groups: Vec<GroupOut<'a>>,
}

#[derive(Serialize)]
struct GroupOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_offset: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    limit: usize,
    rules: Vec<RuleOut<'a>>,
}

#[derive(Serialize)]
struct RuleOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a str>,
    expr: &'a str,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_firing_for: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A non-zero duration; zero is left out.
fn non_zero(d: Duration) -> Option<String> {
    (!d.is_zero()).then(|| format_duration(d))
}

fn group_out(group: &RuleGroup) -> GroupOut<'_> {
    GroupOut {
        name: &group.name,
        interval: group.interval.and_then(non_zero),
        query_offset: group.query_offset.map(format_duration),
        limit: group.limit,
        rules: group.rules.iter().map(rule_out).collect(),
    }
}

fn rule_out(rule: &Rule) -> RuleOut<'_> {
    RuleOut {
        record: rule.record.as_deref().filter(|s| !s.is_empty()),
        alert: rule.alert.as_deref().filter(|s| !s.is_empty()),
        expr: &rule.expr,
        for_: non_zero(rule.for_),
        keep_firing_for: non_zero(rule.keep_firing_for),
        labels: &rule.labels,
        annotations: &rule.annotations,
    }
}

fn to_string<T: Serialize>(value: &T) -> String {
    // Serialising strings, maps and lists of them cannot fail.
    serde_yaml::to_string(value).expect("rule groups serialise to YAML")
}

pub(crate) fn group_to_yaml(group: &RuleGroup) -> String {
    to_string(&group_out(group))
}

pub(crate) fn file_to_yaml(file: &RuleFile) -> String {
    to_string(&FileOut {
        groups: file.groups.iter().map(group_out).collect(),
    })
}

/// Groups per namespace as YAML, the shape of Cortex/Mimir's
/// `GET /config/v1/rules`: `<namespace>:` followed by its list of groups.
/// An empty map gives `{}`.
pub fn namespaces_to_yaml(namespaces: &BTreeMap<String, Vec<RuleGroup>>) -> String {
    let out: BTreeMap<&str, Vec<GroupOut<'_>>> = namespaces
        .iter()
        .map(|(ns, groups)| (ns.as_str(), groups.iter().map(group_out).collect()))
        .collect();
    to_string(&out)
}
