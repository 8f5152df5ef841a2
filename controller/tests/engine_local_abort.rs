//! Ctrl-C in the middle of a run on the real local rack: the run is aborted
//! and rolled back (the downed node brought back), the journal ends with
//! `run-ended {outcome: aborted}`, the verdict says why, and no process the
//! rack started is left.

use std::path::Path;
use std::time::Duration;

use rackpong_controller::engine::Progress;
use rackpong_controller::journal::ACTION_NODE_UP;
use rackpong_controller::journal::event::{Event, RunOutcome};
use rackpong_controller::journal::{JOURNAL_FILE, read_journal};
use rackpong_controller::model::FaultKind;
use rackpong_controller::rig::{LocalSetup, run_local};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const PLAN: &str = "\
name: local-abort
seed: 3
duration: 30s
steady-state: {min-ready-workers: 3, min-delivery-rate: 0.8, window: 2s}
safety: {max-unavailable: 3}
recovery-timeout: 25s
faults:
  - {name: nk, at: 1s, node-kill: {action: net-drop, down-for: 20s}}
  - {name: later, at: 25s, pod-kill: {count: 1}}
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
async fn cancelling_mid_run_rolls_back_and_stops_everything() {
    let runs = tempfile::tempdir().unwrap();
    let plan = rackpong_controller::plan::parse(PLAN, Path::new("local-abort.yaml")).unwrap();
    let (tx, mut progress) = watch::channel(Progress::default());
    let setup = LocalSetup {
        nodes: 3,
        workers: 4,
        runs_dir: runs.path().to_path_buf(),
        progress: false,
        exe: Some(env!("CARGO_BIN_EXE_rackpong").into()),
        observe: Some(tx),
        isolation: rackpong_controller::cluster::local::Isolation::Loopback,
        led_catch_flash: true,
    };
    let cancel = CancellationToken::new();
    let run = tokio::spawn(run_local(setup, plan, cancel.clone()));
    // Ctrl-C once the node fault is in.
    tokio::time::timeout(
        Duration::from_secs(60),
        progress.wait_for(|p| p.injected >= 1),
    )
    .await
    .expect("the node fault is injected")
    .expect("progress while running");
    cancel.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(children().is_empty(), "left running: {:?}", children());
    assert_eq!(summary.outcome, RunOutcome::Aborted);
    let e = summary.verdict().unwrap_err().to_string();
    assert!(e.contains("cancelled"), "{e}");

    let lines = read_journal(&summary.run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines;
    let node = lines
        .iter()
        .find_map(|l| match &l.event {
            Event::FaultInjected(f) if f.kind == FaultKind::NodeKill => f.node.clone(),
            _ => None,
        })
        .expect("node fault journaled");
    let rolled_back = lines.iter().any(|l| {
        matches!(&l.event, Event::Rollback { action, ok: true, detail } if action == ACTION_NODE_UP && *detail == node)
    });
    assert!(rolled_back, "no node-up rollback for {node}");
    assert!(
        !lines
            .iter()
            .any(|l| matches!(&l.event, Event::FaultInjected(f) if f.fault == "later"))
    );
    assert!(matches!(
        lines.last().map(|l| &l.event),
        Some(Event::RunEnded {
            outcome: RunOutcome::Aborted,
            ..
        })
    ));
}
