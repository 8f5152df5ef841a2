//! The rack's emergency stop at the agent's listener, over a real broker:
//! forged, foreign-rack, stale-seq and expired live stops are refused like
//! commands (acked with the reason, counted); an honoured stop restores the
//! fault at once, refuses commands `estop` (counted) but still accepts
//! `restore`; a clear lifts it; and a stop persisted in the state file is
//! still in force after a restart even when the broker holds no retained copy.

mod chaos_support;

use chaos_support::*;
use rackpong_agent::chaos::{Recorded, Step};
use rackpong_agent::now_ms;
use rackpong_agent::proto::{ChaosAction, Estop, Topics};
use rumqttc::QoS;

fn estop(seq: u64, engaged: bool, issued_ms: u64, rack: &str) -> Estop {
    Estop {
        v: 1,
        id: format!("estop-{seq}-{engaged}"),
        rack: rack.into(),
        engaged,
        seq,
        issued_ms,
        by: "test".into(),
    }
}

async fn publish(ctl: &chaos_support::Controller, e: Estop, key: &[u8], retain: bool) {
    let payload = serde_json::to_vec(&e.sign(key)).unwrap();
    ctl.client()
        .publish(Topics::default().estop(), QoS::AtLeastOnce, retain, payload)
        .await
        .unwrap();
}

#[tokio::test]
async fn refused_stops_are_acked_and_an_honoured_one_restores_and_refuses_commands() {
    let broker = broker();
    let agent = agent_with_estop(&broker, "pe1", config()).await;
    let mut ctl = Controller::new(&broker, "pe1").await;
    let fault = ctl
        .send(ctl.command(ChaosAction::NetDrop, 60), SECRET)
        .await;
    assert!(fault.accepted, "{fault:?}");

    let now = now_ms();
    let forged = estop(now, true, now, "rack");
    publish(&ctl, forged.clone(), b"forged", false).await;
    assert_eq!(code(&ctl.ack_for(&forged.id).await), "bad-signature");
    let foreign = estop(now + 1, true, now, "lab");
    publish(&ctl, foreign.clone(), SECRET, false).await;
    assert_eq!(code(&ctl.ack_for(&foreign.id).await), "wrong-rack");
    let old = estop(now + 2, true, now - 60_000, "rack");
    publish(&ctl, old.clone(), SECRET, false).await;
    assert_eq!(code(&ctl.ack_for(&old.id).await), "expired");

    let stop = estop(now + 10, true, now, "rack");
    publish(&ctl, stop.clone(), SECRET, false).await;
    let ack = ctl.ack_for(&stop.id).await;
    assert!(
        ack.accepted && ack.reason.contains("restored net-drop"),
        "{ack:?}"
    );
    let steps = agent
        .runner
        .wait_for(2, WAIT)
        .await
        .expect("inflict + restore");
    assert!(
        matches!(
            steps[1],
            Recorded {
                step: Step::LinkUp { .. },
                ..
            }
        ),
        "{steps:?}"
    );

    let refused = ctl
        .send(ctl.command(ChaosAction::StopK3s, 30), SECRET)
        .await;
    assert_eq!(code(&refused), "estop", "{refused:?}");
    assert!(refused.reason.contains(&stop.id), "{refused:?}");
    let restore = ctl.send(ctl.command(ChaosAction::Restore, 0), SECRET).await;
    assert!(restore.accepted, "{restore:?}");
    // An older clear, replayed: refused, the stop stays.
    let stale = estop(now + 5, false, now, "rack");
    publish(&ctl, stale.clone(), SECRET, false).await;
    assert_eq!(code(&ctl.ack_for(&stale.id).await), "replayed");

    let clear = estop(now + 11, false, now_ms(), "rack");
    publish(&ctl, clear.clone(), SECRET, false).await;
    assert!(ctl.ack_for(&clear.id).await.accepted);
    let back = ctl
        .send(ctl.command(ChaosAction::StopK3s, 30), SECRET)
        .await;
    assert!(back.accepted, "{back:?}");

    let counts = agent.handle.stats.by_outcome();
    let n = |k: (&str, &str)| counts.iter().find(|(c, _)| *c == k).map_or(0, |(_, n)| *n);
    assert_eq!(n(("rejected", "estop")), 1, "{counts:?}");
    assert_eq!(n(("rejected", "bad-signature")), 1, "{counts:?}");
    assert_eq!(n(("rejected", "replayed")), 1, "{counts:?}");
    assert_eq!(n(("accepted", "estop-engaged")), 1, "{counts:?}");
    assert_eq!(n(("accepted", "estop-cleared")), 1, "{counts:?}");
    assert!(!agent.handle.stats.estop().unwrap().engaged);
    agent.cancel.cancel();
}

#[tokio::test]
async fn a_persisted_stop_holds_after_a_restart_without_a_retained_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.state_file = Some(dir.path().join("chaos-state.json"));
    let broker = broker();
    let first = agent_with_estop(&broker, "pe2", cfg.clone()).await;
    let mut ctl = Controller::new(&broker, "pe2").await;
    let stop = estop(now_ms(), true, now_ms(), "rack");
    // Live only: the broker keeps no copy, only the agent's state file does.
    publish(&ctl, stop.clone(), SECRET, false).await;
    assert!(ctl.ack_for(&stop.id).await.accepted);
    first.cancel.cancel();
    first.handle.task.await.unwrap();

    let second = agent_with_estop(&broker, "pe2", cfg).await;
    let refused = ctl
        .send(ctl.command(ChaosAction::NetDrop, 30), SECRET)
        .await;
    assert_eq!(code(&refused), "estop", "{refused:?}");
    // The same stop again (e.g. a late retained copy) changes nothing: no second ack.
    publish(&ctl, stop.clone(), SECRET, true).await;
    let clear = estop(stop.seq + 1, false, now_ms(), "rack");
    publish(&ctl, clear.clone(), SECRET, false).await;
    let ack = ctl.ack_for(&clear.id).await;
    assert!(ack.accepted, "{ack:?}");
    assert!(second.runner.steps().is_empty());
    second.cancel.cancel();
}
