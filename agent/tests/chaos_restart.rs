//! Issue 11 item 2: replays stay refused across an agent restart. The nonces
//! of the current window and the last admitted `issued_ms` are persisted with
//! the dead-man state; a restarted listener on the same state file refuses
//! the same bytes (`replayed`) and anything issued before the previous run's
//! last admitted command (`issued-before-restart`), over a real broker.

mod chaos_support;

use chaos_support::*;
use rackpong_agent::proto::ChaosAction;

#[tokio::test]
async fn the_same_bytes_after_a_restart_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("chaos-state.json");
    let broker = broker();
    let mut cfg = config();
    cfg.state_file = Some(state.clone());
    let first = agent(&broker, "pi7", cfg.clone()).await;
    let mut ctl = Controller::new(&broker, "pi7").await;
    let cmd = ctl.command(ChaosAction::StopK3s, 60);
    let bytes = serde_json::to_vec(&cmd.clone().sign(SECRET)).unwrap();
    ctl.publish(bytes.clone()).await;
    assert!(ctl.ack_for(&cmd.id).await.accepted);

    // systemd restarts the agent (a clean stop restores the node first).
    first.cancel.cancel();
    first.handle.task.await.unwrap();
    let second = agent(&broker, "pi7", cfg).await;

    ctl.publish(bytes).await;
    let replay = ctl.ack_for(&cmd.id).await;
    assert_eq!(code(&replay), "replayed", "{replay:?}");

    let mut older = ctl.command(ChaosAction::StopK3s, 60);
    older.issued_ms = cmd.issued_ms - 1;
    let before = ctl.send(older, SECRET).await;
    assert_eq!(code(&before), "issued-before-restart", "{before:?}");

    let fresh = ctl.command(ChaosAction::StopK3s, 60);
    assert!(ctl.send(fresh, SECRET).await.accepted);
    // The restarted agent ran only the fresh command.
    let steps = second
        .runner
        .wait_for(1, WAIT)
        .await
        .expect("the fresh fault");
    assert_eq!(steps.len(), 1, "{steps:?}");
    second.cancel.cancel();
}
