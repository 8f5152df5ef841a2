//! The snapshot the page renders: the JSON types of `GET /api/state` and of
//! every SSE `state` event, and the small pure helpers that fill them.

use std::collections::BTreeMap;
use std::time::Duration;

use rackpong_agent::proto::{LedMode, Throttle};
use serde::Serialize;

use super::timeline::StoryView;

/// One finished ball, for the flying-ball lane.
#[derive(Debug, Clone, Serialize)]
pub struct BallView {
    /// Increases per ball seen, so the page animates each ball once.
    pub seq: u64,
    pub id: String,
    pub target: String,
    pub caught: bool,
    /// Drop reason, for dropped balls.
    pub reason: Option<String>,
    /// Workers in order, the catching (or dropping) one last.
    pub hops: Vec<String>,
    /// Wall-clock flight time (born → caught/dropped), when it makes sense.
    pub flight_ms: Option<u64>,
}

/// The JSON the page renders (`GET /api/state`, every SSE `state` event).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub nodes: Vec<NodeView>,
    /// Workers whose node is not known yet.
    pub unplaced_workers: Vec<WorkerView>,
    pub balls: Vec<BallView>,
    pub caught: u64,
    pub dropped: u64,
    pub dropped_by_reason: BTreeMap<String, u64>,
    /// Payloads that did not decode (counted, logged, ignored).
    pub malformed: u64,
    /// Health samples received again (QoS 1 re-sends, retained
    /// re-deliveries), counted once and ignored.
    pub health_duplicates: u64,
    pub progress: Option<ProgressView>,
    pub mqtt_connected: Option<bool>,
    /// The run's faults, service series and verdict, from its journal.
    pub story: Option<StoryView>,
    /// Set while the page shows a recorded run (`rackpong replay`).
    pub replay: Option<ReplayView>,
}

/// What is being replayed.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayView {
    pub run_dir: String,
    pub speed: f64,
    /// Every recorded line has been shown.
    pub done: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    /// `online`, `offline`, `stale` or `unknown`.
    pub status: &'static str,
    pub health_age_ms: Option<u64>,
    pub stale_after_ms: u64,
    pub temp_c: Option<f32>,
    pub cpu_pct: Option<f32>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub throttle: Vec<Badge>,
    /// What the node's status LEDs show, from its `nodes/<node>/leds` report.
    pub leds: Option<LedView>,
    pub workers: Vec<WorkerView>,
}

/// A node's LEDs as its agent last reported them.
#[derive(Debug, Clone, Serialize)]
pub struct LedView {
    /// `ok`, `chaos`, `estop` or `broker-lost`.
    pub pattern: &'static str,
    pub green: LedMode,
    pub red: LedMode,
    /// Balls caught on the node (the page flashes green when it grows).
    pub catches: u64,
}

/// A throttle flag that is set: `now` (red) or only since boot (amber).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Badge {
    pub label: &'static str,
    pub now: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub name: String,
    /// `online`, `offline` or `unknown`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgressView {
    pub phase: &'static str,
    pub elapsed_ms: u64,
    pub duration_ms: u64,
    pub injected: u32,
    pub refused: u32,
    pub open: usize,
    /// How long faults have been open without a break (the running recovery timer).
    pub open_for_ms: Option<u64>,
    pub last: String,
}

pub(super) fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub(super) fn online_word(online: Option<bool>) -> &'static str {
    match online {
        Some(true) => "online",
        Some(false) => "offline",
        None => "unknown",
    }
}

/// The set throttle flags: "now" ones, then "since boot" ones not also set now.
pub fn badges(t: Throttle) -> Vec<Badge> {
    let pairs = [
        (
            "UNDER-VOLTAGE",
            t.under_voltage_now,
            t.under_voltage_occurred,
        ),
        ("FREQ CAPPED", t.freq_capped_now, t.freq_capped_occurred),
        ("THROTTLED", t.throttled_now, t.throttled_occurred),
        (
            "TEMP LIMIT",
            t.soft_temp_limit_now,
            t.soft_temp_limit_occurred,
        ),
    ];
    let mut out = Vec::new();
    for (label, now, ever) in pairs {
        if now == Some(true) {
            out.push(Badge { label, now: true });
        } else if ever == Some(true) {
            out.push(Badge { label, now: false });
        }
    }
    out
}
