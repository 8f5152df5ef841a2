//! The dashboard's state follows the rack's MQTT topics (real embedded
//! broker): health, node and worker status, caught balls with their trail;
//! malformed payloads are counted, not fatal; silent nodes turn stale; the
//! SSE stream pushes snapshots.

mod dashboard_common;

use std::time::Duration;

use dashboard_common::{Rig, WAIT, caught, health};

#[tokio::test]
async fn health_status_and_caught_balls_reach_the_state_api() {
    let rig = Rig::start(None).await;
    rig.node_online("pi1").await;
    rig.rack
        .publish(rig.topics.node_health("pi1"), health("pi1", 1, 48.5), true);
    rig.rack
        .publish(rig.topics.worker_status("w-a"), "online", true);
    rig.rack
        .publish(rig.topics.worker_status("w-b"), "offline", true);
    rig.rack.publish(
        rig.topics.balls_caught(),
        caught("b1", &[("w-a", "pi1"), ("w-b", "pi2")]),
        false,
    );
    rig.until("health, workers and the ball", |s| {
        s.caught == 1 && s.nodes.iter().any(|n| n.temp_c.is_some()) && s.nodes.len() == 2
    })
    .await;

    let st = rig.state().await;
    let pi1 = &st["nodes"][0];
    assert_eq!(pi1["name"], "pi1");
    assert_eq!(pi1["status"], "online");
    assert_eq!(pi1["temp_c"], 48.5);
    assert_eq!(pi1["cpu_pct"], 37.5);
    assert_eq!(pi1["mem_total_bytes"], 4u64 << 30);
    // 0x50004: throttled now, under-voltage and throttled since boot.
    let badges = pi1["throttle"].as_array().unwrap();
    assert!(badges.contains(&serde_json::json!({"label": "THROTTLED", "now": true})));
    assert!(badges.contains(&serde_json::json!({"label": "UNDER-VOLTAGE", "now": false})));
    assert_eq!(pi1["workers"][0]["name"], "w-a");
    assert_eq!(pi1["workers"][0]["status"], "online");
    // pi2 is known only from the ball's trail; its worker is offline.
    assert_eq!(st["nodes"][1]["name"], "pi2");
    assert_eq!(st["nodes"][1]["status"], "unknown");
    assert_eq!(st["nodes"][1]["workers"][0]["status"], "offline");
    assert_eq!(st["balls"][0]["hops"], serde_json::json!(["w-a", "w-b"]));
    assert_eq!(st["balls"][0]["caught"], true);
    assert_eq!(st["caught"], 1);

    rig.rack
        .publish(rig.topics.node_status("pi1"), "offline", true);
    rig.until("pi1 offline", |s| s.nodes[0].status == "offline")
        .await;
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_malformed_payload_is_counted_and_the_feed_goes_on() {
    let rig = Rig::start(None).await;
    rig.node_online("pi1").await;
    rig.rack
        .publish(rig.topics.node_health("pi1"), "{not json", false);
    rig.rack
        .publish(rig.topics.node_status("pi2"), "maybe", false);
    rig.rack
        .publish(rig.topics.node_health("pi1"), health("pi1", 2, 51.0), false);
    let s = rig
        .until("the good sample after the bad ones", |s| {
            s.nodes[0].temp_c == Some(51.0)
        })
        .await;
    assert_eq!(s.malformed, 2);
    assert_eq!(rig.state().await["malformed"], 2);
    rig.shutdown.cancel();
}

/// Reads SSE `state` events until one satisfies `ok`.
async fn sse_until(
    rig: &Rig,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut resp = rig.http.get(rig.url("/events")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut buf = String::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let chunk = resp.chunk().await.unwrap().expect("stream ended");
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                if !frame.contains("event: state") {
                    continue;
                }
                let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
                let v: serde_json::Value = serde_json::from_str(data.unwrap()).unwrap();
                if ok(&v) {
                    return v;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting on SSE for {what}"))
}

#[tokio::test]
async fn the_sse_stream_delivers_a_snapshot_after_a_publish() {
    let rig = Rig::start(None).await;
    rig.node_online("pi1").await;
    let events = sse_until(&rig, "first snapshot", |v| v["nodes"][0]["name"] == "pi1");
    events.await;
    rig.rack.publish(
        rig.topics.balls_caught(),
        caught("b7", &[("w-a", "pi1")]),
        false,
    );
    let v = sse_until(&rig, "the caught ball", |v| v["caught"] == 1).await;
    assert_eq!(v["balls"][0]["id"], "b7");
    rig.shutdown.cancel();
}

#[tokio::test]
async fn a_node_without_fresh_health_turns_stale() {
    let rig = Rig::start(Some(Duration::from_millis(300))).await;
    rig.node_online("pi1").await;
    rig.rack
        .publish(rig.topics.node_health("pi1"), health("pi1", 1, 40.0), false);
    rig.until("health", |s| s.nodes[0].temp_c.is_some()).await;
    // No message arrives after this: the periodic SSE push must show it stale.
    let v = sse_until(&rig, "stale", |v| v["nodes"][0]["status"] == "stale").await;
    assert!(v["nodes"][0]["health_age_ms"].as_u64().unwrap() > 300);
    assert_eq!(v["nodes"][0]["stale_after_ms"], 300);
    // Fresh health makes it online again.
    rig.rack
        .publish(rig.topics.node_health("pi1"), health("pi1", 2, 41.0), false);
    rig.until("fresh again", |s| s.nodes[0].temp_c == Some(41.0))
        .await;
    assert_eq!(rig.state().await["nodes"][0]["status"], "online");
    rig.shutdown.cancel();
}
