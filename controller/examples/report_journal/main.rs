//! Writes synthetic run journals (the contract's own types, serialized as the
//! controller does) for the report's fixtures and benchmark:
//!
//! `cargo run -p rackpong-controller --example report_journal -- SCENARIO > journal.jsonl`
//!
//! Scenarios: `clean`, `refused`, `aborted`, `node-lost`, `slow` (the clean
//! plan on a slower failure-detection profile, for compare), and
//! `bench [FAULTS] [NODES] [SECONDS]` (default 500 faults, 20 nodes, 3600 s
//! with health at 1 Hz). Output is deterministic.

use std::collections::BTreeMap;
use std::io::Write;

use rackpong_agent::proto::HealthSample;
use rackpong_agent::proto::health::{BufferStats, LoadAvg, NetRates, Throttle, Usage};
use rackpong_controller::journal::event::*;
use rackpong_controller::model::*;

mod scenarios;

/// A tiny deterministic generator (xorshift64*), so fixtures never change.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Events with their journal times, sorted (stably) before writing.
pub(crate) struct Journal {
    pub(crate) events: Vec<(u64, Event)>,
}

impl Journal {
    pub(crate) fn at(&mut self, t_ms: u64, event: Event) {
        self.events.push((t_ms, event));
    }
    fn write(mut self, out: &mut impl Write) -> std::io::Result<()> {
        self.events.sort_by_key(|(t, _)| *t);
        for (seq, (t_ms, event)) in self.events.into_iter().enumerate() {
            let line = JournalLine {
                v: JOURNAL_VERSION,
                seq: seq as u64,
                t_ms,
                event,
            };
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        }
        Ok(())
    }
}

pub(crate) struct Setup {
    pub(crate) run_id: &'static str,
    pub(crate) nodes: Vec<String>,
    pub(crate) cluster: rackpong_controller::model::ClusterKind,
    pub(crate) profile: &'static str,
    pub(crate) seconds: u64,
    pub(crate) health_every_ms: u64,
}

pub(crate) fn start(s: &Setup, faults: u64) -> Journal {
    let mut plan = serde_json::Map::new();
    plan.insert(
        "name".into(),
        s.run_id.split('-').next().unwrap_or("plan").into(),
    );
    plan.insert("duration".into(), format!("{}s", s.seconds).into());
    plan.insert("faults".into(), faults.into());
    let detection = Detection {
        profile: s.profile.into(),
        node_monitor_grace_s: Some(if s.profile == "default" { 40 } else { 20 }),
        not_ready_toleration_s: Some(if s.profile == "default" { 300 } else { 30 }),
        unreachable_toleration_s: Some(if s.profile == "default" { 300 } else { 30 }),
        readiness_period_s: Some(if s.profile == "default" { 10 } else { 2 }),
        readiness_failure_threshold: Some(3),
        mqtt_keepalive_s: Some(5),
        extra: BTreeMap::from([("k3s_version".into(), "v1.33.4+k3s1".into())]),
    };
    let started = RunStarted {
        run_id: s.run_id.into(),
        started_unix_ms: 1_763_700_000_000,
        controller_version: "0.1.0".into(),
        cluster_kind: s.cluster,
        nodes: s.nodes.clone(),
        plan_name: plan["name"].as_str().unwrap_or_default().into(),
        seed: 42,
        plan: plan.into(),
        recovery_timeout_ms: 60_000,
        min_delivery_rate: 0.95,
        detection,
    };
    Journal {
        events: vec![(0, Event::RunStarted(started))],
    }
}

pub(crate) fn sample(node: &str, i: usize, t_ms: u64, rng: &mut Rng) -> HealthSample {
    let hot = (t_ms / 1000 + i as u64 * 37) % 120 > 105;
    HealthSample {
        v: 1,
        node: node.into(),
        seq: t_ms / 1000,
        ts_ms: 1_763_700_000_000 + t_ms,
        cpu_pct: Some(20.0 + rng.below(600) as f32 / 10.0),
        load: Some(LoadAvg {
            one: 0.5,
            five: 0.4,
            fifteen: 0.3,
        }),
        memory: Some(Usage {
            used_bytes: (1500 + rng.below(500)) << 20,
            total_bytes: 4096 << 20,
        }),
        swap: None,
        disk: Some(Usage {
            used_bytes: 9 << 30,
            total_bytes: 32 << 30,
        }),
        net: Some(NetRates {
            rx_bps: 12_000.0,
            tx_bps: 9_000.0,
        }),
        temp_c: Some(48.0 + i as f32 + rng.below(80) as f32 / 10.0 + if hot { 30.0 } else { 0.0 }),
        throttle: Some(Throttle::from_bits(if hot { 0x0004_0004 } else { 0 })),
        uptime_s: Some(86_400 + t_ms / 1000),
        agent_version: "0.1.0".into(),
        buffer: BufferStats {
            queued: 0,
            capacity: 600,
            dropped: 0,
        },
    }
}

/// Health of every node and the service level, over the whole run.
pub(crate) fn background(j: &mut Journal, s: &Setup, rng: &mut Rng, degraded: &[(u64, u64)]) {
    let end = s.seconds * 1000;
    for t in (0..end).step_by(s.health_every_ms as usize) {
        for (i, node) in s.nodes.iter().enumerate() {
            let sample = sample(node, i, t + 13 * i as u64, rng);
            j.at(t + 13 * i as u64, Event::Health { sample });
        }
    }
    for t in (1000..end).step_by(1000) {
        let bad = degraded.iter().any(|&(a, b)| (a..b).contains(&t));
        let (caught, dropped) = if bad {
            (70, 30)
        } else {
            (99 + rng.below(2), rng.below(2))
        };
        j.at(
            t,
            Event::Service(ServiceLevel {
                window_ms: 5000,
                sent: caught + dropped,
                caught,
                dropped,
                timed_out: 0,
                delivery_rate: Some(caught as f64 / (caught + dropped) as f64),
                p50_ms: Some(4.0 + rng.below(20) as f64 / 10.0),
                p95_ms: Some(9.0 + rng.below(60) as f64 / 10.0 + if bad { 20.0 } else { 0.0 }),
                p99_ms: Some(15.0),
            }),
        );
        if t % 10_000 == 0 {
            let ok = !bad;
            let detail = if ok {
                "8/8 workers ready; delivery ≥ 95 %".into()
            } else {
                format!("delivery {caught} % < 95 %")
            };
            j.at(t, Event::SteadyState { ok, detail });
        }
    }
}

/// One fault: its injection, milestones at offsets, and end.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fault(
    j: &mut Journal,
    id: &str,
    kind: FaultKind,
    action: &str,
    target: &str,
    node: &str,
    t: u64,
    steps: &[(Milestone, u64)],
    end: Option<(FaultOutcome, u64)>,
) {
    let predicted = match kind {
        FaultKind::PodKill => 15_000,
        FaultKind::NodeKill => 75_000,
        FaultKind::Scale => 20_000,
    };
    j.at(
        t,
        Event::FaultInjected(FaultInjected {
            fault_id: id.into(),
            fault: format!("{}-{}", kind_word(kind), action),
            kind,
            action: action.into(),
            targets: vec![target.into()],
            node: Some(node.into()),
            replicas_from: (kind == FaultKind::Scale).then_some(8),
            replicas_to: (kind == FaultKind::Scale).then_some(10),
            predicted_ms: Some(predicted),
            predicted_basis: Some("readiness period × threshold + toleration".into()),
            predicted_phases: Vec::new(),
        }),
    );
    for &(m, dt) in steps {
        let (source, precision_ms) = match m {
            Milestone::Detected => ("mqtt-lwt", 5),
            Milestone::Ready => ("watch-pod", 1000),
            Milestone::ServiceRestored => ("factory", 1000),
            _ => ("watch-pod", 5),
        };
        j.at(
            t + dt,
            Event::Milestone(MilestoneEvent {
                fault_id: id.into(),
                milestone: m,
                source: source.into(),
                precision_ms,
                subject: Some(format!("{target}-new")),
            }),
        );
    }
    if let Some((outcome, dt)) = end {
        j.at(
            t + dt,
            Event::FaultEnded {
                fault_id: id.into(),
                outcome,
            },
        );
    }
}

pub(crate) fn kind_word(k: FaultKind) -> &'static str {
    match k {
        FaultKind::PodKill => "pod-kill",
        FaultKind::NodeKill => "node-kill",
        FaultKind::Scale => "scale",
    }
}

pub(crate) fn steps(scale: u64, all: bool) -> Vec<(Milestone, u64)> {
    use Milestone::*;
    let base = [
        (Detected, 40),
        (ReplacementCreated, 90),
        (Scheduled, 120),
        (Running, 1900),
        (Ready, 4100),
        (Serving, 4350),
        (ServiceRestored, 6000),
    ];
    base.into_iter()
        .filter(|(m, _)| all || !matches!(m, Scheduled))
        .map(|(m, dt)| (m, dt * scale / 100))
        .collect()
}

pub(crate) fn nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("pi{i}")).collect()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let journal = match args.first().map(String::as_str) {
        Some("clean") => scenarios::clean("clean-run", 100, "demo-fast"),
        Some("slow") => scenarios::clean("slow-run", 160, "default"),
        Some("refused") => scenarios::refused(),
        Some("aborted") => scenarios::aborted(),
        Some("node-lost") => scenarios::node_lost(),
        Some("bench") => scenarios::bench(num(1, 500), num(2, 20) as usize, num(3, 3600)),
        _ => {
            eprintln!(
                "usage: report_journal clean|slow|refused|aborted|node-lost|bench [FAULTS NODES SECONDS]"
            );
            std::process::exit(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    journal.write(&mut out)?;
    out.flush()
}
