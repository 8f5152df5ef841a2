//! Username/password reach the broker: a rumqttd with static credentials
//! accepts the link with the right password and refuses it with a wrong one
//! (the link keeps retrying, paced, and never reports connected). Always the
//! embedded broker, whatever RACKPONG_TEST_BROKER says: it needs credentials set up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::mqtt::{LinkConfig, MqttLink};

const WAIT: Duration = Duration::from_secs(10);

/// A rumqttd on a free loopback port that only admits `user`/`pass`.
fn broker_with_auth(user: &str, pass: &str) -> SocketAddr {
    let credentials = HashMap::from([(user.to_string(), pass.to_string())]);
    EmbeddedBroker::start_with_credentials("127.0.0.1".parse().unwrap(), credentials)
        .expect("broker with credentials")
        .addr()
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
