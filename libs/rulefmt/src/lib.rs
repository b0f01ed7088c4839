//! Prometheus rule files: parsing, validation and serialisation.
//!
//! A rule file is a YAML document `groups: [...]`; each group has a
//! `name`, an optional evaluation `interval`, `query_offset` and `limit`,
//! and `rules`, each a recording rule (`record`) or an alerting rule
//! (`alert`, with `for`, `keep_firing_for` and templated `labels` /
//! `annotations`). [`parse_rule_file`] reads such a file,
//! [`parse_rule_group`] a single group (the body of Cortex/Mimir's
//! `POST /config/v1/rules/<namespace>`).
//!
//! # Strictness
//!
//! Validation follows `promtool check rules` of Prometheus 2.42 (its
//! `model/rulefmt` package): unknown fields and wrongly typed values are
//! errors, group names must be present and unique, expressions must parse
//! as PromQL, recording rules need a valid metric name and may not have
//! `for`, `keep_firing_for` or annotations, label and annotation names
//! must be valid label names (`__name__` is refused as a label), and the
//! label and annotation templates of alerting rules must parse. Every
//! problem is reported ([`RuleFileErrors`]), each naming its group and
//! rule, with Prometheus's messages:
//!
//! ```
//! let err = strata_rulefmt::parse_rule_file(
//!     "groups:\n- name: g1\n  rules:\n  - record: foo-bar\n    expr: sum(up\n",
//! )
//! .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "group \"g1\", rule 1, \"foo-bar\": could not parse expression: 1:7: parse error: unclosed left parenthesis\n\
//!      group \"g1\", rule 1, \"foo-bar\": invalid recording rule name: foo-bar"
//! );
//! ```
//!
//! Where this crate differs from promtool 2.42, on purpose:
//!
//! * `query_offset` on a group is accepted (Prometheus ≥ 2.53 has it).
//! * A second YAML document with content is an error; Prometheus 2.42
//!   reads the first document and silently ignores the others.
//! * A negative `limit` (which Prometheus treats as no limit) reads as 0,
//!   no limit.
//! * Expressions are parsed by [`strata_promql::parse`], which follows
//!   Prometheus 3's grammar and has nesting and size limits; templates by
//!   [`strata_template::check_alert_template`], which follows Go ≥ 1.23
//!   (`{{ else with }}` parses; promtool 2.42, built with Go 1.19, refuses
//!   it).
//! * Messages carry the group and rule but not promtool's `line:column`
//!   prefixes (YAML syntax errors do give the line and column).
//! * Duplicate rules (same name and labels) are a lint warning for
//!   promtool (exit code 0 unless `--lint-fatal`); they are accepted here
//!   and can be listed with [`RuleFile::duplicate_rules`].
//!
//! # Serialisation
//!
//! [`RuleGroup::to_yaml`], [`RuleFile::to_yaml`] and [`namespaces_to_yaml`]
//! write YAML as Prometheus marshals rule groups: empty fields left out,
//! durations in Prometheus's canonical form (`1h30m`, `0s`). Parsing the
//! output gives back an equal value.

mod decode;
mod duration;
mod error;
mod serialize;
mod validate;
mod yaml;

use std::collections::BTreeMap;
use std::time::Duration;

pub use duration::{format_duration, parse_duration, DurationError, PromDuration};
pub use error::{ErrorKind, Location, RuleFileError, RuleFileErrors};
pub use serialize::namespaces_to_yaml;

/// A rule file: a list of groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

/// A group of rules, evaluated in order at the same interval.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleGroup {
    pub name: String,
    /// Evaluation interval; `None` (also for `0s`) means the default.
    pub interval: Option<Duration>,
    /// How far in the past to evaluate (`query_offset`, Prometheus ≥ 2.53);
    /// `None` means the default, `Some(0)` explicitly none.
    pub query_offset: Option<Duration>,
    /// Most series an evaluation may produce (alerts for an alerting
    /// rule); 0 means no limit.
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// A recording rule (`record` set) or an alerting rule (`alert` set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Name of the recorded series; never `Some("")`.
    pub record: Option<String>,
    /// Name of the alert; never `Some("")`.
    pub alert: Option<String>,
    /// The PromQL expression.
    pub expr: String,
    /// How long an alert is pending before it fires (alerting rules).
    pub for_: Duration,
    /// How long an alert keeps firing after its condition went away
    /// (alerting rules).
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    /// Templated annotations (alerting rules).
    pub annotations: BTreeMap<String, String>,
}

/// A rule that promtool's duplicate-rules lint reports: the same name and
/// labels more than once in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRule {
    /// The rule's name (`alert`, else `record`).
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Parses and validates a rule file (a `groups:` document). An empty file
/// is a file without groups, as for promtool.
pub fn parse_rule_file(yaml: &str) -> Result<RuleFile, RuleFileErrors> {
    let root = yaml::load(yaml).map_err(file_error)?;
    let mut decoder = decode::Decoder::default();
    let file = decoder.file(root.as_ref());
    if let Some(errors) = RuleFileErrors::from_vec(decoder.errors) {
        return Err(errors);
    }
    file.validate()?;
    Ok(file)
}

/// Parses and validates one rule group document (`name: ..., interval:
/// ..., rules: [...]`), the body of Cortex/Mimir's
/// `POST /config/v1/rules/<namespace>`.
pub fn parse_rule_group(yaml: &str) -> Result<RuleGroup, RuleFileErrors> {
    let root = yaml::load(yaml).map_err(file_error)?;
    let mut decoder = decode::Decoder::default();
    // An empty document is a group without a name, which fails validation.
    let group = match &root {
        Some(node) => decoder.group(node, 1),
        None => Some(RuleGroup::default()),
    };
    if let Some(errors) = RuleFileErrors::from_vec(decoder.errors) {
        return Err(errors);
    }
    let group = group.unwrap_or_default();
    group.validate()?;
    Ok(group)
}

fn file_error(kind: ErrorKind) -> RuleFileErrors {
    RuleFileErrors::from_vec(vec![RuleFileError::new(Location::File, kind)]).expect("one error")
}

impl RuleFile {
    /// Checks everything [`parse_rule_file`] checks after decoding (for
    /// files built in code).
    pub fn validate(&self) -> Result<(), RuleFileErrors> {
        let mut errors = Vec::new();
        validate::validate_groups(&self.groups, &mut errors);
        RuleFileErrors::from_vec(errors).map_or(Ok(()), Err)
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Number of rules in all groups.
    pub fn rule_count(&self) -> usize {
        self.groups.iter().map(RuleGroup::rule_count).sum()
    }

    /// Rules in the largest group (0 without groups).
    pub fn max_rules_per_group(&self) -> usize {
        self.groups
            .iter()
            .map(RuleGroup::rule_count)
            .max()
            .unwrap_or(0)
    }

    /// Each group's name and number of rules, in file order.
    pub fn rules_per_group(&self) -> Vec<(&str, usize)> {
        self.groups
            .iter()
            .map(|g| (g.name.as_str(), g.rule_count()))
            .collect()
    }

    /// promtool's duplicate-rules lint: rules with the same name and
    /// labels, each reported once, sorted by name then labels.
    pub fn duplicate_rules(&self) -> Vec<DuplicateRule> {
        let mut keys: Vec<(&str, &BTreeMap<String, String>)> = self
            .groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .map(|r| (r.name(), &r.labels))
            .collect();
        keys.sort();
        let mut out: Vec<DuplicateRule> = Vec::new();
        for pair in keys.windows(2) {
            if pair[0] == pair[1] {
                let (name, labels) = pair[1];
                let already = out
                    .last()
                    .is_some_and(|d| d.name == name && &d.labels == labels);
                if !already {
                    out.push(DuplicateRule {
                        name: name.to_string(),
                        labels: labels.clone(),
                    });
                }
            }
        }
        out
    }

    /// The file as YAML (`groups:` document).
    pub fn to_yaml(&self) -> String {
        serialize::file_to_yaml(self)
    }
}

impl RuleGroup {
    /// Checks everything [`parse_rule_group`] checks after decoding (for
    /// groups built in code).
    pub fn validate(&self) -> Result<(), RuleFileErrors> {
        let mut errors = Vec::new();
        validate::validate_group(self, &mut errors);
        RuleFileErrors::from_vec(errors).map_or(Ok(()), Err)
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The group as a YAML document (`name: ...`), the form
    /// [`parse_rule_group`] reads.
    pub fn to_yaml(&self) -> String {
        serialize::group_to_yaml(self)
    }
}

impl Rule {
    /// The alert's name, else the recorded series' name, else "".
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .filter(|a| !a.is_empty())
            .or(self.record.as_deref())
            .unwrap_or("")
    }

    /// Whether this is an alerting rule.
    pub fn is_alerting(&self) -> bool {
        self.alert.as_deref().is_some_and(|a| !a.is_empty())
    }

    /// Whether this is a recording rule.
    pub fn is_recording(&self) -> bool {
        !self.is_alerting() && self.record.as_deref().is_some_and(|r| !r.is_empty())
    }
}
