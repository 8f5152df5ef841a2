//! Controller overhead: 1,000 simulated workers' watch events per second
//! through the engine's per-event path (journal line + recovery tracker +
//! journaling the tracker's conclusions), with pod-kill faults open the whole
//! time. Reports event-to-journal latency (from the event's observation
//! instant to its line being written) p50/p99/max, the sustained maximum
//! rate, and memory (VmRSS / VmHWM).
//!
//! `cargo bench -p rackpong-controller --bench core_overhead` (release
//! profile). Results: docs/perf/core.md. Set `CORE_BENCH_SECS` to change the
//! paced phase's length (default 10 s).

use std::time::Duration;

use rackpong_controller::cluster::{ClusterEvent, ClusterEventKind as K, WorkerInfo};
use rackpong_controller::journal::Journal;
use rackpong_controller::journal::event::{Event, FaultInjected};
use rackpong_controller::model::FaultKind;
use rackpong_controller::timing::{Injected, Observation, Output, Precision, Tracker};
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior};

const WORKERS: usize = 1000;
const RATE: u64 = 1000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let secs: u64 = std::env::var("CORE_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        let rss0 = mem("VmRSS");
        let paced = run(RATE, secs * RATE).await;
        report(&format!("paced {RATE}/s for {secs}s"), &paced);
        let (n, took) = throughput(200_000);
        println!(
            "unpaced, same path without the channel: {n} events in {:.2}s = {:.0} events/s ({:.1} µs/event)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            took.as_secs_f64() * 1e6 / n as f64
        );
        println!(
            "memory: VmRSS before {} kB, after {} kB; peak VmHWM {} kB",
            rss0,
            mem("VmRSS"),
            mem("VmHWM")
        );
    });
}

struct Result {
    latencies_us: Vec<u64>,
    elapsed: Duration,
    lines: u64,
    journal_bytes: u64,
}

/// The i-th event of a worker lifecycle cycling over 1,000 workers.
fn event(i: u64) -> K {
    let w = format!("w{}", i % WORKERS as u64);
    let node = format!("n{}", i % 20);
    match (i / WORKERS as u64) % 6 {
        0 => K::WorkerNotReady {
            worker: w,
            node: Some(node),
        },
        1 => K::WorkerReady { worker: w, node },
        2 => K::WorkerTerminating {
            worker: w,
            node: Some(node),
        },
        3 => K::WorkerDeleted {
            worker: w,
            node: Some(node),
        },
        4 => K::WorkerCreated { worker: w },
        _ => K::WorkerScheduled { worker: w, node },
    }
}

/// A journal in a temporary directory and a tracker with 50 open faults.
fn setup() -> (tempfile::TempDir, Journal, Tracker) {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::create(dir.path(), "bench", Instant::now()).unwrap();
    let workers: Vec<WorkerInfo> = (0..WORKERS)
        .map(|i| WorkerInfo {
            name: format!("w{i}"),
            node: Some(format!("n{}", i % 20)),
            ready: true,
            terminating: false,
            chaos_opt_in: true,
        })
        .collect();
    let precision = Precision {
        event_ms: 1,
        lwt_ms: 7500,
        stale_ms: 6000,
        ready_ms: 1000,
        service_ms: 500,
        ball_ms: 10,
    };
    let mut tracker = Tracker::new(precision, 0.9, &workers);
    // 50 pod-kill faults stay open (their victims never come back) so every
    // event is matched against open faults, as during a busy run.
    for f in 0..50 {
        tracker.injected(Injected {
            at: Instant::now(),
            fault: FaultInjected {
                fault_id: format!("f{f}"),
                fault: "bench".into(),
                kind: FaultKind::PodKill,
                action: "forced".into(),
                targets: vec![format!("gone{f}")],
                node: None,
                replicas_from: None,
                replicas_to: None,
                hold_ms: None,
                predicted_ms: None,
                predicted_basis: None,
                predicted_phases: Vec::new(),
            },
            lost_workers: vec![format!("gone{f}")],
        });
    }
    (dir, journal, tracker)
}

/// What the engine does per cluster event: a journal line, the tracker, the
/// tracker's conclusions journaled.
fn process(journal: &Journal, tracker: &mut Tracker, ev: ClusterEvent) {
    journal
        .append_at(
            ev.at,
            Event::Cluster {
                what: "worker-event".into(),
                name: String::new(),
                node: None,
            },
        )
        .unwrap();
    for o in tracker.observe(ev.at, &Observation::Cluster(ev.kind)) {
        if let Output::Milestone { at, event } = o {
            journal.append_at(at, Event::Milestone(event)).unwrap();
        }
    }
}

/// Events per second through [`process`] with no pacing and no channel.
fn throughput(total: u64) -> (u64, Duration) {
    let (_dir, journal, mut tracker) = setup();
    let start = Instant::now();
    for i in 0..total {
        process(
            &journal,
            &mut tracker,
            ClusterEvent {
                at: Instant::now(),
                kind: event(i),
            },
        );
    }
    (total, start.elapsed())
}

/// Events paced at `rate` through a broadcast channel, as a backend sends them.
async fn run(rate: u64, total: u64) -> Result {
    let (_dir, journal, mut tracker) = setup();
    let (tx, mut rx) = broadcast::channel::<ClusterEvent>(4096);
    let producer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        for i in 0..total {
            tick.tick().await;
            let _ = tx.send(ClusterEvent {
                at: Instant::now(),
                kind: event(i),
            });
        }
    });
    let start = Instant::now();
    let mut latencies_us = Vec::with_capacity(total as usize);
    let mut lagged = 0;
    while (latencies_us.len() as u64) < total - lagged {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                lagged += n;
                continue;
            }
            Err(_) => break,
        };
        journal
            .append_at(
                ev.at,
                Event::Cluster {
                    what: "worker-event".into(),
                    name: String::new(),
                    node: None,
                },
            )
            .unwrap();
        latencies_us.push(ev.at.elapsed().as_micros() as u64);
        for o in tracker.observe(ev.at, &Observation::Cluster(ev.kind)) {
            if let Output::Milestone { at, event } = o {
                journal.append_at(at, Event::Milestone(event)).unwrap();
            }
        }
    }
    producer.await.unwrap();
    assert_eq!(lagged, 0, "the consumer fell behind the broadcast channel");
    let elapsed = start.elapsed();
    let lines = journal.next_seq();
    let journal_bytes = std::fs::metadata(journal.dir().join("journal.jsonl"))
        .unwrap()
        .len();
    Result {
        latencies_us,
        elapsed,
        lines,
        journal_bytes,
    }
}

fn report(name: &str, r: &Result) {
    let mut l = r.latencies_us.clone();
    l.sort_unstable();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    println!(
        "{name}: {} events in {:.2}s ({:.0}/s), {} journal lines ({} bytes); event-to-journal latency p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        l.len(),
        r.elapsed.as_secs_f64(),
        l.len() as f64 / r.elapsed.as_secs_f64(),
        r.lines,
        r.journal_bytes,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        l[l.len() - 1]
    );
}

fn mem(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
