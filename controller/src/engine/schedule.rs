//! When each fault of a plan fires: its `at`, repeated `every` up to `times`
//! while inside the run's duration, each shifted by a seeded jitter. The same
//! plan and seed always give the same schedule.

use std::fmt::Write;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::plan::{Amount, FaultAction, Plan};

/// One firing of one fault of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// Offset from the first fault window's start.
    pub at: Duration,
    /// Index in `plan.faults`.
    pub fault: usize,
    /// 1 for the first firing of this fault, then 2, 3, …
    pub occurrence: u32,
}

/// The plan's firings in time order (ties by plan order).
pub fn schedule(plan: &Plan) -> Vec<Scheduled> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut out = Vec::new();
    for (i, f) in plan.faults.iter().enumerate() {
        let s = &f.schedule;
        let mut base = s.at;
        for n in 1..=s.times {
            if base >= plan.duration {
                break;
            }
            let jitter = if s.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_millis(rng.random_range(0..=s.jitter.as_millis() as u64))
            };
            let at = (base + jitter).min(plan.duration.saturating_sub(Duration::from_millis(1)));
            out.push(Scheduled {
                at,
                fault: i,
                occurrence: n,
            });
            match s.every {
                Some(every) => base += every,
                None => break,
            }
        }
    }
    out.sort_by_key(|s| (s.at, s.fault, s.occurrence));
    out
}

/// What `--dry-run` prints: the plan, its limits and every firing, with no
/// cluster touched.
pub fn dry_run_text(plan: &Plan) -> String {
    let mut s = String::new();
    let hd = humantime::format_duration;
    let _ = writeln!(
        s,
        "plan {:?} (seed {}): {} run, recovery SLO {}, balls {}/s ttl {}",
        plan.name,
        plan.seed,
        hd(plan.duration),
        hd(plan.recovery_timeout),
        plan.balls.rate_per_s,
        plan.balls.ttl
    );
    let _ = writeln!(
        s,
        "steady state: ≥ {} ready workers, delivery ≥ {:.0}% over {}",
        plan.steady_state.min_ready_workers,
        plan.steady_state.min_delivery_rate * 100.0,
        hd(plan.steady_state.window)
    );
    let _ = writeln!(
        s,
        "safety: at most {} unavailable, targets labelled {}{}",
        plan.safety.max_unavailable,
        plan.safety.opt_in_label,
        if plan.safety.namespaces.is_empty() {
            String::new()
        } else {
            format!(", namespaces {}", plan.safety.namespaces.join(","))
        }
    );
    let _ = writeln!(s, "would inject (nothing is touched in a dry run):");
    for f in schedule(plan) {
        let spec = &plan.faults[f.fault];
        let _ = writeln!(
            s,
            "  {:>8}  {} #{}: {}",
            format!("{:.1}s", f.at.as_secs_f64()),
            spec.name,
            f.occurrence,
            describe(&spec.action)
        );
    }
    s
}

/// One line saying what a fault action does.
pub fn describe(action: &FaultAction) -> String {
    match action {
        FaultAction::PodKill { amount, mode } => {
            let how_many = match amount {
                Amount::Count(n) => format!("{n} worker(s)"),
                Amount::Percent(p) => format!("{p}% of the ready opted-in workers"),
            };
            format!("pod-kill {how_many}, {}", mode.as_str())
        }
        FaultAction::NodeKill {
            action,
            down_for,
            node,
        } => format!(
            "node-kill {} on {} for {}",
            action.as_str(),
            node.as_deref().unwrap_or("a random eligible node"),
            humantime::format_duration(*down_for)
        ),
        FaultAction::Scale { min, max } if min == max => format!("scale workers to {min}"),
        FaultAction::Scale { min, max } => {
            format!("scale workers to a random count in {min}..={max}")
        }
        FaultAction::ScaleToZero { hold } => format!(
            "scale workers to 0 (a cold start), hold {} once the last is gone, then back to the count before",
            humantime::format_duration(*hold)
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn plan(faults: &str) -> Plan {
        let text = format!(
            "name: s\nseed: 9\nduration: 60s\nsteady-state: {{min-ready-workers: 1, min-delivery-rate: 0.5}}\nrecovery-timeout: 10s\nfaults:\n{faults}"
        );
        crate::plan::parse(&text, Path::new("s.yaml")).unwrap()
    }

    #[test]
    fn repeats_stay_inside_the_run_and_are_sorted() {
        let p = plan(
            "  - {name: a, at: 10s, every: 20s, pod-kill: {count: 1}}\n  - {name: b, at: 15s, scale: {min: 1, max: 2}}\n",
        );
        let s = schedule(&p);
        let got: Vec<(u64, usize, u32)> = s
            .iter()
            .map(|x| (x.at.as_secs(), x.fault, x.occurrence))
            .collect();
        assert_eq!(got, vec![(10, 0, 1), (15, 1, 1), (30, 0, 2), (50, 0, 3)]);
    }

    #[test]
    fn jitter_is_seeded_and_bounded() {
        let p = plan(
            "  - {name: a, at: 10s, every: 10s, times: 4, jitter: 3s, pod-kill: {count: 1}}\n",
        );
        let a = schedule(&p);
        assert_eq!(a, schedule(&p));
        assert_eq!(a.len(), 4);
        for (i, s) in a.iter().enumerate() {
            let base = Duration::from_secs(10 * (i as u64 + 1));
            assert!(
                s.at >= base && s.at <= base + Duration::from_secs(3),
                "{s:?}"
            );
        }
        let mut other = p.clone();
        other.seed = 10;
        assert_ne!(a, schedule(&other));
    }

    #[test]
    fn dry_run_lists_every_firing() {
        let p = crate::plan::default_demo();
        let text = dry_run_text(&p);
        assert!(text.contains("would inject"), "{text}");
        for s in schedule(&p) {
            assert!(text.contains(&p.faults[s.fault].name));
        }
        assert!(
            text.contains("node-kill power-relay on a random eligible node for 10s"),
            "{text}"
        );
    }
}
