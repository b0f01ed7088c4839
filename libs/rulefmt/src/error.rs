//! Errors of parsing and validating rule files.

use std::fmt;

use thiserror::Error;

/// Every problem found in one rule file or rule group, in document order
/// (YAML and structure problems first; when there are any, the semantic
/// checks do not run, as in Prometheus). `Display` prints one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileErrors {
    errors: Vec<RuleFileError>,
}

impl RuleFileErrors {
    /// Wraps a list of errors; `None` when it is empty.
    pub(crate) fn from_vec(errors: Vec<RuleFileError>) -> Option<Self> {
        if errors.is_empty() {
            None
        } else {
            Some(RuleFileErrors { errors })
        }
    }

    /// The errors, in the order they were found (never empty).
    pub fn errors(&self) -> &[RuleFileError] {
        &self.errors
    }

    /// How many errors there are (at least one).
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false: a `RuleFileErrors` holds at least one error.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, RuleFileError> {
        self.errors.iter()
    }

    /// The errors, owned.
    pub fn into_vec(self) -> Vec<RuleFileError> {
        self.errors
    }
}

impl fmt::Display for RuleFileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleFileErrors {}

impl<'a> IntoIterator for &'a RuleFileErrors {
    type Item = &'a RuleFileError;
    type IntoIter = std::slice::Iter<'a, RuleFileError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl IntoIterator for RuleFileErrors {
    type Item = RuleFileError;
    type IntoIter = std::vec::IntoIter<RuleFileError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// Where in the document an error is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Location {
    /// The document as a whole (YAML syntax, the top level).
    #[default]
    File,
    /// A group that is not a mapping, by 1-based position in `groups`.
    GroupIndex(usize),
    /// A group, by name (possibly empty).
    Group(String),
    /// A rule, by its group's name, its 1-based position in the group and
    /// its name (`alert`, else `record`; possibly empty).
    Rule {
        group: String,
        index: usize,
        name: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => Ok(()),
            Location::GroupIndex(i) => write!(f, "group {i}"),
            Location::Group(name) => write!(f, "group {name:?}"),
            Location::Rule { group, index, name } => {
                write!(f, "group {group:?}, rule {index}, {name:?}")
            }
        }
    }
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    pub location: Location,
    pub kind: ErrorKind,
}

impl RuleFileError {
    pub(crate) fn new(location: Location, kind: ErrorKind) -> Self {
        RuleFileError { location, kind }
    }
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.location, &self.kind) {
            // Prometheus prints these two without the group prefix; the
            // message already names the group.
            (_, ErrorKind::EmptyGroupName | ErrorKind::RepeatedGroupName(_))
            | (Location::File, _) => {
                write!(f, "{}", self.kind)
            }
            (location, kind) => write!(f, "{location}: {kind}"),
        }
    }
}

impl std::error::Error for RuleFileError {}

/// What is wrong. The messages follow Prometheus's `rulefmt` (and, for
/// structure problems, `gopkg.in/yaml.v3`'s type errors).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    /// The text is not YAML.
    #[error("yaml: {0}")]
    Yaml(String),
    /// More than one non-empty YAML document. Prometheus 2.42 reads the
    /// first and silently ignores the rest; rules would be lost, so we
    /// refuse.
    #[error("yaml: the input holds more than one YAML document; only one is allowed")]
    MultipleDocuments,
    /// A key that the format does not have (`field foo not found in type
    /// rulefmt.RuleNode`).
    #[error("field {field} not found in type {in_type}")]
    UnknownField {
        field: String,
        in_type: &'static str,
    },
    /// A value of the wrong YAML type (`cannot unmarshal !!seq into
    /// string`).
    #[error("cannot unmarshal {found} into {expected}")]
    WrongType {
        /// The YAML tag and, for scalars, the value: ``!!str `abc` ``.
        found: String,
        expected: &'static str,
    },
    /// A duration field that does not parse.
    #[error("{0}")]
    Duration(#[from] crate::duration::DurationError),
    /// A group without a name.
    #[error("Groupname must not be empty")]
    EmptyGroupName,
    /// Two groups of one file with the same name.
    #[error("groupname: {0:?} is repeated in the same file")]
    RepeatedGroupName(String),
    #[error("only one of 'record' and 'alert' must be set")]
    RecordAndAlert,
    #[error("one of 'record' or 'alert' must be set")]
    NoRecordOrAlert,
    #[error("field 'expr' must be set in rule")]
    MissingExpr,
    /// The PromQL parser's message.
    #[error("could not parse expression: {0}")]
    BadExpr(String),
    #[error("invalid field 'annotations' in recording rule")]
    AnnotationsInRecordingRule,
    #[error("invalid field 'for' in recording rule")]
    ForInRecordingRule,
    #[error("invalid field 'keep_firing_for' in recording rule")]
    KeepFiringForInRecordingRule,
    #[error("invalid recording rule name: {0}")]
    InvalidRecordName(String),
    /// Not `[a-zA-Z_][a-zA-Z0-9_]*`, or `__name__`.
    #[error("invalid label name: {0}")]
    InvalidLabelName(String),
    #[error("invalid annotation name: {0}")]
    InvalidAnnotationName(String),
    /// A label (`what` = "label") or annotation of an alerting rule whose
    /// template does not parse.
    #[error("{what} {name:?}: {message}")]
    Template {
        what: &'static str,
        name: String,
        message: String,
    },
}
