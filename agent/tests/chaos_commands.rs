//! Signed node-chaos commands over a real broker: a valid command runs and is
//! acked; forged, replayed, expired, future, wrong-node, malformed and
//! otherwise invalid commands are rejected with their reason and run nothing.

mod chaos_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chaos_support::*;
use rackpong_agent::chaos::Step;
use rackpong_agent::proto::ChaosAction;

#[tokio::test]
async fn valid_command_runs_and_restore_undoes_it() {
    let broker = broker();
    let agent = agent(&broker, "pi2", config()).await;
    let mut ctl = Controller::new(&broker, "pi2").await;

    let ack = ctl
        .send(ctl.command(ChaosAction::StopK3s, 60), SECRET)
        .await;
    assert!(ack.accepted, "{ack:?}");
    assert_eq!(ack.node, "pi2");
    let restore_by = ack
        .restore_by_ms
        .expect("reversible action has a dead-man deadline");
    assert_eq!(restore_by - ack.started_ms.unwrap(), 60_000);
    let steps = agent.runner.wait_for(1, WAIT).await.expect("stop ran");
    assert_eq!(steps[0].step, Step::StopK3s);

    let ack = ctl.send(ctl.command(ChaosAction::Restore, 0), SECRET).await;
    assert!(
        ack.accepted && ack.reason.starts_with("restored stop-k3s"),
        "{ack:?}"
    );
    let steps = agent.runner.wait_for(2, WAIT).await.expect("start ran");
    assert_eq!(steps[1].step, Step::StartK3s);
    assert_eq!(agent.handle.stats.accepted.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn forged_replayed_expired_future_and_wrong_node_are_rejected() {
    let broker = broker();
    let agent = agent(&broker, "pi2", config()).await;
    let mut ctl = Controller::new(&broker, "pi2").await;

    let forged = ctl
        .send(ctl.command(ChaosAction::StopK3s, 5), b"guessed secret")
        .await;
    assert_eq!(code(&forged), "bad-signature");

    let mut expired = ctl.command(ChaosAction::StopK3s, 5);
    expired.issued_ms -= 31_000;
    assert_eq!(code(&ctl.send(expired, SECRET).await), "expired");

    let mut future = ctl.command(ChaosAction::StopK3s, 5);
    future.issued_ms += 31_000;
    assert_eq!(code(&ctl.send(future, SECRET).await), "from-future");

    let mut other = ctl.command(ChaosAction::StopK3s, 5);
    other.node = "pi3".into();
    let ack = ctl.send(other, SECRET).await;
    assert_eq!(code(&ack), "wrong-node");

    // A command accepted once, then replayed byte for byte.
    let restore = ctl.command(ChaosAction::Restore, 0);
    assert!(ctl.send(restore.clone(), SECRET).await.accepted);
    assert_eq!(code(&ctl.send(restore, SECRET).await), "replayed");

    // The listener is sequential: had any rejected command run, its step
    // would precede this one.
    assert!(
        ctl.send(ctl.command(ChaosAction::NetDrop, 5), SECRET)
            .await
            .accepted
    );
    let steps = agent.runner.wait_for(1, WAIT).await.unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(
        steps[0].step,
        Step::LinkDown {
            iface: "eth-test".into()
        }
    );
    assert_eq!(agent.handle.stats.rejected.load(Ordering::Relaxed), 5);
}

#[tokio::test]
async fn malformed_payloads_are_counted_acked_and_not_fatal() {
    let broker = broker();
    let agent = agent(&broker, "pi1", config()).await;
    let mut ctl = Controller::new(&broker, "pi1").await;

    ctl.publish(b"\xff not json".to_vec()).await;
    assert_eq!(code(&ctl.ack_for("").await), "malformed");
    ctl.publish(br#"{"v":1,"id":"half","node":"pi1"}"#.to_vec())
        .await;
    assert_eq!(code(&ctl.ack_for("half").await), "malformed");

    assert!(
        ctl.send(ctl.command(ChaosAction::Reboot, 0), SECRET)
            .await
            .accepted
    );
    let steps = agent.runner.wait_for(1, WAIT).await.unwrap();
    assert_eq!(steps[0].step, Step::Reboot);
    assert_eq!(agent.handle.stats.malformed.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn policy_rejections_busy_bad_duration_power_relay() {
    let broker = broker();
    let mut cfg = config();
    cfg.max_down = Duration::from_secs(60);
    let agent = agent(&broker, "pi1", cfg).await;
    let mut ctl = Controller::new(&broker, "pi1").await;

    let too_long = ctl
        .send(ctl.command(ChaosAction::StopK3s, 61), SECRET)
        .await;
    assert_eq!(code(&too_long), "bad-duration");
    assert_eq!(
        code(&ctl.send(ctl.command(ChaosAction::NetDrop, 0), SECRET).await),
        "bad-duration"
    );
    let relay = ctl
        .send(ctl.command(ChaosAction::PowerRelay, 5), SECRET)
        .await;
    assert_eq!(code(&relay), "unsupported-action");

    assert!(
        ctl.send(ctl.command(ChaosAction::StopK3s, 60), SECRET)
            .await
            .accepted
    );
    let busy = ctl.send(ctl.command(ChaosAction::NetDrop, 5), SECRET).await;
    assert_eq!(code(&busy), "busy");
    assert_eq!(
        code(&ctl.send(ctl.command(ChaosAction::Reboot, 0), SECRET).await),
        "busy"
    );
    assert_eq!(agent.runner.steps().len(), 1);
}

#[tokio::test]
async fn net_drop_takes_the_default_route_interface() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("route");
    std::fs::write(
        &table,
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
         end0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
    )
    .unwrap();
    let broker = broker();
    let mut cfg = config();
    cfg.uplink = None;
    cfg.route_table = table.clone();
    let agent = agent(&broker, "pi1", cfg).await;
    let mut ctl = Controller::new(&broker, "pi1").await;

    assert!(
        ctl.send(ctl.command(ChaosAction::NetDrop, 30), SECRET)
            .await
            .accepted
    );
    let steps = agent.runner.wait_for(1, WAIT).await.unwrap();
    assert_eq!(
        steps[0].step,
        Step::LinkDown {
            iface: "end0".into()
        }
    );

    assert!(
        ctl.send(ctl.command(ChaosAction::Restore, 0), SECRET)
            .await
            .accepted
    );
    std::fs::write(&table, "Iface\tDestination\n").unwrap();
    let ack = ctl
        .send(ctl.command(ChaosAction::NetDrop, 30), SECRET)
        .await;
    assert_eq!(code(&ack), "no-uplink");
}
