//! Request parameters the way Prometheus reads them: form values from the
//! URL and a form-encoded body, times as RFC 3339 or Unix seconds,
//! durations as Prometheus durations or float seconds, `match[]` selectors.

use promql_parser::label::MatchOp as PqlMatchOp;
use promql_parser::parser::Expr;
use strata_model::{MatchOp, Matcher, METRIC_NAME};

use crate::error::ApiError;

/// Earliest time the API accepts, Prometheus's `minTime` (year -292273086).
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974_000;
/// Latest time the API accepts, Prometheus's `maxTime` (year 292277025).
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974_999;
/// `minTime` and `maxTime` as Prometheus formats them (clients send them
/// back, and they are beyond what RFC 3339 parsers accept).
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";

/// Form values of a request: those of a form-encoded body first, then those
/// of the URL query, like Go's `Request.ParseForm`.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// `body` is only read when `content_type` is
    /// `application/x-www-form-urlencoded`.
    pub fn parse(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Params {
        let mut pairs = Vec::new();
        let is_form = content_type
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|media| {
                media
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if is_form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params { pairs }
    }

    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Params {
        Params {
            pairs: pairs
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }

    /// The first value of `name`, like Go's `FormValue` (`""` when absent).
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Parses a time: Unix seconds with up to millisecond decimals, or RFC 3339.
/// Returns milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let invalid = || format!("cannot parse {text:?} to a valid timestamp");
    if let Some(secs) = parse_go_float(text) {
        if !secs.is_finite() {
            return Err(invalid());
        }
        let whole = secs.trunc();
        let frac_ms = ((secs - whole) * 1000.0).round();
        let total = whole * 1000.0 + frac_ms;
        if total < MIN_TIME_MS as f64 || total > MAX_TIME_MS as f64 {
            return Err(invalid());
        }
        return Ok(total as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    match text {
        MIN_TIME_TEXT => Ok(MIN_TIME_MS),
        MAX_TIME_TEXT => Ok(MAX_TIME_MS),
        _ => Err(invalid()),
    }
}

/// The time parameter `name`, or `default` when it is absent or empty.
pub fn time_param(params: &Params, name: &str, default: i64) -> Result<i64, ApiError> {
    let text = params.get(name);
    if text.is_empty() {
        return Ok(default);
    }
    parse_time(text).map_err(|e| ApiError::invalid_param(name, e))
}

/// Parses a duration: float seconds (`15`, `0.5`) or a Prometheus duration
/// (`1h30m`, `15s`, `500ms`; units y, w, d, h, m, s, ms, largest first).
/// Returns milliseconds (negative float seconds are kept negative).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    if let Some(secs) = parse_go_float(text) {
        let ms = secs * 1000.0;
        if ms.is_nan() {
            return Err(format!("cannot parse {text:?} to a valid duration"));
        }
        // Prometheus keeps durations in int64 nanoseconds.
        if ms.abs() * 1e6 > i64::MAX as f64 {
            return Err(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    parse_prometheus_duration(text)
        .ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// `[0-9]+(y|w|d|h|m|s|ms)` repeated, units strictly largest first, or `0`.
fn parse_prometheus_duration(text: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if text == "0" {
        return Some(0);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let position = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
        next_unit = position + 1;
        total = total.checked_add(n.checked_mul(UNITS[position].1)?)?;
    }
    // Must fit int64 nanoseconds, as in Prometheus.
    total.checked_mul(1_000_000)?;
    Some(total)
}

/// The duration parameter `name`, or `None` when absent or empty.
pub fn duration_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    let text = params.get(name);
    if text.is_empty() {
        return Ok(None);
    }
    parse_duration(text)
        .map(Some)
        .map_err(|e| ApiError::invalid_param(name, e))
}

/// The `limit` parameter of Prometheus 3: a non-negative integer, 0 (or
/// absent) for no limit.
pub fn limit_param(params: &Params) -> Result<usize, ApiError> {
    let text = params.get("limit");
    if text.is_empty() {
        return Ok(0);
    }
    let n: i64 = text.parse().map_err(|_| {
        ApiError::invalid_param(
            "limit",
            format!("strconv.Atoi: parsing {text:?}: invalid syntax"),
        )
    })?;
    if n < 0 {
        return Err(ApiError::invalid_param(
            "limit",
            "limit must be non-negative",
        ));
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Go's `strconv.ParseFloat` for the forms clients send: decimal numbers
/// with optional sign and exponent, `Inf`/`NaN`. Hex floats and
/// underscores are not accepted.
fn parse_go_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return text.parse().ok();
    }
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    text.parse().ok()
}

/// Parses series selectors such as `up{job="api"}` (the `match[]`
/// parameter); a selector with `or` alternatives becomes several sets.
/// Every set must have a matcher that does not match the empty string, as
/// in Prometheus.
pub fn parse_matcher_sets(selectors: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::with_capacity(selectors.len());
    for selector in selectors {
        sets.extend(parse_selector(selector)?);
    }
    for set in &sets {
        if set.iter().all(|m| m.matches_empty()) {
            return Err("match[] must contain at least one non-empty matcher".to_string());
        }
    }
    Ok(sets)
}

fn parse_selector(selector: &str) -> Result<Vec<Vec<Matcher>>, String> {
    let expr = strata_promql::parse(selector).map_err(|e| e.to_string())?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "{selector:?} is not a series selector; use the form metric_name{{label=\"value\"}}"
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(format!(
            "{selector:?} is not a series selector: offset and @ are not allowed"
        ));
    }
    let mut branches = vec![vs.matchers.matchers.clone()];
    branches.extend(vs.matchers.or_matchers.iter().cloned());
    let mut sets = Vec::with_capacity(branches.len());
    for branch in branches {
        if branch.is_empty() && vs.name.is_none() {
            continue;
        }
        let mut set = Vec::with_capacity(branch.len() + 1);
        if let Some(name) = &vs.name {
            let present = branch
                .iter()
                .any(|m| m.name == METRIC_NAME && m.op == PqlMatchOp::Equal && &m.value == name);
            if !present {
                set.push(
                    Matcher::new(MatchOp::Equal, METRIC_NAME, name.as_str())
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        for m in branch {
            set.push(convert_matcher(&m)?);
        }
        sets.push(set);
    }
    if sets.is_empty() {
        return Err("match[] must contain at least one non-empty matcher".to_string());
    }
    Ok(sets)
}

fn convert_matcher(m: &promql_parser::label::Matcher) -> Result<Matcher, String> {
    let op = match m.op {
        PqlMatchOp::Equal => MatchOp::Equal,
        PqlMatchOp::NotEqual => MatchOp::NotEqual,
        PqlMatchOp::Re(_) => MatchOp::RegexMatch,
        PqlMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    Matcher::new(op, m.name.as_str(), m.value.as_str()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_unix_seconds() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("1435781451").unwrap(), 1_435_781_451_000);
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1.5").unwrap(), 1500);
        assert_eq!(parse_time("-1.5").unwrap(), -1500);
        // Sub-millisecond digits are rounded to the millisecond.
        assert_eq!(parse_time("1.0006").unwrap(), 1001);
        assert_eq!(parse_time("1e3").unwrap(), 1_000_000);
    }

    #[test]
    fn times_as_rfc3339() {
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51.781+02:00").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time(MIN_TIME_TEXT).unwrap(), MIN_TIME_MS);
        assert_eq!(parse_time(MAX_TIME_TEXT).unwrap(), MAX_TIME_MS);
    }

    #[test]
    fn bad_times() {
        for bad in [
            "",
            "abc",
            "2015-07-01",
            "NaN",
            "Inf",
            "1e300",
            "0x10",
            "1_000",
        ] {
            let err = parse_time(bad).unwrap_err();
            assert_eq!(err, format!("cannot parse {bad:?} to a valid timestamp"));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s").unwrap(), 15_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500);
        assert_eq!(parse_duration("1m1s1ms").unwrap(), 61_001);
        assert_eq!(parse_duration("1y").unwrap(), 365 * 86_400_000);
        assert_eq!(parse_duration("2w1d").unwrap(), 15 * 86_400_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("-30").unwrap(), -30_000);
        assert_eq!(parse_duration("1.5e1").unwrap(), 15_000);
    }

    #[test]
    fn bad_durations() {
        for bad in ["", "5x", "m", "1s1m", "1m1m", "1.5m", "abc", "NaN", "s5"] {
            let err = parse_duration(bad).unwrap_err();
            assert_eq!(
                err,
                format!("cannot parse {bad:?} to a valid duration"),
                "{bad}"
            );
        }
        assert!(parse_duration("1e20")
            .unwrap_err()
            .contains("overflows int64"));
        assert!(parse_duration("999999999y").is_err());
    }

    #[test]
    fn form_values_body_first_then_url() {
        let p = Params::parse(
            Some("query=up&match[]=a&match%5B%5D=b"),
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            b"query=sum(rate(x%5B5m%5D))&match[]=c&time=1.5",
        );
        assert_eq!(p.get("query"), "sum(rate(x[5m]))");
        assert_eq!(p.get("time"), "1.5");
        assert_eq!(p.get("missing"), "");
        assert_eq!(p.get_all("match[]"), ["c", "a", "b"]);
        // A body of another type is ignored.
        let p = Params::parse(Some("a=1"), Some("application/json"), b"a=2");
        assert_eq!(p.get("a"), "1");
        let p = Params::parse(None, None, b"a=2");
        assert_eq!(p.get("a"), "");
        // `+` is a space in forms.
        let p = Params::parse(Some("query=sum+by+(job)+(up)"), None, b"");
        assert_eq!(p.get("query"), "sum by (job) (up)");
    }

    #[test]
    fn time_and_duration_params() {
        let p = Params::from_pairs([("start", "10"), ("end", "bad"), ("step", "")]);
        assert_eq!(time_param(&p, "start", 0).unwrap(), 10_000);
        assert_eq!(time_param(&p, "missing", MIN_TIME_MS).unwrap(), MIN_TIME_MS);
        let err = time_param(&p, "end", 0).unwrap_err();
        assert_eq!(
            err.message,
            "invalid parameter \"end\": cannot parse \"bad\" to a valid timestamp"
        );
        assert_eq!(duration_param(&p, "step").unwrap(), None);
    }

    #[test]
    fn limits() {
        assert_eq!(limit_param(&Params::default()).unwrap(), 0);
        assert_eq!(
            limit_param(&Params::from_pairs([("limit", "5")])).unwrap(),
            5
        );
        let e = limit_param(&Params::from_pairs([("limit", "-1")])).unwrap_err();
        assert_eq!(
            e.message,
            "invalid parameter \"limit\": limit must be non-negative"
        );
        let e = limit_param(&Params::from_pairs([("limit", "x")])).unwrap_err();
        assert_eq!(
            e.message,
            "invalid parameter \"limit\": strconv.Atoi: parsing \"x\": invalid syntax"
        );
    }

    fn text(sets: &[Vec<Matcher>]) -> Vec<Vec<String>> {
        sets.iter()
            .map(|s| s.iter().map(|m| m.to_string()).collect())
            .collect()
    }

    #[test]
    fn selectors() {
        let sets =
            parse_matcher_sets(&["up", "up{job=~\"a|b\",env!=\"\"}", "{job=\"x\"}"]).unwrap();
        assert_eq!(
            text(&sets),
            vec![
                vec!["__name__=\"up\"".to_string()],
                vec![
                    "__name__=\"up\"".to_string(),
                    "job=~\"a|b\"".to_string(),
                    "env!=\"\"".to_string()
                ],
                vec!["job=\"x\"".to_string()],
            ]
        );
        let sets = parse_matcher_sets(&["{__name__=\"up\"}"]).unwrap();
        assert_eq!(text(&sets), vec![vec!["__name__=\"up\"".to_string()]]);
    }

    #[test]
    fn bad_selectors() {
        let err = parse_matcher_sets(&["{job=~\".*\"}"]).unwrap_err();
        assert!(err.contains("at least one non-empty matcher"), "{err}");
        let err = parse_matcher_sets(&["{job=\"\"}"]).unwrap_err();
        assert!(err.contains("at least one non-empty matcher"), "{err}");
        assert!(parse_matcher_sets(&["up{"]).is_err());
        assert!(parse_matcher_sets(&["sum(up)"]).is_err());
        assert!(parse_matcher_sets(&["up offset 5m"]).is_err());
        assert!(parse_matcher_sets(&["rate(up[5m])"]).is_err());
    }
}
