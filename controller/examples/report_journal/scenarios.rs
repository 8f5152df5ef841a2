//! The scenarios behind the report's fixture journals and its benchmark.

use rackpong_controller::journal::event::*;
use rackpong_controller::model::*;

use super::{Journal, Rng, Setup, background, fault, nodes, start, steps};

pub(crate) fn clean(run_id: &'static str, scale: u64, profile: &'static str) -> Journal {
    let s = Setup {
        run_id,
        nodes: nodes(4),
        cluster: ClusterKind::K3s,
        profile,
        seconds: 120,
        health_every_ms: 5000,
    };
    let mut j = start(&s, 4);
    let mut rng = Rng(7);
    background(&mut j, &s, &mut rng, &[]);
    let rec = |dt| Some((FaultOutcome::Recovered, dt));
    fault(
        &mut j,
        "f1",
        FaultKind::PodKill,
        "graceful",
        "worker-a",
        "pi2",
        20_000,
        &steps(scale, true),
        rec(6000 * scale / 100),
    );
    fault(
        &mut j,
        "f2",
        FaultKind::PodKill,
        "forced",
        "worker-c",
        "pi3",
        40_000,
        &steps(scale * 9 / 10, true),
        rec(5400 * scale / 100),
    );
    fault(
        &mut j,
        "f3",
        FaultKind::PodKill,
        "forced",
        "worker-d",
        "pi4",
        55_000,
        &steps(scale * 12 / 10, true),
        rec(7200 * scale / 100),
    );
    let node_steps: Vec<_> = steps(scale * 5, true)
        .into_iter()
        .map(|(m, dt)| (m, dt + 3000))
        .collect();
    fault(
        &mut j,
        "f4",
        FaultKind::NodeKill,
        "stop-k3s",
        "pi3",
        "pi3",
        70_000,
        &node_steps,
        rec(33_000 * scale / 100),
    );
    j.at(
        75_000,
        Event::Overlap {
            fault_id: "f4".into(),
            old_worker: "worker-c".into(),
            new_worker: "worker-c-new".into(),
            from_ms: 75_000,
            to_ms: 77_500,
        },
    );
    j.at(
        s.seconds * 1000,
        Event::RunEnded {
            outcome: RunOutcome::Completed,
            reason: None,
        },
    );
    j
}

pub(crate) fn refused() -> Journal {
    let s = Setup {
        run_id: "refused-run",
        nodes: nodes(3),
        cluster: ClusterKind::Local,
        profile: "local",
        seconds: 60,
        health_every_ms: 5000,
    };
    let mut j = start(&s, 3);
    let mut rng = Rng(11);
    background(&mut j, &s, &mut rng, &[]);
    fault(
        &mut j,
        "f1",
        FaultKind::PodKill,
        "forced",
        "worker-b",
        "pi1",
        10_000,
        &steps(80, false),
        Some((FaultOutcome::Recovered, 4800)),
    );
    j.at(
        25_000,
        Event::FaultRefused {
            fault: "node-kill-reboot".into(),
            kind: FaultKind::NodeKill,
            target: Some("pi1".into()),
            reason: "pi1 runs the MQTT broker; node faults never target the broker's node".into(),
        },
    );
    j.at(35_000, Event::FaultRefused {
        fault: "pod-kill-forced".into(),
        kind: FaultKind::PodKill,
        target: None,
        reason: "would leave fewer ready workers than max_unavailable allows (2 < 3) | never the last ready replica".into(),
    });
    fault(
        &mut j,
        "f2",
        FaultKind::Scale,
        "scale",
        "rackpong-worker",
        "pi2",
        40_000,
        &[
            (Milestone::ReplacementCreated, 30),
            (Milestone::Ready, 2100),
            (Milestone::Serving, 1900),
            (Milestone::ServiceRestored, 3000),
        ],
        Some((FaultOutcome::Recovered, 3000)),
    );
    j.at(
        60_000,
        Event::RunEnded {
            outcome: RunOutcome::Completed,
            reason: None,
        },
    );
    j
}

pub(crate) fn aborted() -> Journal {
    let s = Setup {
        run_id: "aborted-run",
        nodes: nodes(3),
        cluster: ClusterKind::Local,
        profile: "local",
        seconds: 30,
        health_every_ms: 2000,
    };
    let mut j = start(&s, 2);
    let mut rng = Rng(13);
    background(&mut j, &s, &mut rng, &[(22_000, 30_000)]);
    fault(
        &mut j,
        "f1",
        FaultKind::PodKill,
        "graceful",
        "worker-a",
        "pi2",
        8_000,
        &steps(100, false),
        Some((FaultOutcome::Recovered, 6000)),
    );
    fault(
        &mut j,
        "f2",
        FaultKind::NodeKill,
        "net-drop",
        "pi3",
        "pi3",
        21_000,
        &steps(100, false)[..2],
        Some((FaultOutcome::Aborted, 9000)),
    );
    j.at(
        30_000,
        Event::Rollback {
            action: "restore node pi3 (net-drop)".into(),
            ok: true,
            detail: "uplink restored".into(),
        },
    );
    j.at(
        30_000,
        Event::Rollback {
            action: "scale rackpong-worker to 8".into(),
            ok: false,
            detail: "timed out waiting for the API".into(),
        },
    );
    j.at(
        30_000,
        Event::RunEnded {
            outcome: RunOutcome::Aborted,
            reason: Some("SIGINT (Ctrl-C)".into()),
        },
    );
    j
}

pub(crate) fn node_lost() -> Journal {
    let s = Setup {
        run_id: "node-lost-run",
        nodes: nodes(4),
        cluster: ClusterKind::K3s,
        profile: "demo-fast",
        seconds: 150,
        health_every_ms: 5000,
    };
    let mut j = start(&s, 1);
    let mut rng = Rng(17);
    background(&mut j, &s, &mut rng, &[(20_000, 140_000)]);
    // pi4 rebooted at 20 s and never came back: its health stops.
    j.events.retain(|(t, e)| {
        !(*t > 20_000 && matches!(e, Event::Health { sample } if sample.node == "pi4"))
    });
    use Milestone::*;
    fault(
        &mut j,
        "f1",
        FaultKind::NodeKill,
        "reboot",
        "pi4",
        "pi4",
        20_000,
        &[(Detected, 5200), (ReplacementCreated, 50_300)],
        Some((FaultOutcome::TimedOut, 60_000)),
    );
    j.at(
        25_300,
        Event::Zombie {
            fault_id: "f1".into(),
            worker: "worker-h".into(),
            node: "pi4".into(),
            from_ms: 25_300,
            to_ms: 31_800,
        },
    );
    j.at(
        150_000,
        Event::RunEnded {
            outcome: RunOutcome::Completed,
            reason: None,
        },
    );
    j
}

pub(crate) fn bench(faults: u64, node_count: usize, seconds: u64) -> Journal {
    let s = Setup {
        run_id: "bench-run",
        nodes: nodes(node_count),
        cluster: ClusterKind::K3s,
        profile: "demo-fast",
        seconds,
        health_every_ms: 1000,
    };
    let mut j = start(&s, faults);
    let mut rng = Rng(99);
    background(&mut j, &s, &mut rng, &[]);
    let gap = (seconds * 1000 - 60_000) / faults.max(1);
    for i in 0..faults {
        let kind = [
            FaultKind::PodKill,
            FaultKind::PodKill,
            FaultKind::NodeKill,
            FaultKind::Scale,
        ][(i % 4) as usize];
        let scale = 60 + rng.below(100);
        let node = &s.nodes[rng.below(node_count as u64) as usize];
        let st = steps(scale, i % 3 != 0);
        let end = st.last().map_or(0, |l| l.1);
        fault(
            &mut j,
            &format!("f{}", i + 1),
            kind,
            "forced",
            &format!("worker-{i}"),
            node,
            30_000 + i * gap,
            &st,
            Some((FaultOutcome::Recovered, end)),
        );
    }
    j.at(
        seconds * 1000,
        Event::RunEnded {
            outcome: RunOutcome::Completed,
            reason: None,
        },
    );
    j
}
