//! The game rules on real workers: a ball is caught by its target with the
//! whole trail; forwarded with one hop and one ttl per worker; dropped with
//! the right reason when its ttl is spent, when there is no live peer, and
//! when every forward attempt fails; and a gracefully stopped worker answers
//! for every ball it held, then publishes `offline`.

mod worker_support;

use std::time::Duration;

use axum::http::StatusCode;
use rackpong_agent::proto::{Ball, BallCaught, BallDropped, DropReason};
use rumqttc::Publish;
use tokio::sync::mpsc::Receiver;
use worker_support::*;

fn ball(id: &str, target: &str, ttl: u32) -> Ball {
    Ball {
        id: id.into(),
        target: target.into(),
        ttl,
        born_ms: rackpong_agent::now_ms(),
        hops: vec![],
    }
}

async fn throw(url: &str, b: &Ball) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/balls"))
        .json(b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

async fn next(rx: &mut Receiver<Publish>) -> Publish {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an outcome")
        .unwrap()
}

async fn next_dropped(rx: &mut Receiver<Publish>) -> BallDropped {
    let p = next(rx).await;
    assert!(p.topic.ends_with("balls/dropped"), "{}", p.topic);
    serde_json::from_slice(&p.payload).unwrap()
}

#[tokio::test]
async fn caught_forwarded_and_ttl_spent() {
    let broker = broker();
    let dir = tempdir();
    let rack = spawn_rack(2, &broker, "g1", dir.path()).await;
    let (_s, mut rx) = subscriber(&broker, "g1", &["rackpong/g1/balls/#".into()]).await;
    let mut rx = rx.remove(0);

    // w1 → w2: one forward, caught by w2 with both hops.
    throw(&rack[0].url, &ball("b1", "w2", 3)).await;
    let p = next(&mut rx).await;
    assert!(p.topic.ends_with("balls/caught"));
    let c: BallCaught = serde_json::from_slice(&p.payload).unwrap();
    assert_eq!(c.worker, "w2");
    assert_eq!(c.ball.ttl, 2);
    let trail: Vec<_> = c
        .ball
        .hops
        .iter()
        .map(|h| (h.worker.as_str(), h.node.as_str()))
        .collect();
    assert_eq!(trail, [("w1", "node-w1"), ("w2", "node-w2")]);

    // Addressed to nobody with ttl 2: w1 → w2 → w1, then spent at w1.
    throw(&rack[0].url, &ball("b2", "nobody", 2)).await;
    let d = next_dropped(&mut rx).await;
    assert_eq!(d.reason, DropReason::TtlSpent);
    assert_eq!(d.ball.ttl, 0);
    assert_eq!(d.ball.hops.len(), 3);
    assert_eq!(d.worker, "w1");
    assert_eq!(
        metric(&rack[1].url, "rackpong_worker_balls_forwarded_total").await,
        1.0
    );
}

#[tokio::test]
async fn no_live_peer_and_forward_failed() {
    let broker = broker();
    let dir = tempdir();
    let peers_file = path(&dir, "peers");
    let w = spawn_worker(args("w1", &broker, "g2", &peers_file)).await;
    let (_s, mut rx) = subscriber(&broker, "g2", &["rackpong/g2/balls/#".into()]).await;
    let mut rx = rx.remove(0);

    throw(&w.url, &ball("lonely", "w9", 5)).await;
    let d = next_dropped(&mut rx).await;
    assert_eq!(
        (d.ball.id.as_str(), d.reason),
        ("lonely", DropReason::NoLivePeer)
    );

    // A peer that is alive (answers /healthz) but fails every ball with 500.
    let app = axum::Router::new()
        .route(
            "/healthz",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"status":"ok","worker":"sick","node":"n"}))
            }),
        )
        .route(
            "/v1/balls",
            axum::routing::post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sick = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    write_peers(&peers_file, &[&w.url, &sick]);
    wait_ready(&w.url).await;
    throw(&w.url, &ball("unlucky", "w9", 5)).await;
    let d = next_dropped(&mut rx).await;
    assert_eq!(
        (d.ball.id.as_str(), d.reason),
        ("unlucky", DropReason::ForwardFailed)
    );
    assert!(d.detail.unwrap().contains("500"));
    // The failed peer left the live set at once.
    let peers: serde_json::Value = reqwest::get(format!("{}/v1/peers", w.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(peers["live"].as_array().unwrap().is_empty() || peers["live"][0] == sick.as_str());
    assert_eq!(
        metric(&w.url, "rackpong_worker_forward_failures_total").await,
        1.0
    );
}

#[tokio::test]
async fn graceful_shutdown_answers_for_every_ball_and_goes_offline() {
    let broker = broker();
    let dir = tempdir();
    let rack = spawn_rack(3, &broker, "g3", dir.path()).await;
    let (_s, mut rx) = subscriber(
        &broker,
        "g3",
        &[
            "rackpong/g3/balls/#".into(),
            "rackpong/g3/workers/w1/status".into(),
        ],
    )
    .await;
    let mut status = rx.remove(1);
    let mut balls = rx.remove(0);
    assert_eq!(&next(&mut status).await.payload[..], b"online");

    // Many balls addressed to nobody keep bouncing; stop w1 in the middle.
    let n = 120;
    let client = reqwest::Client::new();
    let mut accepted = 0;
    for i in 0..n {
        let url = &rack[i % 3].url;
        let r = client
            .post(format!("{url}/v1/balls"))
            .json(&ball(&format!("s{i}"), "nobody", 8))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == StatusCode::ACCEPTED) {
            accepted += 1;
        }
        if i == n / 2 {
            rack[0].cancel.cancel();
        }
    }
    let mut seen = std::collections::HashMap::new();
    tokio::time::timeout(WAIT, async {
        while seen.len() < accepted {
            let p = balls.recv().await.unwrap();
            let d: BallDropped = serde_json::from_slice(&p.payload).unwrap();
            *seen.entry(d.ball.id).or_insert(0) += 1;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {accepted} balls ended", seen.len()));
    assert!(seen.values().all(|&c| c == 1), "a ball ended twice");
    assert!(accepted > n / 2, "w2/w3 kept accepting: {accepted}");
    // w1 stopped cleanly and said so.
    let w1 = tokio::time::timeout(WAIT, status.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&w1.payload[..], b"offline");
    let w1_task = rack.into_iter().next().unwrap().task;
    assert!(
        tokio::time::timeout(WAIT, w1_task)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
    // No extra outcome arrives later.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), balls.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn peers_from_dns_and_a_static_list() {
    let broker = broker();
    let dir = tempdir();
    let none = path(&dir, "absent-peers-file");
    let w2 = spawn_worker(args("w2", &broker, "g4", &none)).await;
    let w3 = spawn_worker(args("w3", &broker, "g4", &none)).await;
    let mut a = args("w1", &broker, "g4", &none);
    // The A record of localhost stands in for a headless Service.
    a.peers_dns = Some(format!("localhost:{}", w2.addr.port()));
    a.peers = vec![w3.url.clone()];
    let w1 = spawn_worker(a).await;
    wait_ready(&w1.url).await;
    let peers: serde_json::Value = http()
        .get(format!("{}/v1/peers", w1.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let live: Vec<String> = serde_json::from_value(peers["live"].clone()).unwrap();
    let w2_v4 = format!("http://127.0.0.1:{}", w2.addr.port());
    assert!(live.contains(&w2_v4), "{live:?}");
    assert!(live.contains(&w3.url), "{live:?}");
}

#[tokio::test]
async fn beyond_the_in_flight_limit_balls_are_dropped_as_overloaded() {
    let broker = broker();
    let dir = tempdir();
    let mut a = args("w1", &broker, "g5", &path(&dir, "peers"));
    a.max_in_flight = 0;
    let w = spawn_worker(a).await;
    let (_s, mut rx) = subscriber(&broker, "g5", &["rackpong/g5/balls/#".into()]).await;
    let mut rx = rx.remove(0);
    throw(&w.url, &ball("heavy", "w2", 3)).await;
    let d = next_dropped(&mut rx).await;
    assert_eq!(
        (d.ball.id.as_str(), d.reason),
        ("heavy", DropReason::Overloaded)
    );
    assert_eq!(d.ball.hops.len(), 1);
}

#[tokio::test]
async fn start_delay_holds_the_bind_and_cancel_ends_it() {
    let broker = broker();
    let dir = tempdir();
    let announce = path(&dir, "w.addr");
    let mut a = args("late", &broker, "g6", &path(&dir, "peers"));
    a.announce_file = Some(announce.clone());
    a.start_delay = Duration::from_millis(300);
    let cancel = tokio_util::sync::CancellationToken::new();
    let started = tokio::time::Instant::now();
    let task = tokio::spawn(rackpong_agent::worker::run(a.clone(), cancel.clone()));
    let addr = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(s) = tokio::fs::read_to_string(&announce).await {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(addr.ends_with('\n') && addr.trim().parse::<std::net::SocketAddr>().is_ok());
    cancel.cancel();
    assert!(
        tokio::time::timeout(WAIT, task)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );

    // Cancelled during the delay: returns at once, never binds.
    let never = path(&dir, "never.addr");
    a.announce_file = Some(never.clone());
    a.start_delay = Duration::from_secs(3600);
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(rackpong_agent::worker::run(a, cancel.clone()));
    cancel.cancel();
    assert!(
        tokio::time::timeout(WAIT, task)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
    assert!(!never.exists());
}

/// Each catch is reported once, by the catching worker, on its own node's
/// `nodes/<node>/catches` (the node agent's catch flash reads only that).
#[tokio::test]
async fn catches_are_reported_on_the_catching_workers_node_topic() {
    let broker = broker();
    let dir = tempdir();
    let rack = spawn_rack(2, &broker, "g6", dir.path()).await;
    let (_s, mut rx) = subscriber(&broker, "g6", &["rackpong/g6/nodes/+/catches".into()]).await;
    let mut rx = rx.remove(0);
    for (i, target) in ["w2", "w2", "w1", "w2"].into_iter().enumerate() {
        throw(&rack[0].url, &ball(&format!("c{i}"), target, 3)).await;
    }
    let mut per_node = std::collections::BTreeMap::<String, u64>::new();
    while per_node.values().sum::<u64>() < 4 {
        let p = next(&mut rx).await;
        let r = rackpong_agent::proto::message::catches(&p.payload).unwrap();
        let node = p.topic.split('/').nth(3).unwrap().to_string();
        assert_eq!(
            format!("node-{}", r.worker),
            node,
            "reported on its own node"
        );
        assert!(r.caught >= 1, "{r:?}");
        *per_node.entry(node).or_default() += r.caught;
    }
    let want: std::collections::BTreeMap<String, u64> =
        [("node-w1".to_string(), 1), ("node-w2".to_string(), 3)].into();
    assert_eq!(per_node, want);
}
