use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;
use thiserror::Error;

/// Per-tenant token buckets. The rate and burst come with every call (the
/// tenant's limits as of that request), so a limit changed at run time (the
/// runtime overrides file) applies to the tenant's existing bucket at its
/// next request.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    /// The rate and capacity it was last refilled with.
    rate: f64,
    capacity: f64,
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
         (distributor.limits.ingestion_rate, or the tenant's ingestion_rate in the runtime \
         config file)"
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
         (distributor.limits.ingestion_burst_size, \
         distributor.tenant_limits.<tenant>.ingestion_burst_size, or the tenant's \
         ingestion_burst_size in the runtime config file) to at least {requested}"
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
    /// When `rate` or `burst` differ from the bucket's last call, the bucket
    /// is first refilled up to now at its old rate, then keeps its tokens
    /// (at most the new burst) and refills at the new rate from now on, as
    /// Go's `rate.Limiter.SetLimitAt` does.
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
            rate,
            capacity,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        // Up to now at the rate it had (the same as the new one unless the
        // limits changed), within the old and the new capacity.
        bucket.tokens = (bucket.tokens + elapsed * bucket.rate)
            .min(bucket.capacity)
            .min(capacity);
        bucket.last = now;
        bucket.rate = rate;
        bucket.capacity = capacity;
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

    /// A changed rate or burst applies to the tenant's existing bucket at
    /// its next request (the runtime overrides file changed).
    #[test]
    fn changed_limits_apply_to_an_existing_bucket() {
        let r = RateLimiter::new();
        let t0 = Instant::now();
        // Rate 10/s, burst 150: one push of 100, then the bucket holds 50.
        assert!(r.allow_at("a", 100, 10.0, 150, t0).is_ok());
        let t1 = t0 + Duration::from_millis(100);
        assert!(matches!(
            r.allow_at("a", 100, 10.0, 150, t1),
            Err(RateLimitError::RateExceeded { .. })
        ));
        // Raised to 10 000/s: 51 tokens now, 100 after another 5 ms.
        assert!(r.allow_at("a", 100, 10_000.0, 150, t1).is_err());
        let t2 = t1 + Duration::from_millis(5);
        assert!(r.allow_at("a", 100, 10_000.0, 150, t2).is_ok());
        // Between the two calls the old rate applied, not the new one:
        // 1 s at 10/s refills 10 tokens, not 10 000.
        let r = RateLimiter::new();
        assert!(r.allow_at("b", 150, 10.0, 150, t0).is_ok());
        let later = t0 + Duration::from_secs(1);
        assert!(r.allow_at("b", 11, 10_000.0, 1_000_000, later).is_err());
        assert!(r.allow_at("b", 10, 10_000.0, 1_000_000, later).is_ok());
        // A lowered burst caps what the bucket holds at once.
        let r = RateLimiter::new();
        assert!(r.allow_at("c", 1, 10.0, 1000, t0).is_ok());
        assert!(r.allow_at("c", 20, 10.0, 10, t0).is_err());
        assert!(r.allow_at("c", 10, 10.0, 10, t0).is_ok());
        assert!(r.allow_at("c", 1, 10.0, 10, t0).is_err());
        // Lowered to 1/s: the refill slows at once.
        let r = RateLimiter::new();
        assert!(r.allow_at("d", 100, 100.0, 100, t0).is_ok());
        assert!(r.allow_at("d", 1, 1.0, 100, t0).is_err());
        let t3 = t0 + Duration::from_millis(1500);
        assert!(r.allow_at("d", 2, 1.0, 100, t3).is_err());
        assert!(r.allow_at("d", 1, 1.0, 100, t3).is_ok());
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
