//! Schema periods: which table and how many shards hold the index of each day.

use serde::{Deserialize, Serialize};

use crate::error::IndexError;

/// Milliseconds in one day bucket (24 h UTC).
pub const DAY_MS: i64 = 86_400_000;

/// Default table of the index.
pub const DEFAULT_TABLE: &str = "strata_index";

/// Default for the most filter shards one label of one object is split into.
pub const DEFAULT_SHARDS: u32 = 64;

/// Most shards a period may have.
pub const MAX_SHARDS: u32 = 256;

/// The day bucket of a timestamp: days since 1970-01-01 UTC, rounded down (also for
/// timestamps before 1970).
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// One schema period: from its first day on (until the next period's), index rows go to
/// `table`, and a label's Bloom filter for one object is split into at most `shards` rows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodConfig {
    /// First day (UTC) of the period, `YYYY-MM-DD`.
    pub from: String,
    /// Table holding the period's rows (a DynamoDB table name: 3-255 letters, digits, `_-.`).
    pub table: String,
    /// Most rows (shards) one label's Bloom filter of one object is split into, 1 to 256
    /// (rounded down to a power of two). Filters are split by size, about 4 KiB per shard;
    /// this caps the split.
    pub shards: u32,
}

impl Default for PeriodConfig {
    fn default() -> Self {
        Self {
            from: "2020-01-01".to_string(),
            table: DEFAULT_TABLE.to_string(),
            shards: DEFAULT_SHARDS,
        }
    }
}

/// The schema periods, oldest first. A period is in force from its `from` day until the next
/// period's; to change the table or the shard count, append a period starting at a future date.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaConfig {
    pub periods: Vec<PeriodConfig>,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            periods: vec![PeriodConfig::default()],
        }
    }
}

impl SchemaConfig {
    /// Checks the periods: at least one, valid dates in strictly increasing order, shard counts
    /// in range, usable table names.
    pub fn validate(&self) -> Result<(), IndexError> {
        self.resolve().map(|_| ())
    }

    /// The distinct tables of all periods, in period order.
    pub fn tables(&self) -> Vec<String> {
        let mut tables: Vec<String> = Vec::new();
        for period in &self.periods {
            if !tables.contains(&period.table) {
                tables.push(period.table.clone());
            }
        }
        tables
    }

    pub(crate) fn resolve(&self) -> Result<Schema, IndexError> {
        if self.periods.is_empty() {
            return Err(IndexError::InvalidSchema(
                "no periods: give at least one period with from, table and shards".to_string(),
            ));
        }
        let mut periods: Vec<Period> = Vec::with_capacity(self.periods.len());
        for (i, config) in self.periods.iter().enumerate() {
            let which = format!("period #{} (from {:?})", i + 1, config.from);
            let start_day = parse_date(&config.from).ok_or_else(|| {
                IndexError::InvalidSchema(format!(
                    "{which}: from must be a valid date written YYYY-MM-DD"
                ))
            })?;
            if let Some(previous) = periods.last() {
                if start_day <= previous.start_day {
                    return Err(IndexError::InvalidSchema(format!(
                        "{which}: from must be after the previous period's {:?}; list periods \
                         oldest first with distinct dates",
                        self.periods[i - 1].from
                    )));
                }
            }
            if config.table.is_empty() {
                return Err(IndexError::InvalidSchema(format!(
                    "{which}: table is empty; name the table, e.g. {DEFAULT_TABLE}"
                )));
            }
            if !valid_table_name(&config.table) {
                return Err(IndexError::InvalidSchema(format!(
                    "{which}: table {:?} is not a valid table name; use 3-255 letters, digits \
                     and the characters _-.",
                    config.table
                )));
            }
            if config.shards == 0 || config.shards > MAX_SHARDS {
                return Err(IndexError::InvalidSchema(format!(
                    "{which}: shards is {}, must be 1 to {MAX_SHARDS}",
                    config.shards
                )));
            }
            periods.push(Period {
                start_day,
                table: config.table.clone(),
                shards: config.shards,
            });
        }
        Ok(Schema { periods })
    }
}

/// A validated period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Period {
    pub start_day: i64,
    pub table: String,
    pub shards: u32,
}

/// Validated periods, oldest first (never empty).
#[derive(Clone, Debug)]
pub(crate) struct Schema {
    periods: Vec<Period>,
}

impl Schema {
    /// The period in force on `day`: the last one starting on or before it. Days before the
    /// first period belong to the first period, so no write is ever without a home.
    pub fn period(&self, day: i64) -> &Period {
        let after = self.periods.partition_point(|p| p.start_day <= day);
        &self.periods[after.saturating_sub(1)]
    }
}

fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, `None` unless it is a real date.
pub(crate) fn parse_date(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(from: &str, table: &str, shards: u32) -> PeriodConfig {
        PeriodConfig {
            from: from.to_string(),
            table: table.to_string(),
            shards,
        }
    }

    fn error_of(periods: Vec<PeriodConfig>) -> String {
        SchemaConfig { periods }
            .validate()
            .expect_err("invalid schema")
            .to_string()
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("1900-02-29"), None);
        assert_eq!(parse_date("2000-02-29"), Some(11_016));
        for bad in [
            "",
            "2024-1-01",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024/01/01",
            "+024-01-01",
            "2024-01-1x",
            "20240101",
            "2024-01-001",
            "２０２４-01-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        // Day number and day_of agree.
        assert_eq!(day_of(19_782 * DAY_MS), 19_782);
        assert_eq!(day_of(19_783 * DAY_MS - 1), 19_782);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(-DAY_MS), -1);
        assert_eq!(day_of(-DAY_MS - 1), -2);
    }

    #[test]
    fn default_is_valid() {
        let schema = SchemaConfig::default();
        schema.validate().unwrap();
        assert_eq!(schema.periods[0].from, "2020-01-01");
        assert_eq!(schema.periods[0].table, "strata_index");
        assert_eq!(schema.periods[0].shards, DEFAULT_SHARDS);
        assert_eq!(schema.tables(), ["strata_index"]);
    }

    #[test]
    fn validation_names_the_wrong_period() {
        assert!(error_of(vec![]).contains("no periods"));
        let e = error_of(vec![
            period("2020-01-01", "idx_a", 16),
            period("2020-02-30", "idx_b", 16),
        ]);
        assert!(e.contains("period #2") && e.contains("YYYY-MM-DD"), "{e}");
        let e = error_of(vec![
            period("2021-01-01", "idx_a", 16),
            period("2021-01-01", "idx_b", 16),
        ]);
        assert!(e.contains("period #2") && e.contains("after"), "{e}");
        let e = error_of(vec![
            period("2021-01-01", "idx_a", 16),
            period("2020-06-01", "idx_b", 16),
        ]);
        assert!(e.contains("period #2") && e.contains("oldest first"), "{e}");
        let e = error_of(vec![period("2021-01-01", "", 16)]);
        assert!(
            e.contains("period #1") && e.contains("table is empty"),
            "{e}"
        );
        let e = error_of(vec![period("2021-01-01", "bad name!", 16)]);
        assert!(e.contains("not a valid table name"), "{e}");
        let e = error_of(vec![period("2021-01-01", "idx", 0)]);
        assert!(e.contains("shards is 0, must be 1 to 256"), "{e}");
        let e = error_of(vec![
            period("2021-01-01", "idx", 1),
            period("2022-01-01", "idx", 257),
        ]);
        assert!(
            e.contains("period #2") && e.contains("shards is 257"),
            "{e}"
        );
        SchemaConfig {
            periods: vec![
                period("2021-01-01", "idx", 1),
                period("2022-01-01", "idx", 256),
            ],
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn period_in_force() {
        let schema = SchemaConfig {
            periods: vec![
                period("2020-01-01", "idx_a", 4),
                period("2021-01-01", "idx_b", 8),
                period("2022-01-01", "idx_c", 16),
            ],
        }
        .resolve()
        .unwrap();
        let day = |d: &str| parse_date(d).unwrap();
        assert_eq!(
            schema.period(day("2019-05-05")).table,
            "idx_a",
            "before all"
        );
        assert_eq!(schema.period(day("2020-01-01")).table, "idx_a");
        assert_eq!(schema.period(day("2020-12-31")).table, "idx_a");
        assert_eq!(schema.period(day("2021-01-01")).table, "idx_b");
        assert_eq!(schema.period(day("2021-01-01")).shards, 8);
        assert_eq!(schema.period(day("2030-01-01")).table, "idx_c");
    }

    #[test]
    fn yaml_with_defaults_and_unknown_fields() {
        let config: SchemaConfig = serde_yaml::from_str(
            "periods:\n  - from: 2020-01-01\n  - from: 2024-06-01\n    table: idx_2024\n    shards: 32\n",
        )
        .unwrap();
        assert_eq!(config.periods[0], PeriodConfig::default());
        assert_eq!(config.periods[1].table, "idx_2024");
        assert_eq!(config.periods[1].shards, 32);
        config.validate().unwrap();
        assert_eq!(config.tables(), ["strata_index", "idx_2024"]);
        let err =
            serde_yaml::from_str::<SchemaConfig>("periods:\n  - from: 2020-01-01\n    shard: 3\n")
                .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
