//! The embedded broker accepts MQTT clients and keeps retained messages.

use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let addr = broker.addr();

    let opts = MqttOptions::new("pub", addr.ip().to_string(), addr.port());
    let (client, mut el) = AsyncClient::new(opts, 10);
    client
        .publish("t/x", QoS::AtLeastOnce, true, b"hello".to_vec())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::PubAck(_)) = el.poll().await.unwrap() {
                break;
            }
        }
    })
    .await
    .expect("puback");

    let opts = MqttOptions::new("sub", addr.ip().to_string(), addr.port());
    let (sub, mut el2) = AsyncClient::new(opts, 10);
    sub.subscribe("t/#", QoS::AtLeastOnce).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = el2.poll().await.unwrap() {
                return p;
            }
        }
    })
    .await
    .expect("retained publish");
    assert_eq!(got.topic, "t/x");
    assert_eq!(&got.payload[..], b"hello");
    assert!(got.retain);
}
