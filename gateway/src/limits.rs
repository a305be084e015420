//! Request hygiene for the API: a per-client rate limit and CORS.
//!
//! The rate limit is a token bucket per peer IP address (the `governor` crate's GCRA): a client
//! may burst, then is held to a steady rate, and a refused request gets `429` with `Retry-After`.
//! Body size is capped in the submit handler itself (see `api.rs`) so the refusal is the same JSON
//! as every other error.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tower_http::cors::{Any, CorsLayer};

use crate::Node;
use crate::error::ApiError;

/// A steady rate and a burst, per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// `None` when `per_second` is 0 (no limit). A burst below the rate is raised to it.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Self { per_second, burst: burst.max(per_second) })
    }
}

/// Forget clients idle long enough to have a full bucket again, every this many requests, so
/// the table of clients stays as small as the set of recent ones.
const PRUNE_EVERY: u64 = 4096;

/// The keyed limiter.
#[derive(Debug)]
pub struct Limiter {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        let rate = NonZeroU32::new(limit.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limit.burst).unwrap_or(rate);
        Self {
            buckets: governor::RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one token for `ip`, or says how long until one is available.
    pub fn check(&self, ip: IpAddr) -> Result<(), std::time::Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.buckets.retain_recent();
        }
        self.buckets.check_key(&ip).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// Middleware: refuses a request over its client's budget. Requests without a peer address (in-
/// process tests through `oneshot`) are not limited; CORS preflights are never counted.
pub async fn rate_limit(State(node): State<Node>, request: Request, next: Next) -> Response {
    if let (Some(limiter), Some(ConnectInfo(peer))) =
        (&node.inner.limiter, request.extensions().get::<ConnectInfo<SocketAddr>>())
        && request.method() != Method::OPTIONS
        && let Err(wait) = limiter.check(peer.ip())
    {
        node.inner.metrics.rate_limited.inc();
        let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::RateLimited { retry_after_secs }.into_response();
    }
    next.run(request).await
}

/// CORS for the browser app, which may talk to several nodes from one origin. Any origin is
/// allowed because the API has no cookies or other ambient credentials: everything a node
/// serves is public ciphertext, and every write is authorised by proof of work, not by origin.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, HeaderName::from_static("last-event-id")])
        .expose_headers([header::LOCATION, header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_is_refused_while_others_are_not() {
        let limiter = Limiter::new(RateLimit { per_second: 1, burst: 3 });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
        }
        let wait = limiter.check(a).expect_err("over the burst");
        assert!(wait <= std::time::Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(b).is_ok(), "another client has its own bucket");
    }

    #[test]
    fn zero_rate_means_no_limit() {
        assert_eq!(RateLimit::new(0, 10), None);
        assert_eq!(RateLimit::new(5, 1), Some(RateLimit { per_second: 5, burst: 5 }));
    }
}
