//! The ball the workers throw at each other (`POST /v1/balls`) and the
//! `balls/caught` / `balls/dropped` MQTT payloads that end every ball.

use serde::{Deserialize, Serialize};

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
    fn ball_ignores_unknown_fields_and_defaults_hops() {
        let b: Ball =
            serde_json::from_str(r#"{"id":"a","target":"w1","ttl":3,"born_ms":1,"x":1}"#).unwrap();
        assert!(b.hops.is_empty());
        assert!(serde_json::from_str::<Ball>(r#"{"id":"a","ttl":3,"born_ms":1}"#).is_err());
    }
}
