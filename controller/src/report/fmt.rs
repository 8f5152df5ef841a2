//! Text formatting shared by the renderers: fixed, locale-free number formats
//! so that output is byte-identical everywhere.

use std::time::{Duration, UNIX_EPOCH};

use super::model::Report;

/// Milliseconds as seconds with millisecond digits: `1234` → `1.234 s`.
pub fn secs(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// An optional duration; `—` when missing.
pub fn opt_secs(ms: Option<u64>) -> String {
    ms.map_or_else(|| "—".into(), secs)
}

/// Journal time as `+m:ss.mmm` since the run started.
pub fn at(ms: u64) -> String {
    let s = ms / 1000;
    format!("+{}:{:02}.{:03}", s / 60, s % 60, ms % 1000)
}

/// Unix ms as RFC 3339 UTC with milliseconds.
pub fn wall(unix_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(unix_ms)).to_string()
}

pub fn opt_f32(v: Option<f32>, unit: &str, digits: usize) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.digits$}{unit}"))
}

/// A fraction as a percentage with one decimal.
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.1} %", v * 100.0))
}

/// Memory use as `used / total MiB (n %)`.
pub fn memory(used: Option<u64>, total: Option<u64>) -> String {
    match (used, total) {
        (Some(u), Some(t)) if t > 0 => {
            format!(
                "{} / {} MiB ({:.0} %)",
                u >> 20,
                t >> 20,
                u as f64 * 100.0 / t as f64
            )
        }
        (Some(u), _) => format!("{} MiB", u >> 20),
        _ => "—".into(),
    }
}

pub fn opt_u64(v: Option<u64>, unit: &str) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v}{unit}"))
}

/// A comma-separated list; `—` when empty.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "—".into()
    } else {
        items.join(", ")
    }
}

pub fn opt_str(v: Option<&str>) -> String {
    v.map_or_else(|| "—".into(), str::to_owned)
}

/// A throttle summary: `no`, `YES`, with the raw bits when known.
pub fn throttle(now: bool, raw: Option<u32>) -> String {
    let word = if now { "YES" } else { "no" };
    raw.map_or_else(|| word.into(), |r| format!("{word} (0x{r:x})"))
}

/// The run's metadata as (label, value) rows, shared by every renderer.
pub fn run_rows(r: &Report) -> Vec<(String, String)> {
    let m = &r.run;
    let d = &m.detection;
    let reason = m
        .end_reason
        .as_ref()
        .map_or(String::new(), |r| format!(": {r}"));
    let completeness = if r.journal.complete {
        "complete"
    } else {
        "incomplete"
    };
    let mut rows = vec![
        ("Plan", m.plan_name.clone()),
        ("Seed", m.seed.to_string()),
        ("Started (UTC)", wall(m.started_unix_ms)),
        ("Duration", secs(m.duration_ms)),
        ("Outcome", format!("{}{reason}", m.outcome)),
        ("Cluster", m.cluster_kind.clone()),
        (
            "Nodes",
            format!("{} ({})", m.node_count, m.nodes.join(", ")),
        ),
        ("Controller version", m.controller_version.clone()),
        ("Agent versions", list(&m.agent_versions)),
        ("Recovery SLO per fault", secs(m.recovery_timeout_ms)),
        ("Steady-state delivery rate", pct(Some(m.min_delivery_rate))),
        ("Failure-detection profile", d.profile.clone()),
        (
            "Node monitor grace period",
            opt_u64(d.node_monitor_grace_s, " s"),
        ),
        (
            "Not-ready toleration",
            opt_u64(d.not_ready_toleration_s, " s"),
        ),
        (
            "Unreachable toleration",
            opt_u64(d.unreachable_toleration_s, " s"),
        ),
        (
            "Readiness probe period",
            opt_u64(d.readiness_period_s, " s"),
        ),
        (
            "Readiness failure threshold",
            opt_u64(d.readiness_failure_threshold, ""),
        ),
        ("MQTT keepalive", opt_u64(d.mqtt_keepalive_s, " s")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect::<Vec<_>>();
    rows.extend(d.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    rows.push((
        "Journal lines".into(),
        format!("{} ({completeness})", r.journal.lines),
    ));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_fixed() {
        assert_eq!(secs(1234), "1.234 s");
        assert_eq!(secs(5), "0.005 s");
        assert_eq!(at(61_005), "+1:01.005");
        assert_eq!(wall(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            memory(Some(512 << 20), Some(1024 << 20)),
            "512 / 1024 MiB (50 %)"
        );
        assert_eq!(throttle(true, Some(0x50005)), "YES (0x50005)");
    }
}
