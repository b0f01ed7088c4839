//! Query planning helpers shared by the evaluator and
//! [`crate::Engine::select_requests`]: parsing, matcher conversion, the
//! time ranges selectors need, and step invariance (`@`).

use std::time::{Duration, SystemTime};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use strata_model::{MatchOp, Matcher, METRIC_NAME};

use crate::{QueryError, SelectRequest};

mod parse_error;

/// Step used by subqueries that do not give one (`x[5m:]`), as
/// Prometheus's default evaluation interval.
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Functions whose result depends on the evaluation time even when their
/// arguments do not (Prometheus's `AtModifierUnsafeFunctions`).
const AT_UNSAFE_FUNCTIONS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

/// Deepest expression nesting the evaluator accepts; it recurses over the
/// tree, so this bounds its stack use (well within a 2 MiB thread stack).
pub const MAX_EXPR_DEPTH: usize = 200;

/// Most operator characters and opening brackets (outside string
/// literals) a query may have; bounds the parser's recursion on
/// pathological input before it runs.
pub const MAX_QUERY_OPERATORS: usize = 1000;

/// Parses a PromQL expression with the engine's guards: the operator and
/// nesting limits, and parser panics (out-of-range literals) turned into
/// `bad_data`. Parse errors read as Prometheus's (`1:6: parse error:
/// expected type range vector in call to function "rate", got instant
/// vector`; see [`parse_error`]). Every caller outside the engine should
/// parse through this.
pub fn parse(query: &str) -> Result<Expr, QueryError> {
    if operator_count(query) > MAX_QUERY_OPERATORS {
        return Err(QueryError::BadData(format!(
            "query is too complex (more than {MAX_QUERY_OPERATORS} operators and brackets)"
        )));
    }
    // The parser panics on some out-of-range literals (a number used as a
    // duration that does not fit, e.g. `x[1e400]`); turn that into a
    // client error instead of taking the request's thread down.
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(query)).map_err(|p| {
        let detail = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the parser rejected it".to_string());
        QueryError::BadData(format!(
            "parse error: a number or duration is out of range ({detail})"
        ))
    })?;
    let expr =
        parsed.map_err(|raw| QueryError::BadData(parse_error::prometheus_message(query, &raw)))?;
    check_depth(&expr)?;
    Ok(expr)
}

fn operator_count(query: &str) -> usize {
    blank_strings(query)
        .chars()
        .filter(|c| {
            matches!(
                c,
                '(' | '[' | '{' | '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!'
            )
        })
        .count()
}

/// The query text with string literals blanked out (so label values never
/// look like syntax).
pub(crate) fn blank_strings(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q != '`' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    out.push(c);
                    continue;
                }
                out.push(' ');
            }
            None => {
                if matches!(c, '"' | '\'' | '`') {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Rejects expressions nested deeper than [`MAX_EXPR_DEPTH`] (walks the
/// tree with an explicit stack, so it cannot overflow itself).
fn check_depth(root: &Expr) -> Result<(), QueryError> {
    let mut stack: Vec<(&Expr, usize)> = vec![(root, 1)];
    while let Some((e, depth)) = stack.pop() {
        if depth > MAX_EXPR_DEPTH {
            return Err(QueryError::BadData(format!(
                "query is nested too deeply (more than {MAX_EXPR_DEPTH} levels)"
            )));
        }
        let d = depth + 1;
        match e {
            Expr::Aggregate(a) => {
                stack.push((&a.expr, d));
                if let Some(p) = &a.param {
                    stack.push((p, d));
                }
            }
            Expr::Unary(u) => stack.push((&u.expr, d)),
            Expr::Binary(b) => {
                stack.push((&b.lhs, d));
                stack.push((&b.rhs, d));
            }
            Expr::Paren(p) => stack.push((&p.expr, d)),
            Expr::Subquery(s) => stack.push((&s.expr, d)),
            Expr::Call(c) => stack.extend(c.args.args.iter().map(|a| (a.as_ref(), d))),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
    }
    Ok(())
}

pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

pub(crate) fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// The fixed evaluation time an `@` modifier sets, if any.
pub(crate) fn at_ms(at: &Option<AtModifier>, query_start: i64, query_end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(query_start),
        Some(AtModifier::End) => Some(query_end),
        Some(AtModifier::At(t)) => Some(system_time_ms(t)),
    }
}

pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

/// The matcher sets a selector stands for: one set normally, one per
/// alternative for promql-parser's `{a="x" or b="y"}` extension.
pub(crate) fn matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let convert = |m: &promql_parser::label::Matcher| -> Result<Matcher, QueryError> {
        let op = match &m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::RegexMatch,
            PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
        };
        Matcher::new(op, m.name.clone(), m.value.clone())
            .map_err(|e| QueryError::BadData(e.to_string()))
    };
    let mut base = Vec::new();
    if let Some(name) = &vs.name {
        let named =
            vs.matchers.matchers.iter().any(|m| {
                m.name == METRIC_NAME && matches!(m.op, PMatchOp::Equal) && &m.value == name
            });
        if !named {
            base.push(
                Matcher::new(MatchOp::Equal, METRIC_NAME, name.clone())
                    .map_err(|e| QueryError::BadData(e.to_string()))?,
            );
        }
    }
    for m in &vs.matchers.matchers {
        base.push(convert(m)?);
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    let mut sets = Vec::new();
    for alt in &vs.matchers.or_matchers {
        let mut set = base.clone();
        for m in alt {
            set.push(convert(m)?);
        }
        sets.push(set);
    }
    Ok(sets)
}

/// Whether `e` evaluates to the same value at every step (Prometheus wraps
/// such subtrees in a step-invariant node and evaluates them once).
pub(crate) fn step_invariant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
        Expr::VectorSelector(vs) => vs.at.is_some(),
        Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
        Expr::Subquery(sq) => sq.at.is_some(),
        Expr::Paren(p) => step_invariant(&p.expr),
        Expr::Unary(u) => step_invariant(&u.expr),
        Expr::Binary(b) => step_invariant(&b.lhs) && step_invariant(&b.rhs),
        Expr::Aggregate(a) => {
            step_invariant(&a.expr) && a.param.as_ref().is_none_or(|p| step_invariant(p))
        }
        Expr::Call(c) => {
            !AT_UNSAFE_FUNCTIONS.contains(&c.func.name)
                && c.args.args.iter().all(|a| step_invariant(a))
        }
        Expr::Extension(_) => false,
    }
}

/// Evaluation times `[first, last]` of a node evaluated over the outer
/// steps `[start, end]`, after `@` and `offset`.
pub(crate) fn shifted_times(start: i64, end: i64, at: Option<i64>, offset: i64) -> (i64, i64) {
    match at {
        Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
        None => (start.saturating_sub(offset), end.saturating_sub(offset)),
    }
}

/// First step of a subquery: the first multiple of `step` after
/// `first - range` (Go integer division, as Prometheus).
pub(crate) fn subquery_start(first: i64, range: i64, step: i64) -> i64 {
    let lower = first.saturating_sub(range);
    let mut s = step.saturating_mul(lower / step);
    if s <= lower {
        s = s.saturating_add(step);
    }
    s
}

pub(crate) fn subquery_step(step: &Option<Duration>) -> Result<i64, QueryError> {
    let s = step
        .as_ref()
        .map(duration_ms)
        .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
    if s <= 0 {
        return Err(QueryError::BadData(
            "zero or negative subquery step is not allowed".into(),
        ));
    }
    Ok(s)
}

/// Collects the select requests of every selector in `e` evaluated over
/// the steps `[start, end]`.
pub(crate) fn collect_requests(
    e: &Expr,
    start: i64,
    end: i64,
    query_start: i64,
    query_end: i64,
    lookback: i64,
    out: &mut Vec<SelectRequest>,
) -> Result<(), QueryError> {
    let recurse = |e: &Expr, out: &mut Vec<SelectRequest>| {
        collect_requests(e, start, end, query_start, query_end, lookback, out)
    };
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
        Expr::VectorSelector(vs) => {
            let at = at_ms(&vs.at, query_start, query_end);
            let (first, last) = shifted_times(start, end, at, offset_ms(&vs.offset));
            push_requests(
                vs,
                first.saturating_sub(lookback).saturating_add(1),
                last,
                out,
            )
        }
        Expr::MatrixSelector(ms) => {
            let at = at_ms(&ms.vs.at, query_start, query_end);
            let (first, last) = shifted_times(start, end, at, offset_ms(&ms.vs.offset));
            let range = duration_ms(&ms.range);
            push_requests(
                &ms.vs,
                first.saturating_sub(range).saturating_add(1),
                last,
                out,
            )
        }
        Expr::Subquery(sq) => {
            let at = at_ms(&sq.at, query_start, query_end);
            let (first, last) = shifted_times(start, end, at, offset_ms(&sq.offset));
            let step = subquery_step(&sq.step)?;
            let inner_start = subquery_start(first, duration_ms(&sq.range), step);
            if inner_start > last {
                return Ok(());
            }
            collect_requests(
                &sq.expr,
                inner_start,
                last,
                query_start,
                query_end,
                lookback,
                out,
            )
        }
        Expr::Paren(p) => recurse(&p.expr, out),
        Expr::Unary(u) => recurse(&u.expr, out),
        Expr::Binary(b) => {
            recurse(&b.lhs, out)?;
            recurse(&b.rhs, out)
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                recurse(p, out)?;
            }
            recurse(&a.expr, out)
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                recurse(a, out)?;
            }
            Ok(())
        }
    }
}

fn push_requests(
    vs: &VectorSelector,
    start_ms: i64,
    end_ms: i64,
    out: &mut Vec<SelectRequest>,
) -> Result<(), QueryError> {
    for matchers in matcher_sets(vs)? {
        let req = SelectRequest {
            matchers,
            start_ms,
            end_ms,
        };
        if !out.contains(&req) {
            out.push(req);
        }
    }
    Ok(())
}
