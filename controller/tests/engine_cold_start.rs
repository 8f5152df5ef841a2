//! A planned scale to zero and back through the engine, against the
//! scripted in-memory rack in paused virtual time: the hold starts when the
//! last worker is gone, the scale-up restores the count before, the first
//! new worker's phases equal the rack's known delays, nothing else fires
//! meanwhile, and the report's cold-start section shows it all.

mod engine_fake;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine_fake::{CREATED, FakeRack, READY, RUNNING, SCHEDULED, SERVING, service};
use rackpong_controller::engine::{Engine, EngineConfig};
use rackpong_controller::journal::event::{Event, FaultOutcome, RunOutcome};
use rackpong_controller::journal::{JOURNAL_FILE, read_journal};
use rackpong_controller::model::Milestone as M;
use rackpong_controller::plan;
use tokio_util::sync::CancellationToken;

/// The fake deletes a scaled-down worker 50 ms after marking it terminating.
const DELETE_MS: u64 = 50;
const HOLD_MS: u64 = 2000;

const PLAN: &str = "\
name: cold
seed: 3
duration: 10s
steady-state: {min-ready-workers: 4, min-delivery-rate: 0.9, window: 2s}
safety: {max-unavailable: 1, allow-zero: true}
recovery-timeout: 5s
faults:
  - {name: to-zero, at: 1s, scale: {to: 0, hold: 2s}}
  - {name: during, at: 2s, pod-kill: {count: 1}}
";

#[tokio::test(start_paused = true)]
async fn a_cold_start_holds_at_zero_then_times_the_first_new_worker() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, inputs) = FakeRack::start(4, 2);
    let p = plan::parse(PLAN, Path::new("cold.yaml")).unwrap();
    let mut cfg = EngineConfig::new(runs.path());
    cfg.settle_timeout = Duration::from_secs(2);
    let probe = service(Arc::new(Mutex::new(Some(1.0))));
    let engine = Engine::new(Arc::new(rack.clone()), probe, p, cfg);
    let summary = engine.run(inputs, CancellationToken::new()).await.unwrap();
    assert_eq!(summary.outcome, RunOutcome::Completed);
    summary.verdict().unwrap();

    let lines = read_journal(&summary.run_dir.join(JOURNAL_FILE))
        .unwrap()
        .lines;
    let injected = lines
        .iter()
        .find_map(|l| match &l.event {
            Event::FaultInjected(f) => Some((f.clone(), l.t_ms)),
            _ => None,
        })
        .unwrap();
    let (f, t0) = injected;
    assert_eq!(f.action, "scale-to-zero");
    assert_eq!((f.replicas_from, f.replicas_to), (Some(6), Some(0)));
    assert_eq!(f.hold_ms, Some(HOLD_MS));
    let ms: Vec<(M, u64)> = lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::Milestone(m) => Some((m.milestone, l.t_ms - t0)),
            _ => None,
        })
        .collect();
    let zero = DELETE_MS;
    let up = zero + HOLD_MS;
    let expect = [
        (M::Detected, 0),
        (M::ZeroReached, zero),
        (M::ScaleUpIssued, up),
        (M::ReplacementCreated, up + CREATED),
        (M::Scheduled, up + SCHEDULED),
        (M::Running, up + RUNNING),
        (M::Ready, up + READY),
        (M::Serving, up + SERVING),
    ];
    assert_eq!(&ms[..expect.len()], &expect, "{ms:?}");
    let (last, restored) = ms[expect.len()];
    assert_eq!(last, M::ServiceRestored);
    assert!(
        (up + SERVING..=up + SERVING + 500).contains(&restored),
        "{ms:?}"
    );
    let ended = lines.iter().find_map(|l| match &l.event {
        Event::FaultEnded { outcome, .. } => Some(*outcome),
        _ => None,
    });
    assert_eq!(ended, Some(FaultOutcome::Recovered));

    // The pod-kill fired while the workers were at zero: refused as planned.
    let refused = lines.iter().find_map(|l| match &l.event {
        Event::FaultRefused { fault, reason, .. } => Some((fault.clone(), reason.clone())),
        _ => None,
    });
    let (fault, reason) = refused.unwrap();
    assert_eq!(fault, "during");
    assert!(reason.contains("planned zero (f1)"), "{reason}");
    // To zero, back to the count before; the rollback finds it restored.
    let calls = rack.calls();
    assert_eq!(&calls[..2], ["scale 0", "scale 6"], "{calls:?}");
    assert!(calls[2..].iter().all(|c| c == "scale 6"), "{calls:?}");

    let report = rackpong_controller::report::load(&summary.run_dir.join(JOURNAL_FILE)).unwrap();
    let c = &report.cold_starts[0];
    assert_eq!(c.fault_id, "f1");
    assert_eq!((c.replicas, c.hold_ms), (Some(6), Some(HOLD_MS)));
    assert_eq!(c.zero_reached_ms, Some(zero));
    assert_eq!(c.at_zero_ms, Some(HOLD_MS));
    assert_eq!(
        (
            c.created_ms,
            c.scheduled_ms,
            c.running_ms,
            c.ready_ms,
            c.serving_ms
        ),
        (
            Some(CREATED),
            Some(SCHEDULED),
            Some(RUNNING),
            Some(READY),
            Some(SERVING)
        )
    );
    assert_eq!(c.cold_start_ms, Some(restored - up));
    let rendered = rackpong_controller::report::render(&report).unwrap();
    assert!(
        rendered.markdown.contains("## Cold starts"),
        "{}",
        rendered.markdown
    );
    assert!(rendered.markdown.contains("refused by the rack"));
    assert!(rendered.html.contains("<h2>Cold starts</h2>"));
    let phases: Vec<&str> = report.faults[0]
        .phases
        .iter()
        .map(|p| p.to.as_str())
        .collect();
    assert_eq!(
        &phases[..3],
        ["detected", "zero-reached", "scale-up-issued"]
    );
}
