//! The data model every Strata service shares: label sets and their
//! fingerprints, label matchers, tenant IDs and the naming rules of
//! Prometheus.

pub mod duration;
mod exemplar;
pub mod hash;
mod labels;
mod matcher;
mod tenant;

pub use exemplar::{Exemplar, SeriesExemplars};
pub use labels::{fingerprint, sorted_by_labels, Label, Labels, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use tenant::{validate_tenant_id, TenantError, DEFAULT_TENANT, MAX_TENANT_ID_LEN};

/// Bit pattern of the NaN Prometheus writes to mark a series as stale.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the Prometheus staleness marker (compared by bits, since
/// any NaN compares unequal to itself).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Whether `name` is a legal metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || *first == b'_' || *first == b':')
        && rest
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b':')
}

/// Whether `name` is a legal label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || *first == b'_')
        && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for ok in ["up", "a:b_c", "_x", "node_cpu_seconds_total", ":x"] {
            assert!(is_valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "é"] {
            assert!(!is_valid_metric_name(bad), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        for ok in ["job", "_x", "__name__", "a1"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a:b", "a-b"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn stale_marker() {
        assert!(is_stale_nan(f64::from_bits(STALE_NAN_BITS)));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(1.0));
    }
}
