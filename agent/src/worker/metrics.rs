//! The worker's Prometheus metrics (`GET /metrics`): balls received,
//! forwarded, caught, dropped by reason, refused by reason, forward failures,
//! and the per-hop handling latency (receipt to hand-off: the peer's `202`,
//! or the outcome queued for MQTT).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::proto::DropReason;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// All worker metrics, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub received: Counter,
    pub forwarded: Counter,
    pub caught: Counter,
    pub dropped: Family<ReasonLabel, Counter>,
    pub refused: Family<ReasonLabel, Counter>,
    pub forward_failures: Counter,
    pub in_flight: Gauge,
    pub live_peers: Gauge,
    pub hop_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rackpong_worker");
        let received = Counter::default();
        let forwarded = Counter::default();
        let caught = Counter::default();
        let dropped = Family::<ReasonLabel, Counter>::default();
        let refused = Family::<ReasonLabel, Counter>::default();
        let forward_failures = Counter::default();
        let in_flight = Gauge::default();
        let live_peers = Gauge::default();
        // 50 µs to ~1.4 s: fine enough below 2 ms to read a p99 from the buckets.
        let hop_latency = Histogram::new(exponential_buckets(0.000_05, 1.5, 26));
        registry.register(
            "balls_received",
            "Balls accepted with 202",
            received.clone(),
        );
        registry.register(
            "balls_forwarded",
            "Balls handed to a peer (peer answered 202)",
            forwarded.clone(),
        );
        registry.register(
            "balls_caught",
            "Balls addressed to this worker",
            caught.clone(),
        );
        registry.register(
            "balls_dropped",
            "Balls given up, by reason",
            dropped.clone(),
        );
        registry.register(
            "balls_refused",
            "Requests refused with 4xx/5xx, by error",
            refused.clone(),
        );
        registry.register(
            "forward_failures",
            "Forward attempts that failed (peer then avoided)",
            forward_failures.clone(),
        );
        registry.register(
            "balls_in_flight",
            "Accepted balls not yet handed off",
            in_flight.clone(),
        );
        registry.register(
            "live_peers",
            "Peers that answered the last probe and no forward since failed",
            live_peers.clone(),
        );
        registry.register(
            "hop_latency_seconds",
            "Per-hop handling latency: receipt to hand-off",
            hop_latency.clone(),
        );
        for r in DropReason::ALL {
            let _ = dropped.get_or_create(&ReasonLabel {
                reason: r.as_str().into(),
            });
        }
        Metrics {
            registry,
            received,
            forwarded,
            caught,
            dropped,
            refused,
            forward_failures,
            in_flight,
            live_peers,
            hop_latency,
        }
    }

    pub fn dropped(&self, reason: DropReason) {
        self.dropped
            .get_or_create(&ReasonLabel {
                reason: reason.as_str().into(),
            })
            .inc();
    }

    pub fn refused(&self, code: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: code.into(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
