//! The controller's node commander against the real agent listener over a
//! real broker: accepted and rejected acks come back by id, a silent node
//! times out, and an unreachable broker is reported, never hung on.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::chaos::{self, AckSink, ChaosConfig, RecordingRunner, Secret, Step};
use rackpong_agent::proto::{ChaosAction, Topics};
use rackpong_controller::cluster::k3s::nodecmd::{MqttNodeCommander, NodeCmdError, NodeCommander};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const SECRET: &[u8] = b"rack secret";
const WAIT: Duration = Duration::from_secs(10);

struct Sink(AsyncClient);

impl AckSink for Sink {
    fn publish_ack(&self, topic: String, payload: Vec<u8>) {
        self.0
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .unwrap();
    }
}

/// The agent's chaos listener for `node`, subscribed before this returns.
async fn agent(broker: &EmbeddedBroker, node: &str, cancel: &CancellationToken) -> RecordingRunner {
    let topics = Topics::default();
    let addr = broker.addr();
    let opts = MqttOptions::new(format!("agent-{node}"), addr.ip().to_string(), addr.port());
    let (client, mut el) = AsyncClient::new(opts, 64);
    client
        .subscribe(topics.node_cmd(node), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = mpsc::channel(16);
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        while let Ok(ev) = el.poll().await {
            match ev {
                Event::Incoming(Packet::SubAck(_)) => drop(ready.take().map(|r| r.send(()))),
                Event::Incoming(Packet::Publish(p)) => {
                    // A closed receiver only means the listener is gone.
                    let _ = tx.send(p).await;
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(WAIT, ready_rx).await.unwrap().unwrap();
    let runner = RecordingRunner::new();
    let mut cfg = ChaosConfig::new(Secret::from_bytes(SECRET));
    cfg.ack_grace = Duration::ZERO;
    cfg.uplink = Some("eth0".into());
    let sink = Arc::new(Sink(client));
    chaos::spawn_with(
        rx,
        sink,
        &topics,
        node,
        cfg,
        Arc::new(runner.clone()),
        cancel.clone(),
    );
    runner
}

fn commander(
    addr: std::net::SocketAddr,
    secret: &[u8],
    timeout: Duration,
    cancel: &CancellationToken,
) -> MqttNodeCommander {
    let id = format!("ctl-{}", rand::random::<u32>());
    let opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    let secret = Secret::from_bytes(secret);
    MqttNodeCommander::start(opts, Topics::default(), secret, timeout, cancel.clone())
}

#[tokio::test]
async fn commands_are_signed_sent_and_acked_by_id() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let cancel = CancellationToken::new();
    let runner = agent(&broker, "pi3", &cancel).await;
    let ctl = commander(broker.addr(), SECRET, WAIT, &cancel);
    let mut all_acks = ctl.acks();

    let down = Duration::from_secs(45);
    let ack = ctl
        .send_command("pi3", ChaosAction::NetDrop, down)
        .await
        .unwrap();
    assert!(ack.accepted, "{ack:?}");
    assert_eq!(ack.node, "pi3");
    assert_eq!(ack.restore_by_ms.unwrap() - ack.started_ms.unwrap(), 45_000);
    assert_eq!(all_acks.recv().await.unwrap(), ack);
    let steps = runner.wait_for(1, WAIT).await.unwrap();
    assert_eq!(
        steps[0].step,
        Step::LinkDown {
            iface: "eth0".into()
        }
    );

    // Through the trait object, as the k3s backend holds it.
    let dyn_ctl: Arc<dyn NodeCommander> = Arc::new(ctl.clone());
    let ack = dyn_ctl
        .send("pi3", ChaosAction::Restore, Duration::ZERO)
        .await
        .unwrap();
    assert!(
        ack.accepted && ack.reason.starts_with("restored net-drop"),
        "{ack:?}"
    );
    let steps = runner.wait_for(2, WAIT).await.unwrap();
    assert_eq!(
        steps[1].step,
        Step::LinkUp {
            iface: "eth0".into()
        }
    );
    cancel.cancel();
}

#[tokio::test]
async fn a_wrong_secret_is_answered_with_a_rejection() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let cancel = CancellationToken::new();
    let runner = agent(&broker, "pi1", &cancel).await;
    let ctl = commander(broker.addr(), b"not the rack secret", WAIT, &cancel);

    let ack = ctl
        .send_command("pi1", ChaosAction::Reboot, Duration::ZERO)
        .await
        .unwrap();
    assert!(!ack.accepted);
    assert!(ack.reason.starts_with("bad-signature"), "{}", ack.reason);
    assert!(runner.steps().is_empty());
    cancel.cancel();
}

#[tokio::test]
async fn a_silent_node_times_out_and_fractional_durations_are_refused() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let cancel = CancellationToken::new();
    let ctl = commander(broker.addr(), SECRET, Duration::from_millis(300), &cancel);
    let five = Duration::from_secs(5);
    let err = ctl
        .send_command("ghost", ChaosAction::StopK3s, five)
        .await
        .unwrap_err();
    assert!(matches!(err, NodeCmdError::NoAck { .. }), "{err}");
    let odd = Duration::from_millis(1500);
    let err = ctl
        .send_command("ghost", ChaosAction::StopK3s, odd)
        .await
        .unwrap_err();
    assert!(matches!(err, NodeCmdError::BadDuration(_)), "{err}");
    cancel.cancel();
}

#[tokio::test]
async fn an_unreachable_broker_is_an_error_not_a_hang() {
    // A port that was free a moment ago: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cancel = CancellationToken::new();
    let ctl = commander(addr, SECRET, Duration::from_millis(300), &cancel);
    let five = Duration::from_secs(5);
    let err = NodeCommander::send(&ctl, "pi1", ChaosAction::StopK3s, five)
        .await
        .unwrap_err();
    assert!(err.reason.contains("not subscribed"), "{err}");
    cancel.cancel();
}
