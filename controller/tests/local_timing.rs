//! Timing fidelity of the local rack: a known start delay injected into
//! replacement workers shows up in the measured created → ready phase within
//! ±50 ms. Two delays are compared, so process start, MQTT connect and peer
//! discovery cancel out; what remains is the probe period (10 ms here) and
//! scheduling jitter. CPU contention only ever adds time, so each delay's
//! phase is the minimum of five replacements: the least disturbed. A replacement
//! without any delay is not the reference: it starts amid the churn of the
//! kill (peers file rewrite, peers dropping the dead worker), which adds
//! tens of ms on a loaded machine, whereas a delayed worker binds after it.

mod local_common;

use std::time::Duration;

use local_common::*;
use rackpong_controller::cluster::local::LocalRack;
use rackpong_controller::cluster::{Cluster, KillMode};

/// Kills `old` and returns the created → ready time of its replacement `new`.
async fn replacement_phase(rack: &LocalRack, rec: &mut Recorder, old: &str, new: &str) -> Duration {
    rack.kill_worker(old, KillMode::Forced).await.unwrap();
    let ready = rec.worker("ready", new).await;
    ready.at - rec.seen("created", new).unwrap().at
}

/// Replacements made per delay.
const SAMPLES: u32 = 5;

/// The shortest created → ready time of [`SAMPLES`] successive replacements
/// started with `delay`, the first being worker `first_new` (each kills the oldest).
async fn fastest_phase(
    rack: &LocalRack,
    rec: &mut Recorder,
    first_new: u32,
    delay: Duration,
) -> Duration {
    rack.set_replacement_start_delay(delay);
    let mut phases = Vec::new();
    for n in first_new..first_new + SAMPLES {
        let (old, new) = (format!("worker-{}", n - 2), format!("worker-{n}"));
        let phase = replacement_phase(rack, rec, &old, &new).await;
        assert!(
            phase >= delay,
            "{new} ready {phase:?} after creation, before its {delay:?} start delay"
        );
        phases.push(phase);
    }
    phases.sort();
    eprintln!("start delay {delay:?}: created->ready {phases:?}");
    phases[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_start_delay_shows_in_the_created_to_ready_phase() {
    let mut cfg = config(2, 2);
    cfg.probe_period = Duration::from_millis(10);
    cfg.peer_refresh = Duration::from_millis(20);
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(2).await;

    let (short, long) = (Duration::from_millis(150), Duration::from_millis(650));
    let reference = fastest_phase(&rack, &mut rec, 3, short).await;
    let delayed = fastest_phase(&rack, &mut rec, 3 + SAMPLES, long).await;

    let injected = (long - short).as_secs_f64() * 1e3;
    let measured = (delayed - reference).as_secs_f64() * 1e3;
    let error_ms = measured - injected;
    eprintln!(
        "injected {injected:.0} ms more start delay, measured {measured:.1} ms more created->ready (error {error_ms:+.1} ms)"
    );
    assert!(
        error_ms.abs() <= 50.0,
        "measured {measured:.1} ms for {injected:.0} ms injected"
    );
    let detection = rack.detection().await.unwrap();
    assert_eq!(detection.extra["replacement_start_delay_ms"], "650");
}
