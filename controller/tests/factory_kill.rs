//! A worker process SIGKILLed mid-game (the real `rackpong agent worker`
//! binary, four of them): the survivors stop forwarding to it within about
//! one peer refresh, every ball is still accounted for exactly once (the
//! balls it held time out, and only those), and the game goes on: every ball
//! thrown after the kill and addressed to a survivor is caught.

#[path = "../../agent/tests/worker_support/mod.rs"]
mod worker_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rackpong_agent::proto::Topics;
use rackpong_controller::factory::{
    BallFactory, Entry, FactoryConfig, OutcomeKind, WorkerEndpoint,
};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use worker_support::*;

const REFRESH: Duration = Duration::from_millis(300);

struct Proc {
    name: String,
    url: String,
    child: Child,
}

async fn spawn_proc(name: &str, broker: &str, rack: &str, dir: &Path) -> Proc {
    let announce = dir.join(format!("{name}.addr"));
    let child = Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args([
            "agent",
            "worker",
            "--name",
            name,
            "--node",
            &format!("node-{name}"),
        ])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--broker",
            broker,
            "--rack",
            rack,
        ])
        .arg("--announce-file")
        .arg(&announce)
        .arg("--peers-file")
        .arg(dir.join("peers"))
        .args(["--peer-refresh", "300ms", "--forward-timeout", "10s"])
        .args(["--mqtt-buffer", "100000"])
        .env("RACKPONG_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rackpong agent worker");
    let addr = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(s) = tokio::fs::read_to_string(&announce).await
                && s.ends_with('\n')
            {
                return s.trim().to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("announce file written");
    Proc {
        name: name.into(),
        url: format!("http://{addr}"),
        child,
    }
}

async fn live_peers(url: &str) -> Vec<String> {
    let v: serde_json::Value = http()
        .get(format!("{url}/v1/peers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(v["live"].clone()).unwrap()
}

fn n_of(id: &str) -> u64 {
    id.rsplit('-').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_is_avoided_and_every_ball_is_accounted_for() {
    let broker = broker();
    let dir = tempdir();
    let mut procs = Vec::new();
    write_peers(&dir.path().join("peers"), &[]);
    for i in 1..=4 {
        procs.push(spawn_proc(&format!("w{i}"), &broker.url(), "fk", dir.path()).await);
    }
    let urls: Vec<&str> = procs.iter().map(|p| p.url.as_str()).collect();
    write_peers(&dir.path().join("peers"), &urls);
    for p in &procs {
        wait_ready(&p.url).await;
    }
    let endpoints = |ps: &[Proc]| -> Vec<WorkerEndpoint> {
        ps.iter()
            .map(|p| WorkerEndpoint {
                name: p.name.clone(),
                url: Some(p.url.clone()),
            })
            .collect()
    };
    let (targets_tx, targets) = watch::channel(endpoints(&procs));
    let (link, _) = subscriber(&broker, "factory-fk", &[]).await;
    let cfg = FactoryConfig {
        rate_per_s: 100.0,
        ttl: 32,
        timeout: Duration::from_secs(5),
        window: Duration::from_secs(60),
        seed: 11,
        id_prefix: "k".into(),
        entry: Entry::Direct,
        max_balls: Some(400),
    };
    let cancel = CancellationToken::new();
    let factory = BallFactory::start(cfg, targets, &link, &Topics::new("fk"), cancel.clone());
    let mut outcomes = factory.outcomes();
    let collected = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(o) = outcomes.recv().await {
            all.push(o);
            if all.len() == 400 {
                break;
            }
        }
        all
    });

    // Let the game run, then SIGKILL w4.
    tokio::time::timeout(WAIT, async {
        while factory.totals().caught < 50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("game under way");
    let mut victim = procs.pop().unwrap();
    victim.child.start_kill().unwrap();
    victim.child.wait().await.unwrap();
    let killed_at = Instant::now();
    let sent_at_kill = factory.totals().sent;
    targets_tx.send_replace(endpoints(&procs));
    let sent_at_update = factory.totals().sent;

    // Survivors drop it from their live peers.
    tokio::time::timeout(WAIT, async {
        for p in &procs {
            while live_peers(&p.url).await.contains(&victim.url) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    })
    .await
    .expect("victim excluded");
    let excluded_after = killed_at.elapsed();
    // One refresh (a refused probe), or at once on a failed forward; the
    // slack covers a loaded 2-core CI machine.
    assert!(
        excluded_after <= REFRESH + Duration::from_secs(2),
        "excluded after {excluded_after:?}"
    );
    let mut failures_then = 0.0;
    for p in &procs {
        failures_then += metric(&p.url, "rackpong_worker_forward_failures_total").await;
    }

    tokio::time::timeout(Duration::from_secs(120), factory.settled())
        .await
        .expect("every ball settled");
    let all = tokio::time::timeout(WAIT, collected)
        .await
        .unwrap()
        .unwrap();
    let t = factory.totals();
    assert_eq!((t.sent, t.resolved(), t.pending), (400, 400, 0), "{t:?}");
    assert_eq!(t.unmatched, 0, "{t:?}");
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for o in &all {
        *per_id.entry(o.id.as_str()).or_default() += 1;
        let n = n_of(&o.id);
        match &o.kind {
            // Only balls the victim held when it died are lost.
            OutcomeKind::TimedOut => assert!(n < sent_at_kill, "{o:?}"),
            // Balls addressed to a survivor after the kill are all caught.
            kind if n >= sent_at_update => {
                assert!(matches!(kind, OutcomeKind::Caught { .. }), "{o:?}")
            }
            _ => {}
        }
    }
    assert_eq!(per_id.len(), 400);
    assert!(per_id.values().all(|&c| c == 1));
    assert_eq!(
        all.iter()
            .filter(|o| o.kind == OutcomeKind::TimedOut)
            .count() as u64,
        t.timed_out
    );
    assert!(400 - sent_at_update >= 100, "game went on after the kill");

    // No forward went to the dead worker once it was excluded.
    let mut failures_end = 0.0;
    for p in &procs {
        failures_end += metric(&p.url, "rackpong_worker_forward_failures_total").await;
    }
    assert_eq!(failures_end, failures_then);
    cancel.cancel();
}
