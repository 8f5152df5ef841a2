//! Username/password reach the broker: a rumqttd with static credentials
//! accepts the link with the right password and refuses it with a wrong one
//! (the link keeps retrying, paced, and never reports connected). Always the
//! embedded broker, whatever RACKPONG_TEST_BROKER says: it needs credentials set up.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use rackpong_agent::mqtt::{LinkConfig, MqttLink};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

const WAIT: Duration = Duration::from_secs(10);

/// A rumqttd on a free loopback port that only admits `user`/`pass`.
fn broker_with_auth(user: &str, pass: &str) -> SocketAddr {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: 1024 * 1024,
        max_inflight_count: 100,
        auth: Some(HashMap::from([(user.to_string(), pass.to_string())])),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 100,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some([("v4".to_string(), server)].into_iter().collect()),
        ..Default::default()
    };
    std::thread::spawn(move || {
        if let Err(e) = Broker::new(config).start() {
            panic!("test broker stopped: {e}");
        }
    });
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(std::time::Instant::now() < deadline, "broker listening");
        std::thread::yield_now();
    }
    addr
}

fn config(addr: SocketAddr, password: &str) -> LinkConfig {
    LinkConfig {
        broker: format!("mqtt://{addr}").parse().unwrap(),
        client_id: format!("auth-{password}"),
        keepalive: Duration::from_secs(5),
        username: Some("pi".into()),
        password: Some(password.into()),
        ca_file: None,
        status_topic: "auth/status".into(),
        buffer_capacity: 10,
    }
}

#[tokio::test]
async fn the_right_password_connects_and_a_wrong_one_is_refused() {
    let addr = broker_with_auth("pi", "s3cret");
    let good = MqttLink::start(config(addr, "s3cret"));
    tokio::time::timeout(WAIT, good.connected().wait_for(|c| *c))
        .await
        .expect("connected with the right password")
        .unwrap();

    let bad = MqttLink::start(config(addr, "wrong"));
    tokio::time::timeout(WAIT, async {
        while bad.counters().connection_failures < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("refused and retried");
    assert_eq!(bad.counters().connects, 0);
    assert!(!*bad.connected().borrow());
    good.shutdown(WAIT).await;
}
