//! The chaos listener on the node role's real MQTT link ([`MqttLink`]):
//! commands arrive through its subscription and acks go out through its
//! store-and-forward queue.

mod chaos_support;

use std::sync::Arc;
use std::time::Duration;

use chaos_support::*;
use rackpong_agent::chaos::{self, ChaosSetup, RecordingRunner, Step};
use rackpong_agent::mqtt::{LinkConfig, MqttLink};
use rackpong_agent::proto::{ChaosAction, Topics};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn commands_flow_over_the_node_link() {
    let broker = broker();
    let topics = Topics::default();
    let link = MqttLink::start(LinkConfig {
        broker: broker.url().parse().unwrap(),
        client_id: "node-pi4".into(),
        keepalive: Duration::from_secs(5),
        username: None,
        password: None,
        ca_file: None,
        status_topic: topics.node_status("pi4"),
        buffer_capacity: 64,
    });
    let runner = RecordingRunner::new();
    let setup = ChaosSetup {
        config: config(),
        runner: Arc::new(runner.clone()),
    };
    let cancel = CancellationToken::new();
    let stats = std::sync::Arc::default();
    let handle = chaos::spawn(&link, &topics, "pi4", setup, stats, cancel.clone());
    let mut ctl = Controller::new(&broker, "pi4").await;

    // The link subscribes after it connects: a harmless restore, repeated
    // until one is answered, tells us the command topic is live.
    tokio::time::timeout(WAIT, async {
        loop {
            let cmd = ctl.command(ChaosAction::Restore, 0);
            let id = cmd.id.clone();
            ctl.publish(serde_json::to_vec(&cmd.sign(SECRET)).unwrap())
                .await;
            let answered = tokio::time::timeout(Duration::from_millis(200), ctl.ack_for(&id)).await;
            if answered.is_ok() {
                break;
            }
        }
    })
    .await
    .expect("listener subscribed");

    let ack = ctl
        .send(ctl.command(ChaosAction::StopK3s, 60), SECRET)
        .await;
    assert!(ack.accepted, "{ack:?}");
    assert_eq!(
        runner.wait_for(1, WAIT).await.unwrap()[0].step,
        Step::StopK3s
    );

    // Shutdown restores before the link goes away.
    cancel.cancel();
    tokio::time::timeout(WAIT, handle.task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(runner.steps()[1].step, Step::StartK3s);
    link.shutdown(Duration::from_secs(2)).await;
}
