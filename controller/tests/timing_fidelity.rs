//! Fidelity of the whole timing chain with a known absolute delay: the
//! local rack holds every replacement for a fixed "pull" time between its
//! scheduling and its process start (an image pull on k3s), and the
//! scheduled → running phase the engine journals must equal it within
//! ±10 ms — in 10 engine runs in a row on the same rack. What is measured
//! goes rack event stamp → cluster event stream → engine → tracker →
//! journal line. The rack stamps `running` when it creates the process, so
//! what remains beside the delay is the timer's wake-up: on a machine loaded
//! beyond its cores (the shared build machine at load 20+) that alone can
//! exceed 10 ms, so there the upper bound widens to 50 ms and the test says
//! so; a measured phase shorter than the delay fails everywhere.

mod local_common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use local_common::*;
use rackpong_controller::engine::EngineConfig;
use rackpong_controller::journal::event::{Event, RunOutcome};
use rackpong_controller::journal::{JOURNAL_FILE, read_journal};
use rackpong_controller::model::{Milestone, ServiceLevel};
use rackpong_controller::rig::drive;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const PULL: Duration = Duration::from_millis(300);
const TOLERANCE_MS: i64 = 10;
/// The upper bound on a machine loaded beyond its cores.
const LOADED_TOLERANCE_MS: i64 = 50;

/// The 1-minute load average above the number of cores.
fn overloaded() -> Option<f64> {
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    (load > cores).then_some(load)
}
const RUNS: usize = 10;

const PLAN: &str = "\
name: fidelity
seed: 1
duration: 1s
steady-state: {min-ready-workers: 2, min-delivery-rate: 0.5, window: 1s}
safety: {max-unavailable: 1}
recovery-timeout: 20s
balls: {rate-per-s: 100}
faults:
  - {name: pk, at: 100ms, pod-kill: {count: 1, mode: forced}}
";

/// The service is not what this test measures: always good.
fn good_service() -> ServiceLevel {
    ServiceLevel {
        window_ms: 1000,
        sent: 100,
        caught: 100,
        dropped: 0,
        timed_out: 0,
        refused: 0,
        refused_total: 0,
        delivery_rate: Some(1.0),
        p50_ms: Some(1.0),
        p95_ms: Some(1.0),
        p99_ms: Some(1.0),
    }
}

/// The journaled scheduled → running time (ms) of the run's one fault.
fn scheduled_to_running(run_dir: &Path) -> i64 {
    let lines = read_journal(&run_dir.join(JOURNAL_FILE)).unwrap().lines;
    let at = |want: Milestone| {
        lines
            .iter()
            .find_map(|l| match &l.event {
                Event::Milestone(m) if m.milestone == want => Some(l.t_ms as i64),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {want:?} milestone in {}", run_dir.display()))
    };
    at(Milestone::Running) - at(Milestone::Scheduled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_pull_delay_is_measured_within_10_ms_in_10_runs_in_a_row() {
    let runs = tempfile::tempdir().unwrap();
    let (rack, mut rec) = start(config(2, 3)).await;
    rec.ready_workers(3).await;
    rack.set_replacement_pull_delay(PULL);
    let rack = Arc::new(rack);
    let mut senders = Vec::new();
    let mut measured = Vec::new();
    for run in 0..RUNS {
        let plan = rackpong_controller::plan::parse(PLAN, Path::new("fidelity.yaml")).unwrap();
        let cfg = EngineConfig::new(runs.path());
        let (tx, rx) = mpsc::channel(16);
        senders.push(tx);
        let summary = tokio::time::timeout(
            Duration::from_secs(60),
            drive(
                rack.clone(),
                good_service,
                rx,
                plan,
                cfg,
                false,
                CancellationToken::new(),
            ),
        )
        .await
        .expect("run finished")
        .expect("run ran");
        assert_eq!(
            summary.outcome,
            RunOutcome::Completed,
            "run {run}: {}",
            summary.table()
        );
        let phase = scheduled_to_running(&summary.run_dir);
        measured.push(phase);
        let delay = PULL.as_millis() as i64;
        let up = match overloaded() {
            Some(load) => {
                eprintln!(
                    "run {run}: load {load:.1} beyond the cores: bound +{LOADED_TOLERANCE_MS} ms"
                );
                LOADED_TOLERANCE_MS
            }
            None => TOLERANCE_MS,
        };
        assert!(
            phase >= delay - TOLERANCE_MS && phase <= delay + up,
            "run {run}: scheduled -> running {phase} ms for a {PULL:?} delay; so far {measured:?}"
        );
    }
    eprintln!("scheduled -> running over {RUNS} runs: {measured:?} ms (delay {PULL:?})");
}
