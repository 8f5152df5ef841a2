//! The MQTT link against a real broker (embedded rumqttd, or the one named by
//! RACKPONG_TEST_BROKER): birth and Last Will, store-and-forward across a cut
//! link, the bound, re-subscription and clean shutdown.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::{Proxy, Subscriber, WAIT, broker_addr, unique_rack};
use rackpong_agent::mqtt::{LinkConfig, MqttLink};

fn config(url: &str, rack: &str, capacity: usize) -> LinkConfig {
    LinkConfig {
        broker: url.parse().unwrap(),
        client_id: format!("{rack}-link"),
        keepalive: Duration::from_secs(5),
        username: None,
        password: None,
        ca_file: None,
        status_topic: format!("{rack}/status"),
        buffer_capacity: capacity,
    }
}

async fn wait_connected(link: &MqttLink, want: bool) {
    let mut rx = link.connected();
    tokio::time::timeout(WAIT, rx.wait_for(|c| *c == want))
        .await
        .expect("connection state in time")
        .unwrap();
}

#[tokio::test]
async fn birth_is_retained_and_messages_arrive_in_order() {
    let broker = broker_addr();
    let rack = unique_rack("birth");
    let mut sub = Subscriber::start(broker, &format!("{rack}/#")).await;
    let link = MqttLink::start(config(&format!("mqtt://{broker}"), &rack, 100));
    for n in 0..50 {
        link.publish(format!("{rack}/data"), n.to_string(), false);
    }
    let status = sub.next_on(&format!("{rack}/status")).await;
    assert_eq!(status.text(), "online");
    for n in 0..50 {
        assert_eq!(
            sub.next_on(&format!("{rack}/data")).await.text(),
            n.to_string()
        );
    }
    // A later subscriber gets the retained birth.
    let mut late = Subscriber::start(broker, &format!("{rack}/status")).await;
    let m = late.next().await;
    assert_eq!((m.text().as_str(), m.retain), ("online", true));
    link.shutdown(WAIT).await;
    assert_eq!(
        sub.next_on(&format!("{rack}/status")).await.text(),
        "offline"
    );
}

#[tokio::test]
async fn messages_published_while_cut_off_arrive_once_in_order_after_reconnect() {
    let broker = broker_addr();
    let proxy = Proxy::start(broker).await;
    let rack = unique_rack("saf");
    let data = format!("{rack}/data");
    let mut sub = Subscriber::start(broker, &format!("{rack}/#")).await;
    let link = MqttLink::start(config(&proxy.url(), &rack, 100));
    wait_connected(&link, true).await;
    link.publish(&data, "before", false);
    assert_eq!(sub.next_on(&data).await.text(), "before");

    proxy.cut();
    wait_connected(&link, false).await;
    // The broker noticed the dropped TCP connection: Last Will.
    sub.wait_for_text(&format!("{rack}/status"), "offline")
        .await;
    for n in 0..20 {
        link.publish(&data, n.to_string(), false);
    }
    assert_eq!(link.buffer_stats().queued, 20);
    let attempts = proxy.accepted();
    proxy.wait_accepted(attempts + 1).await; // it keeps retrying while cut
    proxy.restore();

    sub.wait_for_text(&format!("{rack}/status"), "online").await;
    for n in 0..20 {
        assert_eq!(sub.next_on(&data).await.text(), n.to_string());
    }
    link.publish(&data, "after", false);
    assert_eq!(
        sub.next_on(&data).await.text(),
        "after",
        "nothing sent twice"
    );
    link.shutdown(WAIT).await; // flushes: every PUBACK is in
    assert_eq!(link.buffer_stats().queued, 0);
    assert_eq!(link.counters().connects, 2);
}

#[tokio::test]
async fn past_the_bound_the_oldest_are_dropped_and_counted() {
    let broker = broker_addr();
    let proxy = Proxy::start(broker).await;
    proxy.cut();
    let rack = unique_rack("bound");
    let data = format!("{rack}/data");
    let mut sub = Subscriber::start(broker, &format!("{rack}/#")).await;
    let link = MqttLink::start(config(&proxy.url(), &rack, 5));
    for n in 0..8 {
        link.publish(&data, n.to_string(), false);
    }
    let stats = link.buffer_stats();
    assert_eq!((stats.queued, stats.capacity, stats.dropped), (5, 5, 3));
    proxy.restore();
    for n in 3..8 {
        assert_eq!(sub.next_on(&data).await.text(), n.to_string());
    }
}

#[tokio::test]
async fn subscriptions_survive_a_reconnect() {
    let broker = broker_addr();
    let proxy = Proxy::start(broker).await;
    let rack = unique_rack("resub");
    let link = MqttLink::start(config(&proxy.url(), &rack, 10));
    let mut rx = link.subscribe(format!("{rack}/cmd/+"));
    wait_connected(&link, true).await;
    proxy.cut();
    wait_connected(&link, false).await;
    proxy.restore();
    wait_connected(&link, true).await;

    // Publish from the link itself through the broker, until the
    // re-subscription (whose SUBACK we cannot see) delivers it.
    let got = tokio::time::timeout(WAIT, async {
        loop {
            link.publish(format!("{rack}/cmd/x"), "hello", false);
            if let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
                return p;
            }
        }
    })
    .await
    .expect("message through the re-subscription");
    assert_eq!(got.topic, format!("{rack}/cmd/x"));
    assert_eq!(&got.payload[..], b"hello");
}

#[tokio::test]
async fn shutdown_while_unreachable_returns_promptly() {
    let rack = unique_rack("down");
    let broker = broker_addr();
    let proxy = Proxy::start(broker).await;
    proxy.cut();
    let link = MqttLink::start(config(&proxy.url(), &rack, 10));
    link.publish(format!("{rack}/data"), "lost", false);
    tokio::time::timeout(
        Duration::from_secs(3),
        link.shutdown(Duration::from_secs(60)),
    )
    .await
    .expect("shutdown does not wait for a broker that is not there");
}

/// Issue 11 item 7: after a few seconds of outage (old backoff: 4–8 s by
/// now) the link is back within about a second of the broker returning.
#[tokio::test]
async fn reconnects_within_a_second_of_a_short_outage_ending() {
    let broker = broker_addr();
    let proxy = Proxy::start(broker).await;
    let rack = unique_rack("quickback");
    let link = MqttLink::start(config(&proxy.url(), &rack, 100));
    wait_connected(&link, true).await;
    proxy.cut();
    wait_connected(&link, false).await;
    // Six refused attempts: the uncapped backoff would be at 8 s now.
    let before = proxy.accepted();
    proxy.wait_accepted(before + 6).await;
    proxy.restore();
    let back = std::time::Instant::now();
    wait_connected(&link, true).await;
    let took = back.elapsed();
    // 1 s cap (jitter included) plus the connect itself on a loaded machine.
    assert!(
        took < Duration::from_millis(2500),
        "reconnected after {took:?}"
    );
    link.shutdown(WAIT).await;
}

/// Receives until `topic` arrives, returning how many messages on
/// `counted` topics came before it.
async fn count_until(
    rx: &mut tokio::sync::mpsc::Receiver<rumqttc::Publish>,
    counted: &str,
    topic: &str,
) -> usize {
    let mut n = 0;
    tokio::time::timeout(WAIT, async {
        loop {
            let p = rx.recv().await.expect("link open");
            if p.topic == topic {
                return n;
            }
            n += usize::from(p.topic.starts_with(counted));
        }
    })
    .await
    .expect("the fence in time")
}

#[tokio::test]
async fn overlapping_subscriptions_deliver_each_message_once_to_each_subscriber() {
    let broker = broker_addr();
    let rack = unique_rack("overlap");
    let link = MqttLink::start(config(&format!("mqtt://{broker}"), &rack, 10));
    let mut narrow = link.subscribe(format!("{rack}/nodes/+/health"));
    let mut wide = link.subscribe(format!("{rack}/#"));
    wait_connected(&link, true).await;
    let publisher = MqttLink::start(LinkConfig {
        client_id: format!("{rack}-pub"),
        status_topic: format!("{rack}/pub/status"),
        ..config(&format!("mqtt://{broker}"), &rack, 100)
    });
    // Until the wide filter is in place (its SUBACK is not visible), fence
    // messages may reach only the narrow one: wait for one on both.
    let fence = format!("{rack}/nodes/fence/health");
    tokio::time::timeout(WAIT, async {
        loop {
            publisher.publish(&fence, "f", false);
            let w = tokio::time::timeout(Duration::from_millis(200), wide.recv()).await;
            if matches!(w, Ok(Some(p)) if p.topic == fence) {
                return;
            }
        }
    })
    .await
    .expect("the wide subscription in place");
    while narrow.try_recv().is_ok() {}
    while wide.try_recv().is_ok() {}

    let health = format!("{rack}/nodes/pi1/health");
    for n in 0..40 {
        publisher.publish(&health, n.to_string(), false);
    }
    let end = format!("{rack}/nodes/end/health");
    publisher.publish(&end, "end", false);
    // A second fence after the first: copies through a second broker
    // subscription would have arrived by the time both fences did.
    publisher.publish(&end, "end", false);
    assert_eq!(count_until(&mut narrow, &health, &end).await, 40);
    assert_eq!(count_until(&mut wide, &health, &end).await, 40);
    assert_eq!(count_until(&mut narrow, &health, &end).await, 0);
    assert_eq!(count_until(&mut wide, &health, &end).await, 0);

    // The wide subscriber goes away: the narrow filter is subscribed at the
    // broker again, so its messages keep coming.
    drop(wide);
    let got = tokio::time::timeout(WAIT, async {
        loop {
            publisher.publish(&health, "after", false);
            if let Ok(Some(p)) =
                tokio::time::timeout(Duration::from_millis(200), narrow.recv()).await
                && &p.payload[..] == b"after"
            {
                return p;
            }
        }
    })
    .await
    .expect("narrow subscription still served after the wide one went");
    assert_eq!(got.topic, health);
    // That message pruned the wide filter at the broker; later ones come
    // through the narrow filter alone.
    for n in 0..5 {
        publisher.publish(&health, format!("later-{n}"), false);
    }
    let mut later = Vec::new();
    while later.len() < 5 {
        let p = tokio::time::timeout(WAIT, narrow.recv())
            .await
            .expect("later in time")
            .unwrap();
        if &p.payload[..] != b"after" {
            later.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    assert_eq!(
        later,
        (0..5).map(|n| format!("later-{n}")).collect::<Vec<_>>()
    );
    link.shutdown(WAIT).await;
    publisher.shutdown(WAIT).await;
}
