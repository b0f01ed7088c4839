//! From a YAML [`Node`] tree to rule groups, with the strictness of
//! Prometheus's decoder (`gopkg.in/yaml.v3` with known fields only): every
//! structure problem is collected, each naming the group and rule it is in.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::error::{ErrorKind, Location, RuleFileError};
use crate::yaml::{go_yaml_int, plain_is_number, Node};
use crate::{Rule, RuleFile, RuleGroup};

const TYPE_FILE: &str = "rulefmt.RuleGroups";
const TYPE_GROUP: &str = "rulefmt.RuleGroup";
const TYPE_RULE: &str = "rulefmt.RuleNode";
const TYPE_GROUPS: &str = "[]rulefmt.RuleGroup";
const TYPE_RULES: &str = "[]rulefmt.RuleNode";
const TYPE_STRING: &str = "string";
const TYPE_INT: &str = "int";
const TYPE_STRING_MAP: &str = "map[string]string";

#[derive(Default)]
pub(crate) struct Decoder {
    pub errors: Vec<RuleFileError>,
}

impl Decoder {
    fn error(&mut self, location: &Location, kind: ErrorKind) {
        self.errors.push(RuleFileError::new(location.clone(), kind));
    }

    fn wrong_type(&mut self, location: &Location, node: &Node, expected: &'static str) {
        self.error(
            location,
            ErrorKind::WrongType {
                found: node.describe(),
                expected,
            },
        );
    }

    /// A whole file: `groups: [...]`.
    pub fn file(&mut self, root: Option<&Node>) -> RuleFile {
        let mut file = RuleFile::default();
        let Some(root) = root else {
            return file;
        };
        let location = Location::File;
        let Node::Map(entries) = root else {
            self.wrong_type(&location, root, TYPE_FILE);
            return file;
        };
        for (key, value) in entries {
            match key_text(key) {
                "groups" => {
                    for (i, item) in self
                        .sequence(&location, value, TYPE_GROUPS)
                        .iter()
                        .enumerate()
                    {
                        if let Some(group) = self.group(item, i + 1) {
                            file.groups.push(group);
                        }
                    }
                }
                other => self.unknown_field(&location, other, TYPE_FILE),
            }
        }
        file
    }

    /// One group; `position` (1-based) names it when it has no mapping to
    /// take a name from. `None` for a null item (yaml.v3 drops those) or a
    /// wrong type.
    pub fn group(&mut self, node: &Node, position: usize) -> Option<RuleGroup> {
        let entries = match node {
            Node::Map(entries) => entries,
            Node::Scalar(s) if s.is_null() => return None,
            other => {
                self.wrong_type(&Location::GroupIndex(position), other, TYPE_GROUP);
                return None;
            }
        };
        let name = entries
            .iter()
            .find(|(k, _)| key_text(k) == "name")
            .and_then(|(_, v)| match v {
                Node::Scalar(s) if !s.is_null() => Some(s.text.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let location = Location::Group(name.clone());
        let mut group = RuleGroup {
            name,
            ..RuleGroup::default()
        };
        let mut rule_nodes: &[Node] = &[];
        for (key, value) in entries {
            match key_text(key) {
                "name" => {
                    self.string(&location, value);
                }
                "interval" => {
                    group.interval = self.duration(&location, value).filter(|d| !d.is_zero());
                }
                "query_offset" => group.query_offset = self.duration(&location, value),
                "limit" => group.limit = self.int(&location, value),
                "rules" => rule_nodes = self.sequence(&location, value, TYPE_RULES),
                other => self.unknown_field(&location, other, TYPE_GROUP),
            }
        }
        for (i, item) in rule_nodes.iter().enumerate() {
            if let Some(rule) = self.rule(item, &group.name, i + 1) {
                group.rules.push(rule);
            }
        }
        Some(group)
    }

    fn rule(&mut self, node: &Node, group: &str, index: usize) -> Option<Rule> {
        let entries = match node {
            Node::Map(entries) => entries,
            Node::Scalar(s) if s.is_null() => return None,
            other => {
                let location = Location::Rule {
                    group: group.to_string(),
                    index,
                    name: String::new(),
                };
                self.wrong_type(&location, other, TYPE_RULE);
                return None;
            }
        };
        let field_text = |field: &str| {
            entries
                .iter()
                .find(|(k, _)| key_text(k) == field)
                .map(|(_, v)| node_text(v))
                .unwrap_or_default()
        };
        let record = field_text("record");
        let alert = field_text("alert");
        let location = Location::Rule {
            group: group.to_string(),
            index,
            name: if alert.is_empty() {
                record.clone()
            } else {
                alert.clone()
            },
        };
        let mut rule = Rule {
            record: Some(record).filter(|s| !s.is_empty()),
            alert: Some(alert).filter(|s| !s.is_empty()),
            ..Rule::default()
        };
        for (key, value) in entries {
            match key_text(key) {
                // Prometheus keeps these three as raw YAML nodes: any
                // scalar's text, "" for a sequence or mapping.
                "record" | "alert" => {}
                "expr" => rule.expr = node_text(value),
                "for" => rule.for_ = self.duration(&location, value).unwrap_or_default(),
                "keep_firing_for" => {
                    rule.keep_firing_for = self.duration(&location, value).unwrap_or_default()
                }
                "labels" => rule.labels = self.string_map(&location, value),
                "annotations" => rule.annotations = self.string_map(&location, value),
                other => self.unknown_field(&location, other, TYPE_RULE),
            }
        }
        Some(rule)
    }

    fn unknown_field(&mut self, location: &Location, field: &str, in_type: &'static str) {
        self.error(
            location,
            ErrorKind::UnknownField {
                field: field.to_string(),
                in_type,
            },
        );
    }

    /// A list; null is empty.
    fn sequence<'n>(
        &mut self,
        location: &Location,
        node: &'n Node,
        expected: &'static str,
    ) -> &'n [Node] {
        match node {
            Node::Seq(items) => items,
            Node::Scalar(s) if s.is_null() => &[],
            other => {
                self.wrong_type(location, other, expected);
                &[]
            }
        }
    }

    /// A string field: any scalar's text; null is "".
    fn string(&mut self, location: &Location, node: &Node) -> String {
        match node {
            Node::Scalar(s) if s.is_null() => String::new(),
            Node::Scalar(s) => s.text.clone(),
            other => {
                self.wrong_type(location, other, TYPE_STRING);
                String::new()
            }
        }
    }

    /// A duration field; null (or empty) is absent.
    fn duration(&mut self, location: &Location, node: &Node) -> Option<Duration> {
        match node {
            Node::Scalar(s) if s.is_null() => None,
            Node::Scalar(s) => match parse_duration(&s.text) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(location, ErrorKind::Duration(e));
                    None
                }
            },
            other => {
                self.wrong_type(location, other, TYPE_STRING);
                None
            }
        }
    }

    /// An int field as yaml.v3 decodes one (floats truncated, `0x10`,
    /// `1_000`); null is 0. A negative limit means no limit to
    /// Prometheus, and becomes 0 (no limit) here.
    fn int(&mut self, location: &Location, node: &Node) -> usize {
        let Node::Scalar(s) = node else {
            self.wrong_type(location, node, TYPE_INT);
            return 0;
        };
        if s.is_null() {
            return 0;
        }
        let quoted_number = s.value.is_string() && plain_is_number(&s.text);
        let parsed = if s.value.is_bool() || quoted_number {
            None
        } else {
            go_yaml_int(&s.text)
        };
        match parsed {
            Some(v) => usize::try_from(v).unwrap_or(0),
            None => {
                self.wrong_type(location, node, TYPE_INT);
                0
            }
        }
    }

    /// `labels` / `annotations`: a mapping of strings; null is empty,
    /// entries with a null key are dropped (as yaml.v3 does).
    fn string_map(&mut self, location: &Location, node: &Node) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let entries = match node {
            Node::Map(entries) => entries,
            Node::Scalar(s) if s.is_null() => return out,
            other => {
                self.wrong_type(location, other, TYPE_STRING_MAP);
                return out;
            }
        };
        for (key, value) in entries {
            let key = match key {
                Node::Scalar(s) if s.is_null() => continue,
                Node::Scalar(s) => s.text.clone(),
                other => {
                    self.wrong_type(location, other, TYPE_STRING);
                    continue;
                }
            };
            let value = self.string(location, value);
            // `1: a` and `"1": b` are different keys to serde_yaml, the
            // same to yaml.v3.
            if out.insert(key.clone(), value).is_some() {
                self.error(
                    location,
                    ErrorKind::Yaml(format!("mapping key {key:?} already defined")),
                );
            }
        }
        out
    }
}

/// A mapping key as yaml.v3 matches struct fields: the scalar's text.
fn key_text(node: &Node) -> &str {
    match node {
        Node::Scalar(s) => &s.text,
        _ => "",
    }
}

/// A `yaml.Node` field's `Value`: any scalar's text (even `~`), "" for
/// collections.
fn node_text(node: &Node) -> String {
    match node {
        Node::Scalar(s) => s.text.clone(),
        _ => String::new(),
    }
}
