//! Node death seen from health silence: a node's agent is lost when no
//! health sample arrived for [`STALE_AFTER_INTERVALS`] × the node's own
//! sampling interval. The interval is the node's, read from its samples
//! (their `ts_ms` gap per `seq` step, the agent's own clock, so delivery
//! jitter does not stretch it). The loss is stamped at the last sample plus
//! one interval — the sample that did not come — with one interval as its
//! precision. This does not wait for the broker's Last Will (1.5 ×
//! keepalive, and seconds more on mosquitto, which checks keepalives only
//! every few seconds).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// k: how many intervals of silence make a node's health stale.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// A node whose health went silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub node: String,
    /// The last sample's arrival plus one interval.
    pub at: Instant,
    /// The node's interval (ms): the precision of `at`.
    pub interval_ms: u64,
}

#[derive(Debug)]
struct NodeHealth {
    last_at: Instant,
    last: (u64, u64),
    interval: Option<Duration>,
    flagged: bool,
}

/// Each node's last sample and interval.
#[derive(Debug)]
pub struct Staleness {
    /// Used until a node's own interval is known (its first sample).
    fallback: Duration,
    nodes: HashMap<String, NodeHealth>,
}

impl Staleness {
    /// `fallback` is the interval assumed before a node's second sample.
    pub fn new(fallback: Duration) -> Self {
        Staleness {
            fallback: fallback.max(Duration::from_millis(1)),
            nodes: HashMap::new(),
        }
    }

    /// A health sample of `node` (its `seq` and `ts_ms`) arrived at `at`.
    pub fn seen(&mut self, node: &str, at: Instant, seq: u64, ts_ms: u64) {
        let measured = self.nodes.get(node).and_then(|h| {
            let (s0, t0) = h.last;
            (seq > s0 && ts_ms > t0).then(|| Duration::from_millis((ts_ms - t0) / (seq - s0)))
        });
        let interval = measured
            .filter(|d| !d.is_zero())
            .or_else(|| self.nodes.get(node).and_then(|h| h.interval));
        self.nodes.insert(
            node.to_string(),
            NodeHealth {
                last_at: at,
                last: (seq, ts_ms),
                interval,
                flagged: false,
            },
        );
    }

    /// Nodes that went stale by `now`, each reported once until seen again.
    pub fn stale(&mut self, now: Instant) -> Vec<Stale> {
        let fallback = self.fallback;
        let mut out: Vec<Stale> = self
            .nodes
            .iter_mut()
            .filter_map(|(node, h)| {
                let interval = h.interval.unwrap_or(fallback);
                let due = h.last_at + interval * STALE_AFTER_INTERVALS;
                (!h.flagged && now >= due).then(|| {
                    h.flagged = true;
                    Stale {
                        node: node.clone(),
                        at: h.last_at + interval,
                        interval_ms: interval.as_millis() as u64,
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stale_after_k_own_intervals_stamped_one_interval_after_the_last_sample() {
        let mut s = Staleness::new(Duration::from_secs(2));
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // 500 ms apart on the agent's clock, delivered with jitter.
        s.seen("n1", ms(0), 7, 10_000);
        s.seen("n1", ms(530), 8, 10_500);
        assert!(s.stale(ms(2029)).is_empty());
        let got = s.stale(ms(2030));
        assert_eq!(
            got,
            vec![Stale {
                node: "n1".into(),
                at: ms(1030),
                interval_ms: 500
            }]
        );
        assert!(s.stale(ms(9000)).is_empty(), "reported once");
        // Back: a new silence is reported again; a restarted agent (seq
        // reset) keeps the interval it had.
        s.seen("n1", ms(9000), 0, 20_000);
        assert_eq!(s.stale(ms(10_500)).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fallback_interval_until_the_second_sample() {
        let mut s = Staleness::new(Duration::from_secs(1));
        let t0 = Instant::now();
        s.seen("n2", t0, 1, 5);
        let got = s.stale(t0 + Duration::from_secs(3));
        assert_eq!(got[0].at, t0 + Duration::from_secs(1));
        assert_eq!(got[0].interval_ms, 1000);
    }
}
