//! The real `rackpong-agent node` binary with chaos flags: a dry-run agent
//! answers signed commands over the broker and only logs the steps (restoring
//! on SIGTERM); a secret file open to others stops it at start; chaos flags
//! without `--enable-chaos` are not even read.

mod chaos_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chaos_support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rackpong_agent::proto::{ChaosAction, Topics};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_rackpong-agent");

fn secret_file(dir: &Path, mode: u32) -> PathBuf {
    let path = dir.join("chaos.key");
    std::fs::write(&path, SECRET).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn node(broker_url: &str, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["node", "--broker", broker_url, "--node-name", "n1"])
        .args(["--http-addr", "127.0.0.1:0", "--interval", "1s"])
        .args(extra)
        .env("RACKPONG_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn rackpong-agent")
}

async fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    err
}

#[tokio::test]
async fn dry_run_agent_answers_commands_and_only_logs_steps() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), 0o600);
    let broker = broker();
    // A made-up interface: were the dry run broken, `ip` would only fail.
    let mut child = node(
        &broker.url(),
        &[
            "--enable-chaos",
            "--chaos-dry-run",
            "--chaos-uplink",
            "rp-none0",
            "--chaos-secret-file",
            key.to_str().unwrap(),
        ],
    );
    let mut ctl = Controller::new(&broker, "n1").await;
    wait_until_listening(&mut ctl).await;

    let ack = ctl
        .send(ctl.command(ChaosAction::NetDrop, 60), SECRET)
        .await;
    assert!(ack.accepted, "{ack:?}");
    let forged = ctl
        .send(ctl.command(ChaosAction::Reboot, 0), b"forged")
        .await;
    assert_eq!(code(&forged), "bad-signature");

    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let log = stderr_of(&mut child).await;
    assert!(
        log.contains("would run this step") && log.contains("LinkDown"),
        "{log}"
    );
    // SIGTERM restored the node before the agent exited.
    assert!(log.contains("LinkUp"), "{log}");
}

#[tokio::test]
async fn secret_file_open_to_others_stops_the_agent_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), 0o644);
    let broker = broker();
    let mut child = node(
        &broker.url(),
        &[
            "--enable-chaos",
            "--chaos-secret-file",
            key.to_str().unwrap(),
        ],
    );
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
    let log = stderr_of(&mut child).await;
    assert!(
        log.contains("chaos.key") && log.contains("chmod 600"),
        "{log}"
    );
}

#[tokio::test]
async fn chaos_flags_are_not_read_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    // Would be refused if chaos were on: its mere presence must not matter.
    let key = secret_file(dir.path(), 0o644);
    let broker = broker();
    let topics = Topics::default();
    let (_c, mut status) = client(&broker, "watch", &topics.node_status("n1")).await;
    let _child = node(
        &broker.url(),
        &["--chaos-secret-file", key.to_str().unwrap()],
    );
    let online = tokio::time::timeout(WAIT, status.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&online.payload[..], b"online");
}
