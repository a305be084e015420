//! Prometheus metrics, served as text at `GET /metrics`.
//!
//! One registry per node (not a process-global recorder), so tests can run several nodes in one
//! process and read each one's numbers.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labeled = Family<[(&'static str, &'static str); 1], Counter>;

/// The node's counters, gauges and histograms.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    submissions: Labeled,
    commit_seconds: Histogram,
    batch_size: Histogram,
    pub last_seq: Gauge,
    pub subscribers: Gauge,
    subscribers_closed: Labeled,
    pub delivered: Counter,
    pub rate_limited: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("meterkast_node");
        let submissions = Labeled::default();
        registry.register(
            "submissions",
            "Submitted messages by outcome (stored, duplicate, or the error code)",
            submissions.clone(),
        );
        let commit_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "commit_seconds",
            "Time to write and commit one batch (group commit), fsync included",
            commit_seconds.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "commit_batch_size",
            "Submissions per committed batch",
            batch_size.clone(),
        );
        let last_seq = Gauge::default();
        registry.register("last_sequence", "Highest sequence number stored", last_seq.clone());
        let subscribers = Gauge::default();
        registry.register("subscribers", "Open live subscriptions", subscribers.clone());
        let subscribers_closed = Labeled::default();
        registry.register(
            "subscriptions_closed",
            "Live subscriptions closed by the node, by reason",
            subscribers_closed.clone(),
        );
        let delivered = Counter::default();
        registry.register(
            "delivered",
            "Messages sent to subscribers (replay and live)",
            delivered.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused by the per-client rate limit",
            rate_limited.clone(),
        );
        Self {
            registry,
            submissions,
            commit_seconds,
            batch_size,
            last_seq,
            subscribers,
            subscribers_closed,
            delivered,
            rate_limited,
        }
    }

    /// Counts one submission by outcome.
    pub fn submission(&self, outcome: &'static str) {
        self.submissions.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts a subscription the node closed, by reason code.
    pub fn subscription_closed(&self, reason: &'static str) {
        self.subscribers_closed.get_or_create(&[("reason", reason)]).inc();
    }

    /// Records one group commit.
    pub fn observe_commit(&self, batch: usize, took: Duration) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.batch_size.observe(batch as f64);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
