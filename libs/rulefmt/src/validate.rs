//! The semantic checks of Prometheus's `rulefmt` (`RuleGroups.Validate`,
//! `RuleNode.Validate`, `testTemplateParsing`).

use std::collections::HashSet;

use strata_model::{is_valid_label_name, is_valid_metric_name};

use crate::error::{ErrorKind, Location, RuleFileError};
use crate::{Rule, RuleGroup};

/// The label that must not be set by a rule.
const METRIC_NAME_LABEL: &str = "__name__";

/// Checks the groups of one file: names present and unique, every rule.
pub(crate) fn validate_groups(groups: &[RuleGroup], errors: &mut Vec<RuleFileError>) {
    let mut seen = HashSet::new();
    for group in groups {
        if group.name.is_empty() {
            errors.push(RuleFileError::new(
                Location::Group(String::new()),
                ErrorKind::EmptyGroupName,
            ));
        }
        if !seen.insert(group.name.as_str()) {
            errors.push(RuleFileError::new(
                Location::Group(group.name.clone()),
                ErrorKind::RepeatedGroupName(group.name.clone()),
            ));
        }
        validate_rules(group, errors);
    }
}

/// Checks one group on its own: a name, and every rule.
pub(crate) fn validate_group(group: &RuleGroup, errors: &mut Vec<RuleFileError>) {
    if group.name.is_empty() {
        errors.push(RuleFileError::new(
            Location::Group(String::new()),
            ErrorKind::EmptyGroupName,
        ));
    }
    validate_rules(group, errors);
}

fn validate_rules(group: &RuleGroup, errors: &mut Vec<RuleFileError>) {
    for (i, rule) in group.rules.iter().enumerate() {
        let location = Location::Rule {
            group: group.name.clone(),
            index: i + 1,
            name: rule.name().to_string(),
        };
        for kind in validate_rule(rule) {
            errors.push(RuleFileError::new(location.clone(), kind));
        }
    }
}

/// The problems of one rule, in Prometheus's order (labels and annotations
/// sorted by name, where Prometheus goes in map order).
pub(crate) fn validate_rule(rule: &Rule) -> Vec<ErrorKind> {
    let mut problems = Vec::new();
    let record = rule.record.as_deref().unwrap_or("");
    let alert = rule.alert.as_deref().unwrap_or("");
    if !record.is_empty() && !alert.is_empty() {
        problems.push(ErrorKind::RecordAndAlert);
    }
    if record.is_empty() && alert.is_empty() {
        problems.push(ErrorKind::NoRecordOrAlert);
    }
    if rule.expr.is_empty() {
        problems.push(ErrorKind::MissingExpr);
    } else if let Err(e) = strata_promql::parse(&rule.expr) {
        problems.push(ErrorKind::BadExpr(e.to_string()));
    }
    if !record.is_empty() {
        if !rule.annotations.is_empty() {
            problems.push(ErrorKind::AnnotationsInRecordingRule);
        }
        if !rule.for_.is_zero() {
            problems.push(ErrorKind::ForInRecordingRule);
        }
        if !rule.keep_firing_for.is_zero() {
            problems.push(ErrorKind::KeepFiringForInRecordingRule);
        }
        if !is_valid_metric_name(record) {
            problems.push(ErrorKind::InvalidRecordName(record.to_string()));
        }
    }
    for name in rule.labels.keys() {
        if !is_valid_label_name(name) || name == METRIC_NAME_LABEL {
            problems.push(ErrorKind::InvalidLabelName(name.clone()));
        }
        // Label values must be UTF-8, which a Rust string always is.
    }
    for name in rule.annotations.keys() {
        if !is_valid_label_name(name) {
            problems.push(ErrorKind::InvalidAnnotationName(name.clone()));
        }
    }
    if !alert.is_empty() {
        let template_name = format!("__alert_{alert}");
        for (what, map) in [("label", &rule.labels), ("annotation", &rule.annotations)] {
            for (name, text) in map {
                if let Err(message) = check_template(&template_name, text) {
                    problems.push(ErrorKind::Template {
                        what,
                        name: name.clone(),
                        message,
                    });
                }
            }
        }
    }
    problems
}

/// Parses an alert template as Prometheus does before accepting a rule:
/// with the `$labels`, `$externalLabels`, `$externalURL` and `$value`
/// definitions prepended, under the name `__alert_<alertname>`.
fn check_template(name: &str, text: &str) -> Result<(), String> {
    strata_template::check_alert_template(name, text).map_err(|e| e.to_string())
}
