//! Loading YAML into a tree that keeps what `gopkg.in/yaml.v3` decodes
//! from: every scalar's text as written (after unquoting) next to its
//! resolved type.
//!
//! `serde_yaml` (libyaml, like yaml.v3) resolves `1.10` to the number 1.1
//! and `~` to null; Prometheus decodes string fields from the scalar's
//! text, so a label `version: 1.10` stays `"1.10"`. The document is read
//! twice: once into a [`serde_yaml::Value`] (structure, types, duplicate
//! keys, aliases), then once more guided by that value, asking for every
//! scalar as a string to get its text.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_yaml::Value;

use crate::error::ErrorKind;

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A scalar: its text and its resolved type (`value` is never a sequence,
/// mapping or tagged value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    pub value: Value,
}

impl Scalar {
    pub fn is_null(&self) -> bool {
        self.value.is_null()
    }

    /// yaml.v3's short tag of the scalar.
    pub fn tag(&self) -> &'static str {
        match &self.value {
            Value::Null => "!!null",
            Value::Bool(_) => "!!bool",
            Value::Number(n) if n.is_f64() => "!!float",
            Value::Number(_) => "!!int",
            _ => "!!str",
        }
    }
}

impl Node {
    /// How yaml.v3 names the node in a type error: `!!seq`, `!!map`, or
    /// the tag and value of a scalar (long values cut short as yaml.v3
    /// does).
    pub fn describe(&self) -> String {
        match self {
            Node::Seq(_) => "!!seq".to_string(),
            Node::Map(_) => "!!map".to_string(),
            Node::Scalar(s) => {
                let text = if s.text.chars().count() > 10 {
                    let short: String = s.text.chars().take(7).collect();
                    format!("{short}...")
                } else {
                    s.text.clone()
                };
                format!("{} `{}`", s.tag(), text)
            }
        }
    }
}

/// Loads a YAML text as one document. An empty text (or only comments, or
/// `---`) is `None`. Trailing empty documents are allowed; a second
/// document with content is an error (Prometheus 2.42 ignores it, which
/// would drop rules without a word).
pub(crate) fn load(text: &str) -> Result<Option<Node>, ErrorKind> {
    let mut documents = serde_yaml::Deserializer::from_str(text);
    let value = match documents.next() {
        None => return Ok(None),
        Some(doc) => Value::deserialize(doc).map_err(yaml_error)?,
    };
    // Only the first error of a broken stream is meaningful: the iterator
    // keeps repeating it.
    for doc in documents {
        match Value::deserialize(doc) {
            Ok(Value::Null) => {}
            Ok(_) => return Err(ErrorKind::MultipleDocuments),
            Err(e) => return Err(yaml_error(e)),
        }
    }
    if value.is_null() {
        return Ok(None);
    }
    let first = serde_yaml::Deserializer::from_str(text)
        .next()
        .ok_or_else(|| ErrorKind::Yaml("document disappeared on second read".to_string()))?;
    let node = Guide(&value).deserialize(first).map_err(yaml_error)?;
    Ok(Some(apply_merges(node)))
}

/// Applies YAML merge keys (`<<: *base`, `<<: [*a, *b]`) as yaml.v3 does:
/// keys written in the mapping win over merged ones, earlier merged
/// mappings over later ones.
fn apply_merges(node: Node) -> Node {
    match node {
        Node::Scalar(_) => node,
        Node::Seq(items) => Node::Seq(items.into_iter().map(apply_merges).collect()),
        Node::Map(entries) => {
            let mut own = Vec::with_capacity(entries.len());
            let mut sources = Vec::new();
            for (key, value) in entries {
                let value = apply_merges(value);
                match (&key, value) {
                    (Node::Scalar(k), Node::Map(m)) if k.text == "<<" => sources.push(m),
                    (Node::Scalar(k), Node::Seq(items))
                        if k.text == "<<" && items.iter().all(|i| matches!(i, Node::Map(_))) =>
                    {
                        sources.extend(items.into_iter().filter_map(|i| match i {
                            Node::Map(m) => Some(m),
                            _ => None,
                        }));
                    }
                    (_, value) => own.push((apply_merges(key), value)),
                }
            }
            for (key, value) in sources.into_iter().flatten() {
                let present = own.iter().any(|(k, _)| same_key(k, &key));
                if !present {
                    own.push((key, value));
                }
            }
            Node::Map(own)
        }
    }
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Scalar(a), Node::Scalar(b)) => a.text == b.text,
        _ => a == b,
    }
}

fn yaml_error(e: serde_yaml::Error) -> ErrorKind {
    ErrorKind::Yaml(e.to_string())
}

/// Strips custom tags (`!foo bar`): yaml.v3 decodes the value under them.
fn untag(value: &Value) -> &Value {
    match value {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

/// Deserializes the node that `0` was read from, as a [`Node`].
struct Guide<'v>(&'v Value);

impl<'de> DeserializeSeed<'de> for Guide<'_> {
    type Value = Node;

    fn deserialize<D>(self, deserializer: D) -> Result<Node, D::Error>
    where
        D: de::Deserializer<'de>,
    {
        match untag(self.0) {
            Value::Sequence(items) => deserializer.deserialize_seq(SeqGuide(items)),
            Value::Mapping(map) => deserializer.deserialize_map(MapGuide(map)),
            scalar => {
                let text = deserializer.deserialize_str(TextVisitor)?;
                Ok(Node::Scalar(Scalar {
                    text,
                    value: scalar.clone(),
                }))
            }
        }
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
}

struct SeqGuide<'v>(&'v [Value]);

impl<'de> Visitor<'de> for SeqGuide<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut out = Vec::with_capacity(self.0.len());
        for item in self.0 {
            let node = seq
                .next_element_seed(Guide(item))?
                .ok_or_else(|| de::Error::custom("sequence shorter on second read"))?;
            out.push(node);
        }
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("sequence longer on second read"));
        }
        Ok(Node::Seq(out))
    }
}

struct MapGuide<'v>(&'v serde_yaml::Mapping);

impl<'de> Visitor<'de> for MapGuide<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut out = Vec::with_capacity(self.0.len());
        for (k, v) in self.0 {
            let key = map
                .next_key_seed(Guide(k))?
                .ok_or_else(|| de::Error::custom("mapping shorter on second read"))?;
            let value = map.next_value_seed(Guide(v))?;
            out.push((key, value));
        }
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("mapping longer on second read"));
        }
        Ok(Node::Map(out))
    }
}

/// Whether libyaml's core schema (as `serde_yaml` applies it) reads `text`,
/// written plain, as a number. A string that would is one that was quoted.
pub(crate) fn plain_is_number(text: &str) -> bool {
    matches!(serde_yaml::from_str::<Value>(text), Ok(Value::Number(_)))
}

/// The integer yaml.v3 resolves a plain scalar to when decoding into an
/// `int`: ints with `_` separators, `0x`/`0o`/`0b` prefixes and legacy
/// octal (`010`), and floats truncated towards zero.
pub(crate) fn go_yaml_int(text: &str) -> Option<i64> {
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(v) = go_parse_int(&plain) {
        return Some(v);
    }
    if is_yaml_float(&plain) {
        let f: f64 = plain.parse().ok()?;
        // yaml.v3: resolved <= math.MaxInt64 (as floats) and no overflow.
        if f.is_finite() && f <= i64::MAX as f64 && f >= i64::MIN as f64 {
            return Some(f as i64);
        }
    }
    None
}

/// `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

/// yaml.v3's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &Scalar {
        match node {
            Node::Scalar(s) => s,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn keeps_scalar_text() {
        let node = load("a: 1.10\nb: ~\nc:\nd: 0x10\ne: 'x'\nf: [True]\n")
            .unwrap()
            .unwrap();
        let Node::Map(entries) = node else {
            panic!("not a map")
        };
        let texts: Vec<(&str, &str, &str)> = entries
            .iter()
            .filter_map(|(k, v)| match v {
                Node::Scalar(s) => Some((scalar(k).text.as_str(), s.text.as_str(), s.tag())),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("a", "1.10", "!!float"),
                ("b", "~", "!!null"),
                ("c", "", "!!null"),
                ("d", "0x10", "!!int"),
                ("e", "x", "!!str"),
            ]
        );
        let Node::Seq(items) = &entries[5].1 else {
            panic!("not a seq")
        };
        assert_eq!(scalar(&items[0]).text, "True");
        assert_eq!(scalar(&items[0]).tag(), "!!bool");
    }

    #[test]
    fn aliases_are_resolved() {
        let node = load("a: &x {k: v}\nb: *x\n").unwrap().unwrap();
        let Node::Map(entries) = node else {
            panic!("not a map")
        };
        assert_eq!(entries[0].1, entries[1].1);
    }

    #[test]
    fn merge_keys() {
        let node = load(
            "a: &a {x: 1, y: 2}\nb: &b {y: 3, z: 4}\nc:\n  <<: [*a, *b]\n  x: 0\nd:\n  x: 5\n  <<: *b\n",
        )
        .unwrap()
        .unwrap();
        let Node::Map(entries) = node else {
            panic!("not a map")
        };
        let flat = |n: &Node| -> Vec<(String, String)> {
            let Node::Map(m) = n else { panic!("not a map") };
            m.iter()
                .map(|(k, v)| (scalar(k).text.clone(), scalar(v).text.clone()))
                .collect()
        };
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            flat(&entries[2].1),
            pairs(&[("x", "0"), ("y", "2"), ("z", "4")])
        );
        assert_eq!(
            flat(&entries[3].1),
            pairs(&[("x", "5"), ("y", "3"), ("z", "4")])
        );
    }

    #[test]
    fn empty_documents() {
        assert_eq!(load("").unwrap(), None);
        assert_eq!(load("# nothing\n").unwrap(), None);
        assert_eq!(load("---\n").unwrap(), None);
        assert!(load("a: 1\n---\n").unwrap().is_some());
        assert_eq!(load("a: 1\n---\nb: 2\n"), Err(ErrorKind::MultipleDocuments));
        assert!(matches!(load("a: 1\n---\nb: [\n"), Err(ErrorKind::Yaml(_))));
        assert!(matches!(load("a: 1\na: 2\n"), Err(ErrorKind::Yaml(_))));
        assert!(matches!(load("a:\n\t- b\n"), Err(ErrorKind::Yaml(_))));
    }

    #[test]
    fn go_ints() {
        for (text, want) in [
            ("5", Some(5)),
            ("-5", Some(-5)),
            ("1_000", Some(1000)),
            ("010", Some(8)),
            ("0x10", Some(16)),
            ("0o17", Some(15)),
            ("0b101", Some(5)),
            ("1.9", Some(1)),
            ("1e3", Some(1000)),
            (".5", Some(0)),
            ("-1.5", Some(-1)),
            ("1e30", None),
            ("abc", None),
            ("", None),
            ("09", Some(9)), // not octal, but a YAML float
            ("1.2.3", None),
        ] {
            assert_eq!(go_yaml_int(text), want, "{text}");
        }
    }

    #[test]
    fn quoted_numbers_are_recognisable() {
        assert!(plain_is_number("5"));
        assert!(plain_is_number("1.5"));
        assert!(!plain_is_number("010"));
        assert!(!plain_is_number("1_000"));
        assert!(!plain_is_number("abc"));
    }
}
