//! Timing fidelity of the local rack: a known start delay injected into
//! replacement workers shows up in the measured created → ready phase within
//! ±50 ms. The baseline (the same replacements without delay) is measured in
//! the same rack, so process start, MQTT connect and peer discovery cancel
//! out; what remains is the probe period (10 ms here) and scheduling jitter.

mod local_common;

use std::time::Duration;

use local_common::*;
use rackpong_controller::cluster::{Cluster, KillMode};

/// Kills `old` and returns the created → ready time of its replacement `new`.
async fn replacement_phase(
    rack: &impl Cluster,
    rec: &mut Recorder,
    old: &str,
    new: &str,
) -> Duration {
    rack.kill_worker(old, KillMode::Forced).await.unwrap();
    let ready = rec.worker("ready", new).await;
    ready.at - rec.seen("created", new).unwrap().at
}

/// The median created → ready time of three successive replacements,
/// starting with worker `first_new` (each kills the oldest live worker).
async fn median_phase(rack: &impl Cluster, rec: &mut Recorder, first_new: u32) -> Duration {
    let mut phases = Vec::new();
    for n in first_new..first_new + 3 {
        let (old, new) = (format!("worker-{}", n - 2), format!("worker-{n}"));
        phases.push(replacement_phase(rack, rec, &old, &new).await);
    }
    phases.sort();
    eprintln!("created->ready of worker-{first_new}..+2: {phases:?}");
    phases[1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_start_delay_shows_in_the_created_to_ready_phase() {
    let mut cfg = config(2, 2);
    cfg.probe_period = Duration::from_millis(10);
    cfg.peer_refresh = Duration::from_millis(20);
    let (rack, mut rec) = start(cfg).await;
    rec.ready_workers(2).await;

    let base = median_phase(&rack, &mut rec, 3).await;
    let delay = Duration::from_millis(600);
    rack.set_replacement_start_delay(delay);
    let delayed = median_phase(&rack, &mut rec, 6).await;

    let measured = delayed.as_secs_f64() * 1e3 - base.as_secs_f64() * 1e3;
    let error_ms = measured - delay.as_secs_f64() * 1e3;
    eprintln!(
        "median created->ready: baseline {base:?}, with {delay:?} start delay {delayed:?}; measured delay {measured:.1} ms (error {error_ms:+.1} ms)"
    );
    assert!(
        error_ms.abs() <= 50.0,
        "measured {measured:.1} ms for an injected {delay:?}"
    );
    let detection = rack.detection().await.unwrap();
    assert_eq!(detection.extra["replacement_start_delay_ms"], "600");
}
