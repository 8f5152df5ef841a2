//! The real `rackpong-agent worker` process: SIGTERM in the middle of a game
//! ends every ball it accepted exactly once, publishes `offline` and exits 0;
//! a missing worker name fails at start with a clear message.

mod worker_support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rackpong_agent::proto::{Ball, BallCaught, BallDropped};
use tokio::process::Command;
use worker_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_rackpong-agent");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_game_loses_no_ball_and_goes_offline() {
    let broker = broker();
    let dir = tempdir();
    let peers_file = path(&dir, "peers");
    let announce = path(&dir, "w3.addr");
    write_peers(&peers_file, &[]);
    let mut child = Command::new(BIN)
        .args([
            "worker",
            "--name",
            "w3",
            "--node",
            "n3",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--broker",
            &broker.url(),
            "--rack",
            "wp",
            "--peer-refresh",
            "200ms",
        ])
        .args(["--mqtt-buffer", "100000", "--forward-timeout", "10s"])
        .arg("--peers-file")
        .arg(&peers_file)
        .arg("--announce-file")
        .arg(&announce)
        .env("RACKPONG_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (_sub, mut rx) = subscriber(
        &broker,
        "wp",
        &[
            "rackpong/wp/balls/#".into(),
            "rackpong/wp/workers/w3/status".into(),
        ],
    )
    .await;
    let mut status = rx.remove(1);
    let mut balls = rx.remove(0);
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
    .expect("announce file");
    let w3 = format!("http://{addr}");
    let w1 = spawn_worker(args("w1", &broker, "wp", &peers_file)).await;
    let w2 = spawn_worker(args("w2", &broker, "wp", &peers_file)).await;
    write_peers(&peers_file, &[&w1.url, &w2.url, &w3]);
    for u in [&w1.url, &w2.url, &w3] {
        wait_ready(u).await;
    }
    let online = tokio::time::timeout(WAIT, status.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&online.payload[..], b"online");

    // Balls addressed to nobody bounce between all three; SIGTERM w3 halfway.
    let client = http();
    let urls = [&w1.url, &w2.url, &w3];
    let mut accepted = 0usize;
    for i in 0..90 {
        let ball = Ball {
            id: format!("p{i}"),
            target: "nobody".into(),
            ttl: 8,
            born_ms: 0,
            hops: vec![],
        };
        let sent = client
            .post(format!("{}/v1/balls", urls[i % 3]))
            .json(&ball)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().as_u16() == 202) {
            accepted += 1;
        }
        if i == 45 {
            kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
        }
    }
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let offline = tokio::time::timeout(WAIT, status.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&offline.payload[..], b"offline");

    let mut ended: HashMap<String, usize> = HashMap::new();
    tokio::time::timeout(WAIT, async {
        while ended.len() < accepted {
            let p = balls.recv().await.unwrap();
            let id = if p.topic.ends_with("caught") {
                serde_json::from_slice::<BallCaught>(&p.payload)
                    .unwrap()
                    .ball
                    .id
            } else {
                serde_json::from_slice::<BallDropped>(&p.payload)
                    .unwrap()
                    .ball
                    .id
            };
            *ended.entry(id).or_default() += 1;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {accepted} balls ended", ended.len()));
    assert!(ended.values().all(|&c| c == 1), "a ball ended twice");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), balls.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn missing_name_fails_at_start() {
    let out = Command::new(BIN)
        .args(["worker", "--listen", "127.0.0.1:0"])
        .env_remove("POD_NAME")
        .env_remove("RACKPONG_WORKER_NAME")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--name") && err.contains("POD_NAME"), "{err}");
}
