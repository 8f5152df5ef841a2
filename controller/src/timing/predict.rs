//! The predicted recovery bound of a fault, phase by phase, from what the
//! cluster exposes about failure detection ([`Detection`]) and the rack's
//! measured cold start, written beside each measured time; and which phase
//! overran when a fault took longer than predicted.

use crate::model::{Detection, FaultKind, Milestone};
use crate::timing::RESTORE_RUN;

/// Allowance per watch event / MQTT message for delivery and the
/// controller's own scheduling (a loaded machine included).
pub const EVENT_MS: u64 = 100;

/// How many balls it takes, per worker in the rack, before one has been
/// thrown at or addressed to a new worker: each ball touches it with
/// probability ≥ 2 / workers, so `SERVE_BALLS_PER_WORKER × workers` balls all
/// miss it with probability < e^-6 (0.25 %).
pub const SERVE_BALLS_PER_WORKER: u64 = 3;

/// What the prediction needs besides the cluster's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Ball spacing of the factory (ms).
    pub ball_ms: u64,
    /// Workers in the rack (the serving budget grows with them).
    pub workers: u32,
}

/// A fault's predicted recovery: the total bound, how it was computed, and
/// the budget of each phase (the time from the previous milestone to this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub total_ms: u64,
    pub basis: String,
    pub phases: Vec<(Milestone, u64)>,
}

/// The predicted upper bound of a fault's whole recovery, injection to
/// service-restored: detection (event, or the node grace period), eviction
/// (tolerationSeconds), replacement start (the rack's measured cold start
/// plus any known start delay), readiness (probe period × failure
/// threshold), serving (ball spacing × [`SERVE_BALLS_PER_WORKER`] × workers)
/// and the restore rule ([`RESTORE_RUN`] ball spacings). `None` when the
/// cluster exposes too little (no readiness period).
pub fn predict(kind: FaultKind, action: &str, det: &Detection, b: &Budget) -> Option<Prediction> {
    let period = ms(det, "readiness_period_ms", det.readiness_period_s)?;
    let threshold = det.readiness_failure_threshold.unwrap_or(1).max(1);
    let node_down = kind == FaultKind::NodeKill && action != "cordon-drain";
    let mut parts = Vec::new();
    let detect = if node_down {
        let grace = ms(det, "node_monitor_grace_ms", det.node_monitor_grace_s)?;
        parts.push(format!("detection: node-monitor-grace {}", human(grace)));
        grace + EVENT_MS
    } else {
        parts.push("detection: event".to_string());
        EVENT_MS
    };
    let mut evict = EVENT_MS;
    if node_down && let Some(t) = det.unreachable_toleration_s.or(det.not_ready_toleration_s) {
        evict += t * 1000;
        parts.push(format!("eviction: toleration {t}s"));
    }
    let mut start = period * threshold;
    let cold = extra_ms(det, "cold_start_ms");
    let delay = extra_ms(det, "replacement_start_delay_ms").unwrap_or(0);
    match cold {
        Some(c) => {
            start += c + delay;
            parts.push(format!("start: cold start {}", human(c)));
        }
        None => parts.push("start: not measured".to_string()),
    }
    if delay > 0 {
        parts.push(format!("start delay {}", human(delay)));
    }
    parts.push(format!("readiness: period {} x {threshold}", human(period)));
    let serve = b.ball_ms * SERVE_BALLS_PER_WORKER * u64::from(b.workers.max(2));
    parts.push(format!("serving: {}", human(serve)));
    let restore = b.ball_ms * RESTORE_RUN as u64;
    parts.push(format!("restore: {}", human(restore)));
    let phases = vec![
        (Milestone::Detected, detect),
        (Milestone::ReplacementCreated, evict),
        (Milestone::Scheduled, 0),
        (Milestone::Running, 0),
        (Milestone::Ready, start),
        (Milestone::Serving, serve),
        (Milestone::ServiceRestored, restore),
    ];
    Some(Prediction {
        total_ms: phases.iter().map(|(_, d)| d).sum(),
        basis: parts.join(" + "),
        phases,
    })
}

/// The phase that overran: the first reached milestone whose time since
/// injection exceeds the budgets up to it (absent milestones lend their
/// budget to the next). Returns (milestone, measured ms, budget ms), both
/// counted from the injection.
pub fn overrun(
    budget: &[(Milestone, u64)],
    reached: &[(Milestone, u64)],
) -> Option<(Milestone, u64, u64)> {
    reached.iter().find_map(|&(m, at_ms)| {
        let allowed: u64 = budget.iter().filter(|(b, _)| *b <= m).map(|(_, d)| d).sum();
        (at_ms > allowed).then_some((m, at_ms, allowed))
    })
}

fn extra_ms(det: &Detection, key: &str) -> Option<u64> {
    det.extra.get(key).and_then(|v| v.parse().ok())
}

/// A setting in ms: the exact `extra` value when the cluster gives one
/// (the local rack's sub-second settings), else the whole seconds.
fn ms(det: &Detection, extra_key: &str, secs: Option<u64>) -> Option<u64> {
    det.extra
        .get(extra_key)
        .and_then(|v| v.parse().ok())
        .or(secs.map(|s| s * 1000))
}

fn human(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

/// How precise each kind of milestone timestamp is, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    /// Watch events and ball outcomes: stamped on arrival.
    pub event_ms: u64,
    /// The broker publishes a Last Will up to 1.5 keepalives after the death.
    pub lwt_ms: u64,
    /// Stale-health detection lags by up to the stale threshold.
    pub stale_ms: u64,
    /// Ready is quantised by the readiness probe period.
    pub ready_ms: u64,
    /// Service-level samples come this often.
    pub service_ms: u64,
    /// Balls are sent this far apart (the precision of ball-derived
    /// milestones when the actual gap is unknown).
    pub ball_ms: u64,
}

impl Precision {
    /// From the cluster's detection settings and the service sampling period.
    pub fn from_detection(det: &Detection, service_period_ms: u64, stale_ms: u64) -> Self {
        Precision {
            event_ms: 1,
            lwt_ms: ms(det, "mqtt_keepalive_ms", det.mqtt_keepalive_s).map_or(1, |k| k * 3 / 2),
            stale_ms,
            ready_ms: ms(det, "readiness_period_ms", det.readiness_period_s)
                .map_or(1, |p| p.max(1)),
            service_ms: service_period_ms.max(1),
            ball_ms: service_period_ms.max(1),
        }
    }

    /// With the factory's ball rate: balls come `1000 / rate` ms apart.
    pub fn with_ball_rate(mut self, rate_per_s: f64) -> Self {
        if rate_per_s > 0.0 {
            self.ball_ms = ((1000.0 / rate_per_s).ceil() as u64).max(1);
        }
        self
    }
}
