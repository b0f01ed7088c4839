//! Go `time` formatting for UTC instants and durations, without a date
//! library: civil-date arithmetic and Go's reference-layout formatting.

use crate::value::Time;

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z as i128 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y.clamp(i64::MIN as i128, i64::MAX as i128) as i64, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn year_day(y: i64, m: u32, d: u32) -> u32 {
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let mut yd = CUM[(m - 1) as usize] + d;
    if m > 2 && is_leap(y) {
        yd += 1;
    }
    yd
}

/// Broken-down UTC time.
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    pub weekday: u32,
    pub yday: u32,
}

pub(crate) fn civil(t: Time) -> Civil {
    let days = t.secs.div_euclid(86_400);
    let sod = t.secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
        nanos: t.nanos,
        weekday: (days + 4).rem_euclid(7) as u32,
        yday: year_day(year, month, day),
    }
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    /// `Z07…` forms: "Z" for UTC.
    IsoTZ(&'static str),
    /// `-07…` forms: numeric zero offset.
    NumTZ(&'static str),
    /// Fractional seconds: digits, trim trailing zeros, separator.
    Frac(usize, bool, char),
}

fn starts_with_lower(s: &[u8]) -> bool {
    s.first().is_some_and(|c| c.is_ascii_lowercase())
}

/// Go's `nextStdChunk`: (literal prefix length, std, std length).
fn next_std_chunk(layout: &[u8]) -> Option<(usize, Std, usize)> {
    let at = |i: usize, s: &str| layout[i..].starts_with(s.as_bytes());
    for i in 0..layout.len() {
        let c = layout[i];
        match c {
            b'J' if at(i, "January") => return Some((i, Std::LongMonth, 7)),
            b'J' if at(i, "Jan") && !starts_with_lower(&layout[i + 3..]) => {
                return Some((i, Std::Month, 3))
            }
            b'M' if at(i, "Monday") => return Some((i, Std::LongWeekDay, 6)),
            b'M' if at(i, "Mon") && !starts_with_lower(&layout[i + 3..]) => {
                return Some((i, Std::WeekDay, 3))
            }
            b'M' if at(i, "MST") => return Some((i, Std::TZ, 3)),
            b'0' => {
                if let Some(&n) = layout.get(i + 1) {
                    if (b'1'..=b'6').contains(&n) {
                        let std = [
                            Std::ZeroMonth,
                            Std::ZeroDay,
                            Std::ZeroHour12,
                            Std::ZeroMinute,
                            Std::ZeroSecond,
                            Std::Year,
                        ][(n - b'1') as usize];
                        return Some((i, std, 2));
                    }
                    if n == b'0' && layout.get(i + 2) == Some(&b'2') {
                        return Some((i, Std::ZeroYearDay, 3));
                    }
                }
            }
            b'1' => {
                if layout.get(i + 1) == Some(&b'5') {
                    return Some((i, Std::Hour, 2));
                }
                return Some((i, Std::NumMonth, 1));
            }
            b'2' => {
                if at(i, "2006") {
                    return Some((i, Std::LongYear, 4));
                }
                return Some((i, Std::Day, 1));
            }
            b'_' => {
                if layout.get(i + 1) == Some(&b'2') {
                    if at(i + 1, "2006") {
                        return Some((i + 1, Std::LongYear, 4));
                    }
                    return Some((i, Std::UnderDay, 2));
                }
                if at(i, "__2") {
                    return Some((i, Std::UnderYearDay, 3));
                }
            }
            b'3' => return Some((i, Std::Hour12, 1)),
            b'4' => return Some((i, Std::Minute, 1)),
            b'5' => return Some((i, Std::Second, 1)),
            b'P' if layout.get(i + 1) == Some(&b'M') => return Some((i, Std::PM, 2)),
            b'p' if layout.get(i + 1) == Some(&b'm') => return Some((i, Std::Pm, 2)),
            b'-' => {
                for (pat, out) in [
                    ("-070000", "+000000"),
                    ("-07:00:00", "+00:00:00"),
                    ("-0700", "+0000"),
                    ("-07:00", "+00:00"),
                    ("-07", "+00"),
                ] {
                    if at(i, pat) {
                        return Some((i, Std::NumTZ(out), pat.len()));
                    }
                }
            }
            b'Z' => {
                for pat in ["Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"] {
                    if at(i, pat) {
                        return Some((i, Std::IsoTZ("Z"), pat.len()));
                    }
                }
            }
            b'.' | b',' => {
                if let Some(&d) = layout.get(i + 1) {
                    if d == b'0' || d == b'9' {
                        let mut j = i + 1;
                        while j < layout.len() && layout[j] == d {
                            j += 1;
                        }
                        if !layout.get(j).is_some_and(|c| c.is_ascii_digit()) {
                            return Some((i, Std::Frac(j - (i + 1), d == b'9', c as char), j - i));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

fn pad_num(out: &mut String, v: i64, width: usize, pad: char) {
    let s = v.unsigned_abs().to_string();
    if v < 0 {
        out.push('-');
    }
    for _ in s.len()..width {
        out.push(pad);
    }
    out.push_str(&s);
}

/// Go's `time.Time.Format(layout)` for a UTC time.
pub(crate) fn format(t: Time, layout: &str) -> String {
    let c = civil(t);
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout.as_bytes();
    while let Some((prefix, std, len)) = next_std_chunk(rest) {
        out.push_str(&String::from_utf8_lossy(&rest[..prefix]));
        rest = &rest[prefix + len..];
        match std {
            Std::LongMonth => out.push_str(LONG_MONTHS[(c.month - 1) as usize]),
            Std::Month => out.push_str(&LONG_MONTHS[(c.month - 1) as usize][..3]),
            Std::NumMonth => pad_num(&mut out, c.month.into(), 0, '0'),
            Std::ZeroMonth => pad_num(&mut out, c.month.into(), 2, '0'),
            Std::LongWeekDay => out.push_str(LONG_DAYS[c.weekday as usize]),
            Std::WeekDay => out.push_str(&LONG_DAYS[c.weekday as usize][..3]),
            Std::Day => pad_num(&mut out, c.day.into(), 0, '0'),
            Std::UnderDay => pad_num(&mut out, c.day.into(), 2, ' '),
            Std::ZeroDay => pad_num(&mut out, c.day.into(), 2, '0'),
            Std::UnderYearDay => pad_num(&mut out, c.yday.into(), 3, ' '),
            Std::ZeroYearDay => pad_num(&mut out, c.yday.into(), 3, '0'),
            Std::Hour => pad_num(&mut out, c.hour.into(), 2, '0'),
            Std::Hour12 | Std::ZeroHour12 => {
                let h = match c.hour % 12 {
                    0 => 12,
                    h => h,
                };
                let w = if std == Std::ZeroHour12 { 2 } else { 0 };
                pad_num(&mut out, h.into(), w, '0');
            }
            Std::Minute => pad_num(&mut out, c.minute.into(), 0, '0'),
            Std::ZeroMinute => pad_num(&mut out, c.minute.into(), 2, '0'),
            Std::Second => pad_num(&mut out, c.second.into(), 0, '0'),
            Std::ZeroSecond => pad_num(&mut out, c.second.into(), 2, '0'),
            Std::LongYear => pad_num(&mut out, c.year, 4, '0'),
            Std::Year => pad_num(&mut out, c.year.rem_euclid(100), 2, '0'),
            Std::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            Std::TZ => out.push_str("UTC"),
            Std::IsoTZ(s) | Std::NumTZ(s) => out.push_str(s),
            Std::Frac(n, trim, sep) => {
                let digits = format!("{:09}", c.nanos);
                let n = n.min(9);
                let mut d = &digits[..n];
                if trim {
                    d = d.trim_end_matches('0');
                    if d.is_empty() {
                        continue;
                    }
                }
                out.push(sep);
                out.push_str(d);
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(rest));
    out
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(crate) fn duration_string(d: i64) -> String {
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        if u == 0 {
            return "0s".into();
        }
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        out.push_str(&frac(u, prec));
        out.push_str(unit);
    } else {
        let secs_frac = frac(u % 60_000_000_000, 9);
        u /= 60_000_000_000; // minutes
        if u > 0 {
            let minutes = u % 60;
            let hours = u / 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            out.push_str(&format!("{minutes}m"));
        }
        out.push_str(&secs_frac);
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare point) omitted.
fn frac(v: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let int = v / p;
    let f = v % p;
    if f == 0 {
        return int.to_string();
    }
    let fs = format!("{:0width$}", f, width = prec as usize);
    format!("{int}.{}", fs.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_string() {
        let t = Time::from_unix_millis(1_435_065_584_128);
        assert_eq!(t.to_string(), "2015-06-23 13:19:44.128 +0000 UTC");
        assert_eq!(
            Time::from_unix_millis(-1000).to_string(),
            "1969-12-31 23:59:59 +0000 UTC"
        );
        assert_eq!(
            Time::from_unix_millis(9_223_372_036_000).to_string(),
            "2262-04-11 23:47:16 +0000 UTC"
        );
    }

    #[test]
    fn layouts() {
        let t = Time::from_unix_millis(1_353_755_652_000);
        assert_eq!(
            format(t, "Mon Jan 2 15:04:05 2006"),
            "Sat Nov 24 11:14:12 2012"
        );
        assert_eq!(format(t, "2006"), "2015".replace("2015", "2012"));
        assert_eq!(
            format(t, "2006-01-02T15:04:05Z07:00"),
            "2012-11-24T11:14:12Z"
        );
        assert_eq!(
            format(t, "Monday, January _2 03:04:05.000 PM -0700 MST"),
            "Saturday, November 24 11:14:12.000 AM +0000 UTC"
        );
        assert_eq!(
            format(t, "06/1/2 3pm .999 __2 002"),
            "12/11/24 11am  329 329"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(1_800_000_000_000), "30m0s");
        assert_eq!(duration_string(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(duration_string(1_500_000), "1.5ms");
        assert_eq!(duration_string(1_500), "1.5µs");
        assert_eq!(duration_string(15), "15ns");
        assert_eq!(duration_string(-90_000_000_000), "-1m30s");
        assert_eq!(duration_string(i64::MIN), "-2562047h47m16.854775808s");
    }
}
