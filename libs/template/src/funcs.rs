//! Go's builtin template functions and Prometheus's template functions, plus
//! the `time.Time` / `time.Duration` methods templates call.

use std::sync::Arc;

use crate::exec::State;
use crate::gofmt::{
    self, float_v, format_float, parse_float_error, parse_go_float, print_for_error,
};
use crate::timefmt;
use crate::value::{Sample, Time, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Html,
    Js,
    Urlquery,
    Call,
    Query,
    First,
    Label,
    ValueOf,
    Strvalue,
    Args,
    ReReplaceAll,
    SafeHtml,
    Match,
    Title,
    ToUpper,
    ToLower,
    GraphLink,
    TableLink,
    SortByLabel,
    StripPort,
    StripDomain,
    Humanize,
    Humanize1024,
    HumanizeDuration,
    HumanizePercentage,
    HumanizeTimestamp,
    ToTime,
    ToDuration,
    Now,
    PathPrefix,
    ExternalURL,
    ParseDuration,
    UrlQueryEscape,
}

/// name, function, fixed parameter count, variadic.
const TABLE: &[(&str, Func, usize, bool)] = &[
    ("and", Func::And, 1, true),
    ("or", Func::Or, 1, true),
    ("not", Func::Not, 1, false),
    ("len", Func::Len, 1, false),
    ("index", Func::Index, 1, true),
    ("slice", Func::Slice, 1, true),
    ("print", Func::Print, 0, true),
    ("printf", Func::Printf, 1, true),
    ("println", Func::Println, 0, true),
    ("eq", Func::Eq, 1, true),
    ("ne", Func::Ne, 2, false),
    ("lt", Func::Lt, 2, false),
    ("le", Func::Le, 2, false),
    ("gt", Func::Gt, 2, false),
    ("ge", Func::Ge, 2, false),
    ("html", Func::Html, 0, true),
    ("js", Func::Js, 0, true),
    ("urlquery", Func::Urlquery, 0, true),
    ("call", Func::Call, 1, true),
    ("query", Func::Query, 1, false),
    ("first", Func::First, 1, false),
    ("label", Func::Label, 2, false),
    ("value", Func::ValueOf, 1, false),
    ("strvalue", Func::Strvalue, 1, false),
    ("args", Func::Args, 0, true),
    ("reReplaceAll", Func::ReReplaceAll, 3, false),
    ("safeHtml", Func::SafeHtml, 1, false),
    ("match", Func::Match, 2, false),
    ("title", Func::Title, 1, false),
    ("toUpper", Func::ToUpper, 1, false),
    ("toLower", Func::ToLower, 1, false),
    ("graphLink", Func::GraphLink, 1, false),
    ("tableLink", Func::TableLink, 1, false),
    ("sortByLabel", Func::SortByLabel, 2, false),
    ("stripPort", Func::StripPort, 1, false),
    ("stripDomain", Func::StripDomain, 1, false),
    ("humanize", Func::Humanize, 1, false),
    ("humanize1024", Func::Humanize1024, 1, false),
    ("humanizeDuration", Func::HumanizeDuration, 1, false),
    ("humanizePercentage", Func::HumanizePercentage, 1, false),
    ("humanizeTimestamp", Func::HumanizeTimestamp, 1, false),
    ("toTime", Func::ToTime, 1, false),
    ("toDuration", Func::ToDuration, 1, false),
    ("now", Func::Now, 0, false),
    ("pathPrefix", Func::PathPrefix, 0, false),
    ("externalURL", Func::ExternalURL, 0, false),
    ("parseDuration", Func::ParseDuration, 1, false),
    ("urlQueryEscape", Func::UrlQueryEscape, 1, false),
];

impl Func {
    pub(crate) fn lookup(name: &str) -> Option<Func> {
        TABLE.iter().find(|(n, ..)| *n == name).map(|&(_, f, ..)| f)
    }

    fn entry(self) -> &'static (&'static str, Func, usize, bool) {
        TABLE
            .iter()
            .find(|(_, f, ..)| *f == self)
            .unwrap_or(&TABLE[0])
    }

    pub(crate) fn name(self) -> &'static str {
        self.entry().0
    }

    /// (fixed parameters, variadic)
    pub(crate) fn arity(self) -> (usize, bool) {
        let e = self.entry();
        (e.2, e.3)
    }
}

/// The names of all functions templates may call.
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, ..)| *n)
}

pub(crate) enum FnError {
    /// The function returned an error: reported as `error calling NAME: …`.
    Call(String),
    /// An argument has the wrong type: reported as is.
    Arg(String),
    /// A resource limit was hit.
    Limit(String),
}

type FnResult = Result<Value, FnError>;

fn wrong_type(expected: &str, v: &Value) -> FnError {
    match v {
        Value::Nil => FnError::Arg(format!("invalid value; expected {expected}")),
        _ => FnError::Arg(format!(
            "wrong type for value; expected {expected}; got {}",
            v.type_name()
        )),
    }
}

fn want_str(v: &Value) -> Result<&str, FnError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(wrong_type("string", v)),
    }
}

fn want_sample(v: &Value) -> Result<&Sample, FnError> {
    match v {
        Value::Sample(s) => Ok(s),
        Value::Nil => Err(FnError::Call(
            "runtime error: invalid memory address or nil pointer dereference".into(),
        )),
        _ => Err(wrong_type("*template.sample", v)),
    }
}

/// A `template.queryResult` argument: a list (or nil, an empty result).
fn want_query_result(v: &Value) -> Result<&[Value], FnError> {
    match v {
        Value::List(l) => Ok(l),
        Value::Nil => Ok(&[]),
        _ => Err(wrong_type("template.queryResult", v)),
    }
}

fn overflow(st: &State<'_>) -> FnError {
    FnError::Limit(format!(
        "output exceeds the limit of {} bytes",
        st.string_limit()
    ))
}

pub(crate) fn call(st: &mut State<'_>, f: Func, args: Vec<Value>) -> FnResult {
    let limit = st.string_limit();
    let s = |s: String| Ok(Value::string(s));
    match f {
        // and/or are evaluated lazily by the executor.
        Func::And | Func::Or => Ok(args.into_iter().last().unwrap_or_default()),
        Func::Not => Ok(Value::Bool(!args[0].is_true())),
        Func::Len => length(&args[0]),
        Func::Index => index(&args[0], &args[1..]),
        Func::Slice => slice(&args[0], &args[1..]),
        Func::Print => gofmt::sprint(&args, limit)
            .map(Value::from)
            .map_err(|_| overflow(st)),
        Func::Println => gofmt::sprintln(&args, limit)
            .map(Value::from)
            .map_err(|_| overflow(st)),
        Func::Printf => {
            let format = want_str(&args[0])?;
            gofmt::sprintf(format, &args[1..], limit)
                .map(Value::from)
                .map_err(|_| overflow(st))
        }
        Func::Eq => {
            if args.len() < 2 {
                return Err(FnError::Call("missing argument for comparison".into()));
            }
            for b in &args[1..] {
                if eq(&args[0], b).map_err(FnError::Call)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        Func::Ne => Ok(Value::Bool(!eq(&args[0], &args[1]).map_err(FnError::Call)?)),
        Func::Lt => Ok(Value::Bool(lt(&args[0], &args[1]).map_err(FnError::Call)?)),
        Func::Le => Ok(Value::Bool(le(&args[0], &args[1]).map_err(FnError::Call)?)),
        Func::Gt => Ok(Value::Bool(!le(&args[0], &args[1]).map_err(FnError::Call)?)),
        Func::Ge => Ok(Value::Bool(!lt(&args[0], &args[1]).map_err(FnError::Call)?)),
        Func::Html => s(html_escape(
            &eval_args(&args, limit).map_err(|_| overflow(st))?,
        )),
        Func::Js => s(js_escape(
            &eval_args(&args, limit).map_err(|_| overflow(st))?,
        )),
        Func::Urlquery => s(query_escape(
            &eval_args(&args, limit).map_err(|_| overflow(st))?,
        )),
        Func::Call => Err(FnError::Call("call is not supported".into())),

        Func::Query => {
            let q = want_str(&args[0])?;
            let Some(qf) = st.opts.query else {
                return Err(FnError::Call("no query function available".into()));
            };
            let samples = qf.query(q).map_err(FnError::Call)?;
            Ok(Value::list(samples.into_iter().map(|s| {
                Value::Sample(Arc::new(Sample {
                    labels: Arc::new(s.labels),
                    value: s.value,
                }))
            })))
        }
        Func::First => {
            let v = want_query_result(&args[0])?;
            v.first()
                .cloned()
                .ok_or_else(|| FnError::Call("first() called on vector with no elements".into()))
        }
        Func::Label => {
            let name = want_str(&args[0])?;
            let smpl = want_sample(&args[1])?;
            s(smpl.labels.get(name).cloned().unwrap_or_default())
        }
        Func::ValueOf => Ok(Value::Float(want_sample(&args[0])?.value)),
        Func::Strvalue => {
            let smpl = want_sample(&args[0])?;
            s(smpl.labels.get("__value__").cloned().unwrap_or_default())
        }
        Func::Args => Ok(Value::map(
            args.into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v)),
        )),
        Func::ReReplaceAll => {
            let pattern = want_str(&args[0])?;
            let repl = want_str(&args[1])?;
            let text = want_str(&args[2])?;
            let re = st.regex(pattern).map_err(|e| match e {
                FnError::Call(e) => FnError::Call(format!(
                    "regexp: Compile({}): {e}",
                    if pattern.contains('`') {
                        gofmt::quote(pattern)
                    } else {
                        format!("`{pattern}`")
                    }
                )),
                other => other,
            })?;
            let mut out = String::new();
            let mut last = 0;
            for caps in re.captures_iter(text) {
                let Some(m) = caps.get(0) else { continue };
                out.push_str(&text[last..m.start()]);
                caps.expand(repl, &mut out);
                last = m.end();
                if out.len() > limit {
                    return Err(overflow(st));
                }
            }
            out.push_str(&text[last..]);
            s(out)
        }
        Func::SafeHtml => s(want_str(&args[0])?.to_string()),
        Func::Match => {
            let pattern = want_str(&args[0])?;
            let text = want_str(&args[1])?;
            let re = st.regex(pattern)?;
            Ok(Value::Bool(re.is_match(text)))
        }
        Func::Title => s(title(want_str(&args[0])?)),
        Func::ToUpper => s(to_upper(want_str(&args[0])?)),
        Func::ToLower => s(to_lower(want_str(&args[0])?)),
        Func::GraphLink => s(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(want_str(&args[0])?)
        )),
        Func::TableLink => s(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(want_str(&args[0])?)
        )),
        Func::SortByLabel => {
            let label = want_str(&args[0])?;
            let items = want_query_result(&args[1])?;
            let mut samples = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Sample(smpl) => samples.push(smpl.clone()),
                    _ => return Err(wrong_type("template.queryResult", &args[1])),
                }
            }
            if let Value::Nil = args[1] {
                return Ok(Value::Nil);
            }
            samples.sort_by(|a, b| {
                let x = a.labels.get(label).map_or("", String::as_str);
                let y = b.labels.get(label).map_or("", String::as_str);
                x.cmp(y)
            });
            Ok(Value::list(samples.into_iter().map(Value::Sample)))
        }
        Func::StripPort => {
            let hp = want_str(&args[0])?;
            s(match split_host_port(hp) {
                Some((host, _)) => host.to_string(),
                None => hp.to_string(),
            })
        }
        Func::StripDomain => s(strip_domain(want_str(&args[0])?)),
        Func::Humanize => s(humanize(to_float(&args[0])?)),
        Func::Humanize1024 => s(humanize1024(to_float(&args[0])?)),
        Func::HumanizeDuration => s(humanize_duration(to_float(&args[0])?)),
        Func::HumanizePercentage => s(format!("{}%", g4(to_float(&args[0])? * 100.0))),
        Func::HumanizeTimestamp => {
            let v = to_float(&args[0])?;
            match float_to_time(v) {
                Ok(t) => s(t.to_string()),
                Err(None) => s(g4(v)),
                Err(Some(e)) => Err(FnError::Call(e)),
            }
        }
        Func::ToTime => {
            let v = to_float(&args[0])?;
            match float_to_time(v) {
                Ok(t) => Ok(Value::Time(t)),
                Err(None) => Err(FnError::Call("value is NaN or Inf".into())),
                Err(Some(e)) => Err(FnError::Call(e)),
            }
        }
        Func::ToDuration => {
            let v = to_float(&args[0])?;
            Ok(Value::Duration((v * 1e9) as i64))
        }
        Func::Now => {
            let ms = st.opts.now_millis.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64)
            });
            Ok(Value::Float(ms as f64 / 1000.0))
        }
        Func::PathPrefix => s(url_path(st.opts.external_url)),
        Func::ExternalURL => s(st.opts.external_url.to_string()),
        Func::ParseDuration => {
            let d = parse_duration_allow_negative(want_str(&args[0])?).map_err(FnError::Call)?;
            Ok(Value::Float(d as f64 / 1e9))
        }
        Func::UrlQueryEscape => s(query_escape(want_str(&args[0])?)),
    }
}

// ---------------------------------------------------------------------------
// Builtins
// ---------------------------------------------------------------------------

fn length(v: &Value) -> FnResult {
    let n = match v {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::StringMap(m) => m.len(),
        Value::Nil => return Err(FnError::Call("len of untyped nil".into())),
        Value::Sample(_) => return Err(FnError::Call("len of type template.sample".into())),
        other => return Err(FnError::Call(format!("len of type {}", other.type_name()))),
    };
    Ok(Value::Int(n as i64))
}

fn index_arg(index: &Value, cap: usize) -> Result<usize, FnError> {
    let x = match index {
        Value::Int(i) => *i,
        Value::Nil => return Err(FnError::Call("cannot index slice/array with nil".into())),
        other => {
            return Err(FnError::Call(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            )))
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(FnError::Call(format!("index out of range: {x}")));
    }
    Ok(x as usize)
}

fn map_key(index: &Value) -> Result<&str, FnError> {
    match index {
        Value::String(s) => Ok(s),
        Value::Nil => Err(FnError::Call(
            "value is nil; should be of type string".into(),
        )),
        other => Err(FnError::Call(format!(
            "value has type {}; should be string",
            other.type_name()
        ))),
    }
}

fn index(item: &Value, indexes: &[Value]) -> FnResult {
    if let Value::Nil = item {
        return Err(FnError::Call("index of untyped nil".into()));
    }
    let mut item = item.clone();
    for idx in indexes {
        item = match &item {
            Value::List(l) => {
                let x = index_arg(idx, l.len())?;
                match l.get(x) {
                    Some(v) => v.clone(),
                    None => return Err(FnError::Call(format!("index out of range: {x}"))),
                }
            }
            Value::String(s) => {
                let x = index_arg(idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(&b) => Value::Int(b.into()),
                    None => return Err(FnError::Call(format!("index out of range: {x}"))),
                }
            }
            Value::Map(m) => m.get(map_key(idx)?).cloned().unwrap_or(Value::Nil),
            Value::StringMap(m) => Value::string(m.get(map_key(idx)?).map_or("", String::as_str)),
            Value::Nil => return Err(FnError::Call("index of nil pointer".into())),
            other => {
                return Err(FnError::Call(format!(
                    "can't index item of type {}",
                    other.type_name()
                )))
            }
        };
    }
    Ok(item)
}

fn slice(item: &Value, indexes: &[Value]) -> FnResult {
    if let Value::Nil = item {
        return Err(FnError::Call("slice of untyped nil".into()));
    }
    if indexes.len() > 3 {
        return Err(FnError::Call(format!(
            "too many slice indexes: {}",
            indexes.len()
        )));
    }
    let len = match item {
        Value::String(s) => {
            if indexes.len() == 3 {
                return Err(FnError::Call("cannot 3-index slice a string".into()));
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => {
            return Err(FnError::Call(format!(
                "can't slice item of type {}",
                other.type_name()
            )))
        }
    };
    let mut idx = [0, len, len];
    for (i, x) in indexes.iter().enumerate() {
        idx[i] = index_arg(x, len)?;
    }
    if idx[0] > idx[1] {
        return Err(FnError::Call(format!(
            "invalid slice index: {} > {}",
            idx[0], idx[1]
        )));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(FnError::Call(format!(
            "invalid slice index: {} > {}",
            idx[1], idx[2]
        )));
    }
    Ok(match item {
        Value::String(s) => {
            let bytes = &s.as_bytes()[idx[0]..idx[1]];
            Value::string(String::from_utf8_lossy(bytes).into_owned())
        }
        Value::List(l) => Value::list(l[idx[0]..idx[1]].iter().cloned()),
        _ => Value::Nil,
    })
}

fn is_basic(v: &Value) -> bool {
    matches!(
        v,
        Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::String(_)
    )
}

fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Sample(x), Value::Sample(y)) => Arc::ptr_eq(x, y),
        (Value::Time(x), Value::Time(y)) => x == y,
        (Value::Duration(x), Value::Duration(y)) => x == y,
        (Value::List(_), Value::List(_))
        | (Value::Map(_), Value::Map(_))
        | (Value::StringMap(_), Value::StringMap(_))
        | (Value::Struct(_), Value::Struct(_)) => {
            return Err(format!(
                "non-comparable type {}: {}",
                print_for_error(b),
                b.type_name()
            ))
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    if !is_basic(a) || !is_basic(b) {
        return Err("invalid type for comparison".into());
    }
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        (Value::Bool(_), Value::Bool(_)) => Err("invalid type for comparison".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, b)
}

/// Go's `evalArgs`: a lone string as is, otherwise `fmt.Sprint` of the
/// printable forms.
fn eval_args(args: &[Value], limit: usize) -> Result<String, gofmt::Overflow> {
    if let [Value::String(s)] = args {
        return Ok(s.to_string());
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil => Value::string("<no value>"),
            other => other.clone(),
        })
        .collect();
    gofmt::sprint(&printable, limit)
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let b = c as u32;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
            c if !c.is_ascii() && !gofmt::is_print(c) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Prometheus helpers
// ---------------------------------------------------------------------------

/// Prometheus's `ConvertToFloat`.
fn to_float(v: &Value) -> Result<f64, FnError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::String(s) => parse_go_float(s).map_err(|e| FnError::Call(parse_float_error(s, e))),
        Value::Duration(d) => Ok(*d as f64 / 1e9),
        other => Err(FnError::Call(format!(
            "can't convert {} to float",
            other.type_name()
        ))),
    }
}

/// `fmt.Sprintf("%.4g", v)`.
fn g4(v: f64) -> String {
    format_float(v, 'g', 4)
}

pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let duration = v as i64;
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 60 / 60) % 24;
        let days = duration / 60 / 60 / 24;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// Prometheus's `floatToTime` (millisecond precision). `Err(None)` for NaN
/// or Inf.
fn float_to_time(v: f64) -> Result<Time, Option<String>> {
    if v.is_nan() || v.is_infinite() {
        return Err(None);
    }
    let ts = v * 1e9;
    if ts > i64::MAX as f64 || ts < i64::MIN as f64 {
        return Err(Some(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            float_v(v)
        )));
    }
    let ns = ts as i64;
    Ok(Time::from_unix_millis(ns / 1_000_000))
}

/// Prometheus's `model.ParseDurationAllowNegative`, in nanoseconds.
pub(crate) fn parse_duration_allow_negative(s: &str) -> Result<i64, String> {
    match s.strip_prefix('-') {
        Some(rest) => parse_duration(rest).map(|d| -d),
        None => parse_duration(s),
    }
}

fn parse_duration(s: &str) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", gofmt::quote(s));
    let units: [(&str, u32, u64); 7] = [
        ("ms", 7, 1_000_000),
        ("s", 6, 1_000_000_000),
        ("m", 5, 60 * 1_000_000_000),
        ("h", 4, 3600 * 1_000_000_000),
        ("d", 3, 86_400 * 1_000_000_000),
        ("w", 2, 7 * 86_400 * 1_000_000_000),
        ("y", 1, 365 * 86_400 * 1_000_000_000),
    ];
    let mut rest = s;
    let mut dur: u64 = 0;
    let mut last_pos = 0;
    while !rest.is_empty() {
        if !rest.as_bytes()[0].is_ascii_digit() {
            return Err(invalid());
        }
        let i = rest.bytes().take_while(u8::is_ascii_digit).count();
        let v: u64 = rest[..i].parse().map_err(|_| invalid())?;
        rest = &rest[i..];
        let j = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if j == 0 {
            return Err(invalid());
        }
        let u = &rest[..j];
        rest = &rest[j..];
        let Some(&(_, pos, mult)) = units.iter().find(|(name, ..)| *name == u) else {
            return Err(format!(
                "unknown unit {} in duration {}",
                gofmt::quote(u),
                gofmt::quote(s)
            ));
        };
        if pos <= last_pos {
            return Err(invalid());
        }
        last_pos = pos;
        if v > (1u64 << 63) / mult {
            return Err("duration out of range".into());
        }
        dur = dur.saturating_add(v * mult);
        if dur > i64::MAX as u64 {
            return Err("duration out of range".into());
        }
    }
    Ok(dur as i64)
}

fn is_mid(c: char) -> bool {
    matches!(
        c,
        '\'' | '.'
            | ':'
            | '·'
            | '\u{2018}'
            | '\u{2019}'
            | '\u{2024}'
            | '\u{2027}'
            | '\u{FE52}'
            | '\u{FF07}'
            | '\u{FF0E}'
    )
}

fn is_cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase()
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower)`: upper-case the
/// first cased letter of every word, leave everything else alone.
pub(crate) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut mid_word = false;
    let mut prev_mid = false;
    for c in s.chars() {
        let mid = is_mid(c);
        if prev_mid && mid {
            mid_word = false;
        }
        if is_cased(c) {
            if !mid_word {
                push_upper(&mut out, c);
                mid_word = true;
            } else {
                out.push(c);
            }
        } else {
            out.push(c);
            if !(c.is_alphanumeric() || c == '_' || mid) {
                mid_word = false;
            }
        }
        prev_mid = mid;
    }
    out
}

/// Go's simple (one-to-one) upper-case mapping.
fn push_upper(out: &mut String, c: char) {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => out.push(u),
        _ => out.push(c),
    }
}

/// Go's `strings.ToUpper` (simple case mapping).
pub(crate) fn to_upper(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_upper(&mut out, c);
    }
    out
}

/// Go's `strings.ToLower` (simple case mapping).
pub(crate) fn to_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c.to_lowercase().next() {
            Some(l) => out.push(l),
            None => out.push(c),
        }
    }
    out
}

/// Go's `net.SplitHostPort`; None on error.
pub(crate) fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, j, k);
    if hp.starts_with('[') {
        let end = hp.find(']')?;
        if end + 1 == hp.len() || end + 1 != i {
            return None;
        }
        host = &hp[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hp[j..].contains('[') || hp[k..].contains(']') {
        return None;
    }
    Some((host, &hp[i + 1..]))
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or("");
    if !port.is_empty() {
        if host.contains(':') {
            return format!("[{host}]:{port}");
        }
        return format!("{host}:{port}");
    }
    host.to_string()
}

/// The (unescaped) path of a URL, as Go's `url.URL.Path`.
fn url_path(u: &str) -> String {
    let mut rest = u;
    if let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        rest = match after.find('/') {
            Some(j) => &after[j..],
            None => "",
        };
    } else if let Some(after) = rest.strip_prefix("//") {
        rest = match after.find('/') {
            Some(j) => &after[j..],
            None => "",
        };
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..end];
    // Percent-decode.
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Methods of time.Time and time.Duration
// ---------------------------------------------------------------------------

/// The parameter count of `receiver.name`, if it is a method.
pub(crate) fn method_arity(receiver: &Value, name: &str) -> Option<usize> {
    match receiver {
        Value::Time(_) => match name {
            "Format" | "Add" | "Sub" | "Before" | "After" | "Equal" => Some(1),
            "String" | "Unix" | "UnixMilli" | "UnixMicro" | "UnixNano" | "UTC" | "Local"
            | "Year" | "YearDay" | "Day" | "Hour" | "Minute" | "Second" | "Nanosecond" => Some(0),
            _ => None,
        },
        Value::Duration(_) => match name {
            "String" | "Seconds" | "Minutes" | "Hours" | "Milliseconds" | "Microseconds"
            | "Nanoseconds" | "Abs" => Some(0),
            _ => None,
        },
        _ => None,
    }
}

fn want_time(v: &Value) -> Result<Time, FnError> {
    match v {
        Value::Time(t) => Ok(*t),
        _ => Err(wrong_type("time.Time", v)),
    }
}

pub(crate) fn call_method(receiver: &Value, name: &str, args: Vec<Value>) -> FnResult {
    match receiver {
        Value::Time(t) => {
            let t = *t;
            let c = || timefmt::civil(t);
            let nanos = || {
                t.secs
                    .saturating_mul(1_000_000_000)
                    .saturating_add(t.nanos.into())
            };
            Ok(match name {
                "Format" => Value::string(timefmt::format(t, want_str(&args[0])?)),
                "String" => Value::string(t.to_string()),
                "Unix" => Value::Int(t.secs),
                "UnixMilli" => Value::Int(
                    t.secs
                        .saturating_mul(1000)
                        .saturating_add((t.nanos / 1_000_000).into()),
                ),
                "UnixMicro" => Value::Int(
                    t.secs
                        .saturating_mul(1_000_000)
                        .saturating_add((t.nanos / 1000).into()),
                ),
                "UnixNano" => Value::Int(nanos()),
                "UTC" | "Local" => Value::Time(t),
                "Year" => Value::Int(c().year),
                "YearDay" => Value::Int(c().yday.into()),
                "Day" => Value::Int(c().day.into()),
                "Hour" => Value::Int(c().hour.into()),
                "Minute" => Value::Int(c().minute.into()),
                "Second" => Value::Int(c().second.into()),
                "Nanosecond" => Value::Int(t.nanos.into()),
                "Add" => {
                    let d = match &args[0] {
                        Value::Duration(d) | Value::Int(d) => *d,
                        other => return Err(wrong_type("time.Duration", other)),
                    };
                    let total = t.nanos as i64 + d.rem_euclid(1_000_000_000);
                    let secs = t
                        .secs
                        .saturating_add(d.div_euclid(1_000_000_000))
                        .saturating_add(total / 1_000_000_000);
                    Value::Time(Time {
                        secs,
                        nanos: (total % 1_000_000_000) as u32,
                    })
                }
                "Sub" => {
                    let u = want_time(&args[0])?;
                    let d = (t.secs as i128 - u.secs as i128) * 1_000_000_000 + t.nanos as i128
                        - u.nanos as i128;
                    Value::Duration(d.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
                }
                "Before" => Value::Bool(t < want_time(&args[0])?),
                "After" => Value::Bool(t > want_time(&args[0])?),
                "Equal" => Value::Bool(t == want_time(&args[0])?),
                _ => return Err(FnError::Call(format!("no method {name}"))),
            })
        }
        Value::Duration(d) => {
            let d = *d;
            Ok(match name {
                "String" => Value::string(timefmt::duration_string(d)),
                "Seconds" => Value::Float(d as f64 / 1e9),
                "Minutes" => Value::Float(d as f64 / 6e10),
                "Hours" => Value::Float(d as f64 / 3.6e12),
                "Milliseconds" => Value::Int(d / 1_000_000),
                "Microseconds" => Value::Int(d / 1000),
                "Nanoseconds" => Value::Int(d),
                "Abs" => Value::Duration(d.checked_abs().unwrap_or(i64::MAX)),
                _ => return Err(FnError::Call(format!("no method {name}"))),
            })
        }
        _ => Err(FnError::Call(format!("no method {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_values() {
        let h = |v: f64| humanize(v);
        assert_eq!(h(0.0), "0");
        assert_eq!(h(1.0), "1");
        assert_eq!(h(1234567.0), "1.235M");
        assert_eq!(h(0.12), "120m");
        assert_eq!(h(-1.0), "-1");
        assert_eq!(h(i64::MAX as f64), "9.223E");
        assert_eq!(h(u64::MAX as f64), "18.45E");
        assert_eq!(h(f64::INFINITY), "+Inf");
        assert_eq!(h(f64::NEG_INFINITY), "-Inf");
        assert_eq!(h(f64::NAN), "NaN");
        assert_eq!(h(1e-30), "1e-06y");
    }

    #[test]
    fn humanize1024_values() {
        assert_eq!(humanize1024(0.0), "0");
        assert_eq!(humanize1024(1.0), "1");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(0.12), "0.12");
        assert_eq!(humanize1024(1234567.0), "1.177Mi");
        assert_eq!(humanize1024(i64::MAX as f64), "8Ei");
        assert_eq!(humanize1024(u64::MAX as f64), "16Ei");
        assert_eq!(humanize1024(-1.0), "-1");
    }

    #[test]
    fn humanize_duration_values() {
        let cases = [
            (0.0, "0s"),
            (1.0, "1s"),
            (60.0, "1m 0s"),
            (3600.0, "1h 0m 0s"),
            (3661.0, "1h 1m 1s"),
            (86400.0, "1d 0h 0m 0s"),
            (86400.0 + 3600.0, "1d 1h 0m 0s"),
            (
                -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
                "-2d 3h 4m 5s",
            ),
            (899.99, "14m 59s"),
            (0.1, "100ms"),
            (0.0001, "100us"),
            (0.12345, "123.5ms"),
            (60.1, "1m 0s"),
            (60.5, "1m 0s"),
            (1.2345, "1.234s"),
            (12.345, "12.35s"),
            (-1.0, "-1s"),
            (1234567.0, "14d 6h 56m 7s"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(humanize_duration(v), want, "{v}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration_allow_negative("1h2m10ms"),
            Ok(3_720_010_000_000)
        );
        assert_eq!(
            parse_duration_allow_negative("-1h2m10ms"),
            Ok(-3_720_010_000_000)
        );
        assert_eq!(parse_duration_allow_negative("0"), Ok(0));
        assert_eq!(
            parse_duration_allow_negative("1y"),
            Ok(365 * 86_400 * 1_000_000_000)
        );
        assert_eq!(
            parse_duration_allow_negative(""),
            Err("empty duration string".into())
        );
        assert_eq!(
            parse_duration_allow_negative("1m1h"),
            Err("not a valid duration string: \"1m1h\"".into())
        );
        assert_eq!(
            parse_duration_allow_negative("5x"),
            Err("unknown unit \"x\" in duration \"5x\"".into())
        );
        assert_eq!(
            parse_duration_allow_negative("300y"),
            Err("duration out of range".into())
        );
    }

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("foo.example.com:12345"),
            Some(("foo.example.com", "12345"))
        );
        assert_eq!(
            split_host_port("[2001:0DB8::1]:12345"),
            Some(("2001:0DB8::1", "12345"))
        );
        assert_eq!(split_host_port("2001:0DB8::1"), None);
        assert_eq!(split_host_port("[2001:0DB8::1]::12345"), None);
        assert_eq!(split_host_port("foo"), None);
        assert_eq!(strip_domain("foo.example.com"), "foo");
        assert_eq!(strip_domain("foo.example.com:12345"), "foo:12345");
        assert_eq!(strip_domain("192.0.2.1:12345"), "192.0.2.1:12345");
        assert_eq!(strip_domain("[2001:0DB8::1]:12345"), "[2001:0DB8::1]:12345");
        assert_eq!(
            strip_domain("[2001:0DB8::1]::12345"),
            "[2001:0DB8::1]::12345"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"c<d>=&\\\n"),
            "a\\'b\\\"c\\u003Cd\\u003E\\u003D\\u0026\\\\\\u000A"
        );
        assert_eq!(
            query_escape("up{job=\"a b\"}/é"),
            "up%7Bjob%3D%22a+b%22%7D%2F%C3%A9"
        );
        assert_eq!(url_path("http://testhost:9090/path/prefix"), "/path/prefix");
        assert_eq!(url_path("http://testhost:9090"), "");
        assert_eq!(url_path("https://h/a%20b?x=1#f"), "/a b");
    }

    #[test]
    fn casing() {
        assert_eq!(title("aa bb CC"), "Aa Bb CC");
        assert_eq!(
            title("hello_world foo-bar it's a.b"),
            "Hello_world Foo-Bar It's A.b"
        );
        assert_eq!(to_upper("aa bb CC ß"), "AA BB CC ß");
        assert_eq!(to_lower("aA bB CC"), "aa bb cc");
    }
}
