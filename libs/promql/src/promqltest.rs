//! A runner for Prometheus's scripted PromQL test format ("promqltest",
//! described in Prometheus's `promql/promqltest/README.md`): `load`,
//! `clear` and `eval` commands, expected results and expectations
//! (`expect fail|warn|info|no_warn|no_info|ordered|range vector|string`),
//! plus the deprecated `eval_fail`/`eval_warn`/`eval_info`/`eval_ordered`
//! forms.
//!
//! Native histograms are not supported by the engine: `{{…}}` values are
//! not loaded, and every case that touches one (a histogram expected in the
//! result, or a selector that reaches a series that had histogram samples)
//! is classified [`CaseClass::NativeHistogram`]. Cases needing
//! experimental PromQL (feature flags in Prometheus) are
//! [`CaseClass::Experimental`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use promql_parser::parser::Expr;
use strata_model::{Labels, METRIC_NAME, STALE_NAN_BITS};

use crate::eval::matches_all;
use crate::{
    Engine, EngineOptions, QueryError, QueryOutput, SelectRequest, Series, Storage, StorageError,
    StoredSeries, Value,
};

struct MemSeries {
    labels: Labels,
    samples: Arc<Vec<(i64, f64)>>,
}

/// In-memory [`Storage`] over loaded series; remembers whether a select
/// reached a series that had native-histogram samples (which it does not
/// hold).
#[derive(Default)]
pub struct MemStorage {
    series: Vec<MemSeries>,
    index: HashMap<Labels, usize>,
    /// Timestamps of native-histogram samples per series (not loaded).
    histograms: Vec<(Labels, Vec<i64>)>,
    touched_histogram: AtomicBool,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples to a series (creating it); keeps samples sorted.
    pub fn add(&mut self, labels: Labels, samples: impl IntoIterator<Item = (i64, f64)>) {
        let i = match self.index.get(&labels) {
            Some(i) => *i,
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(MemSeries {
                    labels,
                    samples: Arc::new(Vec::new()),
                });
                self.series.len() - 1
            }
        };
        // A later definition of the same timestamp wins.
        let mut merged: BTreeMap<i64, f64> = self.series[i].samples.iter().copied().collect();
        merged.extend(samples);
        self.series[i].samples = Arc::new(merged.into_iter().collect());
    }

    /// Records that a series had native-histogram samples at `timestamps`.
    pub fn add_histogram_marks(&mut self, labels: Labels, timestamps: Vec<i64>) {
        self.histograms.push((labels, timestamps));
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Whether a select since the last call reached native-histogram data.
    pub fn take_touched_histogram(&self) -> bool {
        self.touched_histogram.swap(false, Ordering::Relaxed)
    }
}

impl Storage for MemStorage {
    fn select(&self, req: &SelectRequest) -> Result<Vec<StoredSeries>, StorageError> {
        for (labels, ts) in &self.histograms {
            if matches_all(&req.matchers, labels)
                && ts.iter().any(|t| *t >= req.start_ms && *t <= req.end_ms)
            {
                self.touched_histogram.store(true, Ordering::Relaxed);
            }
        }
        Ok(self
            .series
            .iter()
            .filter(|s| matches_all(&req.matchers, &s.labels))
            .filter(|s| {
                s.samples
                    .iter()
                    .any(|(t, _)| *t >= req.start_ms && *t <= req.end_ms)
            })
            .map(|s| StoredSeries {
                labels: s.labels.clone(),
                source: s.samples.clone(),
            })
            .collect())
    }
}

/// What a case needs from the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaseClass {
    /// Only float samples and stable PromQL.
    FloatOnly,
    /// Touches native histograms (not supported yet).
    NativeHistogram,
    /// Needs PromQL that Prometheus guards behind feature flags.
    Experimental,
}

impl CaseClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseClass::FloatOnly => "float-only",
            CaseClass::NativeHistogram => "native-histogram",
            CaseClass::Experimental => "experimental",
        }
    }
}

/// The outcome of one `eval` command.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub file: String,
    /// 1-based line of the `eval` command.
    pub line: usize,
    pub query: String,
    pub class: CaseClass,
    /// Why the case is in its class: the native-histogram data or the
    /// experimental feature it needs (empty for float-only cases).
    pub class_reason: String,
    /// `None` when the case passed, else why it failed.
    pub failure: Option<String>,
}

impl CaseResult {
    pub fn id(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Files whose every case needs an experimental feature (a feature flag
/// that changes the meaning of ordinary queries, or a load syntax), with
/// the feature.
const EXPERIMENTAL_FILES: &[(&str, &str)] = &[
    (
        "type_and_unit.test",
        "type and unit labels (`__type__`/`__unit__`, feature flag type-and-unit-labels)",
    ),
    (
        "start_timestamps.test",
        "start timestamps (`@st` samples, feature flag for created timestamps)",
    ),
];

fn file_feature(file: &str) -> Option<&'static str> {
    EXPERIMENTAL_FILES
        .iter()
        .find(|(f, _)| *f == file)
        .map(|(_, why)| *why)
}

/// Functions Prometheus 3 only has with
/// `--enable-feature=promql-experimental-functions`, as promql-parser
/// marks them, for queries it cannot parse (`start`/`end` are left out:
/// in a query's text they are also the stable `@` preprocessors; `step`,
/// `range`, `min_of` and `max_of` belong to duration expressions).
const EXPERIMENTAL_FUNCTIONS: &[&str] = &[
    "double_exponential_smoothing",
    "histogram_quantiles",
    "info",
    "integral",
    "mad_over_time",
    "sort_by_label",
    "sort_by_label_desc",
    "start_timestamp",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
];

/// Functions of duration expressions (`x[step()*2]`, `offset max_of(…)`).
const DURATION_FUNCTIONS: &[&str] = &["step", "range", "min_of", "max_of"];

const DURATION_EXPRESSIONS: &str = "duration expressions (feature flag promql-duration-expr)";
const EXTENDED_RANGE: &str =
    "`anchored`/`smoothed` range selectors (feature flag promql-extended-range-selectors)";
const HISTOGRAM_TRIM: &str = "native-histogram trim operators `</` and `>/`";
const LIMIT_AGGREGATIONS: &str = "`limitk`/`limit_ratio` (experimental aggregations)";
const FILL_MODIFIERS: &str = "`fill`/`fill_left`/`fill_right` binary operator modifiers";

#[derive(Clone, Debug)]
enum Point {
    Float(f64),
    Stale,
    Histogram,
}

#[derive(Clone, Debug, Default)]
struct Expectations {
    fail: bool,
    fail_msg: Option<String>,
    fail_regex: Option<String>,
    ordered: bool,
    /// (kind, matcher) with kind "warn"/"info"; matcher None = any.
    annotations: Vec<(String, Option<AnnMatch>)>,
    no_warn: bool,
    no_info: bool,
    range_vector: Option<(i64, i64, i64)>,
    string: Option<String>,
}

#[derive(Clone, Debug)]
enum AnnMatch {
    Exact(String),
    Regex(String),
}

struct EvalCmd {
    query: String,
    /// `None` for instant queries.
    range: Option<(i64, i64, i64)>,
    at: i64,
    expect: Expectations,
    scalar: Option<f64>,
    series: Vec<(Labels, Vec<Option<Point>>)>,
    histogram_expected: bool,
    parse_error: Option<String>,
}

/// Parses a duration/timestamp the way the test format writes them:
/// `0`, `50m`, `1h5m`, `10s53ms`, or plain seconds.
pub fn parse_test_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if let Ok(secs) = body.parse::<f64>() {
        let ms = (secs * 1000.0).round() as i64;
        return Ok(if neg { -ms } else { ms });
    }
    let mut total: i64 = 0;
    let mut rest = body;
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {s:?}"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return Err(format!("invalid duration unit in {s:?}")),
        };
        total = total.saturating_add(n.saturating_mul(mult));
    }
    Ok(if neg { -total } else { total })
}

/// Parses a float like Go's `strconv.ParseFloat` (as the test format does).
fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Some(f64::NAN),
        _ => {}
    }
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b".+-eE".contains(&b))
    {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Splits the value part of a series line into items, keeping `{{…}}`
/// histograms (which contain spaces) together.
fn tokenize_values(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            cur.push_str("{{");
            i += 2;
            continue;
        }
        if c == '}' && chars.get(i + 1) == Some(&'}') && depth > 0 {
            depth -= 1;
            cur.push_str("}}");
            i += 2;
            continue;
        }
        if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Expands one value item: `_`, `_xN`, `stale`, `a`, `axN`, `a+bxN`,
/// `a-bxN`, and histograms (counted, not decoded).
fn expand_item(item: &str) -> Result<Vec<Option<Point>>, String> {
    if item == "_" {
        return Ok(vec![None]);
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().map_err(|_| format!("invalid item {item:?}"))?;
        return Ok(vec![None; n]);
    }
    if item == "stale" {
        return Ok(vec![Some(Point::Stale)]);
    }
    if item.starts_with("{{") {
        let close = item
            .rfind("}}")
            .ok_or_else(|| format!("unterminated histogram {item:?}"))?;
        let tail = &item[close + 2..];
        let count = match tail.strip_prefix('x') {
            Some(n) => {
                n.parse::<usize>()
                    .map_err(|_| format!("invalid histogram repeat {item:?}"))?
                    + 1
            }
            None => 1,
        };
        return Ok(vec![Some(Point::Histogram); count]);
    }
    if let Some(v) = parse_number(item) {
        return Ok(vec![Some(Point::Float(v))]);
    }
    let Some(xpos) = item.rfind('x') else {
        return Err(format!("invalid value {item:?}"));
    };
    let n: usize = item[xpos + 1..]
        .parse()
        .map_err(|_| format!("invalid repeat count in {item:?}"))?;
    let head = &item[..xpos];
    if let Some(v) = parse_number(head) {
        return Ok(vec![Some(Point::Float(v)); n + 1]);
    }
    let bytes = head.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
            if let (Some(a), Some(b)) = (parse_number(&head[..i]), parse_number(&head[i..])) {
                let mut out = Vec::with_capacity(n + 1);
                let mut v = a;
                for _ in 0..=n {
                    out.push(Some(Point::Float(v)));
                    v += b;
                }
                return Ok(out);
            }
        }
    }
    Err(format!("invalid value {item:?}"))
}

/// Unescapes a Go-style quoted string starting at `s[0]` (a quote);
/// returns the value and the bytes consumed.
fn parse_quoted(s: &str) -> Result<(String, usize), String> {
    let quote = s.chars().next().ok_or("missing string")?;
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok((out, i + 1));
        }
        if c == '\\' && quote != '`' {
            let (_, e) = chars.next().ok_or("unterminated escape")?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'x' => {
                    let h: String = (0..2).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    let b = u8::from_str_radix(&h, 16).map_err(|_| "bad \\x escape")?;
                    out.push(char::from(b));
                }
                'u' => {
                    let h: String = (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                    let c = u32::from_str_radix(&h, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or("bad \\u escape")?;
                    out.push(c);
                }
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        } else {
            out.push(c);
        }
    }
    Err("unterminated string".into())
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses `name{a="b", …}` at the start of `s`; returns the labels and the
/// rest of the line.
fn parse_series_desc(s: &str) -> Result<(Labels, &str), String> {
    let s = s.trim_start();
    let name_len = s.find(|c: char| !is_ident_char(c)).unwrap_or(s.len());
    let mut pairs: Vec<(String, String)> = Vec::new();
    if name_len > 0 {
        pairs.push((METRIC_NAME.into(), s[..name_len].to_string()));
    }
    let mut rest = &s[name_len..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut r = body;
        loop {
            r = r.trim_start();
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let name = if r.starts_with('"') || r.starts_with('\'') || r.starts_with('`') {
                let (n, used) = parse_quoted(r)?;
                r = &r[used..];
                n
            } else {
                let len = r.find(|c: char| !is_ident_char(c)).unwrap_or(r.len());
                if len == 0 {
                    return Err(format!("invalid label set in {s:?}"));
                }
                let n = r[..len].to_string();
                r = &r[len..];
                n
            };
            r = r.trim_start();
            if let Some(after) = r.strip_prefix('=') {
                r = after.trim_start();
                let (v, used) = parse_quoted(r)?;
                r = &r[used..];
                pairs.push((name, v));
            } else {
                pairs.push((METRIC_NAME.into(), name));
            }
            r = r.trim_start();
            if let Some(after) = r.strip_prefix(',') {
                r = after;
            }
        }
    } else if name_len == 0 {
        return Err(format!("invalid series description {s:?}"));
    }
    Ok((Labels::from_pairs(pairs), rest))
}

fn parse_series_line(s: &str) -> Result<(Labels, Vec<Option<Point>>), String> {
    let (labels, rest) = parse_series_desc(s)?;
    let mut points = Vec::new();
    for item in tokenize_values(rest) {
        points.extend(expand_item(&item)?);
    }
    Ok((labels, points))
}

/// Go's `almostEqual` with the test epsilon.
pub fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 1e-6;
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < EPSILON * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

fn parse_expect_line(line: &str, ex: &mut Expectations) -> Result<(), String> {
    let body = line
        .trim()
        .strip_prefix("expect")
        .unwrap_or("")
        .trim_start();
    let (kind, rest) = match body.find(char::is_whitespace) {
        Some(i) => (&body[..i], body[i..].trim()),
        None => (body, ""),
    };
    let matcher = || -> Result<Option<AnnMatch>, String> {
        if rest.is_empty() {
            return Ok(None);
        }
        if let Some(m) = rest.strip_prefix("msg:") {
            return Ok(Some(AnnMatch::Exact(m.trim().to_string())));
        }
        if let Some(m) = rest.strip_prefix("regex:") {
            return Ok(Some(AnnMatch::Regex(m.trim().to_string())));
        }
        Err(format!("invalid expect line {line:?}"))
    };
    match kind {
        "fail" => {
            ex.fail = true;
            match matcher()? {
                Some(AnnMatch::Exact(m)) => ex.fail_msg = Some(unquote_opt(&m)),
                Some(AnnMatch::Regex(r)) => ex.fail_regex = Some(unquote_opt(&r)),
                None => {}
            }
        }
        "warn" | "info" => ex.annotations.push((kind.to_string(), matcher()?)),
        "no_warn" => ex.no_warn = true,
        "no_info" => ex.no_info = true,
        "ordered" => ex.ordered = true,
        "range" => {
            // expect range vector from <start> to <end> step <step>
            let parts: Vec<&str> = rest.split_whitespace().collect();
            if parts.len() != 7
                || parts[0] != "vector"
                || parts[1] != "from"
                || parts[3] != "to"
                || parts[5] != "step"
            {
                return Err(format!("invalid expect range vector line {line:?}"));
            }
            ex.range_vector = Some((
                parse_test_duration(parts[2])?,
                parse_test_duration(parts[4])?,
                parse_test_duration(parts[6])?,
            ));
        }
        "string" => {
            let (v, _) = parse_quoted(rest)?;
            ex.string = Some(v);
        }
        _ => return Err(format!("invalid expect line {line:?}")),
    }
    Ok(())
}

/// Expected error messages may be given in quotes.
fn unquote_opt(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('`') && t.ends_with('`')))
    {
        if let Ok((v, used)) = parse_quoted(t) {
            if used == t.len() {
                return v;
            }
        }
    }
    t.to_string()
}

fn parse_eval_line(line: &str) -> Result<EvalCmd, String> {
    let (head, rest) = line
        .split_once(char::is_whitespace)
        .ok_or("invalid eval line")?;
    let mut expect = Expectations::default();
    match head {
        "eval" => {}
        "eval_fail" => expect.fail = true,
        "eval_warn" => expect.annotations.push(("warn".into(), None)),
        "eval_info" => expect.annotations.push(("info".into(), None)),
        "eval_ordered" => expect.ordered = true,
        other => return Err(format!("unknown command {other:?}")),
    }
    let rest = rest.trim_start();
    let take = |s: &str| -> (String, String) {
        let s = s.trim_start();
        match s.split_once(char::is_whitespace) {
            Some((a, b)) => (a.to_string(), b.trim_start().to_string()),
            None => (s.to_string(), String::new()),
        }
    };
    let (kind, rest) = take(rest);
    let mut cmd = EvalCmd {
        query: String::new(),
        range: None,
        at: 0,
        expect,
        scalar: None,
        series: Vec::new(),
        histogram_expected: false,
        parse_error: None,
    };
    match kind.as_str() {
        "instant" => {
            let (at_kw, rest) = take(&rest);
            if at_kw != "at" {
                return Err(format!("invalid instant eval line {line:?}"));
            }
            let (t, query) = take(&rest);
            cmd.at = parse_test_duration(&t)?;
            cmd.query = query;
        }
        "range" => {
            let (from, rest) = take(&rest);
            let (start, rest) = take(&rest);
            let (to, rest) = take(&rest);
            let (end, rest) = take(&rest);
            let (step_kw, rest) = take(&rest);
            let (step, query) = take(&rest);
            if from != "from" || to != "to" || step_kw != "step" {
                return Err(format!("invalid range eval line {line:?}"));
            }
            cmd.range = Some((
                parse_test_duration(&start)?,
                parse_test_duration(&end)?,
                parse_test_duration(&step)?,
            ));
            cmd.query = query;
        }
        _ => return Err(format!("invalid eval line {line:?}")),
    }
    Ok(cmd)
}

struct Runner {
    storage: MemStorage,
    engine: Engine,
    /// Evaluates every query again, for [`run_dir_differential`].
    twin: Option<Engine>,
    /// Queries whose results differ between `engine` and `twin`.
    differences: Vec<String>,
    file: String,
    results: Vec<CaseResult>,
}

fn is_command(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    !line.starts_with(char::is_whitespace)
        && (first == "clear"
            || first == "load"
            || first == "load_with_nhcb"
            || first.starts_with("eval"))
}

/// The engine scripts run with.
fn script_engine() -> Engine {
    Engine::new(EngineOptions {
        lookback_delta: Duration::from_secs(300),
        max_samples: 50_000_000,
        max_bytes: 0,
        memory_pool: None,
        cancel: None,
        timeout: Duration::from_secs(60),
    })
}

/// Runs one test script; `file` names it in the results.
pub fn run_script(file: &str, text: &str) -> Vec<CaseResult> {
    run_script_with(file, text, script_engine(), None).0
}

/// Runs every `*.test` file of a directory with an engine split into
/// `parts` parts wherever it can be (see `Engine::with_forced_parts`),
/// evaluating every query serially too. Returns the results (checked
/// against the scripts' expectations) and a line for every query whose
/// answer (values bit for bit, order, annotations, error) differs between
/// the two.
pub fn run_dir_differential(
    dir: &Path,
    parts: usize,
) -> std::io::Result<(Vec<CaseResult>, Vec<String>)> {
    let mut results = Vec::new();
    let mut differences = Vec::new();
    for (name, text) in read_scripts(dir)? {
        let (r, d) = run_script_with(
            &name,
            &text,
            script_engine().with_forced_parts(parts),
            Some(script_engine().with_parallelism(1)),
        );
        results.extend(r);
        differences.extend(d);
    }
    Ok((results, differences))
}

fn run_script_with(
    file: &str,
    text: &str,
    engine: Engine,
    twin: Option<Engine>,
) -> (Vec<CaseResult>, Vec<String>) {
    let mut runner = Runner {
        storage: MemStorage::new(),
        engine,
        twin,
        differences: Vec::new(),
        file: file.to_string(),
        results: Vec::new(),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut block = Vec::new();
        while i < lines.len() {
            let l = lines[i];
            if l.trim().is_empty() || is_command(l) {
                break;
            }
            if !l.trim().starts_with('#') {
                block.push((i + 1, l));
            }
            i += 1;
        }
        let cmd = trimmed.split_whitespace().next().unwrap_or("");
        match cmd {
            "clear" => runner.storage.clear(),
            "load" | "load_with_nhcb" => {
                let interval = trimmed.split_whitespace().nth(1).unwrap_or("");
                if let Err(e) = runner.load(interval, cmd == "load_with_nhcb", &block) {
                    let (class, class_reason) = match file_feature(file) {
                        Some(why) => (CaseClass::Experimental, why.to_string()),
                        None => (CaseClass::FloatOnly, String::new()),
                    };
                    runner.results.push(CaseResult {
                        file: file.to_string(),
                        line: start + 1,
                        query: trimmed.to_string(),
                        class,
                        class_reason,
                        failure: Some(format!("load failed: {e}")),
                    });
                }
            }
            _ if cmd.starts_with("eval") => {
                let r = runner.eval(trimmed, start + 1, &block);
                runner.results.push(r);
            }
            _ => runner.results.push(CaseResult {
                file: file.to_string(),
                line: start + 1,
                query: trimmed.to_string(),
                class: CaseClass::FloatOnly,
                class_reason: String::new(),
                failure: Some(format!("unknown command {cmd:?}")),
            }),
        }
    }
    (runner.results, runner.differences)
}

/// The `*.test` files of a directory, in name order: (name, text).
fn read_scripts(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        out.push((name, text));
    }
    Ok(out)
}

/// Runs every `*.test` file of a directory, in name order.
pub fn run_dir(dir: &Path) -> std::io::Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    for (name, text) in read_scripts(dir)? {
        out.extend(run_script(&name, &text));
    }
    Ok(out)
}

impl Runner {
    fn load(
        &mut self,
        interval: &str,
        with_nhcb: bool,
        block: &[(usize, &str)],
    ) -> Result<(), String> {
        let interval = parse_test_duration(interval)?;
        for (lineno, line) in block {
            let (labels, points) =
                parse_series_line(line).map_err(|e| format!("line {lineno}: {e}"))?;
            let mut samples = Vec::new();
            let mut hist_ts = Vec::new();
            for (k, p) in points.iter().enumerate() {
                let t = k as i64 * interval;
                match p {
                    None => {}
                    Some(Point::Float(v)) => samples.push((t, *v)),
                    Some(Point::Stale) => samples.push((t, f64::from_bits(STALE_NAN_BITS))),
                    Some(Point::Histogram) => hist_ts.push(t),
                }
            }
            if with_nhcb {
                if let Some(base) = labels
                    .get(METRIC_NAME)
                    .and_then(|n| n.strip_suffix("_bucket"))
                {
                    let nh =
                        Labels::from_pairs(labels.iter().filter(|l| l.name != "le").map(|l| {
                            if l.name == METRIC_NAME {
                                (l.name.clone(), base.to_string())
                            } else {
                                (l.name.clone(), l.value.clone())
                            }
                        }));
                    self.storage
                        .add_histogram_marks(nh, samples.iter().map(|s| s.0).collect());
                }
            }
            if !hist_ts.is_empty() {
                self.storage.add_histogram_marks(labels.clone(), hist_ts);
            }
            self.storage.add(labels, samples);
        }
        Ok(())
    }

    fn eval(&mut self, line: &str, lineno: usize, block: &[(usize, &str)]) -> CaseResult {
        let mut result = CaseResult {
            file: self.file.clone(),
            line: lineno,
            query: line.to_string(),
            class: CaseClass::FloatOnly,
            class_reason: String::new(),
            failure: None,
        };
        let mut cmd = match parse_eval_line(line) {
            Ok(c) => c,
            Err(e) => {
                result.failure = Some(format!("bad eval command: {e}"));
                return result;
            }
        };
        result.query = cmd.query.clone();
        for (_, l) in block {
            let t = l.trim();
            if t.starts_with("expect ") || t == "expect" {
                if let Err(e) = parse_expect_line(t, &mut cmd.expect) {
                    result.failure = Some(e);
                    return result;
                }
                continue;
            }
            if let Some(m) = t.strip_prefix("expected_fail_message") {
                cmd.expect.fail = true;
                cmd.expect.fail_msg = Some(m.trim().to_string());
                continue;
            }
            if let Some(m) = t.strip_prefix("expected_fail_regexp") {
                cmd.expect.fail = true;
                cmd.expect.fail_regex = Some(m.trim().to_string());
                continue;
            }
            if let Some(v) = parse_number(t) {
                cmd.scalar = Some(v);
                continue;
            }
            if t.contains("{{") {
                cmd.histogram_expected = true;
            }
            match parse_series_line(t) {
                Ok(s) => cmd.series.push(s),
                Err(e) => {
                    cmd.parse_error = Some(e);
                }
            }
        }
        if cmd
            .series
            .iter()
            .any(|(_, p)| p.iter().any(|x| matches!(x, Some(Point::Histogram))))
        {
            cmd.histogram_expected = true;
        }
        let parsed = promql_parser::parser::parse(&cmd.query);
        (result.class, result.class_reason) = classify(&self.file, &cmd, &parsed);
        self.storage.take_touched_histogram();
        let outcome = self.query(&cmd.query, cmd.at, cmd.range);
        if self.storage.take_touched_histogram() && result.class == CaseClass::FloatOnly {
            result.class = CaseClass::NativeHistogram;
            result.class_reason = "reads series that hold native-histogram samples".into();
        }
        if let Some(e) = &cmd.parse_error {
            result.failure = Some(format!("cannot parse expected result: {e}"));
            return result;
        }
        let instant_ok = cmd.range.is_none()
            && !cmd.expect.fail
            && !cmd.expect.ordered
            && matches!(&outcome, Ok(o) if matches!(o.value, Value::Vector(_) | Value::Scalar { .. }));
        result.failure = check(&cmd, outcome).err();
        if result.failure.is_none() && instant_ok {
            result.failure = self.check_range_mode(&cmd).err();
        }
        result
    }

    /// Evaluates a query (an instant one at `at`, or over `range`), and
    /// with the twin engine too when there is one, noting any difference.
    fn query(
        &mut self,
        query: &str,
        at: i64,
        range: Option<(i64, i64, i64)>,
    ) -> Result<QueryOutput, QueryError> {
        let run = |engine: &Engine| match range {
            None => engine.instant_query(&self.storage, query, at),
            Some((s, e, st)) => engine.range_query(&self.storage, query, s, e, st),
        };
        let outcome = run(&self.engine);
        if let Some(twin) = &self.twin {
            let (got, want) = (format!("{outcome:?}"), format!("{:?}", run(twin)));
            if got != want {
                self.differences.push(format!(
                    "{}: `{query}` at {at} range {range:?}:\n  split:  {got}\n  serial: {want}",
                    self.file
                ));
            }
        }
        outcome
    }

    /// As Prometheus's runner: an instant query must give the same result
    /// as the middle step of a range query around it.
    fn check_range_mode(&mut self, cmd: &EvalCmd) -> Result<(), String> {
        let t = cmd.at;
        let out = self
            .query(&cmd.query, t, Some((t - 60_000, t + 60_000, 60_000)))
            .map_err(|e| format!("range mode: unexpected error: {e}"))?;
        let Value::Matrix(series) = out.value else {
            return Err("range mode: expected a matrix".into());
        };
        let mut samples = Vec::new();
        for s in series {
            if let Some((_, v)) = s.samples.iter().find(|p| p.0 == t) {
                samples.push(crate::VectorSample::float(s.labels, t, *v));
            }
        }
        let value = if cmd.scalar.is_some() {
            Value::Scalar {
                t,
                v: samples.first().map(|s| s.v).unwrap_or(f64::NAN),
            }
        } else {
            Value::Vector(samples)
        };
        let mut relaxed = Expectations {
            annotations: Vec::new(),
            no_info: false,
            no_warn: false,
            ..cmd.expect.clone()
        };
        relaxed.fail = false;
        let probe = EvalCmd {
            query: cmd.query.clone(),
            range: None,
            at: t,
            expect: relaxed,
            scalar: cmd.scalar,
            series: cmd.series.clone(),
            histogram_expected: cmd.histogram_expected,
            parse_error: None,
        };
        check(
            &probe,
            Ok(QueryOutput {
                value,
                annotations: Default::default(),
            }),
        )
        .map_err(|e| format!("range mode: {e}"))
    }
}

/// The class of a case and why: native histograms when its expected
/// result holds one (reading histogram samples is found during
/// evaluation), experimental when it uses syntax or functions Prometheus
/// guards behind a feature flag, float-only otherwise. What decides is the
/// feature the query uses, whether or not promql-parser can parse it: a
/// query of stable syntax the parser rejects stays float-only, so a parser
/// gap shows up as a float-only failure.
fn classify(file: &str, cmd: &EvalCmd, parsed: &Result<Expr, String>) -> (CaseClass, String) {
    if cmd.histogram_expected {
        return (
            CaseClass::NativeHistogram,
            "expects a native histogram in the result".into(),
        );
    }
    if let Some(why) = file_feature(file) {
        return (CaseClass::Experimental, why.into());
    }
    let feature = match parsed {
        Ok(e) => experimental_feature(e),
        Err(_) => None,
    };
    match feature.or_else(|| syntax_feature(&cmd.query)) {
        Some((class, why)) => (class, why),
        None => (CaseClass::FloatOnly, String::new()),
    }
}

/// Whether the query uses PromQL that Prometheus puts behind a feature
/// flag (experimental functions, `limitk`/`limit_ratio`, `fill` modifiers).
pub fn uses_experimental(e: &Expr) -> bool {
    experimental_feature(e).is_some()
}

/// The experimental feature a parsed query uses, if any.
fn experimental_feature(e: &Expr) -> Option<(CaseClass, String)> {
    let exp = |why: &str| Some((CaseClass::Experimental, why.to_string()));
    match e {
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if op == "limitk" || op == "limit_ratio" {
                return exp(LIMIT_AGGREGATIONS);
            }
            experimental_feature(&a.expr)
                .or_else(|| a.param.as_ref().and_then(|p| experimental_feature(p)))
        }
        Expr::Unary(u) => experimental_feature(&u.expr),
        Expr::Binary(b) => {
            let fill = b
                .modifier
                .as_ref()
                .is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some());
            if fill {
                return exp(FILL_MODIFIERS);
            }
            experimental_feature(&b.lhs).or_else(|| experimental_feature(&b.rhs))
        }
        Expr::Paren(p) => experimental_feature(&p.expr),
        Expr::Subquery(s) => experimental_feature(&s.expr),
        Expr::Call(c) => {
            if DURATION_FUNCTIONS.contains(&c.func.name) {
                return exp(DURATION_EXPRESSIONS);
            }
            if c.func.experimental {
                return exp(&format!("experimental function `{}`", c.func.name));
            }
            c.args.args.iter().find_map(|a| experimental_feature(a))
        }
        Expr::Extension(_) => exp("promql-parser extension expression"),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => None,
    }
}

/// The feature a query uses, read from its text (for queries promql-parser
/// cannot parse): extended range selectors, duration expressions, the
/// native-histogram trim operators, experimental functions, `limitk`,
/// `fill` modifiers.
fn syntax_feature(query: &str) -> Option<(CaseClass, String)> {
    let text = crate::plan::blank_strings(query);
    // Words (identifiers and keywords) with their offsets.
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        let word_char = c.is_ascii_alphanumeric() || c == '_' || c == ':';
        match (start, word_char) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                words.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    let called = |name: &str| {
        words.iter().any(|(i, w)| {
            w.eq_ignore_ascii_case(name) && text[i + w.len()..].trim_start().starts_with('(')
        })
    };
    let exp = |why: String| Some((CaseClass::Experimental, why));
    if words
        .iter()
        .any(|(_, w)| w.eq_ignore_ascii_case("anchored") || w.eq_ignore_ascii_case("smoothed"))
    {
        return exp(EXTENDED_RANGE.into());
    }
    if text.contains("</") || text.contains(">/") {
        return Some((CaseClass::NativeHistogram, HISTOGRAM_TRIM.into()));
    }
    // Duration expressions: a duration function, arithmetic or
    // parentheses inside `[...]`, or an `offset` followed by an expression.
    let brackets_compute = text.split('[').skip(1).any(|part| {
        let inside = part.split(']').next().unwrap_or("");
        inside.contains(['+', '-', '*', '/', '%', '^', '('])
    });
    let offset_expr = words.iter().any(|(i, w)| {
        w.eq_ignore_ascii_case("offset") && {
            let rest = text[i + w.len()..].trim_start();
            let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
            rest.starts_with('(')
                || DURATION_FUNCTIONS
                    .iter()
                    .any(|f| rest.len() >= f.len() && rest[..f.len()].eq_ignore_ascii_case(f))
        }
    });
    if brackets_compute || offset_expr || DURATION_FUNCTIONS.iter().any(|f| called(f)) {
        return exp(DURATION_EXPRESSIONS.into());
    }
    if let Some(f) = EXPERIMENTAL_FUNCTIONS.iter().find(|f| called(f)) {
        return exp(format!("experimental function `{f}`"));
    }
    if called("limitk") || called("limit_ratio") {
        return exp(LIMIT_AGGREGATIONS.into());
    }
    if called("fill") || called("fill_left") || called("fill_right") {
        return exp(FILL_MODIFIERS.into());
    }
    None
}

fn fmt_points(points: &[(i64, f64)]) -> String {
    points
        .iter()
        .map(|(t, v)| format!("{v}@{}", *t as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_annotations(ex: &Expectations, out: &QueryOutput) -> Result<(), String> {
    for (kind, list, forbid) in [
        ("warn", &out.annotations.warnings, ex.no_warn),
        ("info", &out.annotations.infos, ex.no_info),
    ] {
        if forbid && !list.is_empty() {
            return Err(format!("unexpected {kind} annotations: {list:?}"));
        }
        let wanted: Vec<&Option<AnnMatch>> = ex
            .annotations
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, m)| m)
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let matches = |m: &Option<AnnMatch>, a: &str| match m {
            None => true,
            Some(AnnMatch::Exact(s)) => s == a,
            Some(AnnMatch::Regex(r)) => regex::Regex::new(r).is_ok_and(|re| re.is_match(a)),
        };
        for m in &wanted {
            if !list.iter().any(|a| matches(m, a)) {
                return Err(format!("expected {kind} annotation {m:?}, got {list:?}"));
            }
        }
        for a in list.iter() {
            if !wanted.iter().any(|m| matches(m, a)) {
                return Err(format!("unexpected {kind} annotation {a:?}"));
            }
        }
    }
    Ok(())
}

fn check(cmd: &EvalCmd, outcome: Result<QueryOutput, QueryError>) -> Result<(), String> {
    let ex = &cmd.expect;
    let out = match outcome {
        Err(e) => {
            if !ex.fail {
                return Err(format!("unexpected error: {e}"));
            }
            let msg = e.to_string();
            if let Some(want) = &ex.fail_msg {
                if &msg != want {
                    return Err(format!("expected error {want:?}, got {msg:?}"));
                }
            }
            if let Some(re) = &ex.fail_regex {
                let ok = regex::Regex::new(re).is_ok_and(|r| r.is_match(&msg));
                if !ok {
                    return Err(format!("expected error matching {re:?}, got {msg:?}"));
                }
            }
            return Ok(());
        }
        Ok(out) => out,
    };
    if ex.fail {
        return Err(format!(
            "expected an error, got {:?}",
            summarize(&out.value)
        ));
    }
    check_annotations(ex, &out)?;
    match (&out.value, cmd.range) {
        (Value::String { v, .. }, None) => match &ex.string {
            Some(want) if want == v => Ok(()),
            Some(want) => Err(format!("expected string {want:?}, got {v:?}")),
            None => Err(format!("unexpected string result {v:?}")),
        },
        (Value::Scalar { v, .. }, None) => match cmd.scalar {
            Some(want) if almost_equal(want, *v) => Ok(()),
            Some(want) => Err(format!("expected scalar {want}, got {v}")),
            None => Err(format!("expected a vector, got scalar {v}")),
        },
        (Value::Vector(samples), None) => {
            if cmd.scalar.is_some() {
                return Err(format!(
                    "expected a scalar, got vector of {} series",
                    samples.len()
                ));
            }
            if samples.len() != cmd.series.len() {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    cmd.series.len(),
                    samples.len(),
                    summarize(&out.value)
                ));
            }
            for (pos, (labels, points)) in cmd.series.iter().enumerate() {
                let want = match points.as_slice() {
                    [Some(Point::Float(v))] => *v,
                    _ => return Err(format!("expected value of {labels} must be one float")),
                };
                let got = if ex.ordered {
                    let s = &samples[pos];
                    if &s.labels != labels {
                        return Err(format!(
                            "expected {labels} at position {pos}, got {}",
                            s.labels
                        ));
                    }
                    s
                } else {
                    match samples.iter().find(|s| &s.labels == labels) {
                        Some(s) => s,
                        None => {
                            return Err(format!(
                                "missing series {labels}; got {}",
                                summarize(&out.value)
                            ))
                        }
                    }
                };
                if !almost_equal(want, got.v) {
                    return Err(format!("{labels}: expected {want}, got {}", got.v));
                }
            }
            Ok(())
        }
        (Value::Matrix(series), range) => {
            let steps = match (range, ex.range_vector) {
                (Some(r), _) => r,
                (None, Some(r)) => r,
                (None, None) => {
                    return Err(format!(
                        "unexpected range vector result: {}",
                        summarize(&out.value)
                    ))
                }
            };
            let (start, end, step) = steps;
            let mut expected: BTreeMap<String, (Labels, Vec<(i64, f64)>)> = BTreeMap::new();
            for (labels, points) in &cmd.series {
                let mut pts = Vec::new();
                for (k, p) in points.iter().enumerate() {
                    let t = start + k as i64 * step;
                    if t > end {
                        break;
                    }
                    match p {
                        Some(Point::Float(v)) => pts.push((t, *v)),
                        Some(_) => return Err("unsupported expected point".into()),
                        None => {}
                    }
                }
                expected.insert(labels.to_string(), (labels.clone(), pts));
            }
            if cmd.scalar.is_some() {
                return Err("expected a scalar result, got a matrix".into());
            }
            let got: Vec<&Series> = series.iter().filter(|s| !s.samples.is_empty()).collect();
            let want_nonempty = expected.values().filter(|(_, p)| !p.is_empty()).count();
            if got.len() != want_nonempty {
                return Err(format!(
                    "expected {} series, got {}: {}",
                    want_nonempty,
                    got.len(),
                    summarize(&out.value)
                ));
            }
            for s in got {
                let Some((_, want)) = expected.get(&s.labels.to_string()) else {
                    return Err(format!("unexpected series {}", s.labels));
                };
                let same = want.len() == s.samples.len()
                    && want
                        .iter()
                        .zip(&s.samples)
                        .all(|(a, b)| a.0 == b.0 && almost_equal(a.1, b.1));
                if !same {
                    return Err(format!(
                        "{}: expected [{}], got [{}]",
                        s.labels,
                        fmt_points(want),
                        fmt_points(&s.samples)
                    ));
                }
            }
            Ok(())
        }
        (other, Some(_)) => Err(format!(
            "unexpected result for range query: {}",
            summarize(other)
        )),
    }
}

fn summarize(v: &Value) -> String {
    let mut s = String::new();
    match v {
        Value::Scalar { v, .. } => {
            let _ = write!(s, "scalar {v}");
        }
        Value::String { v, .. } => {
            let _ = write!(s, "string {v:?}");
        }
        Value::Vector(samples) => {
            for x in samples.iter().take(8) {
                let _ = write!(s, "{} {}; ", x.labels, x.v);
            }
            if samples.len() > 8 {
                let _ = write!(s, "… ({} series)", samples.len());
            }
        }
        Value::Matrix(series) => {
            for x in series.iter().take(8) {
                let _ = write!(s, "{} [{}]; ", x.labels, fmt_points(&x.samples));
            }
            if series.len() > 8 {
                let _ = write!(s, "… ({} series)", series.len());
            }
        }
    }
    if s.len() > 600 {
        let mut cut = 600;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Per-file pass counts by class.
pub fn summarize_results(
    results: &[CaseResult],
) -> BTreeMap<String, BTreeMap<CaseClass, (usize, usize)>> {
    let mut out: BTreeMap<String, BTreeMap<CaseClass, (usize, usize)>> = BTreeMap::new();
    for r in results {
        let e = out
            .entry(r.file.clone())
            .or_default()
            .entry(r.class)
            .or_insert((0, 0));
        e.1 += 1;
        if r.passed() {
            e.0 += 1;
        }
    }
    out
}

/// The compatibility report (Markdown) for `docs/promql-compatibility.md`.
pub fn render_report(results: &[CaseResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# PromQL compatibility\n");
    let _ = writeln!(
        s,
        "Generated by `PROMQL_COMPAT_REPORT=1 cargo test -p strata-promql --test promqltest`: the results of \
         Prometheus's own scripted engine tests (v3.14, `shared/reference/promql-testdata`) run against \
         `strata-promql`. Each `eval` case is classified by what its query and data use, whether or not \
         promql-parser can parse the query: native-histogram (a histogram in the expected result, a selector \
         reaching series with histogram samples, or the histogram trim operators `</` `>/`; not supported \
         yet), experimental (syntax, functions or flags Prometheus guards behind a feature flag: duration \
         expressions, `anchored`/`smoothed`, `fill` modifiers, `limitk`/`limit_ratio`, experimental \
         functions such as `info`, type-and-unit labels, start timestamps) or float-only (everything else; a \
         stable query the parser cannot parse counts here, so parser gaps show up as float-only failures). \
         Cells are passed/total. Below the table: every non-passing case by class, grouped by reason; then \
         the hand-kept sections (the differential test against Prometheus 2.42 and the 2.x/3.x differences \
         it allows for; parse error messages).\n"
    );
    let _ = writeln!(s, "| file | float-only | native-histogram | experimental |");
    let _ = writeln!(s, "|---|---|---|---|");
    let summary = summarize_results(results);
    let mut totals: BTreeMap<CaseClass, (usize, usize)> = BTreeMap::new();
    for (file, classes) in &summary {
        let cell = |c: CaseClass| match classes.get(&c) {
            Some((p, t)) => format!("{p}/{t}"),
            None => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {file} | {} | {} | {} |",
            cell(CaseClass::FloatOnly),
            cell(CaseClass::NativeHistogram),
            cell(CaseClass::Experimental)
        );
        for (c, (p, t)) in classes {
            let e = totals.entry(*c).or_insert((0, 0));
            e.0 += p;
            e.1 += t;
        }
    }
    let tot = |c: CaseClass| {
        totals
            .get(&c)
            .map(|(p, t)| format!("**{p}/{t}**"))
            .unwrap_or_else(|| "–".into())
    };
    let _ = writeln!(
        s,
        "| **total** | {} | {} | {} |\n",
        tot(CaseClass::FloatOnly),
        tot(CaseClass::NativeHistogram),
        tot(CaseClass::Experimental)
    );
    let _ = writeln!(s, "## Failing float-only cases\n");
    let failing: Vec<&CaseResult> = results
        .iter()
        .filter(|r| r.class == CaseClass::FloatOnly && !r.passed())
        .collect();
    if failing.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for r in failing {
        let reason = r
            .failure
            .as_deref()
            .unwrap_or("")
            .replace('\n', " ")
            .replace('|', "\\|");
        let mut reason: String = reason.chars().take(300).collect();
        if reason.len() < r.failure.as_deref().unwrap_or("").len() {
            reason.push('…');
        }
        let _ = writeln!(
            s,
            "- `{}` `{}`: {}",
            r.id(),
            r.query.replace('`', "'"),
            reason
        );
    }
    for (class, intro) in [
        (
            CaseClass::NativeHistogram,
            "Native histograms are not supported yet: histogram samples are not loaded and the engine has \
             no histogram values, so these cases fail (the few that pass do not depend on the histograms' \
             values). Grouped by how the case touches native histograms and how it fails; per file, the \
             lines of the `eval` commands.",
        ),
        (
            CaseClass::Experimental,
            "Features Prometheus 3 only has behind a feature flag. Grouped by the feature and how the case \
             fails; per file, the lines of the `eval` commands.",
        ),
    ] {
        let _ = writeln!(s, "\n## Non-passing {} cases\n", class.as_str());
        let _ = writeln!(s, "{intro}\n");
        let groups = failure_groups(results, class);
        if groups.is_empty() {
            let _ = writeln!(s, "None.");
        }
        for (reason, by_file) in groups {
            let total: usize = by_file.values().map(Vec::len).sum();
            let _ = writeln!(s, "- **{reason}**: {total}");
            for (file, lines) in by_file {
                let list: Vec<String> = lines.iter().map(usize::to_string).collect();
                let _ = writeln!(s, "  - {file} ({}): {}", lines.len(), list.join(", "));
            }
        }
    }
    s
}

/// The line after which `docs/promql-compatibility.md` is written by hand;
/// regenerating the report keeps everything from it on.
pub const HAND_KEPT_MARKER: &str =
    "<!-- Hand-kept from here on: PROMQL_COMPAT_REPORT=1 regenerates only what is above. -->";

/// The generated report followed by the hand-kept part of the `existing`
/// document (from [`HAND_KEPT_MARKER`] on; just the marker if it has none).
pub fn with_hand_kept(generated: &str, existing: &str) -> String {
    let kept = existing
        .find(HAND_KEPT_MARKER)
        .map(|i| &existing[i..])
        .unwrap_or(HAND_KEPT_MARKER);
    let mut out = generated.trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(kept.trim_end());
    out.push('\n');
    out
}

/// Non-passing cases of a class grouped by short reason (why the case is
/// in the class, and how it fails), then by file, with their lines.
fn failure_groups(
    results: &[CaseResult],
    class: CaseClass,
) -> BTreeMap<String, BTreeMap<String, Vec<usize>>> {
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.class == class && !r.passed()) {
        let reason = format!(
            "{} — {}",
            r.class_reason,
            failure_kind(r.failure.as_deref().unwrap_or(""))
        );
        groups
            .entry(reason)
            .or_default()
            .entry(r.file.clone())
            .or_default()
            .push(r.line);
    }
    groups
}

/// How a case fails, in a few words.
pub fn failure_kind(failure: &str) -> &'static str {
    let f = failure.strip_prefix("range mode: ").unwrap_or(failure);
    if f.starts_with("load failed") {
        "the test data cannot be loaded"
    } else if f.starts_with("unexpected error: ") && f.contains("parse error") {
        "promql-parser cannot parse the query"
    } else if f.starts_with("unexpected error: ") && f.contains("not supported") {
        "not implemented in the engine"
    } else if f.starts_with("unexpected error") {
        "fails where Prometheus answers"
    } else if f.starts_with("expected an error") {
        "answers where Prometheus fails"
    } else if f.starts_with("expected error") {
        "fails with a different error"
    } else if f.starts_with("unsupported expected point") {
        "expects histogram values"
    } else if f.contains("annotation") {
        "missing or different warning/info annotations"
    } else if f.starts_with("cannot parse expected result") || f.starts_with("bad eval command") {
        "the test case cannot be read"
    } else {
        "different result"
    }
}
