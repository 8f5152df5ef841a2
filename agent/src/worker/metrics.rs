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
        let m = Metrics {
            registry: Registry::with_prefix("rackpong_worker"),
            received: Counter::default(),
            forwarded: Counter::default(),
            caught: Counter::default(),
            dropped: Family::default(),
            refused: Family::default(),
            forward_failures: Counter::default(),
            in_flight: Gauge::default(),
            live_peers: Gauge::default(),
            // 50 µs to ~1.4 s: fine enough below 2 ms to read a p99 from the buckets.
            hop_latency: Histogram::new(exponential_buckets(0.000_05, 1.5, 26)),
        };
        m.register()
    }

    /// Registers every metric (the registry holds clones sharing the values),
    /// and creates each drop reason so it is exported as 0 before it happens.
    fn register(mut self) -> Self {
        let counters = [
            ("balls_received", "Balls accepted with 202", &self.received),
            (
                "balls_forwarded",
                "Balls handed to a peer (peer answered 202)",
                &self.forwarded,
            ),
            (
                "balls_caught",
                "Balls addressed to this worker",
                &self.caught,
            ),
            (
                "forward_failures",
                "Forward attempts that failed (peer then avoided)",
                &self.forward_failures,
            ),
        ];
        for (name, help, counter) in counters {
            self.registry.register(name, help, counter.clone());
        }
        self.register_families_and_gauges();
        for reason in DropReason::ALL {
            let _ = self.dropped.get_or_create(&ReasonLabel {
                reason: reason.as_str().into(),
            });
        }
        self
    }

    fn register_families_and_gauges(&mut self) {
        let r = &mut self.registry;
        let families = [
            ("balls_dropped", "Balls given up, by reason", &self.dropped),
            (
                "balls_refused",
                "Requests refused with 4xx/5xx, by error",
                &self.refused,
            ),
        ];
        for (name, help, family) in families {
            r.register(name, help, family.clone());
        }
        let gauges = [
            (
                "balls_in_flight",
                "Accepted balls not yet handed off",
                &self.in_flight,
            ),
            (
                "live_peers",
                "Peers that answered the last probe and no forward since failed",
                &self.live_peers,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        r.register(
            "hop_latency_seconds",
            "Per-hop handling latency: receipt to hand-off",
            self.hop_latency.clone(),
        );
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
