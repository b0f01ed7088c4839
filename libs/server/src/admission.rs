//! Admission control: how many requests, and how many bytes of them, a
//! process works on at once. A request beyond either limit is refused at
//! once (the caller answers 503 with `Retry-After`) instead of queueing, so
//! latency under overload stays bounded and memory stays under the limit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Seconds a refused sender is told to wait before retrying.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Why a request was not admitted; the message names the setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{what}: {inflight} requests in flight, the limit ({setting}); retry later")]
    Requests {
        what: &'static str,
        inflight: usize,
        setting: &'static str,
    },
    #[error("{what}: {inflight} bytes of requests in flight and {more} more would pass the limit of {limit} bytes ({setting}); retry later")]
    Bytes {
        what: &'static str,
        inflight: usize,
        more: usize,
        limit: usize,
        setting: &'static str,
    },
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Requests { .. } => "inflight_requests",
            Refusal::Bytes { .. } => "inflight_bytes",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// Limits on requests in flight and their bytes (`0` = no limit), with the
/// settings' names for messages.
#[derive(Debug)]
pub struct Admission {
    what: &'static str,
    max_requests: usize,
    max_bytes: usize,
    requests_setting: &'static str,
    bytes_setting: &'static str,
    requests: AtomicUsize,
    bytes: AtomicUsize,
    admitted: AtomicU64,
    refused: Family<ReasonLabel, Counter>,
    inflight_requests: Gauge,
    inflight_bytes: Gauge,
}

impl Admission {
    /// `what` starts refusal messages ("distributor overloaded").
    pub fn new(
        what: &'static str,
        (max_requests, requests_setting): (usize, &'static str),
        (max_bytes, bytes_setting): (usize, &'static str),
    ) -> Arc<Self> {
        Arc::new(Self {
            what,
            max_requests,
            max_bytes,
            requests_setting,
            bytes_setting,
            requests: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
            refused: Family::default(),
            inflight_requests: Gauge::default(),
            inflight_bytes: Gauge::default(),
        })
    }

    /// Registers `<prefix>_inflight_requests`, `<prefix>_inflight_bytes`
    /// and `<prefix>_refused_total{reason}`.
    pub fn register(&self, registry: &mut Registry, prefix: &str) {
        registry.register(
            format!("{prefix}_inflight_requests"),
            "Requests being worked on",
            self.inflight_requests.clone(),
        );
        registry.register(
            format!("{prefix}_inflight_bytes"),
            "Bytes of the requests being worked on (compressed and decoded)",
            self.inflight_bytes.clone(),
        );
        registry.register(
            format!("{prefix}_refused"),
            "Requests refused at once because a limit on work in flight was reached, by reason",
            self.refused.clone(),
        );
    }

    /// Admits one request, or refuses it if `max_requests` are in flight.
    pub fn enter(self: &Arc<Self>) -> Result<Ticket, Refusal> {
        let prev = self.requests.fetch_add(1, Ordering::AcqRel);
        if self.max_requests > 0 && prev >= self.max_requests {
            self.requests.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(Refusal::Requests {
                what: self.what,
                inflight: prev,
                setting: self.requests_setting,
            }));
        }
        self.admitted.fetch_add(1, Ordering::Relaxed);
        self.inflight_requests.inc();
        Ok(Ticket {
            admission: self.clone(),
            bytes: 0,
        })
    }

    /// Requests in flight now.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes in flight now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    fn refuse(&self, r: Refusal) -> Refusal {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: r.reason().to_string(),
            })
            .inc();
        r
    }
}

/// One admitted request; gives back its place and bytes when dropped.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    bytes: usize,
}

impl Ticket {
    /// Accounts `n` more bytes of this request, before they are allocated;
    /// refuses if that would pass `max_bytes`. A request alone larger than
    /// the limit is admitted when nothing else is in flight, so it can
    /// never be refused forever.
    pub fn add_bytes(&mut self, n: usize) -> Result<(), Refusal> {
        let a = &self.admission;
        let mut cur = a.bytes.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(n);
            if a.max_bytes > 0 && next > a.max_bytes && cur > self.bytes {
                return Err(a.refuse(Refusal::Bytes {
                    what: a.what,
                    inflight: cur,
                    more: n,
                    limit: a.max_bytes,
                    setting: a.bytes_setting,
                }));
            }
            match a
                .bytes
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        self.bytes += n;
        a.inflight_bytes
            .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
        Ok(())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let a = &self.admission;
        a.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        a.inflight_bytes
            .dec_by(i64::try_from(self.bytes).unwrap_or(i64::MAX));
        a.requests.fetch_sub(1, Ordering::AcqRel);
        a.inflight_requests.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(requests: usize, bytes: usize) -> Arc<Admission> {
        Admission::new(
            "test overloaded",
            (requests, "t.requests"),
            (bytes, "t.bytes"),
        )
    }

    #[test]
    fn requests_beyond_the_limit_are_refused_until_one_ends() {
        let a = admission(2, 0);
        let t1 = a.enter().unwrap();
        let _t2 = a.enter().unwrap();
        let err = a.enter().unwrap_err();
        assert!(err.to_string().contains("t.requests"), "{err}");
        assert_eq!(a.requests(), 2);
        drop(t1);
        let _t3 = a.enter().unwrap();
    }

    #[test]
    fn bytes_beyond_the_limit_are_refused_and_given_back() {
        let a = admission(0, 100);
        let mut t1 = a.enter().unwrap();
        t1.add_bytes(60).unwrap();
        let mut t2 = a.enter().unwrap();
        let err = t2.add_bytes(50).unwrap_err();
        assert!(err.to_string().contains("t.bytes"), "{err}");
        t2.add_bytes(40).unwrap();
        assert_eq!(a.bytes(), 100);
        drop(t1);
        drop(t2);
        assert_eq!((a.bytes(), a.requests()), (0, 0));
        // Alone, a request larger than the limit still gets in.
        let mut big = a.enter().unwrap();
        big.add_bytes(500).unwrap();
    }
}
