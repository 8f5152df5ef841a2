//! Plan loading: the example plans are valid, bad plans fail naming the
//! file, the line and the reason (syntax, types and semantic rules alike).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rackpong_controller::plan::{self, Amount, FaultAction, KillModeSpec, NodeAction, PlanError};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

const GOOD: &str = "\
name: t
seed: 3
duration: 1m
steady-state:
  min-ready-workers: 2
  min-delivery-rate: 0.9
recovery-timeout: 20s
faults:
  - name: pk
    at: 5s
    pod-kill:
      percent: 50
";

fn problems(text: &str) -> Vec<(Option<u64>, String)> {
    match plan::parse(text, Path::new("bad.yaml")) {
        Ok(p) => panic!("plan should be invalid: {p:?}"),
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("bad.yaml:"), "{shown}");
            e.problems()
                .iter()
                .map(|p| (p.line, p.reason.clone()))
                .collect()
        }
    }
}

/// `GOOD` with `from` replaced by `to` (which must be present).
fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replace(from, to)
}

#[test]
fn example_plans_are_valid() {
    for rel in ["plans/demo.yaml", "plans/k3s.yaml", "plans/cold-start.yaml"] {
        let p = plan::load(&repo_file(rel)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.faults.is_empty(), "{rel}");
    }
    let demo = plan::default_demo();
    let kinds: Vec<_> = demo.faults.iter().map(|f| f.kind()).collect();
    use rackpong_controller::model::FaultKind::*;
    for k in [PodKill, NodeKill, Scale] {
        assert!(kinds.contains(&k), "demo plan lacks {k:?}");
    }
}

#[test]
fn good_plan_fills_defaults_and_parses_durations() {
    let p = plan::parse(GOOD, Path::new("good.yaml")).unwrap();
    assert_eq!(p.duration, Duration::from_secs(60));
    assert_eq!(p.recovery_timeout, Duration::from_secs(20));
    assert_eq!(p.steady_state.window, Duration::from_secs(5));
    assert_eq!(p.safety.max_unavailable, 1);
    assert_eq!(p.safety.opt_in_label, "rackpong.dev/chaos=true");
    assert!(!p.safety.dry_run);
    let f = &p.faults[0];
    assert_eq!(f.schedule.at, Duration::from_secs(5));
    assert_eq!(f.schedule.times, 1);
    assert_eq!(
        f.action,
        FaultAction::PodKill {
            amount: Amount::Percent(50),
            mode: KillModeSpec::Graceful
        }
    );
    // The plan serialises for the journal with human durations.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["duration"], "1m");
    assert_eq!(
        json["faults"][0]["action"]["pod-kill"]["amount"]["percent"],
        50
    );
}

#[test]
fn node_kill_and_scale_parse() {
    let text = good_with(
        "    pod-kill:\n      percent: 50\n",
        "    every: 10s\n    times: 2\n    node-kill:\n      action: net-drop\n      down-for: 1500ms\n      node: pi2\n  - name: sc\n    at: 30s\n    scale: {min: 2, max: 5}\n",
    );
    let p = plan::parse(&text, Path::new("x.yaml")).unwrap();
    assert_eq!(
        p.faults[0].action,
        FaultAction::NodeKill {
            action: NodeAction::NetDrop,
            down_for: Duration::from_millis(1500),
            node: Some("pi2".into())
        }
    );
    assert_eq!(p.faults[0].schedule.every, Some(Duration::from_secs(10)));
    assert_eq!(p.faults[0].schedule.times, 2);
    assert_eq!(p.faults[1].action, FaultAction::Scale { min: 2, max: 5 });
}

#[test]
fn percent_over_100_names_the_line_of_the_key() {
    let text = good_with("percent: 50", "percent: 150");
    assert_eq!(
        problems(&text),
        vec![(
            Some(12),
            "percent must be between 1 and 100 (got 150)".to_string()
        )]
    );
}

#[test]
fn bad_duration_names_line_and_reason() {
    let text = good_with("duration: 1m", "duration: soon");
    let p = problems(&text);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, Some(3));
    assert!(p[0].1.contains("invalid duration \"soon\""), "{}", p[0].1);
}

#[test]
fn unknown_key_is_a_syntax_error_with_its_line() {
    let text = good_with("seed: 3", "seed: 3\nsede: 4");
    let p = problems(&text);
    assert_eq!(p[0].0, Some(3), "{p:?}");
    assert!(p[0].1.contains("sede"), "{p:?}");
}

#[test]
fn wrong_type_is_reported_with_its_line() {
    let text = good_with("min-ready-workers: 2", "min-ready-workers: many");
    let p = problems(&text);
    assert_eq!(p[0].0, Some(5), "{p:?}");
}

#[test]
fn semantic_errors_are_all_reported_in_line_order() {
    let text = good_with("min-delivery-rate: 0.9", "min-delivery-rate: 1.5")
        .replace("at: 5s", "at: 2m")
        .replace("recovery-timeout: 20s", "recovery-timeout: 0s");
    let p = problems(&text);
    let lines: Vec<_> = p.iter().map(|(l, _)| l.unwrap()).collect();
    assert_eq!(lines, vec![6, 7, 10], "{p:?}");
    assert!(p[0].1.contains("min-delivery-rate"));
    assert!(p[1].1.contains("recovery-timeout"));
    assert!(p[2].1.contains("not before the end of the run"));
}

#[test]
fn a_fault_needs_exactly_one_action() {
    let text = good_with(
        "    pod-kill:\n",
        "    scale: {min: 1, max: 2}\n    pod-kill:\n",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].1.contains("exactly one of"), "{p:?}");
    let none = good_with("    pod-kill:\n      percent: 50\n", "");
    assert!(problems(&none)[0].1.contains("exactly one of"));
}

#[test]
fn scale_rules_and_duplicate_names() {
    let text = good_with(
        "    pod-kill:\n      percent: 50\n",
        "    scale:\n      min: 0\n      max: 3\n  - name: pk\n    at: 6s\n    scale:\n      min: 4\n      max: 3\n",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 3, "{p:?}");
    assert_eq!(
        p[0],
        (
            Some(12),
            "scale min must be at least 1 (a cold start is `to: 0` with `hold`)".into()
        )
    );
    assert_eq!(p[1].0, Some(14));
    assert!(p[1].1.contains("used twice"));
    assert_eq!(p[2], (Some(18), "scale max (3) is below min (4)".into()));
}

const COLD: &str = "\
name: cold
duration: 1m
steady-state: {min-ready-workers: 2, min-delivery-rate: 0.9}
safety:
  allow-zero: true
recovery-timeout: 20s
faults:
  - name: to-zero
    at: 5s
    scale: {to: 0, hold: 10s}
";

#[test]
fn a_cold_start_parses_when_the_plan_opts_in() {
    let demo = plan::load(&repo_file("plans/cold-start.yaml")).unwrap();
    assert!(demo.safety.allow_zero);
    assert!(
        demo.faults
            .iter()
            .any(|f| matches!(f.action, FaultAction::ScaleToZero { .. }))
    );
    let p = plan::parse(COLD, Path::new("cold.yaml")).unwrap();
    assert!(p.safety.allow_zero);
    assert_eq!(
        p.faults[0].action,
        FaultAction::ScaleToZero {
            hold: Duration::from_secs(10)
        }
    );
    assert_eq!(
        p.faults[0].kind(),
        rackpong_controller::model::FaultKind::Scale
    );
    // `to: N` above zero is a fixed count.
    let fixed = COLD.replace("{to: 0, hold: 10s}", "{to: 3}");
    let p = plan::parse(&fixed, Path::new("c.yaml")).unwrap();
    assert_eq!(p.faults[0].action, FaultAction::Scale { min: 3, max: 3 });
}

#[test]
fn a_cold_start_without_the_opt_in_names_line_and_reason() {
    let text = COLD.replace("safety:\n  allow-zero: true\n", "");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, Some(8));
    assert!(p[0].1.contains("allow-zero: true"), "{p:?}");
    let off = COLD.replace("allow-zero: true", "allow-zero: false");
    assert!(problems(&off)[0].1.contains("planned unavailability"));
}

#[test]
fn bad_cold_starts_name_line_and_reason() {
    let cases = [
        ("{to: 0}", 10, "needs hold"),
        ("{to: 0, hold: 0s}", 10, "hold must be longer than 0s"),
        ("{to: 0, hold: soon}", 10, "invalid duration"),
        ("{to: 2, hold: 5s}", 10, "hold is only for `to: 0`"),
        ("{min: 2, max: 3, hold: 5s}", 10, "hold is only for `to: 0`"),
        ("{to: 0, min: 1, max: 2, hold: 5s}", 10, "not both"),
        ("{max: 2}", 10, "needs min and max"),
        ("{min: 0, max: 2}", 10, "a cold start is `to: 0`"),
    ];
    for (scale, line, why) in cases {
        let text = COLD.replace("{to: 0, hold: 10s}", scale);
        let p = problems(&text);
        assert_eq!(p[0].0, Some(line), "{scale}: {p:?}");
        assert!(p[0].1.contains(why), "{scale}: {p:?}");
    }
}

#[test]
fn down_for_past_the_agents_limit_is_refused() {
    let text = good_with(
        "    pod-kill:\n      percent: 50\n",
        "    node-kill:\n      action: reboot\n      down-for: 11m\n",
    );
    let p = problems(&text);
    assert_eq!(p[0].0, Some(13), "the line of down-for: {p:?}");
    assert!(p[0].1.starts_with("down-for must be at most 10m"), "{p:?}");
    let ok = good_with(
        "    pod-kill:\n      percent: 50\n",
        "    node-kill:\n      action: reboot\n      down-for: 10m\n",
    );
    plan::parse(&ok, Path::new("ok.yaml")).unwrap();
}

#[test]
fn count_and_percent_together_are_refused() {
    let text = good_with("percent: 50", "percent: 50\n      count: 2");
    assert!(problems(&text)[0].1.contains("not both"));
}

#[test]
fn missing_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.yaml");
    let e = plan::load(&path).unwrap_err();
    assert!(matches!(e, PlanError::Read { .. }));
    assert!(e.to_string().contains("nope.yaml"), "{e}");
}

#[test]
fn plan_file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, "name: [unclosed\n").unwrap();
    let e = plan::load(&path).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:1", path.display())),
        "{shown}"
    );
}
