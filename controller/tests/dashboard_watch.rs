//! `rackpong watch` as a real child process: reads the rack's broker, prints
//! its URL and the token from --dashboard-token-file, serves the state, and
//! exits cleanly on SIGTERM.

use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::mqtt::{BrokerUrl, LinkConfig, MqttLink};
use rackpong_agent::proto::Topics;
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn watch_serves_the_rack_of_its_broker() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let topics = Topics::new("lab");
    let rack = MqttLink::start(LinkConfig {
        broker: BrokerUrl::from_str(&broker.url()).unwrap(),
        client_id: "rack".into(),
        keepalive: Duration::from_secs(5),
        username: None,
        password: None,
        ca_file: None,
        status_topic: "rackpong/lab/test/rack".into(),
        buffer_capacity: 16,
    });
    rack.publish(topics.node_status("pi7"), "online", true);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok-123\n").unwrap();

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args(["watch", "--broker", &broker.url(), "--rack", "lab"])
        .args(["--listen", "127.0.0.1:0", "--dashboard-token-file"])
        .arg(&token_file)
        .env("RACKPONG_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("the URL line")
        .unwrap()
        .unwrap();
    assert!(line.contains("stop token: tok-123"), "{line}");
    let url = line.split_whitespace().nth(1).unwrap().to_string();

    let http = reqwest::Client::new();
    let st: serde_json::Value = tokio::time::timeout(WAIT, async {
        loop {
            // Ask the SSE stream rather than polling: it pushes every change.
            let mut resp = http.get(format!("{url}events")).send().await.unwrap();
            let mut buf = String::new();
            while let Some(chunk) = resp.chunk().await.unwrap() {
                buf.push_str(std::str::from_utf8(&chunk).unwrap());
                if buf.contains(r#""name":"pi7""#) {
                    return http
                        .get(format!("{url}api/state"))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                }
            }
        }
    })
    .await
    .expect("pi7 on the board");
    assert_eq!(st["nodes"][0]["status"], "online");
    assert_eq!(st["mqtt_connected"], true);
    assert!(st["progress"].is_null());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status}");
}
