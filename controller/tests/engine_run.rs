//! The engine against a scripted in-memory rack, in paused virtual time:
//! complete ordered timelines whose phases equal the rack's known delays,
//! refusals journaled, abort rolls back, SLO and steady-state failures are
//! errors that say which, and a crashed run is rolled back on the next start.

mod engine_fake;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_fake::{FakeRack, service};
use rackpong_controller::engine::{Engine, EngineConfig, EngineError, RunSummary};
use rackpong_controller::journal::event::{
    Event, FaultInjected, FaultOutcome, JournalLine, RunOutcome, RunStarted,
};
use rackpong_controller::journal::{JOURNAL_FILE, Journal, UNFINISHED_MARKER, read_journal};
use rackpong_controller::model::ClusterKind;
use rackpong_controller::model::{FaultKind, Milestone};
use rackpong_controller::plan::{self, Plan};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const PLAN: &str = "\
name: fake
seed: 1
duration: 30s
steady-state: {min-ready-workers: 4, min-delivery-rate: 0.9, window: 2s}
safety: {max-unavailable: 3}
recovery-timeout: 10s
faults:
  - {name: pk, at: 2s, pod-kill: {count: 1, mode: forced}}
  - {name: nk, at: 8s, node-kill: {action: stop-k3s, down-for: 3s}}
  - {name: sc, at: 16s, scale: {min: 7, max: 9}}
";

fn plan(text: &str) -> Plan {
    plan::parse(text, Path::new("test.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

struct Outcome {
    result: Result<RunSummary, EngineError>,
    lines: Vec<JournalLine>,
    calls: Vec<String>,
}

async fn run_with(
    rack: engine_fake::Fake,
    inputs: tokio::sync::mpsc::Receiver<rackpong_controller::engine::Timed>,
    p: Plan,
    rate: Option<f64>,
    runs: &Path,
    cancel: CancellationToken,
) -> Outcome {
    let mut cfg = EngineConfig::new(runs);
    cfg.settle_timeout = Duration::from_secs(2);
    let probe = service(Arc::new(Mutex::new(rate)));
    let engine = Engine::new(Arc::new(rack.clone()), probe, p, cfg);
    let result = engine.run(inputs, cancel).await;
    let dir = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join(JOURNAL_FILE).exists())
        .max()
        .unwrap();
    let lines = read_journal(&dir.join(JOURNAL_FILE)).unwrap().lines;
    Outcome {
        result,
        lines,
        calls: rack.calls(),
    }
}

/// A fault as journaled: its record, injection t_ms, milestones (t_ms), outcome.
type Track = (
    FaultInjected,
    u64,
    Vec<(Milestone, u64)>,
    Option<FaultOutcome>,
);

/// t_ms of each fault's injection and milestones, by fault id.
fn timelines(lines: &[JournalLine]) -> BTreeMap<String, Track> {
    let mut m = BTreeMap::new();
    for l in lines {
        match &l.event {
            Event::FaultInjected(f) => {
                m.insert(f.fault_id.clone(), (f.clone(), l.t_ms, vec![], None));
            }
            Event::Milestone(e) => m
                .get_mut(&e.fault_id)
                .unwrap()
                .2
                .push((e.milestone, l.t_ms)),
            Event::FaultEnded { fault_id, outcome } => {
                m.get_mut(fault_id).unwrap().3 = Some(*outcome)
            }
            _ => {}
        }
    }
    m
}

fn last_event(lines: &[JournalLine]) -> &Event {
    &lines.last().unwrap().event
}

#[tokio::test(start_paused = true)]
async fn a_run_measures_every_fault_exactly_and_cleans_up() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    let o = run_with(
        rack,
        inputs,
        plan(PLAN),
        Some(1.0),
        runs.path(),
        CancellationToken::new(),
    )
    .await;
    let summary = o.result.unwrap();
    assert_eq!(summary.outcome, RunOutcome::Completed);
    summary.verdict().unwrap();
    assert!(
        summary.table().contains("verdict: PASS"),
        "{}",
        summary.table()
    );

    let t = timelines(&o.lines);
    assert_eq!(t.len(), 3, "{t:?}");
    for (id, (f, injected, ms, outcome)) in &t {
        assert_eq!(*outcome, Some(FaultOutcome::Recovered), "{id}");
        let order: Vec<Milestone> = ms.iter().map(|(m, _)| *m).collect();
        assert_eq!(order.first(), Some(&Milestone::Detected), "{id}");
        assert_eq!(order.last(), Some(&Milestone::ServiceRestored), "{id}");
        assert!(order.windows(2).all(|p| p[0] < p[1]), "{id}: {order:?}");
        let rel: BTreeMap<Milestone, u64> = ms.iter().map(|(m, at)| (*m, at - injected)).collect();
        use engine_fake::*;
        let expect: &[(Milestone, u64)] = match f.kind {
            FaultKind::PodKill => &[
                (Milestone::Detected, 0),
                (Milestone::ReplacementCreated, CREATED),
                (Milestone::Scheduled, SCHEDULED),
                (Milestone::Running, RUNNING),
                (Milestone::Ready, READY),
                (Milestone::Serving, SERVING),
            ],
            FaultKind::NodeKill => &[
                (Milestone::Detected, NOT_READY),
                (Milestone::ReplacementCreated, NOT_READY + CREATED),
                (Milestone::Ready, NOT_READY + READY),
                (Milestone::Serving, NOT_READY + SERVING),
            ],
            FaultKind::Scale => &[
                (Milestone::Detected, 0),
                (Milestone::ReplacementCreated, CREATED),
                (Milestone::Ready, READY),
            ],
        };
        for (m, want) in expect {
            assert_eq!(rel.get(m), Some(want), "{id} {m:?}: {rel:?}");
        }
        // Service restored on the first 500 ms sample after serving.
        let serving = rel[&Milestone::Serving];
        let restored = rel[&Milestone::ServiceRestored];
        assert!(
            restored >= serving && restored <= serving + 500,
            "{id}: {rel:?}"
        );
    }
    let nk = t
        .values()
        .find(|v| v.0.kind == FaultKind::NodeKill)
        .unwrap();
    // grace 1 s + readiness 1 s, plus event allowances and the ball budgets.
    let predicted = nk.0.predicted_ms.unwrap();
    assert!((2200..4000).contains(&predicted), "{predicted}");
    let basis = nk.0.predicted_basis.as_deref().unwrap();
    assert!(
        basis.starts_with("detection: node-monitor-grace 1s"),
        "{basis}"
    );
    let budgets: u64 = nk.0.predicted_phases.iter().map(|b| b.ms).sum();
    assert_eq!(budgets, predicted, "the phases add up to the bound");
    assert_eq!(nk.0.targets.len(), 1);
    assert_ne!(nk.0.targets[0], "n1", "n1 is protected");
    // The scale is undone at the end; the node came back by itself.
    let sc = t.values().find(|v| v.0.kind == FaultKind::Scale).unwrap();
    assert_eq!(sc.0.replicas_from, Some(6));
    assert_eq!(o.calls.last().map(String::as_str), Some("scale 6"));
    assert!(
        !o.calls.iter().any(|c| c.starts_with("up ")),
        "{:?}",
        o.calls
    );
    // Steady state checked before and after; the run is closed.
    let steady = o
        .lines
        .iter()
        .filter(|l| matches!(l.event, Event::SteadyState { ok: true, .. }))
        .count();
    assert_eq!(steady, 2);
    assert!(matches!(
        last_event(&o.lines),
        Event::RunEnded {
            outcome: RunOutcome::Completed,
            ..
        }
    ));
    assert!(!summary.run_dir.join(UNFINISHED_MARKER).exists());
    let seqs: Vec<u64> = o.lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (0..o.lines.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn refused_faults_are_journaled_with_their_reason() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    let text = PLAN.replace("action: stop-k3s,", "action: stop-k3s, node: n1,");
    let o = run_with(
        rack,
        inputs,
        plan(&text),
        Some(1.0),
        runs.path(),
        CancellationToken::new(),
    )
    .await;
    let refused: Vec<(String, String)> = o
        .lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::FaultRefused {
                fault,
                reason,
                kind: FaultKind::NodeKill,
                ..
            } => Some((fault.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "nk");
    assert!(
        refused[0].1.contains("protected (k3s server)"),
        "{}",
        refused[0].1
    );
    assert!(!o.calls.iter().any(|c| c.starts_with("down")));
    let s = o.result.unwrap();
    assert_eq!(s.refused.len(), 1);
    s.verdict().unwrap();
}

#[tokio::test(start_paused = true)]
async fn plan_dry_run_decides_but_touches_nothing() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    let text = PLAN.replace("max-unavailable: 3}", "max-unavailable: 3, dry-run: true}");
    let o = run_with(
        rack,
        inputs,
        plan(&text),
        Some(1.0),
        runs.path(),
        CancellationToken::new(),
    )
    .await;
    assert!(o.calls.is_empty(), "{:?}", o.calls);
    let reasons: Vec<String> = o
        .lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::FaultRefused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 3);
    assert!(
        reasons.iter().all(|r| r.starts_with("dry run: would")),
        "{reasons:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn abort_mid_run_rolls_everything_back() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    let cancel = CancellationToken::new();
    *rack.cancel_on_node_down.lock().unwrap() = Some(cancel.clone());
    // Scale first, then the node kill that triggers the abort.
    let text = PLAN.replace("at: 16s, scale", "at: 5s, scale");
    let o = run_with(rack, inputs, plan(&text), Some(1.0), runs.path(), cancel).await;
    let s = o.result.unwrap();
    assert_eq!(s.outcome, RunOutcome::Aborted);
    let e = s.verdict().unwrap_err().to_string();
    assert!(e.contains("cancelled"), "{e}");
    let down = o
        .calls
        .iter()
        .find(|c| c.starts_with("down "))
        .unwrap()
        .replace("down ", "");
    let tail: Vec<&str> = o
        .calls
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(tail, vec!["scale 6".to_string(), format!("up {down}")]);
    let t = timelines(&o.lines);
    let nk = t
        .values()
        .find(|v| v.0.kind == FaultKind::NodeKill)
        .unwrap();
    assert_eq!(nk.3, Some(FaultOutcome::Aborted));
    let rollbacks = o
        .lines
        .iter()
        .filter(|l| matches!(l.event, Event::Rollback { ok: true, .. }))
        .count();
    assert_eq!(rollbacks, 2);
    assert!(matches!(
        last_event(&o.lines),
        Event::RunEnded {
            outcome: RunOutcome::Aborted,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn a_fault_past_its_slo_fails_the_run_naming_it() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    rack.state.lock().unwrap().stuck = true;
    let text = "name: slo\nduration: 5s\nsteady-state: {min-ready-workers: 4, min-delivery-rate: 0.9}\n\
        recovery-timeout: 3s\nfaults:\n  - {name: pk, at: 1s, pod-kill: {count: 1}}\n";
    let o = run_with(
        rack,
        inputs,
        plan(text),
        Some(1.0),
        runs.path(),
        CancellationToken::new(),
    )
    .await;
    let s = o.result.unwrap();
    assert_eq!(s.outcome, RunOutcome::Completed);
    let e = s.verdict().unwrap_err().to_string();
    assert!(
        e.contains("f1 (pod-kill): not recovered within the recovery timeout of 3000 ms"),
        "{e}"
    );
    let t = timelines(&o.lines);
    let (_, injected, ms, outcome) = &t["f1"];
    assert_eq!(*outcome, Some(FaultOutcome::TimedOut));
    assert_eq!(ms.last().map(|m| m.0), Some(Milestone::Running));
    let ended = o
        .lines
        .iter()
        .find(|l| matches!(l.event, Event::FaultEnded { .. }))
        .unwrap();
    assert_eq!(ended.t_ms - injected, 3000, "ended at the deadline");
}

#[tokio::test(start_paused = true)]
async fn no_steady_state_means_no_faults_and_a_failed_run() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    let o = run_with(
        rack,
        inputs,
        plan(PLAN),
        Some(0.5),
        runs.path(),
        CancellationToken::new(),
    )
    .await;
    assert!(o.calls.is_empty());
    let s = o.result.unwrap();
    assert_eq!(s.outcome, RunOutcome::Aborted);
    let e = s.verdict().unwrap_err().to_string();
    assert!(
        e.contains("steady state not met before the first fault"),
        "{e}"
    );
    assert!(e.contains("delivery 50.0% (need 90.0%)"), "{e}");
}

fn crashed_run(runs: &Path, kind: ClusterKind) -> std::path::PathBuf {
    let j = Journal::create(runs, "old", Instant::now()).unwrap();
    j.append(Event::RunStarted(RunStarted {
        run_id: "old".into(),
        started_unix_ms: 0,
        controller_version: "0".into(),
        cluster_kind: kind,
        nodes: vec![],
        plan_name: "old".into(),
        seed: 0,
        plan: serde_json::Value::Null,
        recovery_timeout_ms: 1,
        min_delivery_rate: 0.9,
        detection: Default::default(),
    }))
    .unwrap();
    let inj = |id: &str, kind, node: Option<&str>, from| {
        Event::FaultInjected(FaultInjected {
            fault_id: id.into(),
            fault: id.into(),
            kind,
            action: "x".into(),
            targets: vec![],
            node: node.map(String::from),
            replicas_from: from,
            replicas_to: None,
            predicted_ms: None,
            predicted_basis: None,
            predicted_phases: Vec::new(),
        })
    };
    j.append(inj("f1", FaultKind::Scale, None, Some(5)))
        .unwrap();
    j.append(inj("f2", FaultKind::NodeKill, Some("n3"), None))
        .unwrap();
    j.dir().to_path_buf()
}

#[tokio::test(start_paused = true)]
async fn a_crashed_run_is_rolled_back_on_the_next_start() {
    let runs = tempfile::tempdir().unwrap();
    let old = crashed_run(runs.path(), ClusterKind::K3s);
    let other = crashed_run(runs.path(), ClusterKind::Local);
    let (rack, inputs) = FakeRack::start(4, 2);
    let text = "name: next\nduration: 1s\nsteady-state: {min-ready-workers: 1, min-delivery-rate: 0.5}\n\
        recovery-timeout: 1s\nfaults: []\n";
    let o = run_with(
        rack,
        inputs,
        plan(text),
        Some(1.0),
        runs.path(),
        CancellationToken::new(),
    )
    .await;
    o.result.unwrap().verdict().unwrap();
    assert_eq!(&o.calls[..2], &["scale 5".to_string(), "up n3".to_string()]);
    let lines = read_journal(&old.join(JOURNAL_FILE)).unwrap().lines;
    assert!(matches!(
        last_event(&lines),
        Event::RunEnded {
            outcome: RunOutcome::Crashed,
            ..
        }
    ));
    assert!(!old.join(UNFINISHED_MARKER).exists());
    // A run of another cluster kind is left for a controller of that kind.
    assert!(other.join(UNFINISHED_MARKER).exists());
}

#[tokio::test(start_paused = true)]
async fn mqtt_last_will_detects_a_node_fault_before_the_watch() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    rack.state.lock().unwrap().lwt_after = Some(30);
    let text = "name: lwt\nduration: 4s\nsteady-state: {min-ready-workers: 4, min-delivery-rate: 0.9}\n\
        safety: {max-unavailable: 2}\nrecovery-timeout: 5s\n\
        faults:\n  - {name: nk, at: 1s, node-kill: {action: net-drop, down-for: 1s}}\n";
    let o = run_with(
        rack,
        inputs,
        plan(text),
        Some(1.0),
        runs.path(),
        CancellationToken::new(),
    )
    .await;
    o.result.unwrap().verdict().unwrap();
    let detected = o
        .lines
        .iter()
        .find_map(|l| match &l.event {
            Event::Milestone(m) if m.milestone == Milestone::Detected => Some((l.t_ms, m.clone())),
            _ => None,
        })
        .unwrap();
    let injected = timelines(&o.lines)["f1"].1;
    assert_eq!(detected.0 - injected, 30);
    assert_eq!(detected.1.source, "mqtt-lwt");
    assert_eq!(detected.1.precision_ms, 1500, "1.5 keepalives of 1 s");
    // The status message is journaled for the record.
    assert!(
        o.lines
            .iter()
            .any(|l| matches!(&l.event, Event::Cluster { what, .. } if what == "node-offline"))
    );
}

/// The operator shows `status.runId` before the engine starts: the run
/// directory it names is the one the engine writes, also when another run
/// took the same second (the bug was a second id computed by the engine).
#[tokio::test(start_paused = true)]
async fn the_operators_run_id_names_the_run_directory_the_engine_writes() {
    use rackpong_controller::operator::runner::reserve_run;
    let runs = tempfile::tempdir().unwrap();
    let first = reserve_run(runs.path(), "fake").unwrap();
    let run_id = reserve_run(runs.path(), "fake").unwrap();
    assert_ne!(first, run_id);
    let (rack, inputs) = FakeRack::start(4, 2);
    let mut cfg = EngineConfig::new(runs.path());
    cfg.settle_timeout = Duration::from_secs(2);
    cfg.run_id = Some(run_id.clone());
    let probe = service(Arc::new(Mutex::new(Some(1.0))));
    let engine = Engine::new(Arc::new(rack), probe, plan(PLAN), cfg);
    let summary = engine.run(inputs, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.run_dir, runs.path().join(&run_id));
    let lines = read_journal(&summary.run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines;
    let Event::RunStarted(RunStarted {
        run_id: journaled, ..
    }) = &lines[0].event
    else {
        panic!("first line: {:?}", lines[0].event)
    };
    assert_eq!(journaled, &run_id);
    assert!(
        !runs.path().join(&first).join(JOURNAL_FILE).exists(),
        "the other reserved directory stays empty"
    );
}
