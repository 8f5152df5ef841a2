//! Health samples deduplicated by `seq` on the consumer side. QoS 1 is
//! at-least-once: a sample whose PUBACK was lost is sent again after a
//! reconnect, and a consumer that re-subscribes gets the retained last sample
//! once more. Consumers (the controller's engine, the dashboard) pass each
//! sample through [`SeqFilter::admit`] and count what it refuses instead of
//! counting the sample twice.
//!
//! The rule: per node, a sample is new if its `seq` is above the last one
//! admitted, or if its `ts_ms` is later (the agent restarted and its seq
//! began again). One with a seq at or below the last and a `ts_ms` not later
//! is a duplicate (within one agent run, samples are published in order).

use std::collections::HashMap;

/// Per-node last admitted `(seq, ts_ms)` and the count of duplicates.
#[derive(Debug, Default, Clone)]
pub struct SeqFilter {
    last: HashMap<String, (u64, u64)>,
    duplicates: u64,
}

impl SeqFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` if the sample is new (and remembers it); `false` (counted) for a
    /// duplicate.
    pub fn admit(&mut self, node: &str, seq: u64, ts_ms: u64) -> bool {
        match self.last.get_mut(node) {
            Some(last) if seq <= last.0 && ts_ms <= last.1 => {
                self.duplicates += 1;
                false
            }
            Some(last) => {
                *last = (seq, ts_ms);
                true
            }
            None => {
                self.last.insert(node.to_string(), (seq, ts_ms));
                true
            }
        }
    }

    /// Duplicates refused so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_counted_per_node_and_a_restart_is_new() {
        let mut f = SeqFilter::new();
        assert!(f.admit("n1", 1, 1_000));
        assert!(f.admit("n2", 1, 1_000));
        assert!(!f.admit("n1", 1, 1_000));
        assert!(f.admit("n1", 2, 1_500));
        assert!(!f.admit("n1", 1, 1_000), "an older re-send");
        // The agent restarted: seq starts again, later timestamps.
        assert!(f.admit("n1", 0, 9_000));
        assert!(!f.admit("n1", 0, 9_000));
        assert_eq!(f.duplicates(), 3);
    }
}
