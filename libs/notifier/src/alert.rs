//! The alert as Alertmanager's v2 API takes it (`postableAlert`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};

/// One alert, as the ruler hands it over for delivery.
///
/// It serializes as Alertmanager v2's `postableAlert`:
///
/// ```json
/// {"labels": {"alertname": "Up"}, "annotations": {"summary": "…"},
///  "startsAt": "2023-11-14T22:13:20.123Z", "endsAt": "2023-11-14T22:17:20.123Z",
///  "generatorURL": "http://ruler/graph?g0.expr=…"}
/// ```
///
/// Times are RFC 3339 in UTC with milliseconds (truncated), as Prometheus
/// sends them. `endsAt` is left out when `ends_at` is `None` (Alertmanager
/// then resolves the alert after its `resolve_timeout`) and `generatorURL`
/// when it is empty; `labels` and `annotations` are always present.
///
/// Firing alerts carry an `ends_at` in the future and resolved ones an
/// `ends_at` in the past; choosing those (and when to resend) is the
/// ruler's job, not this crate's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Identity of the alert; must include `alertname`.
    pub labels: BTreeMap<String, String>,
    /// Extra information that does not identify the alert.
    pub annotations: BTreeMap<String, String>,
    pub starts_at: SystemTime,
    pub ends_at: Option<SystemTime>,
    pub generator_url: String,
}

impl Alert {
    /// The `alertname` label, or `""`.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// Whether the alert has ended at `now`: `ends_at` is set and not after
    /// `now` (Prometheus's `ResolvedAt`).
    pub fn resolved_at(&self, now: SystemTime) -> bool {
        self.ends_at.is_some_and(|end| end <= now)
    }

    /// Whether both times can be written as RFC 3339 (years 0 to 9999 in
    /// practice: chrono's range is wider, Go's parser is not).
    pub(crate) fn times_valid(&self) -> bool {
        format_time(self.starts_at).is_some()
            && self.ends_at.is_none_or(|t| format_time(t).is_some())
    }

    /// Adds each external label the alert lacks. A label with an empty value
    /// counts as absent, as in Prometheus.
    pub(crate) fn add_external_labels(&mut self, external: &BTreeMap<String, String>) {
        for (name, value) in external {
            match self.labels.get_mut(name) {
                Some(v) if !v.is_empty() => {}
                Some(v) => v.clone_from(value),
                None => {
                    self.labels.insert(name.clone(), value.clone());
                }
            }
        }
    }
}

/// RFC 3339 in UTC with milliseconds, or `None` when out of range.
pub(crate) fn format_time(t: SystemTime) -> Option<String> {
    let dt: DateTime<Utc> = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => DateTime::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())?,
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).ok()?;
            match d.subsec_nanos() {
                0 => DateTime::from_timestamp(secs.checked_neg()?, 0)?,
                n => DateTime::from_timestamp(
                    secs.checked_neg()?.checked_sub(1)?,
                    1_000_000_000 - n,
                )?,
            }
        }
    };
    // Alertmanager parses with Go's time package, which takes four-digit years.
    if !(0..=9999).contains(&chrono::Datelike::year(&dt)) {
        return None;
    }
    Some(dt.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let time = |t| format_time(t).ok_or_else(|| S::Error::custom("alert time out of range"));
        let fields =
            3 + usize::from(self.ends_at.is_some()) + usize::from(!self.generator_url.is_empty());
        let mut map = serializer.serialize_map(Some(fields))?;
        map.serialize_entry("labels", &self.labels)?;
        map.serialize_entry("annotations", &self.annotations)?;
        map.serialize_entry("startsAt", &time(self.starts_at)?)?;
        if let Some(end) = self.ends_at {
            map.serialize_entry("endsAt", &time(end)?)?;
        }
        if !self.generator_url.is_empty() {
            map.serialize_entry("generatorURL", &self.generator_url)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn serializes_as_postable_alert() {
        let start = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let alert = Alert {
            labels: labels(&[("alertname", "Up"), ("job", "node")]),
            annotations: labels(&[("summary", "down")]),
            starts_at: start,
            ends_at: Some(start + Duration::from_secs(240)),
            generator_url: "http://ruler/graph".into(),
        };
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "labels": {"alertname": "Up", "job": "node"},
                "annotations": {"summary": "down"},
                "startsAt": "2023-11-14T22:13:20.123Z",
                "endsAt": "2023-11-14T22:17:20.123Z",
                "generatorURL": "http://ruler/graph",
            })
        );

        let open = Alert {
            ends_at: None,
            generator_url: String::new(),
            annotations: BTreeMap::new(),
            ..alert
        };
        assert_eq!(
            serde_json::to_value(&open).unwrap(),
            serde_json::json!({
                "labels": {"alertname": "Up", "job": "node"},
                "annotations": {},
                "startsAt": "2023-11-14T22:13:20.123Z",
            })
        );
    }

    #[test]
    fn formats_times_before_the_epoch_and_rejects_out_of_range() {
        assert_eq!(
            format_time(UNIX_EPOCH - Duration::from_millis(1500)).as_deref(),
            Some("1969-12-31T23:59:58.500Z")
        );
        assert_eq!(
            format_time(UNIX_EPOCH).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000 * 365 * 86_400);
        assert_eq!(format_time(far), None);
        let alert = Alert {
            labels: labels(&[("alertname", "x")]),
            annotations: BTreeMap::new(),
            starts_at: far,
            ends_at: None,
            generator_url: String::new(),
        };
        assert!(!alert.times_valid());
        assert!(serde_json::to_string(&alert).is_err());
    }

    #[test]
    fn external_labels_fill_only_missing_or_empty_labels() {
        let mut alert = Alert {
            labels: labels(&[("alertname", "x"), ("cluster", "us1"), ("env", "")]),
            annotations: BTreeMap::new(),
            starts_at: UNIX_EPOCH,
            ends_at: None,
            generator_url: String::new(),
        };
        alert.add_external_labels(&labels(&[
            ("cluster", "eu1"),
            ("env", "prod"),
            ("replica", "a"),
        ]));
        assert_eq!(
            alert.labels,
            labels(&[
                ("alertname", "x"),
                ("cluster", "us1"),
                ("env", "prod"),
                ("replica", "a")
            ])
        );
    }

    #[test]
    fn resolved_at() {
        let mut alert = Alert {
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            starts_at: UNIX_EPOCH,
            ends_at: None,
            generator_url: String::new(),
        };
        let now = UNIX_EPOCH + Duration::from_secs(10);
        assert!(!alert.resolved_at(now));
        alert.ends_at = Some(now);
        assert!(alert.resolved_at(now));
        alert.ends_at = Some(now + Duration::from_secs(1));
        assert!(!alert.resolved_at(now));
    }
}
