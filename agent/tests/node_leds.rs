//! The node role's LED patterns reach MQTT: a real node role (chaos enabled,
//! dry run) on an embedded broker publishes `nodes/<node>/leds` — `ok` once
//! connected, the catch count rising with its workers' catch reports on
//! `nodes/n1/catches` (and not with another node's, nor with the rack's
//! `balls/caught`), `chaos` with red blinking while an accepted
//! node-chaos command is in force, `ok` again after `restore`.

mod chaos_support;

use std::os::unix::fs::PermissionsExt;

use chaos_support::{Controller, SECRET, WAIT, broker, client, wait_until_listening};
use clap::Parser;
use rackpong_agent::node::{self, NodeArgs};
use rackpong_agent::proto::{ChaosAction, LedMode, LedPattern, LedReport, Topics};
use rumqttc::{Publish, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
}

/// The next LED report that satisfies `ok` (earlier ones are skipped).
async fn report(rx: &mut mpsc::Receiver<Publish>, ok: impl Fn(&LedReport) -> bool) -> LedReport {
    tokio::time::timeout(WAIT, async {
        loop {
            let p = rx.recv().await.expect("subscription open");
            let r: LedReport = serde_json::from_slice(&p.payload).unwrap();
            if ok(&r) {
                return r;
            }
        }
    })
    .await
    .expect("the LED report did not come")
}

fn catches(caught: u64) -> Vec<u8> {
    format!(r#"{{"v":1,"worker":"w","caught":{caught}}}"#).into_bytes()
}

fn ball(node: &str) -> Vec<u8> {
    format!(
        r#"{{"v":1,"ball":{{"id":"b","target":"w","ttl":3,"born_ms":1,"hops":[]}},"worker":"w","node":"{node}","caught_ms":3}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn status_catches_and_chaos_show_in_the_led_report() {
    let broker = broker();
    let topics = Topics::default();
    let (_obs, mut leds) = client(&broker, "observer", &topics.node_leds("n1")).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chaos.key");
    std::fs::write(&key, SECRET).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = format!("mqtt://{}", broker.addr());
    let args = Args::parse_from([
        "t",
        "--broker",
        &url,
        "--node-name",
        "n1",
        "--http-addr",
        "127.0.0.1:0",
        "--enable-chaos",
        "--chaos-dry-run",
        "--chaos-secret-file",
        key.to_str().unwrap(),
    ]);
    let cancel = CancellationToken::new();
    let role = tokio::spawn(node::run(args.node, cancel.clone()));

    let first = report(&mut leds, |_| true).await;
    assert_eq!(first.pattern, LedPattern::Ok);
    assert_eq!((first.green, first.red), (LedMode::On, LedMode::Off));

    let mut ctl = Controller::new(&broker, "n1").await;
    wait_until_listening(&mut ctl).await;
    // n1's reports count (2 + 2), n2's, a bad one and the rack's catch
    // stream do not (any of them counted would make the first count >= 4
    // odd or larger than 4); the count is reported within 500 ms.
    let c = ctl.client();
    for (topic, payload) in [
        (topics.node_catches("n2"), catches(5)),
        (topics.balls_caught(), ball("n1")),
        (topics.node_catches("n1"), catches(2)),
        (topics.node_catches("n1"), b"not json".to_vec()),
        (topics.node_catches("n1"), catches(2)),
    ] {
        c.publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let counted = report(&mut leds, |r| r.catches >= 4).await;
    assert_eq!(counted.catches, 4);
    assert_eq!(counted.pattern, LedPattern::Ok);

    let cmd = ctl.command(ChaosAction::StopK3s, 60);
    let ack = ctl.send(cmd, SECRET).await;
    assert!(ack.accepted, "{ack:?}");
    let chaos = report(&mut leds, |r| r.pattern == LedPattern::Chaos).await;
    assert_eq!((chaos.green, chaos.red), (LedMode::On, LedMode::Blink));
    assert!(chaos.seq > counted.seq);

    let restore = ctl.command(ChaosAction::Restore, 0);
    assert!(ctl.send(restore, SECRET).await.accepted);
    let back = report(&mut leds, |r| r.pattern == LedPattern::Ok).await;
    assert_eq!(back.red, LedMode::Off);

    cancel.cancel();
    tokio::time::timeout(WAIT, role)
        .await
        .expect("role stops")
        .unwrap()
        .expect("clean stop");
}
