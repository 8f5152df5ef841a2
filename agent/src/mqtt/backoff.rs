//! Reconnect pacing: exponential backoff with jitter, because rumqttc retries
//! in a tight loop by itself and a rack of agents must not hammer a broker
//! that just came back.

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

    /// Called after a successful connect.
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
}
