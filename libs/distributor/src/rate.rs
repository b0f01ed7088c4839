use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;
use thiserror::Error;

/// Per-tenant token buckets.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Why the rate limiter refused a request.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RateLimitError {
    /// The bucket does not hold enough tokens right now; the same request
    /// succeeds once the bucket has refilled, so the sender should back off
    /// and retry (HTTP 429).
    #[error(
        "ingestion rate limit of {rate} samples/s (burst {burst}) exceeded for tenant {tenant} \
         while adding {requested} samples; slow down, or ask for a higher limit \
         (distributor.limits.ingestion_rate)"
    )]
    RateExceeded {
        tenant: String,
        rate: f64,
        burst: u64,
        requested: u64,
    },
    /// The request alone needs more tokens than the bucket can ever hold:
    /// retrying it can never succeed, so it is refused as bad input (HTTP 400)
    /// rather than with a 429 that a sender such as Prometheus retries forever.
    /// (Mimir names this case apart in its message, grafana/mimir#10835, but
    /// still answers 429.)
    #[error(
        "request holds {requested} samples (counting exemplars and histograms), more than \
         the ingestion burst size of {burst} samples of tenant {tenant}, so it can never be \
         accepted: lower queue_config.max_samples_per_send of the sender's remote_write \
         to at most {burst}, or raise the tenant's ingestion_burst_size \
         (distributor.limits.ingestion_burst_size or \
         distributor.tenant_limits.<tenant>.ingestion_burst_size) to at least {requested}"
    )]
    LargerThanBurst {
        tenant: String,
        burst: u64,
        requested: u64,
    },
}

impl RateLimitError {
    /// Whether the same request can succeed later (429) or never (400).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RateLimitError::RateExceeded { .. })
    }
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `n` tokens from the tenant's bucket if it holds them. A bucket
    /// refills at `rate` per second up to `burst` (at least 1). A rate of 0
    /// means no limit.
    ///
    /// A request of more than `burst` tokens can never be served; it is
    /// refused with [`RateLimitError::LargerThanBurst`] and takes nothing from
    /// the bucket, so it does not starve the tenant's other requests.
    pub fn allow(&self, tenant: &str, n: u64, rate: f64, burst: u64) -> Result<(), RateLimitError> {
        self.allow_at(tenant, n, rate, burst, Instant::now())
    }

    fn allow_at(
        &self,
        tenant: &str,
        n: u64,
        rate: f64,
        burst: u64,
        now: Instant,
    ) -> Result<(), RateLimitError> {
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = burst.max(1);
        if n > burst {
            return Err(RateLimitError::LargerThanBurst {
                tenant: tenant.to_string(),
                burst,
                requested: n,
            });
        }
        let capacity = burst as f64;
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(tenant.to_string()).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        let need = n as f64;
        if need <= bucket.tokens {
            bucket.tokens -= need;
            return Ok(());
        }
        Err(RateLimitError::RateExceeded {
            tenant: tenant.to_string(),
            rate,
            burst,
            requested: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refills_at_rate_up_to_burst() {
        let r = RateLimiter::new();
        let t0 = Instant::now();
        assert!(r.allow_at("a", 100, 10.0, 100, t0).is_ok());
        assert!(matches!(
            r.allow_at("a", 1, 10.0, 100, t0),
            Err(RateLimitError::RateExceeded { .. })
        ));
        assert!(
            r.allow_at("b", 50, 10.0, 100, t0).is_ok(),
            "tenants are separate"
        );
        let t1 = t0 + Duration::from_secs(2);
        assert!(r.allow_at("a", 20, 10.0, 100, t1).is_ok());
        assert!(r.allow_at("a", 1, 10.0, 100, t1).is_err());
        let t2 = t1 + Duration::from_secs(1000);
        assert!(r.allow_at("a", 100, 10.0, 100, t2).is_ok(), "full burst");
        assert!(r.allow_at("a", 5, 0.0, 0, t2).is_ok(), "rate 0 disables");
    }

    #[test]
    fn request_larger_than_burst_is_not_retryable_and_costs_nothing() {
        let r = RateLimiter::new();
        let t0 = Instant::now();
        let err = r.allow_at("a", 101, 10.0, 100, t0).unwrap_err();
        assert_eq!(
            err,
            RateLimitError::LargerThanBurst {
                tenant: "a".to_string(),
                burst: 100,
                requested: 101,
            }
        );
        assert!(!err.is_retryable());
        let msg = err.to_string();
        for part in [
            "101 samples",
            "burst size of 100",
            "tenant a",
            "max_samples_per_send",
            "ingestion_burst_size",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg:?}");
        }
        // Refused every time, however long the sender waits...
        let later = t0 + Duration::from_secs(3600);
        assert!(matches!(
            r.allow_at("a", 101, 10.0, 100, later),
            Err(RateLimitError::LargerThanBurst { .. })
        ));
        // ...and the bucket was not drained by it: a full burst still fits.
        assert!(r.allow_at("a", 100, 10.0, 100, t0).is_ok());

        // An exhausted bucket is a retryable refusal.
        let err = r.allow_at("a", 1, 10.0, 100, t0).unwrap_err();
        assert!(err.is_retryable());
        assert!(err.to_string().contains("rate limit of 10 samples/s"));

        // A zero burst counts as 1.
        assert!(matches!(
            r.allow_at("z", 2, 10.0, 0, t0),
            Err(RateLimitError::LargerThanBurst { burst: 1, .. })
        ));
        assert!(r.allow_at("z", 1, 10.0, 0, t0).is_ok());
    }
}
