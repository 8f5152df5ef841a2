//! A short run (≈20 s) on the real local rack through `rig::run_local`:
//! every injected fault has a complete, ordered timeline ending in
//! service-restored, a refused fault is journaled with its reason, the
//! report renders, and no process the rack started is left afterwards.

use std::path::Path;
use std::time::Duration;

use rackpong_controller::journal::event::{Event, FaultOutcome, RunOutcome};
use rackpong_controller::journal::{JOURNAL_FILE, read_journal};
use rackpong_controller::model::Milestone;
use rackpong_controller::rig::{LocalSetup, run_local};
use tokio_util::sync::CancellationToken;

const PLAN: &str = "\
name: local-short
seed: 5
duration: 9s
steady-state: {min-ready-workers: 3, min-delivery-rate: 0.8, window: 2s}
safety: {max-unavailable: 3}
recovery-timeout: 25s
balls: {rate-per-s: 20, timeout: 2s}
faults:
  - {name: pk, at: 1s, pod-kill: {count: 1, mode: forced}}
  - {name: everything, at: 2s, pod-kill: {percent: 100}}
  - {name: nk, at: 3s, node-kill: {action: stop-k3s, down-for: 3s}}
  - {name: sc, at: 7s, scale: {min: 5, max: 5}}
";

/// Live children of this process (the rack's agents would be ours).
fn children() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...: comm may hold spaces, split after ')'.
            let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.get(1) == Some(&me.as_str()) && fields.first() != Some(&"Z")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_local_run_has_complete_timelines_and_leaves_nothing_running() {
    let runs = tempfile::tempdir().unwrap();
    let plan = rackpong_controller::plan::parse(PLAN, Path::new("local-short.yaml")).unwrap();
    let setup = LocalSetup {
        nodes: 3,
        workers: 4,
        runs_dir: runs.path().to_path_buf(),
        progress: false,
        exe: Some(env!("CARGO_BIN_EXE_rackpong").into()),
        observe: None,
        isolation: rackpong_controller::cluster::local::Isolation::Loopback,
        led_catch_flash: true,
    };
    let run = run_local(setup, plan, CancellationToken::new());
    let summary = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap()
        .unwrap();
    assert!(children().is_empty(), "left running: {:?}", children());
    assert_eq!(
        summary.outcome,
        RunOutcome::Completed,
        "{}",
        summary.table()
    );

    // The run recorded the rack beside its journal, for `rackpong replay`:
    // births, a sample of the balls and their totals.
    let rack = rackpong_controller::journal::rack::read_rack(
        &summary
            .run_dir
            .join(rackpong_controller::journal::rack::RACK_FILE),
    )
    .unwrap();
    use rackpong_controller::journal::rack::RackLine;
    let topic_seen = |suffix: &str| {
        rack.iter()
            .any(|l| matches!(l, RackLine::Mqtt { topic, .. } if topic.ends_with(suffix)))
    };
    assert!(
        topic_seen("/status") && topic_seen("balls/caught"),
        "{rack:?}"
    );
    assert!(
        rack.iter()
            .any(|l| matches!(l, RackLine::Totals { caught, .. } if *caught > 0))
    );

    let lines = read_journal(&summary.run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines;
    let injected: Vec<String> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::FaultInjected(f) => Some(f.fault_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(injected.len(), 3, "{}", summary.table());
    for id in &injected {
        let ms: Vec<(Milestone, u64)> = lines
            .iter()
            .filter_map(|l| match &l.event {
                Event::Milestone(m) if &m.fault_id == id => Some((m.milestone, l.t_ms)),
                _ => None,
            })
            .collect();
        let order: Vec<Milestone> = ms.iter().map(|m| m.0).collect();
        assert_eq!(order.first(), Some(&Milestone::Detected), "{id}: {order:?}");
        assert_eq!(
            order.last(),
            Some(&Milestone::ServiceRestored),
            "{id}: {order:?}"
        );
        assert!(order.windows(2).all(|p| p[0] < p[1]), "{id}: {order:?}");
        assert!(ms.windows(2).all(|p| p[0].1 <= p[1].1), "{id}: {ms:?}");
        let ended = lines.iter().find_map(|l| match &l.event {
            Event::FaultEnded { fault_id, outcome } if fault_id == id => Some(*outcome),
            _ => None,
        });
        assert_eq!(ended, Some(FaultOutcome::Recovered), "{id}");
    }
    let refused: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::FaultRefused { fault, reason, .. } => Some((fault.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "everything");
    assert!(
        refused[0].1.contains("none would be left"),
        "{}",
        refused[0].1
    );
    assert!(matches!(
        lines.last().map(|l| &l.event),
        Some(Event::RunEnded {
            outcome: RunOutcome::Completed,
            ..
        })
    ));
    summary.verdict().unwrap();
}
