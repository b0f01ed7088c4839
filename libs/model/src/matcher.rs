use regex::Regex;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MatcherError {
    #[error("invalid regular expression {pattern:?} for label {name:?}: {source}")]
    InvalidRegex {
        name: String,
        pattern: String,
        source: regex::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// A label matcher with PromQL semantics: a missing label matches as the
/// empty string, and regular expressions are fully anchored.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MatcherError> {
        let name = name.into();
        let value = value.into();
        let regex = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                let anchored = format!("^(?s:{value})$");
                Some(
                    Regex::new(&anchored).map_err(|source| MatcherError::InvalidRegex {
                        name: name.clone(),
                        pattern: value.clone(),
                        source,
                    })?,
                )
            }
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    /// Whether a label value (empty when the label is absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::RegexNoMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether this matcher accepts the empty string, i.e. also selects
    /// series that lack the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For `=~` over a plain alternation of literals (`a|b|c`), the literals.
    /// Lets an index answer the matcher with lookups instead of a scan.
    pub fn set_matches(&self) -> Option<Vec<&str>> {
        if self.op != MatchOp::RegexMatch {
            return None;
        }
        let special = |c: char| "\\.+*?()[]{}^$".contains(c);
        if self.value.is_empty() || self.value.chars().any(special) {
            return None;
        }
        Some(self.value.split('|').collect())
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored() {
        let m = Matcher::new(MatchOp::RegexMatch, "job", "api").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("xapi"));
        assert!(!m.matches("apix"));
        let m = Matcher::new(MatchOp::RegexMatch, "job", "a|b").unwrap();
        assert!(m.matches("a") && m.matches("b") && !m.matches("ab"));
        assert_eq!(m.set_matches(), Some(vec!["a", "b"]));
    }

    #[test]
    fn empty_semantics() {
        let m = Matcher::new(MatchOp::NotEqual, "x", "").unwrap();
        assert!(!m.matches_empty());
        let m = Matcher::new(MatchOp::RegexMatch, "x", ".*").unwrap();
        assert!(m.matches_empty());
        let m = Matcher::new(MatchOp::RegexNoMatch, "x", "a").unwrap();
        assert!(m.matches_empty());
    }

    #[test]
    fn bad_regex_is_an_error() {
        assert!(Matcher::new(MatchOp::RegexMatch, "x", "(").is_err());
    }
}
