//! The LED report a node agent publishes, retained, on `nodes/<node>/leds`:
//! the pattern its two status LEDs show and how each LED is driven, so the
//! dashboard's node tiles draw what the rack's LEDs show (the simulated
//! ones on a laptop rack, the GPIO ones on a Pi). Published on every
//! pattern change and, while balls are caught on the node, at most every
//! 500 ms with the running catch count (each catch blips the green LED).
//! The catches themselves reach the node agent from its own workers on
//! `nodes/<node>/catches` ([`CatchReport`]), not from the rack's whole
//! `balls/caught` stream.

use serde::{Deserialize, Serialize};

/// One LED report of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedReport {
    #[serde(default = "super::default_version")]
    pub v: u32,
    pub node: String,
    /// One more per report since the agent started.
    pub seq: u64,
    /// Wall-clock time of the report (Unix ms).
    pub ts_ms: u64,
    pub pattern: LedPattern,
    pub green: LedMode,
    pub red: LedMode,
    /// Balls caught on this node since the agent started; each blips the
    /// green LED off for a moment ("catch flash").
    pub catches: u64,
}

/// A worker's catches since its previous report, on its node's
/// `nodes/<node>/catches` (volatile, at most every 100 ms and only when
/// there were catches): the node agent blips the green LED for each report
/// and adds `caught` to its count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchReport {
    #[serde(default = "super::default_version")]
    pub v: u32,
    pub worker: String,
    /// Balls caught since the worker's previous report (at least 1).
    pub caught: u64,
}

/// What the two LEDs say, most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedPattern {
    /// The rack's emergency stop is engaged: red blinks fast.
    Estop,
    /// A node-chaos fault is in force on this node: red blinks.
    Chaos,
    /// The broker is unreachable: red on, green off (never seen over MQTT,
    /// shown on the node's `/healthz`).
    BrokerLost,
    /// Publishing: green on, blipping off on each catch; red off.
    Ok,
}

/// How one LED is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedMode {
    Off,
    On,
    /// 1 Hz.
    Blink,
    /// 4 Hz.
    BlinkFast,
}

impl LedPattern {
    /// The pattern for the node's state: the stop first, then a fault in
    /// force, then the broker link.
    pub fn of(connected: bool, fault_active: bool, estop_engaged: bool) -> LedPattern {
        match (estop_engaged, fault_active, connected) {
            (true, _, _) => LedPattern::Estop,
            (_, true, _) => LedPattern::Chaos,
            (_, _, false) => LedPattern::BrokerLost,
            _ => LedPattern::Ok,
        }
    }

    /// Green and red: green shows the broker link whatever else is going
    /// on, red the most important trouble.
    pub fn modes(self, connected: bool) -> (LedMode, LedMode) {
        let green = if connected { LedMode::On } else { LedMode::Off };
        let red = match self {
            LedPattern::Estop => LedMode::BlinkFast,
            LedPattern::Chaos => LedMode::Blink,
            LedPattern::BrokerLost => LedMode::On,
            LedPattern::Ok => LedMode::Off,
        };
        (green, red)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LedPattern::Estop => "estop",
            LedPattern::Chaos => "chaos",
            LedPattern::BrokerLost => "broker-lost",
            LedPattern::Ok => "ok",
        }
    }
}

impl LedMode {
    /// Whether the LED is lit in blink step `step` (one step per 125 ms).
    pub fn lit(self, step: u64) -> bool {
        match self {
            LedMode::Off => false,
            LedMode::On => true,
            LedMode::Blink => (step / 4).is_multiple_of(2),
            LedMode::BlinkFast => step.is_multiple_of(2),
        }
    }

    pub fn blinks(self) -> bool {
        matches!(self, LedMode::Blink | LedMode::BlinkFast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_wins_then_a_fault_then_the_link() {
        assert_eq!(LedPattern::of(true, false, false), LedPattern::Ok);
        assert_eq!(LedPattern::of(false, false, false), LedPattern::BrokerLost);
        assert_eq!(LedPattern::of(false, true, false), LedPattern::Chaos);
        assert_eq!(LedPattern::of(true, true, true), LedPattern::Estop);
        assert_eq!(LedPattern::Chaos.modes(true), (LedMode::On, LedMode::Blink));
        assert_eq!(
            LedPattern::BrokerLost.modes(false),
            (LedMode::Off, LedMode::On)
        );
        let lit: Vec<bool> = (0..8).map(|s| LedMode::Blink.lit(s)).collect();
        assert_eq!(lit, [true, true, true, true, false, false, false, false]);
        assert!(LedMode::BlinkFast.lit(2) && !LedMode::BlinkFast.lit(3));
    }

    #[test]
    fn reports_are_kebab_case_json() {
        let r = LedReport {
            v: 1,
            node: "n1".into(),
            seq: 2,
            ts_ms: 3,
            pattern: LedPattern::BrokerLost,
            green: LedMode::Off,
            red: LedMode::BlinkFast,
            catches: 9,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""pattern":"broker-lost""#), "{json}");
        assert!(json.contains(r#""red":"blink-fast""#), "{json}");
        let back: LedReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
