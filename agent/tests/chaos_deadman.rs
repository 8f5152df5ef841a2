//! The dead-man timer restores the node by itself: after `down_for` with no
//! controller at all, after an agent restart (from the persisted state file),
//! and on a clean agent shutdown.

mod chaos_support;

use std::time::Duration;

use chaos_support::*;
use rackpong_agent::chaos::{ActiveFault, StateFile, Step};
use rackpong_agent::now_ms;
use rackpong_agent::proto::ChaosAction;
use tokio::time::Instant;

#[tokio::test]
async fn dead_man_restores_after_down_for_without_a_controller() {
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("chaos-state.json");
    let broker = broker();
    let mut cfg = config();
    cfg.state_file = Some(state_path.clone());
    let agent = agent(&broker, "pi1", cfg).await;
    {
        let mut ctl = Controller::new(&broker, "pi1").await;
        assert!(
            ctl.send(ctl.command(ChaosAction::StopK3s, 2), SECRET)
                .await
                .accepted
        );
        // Persisted before the ack went out, so a crash from here on is covered.
        let persisted = StateFile::new(Some(state_path.clone())).load().unwrap();
        assert_eq!(persisted.map(|f| f.action), Some(ChaosAction::StopK3s));
        // The controller goes away for good.
    }

    let steps = agent
        .runner
        .wait_for(2, WAIT)
        .await
        .expect("dead-man restore");
    assert_eq!(steps[1].step, Step::StartK3s);
    assert_eq!(steps[0].step, Step::StopK3s);
    let down = steps[1].at - steps[0].at;
    assert!(
        down >= Duration::from_millis(1900),
        "restored after only {down:?}"
    );
    // Once the task has ended, the restore (and its state clearing) is done.
    agent.cancel.cancel();
    tokio::time::timeout(WAIT, agent.handle.task)
        .await
        .unwrap()
        .unwrap();
    let left = StateFile::new(Some(state_path.clone())).load().unwrap();
    assert_eq!(left, None, "no fault recorded after the restore");
    assert_eq!(
        agent.runner.steps().len(),
        2,
        "nothing left to restore at shutdown"
    );
}

fn net_drop(restore_at_ms: u64) -> ActiveFault {
    ActiveFault {
        id: "crashed".into(),
        action: ChaosAction::NetDrop,
        iface: Some("wlan0".into()),
        started_ms: now_ms().saturating_sub(60_000),
        restore_at_ms,
    }
}

#[tokio::test]
async fn restarted_agent_restores_an_overdue_fault_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos-state.json");
    // A previous agent crashed mid net-drop and stayed dead past the deadline.
    StateFile::new(Some(path.clone()))
        .save(&net_drop(now_ms() - 1_000))
        .unwrap();

    let broker = broker();
    let mut cfg = config();
    cfg.state_file = Some(path.clone());
    let agent = agent(&broker, "pi1", cfg).await;
    let steps = agent
        .runner
        .wait_for(1, WAIT)
        .await
        .expect("restore at start");
    assert_eq!(
        steps[0].step,
        Step::LinkUp {
            iface: "wlan0".into()
        }
    );
}

#[tokio::test]
async fn restarted_agent_waits_out_the_rest_of_a_pending_fault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chaos-state.json");
    StateFile::new(Some(path.clone()))
        .save(&net_drop(now_ms() + 2_000))
        .unwrap();

    let broker = broker();
    let mut cfg = config();
    cfg.state_file = Some(path.clone());
    let started = Instant::now();
    let agent = agent(&broker, "pi1", cfg).await;
    let mut ctl = Controller::new(&broker, "pi1").await;
    // While the resumed fault is in force, a new fault is refused.
    let busy = ctl.send(ctl.command(ChaosAction::StopK3s, 5), SECRET).await;
    assert_eq!(code(&busy), "busy");

    let steps = agent
        .runner
        .wait_for(1, WAIT)
        .await
        .expect("dead-man restore");
    assert_eq!(
        steps[0].step,
        Step::LinkUp {
            iface: "wlan0".into()
        }
    );
    assert!(steps[0].at - started >= Duration::from_millis(1500));
}

#[tokio::test]
async fn clean_shutdown_restores_the_node_first() {
    let broker = broker();
    let agent = agent(&broker, "pi1", config()).await;
    let mut ctl = Controller::new(&broker, "pi1").await;
    assert!(
        ctl.send(ctl.command(ChaosAction::NetDrop, 300), SECRET)
            .await
            .accepted
    );
    agent.runner.wait_for(1, WAIT).await.unwrap();

    agent.cancel.cancel();
    tokio::time::timeout(WAIT, agent.handle.task)
        .await
        .unwrap()
        .unwrap();
    let steps = agent.runner.steps();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[1].step,
        Step::LinkUp {
            iface: "eth-test".into()
        }
    );
}

#[tokio::test]
async fn a_failed_restore_is_retried_until_it_works() {
    let broker = broker();
    let mut cfg = config();
    cfg.restore_retry = Duration::from_millis(200);
    let agent = agent(&broker, "pi1", cfg).await;
    let mut ctl = Controller::new(&broker, "pi1").await;
    assert!(
        ctl.send(ctl.command(ChaosAction::StopK3s, 60), SECRET)
            .await
            .accepted
    );
    agent.runner.wait_for(1, WAIT).await.unwrap();

    // The controller's restore fails: it is told so, and the node still
    // comes back by itself without another command.
    agent.runner.fail_next(2);
    let ack = ctl.send(ctl.command(ChaosAction::Restore, 0), SECRET).await;
    assert!(
        !ack.accepted && ack.reason.starts_with("failed:"),
        "{ack:?}"
    );
    let steps = agent
        .runner
        .wait_for(4, WAIT)
        .await
        .expect("retried until it worked");
    let kinds: Vec<_> = steps.iter().map(|r| r.step.clone()).collect();
    assert_eq!(
        kinds,
        [
            Step::StopK3s,
            Step::StartK3s,
            Step::StartK3s,
            Step::StartK3s
        ]
    );
    assert!(steps[2].at - steps[1].at >= Duration::from_millis(150));

    // Restored for good: the next restore has nothing to do.
    let ack = ctl.send(ctl.command(ChaosAction::Restore, 0), SECRET).await;
    assert_eq!(ack.reason, "nothing to restore");
}
