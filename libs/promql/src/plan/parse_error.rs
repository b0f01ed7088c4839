//! Prometheus's wording for promql-parser's error messages.
//!
//! Prometheus answers an invalid query with `<line>:<col>: parse error:
//! <message>`, the position pointing at the offending token (or the end of
//! the input). promql-parser returns a bare message without a position, in
//! its own wording (`expected type matrix in call to function 'rate', got
//! vector`), and a bare `invalid promql query` for every grammar error. This
//! module rewrites the message in Prometheus's words (type names "range
//! vector"/"instant vector", double quotes, Prometheus's phrases) and finds
//! the position again where it can tell it reliably:
//!
//! - grammar errors: the first token after which no continuation of the
//!   query parses, found by trying a few completions of each prefix (binary
//!   search over the tokens); when the whole query is such a prefix the
//!   error is `unexpected end of input` at its end;
//! - function and aggregation calls: the call or the argument at fault,
//!   found by parsing each argument on its own;
//! - selectors, strings, durations and unbalanced brackets: the token the
//!   message names.
//!
//! Errors it cannot place (type errors of binary and unary expressions,
//! misplaced modifiers) keep Prometheus's wording without the position:
//! `parse error: <message>`.
//!
//! The wording was checked against Prometheus 2.42's answers for the same
//! queries (the unit tests below hold them).

use std::panic::{catch_unwind, AssertUnwindSafe};

use promql_parser::parser::value::ValueType;

/// promql-parser's message for every grammar error.
const INVALID_QUERY: &str = "invalid promql query";

/// Queries longer than this get no position for grammar errors (locating
/// one costs a few dozen parses of the query).
const MAX_SEARCH_LEN: usize = 4096;

/// Prometheus's message for promql-parser's error `raw` on `query`.
pub(crate) fn prometheus_message(query: &str, raw: &str) -> String {
    let toks = tokenize(query);
    let (message, pos) = translate(query, &toks, raw);
    match pos {
        Some(p) => format!("{}: parse error: {message}", position(query, p)),
        None => format!("parse error: {message}"),
    }
}

/// `line:col` as Prometheus prints a byte offset (1-based line, column in
/// bytes from the last line break).
fn position(query: &str, pos: usize) -> String {
    let pos = pos.min(query.len());
    let before = &query.as_bytes()[..pos];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let col = match before.iter().rposition(|b| *b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    format!("{line}:{col}")
}

fn translate(query: &str, toks: &[Tok], raw: &str) -> (String, Option<usize>) {
    let end = Some(query.len());
    if raw == INVALID_QUERY {
        return match locate_syntax_error(query, toks) {
            Some(Located::End) => ("unexpected end of input".into(), end),
            Some(Located::Token(i)) => (
                format!("unexpected {}", describe(query, &toks[i])),
                Some(toks[i].start),
            ),
            None => ("syntax error".into(), None),
        };
    }
    if raw.starts_with("no expression found in input") {
        return ("no expression found in input".into(), Some(0));
    }
    // Errors at the end of the input.
    match raw {
        "unclosed left parenthesis" | "unexpected end of input inside braces" => {
            return (raw.into(), end)
        }
        "unexpected end of input inside brackets" => return ("unclosed left bracket".into(), end),
        "unexpected end of input in offset, expected duration"
        | "unexpected end of input in @, expected timestamp" => return (raw.into(), end),
        "unexpected right parenthesis ')'" => {
            // Prometheus points just past the parenthesis.
            let pos = first_unbalanced(toks, Kind::LParen, Kind::RParen).map(|i| toks[i].end);
            return (raw.into(), pos);
        }
        "unexpected right bracket ']'" => {
            let pos = first_unbalanced(toks, Kind::LBracket, Kind::RBracket).map(|i| toks[i].start);
            return (raw.into(), pos);
        }
        "unexpected right brace '}'" => {
            let pos = first_unbalanced(toks, Kind::LBrace, Kind::RBrace).map(|i| toks[i].start);
            return (raw.into(), pos);
        }
        "trailing commas not allowed in function call args" => {
            let pos = toks
                .windows(2)
                .find(|w| w[0].kind == Kind::Comma && w[1].kind == Kind::RParen)
                .map(|w| w[0].start);
            return (raw.into(), pos);
        }
        "duration must be greater than 0" => {
            let pos = toks
                .iter()
                .find(|t| t.in_brackets && is_zero_duration(t.text(query)))
                .map(|t| t.start);
            return (raw.into(), pos);
        }
        "unexpected second colon(:) in brackets" => {
            let pos = toks
                .windows(3)
                .filter(|w| w[0].kind == Kind::Colon && w[2].kind == Kind::Colon)
                .map(|w| w[2].start)
                .next();
            return ("unexpected colon ':'".into(), pos);
        }
        "vector selector must contain at least one non-empty matcher" => {
            return (raw.into(), selector_with_error(query, toks, raw));
        }
        _ => {}
    }
    if raw.starts_with("unterminated quoted string") {
        let pos = toks
            .iter()
            .find(|t| matches!(t.kind, Kind::Str { terminated: false }))
            .map(|t| t.start);
        return ("unterminated quoted string".into(), pos);
    }
    if let Some(rest) = raw.strip_prefix("unknown escape sequence ") {
        let c = rest.trim_matches('\'').chars().next().unwrap_or('?');
        let pos = toks
            .iter()
            .find(|t| matches!(t.kind, Kind::Str { .. }) && has_bad_escape(t.text(query)))
            .map(|t| t.start);
        return (
            format!("unknown escape sequence U+{:04X} {c:?}", c as u32),
            pos,
        );
    }
    if let Some(rest) = raw.strip_prefix("unexpected character: ") {
        let pos = find_char_token(query, toks, rest, |t| !t.in_braces && !t.in_brackets);
        return (raw.into(), pos);
    }
    if let Some(rest) = raw.strip_prefix("unexpected character inside braces: ") {
        let pos = find_char_token(query, toks, rest, |t| t.in_braces);
        return (raw.into(), pos);
    }
    if let Some(rest) = raw.strip_prefix("unexpected character inside brackets: ") {
        let pos = find_char_token(query, toks, rest, |t| t.in_brackets);
        return (raw.into(), pos);
    }
    if raw == "expect duration before first colon(:) in brackets" {
        let pos = toks
            .windows(2)
            .find(|w| w[0].kind == Kind::LBracket && w[1].kind == Kind::Colon)
            .map(|w| w[1].start);
        return (raw.into(), pos);
    }
    if let Some(text) = raw.strip_prefix("bad number or duration syntax: ") {
        let pos = toks.iter().find(|t| t.text(query) == text).map(|t| t.start);
        return (
            format!("bad number or duration syntax: {}", go_quote(text)),
            pos,
        );
    }
    if let Some(text) = raw.strip_prefix("not a valid duration string: ") {
        let pos = toks.iter().find(|t| t.text(query) == text).map(|t| t.start);
        return (
            format!("not a valid duration string: {}", go_quote(text)),
            pos,
        );
    }
    if let Some(name) = quoted_between(raw, "unknown function with name '", "'") {
        let pos = toks
            .iter()
            .enumerate()
            .find(|(i, t)| {
                t.text(query) == name && toks.get(i + 1).is_some_and(|n| n.kind == Kind::LParen)
            })
            .map(|(_, t)| t.start);
        return (
            format!("unknown function with name {}", go_quote(name)),
            pos,
        );
    }
    if let Some(m) = arity_error(raw) {
        let sites = call_sites(query, toks, |t, text| {
            t.kind == Kind::Ident && text == m.function
        });
        let pos = sites
            .iter()
            .find(|s| s.args.len() == m.got)
            .map(|s| s.start);
        return (
            format!(
                "expected {} argument(s) in call to {}, got {}",
                m.expected,
                go_quote(m.function),
                m.got
            ),
            pos,
        );
    }
    if let Some(m) = type_error(raw, "call to function '") {
        let pos = function_type_error_position(query, toks, &m);
        return (
            format!(
                "expected type {} in call to function {}, got {}",
                type_name(m.expected),
                go_quote(&m.context),
                type_name(m.got)
            ),
            pos,
        );
    }
    if let Some(m) = type_error(raw, "aggregation expression") {
        let sites = call_sites(query, toks, |t, _| t.kind == Kind::Aggregator);
        let (context, pos) = if m.expected == ValueType::Vector {
            let pos = sites.iter().find_map(|s| {
                let last = s.args.last()?;
                (arg_type(query, *last) == Some(m.got)).then_some(last.0)
            });
            ("aggregation expression", pos)
        } else {
            let pos = sites.iter().find_map(|s| {
                let first = s.args.first()?;
                (s.args.len() == 2 && arg_type(query, *first) == Some(m.got)).then_some(first.0)
            });
            ("aggregation parameter", pos)
        };
        return (
            format!(
                "expected type {} in {context}, got {}",
                type_name(m.expected),
                type_name(m.got)
            ),
            pos,
        );
    }
    if let Some(op) = quoted_between(raw, "no arguments for aggregate expression '", "' provided") {
        let pos = call_sites(query, toks, |t, text| {
            t.kind == Kind::Aggregator && text.eq_ignore_ascii_case(op)
        })
        .iter()
        .find(|s| s.args.is_empty())
        .map(|s| s.start);
        return ("no arguments for aggregate expression provided".into(), pos);
    }
    if let Some(got) = raw
        .strip_prefix("wrong number of arguments for aggregate expression provided, expected ")
        .and_then(|rest| rest.split_once(", got "))
        .and_then(|(_, got)| got.parse::<usize>().ok())
    {
        let pos = call_sites(query, toks, |t, _| t.kind == Kind::Aggregator)
            .iter()
            .find(|s| s.args.len() == got)
            .map(|s| s.start);
        return (raw.into(), pos);
    }
    if raw.starts_with("illegal regex for ") {
        return regex_error(query, toks, raw);
    }
    if raw.starts_with("metric name must not be set twice") {
        let pos = selector_with_error(query, toks, raw);
        return (requote(raw), pos);
    }
    if is_syntax_error(raw) {
        // A grammar rule's own message: keep it, find where it happens.
        let pos = match locate_syntax_error(query, toks) {
            Some(Located::End) => end,
            Some(Located::Token(i)) => Some(toks[i].start),
            None => None,
        };
        return (requote(raw), pos);
    }
    (semantic_wording(raw), None)
}

/// Messages of semantic checks, reworded as Prometheus's.
fn semantic_wording(raw: &str) -> String {
    if let Some(got) = raw
        .strip_prefix("unary expression only allowed on expressions of type scalar or vector, got")
        .map(|g| g.trim_start_matches(':').trim())
    {
        let got = parse_type(got).map(type_name).unwrap_or(got);
        return format!(
            "unary expression only allowed on expressions of type scalar or instant vector, got {}",
            go_quote(got)
        );
    }
    if let Some(rest) = raw.strip_prefix("subquery is only allowed on vector, got ") {
        let got = rest.trim_end_matches(" instead");
        let got = parse_type(got).map(type_name).unwrap_or(got);
        return format!("subquery is only allowed on instant vector, got {got} instead");
    }
    match raw {
        "@ modifier must be preceded by an vector selector or matrix selector or a subquery" => {
            return "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery".into()
        }
        "offset modifier must be preceded by an vector selector or matrix selector or a subquery" => {
            return "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery".into()
        }
        "vector matching only allowed between vectors" => {
            return "vector matching only allowed between instant vectors".into()
        }
        _ => {}
    }
    requote(raw)
}

/// Rewrites promql-parser's single-quoted names (`'rate'`, `'and'`) as
/// Go's double-quoted ones; messages about a character keep it in single
/// quotes, as Go prints runes that way.
fn requote(raw: &str) -> String {
    if raw.contains("character") {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(open) = rest.find('\'') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('\'') else {
            break;
        };
        let inner = &after[..close];
        out.push_str(&rest[..open]);
        out.push_str(&go_quote(inner));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether promql-parser's message reports a syntax error (a grammar
/// rule's or the lexer's) rather than a semantic check.
fn is_syntax_error(msg: &str) -> bool {
    msg == INVALID_QUERY
        || msg.starts_with("unexpected ")
        || msg.starts_with("unclosed ")
        || msg.starts_with("unterminated ")
        || msg.starts_with("trailing commas")
        || msg.starts_with("invalid label matcher")
        || msg.starts_with("no expression found")
        || msg.starts_with("bad number or duration")
        || msg.starts_with("not a valid duration")
        || msg.starts_with("expect duration before")
        || msg.starts_with("unknown escape")
        || msg.starts_with("escape sequence")
        || msg.contains("can not be at the end")
        || msg.contains("is not valid label in grouping opts")
        || msg == "missing unit character in duration"
        || msg == "Number expected for fill value"
}

enum Located {
    /// The query ends too early.
    End,
    /// The token at this index cannot follow what comes before it.
    Token(usize),
}

/// Where the syntax error of `query` is: the first token after which no
/// continuation parses, or the end.
fn locate_syntax_error(query: &str, toks: &[Tok]) -> Option<Located> {
    if query.len() > MAX_SEARCH_LEN || toks.is_empty() {
        return None;
    }
    if viable(query, toks, toks.len()) {
        return Some(Located::End);
    }
    // viable(lo) holds and viable(hi) does not; the unexpected token is
    // the last one of the shortest prefix that cannot be completed.
    let (mut lo, mut hi) = (0, toks.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if viable(query, toks, mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(Located::Token(hi - 1))
}

/// Whether the first `n` tokens of `query` can be completed into a query
/// that parses (or fails only a semantic check): tries a few fillers that
/// fit where the prefix ends, then closes the open brackets.
fn viable(query: &str, toks: &[Tok], n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let prefix = &query[..toks[n - 1].end];
    let mut stack = Vec::new();
    for t in &toks[..n] {
        match t.kind {
            Kind::LParen | Kind::LBrace | Kind::LBracket => stack.push(t.kind),
            Kind::RParen | Kind::RBrace | Kind::RBracket => {
                stack.pop();
            }
            _ => {}
        }
    }
    let closers: String = stack
        .iter()
        .rev()
        .map(|k| match k {
            Kind::LParen => ')',
            Kind::LBrace => '}',
            _ => ']',
        })
        .collect();
    // (filler, text after the closers): a grouping label list needs what
    // it groups after its parenthesis.
    let completions: &[(&str, &str)] = match stack.last() {
        Some(Kind::LBrace) => &[("", ""), ("=\"v\"", ""), ("\"v\"", ""), ("a=\"v\"", "")],
        Some(Kind::LBracket) => &[("", ""), ("5m", ""), ("5m:", "")],
        _ => &[
            ("", ""),
            ("1", ""),
            ("x", ""),
            ("()", ""),
            ("(x)", ""),
            ("(a) (x)", ""),
            ("(a) x", ""),
            ("5m", ""),
            ("\"a\"", ""),
            ("", " (x)"),
            ("", " x"),
            ("a", " (x)"),
            ("a", " x"),
        ],
    };
    for (filler, tail) in completions {
        let candidate = format!("{prefix} {filler}{closers}{tail}");
        if parses_syntactically(&candidate) {
            return true;
        }
    }
    false
}

/// Whether promql-parser accepts the syntax of `text` (a semantic error
/// still counts as accepted).
fn parses_syntactically(text: &str) -> bool {
    match catch_unwind(AssertUnwindSafe(|| promql_parser::parser::parse(text))) {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => !is_syntax_error(&e),
        // Panics come from out-of-range literals, after the syntax.
        Err(_) => true,
    }
}

fn parse_quiet(text: &str) -> Option<Result<promql_parser::parser::Expr, String>> {
    catch_unwind(AssertUnwindSafe(|| promql_parser::parser::parse(text))).ok()
}

/// The value type of the argument at `range` parsed on its own.
fn arg_type(query: &str, range: (usize, usize)) -> Option<ValueType> {
    match parse_quiet(&query[range.0..range.1])? {
        Ok(e) => Some(e.value_type()),
        Err(_) => None,
    }
}

/// The start of the first selector whose own parse fails with `raw`.
fn selector_with_error(query: &str, toks: &[Tok], raw: &str) -> Option<usize> {
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::LBrace {
            continue;
        }
        let close = matching(toks, i)?;
        let start = match i.checked_sub(1).map(|p| &toks[p]) {
            Some(p) if p.kind == Kind::Ident || p.kind == Kind::Aggregator => p.start,
            _ => t.start,
        };
        let text = &query[start..toks[close].end];
        if matches!(parse_quiet(text), Some(Err(e)) if e == raw) {
            return Some(start);
        }
    }
    None
}

/// `error parsing regexp: ...` as Go's regexp package words the common
/// errors, at the label matcher with the bad regex.
fn regex_error(query: &str, toks: &[Tok], raw: &str) -> (String, Option<usize>) {
    let re = raw.trim_start_matches("illegal regex for ");
    let anchored = format!("^(?:{re})$");
    let detail = match regex::Regex::new(&anchored) {
        Err(e) => {
            let text = e.to_string();
            let last = text
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            match last.as_str() {
                "unclosed group" => "missing closing )".to_string(),
                "unopened group" => "unexpected )".to_string(),
                "unclosed character class" => "missing closing ]".to_string(),
                "invalid repetition count range, the start must be <= the end" => {
                    "invalid repeat count".to_string()
                }
                "repetition operator missing expression" => {
                    "missing argument to repetition operator".to_string()
                }
                "incomplete escape sequence, reached end of pattern prematurely" => {
                    "trailing backslash at end of expression".to_string()
                }
                _ => last,
            }
        }
        Ok(_) => "invalid regular expression".to_string(),
    };
    // The matcher: a label name, a regex operator and the string.
    let mut pos = None;
    for w in toks.windows(3) {
        let op = w[1].text(query);
        if w[0].kind == Kind::Ident
            && w[0].in_braces
            && (op == "=~" || op == "!~")
            && matches!(w[2].kind, Kind::Str { .. })
        {
            let value = promql_parser::util::unquote_string(w[2].text(query)).ok();
            if value.as_deref() == Some(re) {
                pos = Some(w[0].start);
                break;
            }
        }
    }
    (format!("error parsing regexp: {detail}: `{anchored}`"), pos)
}

struct ArityError<'a> {
    expected: String,
    function: &'a str,
    got: usize,
}

/// `expected [at least|at most] N argument(s) in call to 'f', got M`.
fn arity_error(raw: &str) -> Option<ArityError<'_>> {
    let rest = raw.strip_prefix("expected ")?;
    let (expected, rest) = rest.split_once(" argument(s) in call to '")?;
    let (function, got) = rest.split_once("', got ")?;
    Some(ArityError {
        expected: expected.to_string(),
        function,
        got: got.parse().ok()?,
    })
}

struct TypeError {
    expected: ValueType,
    got: ValueType,
    /// The function name for calls.
    context: String,
}

/// `expected type T in <context>, got U`.
fn type_error(raw: &str, context_prefix: &str) -> Option<TypeError> {
    let rest = raw.strip_prefix("expected type ")?;
    let (expected, rest) = rest.split_once(" in ")?;
    let rest = rest.strip_prefix(context_prefix)?;
    let (context, got) = rest.rsplit_once(", got ")?;
    Some(TypeError {
        expected: parse_type(expected)?,
        got: parse_type(got)?,
        context: context.trim_end_matches('\'').to_string(),
    })
}

fn parse_type(s: &str) -> Option<ValueType> {
    match s {
        "scalar" => Some(ValueType::Scalar),
        "string" => Some(ValueType::String),
        "vector" => Some(ValueType::Vector),
        "matrix" => Some(ValueType::Matrix),
        _ => None,
    }
}

/// Prometheus's name of a value type.
fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}

/// Source text of an expression of type `t`, for probing.
fn placeholder(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "1",
        ValueType::String => "\"s\"",
        ValueType::Vector => "v",
        ValueType::Matrix => "v[1m]",
    }
}

/// The argument types `function` takes for `n` arguments, found by
/// probing promql-parser: with the slots before `j` known, slot `j` gets a
/// value of one type and the later slots another; an error about the first
/// type names the type slot `j` wants.
fn slot_types(function: &str, n: usize) -> Option<Vec<ValueType>> {
    let mut known: Vec<ValueType> = Vec::with_capacity(n);
    for j in 0..n {
        let (a, b) = (ValueType::Scalar, ValueType::String);
        let args: Vec<&str> = known
            .iter()
            .map(|t| placeholder(*t))
            .chain(std::iter::once(placeholder(a)))
            .chain(std::iter::repeat_n(placeholder(b), n - j - 1))
            .collect();
        let text = format!("{function}({})", args.join(", "));
        let slot = match parse_quiet(&text)? {
            Ok(_) => a,
            Err(e) => match type_error(&e, "call to function '") {
                Some(m) if m.got == a => m.expected,
                _ => a,
            },
        };
        known.push(slot);
    }
    Some(known)
}

fn function_type_error_position(query: &str, toks: &[Tok], m: &TypeError) -> Option<usize> {
    let sites = call_sites(query, toks, |t, text| {
        t.kind == Kind::Ident && text == m.context
    });
    for site in &sites {
        let Some(slots) = slot_types(&m.context, site.args.len()) else {
            continue;
        };
        for (range, slot) in site.args.iter().zip(&slots) {
            let Some(t) = arg_type(query, *range) else {
                break;
            };
            if t != *slot {
                if t == m.got && *slot == m.expected {
                    return Some(range.0);
                }
                break;
            }
        }
    }
    None
}

/// A call of a function or an aggregation in the query text.
struct CallSite {
    /// Where the name starts.
    start: usize,
    /// Byte ranges of the arguments.
    args: Vec<(usize, usize)>,
}

/// Calls whose name token satisfies `is_name`: the name, for aggregations
/// an optional `by|without (...)`, then the parenthesised arguments.
fn call_sites(query: &str, toks: &[Tok], is_name: impl Fn(&Tok, &str) -> bool) -> Vec<CallSite> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.in_braces || !is_name(t, t.text(query)) {
            continue;
        }
        let mut j = i + 1;
        if t.kind == Kind::Aggregator
            && toks.get(j).is_some_and(|k| {
                k.kind == Kind::Keyword && matches!(k.text(query), "by" | "without")
            })
            && toks.get(j + 1).is_some_and(|k| k.kind == Kind::LParen)
        {
            match matching(toks, j + 1) {
                Some(close) => j = close + 1,
                None => continue,
            }
        }
        if toks.get(j).is_none_or(|k| k.kind != Kind::LParen) {
            continue;
        }
        let close = matching(toks, j).unwrap_or(toks.len());
        let mut args = Vec::new();
        let mut depth = 0usize;
        let mut arg_start: Option<usize> = None;
        let mut arg_end = 0;
        for k in &toks[j + 1..close] {
            match k.kind {
                Kind::LParen | Kind::LBrace | Kind::LBracket => depth += 1,
                Kind::RParen | Kind::RBrace | Kind::RBracket => depth = depth.saturating_sub(1),
                Kind::Comma if depth == 0 => {
                    if let Some(s) = arg_start.take() {
                        args.push((s, arg_end));
                    }
                    continue;
                }
                _ => {}
            }
            arg_start.get_or_insert(k.start);
            arg_end = k.end;
        }
        if let Some(s) = arg_start {
            args.push((s, arg_end));
        }
        out.push(CallSite {
            start: t.start,
            args,
        });
    }
    out
}

/// Index of the bracket closing the one at `open`.
fn matching(toks: &[Tok], open: usize) -> Option<usize> {
    let (o, c) = match toks[open].kind {
        Kind::LParen => (Kind::LParen, Kind::RParen),
        Kind::LBrace => (Kind::LBrace, Kind::RBrace),
        Kind::LBracket => (Kind::LBracket, Kind::RBracket),
        _ => return None,
    };
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.kind == o {
            depth += 1;
        } else if t.kind == c {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// The first closing bracket of a kind with no opening one before it.
fn first_unbalanced(toks: &[Tok], open: Kind, close: Kind) -> Option<usize> {
    let mut depth = 0i64;
    for (i, t) in toks.iter().enumerate() {
        if t.kind == open {
            depth += 1;
        } else if t.kind == close {
            depth -= 1;
            if depth < 0 {
                return Some(i);
            }
        }
    }
    None
}

fn find_char_token(
    query: &str,
    toks: &[Tok],
    quoted: &str,
    filter: impl Fn(&Tok) -> bool,
) -> Option<usize> {
    let c = quoted.trim_matches('\'').chars().next()?;
    toks.iter()
        .find(|t| filter(t) && t.text(query).starts_with(c))
        .map(|t| t.start)
}

fn is_zero_duration(text: &str) -> bool {
    let digits: String = text.chars().filter(|c| !c.is_ascii_alphabetic()).collect();
    !digits.is_empty() && digits.parse::<f64>().is_ok_and(|v| v == 0.0)
}

fn has_bad_escape(text: &str) -> bool {
    if text.starts_with('`') {
        return false;
    }
    let mut chars = text.chars().skip(1);
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) if "abfnrtv\\'\"01234567xuU".contains(e) => {}
                _ => return true,
            }
        }
    }
    false
}

/// The text between `prefix` and the next `suffix` in `raw`.
fn quoted_between<'a>(raw: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let rest = raw.strip_prefix(prefix)?;
    let end = rest.find(suffix)?;
    Some(&rest[..end])
}

/// Go's `%q` of a string (close enough: Rust's escapes for the rare
/// non-printable characters differ).
fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// How Prometheus describes an unexpected token (its `Item.desc()`).
fn describe(query: &str, t: &Tok) -> String {
    let text = t.text(query);
    let value = || {
        if text.chars().count() > 10 {
            let cut: String = text.chars().take(10).collect();
            format!("{}...", go_quote(&cut))
        } else {
            go_quote(text)
        }
    };
    match t.kind {
        Kind::Ident if text.contains(':') => format!("metric identifier {}", go_quote(text)),
        Kind::Ident => format!("identifier {}", go_quote(text)),
        Kind::Keyword => format!("<{}>", text.to_ascii_lowercase()),
        Kind::Aggregator => format!("<aggr:{}>", text.to_ascii_lowercase()),
        Kind::Operator => format!("<op:{}>", text.to_ascii_lowercase()),
        Kind::Number => format!("number {}", value()),
        Kind::Duration => format!("duration {}", value()),
        Kind::Str { .. } => format!("string {}", value()),
        Kind::Other => format!("character {}", value()),
        _ => go_quote(text),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ident,
    Keyword,
    Aggregator,
    Operator,
    Number,
    Duration,
    Str {
        terminated: bool,
    },
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    /// `=` (label matching).
    Eql,
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
    in_braces: bool,
    in_brackets: bool,
}

impl Tok {
    fn text<'a>(&self, query: &'a str) -> &'a str {
        &query[self.start..self.end]
    }
}

const KEYWORDS: &[&str] = &[
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "smoothed",
    "anchored",
    "fill",
    "fill_left",
    "fill_right",
];

const AGGREGATORS: &[&str] = &[
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
];

const WORD_OPERATORS: &[&str] = &["and", "or", "unless", "atan2"];

fn is_duration(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .iter()
            .find(|u| rest.starts_with(**u))
            .copied();
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// A lexer close to Prometheus's, for positions only.
fn tokenize(query: &str) -> Vec<Tok> {
    let bytes = query.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let (mut braces, mut brackets) = (0usize, 0usize);
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let mut push = |kind: Kind, end: usize, braces: usize, brackets: usize| {
            toks.push(Tok {
                kind,
                start,
                end,
                in_braces: braces > 0,
                in_brackets: brackets > 0,
            });
        };
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'"' || c == b'\'' || c == b'`' {
            let mut j = i + 1;
            let mut terminated = false;
            while j < bytes.len() {
                if bytes[j] == b'\\' && c != b'`' {
                    j += 2;
                    continue;
                }
                if bytes[j] == c {
                    terminated = true;
                    j += 1;
                    break;
                }
                j += 1;
            }
            let end = j.min(bytes.len());
            push(Kind::Str { terminated }, end, braces, brackets);
            i = end;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let mut j = i;
            while j < bytes.len() {
                let b = bytes[j];
                let exponent_sign = (b == b'+' || b == b'-')
                    && matches!(bytes[j - 1], b'e' | b'E')
                    && !query[i..j].contains(['x', 'X'])
                    && bytes.get(j + 1).is_some_and(u8::is_ascii_digit);
                if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || exponent_sign {
                    j += 1;
                } else {
                    break;
                }
            }
            let kind = if is_duration(&query[i..j]) {
                Kind::Duration
            } else {
                Kind::Number
            };
            push(kind, j, braces, brackets);
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let mut j = i;
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric()
                    || bytes[j] == b'_'
                    || (bytes[j] == b':' && brackets == 0))
            {
                j += 1;
            }
            let word = query[i..j].to_ascii_lowercase();
            let kind = if braces > 0 {
                Kind::Ident
            } else if KEYWORDS.contains(&word.as_str()) {
                Kind::Keyword
            } else if AGGREGATORS.contains(&word.as_str()) {
                Kind::Aggregator
            } else if WORD_OPERATORS.contains(&word.as_str()) {
                Kind::Operator
            } else if word == "inf" || word == "nan" {
                Kind::Number
            } else {
                Kind::Ident
            };
            push(kind, j, braces, brackets);
            i = j;
            continue;
        }
        let two = bytes.get(i..i + 2).unwrap_or(&[]);
        if matches!(two, b"==" | b"!=" | b"<=" | b">=" | b"=~" | b"!~") {
            push(Kind::Operator, i + 2, braces, brackets);
            i += 2;
            continue;
        }
        let kind = match c {
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' | b'@' => Kind::Operator,
            b'=' => Kind::Eql,
            b'(' => Kind::LParen,
            b')' => Kind::RParen,
            b'{' => Kind::LBrace,
            b'}' => Kind::RBrace,
            b'[' => Kind::LBracket,
            b']' => Kind::RBracket,
            b',' => Kind::Comma,
            b':' => Kind::Colon,
            _ => Kind::Other,
        };
        // The whole (possibly multi-byte) character.
        let len = query[i..].chars().next().map(char::len_utf8).unwrap_or(1);
        match kind {
            Kind::RBrace => braces = braces.saturating_sub(1),
            Kind::RBracket => brackets = brackets.saturating_sub(1),
            _ => {}
        }
        push(kind, i + len, braces, brackets);
        match kind {
            Kind::LBrace => braces += 1,
            Kind::LBracket => brackets += 1,
            _ => {}
        }
        i += len;
    }
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts every query's message, listing all that differ.
    fn assert_messages(cases: &[(&str, &str)]) {
        let mut wrong = Vec::new();
        for (query, want) in cases {
            let got = msg(query);
            if got != *want {
                wrong.push(format!("{query}\n   got  {got}\n   want {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    fn msg(query: &str) -> String {
        match crate::plan::parse(query) {
            Err(crate::QueryError::BadData(m)) => m,
            other => panic!("{query}: expected bad_data, got {other:?}"),
        }
    }

    /// Common mistakes and Prometheus 2.42's answers for them, verbatim.
    #[test]
    fn common_mistakes_read_as_prometheus_answers_them() {
        let cases = [
            ("x +", "1:4: parse error: unexpected end of input"),
            ("x ==", "1:5: parse error: unexpected end of input"),
            ("sum(", "1:5: parse error: unclosed left parenthesis"),
            ("(x", "1:3: parse error: unclosed left parenthesis"),
            (
                "foo(x)",
                "1:1: parse error: unknown function with name \"foo\"",
            ),
            (
                "rate(x)",
                "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "histogram_quantile(x, 0.5)",
                "1:20: parse error: expected type scalar in call to function \"histogram_quantile\", got instant vector",
            ),
            (
                "round(x, \"a\")",
                "1:10: parse error: expected type scalar in call to function \"round\", got string",
            ),
            (
                "scalar(x[5m])",
                "1:8: parse error: expected type instant vector in call to function \"scalar\", got range vector",
            ),
            (
                "label_join(x, 1, \"a\")",
                "1:15: parse error: expected type string in call to function \"label_join\", got scalar",
            ),
            (
                "rate(x[5m], 1)",
                "1:1: parse error: expected 1 argument(s) in call to \"rate\", got 2",
            ),
            (
                "round(x, 1, 2)",
                "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3",
            ),
            (
                "label_replace(x, \"a\", \"b\")",
                "1:1: parse error: expected 5 argument(s) in call to \"label_replace\", got 3",
            ),
            (
                "x[1.5m]",
                "1:3: parse error: not a valid duration string: \"1.5m\"",
            ),
            ("x[0s]", "1:3: parse error: duration must be greater than 0"),
            ("x[5m:0s]", "1:6: parse error: duration must be greater than 0"),
            (
                "x{a=\"b\"",
                "1:8: parse error: unexpected end of input inside braces",
            ),
            ("x[5m", "1:5: parse error: unclosed left bracket"),
            ("x{a=\"b", "1:5: parse error: unterminated quoted string"),
            ("\"abc", "1:1: parse error: unterminated quoted string"),
            (
                "x{a=~\"(\"}",
                "1:3: parse error: error parsing regexp: missing closing ): `^(?:()$`",
            ),
            (
                "foo bar",
                "1:5: parse error: unexpected identifier \"bar\"",
            ),
            ("x y z", "1:3: parse error: unexpected identifier \"y\""),
            ("1 2", "1:3: parse error: unexpected number \"2\""),
            ("x 5m", "1:3: parse error: unexpected duration \"5m\""),
            (
                "x \"a\"",
                "1:3: parse error: unexpected string \"\\\"a\\\"\"",
            ),
            ("x + * y", "1:5: parse error: unexpected <op:*>"),
            ("sum sum", "1:5: parse error: unexpected <aggr:sum>"),
            ("x bool", "1:3: parse error: unexpected <bool>"),
            ("rate(x[5m]) by (a)", "1:13: parse error: unexpected <by>"),
            ("(x) (y)", "1:5: parse error: unexpected \"(\""),
            ("x{a=\"b\"}{c=\"d\"}", "1:9: parse error: unexpected \"{\""),
            ("x == bool 1 2", "1:13: parse error: unexpected number \"2\""),
            (
                "x{a=\"valid\"} offset 5m y",
                "1:24: parse error: unexpected identifier \"y\"",
            ),
            ("-", "1:2: parse error: unexpected end of input"),
            ("x)", "1:3: parse error: unexpected right parenthesis ')'"),
            ("(x))", "1:5: parse error: unexpected right parenthesis ')'"),
            ("x]", "1:2: parse error: unexpected right bracket ']'"),
            (
                "topk(x, y)",
                "1:6: parse error: expected type scalar in aggregation parameter, got instant vector",
            ),
            (
                "count_values(1, x)",
                "1:14: parse error: expected type string in aggregation parameter, got scalar",
            ),
            (
                "topk(1)",
                "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
            ),
            (
                "min()",
                "1:1: parse error: no arguments for aggregate expression provided",
            ),
            (
                "rate(x[5m],)",
                "1:11: parse error: trailing commas not allowed in function call args",
            ),
            (
                "{}",
                "1:1: parse error: vector selector must contain at least one non-empty matcher",
            ),
            (
                "x{__name__=\"a\", __name__=\"b\"}",
                "1:1: parse error: metric name must not be set twice: \"x\" or \"a\"",
            ),
            (
                "x{a=\"\\q\"}",
                "1:5: parse error: unknown escape sequence U+0071 'q'",
            ),
            (
                "x[5m] offset",
                "1:13: parse error: unexpected end of input in offset, expected duration",
            ),
            (
                "x @",
                "1:4: parse error: unexpected end of input in @, expected timestamp",
            ),
            ("x[5m:1m:1m]", "1:8: parse error: unexpected colon ':'"),
            (
                "abs(x[5m])",
                "1:5: parse error: expected type instant vector in call to function \"abs\", got range vector",
            ),
            (
                "sum(x[5m])",
                "1:5: parse error: expected type instant vector in aggregation expression, got range vector",
            ),
            // Lines and columns in a query over several lines.
            ("x +\n  y +", "2:6: parse error: unexpected end of input"),
            (
                "sum(\n  rate(x)\n)",
                "2:8: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            // The second call is the one at fault.
            (
                "rate(x[5m]) + rate(y)",
                "1:20: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "clamp(x, y, 1)",
                "1:10: parse error: expected type scalar in call to function \"clamp\", got instant vector",
            ),
            (
                "quantile_over_time(x, y[5m])",
                "1:20: parse error: expected type scalar in call to function \"quantile_over_time\", got instant vector",
            ),
            (
                "topk(1, x[5m])",
                "1:9: parse error: expected type instant vector in aggregation expression, got range vector",
            ),
            (
                "x{a=~\")\"}",
                "1:3: parse error: error parsing regexp: unexpected ): `^(?:))$`",
            ),
            ("x $", "1:3: parse error: unexpected character: '$'"),
            ("x{a=\"b\"}[5m", "1:12: parse error: unclosed left bracket"),
            (
                "sum by (a) (x) y",
                "1:16: parse error: unexpected identifier \"y\"",
            ),
            (
                "x offset 5m @ 1 y",
                "1:17: parse error: unexpected identifier \"y\"",
            ),
            (
                "x{a=\"b\"} offset 5m offset",
                "1:26: parse error: unexpected end of input in offset, expected duration",
            ),
        ];
        assert_messages(&cases);
    }

    /// Errors the parser reports in its own words, and errors whose place
    /// it cannot tell.
    #[test]
    fn other_errors_keep_their_meaning() {
        let cases = [
            // Prometheus adds "in label matching".
            (
                "x{a}",
                "1:4: parse error: invalid label matcher, expected label matching operator after \"a\"",
            ),
            (
                "sum by (a) x",
                "1:12: parse error: unexpected identifier \"x\"",
            ),
            (
                "sum(x) by",
                "1:10: parse error: unexpected end of input",
            ),
            (
                "-\"foo\"",
                "parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\"",
            ),
            (
                "x and 1",
                "parse error: set operator \"and\" not allowed in binary scalar expression",
            ),
            (
                "x[5m] + 1",
                "parse error: binary expression must contain only scalar and instant vector types",
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn positions_count_lines_and_bytes() {
        assert_eq!(position("abc", 0), "1:1");
        assert_eq!(position("abc", 3), "1:4");
        assert_eq!(position("a\nbc", 2), "2:1");
        assert_eq!(position("a\nbc", 4), "2:3");
        assert_eq!(position("ä +", 4), "1:5");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for q in [
            "ä ö",
            "x{ä=\"ü\"",
            "(((",
            ")))",
            "x[",
            "x{",
            "`",
            "\"\\",
            "'\\x",
            "x @ ",
            "{a=~\"\\\\\"}",
            "1e",
            "0x",
            "x[1e400]",
            "x offset 1e400",
            ",",
            "#",
            "\u{1F600}",
            "sum by (",
            "topk(,)",
            "foo(",
            "rate(,",
            "x[5m:",
        ] {
            let _ = crate::plan::parse(q);
        }
    }
}
