use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

/// Per-tenant token buckets.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `n` tokens from the tenant's bucket if it holds them. A bucket
    /// refills at `rate` per second up to `burst`. A rate of 0 means no limit.
    pub fn allow(&self, tenant: &str, n: u64, rate: f64, burst: u64) -> bool {
        self.allow_at(tenant, n, rate, burst, Instant::now())
    }

    fn allow_at(&self, tenant: &str, n: u64, rate: f64, burst: u64, now: Instant) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let burst = burst.max(1) as f64;
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(tenant.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        let need = n as f64;
        if need <= bucket.tokens {
            bucket.tokens -= need;
            return true;
        }
        false
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
        assert!(r.allow_at("a", 100, 10.0, 100, t0));
        assert!(!r.allow_at("a", 1, 10.0, 100, t0));
        assert!(r.allow_at("b", 50, 10.0, 100, t0), "tenants are separate");
        let t1 = t0 + Duration::from_secs(2);
        assert!(r.allow_at("a", 20, 10.0, 100, t1));
        assert!(!r.allow_at("a", 1, 10.0, 100, t1));
        let t2 = t1 + Duration::from_secs(1000);
        assert!(
            !r.allow_at("a", 101, 10.0, 100, t2),
            "burst caps the bucket"
        );
        assert!(r.allow_at("a", 5, 0.0, 0, t2), "rate 0 disables");
    }
}
