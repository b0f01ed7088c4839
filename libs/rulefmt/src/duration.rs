//! Prometheus durations (`model.Duration` of prometheus/common): the
//! `[0-9]+(y|w|d|h|m|s|ms)` units in that order, each at most once,
//! millisecond resolution, `0` allowed without a unit.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// Why a duration string was rejected; the messages are Prometheus's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    /// `""`.
    #[error("empty duration string")]
    Empty,
    /// Not of the form `1y2w3d4h5m6s7ms`.
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    /// Longer than Go's `time.Duration` holds (about 292 years).
    #[error("duration out of range")]
    OutOfRange,
}

const MS_PER_SECOND: u64 = 1000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;

/// Units in the order the syntax requires them.
const UNITS: [(&str, u64); 7] = [
    ("y", MS_PER_YEAR),
    ("w", MS_PER_WEEK),
    ("d", MS_PER_DAY),
    ("h", MS_PER_HOUR),
    ("m", MS_PER_MINUTE),
    ("s", MS_PER_SECOND),
    ("ms", 1),
];

/// Largest number of milliseconds whose nanoseconds fit an `i64` (Go's
/// `time.Duration`).
const MAX_MS: u64 = (i64::MAX as u64) / 1_000_000;

/// Parses a Prometheus duration (`30s`, `1m`, `1h30m`, `1d`, `1w`, `1y`,
/// `100ms`, `0`), as `model.ParseDuration` does.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    match text {
        "0" => return Ok(Duration::ZERO),
        "" => return Err(DurationError::Empty),
        _ => {}
    }
    let invalid = || DurationError::Invalid(text.to_string());
    let mut rest = text.as_bytes();
    // Index into UNITS of the next unit allowed.
    let mut next_unit = 0;
    let mut total_ms: u64 = 0;
    let mut overflow = false;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(digits);
        // "ms" must win over "m" followed by garbage "s".
        let unit_len = if after.starts_with(b"ms") {
            2
        } else if after
            .first()
            .is_some_and(|b| matches!(b, b'y' | b'w' | b'd' | b'h' | b'm' | b's'))
        {
            1
        } else {
            return Err(invalid());
        };
        let unit = &after[..unit_len];
        let position = UNITS
            .iter()
            .position(|(name, _)| name.as_bytes() == unit)
            .ok_or_else(invalid)?;
        if position < next_unit {
            return Err(invalid());
        }
        next_unit = position + 1;
        let multiplier = UNITS[position].1;
        // Go's strconv.Atoi saturates on overflow (and the error is
        // ignored), which then fails the range check just the same.
        let n = std::str::from_utf8(number)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        if n > MAX_MS / multiplier {
            overflow = true;
        } else {
            total_ms = total_ms.saturating_add(n * multiplier);
            if total_ms > MAX_MS {
                overflow = true;
            }
        }
        rest = &after[unit_len..];
    }
    if overflow {
        return Err(DurationError::OutOfRange);
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration as Prometheus prints `model.Duration`: `0s`, `1m`,
/// `1h30m`, `90d` (years and weeks only when they divide evenly), at
/// millisecond resolution (anything finer is dropped).
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (i, (unit, multiplier)) in UNITS.iter().enumerate() {
        // Years and weeks are used only when nothing is left over.
        let exact = i < 2;
        if exact && ms % multiplier != 0 {
            continue;
        }
        let v = ms / multiplier;
        if v > 0 {
            out.push_str(&v.to_string());
            out.push_str(unit);
            ms -= v * multiplier;
        }
    }
    out
}

/// A [`Duration`] that displays in Prometheus's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_prometheus_forms() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("30s", 30_000),
            ("1m", 60_000),
            ("1h30m", 5_400_000),
            ("90m", 5_400_000),
            ("1d", MS_PER_DAY),
            ("1w", MS_PER_WEEK),
            ("1y", MS_PER_YEAR),
            ("100ms", 100),
            (
                "1y2w3d4h5m6s7ms",
                MS_PER_YEAR
                    + 2 * MS_PER_WEEK
                    + 3 * MS_PER_DAY
                    + 4 * MS_PER_HOUR
                    + 5 * MS_PER_MINUTE
                    + 6000
                    + 7,
            ),
            ("0h0m", 0),
            ("0001m", 60_000),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(ms(want)), "{text}");
        }
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for bad in [
            "5x", "5", "1.5m", "-1m", "1m1h", "1s1s", "m", "1 m", " 1m", "1m ", "1M", "1H",
            "1ms1s", "1mss", "1µs", "1ns", "1h-5m", "+1m", "1d1d",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(DurationError::Invalid(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "not a valid duration string: \"5x\""
        );
    }

    #[test]
    fn range_limit_is_gos() {
        // 292y is about the limit of an int64 of nanoseconds.
        assert!(parse_duration("292y").is_ok());
        assert_eq!(parse_duration("293y"), Err(DurationError::OutOfRange));
        assert_eq!(
            parse_duration("99999999999999999999999s"),
            Err(DurationError::OutOfRange)
        );
        assert_eq!(parse_duration("292y52w"), Err(DurationError::OutOfRange));
        assert_eq!(
            parse_duration(&format!("{MAX_MS}ms")),
            Ok(Duration::from_millis(MAX_MS))
        );
        assert_eq!(
            parse_duration(&format!("{}ms", MAX_MS + 1)),
            Err(DurationError::OutOfRange)
        );
    }

    #[test]
    fn formats_like_model_duration_string() {
        let cases = [
            (0, "0s"),
            (1, "1ms"),
            (30_000, "30s"),
            (60_000, "1m"),
            (5_400_000, "1h30m"),
            (MS_PER_DAY, "1d"),
            (MS_PER_WEEK, "1w"),
            (8 * MS_PER_DAY, "8d"),
            (14 * MS_PER_DAY, "2w"),
            (90 * MS_PER_DAY, "90d"),
            (MS_PER_YEAR, "1y"),
            (MS_PER_YEAR + MS_PER_DAY, "366d"),
            (MS_PER_DAY + 1, "1d1ms"),
            (61_500, "1m1s500ms"),
        ];
        for (n, want) in cases {
            assert_eq!(format_duration(ms(n)), want, "{n}");
            assert_eq!(parse_duration(want), Ok(ms(n)), "{want}");
        }
        assert_eq!(format_duration(Duration::from_micros(1500)), "1ms");
        assert_eq!(PromDuration(ms(90_000)).to_string(), "1m30s");
    }

    #[test]
    fn format_parse_round_trip() {
        for n in [
            1u64,
            999,
            1000,
            59_999,
            3_600_001,
            MS_PER_YEAR * 3 + 7,
            MAX_MS,
        ] {
            assert_eq!(parse_duration(&format_duration(ms(n))), Ok(ms(n)), "{n}");
        }
    }
}
