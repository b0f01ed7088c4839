//! Template errors, worded like Go's `text/template`.

/// A parse or execution failure.
///
/// `Display` gives Go's wording, e.g.
/// `template: x:1: function "foo" not defined` or
/// `template: x:1:12: executing "x" at <humanize "one">: error calling humanize: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template text does not parse.
    #[error("template: {name}:{line}: {message}")]
    Parse {
        /// The template's name.
        name: String,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Execution failed at a node of the template.
    #[error("template: {name}:{line}:{col}: executing \"{template}\" at <{context}>: {message}")]
    Exec {
        /// The name of the parsed template (as Go's `ParseName`).
        name: String,
        /// 1-based line of the failing node.
        line: usize,
        /// 0-based byte column of the failing node within its line (as Go).
        col: usize,
        /// The (sub-)template executing when it failed.
        template: String,
        /// The failing node's text.
        context: String,
        /// What went wrong.
        message: String,
    },
    /// Execution failed outside any particular node (e.g. an undefined
    /// template at the top level).
    #[error("template: {template}: {message}")]
    ExecNoNode {
        /// The (sub-)template executing when it failed.
        template: String,
        /// What went wrong.
        message: String,
    },
    /// A resource limit (output size, steps, range iterations, recursion
    /// depth) was exceeded; not a Go error, this engine's own guard.
    #[error("template: {template}: {message}")]
    Limit {
        /// The template being executed.
        template: String,
        /// Which limit.
        message: String,
    },
}

impl TemplateError {
    /// True for parse errors (what `promtool check rules` reports).
    pub fn is_parse(&self) -> bool {
        matches!(self, TemplateError::Parse { .. })
    }

    /// The message Prometheus's `Expander.Expand` returns for this error:
    /// `error parsing template NAME: …` or `error executing template NAME: …`.
    /// The ruler puts it into the label or annotation as
    /// `<error expanding template: …>`.
    pub fn prometheus_message(&self, name: &str) -> String {
        if self.is_parse() {
            format!("error parsing template {name}: {self}")
        } else {
            format!("error executing template {name}: {self}")
        }
    }
}
