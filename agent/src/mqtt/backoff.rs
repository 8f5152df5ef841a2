//! Reconnect pacing: exponential backoff with jitter, because rumqttc retries
//! in a tight loop by itself and a rack of agents must not hammer a broker
//! that just came back. While an outage is short the delay is capped at
//! [`Backoff::SHORT_OUTAGE_CAP`], so a broker restart costs at most about a
//! second more than its own downtime; past [`Backoff::SHORT_OUTAGE`] the
//! delay grows to the full cap.

use std::time::Duration;

use rand::Rng;

/// Delay before the next connection attempt: doubles from `initial` up to
/// `max`, each delay drawn uniformly from [d/2, d] ("equal jitter") so agents
/// that lost the broker together do not come back in lock step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The link's pacing: 250 ms doubling up to 8 s.
    pub const DEFAULT_INITIAL: Duration = Duration::from_millis(250);
    pub const DEFAULT_MAX: Duration = Duration::from_secs(8);
    /// An outage this long or shorter is "short": delays stay under the short cap.
    pub const SHORT_OUTAGE: Duration = Duration::from_secs(30);
    /// Longest delay while the outage is short (jitter stays below it).
    pub const SHORT_OUTAGE_CAP: Duration = Duration::from_secs(1);

    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    /// The delay to wait now; the one after will be about twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = d / 2;
        half + rand::rng().random_range(Duration::ZERO..=d - half)
    }

    /// The delay to wait now, `outage` into an outage: capped at
    /// [`Self::SHORT_OUTAGE_CAP`] (with equal jitter) while the outage is short.
    pub fn next_delay_in(&mut self, outage: Duration) -> Duration {
        let d = self.next_delay();
        if outage <= Self::SHORT_OUTAGE && d > Self::SHORT_OUTAGE_CAP {
            let cap = Self::SHORT_OUTAGE_CAP;
            return cap / 2 + rand::rng().random_range(Duration::ZERO..=cap / 2);
        }
        d
    }

    /// Called once a connection has stayed up long enough to count as healthy
    /// (a connect that drops at once must not restart the backoff).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Self::DEFAULT_INITIAL, Self::DEFAULT_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(800));
        for expected in [100, 200, 400, 800, 800, 800] {
            let d = b.next_delay();
            assert!(
                d >= ms(expected / 2) && d <= ms(expected),
                "{d:?} vs {expected}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= ms(100));
    }

    #[test]
    fn short_outages_stay_under_a_second_and_long_ones_grow() {
        let mut b = Backoff::default();
        for _ in 0..20 {
            assert!(b.next_delay_in(Duration::from_secs(5)) <= Backoff::SHORT_OUTAGE_CAP);
        }
        let long = b.next_delay_in(Backoff::SHORT_OUTAGE + Duration::from_secs(1));
        assert!(long >= Backoff::DEFAULT_MAX / 2, "{long:?}");
    }
}
