//! Issue 11: a retained command on a node's command topic is cleared by the
//! controller's node commander (whose login may write the command topics)
//! with an empty retained publish, over a real broker; afterwards a new
//! subscriber gets no retained command.

use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::chaos::Secret;
use rackpong_agent::proto::Topics;
use rackpong_controller::cluster::k3s::nodecmd::MqttNodeCommander;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// A client subscribed to `filters` (in order), its messages on a channel.
async fn watch(
    broker: &EmbeddedBroker,
    filters: &[String],
) -> (AsyncClient, mpsc::Receiver<Publish>) {
    let addr = broker.addr();
    let id = format!("watch-{}", rand::random::<u32>());
    let (client, mut el) =
        AsyncClient::new(MqttOptions::new(id, addr.ip().to_string(), addr.port()), 16);
    for f in filters {
        client.subscribe(f, QoS::AtLeastOnce).await.unwrap();
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev
                && tx.send(p).await.is_err()
            {
                return;
            }
        }
    });
    (client, rx)
}

async fn next(rx: &mut mpsc::Receiver<Publish>) -> Publish {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message")
        .unwrap()
}

#[tokio::test]
async fn the_commander_clears_a_retained_command() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let topics = Topics::default();
    let cmd = topics.node_cmd("n9");
    let (planter, mut seen) = watch(&broker, std::slice::from_ref(&cmd)).await;
    planter
        .publish(
            &cmd,
            QoS::AtLeastOnce,
            true,
            br#"{"id":"planted"}"#.to_vec(),
        )
        .await
        .unwrap();
    // Held by the broker: the watcher sees it (live), a new subscriber retained.
    assert_eq!(&next(&mut seen).await.payload[..], br#"{"id":"planted"}"#);
    let (_c, mut fresh) = watch(&broker, std::slice::from_ref(&cmd)).await;
    assert!(next(&mut fresh).await.retain);

    let addr = broker.addr();
    let opts = MqttOptions::new("ctl", addr.ip().to_string(), addr.port());
    let ctl = MqttNodeCommander::start(
        opts,
        topics.clone(),
        Secret::from_bytes("k"),
        WAIT,
        CancellationToken::new(),
    );
    let cleared = next(&mut seen).await;
    assert!(cleared.payload.is_empty(), "{cleared:?}");
    assert_eq!(ctl.retained_cleared(), 1);

    // A marker retained after the clear: a new subscriber to both gets the
    // marker and nothing on the command topic before it.
    let marker = format!("{}/test/marker", topics.root());
    planter
        .publish(&marker, QoS::AtLeastOnce, true, b"m".to_vec())
        .await
        .unwrap();
    let (_d, mut after) = watch(&broker, &[cmd.clone(), marker.clone()]).await;
    let first = next(&mut after).await;
    assert_eq!(first.topic, marker, "{first:?}");
}
