//! The dynamic data model templates run against.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A dynamically typed template value, the counterpart of the Go values
/// (`any`) a `text/template` walks over.
///
/// Containers are reference counted, so cloning a value is cheap.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// Go's untyped `nil` (also the value of a missing field of `nil` data).
    #[default]
    Nil,
    /// A `bool`.
    Bool(bool),
    /// A Go `int`.
    Int(i64),
    /// A `float64`.
    Float(f64),
    /// A `string`.
    String(Arc<str>),
    /// A `[]any`.
    List(Arc<Vec<Value>>),
    /// A `map[string]any`: a missing key reads as `nil` (printed `<no value>`).
    Map(Arc<BTreeMap<String, Value>>),
    /// A `map[string]string` (label sets): a missing key reads as `""`.
    StringMap(Arc<BTreeMap<String, String>>),
    /// A Prometheus query result element (`*template.sample`), with the fields
    /// `.Labels` and `.Value`.
    Sample(Arc<Sample>),
    /// A Go struct: fields are read with `.Name`; reading a field it does not
    /// have is an error, as in Go.
    Struct(Arc<Struct>),
    /// A `*time.Time` (as returned by `toTime`), always in UTC.
    Time(Time),
    /// A `*time.Duration` in nanoseconds (as returned by `toDuration`).
    Duration(i64),
}

/// One element of a query result: a label set and a float value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The series labels, including `__name__` when present.
    pub labels: Arc<BTreeMap<String, String>>,
    /// The sample value.
    pub value: f64,
}

/// A Go struct value: an ordered list of named fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Struct {
    /// The Go type name used in error messages and by `%T`.
    pub type_name: String,
    /// Field names and values, in declaration order (the order `%v` prints).
    pub fields: Vec<(String, Value)>,
}

impl Struct {
    /// The value of the field called `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// An instant: seconds and nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time {
    /// Whole seconds since 1970-01-01T00:00:00Z (may be negative).
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

impl Time {
    /// The instant `unix_nanos` nanoseconds after the epoch.
    pub fn from_unix_nanos(unix_nanos: i64) -> Time {
        Time {
            secs: unix_nanos.div_euclid(1_000_000_000),
            nanos: unix_nanos.rem_euclid(1_000_000_000) as u32,
        }
    }

    /// The instant `ms` milliseconds after the epoch.
    pub fn from_unix_millis(ms: i64) -> Time {
        Time {
            secs: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as u32,
        }
    }
}

impl fmt::Display for Time {
    /// Go's `time.Time.String` for a UTC time:
    /// `2006-01-02 15:04:05.999999999 +0000 UTC`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::timefmt::format(
            *self,
            "2006-01-02 15:04:05.999999999 -0700 MST",
        ))
    }
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    /// A list value.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(Arc::new(items.into_iter().collect()))
    }

    /// A `map[string]any` value.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(Arc::new(
            entries.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        ))
    }

    /// A `map[string]string` value (a label set).
    pub fn string_map<K: Into<String>, V: Into<String>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Value {
        Value::StringMap(Arc::new(
            entries
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// A struct value with the given Go type name and fields.
    pub fn structure<K: Into<String>>(
        type_name: impl Into<String>,
        fields: impl IntoIterator<Item = (K, Value)>,
    ) -> Value {
        Value::Struct(Arc::new(Struct {
            type_name: type_name.into(),
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }))
    }

    /// A query-result sample value.
    pub fn sample(labels: BTreeMap<String, String>, value: f64) -> Value {
        Value::Sample(Arc::new(Sample {
            labels: Arc::new(labels),
            value,
        }))
    }

    /// The Go type name, as `%T` and error messages print it.
    pub fn type_name(&self) -> Cow<'static, str> {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::StringMap(_) => "map[string]string".into(),
            Value::Sample(_) => "*template.sample".into(),
            Value::Struct(s) => s.type_name.clone().into(),
            Value::Time(_) => "*time.Time".into(),
            Value::Duration(_) => "*time.Duration".into(),
        }
    }

    /// Go's template truth: false for nil, false, zero numbers and empty
    /// strings, lists and maps; true for everything else.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::StringMap(m) => !m.is_empty(),
            Value::Sample(_) | Value::Struct(_) | Value::Time(_) | Value::Duration(_) => true,
        }
    }

    /// The string inside a `String` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    /// What a template action prints for this value (`{{ . }}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::gofmt::print_action_value(self))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int(v.into())
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(v.into())
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::String(v.into())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::String(v.into())
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::List(Arc::new(v))
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(v: BTreeMap<String, Value>) -> Value {
        Value::Map(Arc::new(v))
    }
}

impl From<BTreeMap<String, String>> for Value {
    fn from(v: BTreeMap<String, String>) -> Value {
        Value::StringMap(Arc::new(v))
    }
}

impl From<Sample> for Value {
    fn from(v: Sample) -> Value {
        Value::Sample(Arc::new(v))
    }
}

impl From<Time> for Value {
    fn from(v: Time) -> Value {
        Value::Time(v)
    }
}
