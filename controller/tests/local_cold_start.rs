//! A planned scale to zero and back on the real local rack through
//! `rig::run_local`, with the real ball factory and worker processes: the
//! last worker's exit is zero reached, the hold is kept, the scale-up brings
//! the count back, the first new worker's created → serving and the service
//! restored are measured, balls thrown at zero are refused (not lost), the
//! report shows the cold start, and nothing is left running.

use std::path::Path;
use std::time::Duration;

use rackpong_controller::journal::event::{Event, FaultOutcome, RunOutcome};
use rackpong_controller::journal::{JOURNAL_FILE, read_journal};
use rackpong_controller::model::Milestone;
use rackpong_controller::rig::{LocalSetup, run_local};
use tokio_util::sync::CancellationToken;

const HOLD_MS: u64 = 1500;

const PLAN: &str = "\
name: local-cold
seed: 11
duration: 4s
steady-state: {min-ready-workers: 2, min-delivery-rate: 0.8, window: 2s}
safety: {max-unavailable: 1, allow-zero: true}
recovery-timeout: 30s
balls: {rate-per-s: 50, timeout: 2s}
faults:
  - {name: cold, at: 1s, scale: {to: 0, hold: 1500ms}}
  - {name: meanwhile, at: 2s, pod-kill: {count: 1}}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_cold_start_is_measured_from_zero_to_service_restored() {
    let runs = tempfile::tempdir().unwrap();
    let plan = rackpong_controller::plan::parse(PLAN, Path::new("local-cold.yaml")).unwrap();
    let setup = LocalSetup {
        nodes: 2,
        workers: 3,
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
    eprintln!("{}", summary.table());
    assert_eq!(
        summary.outcome,
        RunOutcome::Completed,
        "{}",
        summary.table()
    );
    summary.verdict().unwrap();

    let lines = read_journal(&summary.run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines;
    let ms: Vec<(Milestone, u64, String)> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::Milestone(m) => Some((m.milestone, l.t_ms, m.source.clone())),
            _ => None,
        })
        .collect();
    let order: Vec<Milestone> = ms.iter().map(|m| m.0).collect();
    let kept: Vec<Milestone> = Milestone::COLD_START
        .into_iter()
        .filter(|m| order.contains(m))
        .collect();
    assert_eq!(order, kept, "in order, each once: {ms:?}");
    for m in [
        Milestone::ZeroReached,
        Milestone::ScaleUpIssued,
        Milestone::ReplacementCreated,
        Milestone::Running,
        Milestone::Ready,
        Milestone::Serving,
        Milestone::ServiceRestored,
    ] {
        assert!(order.contains(&m), "{m:?} missing: {ms:?}");
    }
    let t = |m: Milestone| ms.iter().find(|x| x.0 == m).unwrap().1;
    let hold = t(Milestone::ScaleUpIssued) - t(Milestone::ZeroReached);
    assert!(
        (HOLD_MS..HOLD_MS + 5000).contains(&hold),
        "held {hold} ms for a {HOLD_MS} ms hold"
    );
    let ended = lines.iter().find_map(|l| match &l.event {
        Event::FaultEnded { outcome, .. } => Some(*outcome),
        _ => None,
    });
    assert_eq!(ended, Some(FaultOutcome::Recovered));
    let refused = lines.iter().find_map(|l| match &l.event {
        Event::FaultRefused { fault, reason, .. } => Some((fault.clone(), reason.clone())),
        _ => None,
    });
    let (fault, reason) = refused.expect("the pod-kill during the hold is refused");
    assert_eq!(fault, "meanwhile");
    assert!(reason.contains("planned zero"), "{reason}");

    let report = rackpong_controller::report::load(&summary.run_dir.join(JOURNAL_FILE)).unwrap();
    let c = &report.cold_starts[0];
    assert_eq!((c.replicas, c.hold_ms), (Some(3), Some(HOLD_MS)));
    assert_eq!(c.outcome, "recovered");
    let cold = c.cold_start_ms.expect("a cold start time");
    assert!(c.serving_ms.unwrap() <= cold, "{c:?}");
    // 50 balls/s for the 1.5 s hold at least: refused by the rack, not lost.
    assert!(c.balls_refused >= 50, "{c:?}");
    let rendered = rackpong_controller::report::render(&report).unwrap();
    assert!(rendered.markdown.contains("## Cold starts"));
}
