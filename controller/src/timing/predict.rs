//! The predicted recovery bound of a fault, from what the cluster exposes
//! about failure detection ([`Detection`]), written beside each measured time.

use crate::model::{Detection, FaultKind};

/// The predicted upper bound (ms) of a fault's recovery up to the new worker
/// being Ready, and how it was computed; `None` when the cluster exposes too
/// little. Image pull and process start are not included (they are not
/// exposed), nor the service-level window.
pub fn predict(kind: FaultKind, action: &str, det: &Detection) -> Option<(u64, String)> {
    let ready = ms(det, "readiness_period_ms", det.readiness_period_s);
    let ready_part = ready.map(|r| (r, format!("readiness period {}", human(r))));
    match (kind, action) {
        (FaultKind::NodeKill, "cordon-drain") | (FaultKind::PodKill, _) | (FaultKind::Scale, _) => {
            let (ms, why) = ready_part?;
            Some((
                ms,
                format!("{why} (probe quantisation; excludes start time)"),
            ))
        }
        (FaultKind::NodeKill, _) => {
            let mut total = 0;
            let mut parts = Vec::new();
            let grace = ms(det, "node_monitor_grace_ms", det.node_monitor_grace_s)?;
            total += grace;
            parts.push(format!("node-monitor-grace {}", human(grace)));
            if let Some(t) = det.unreachable_toleration_s.or(det.not_ready_toleration_s) {
                total += t * 1000;
                parts.push(format!("toleration {t}s"));
            }
            if let Some((ms, why)) = ready_part {
                total += ms;
                parts.push(why);
            }
            Some((total, parts.join(" + ")))
        }
    }
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
        }
    }
}
