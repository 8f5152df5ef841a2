//! The dashboard's emergency stop, `POST /api/estop`, over real HTTP with a
//! real node agent process (`rackpong agent node`, chaos dry-run) on the
//! embedded broker: the token, content type and body are checked with JSON
//! errors; an authorised stop is published retained and signed, the agent's
//! ack comes back in the answer; a clear likewise; a dashboard without a
//! chaos secret answers 409.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::broker::EmbeddedBroker;
use rackpong_agent::chaos::Secret;
use rackpong_agent::proto::{SignedEstop, Topics};
use rackpong_controller::dashboard::{Dashboard, DashboardConfig, Sources};
use rackpong_controller::estop::EstopSender;
use rumqttc::MqttOptions;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

const SECRET: &[u8] = b"dashboard estop secret";
const TOKEN: &str = "estop-token";
const WAIT: Duration = Duration::from_secs(15);

async fn dashboard(sender: Option<EstopSender>, shutdown: &CancellationToken) -> Dashboard {
    let cfg = DashboardConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: TOKEN.into(),
        topics: Topics::default(),
        stale_after: None,
        max_balls: 8,
    };
    let sources = Sources {
        estop: sender.map(Arc::new),
        ..Sources::default()
    };
    Dashboard::start(cfg, sources, None, shutdown.clone())
        .await
        .unwrap()
}

async fn post(
    dash: &Dashboard,
    auth: Option<&str>,
    ctype: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{}/api/estop", dash.addr))
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", format!("Bearer {a}"));
    }
    if let Some(c) = ctype {
        req = req.header("content-type", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{status}: {ct}");
    (status, r.json().await.unwrap())
}

/// The retained estop the broker holds now (a fresh subscriber's view).
async fn retained(broker: &EmbeddedBroker) -> SignedEstop {
    let addr = broker.addr();
    let id = format!("peek-{}", rand::random::<u32>());
    let opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 8);
    client
        .subscribe(Topics::default().estop(), rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let p = tokio::time::timeout(WAIT, async {
        loop {
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = el.poll().await.unwrap()
            {
                return p;
            }
        }
    })
    .await
    .expect("a retained estop");
    assert!(p.retain);
    serde_json::from_slice(&p.payload).unwrap()
}

#[tokio::test]
async fn the_estop_button_is_checked_publishes_retained_and_returns_the_agents_acks() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("chaos.key");
    std::fs::write(&key, SECRET).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let broker = EmbeddedBroker::start("127.0.0.1".parse().unwrap()).unwrap();
    let _agent = Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args([
            "agent",
            "node",
            "--broker",
            &broker.url(),
            "--node-name",
            "d1",
        ])
        .args(["--http-addr", "127.0.0.1:0", "--interval", "1s"])
        .args([
            "--enable-chaos",
            "--chaos-dry-run",
            "--chaos-uplink",
            "rp-none0",
        ])
        .arg("--chaos-secret-file")
        .arg(&key)
        .env("RACKPONG_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = broker.addr();
    let sender = EstopSender {
        options: MqttOptions::new("dash-estop", addr.ip().to_string(), addr.port()),
        broker: broker.url(),
        topics: Topics::default(),
        secret: Secret::from_bytes(SECRET),
        timeout: WAIT,
    };
    let shutdown = CancellationToken::new();
    let dash = dashboard(Some(sender), &shutdown).await;
    let stop = json!({ "engaged": true }).to_string();
    let ctype = Some("application/json");

    let (status, body) = post(&dash, None, ctype, &stop).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = post(&dash, Some("wrong"), ctype, &stop).await;
    assert_eq!(status, 401);
    let (status, body) = post(&dash, Some(TOKEN), Some("text/plain"), &stop).await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = post(&dash, Some(TOKEN), None, &stop).await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = post(&dash, Some(TOKEN), ctype, r#"{"engaged":"yes"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("engaged"),
        "{body}"
    );

    // The agent is up once its retained birth is on the broker; the stop
    // then waits for its ack (the agent may still be subscribing: retry).
    let engaged = tokio::time::timeout(WAIT, async {
        loop {
            let (status, body) = post(&dash, Some(TOKEN), ctype, &stop).await;
            assert_eq!(status, 200, "{body}");
            if body["acks"].as_array().is_some_and(|a| !a.is_empty()) {
                return body;
            }
        }
    })
    .await
    .expect("the agent acked the stop");
    assert_eq!(engaged["engaged"], true);
    assert_eq!(engaged["acks"][0]["node"], "d1", "{engaged}");
    assert_eq!(engaged["acks"][0]["accepted"], true, "{engaged}");
    let held = retained(&broker).await;
    assert!(held.estop.engaged && held.estop.by == "dashboard");
    assert_eq!(held.estop.seq, engaged["seq"].as_u64().unwrap());
    assert!(held.verify(SECRET).is_ok());

    let (status, cleared) = post(&dash, Some(TOKEN), ctype, r#"{"engaged":false}"#).await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["acks"][0]["accepted"], true, "{cleared}");
    assert!(
        cleared["acks"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("cleared")
    );
    assert!(cleared["seq"].as_u64() > engaged["seq"].as_u64());
    assert!(!retained(&broker).await.estop.engaged);

    let plain = dashboard(None, &shutdown).await;
    let (status, body) = post(&plain, Some(TOKEN), ctype, &stop).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--chaos-secret-file")
    );
    shutdown.cancel();
}
