//! Semantic checks of a parsed plan, each naming the line of its key.

use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::{
    Check, DEFAULT_OPT_IN_LABEL, Dur, RawBalls, RawFault, RawNodeKill, RawPlan, RawPodKill,
    RawSafety, RawScale, RawSteady,
};
use crate::plan::{
    Amount, BallSettings, FaultAction, FaultSpec, Plan, SafetyLimits, Schedule, SteadyState,
};

pub(super) fn validate(raw: RawPlan, check: &mut Check) -> Plan {
    check.require(
        !raw.name.value.trim().is_empty(),
        raw.name.referenced,
        || "name must not be empty".into(),
    );
    let duration = raw.duration.value.0;
    check.require(!duration.is_zero(), raw.duration.referenced, || {
        "duration must be longer than 0s".into()
    });
    let recovery_timeout = raw.recovery_timeout.value.0;
    check.require(
        !recovery_timeout.is_zero(),
        raw.recovery_timeout.referenced,
        || "recovery-timeout must be longer than 0s".into(),
    );
    let steady_state = validate_steady(raw.steady_state, check);
    let safety = validate_safety(raw.safety, check);
    let balls = validate_balls(raw.balls, check);
    let mut faults = Vec::with_capacity(raw.faults.len());
    for f in raw.faults {
        if let Some(spec) = validate_fault(f, duration, &faults, safety.allow_zero, check) {
            faults.push(spec);
        }
    }
    Plan {
        name: raw.name.value,
        seed: raw.seed,
        duration,
        steady_state,
        safety,
        recovery_timeout,
        balls,
        faults,
    }
}

fn validate_steady(raw: RawSteady, check: &mut Check) -> SteadyState {
    let rate = raw.min_delivery_rate.value;
    check.require(
        (0.0..=1.0).contains(&rate),
        raw.min_delivery_rate.referenced,
        || format!("min-delivery-rate must be between 0 and 1 (got {rate})"),
    );
    let window = raw.window.map(|w| {
        check.require(!w.value.0.is_zero(), w.referenced, || {
            "window must be longer than 0s".into()
        });
        w.value.0
    });
    SteadyState {
        min_ready_workers: raw.min_ready_workers.value,
        min_delivery_rate: rate,
        window: window.unwrap_or(Duration::from_secs(5)),
    }
}

fn validate_safety(raw: RawSafety, check: &mut Check) -> SafetyLimits {
    let label = raw
        .opt_in_label
        .map(|l| {
            check.require(is_label(&l.value), l.referenced, || {
                format!("opt-in-label must be key=value (got {:?})", l.value)
            });
            l.value
        })
        .unwrap_or_else(|| DEFAULT_OPT_IN_LABEL.to_string());
    for ns in &raw.namespaces {
        check.require(is_dns_label(&ns.value), ns.referenced, || {
            format!("{:?} is not a valid namespace name", ns.value)
        });
    }
    SafetyLimits {
        max_unavailable: raw.max_unavailable.map_or(1, |m| m.value),
        namespaces: raw.namespaces.into_iter().map(|n| n.value).collect(),
        opt_in_label: label,
        dry_run: raw.dry_run,
        allow_zero: raw.allow_zero.is_some_and(|a| a.value),
    }
}

fn is_label(s: &str) -> bool {
    matches!(s.split_once('='), Some((k, v)) if !k.is_empty() && !v.is_empty() && !v.contains('='))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn validate_balls(raw: RawBalls, check: &mut Check) -> BallSettings {
    let rate = raw.rate_per_s.map(|r| {
        check.require(r.value > 0.0 && r.value <= 10_000.0, r.referenced, || {
            format!(
                "rate-per-s must be above 0 and at most 10000 (got {})",
                r.value
            )
        });
        r.value
    });
    let ttl = raw.ttl.map(|t| {
        check.require(t.value >= 1, t.referenced, || {
            "ttl must be at least 1".into()
        });
        t.value
    });
    let timeout = raw.timeout.map(|t| {
        check.require(!t.value.0.is_zero(), t.referenced, || {
            "timeout must be longer than 0s".into()
        });
        t.value.0
    });
    BallSettings {
        rate_per_s: rate.unwrap_or(20.0),
        // With n workers a ball is caught on each hop with p = 1/(n-1): ttl 48 keeps
        // ttl-spent drops under 0.1 % for 8 workers (16 would drop ~10 %).
        ttl: ttl.unwrap_or(48),
        timeout: timeout.unwrap_or(Duration::from_secs(3)),
    }
}

fn validate_fault(
    raw: RawFault,
    duration: Duration,
    earlier: &[FaultSpec],
    allow_zero: bool,
    check: &mut Check,
) -> Option<FaultSpec> {
    let schedule = validate_schedule(&raw, duration, check);
    let name_loc = raw.name.referenced;
    let name = raw.name.value;
    check.require(!name.trim().is_empty(), name_loc, || {
        "fault name must not be empty".into()
    });
    check.require(!earlier.iter().any(|f| f.name == name), name_loc, || {
        format!("fault name {name:?} is used twice")
    });
    let given = [
        raw.pod_kill.as_ref().map(|s| s.referenced),
        raw.node_kill.as_ref().map(|s| s.referenced),
        raw.scale.as_ref().map(|s| s.referenced),
    ];
    let set: Vec<Location> = given.into_iter().flatten().collect();
    if set.len() != 1 {
        let loc = set.get(1).copied().unwrap_or(name_loc);
        check.at(
            loc,
            format!(
                "fault {name:?} must have exactly one of pod-kill, node-kill or scale (has {})",
                set.len()
            ),
        );
        return None;
    }
    let action = if let Some(pk) = raw.pod_kill {
        validate_pod_kill(pk, check)?
    } else if let Some(nk) = raw.node_kill {
        validate_node_kill(nk.value, check)
    } else {
        validate_scale(raw.scale?, allow_zero, check)?
    };
    Some(FaultSpec {
        name,
        schedule,
        action,
    })
}

fn validate_schedule(raw: &RawFault, duration: Duration, check: &mut Check) -> Schedule {
    let at = raw.at.value.0;
    check.require(at < duration, raw.at.referenced, || {
        format!(
            "at ({}) is not before the end of the run (duration {})",
            humantime::format_duration(at),
            humantime::format_duration(duration)
        )
    });
    let every = raw.every.as_ref().map(|e| {
        check.require(!e.value.0.is_zero(), e.referenced, || {
            "every must be longer than 0s".into()
        });
        e.value.0
    });
    let times = match (&raw.times, every) {
        (Some(t), _) => {
            check.require(t.value >= 1, t.referenced, || {
                "times must be at least 1".into()
            });
            check.require(t.value <= 1 || every.is_some(), t.referenced, || {
                "times above 1 needs every".into()
            });
            t.value
        }
        (None, Some(_)) => u32::MAX,
        (None, None) => 1,
    };
    Schedule {
        at,
        every,
        times,
        jitter: raw.jitter.as_ref().map_or(Duration::ZERO, |j| j.value.0),
    }
}

fn validate_pod_kill(pk: Spanned<RawPodKill>, check: &mut Check) -> Option<FaultAction> {
    let loc = pk.referenced;
    let pk = pk.value;
    let amount = match (pk.count, pk.percent) {
        (Some(c), None) => {
            check.require(c.value >= 1, c.referenced, || {
                "count must be at least 1".into()
            });
            Amount::Count(c.value)
        }
        (None, Some(p)) => {
            check.require((1..=100).contains(&p.value), p.referenced, || {
                format!("percent must be between 1 and 100 (got {})", p.value)
            });
            Amount::Percent(p.value)
        }
        (Some(_), Some(p)) => {
            check.at(p.referenced, "pod-kill takes count or percent, not both");
            return None;
        }
        (None, None) => {
            check.at(loc, "pod-kill needs count or percent");
            return None;
        }
    };
    Some(FaultAction::PodKill {
        amount,
        mode: pk.mode,
    })
}

/// The agents' default `--chaos-max-down`: a longer node fault is refused.
const MAX_DOWN_FOR: Duration = Duration::from_secs(600);

fn validate_node_kill(nk: RawNodeKill, check: &mut Check) -> FaultAction {
    check.require(
        !nk.down_for.value.0.is_zero(),
        nk.down_for.referenced,
        || "down-for must be longer than 0s".into(),
    );
    check.require(
        nk.down_for.value.0 <= MAX_DOWN_FOR,
        nk.down_for.referenced,
        || {
            format!(
                "down-for must be at most {} (the agents refuse longer: their default --chaos-max-down)",
                humantime::format_duration(MAX_DOWN_FOR)
            )
        },
    );
    FaultAction::NodeKill {
        action: nk.action,
        down_for: nk.down_for.value.0,
        node: nk.node,
    }
}

fn validate_scale(
    sc: Spanned<RawScale>,
    allow_zero: bool,
    check: &mut Check,
) -> Option<FaultAction> {
    let loc = sc.referenced;
    let sc = sc.value;
    match (sc.to, sc.min, sc.max) {
        (Some(to), None, None) => validate_scale_to(to, sc.hold, allow_zero, check),
        (Some(to), _, _) => {
            check.at(to.referenced, "scale takes to, or min and max, not both");
            None
        }
        (None, Some(min), Some(max)) => {
            if let Some(h) = &sc.hold {
                check.at(h.referenced, HOLD_ONLY_AT_ZERO);
            }
            check.require(min.value >= 1, min.referenced, || {
                "scale min must be at least 1 (a cold start is `to: 0` with `hold`)".into()
            });
            check.require(max.value >= min.value, max.referenced, || {
                format!("scale max ({}) is below min ({})", max.value, min.value)
            });
            Some(FaultAction::Scale {
                min: min.value,
                max: max.value,
            })
        }
        (None, _, _) => {
            check.at(loc, "scale needs min and max (a random count) or to");
            None
        }
    }
}

const HOLD_ONLY_AT_ZERO: &str = "hold is only for `to: 0` (a cold start)";

/// `to: N`: a fixed count, or with 0 a cold start that must be opted in.
fn validate_scale_to(
    to: Spanned<u32>,
    hold: Option<Spanned<Dur>>,
    allow_zero: bool,
    check: &mut Check,
) -> Option<FaultAction> {
    if to.value > 0 {
        if let Some(h) = &hold {
            check.at(h.referenced, HOLD_ONLY_AT_ZERO);
        }
        return Some(FaultAction::Scale {
            min: to.value,
            max: to.value,
        });
    }
    check.require(allow_zero, to.referenced, || {
        "scale to 0 is planned unavailability: the plan must opt in with safety: {allow-zero: true}"
            .into()
    });
    let Some(hold) = hold else {
        check.at(
            to.referenced,
            "scale to 0 needs hold: how long to stay at zero before scaling back (e.g. hold: 10s)",
        );
        return None;
    };
    check.require(!hold.value.0.is_zero(), hold.referenced, || {
        "hold must be longer than 0s".into()
    });
    Some(FaultAction::ScaleToZero { hold: hold.value.0 })
}
