//! The factory's sliding window: balls sent and outcomes seen in the last
//! `window`, from which the service level (delivery rate, catch latency
//! percentiles) is computed on demand.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::ServiceLevel;

/// What one outcome contributes to the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    Caught {
        latency_ms: f64,
    },
    Dropped,
    TimedOut,
    /// Thrown while no worker existed (refused by the rack, not lost).
    Refused,
}

/// Sends and outcomes of the last `window`.
#[derive(Debug)]
pub struct Window {
    window: Duration,
    refused_total: u64,
    sends: VecDeque<Instant>,
    outcomes: VecDeque<(Instant, Mark)>,
}

impl Window {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            refused_total: 0,
            sends: VecDeque::new(),
            outcomes: VecDeque::new(),
        }
    }

    pub fn sent(&mut self, at: Instant) {
        self.sends.push_back(at);
    }

    pub fn outcome(&mut self, at: Instant, mark: Mark) {
        if mark == Mark::Refused {
            self.refused_total += 1;
        }
        self.outcomes.push_back((at, mark));
    }

    fn prune(&mut self, now: Instant) {
        let Some(from) = now.checked_sub(self.window) else {
            return;
        };
        while self.sends.front().is_some_and(|t| *t < from) {
            self.sends.pop_front();
        }
        while self.outcomes.front().is_some_and(|(t, _)| *t < from) {
            self.outcomes.pop_front();
        }
    }

    /// The service level over the window ending at `now`.
    pub fn level(&mut self, now: Instant) -> ServiceLevel {
        self.prune(now);
        let (mut caught, mut dropped, mut timed_out, mut refused) = (0u64, 0u64, 0u64, 0u64);
        let mut latencies = Vec::new();
        for (_, m) in &self.outcomes {
            match m {
                Mark::Caught { latency_ms } => {
                    caught += 1;
                    latencies.push(*latency_ms);
                }
                Mark::Dropped => dropped += 1,
                Mark::TimedOut => timed_out += 1,
                Mark::Refused => refused += 1,
            }
        }
        latencies.sort_by(f64::total_cmp);
        let total = caught + dropped + timed_out + refused;
        ServiceLevel {
            window_ms: self.window.as_millis() as u64,
            sent: self.sends.len() as u64,
            caught,
            dropped,
            timed_out,
            refused,
            refused_total: self.refused_total,
            delivery_rate: (total > 0).then(|| caught as f64 / total as f64),
            p50_ms: percentile(&latencies, 50.0),
            p95_ms: percentile(&latencies, 95.0),
            p99_ms: percentile(&latencies, 99.0),
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn old_entries_leave_the_window() {
        let mut w = Window::new(Duration::from_secs(10));
        let t0 = Instant::now();
        w.sent(t0);
        w.outcome(t0, Mark::TimedOut);
        let t1 = t0 + Duration::from_secs(8);
        w.sent(t1);
        w.outcome(t1, Mark::Caught { latency_ms: 4.0 });
        w.outcome(t1, Mark::Dropped);
        let l = w.level(t1);
        assert_eq!((l.sent, l.caught, l.dropped, l.timed_out), (2, 1, 1, 1));
        assert_eq!(l.delivery_rate, Some(1.0 / 3.0));
        let l = w.level(t0 + Duration::from_secs(15));
        assert_eq!((l.sent, l.timed_out), (1, 0));
        assert_eq!(l.delivery_rate, Some(0.5));
        assert_eq!(l.p99_ms, Some(4.0));
        assert_eq!(w.level(t0 + Duration::from_secs(30)).delivery_rate, None);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_balls_count_against_the_rate_but_apart_from_losses() {
        let mut w = Window::new(Duration::from_secs(10));
        let t0 = Instant::now();
        w.outcome(t0, Mark::Refused);
        w.outcome(t0, Mark::Refused);
        w.outcome(t0, Mark::Caught { latency_ms: 1.0 });
        w.outcome(t0, Mark::Dropped);
        let l = w.level(t0);
        assert_eq!((l.refused, l.refused_total, l.dropped), (2, 2, 1));
        assert_eq!(l.delivery_rate, Some(0.25));
        assert_eq!(l.delivery_rate_accepted(), Some(0.5));
        let l = w.level(t0 + Duration::from_secs(20));
        assert_eq!(
            (l.refused, l.refused_total),
            (0, 2),
            "the total outlives the window"
        );
    }
}
