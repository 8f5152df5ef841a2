//! Issue 11: a flood of too-large commands costs one log line per interval,
//! not one per message. The real agent binary (chaos dry-run) gets 20
//! oversized commands over the embedded broker: every one is acked
//! `too-large`, and its log holds a single too-large line.

mod chaos_support;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use chaos_support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rackpong_agent::proto::{ChaosAction, Topics};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rackpong-agent");

#[tokio::test]
async fn twenty_too_large_commands_are_all_acked_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chaos.key");
    std::fs::write(&key, SECRET).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let broker = broker();
    let mut child = Command::new(BIN)
        .args(["node", "--broker", &broker.url(), "--node-name", "tl1"])
        .args(["--http-addr", "127.0.0.1:0", "--interval", "1s"])
        .args(["--enable-chaos", "--chaos-dry-run", "--chaos-secret-file"])
        .arg(&key)
        .env("RACKPONG_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut ctl = Controller::new(&broker, "tl1").await;
    tokio::time::timeout(WAIT, async {
        loop {
            let cmd = ctl.command(ChaosAction::Restore, 0);
            let id = cmd.id.clone();
            ctl.publish(serde_json::to_vec(&cmd.sign(SECRET)).unwrap())
                .await;
            let wait = std::time::Duration::from_millis(300);
            if tokio::time::timeout(wait, ctl.ack_for(&id)).await.is_ok() {
                return;
            }
        }
    })
    .await
    .expect("agent listening");

    let addr = broker.addr();
    let mut opts = MqttOptions::new("flood", addr.ip().to_string(), addr.port());
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (attacker, mut el) = AsyncClient::new(opts, 64);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    for i in 0..20 {
        let big = format!(r#"{{"id":"big-{i}","pad":"{}"}}"#, "x".repeat(20 * 1024));
        attacker
            .publish(
                Topics::default().node_cmd("tl1"),
                QoS::AtLeastOnce,
                false,
                big,
            )
            .await
            .unwrap();
    }
    for i in 0..20 {
        let ack = ctl.ack_for(&format!("big-{i}")).await;
        assert_eq!(code(&ack), "too-large", "{ack:?}");
    }

    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    let lines = log.lines().filter(|l| l.contains("too-large")).count();
    assert_eq!(lines, 1, "{log}");
}
