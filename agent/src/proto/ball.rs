//! The ball the workers throw at each other (`POST /v1/balls`), the
//! give-up deadline every throw carries, and the `balls/caught` /
//! `balls/dropped` MQTT payloads that end every ball.
//!
//! The deadline rule (one outcome per accepted ball across stalls and
//! partitions): a sender puts the wall-clock time after which it stops
//! waiting for the `202` in the [`DEADLINE_HEADER`]; it sets it
//! [`CLOCK_SKEW_ALLOWANCE`] before its own give-up. A receiver that reaches
//! a ball after that time refuses it (`408 deadline-passed`) and publishes
//! nothing: the sender has given up and reports the ball itself. This holds
//! while the receiver's clock lags the sender's by less than the allowance
//! (NTP keeps a rack's clocks within milliseconds; a Pi without a real-time
//! clock is wrong until its first NTP sync). A receiver whose clock runs
//! ahead only refuses late balls earlier, and the sender, still waiting, sees
//! the refusal and tries another peer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Request header of `POST /v1/balls`: the sender's deadline, Unix ms.
/// Optional (a ball thrown by hand has none and is never refused as late).
pub const DEADLINE_HEADER: &str = "rackpong-deadline-ms";

/// How much a receiver's clock may lag the sender's before the deadline rule
/// can let a ball end twice: the deadline is set this much (at most half the
/// timeout) before the sender gives up.
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_millis(1000);

/// A sender's give-up deadline (wall clock, Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub u64);

impl Deadline {
    /// The deadline for a sender that gives up after `give_up`: that time
    /// from now, less the clock-skew allowance (at most half of `give_up`).
    pub fn for_give_up(give_up: Duration) -> Deadline {
        let margin = CLOCK_SKEW_ALLOWANCE.min(give_up / 2);
        Deadline(crate::now_ms() + (give_up - margin).as_millis() as u64)
    }

    /// Parses the header value; `None` when it is not a Unix-ms integer.
    pub fn parse(value: &[u8]) -> Option<Deadline> {
        std::str::from_utf8(value)
            .ok()?
            .trim()
            .parse()
            .ok()
            .map(Deadline)
    }

    /// How long ago it passed (at `now_ms`), or `None` if it has not.
    pub fn passed_by(self, now_ms: u64) -> Option<Duration> {
        (now_ms > self.0).then(|| Duration::from_millis(now_ms - self.0))
    }

    /// The header value.
    pub fn header_value(self) -> String {
        self.0.to_string()
    }
}

/// A ball in flight. `target` is the worker name that catches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ball {
    /// Unique per ball (the factory uses `<run>-<n>`).
    pub id: String,
    /// Name of the worker that catches it.
    pub target: String,
    /// Hops left before it is dropped.
    pub ttl: u32,
    /// Wall-clock time the factory threw it (Unix ms).
    pub born_ms: u64,
    /// Every worker that handled it, in order.
    #[serde(default)]
    pub hops: Vec<Hop>,
}

/// One worker's handling of a ball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hop {
    pub worker: String,
    pub node: String,
    /// Wall-clock time the worker received the ball (Unix ms).
    pub at_ms: u64,
}

/// Payload of `balls/caught`: the ball with its whole trail (the catching
/// worker's hop is the last one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BallCaught {
    #[serde(default = "super::default_version")]
    pub v: u32,
    pub ball: Ball,
    pub worker: String,
    pub node: String,
    pub caught_ms: u64,
}

/// Payload of `balls/dropped`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BallDropped {
    #[serde(default = "super::default_version")]
    pub v: u32,
    pub ball: Ball,
    pub worker: String,
    pub node: String,
    pub dropped_ms: u64,
    pub reason: DropReason,
    /// Human-readable detail (e.g. the last forward error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a worker gave up on a ball.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// `ttl` reached 0 before the target was reached.
    TtlSpent,
    /// The worker knows no live peer other than itself.
    NoLivePeer,
    /// Every forward attempt (bounded) failed.
    ForwardFailed,
    /// The worker was shutting down gracefully with the ball in hand.
    Shutdown,
    /// The worker's in-flight limit was reached.
    Overloaded,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::TtlSpent,
        DropReason::NoLivePeer,
        DropReason::ForwardFailed,
        DropReason::Shutdown,
        DropReason::Overloaded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TtlSpent => "ttl-spent",
            DropReason::NoLivePeer => "no-live-peer",
            DropReason::ForwardFailed => "forward-failed",
            DropReason::Shutdown => "shutdown",
            DropReason::Overloaded => "overloaded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_names_match_serde() {
        for r in DropReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }

    #[test]
    fn deadline_leaves_the_skew_allowance_and_parses_back() {
        let before = crate::now_ms();
        let d = Deadline::for_give_up(Duration::from_secs(5));
        assert!(d.0 >= before + 4000 && d.0 <= crate::now_ms() + 4000);
        // A short timeout keeps half of itself.
        let d = Deadline::for_give_up(Duration::from_millis(400));
        assert!(d.0 >= before + 200);
        assert_eq!(Deadline::parse(d.header_value().as_bytes()), Some(d));
        assert_eq!(Deadline::parse(b"soon"), None);
        assert_eq!(Deadline(10).passed_by(9), None);
        assert_eq!(Deadline(10).passed_by(25), Some(Duration::from_millis(15)));
    }

    #[test]
    fn ball_ignores_unknown_fields_and_defaults_hops() {
        let b: Ball =
            serde_json::from_str(r#"{"id":"a","target":"w1","ttl":3,"born_ms":1,"x":1}"#).unwrap();
        assert!(b.hops.is_empty());
        assert!(serde_json::from_str::<Ball>(r#"{"id":"a","ttl":3,"born_ms":1}"#).is_err());
    }
}
