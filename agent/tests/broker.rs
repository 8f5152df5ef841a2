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

/// A TCP client subscribed to `filter`, with its messages as (topic, payload, retain).
async fn tcp_subscriber(
    addr: std::net::SocketAddr,
    id: &str,
    filter: &str,
) -> (
    AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    let (client, mut el) = AsyncClient::new(opts, 10);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        while let Ok(ev) = el.poll().await {
            match ev {
                Event::Incoming(Packet::SubAck(_)) => drop(ready.take().map(|r| r.send(()))),
                Event::Incoming(Packet::Publish(p)) => {
                    let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                }
                _ => {}
            }
        }
    });
    ready_rx.await.unwrap();
    (client, rx)
}

#[tokio::test]
async fn the_in_process_link_talks_to_tcp_clients_both_ways() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let wait = Duration::from_secs(10);
    let link = broker.mqtt_link("ctl", "r/controller/status").unwrap();
    link.connected()
        .wait_for(|up| *up)
        .await
        .expect("in-process link up");
    let (tcp, mut from_link) = tcp_subscriber(broker.addr(), "tcp", "r/#").await;

    // Publishing to a topic nobody subscribed first must not cost the link
    // its connection (rumqttd drops links that publish to unknown topics).
    link.publish("r/nobody/listens", b"x".to_vec(), false);
    link.publish("r/nodes/n1/cmd", b"do it".to_vec(), false);
    let got = tokio::time::timeout(wait, async {
        loop {
            let (topic, payload) = from_link.recv().await.unwrap();
            if topic == "r/nodes/n1/cmd" {
                return payload;
            }
        }
    })
    .await
    .expect("the TCP client got the in-process publish");
    assert_eq!(got, b"do it");

    // Live messages from TCP reach the link's subscribers, once each.
    let mut acks = link.subscribe("r/nodes/+/cmd/ack");
    let probe = async {
        loop {
            tcp.publish(
                "r/nodes/n1/cmd/ack",
                QoS::AtLeastOnce,
                false,
                b"ok".to_vec(),
            )
            .await
            .unwrap();
            if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(100), acks.recv()).await
            {
                return p;
            }
        }
    };
    let p = tokio::time::timeout(wait, probe)
        .await
        .expect("ack via link");
    assert_eq!(p.topic, "r/nodes/n1/cmd/ack");
    while acks.try_recv().is_ok() {}
    tcp.publish(
        "r/nodes/n2/cmd/ack",
        QoS::AtLeastOnce,
        false,
        b"two".to_vec(),
    )
    .await
    .unwrap();
    let p = tokio::time::timeout(wait, acks.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("r/nodes/n2/cmd/ack", &b"two"[..])
    );

    // A retained message is replayed to a later subscription, flagged retained.
    tcp.publish(
        "r/nodes/n3/status",
        QoS::AtLeastOnce,
        true,
        b"online".to_vec(),
    )
    .await
    .unwrap();
    let stored = tokio::time::timeout(wait, async {
        while from_link.recv().await.unwrap().0 != "r/nodes/n3/status" {}
    });
    stored.await.expect("the broker has the retained status");
    let retained = async {
        loop {
            let mut status = link.subscribe("r/nodes/n3/status");
            if let Ok(Some(p)) =
                tokio::time::timeout(Duration::from_millis(200), status.recv()).await
            {
                return p;
            }
        }
    };
    let p = tokio::time::timeout(wait, retained)
        .await
        .expect("retained status");
    assert!(p.retain && &p.payload[..] == b"online", "{p:?}");

    // A clean shutdown says `offline` on the link's status topic.
    link.shutdown(Duration::from_secs(2)).await;
    let offline = tokio::time::timeout(wait, async {
        loop {
            let (topic, payload) = from_link.recv().await.unwrap();
            if topic == "r/controller/status" && payload == b"offline" {
                return;
            }
        }
    })
    .await;
    assert!(offline.is_ok(), "no offline from the in-process link");
    assert!(!*link.connected().borrow());
}

#[tokio::test]
async fn the_in_process_links_run_out_with_a_clear_error() {
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    for _ in 0..rackpong_agent::broker::IN_PROCESS_LINKS {
        broker.take_link().unwrap();
    }
    let err = broker.mqtt_link("one-too-many", "s").unwrap_err();
    assert!(err.to_string().contains("in-process links"), "{err}");
}
