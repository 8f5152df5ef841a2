//! The health sample a node agent publishes, retained, on `nodes/<node>/health`.
//! Any field the node cannot read is `null`; the sample is still published.

use serde::{Deserialize, Serialize};

/// One health sample of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSample {
    #[serde(default = "super::default_version")]
    pub v: u32,
    pub node: String,
    /// Increases by one per sample taken since the agent started (also for
    /// samples buffered while the broker was unreachable).
    pub seq: u64,
    /// Wall-clock time the sample was taken (Unix ms), kept when buffered.
    pub ts_ms: u64,
    /// CPU busy percentage over the last interval, 0–100.
    pub cpu_pct: Option<f32>,
    pub load: Option<LoadAvg>,
    pub memory: Option<Usage>,
    pub swap: Option<Usage>,
    /// Root file system.
    pub disk: Option<Usage>,
    pub net: Option<NetRates>,
    /// SoC temperature in °C.
    pub temp_c: Option<f32>,
    pub throttle: Option<Throttle>,
    pub uptime_s: Option<u64>,
    pub agent_version: String,
    /// Store-and-forward state of the publisher when this sample was taken.
    #[serde(default)]
    pub buffer: BufferStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Used and total bytes of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub used_bytes: u64,
    pub total_bytes: u64,
}

/// Bytes per second summed over non-loopback interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NetRates {
    pub rx_bps: f64,
    pub tx_bps: f64,
}

/// Raspberry Pi firmware throttle flags: "now" and "has occurred since boot".
/// A flag whose source is missing is `null`, not `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Throttle {
    pub under_voltage_now: Option<bool>,
    pub freq_capped_now: Option<bool>,
    pub throttled_now: Option<bool>,
    pub soft_temp_limit_now: Option<bool>,
    pub under_voltage_occurred: Option<bool>,
    pub freq_capped_occurred: Option<bool>,
    pub throttled_occurred: Option<bool>,
    pub soft_temp_limit_occurred: Option<bool>,
    /// The raw `get_throttled` bit field, when it was read.
    pub raw: Option<u32>,
}

impl Throttle {
    /// Decodes the firmware's `get_throttled` bit field.
    pub fn from_bits(bits: u32) -> Self {
        let bit = |n: u32| Some(bits & (1 << n) != 0);
        Self {
            under_voltage_now: bit(0),
            freq_capped_now: bit(1),
            throttled_now: bit(2),
            soft_temp_limit_now: bit(3),
            under_voltage_occurred: bit(16),
            freq_capped_occurred: bit(17),
            throttled_occurred: bit(18),
            soft_temp_limit_occurred: bit(19),
            raw: Some(bits),
        }
    }

    /// True when any "now" flag is set.
    pub fn any_now(&self) -> bool {
        [
            self.under_voltage_now,
            self.freq_capped_now,
            self.throttled_now,
            self.soft_temp_limit_now,
        ]
        .into_iter()
        .any(|f| f == Some(true))
    }
}

/// Counters of the publisher's bounded store-and-forward buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BufferStats {
    /// Samples waiting to be published.
    pub queued: u64,
    /// The bound: at most this many samples are kept while offline.
    pub capacity: u64,
    /// Samples dropped (oldest first) because the buffer was full.
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_bits_decode() {
        let t = Throttle::from_bits(0x50005);
        assert_eq!(t.under_voltage_now, Some(true));
        assert_eq!(t.freq_capped_now, Some(false));
        assert_eq!(t.throttled_now, Some(true));
        assert_eq!(t.under_voltage_occurred, Some(true));
        assert_eq!(t.throttled_occurred, Some(true));
        assert_eq!(t.soft_temp_limit_occurred, Some(false));
        assert!(t.any_now());
        assert!(!Throttle::from_bits(0x50000).any_now());
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_optionals_are_null() {
        let s: HealthSample = serde_json::from_str(
            r#"{"v":1,"node":"pi1","seq":3,"ts_ms":10,"cpu_pct":null,"load":null,
            "memory":null,"swap":null,"disk":null,"net":null,"temp_c":51.5,
            "throttle":null,"uptime_s":5,"agent_version":"0.1.0","future":true}"#,
        )
        .unwrap();
        assert_eq!(s.temp_c, Some(51.5));
        assert_eq!(s.buffer, BufferStats::default());
    }
}
