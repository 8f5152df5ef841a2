//! Bad input over real HTTP: every malformed, mistyped, incomplete, over-limit
//! or oversized ball gets a 4xx with a JSON error, and nothing is forwarded or
//! published: the only MQTT outcome and the only accepted ball is the valid
//! sentinel sent last. A ball not sent as JSON gets 415, and unknown routes
//! and methods get a JSON 404/405 too.

mod worker_support;

use std::time::Duration;

use rackpong_agent::proto::BallCaught;
use rackpong_agent::worker::ball::ErrorBody;
use worker_support::*;

#[tokio::test]
async fn bad_balls_get_4xx_json_and_nothing_else_happens() {
    let broker = broker();
    let dir = tempdir();
    let peers_file = path(&dir, "peers");
    let mut a = args("w1", &broker, "bad", &peers_file);
    a.max_ttl = 5;
    a.max_hops = 2;
    a.max_body_bytes = 1024;
    let w = spawn_worker(a).await;
    // A live peer, so a wrongly accepted ball would be forwarded to it.
    let peer = spawn_worker(args("w2", &broker, "bad", &peers_file)).await;
    write_peers(&peers_file, &[&w.url, &peer.url]);
    wait_ready(&w.url).await;
    let (_sub, mut rx) = subscriber(&broker, "bad-sub", &["rackpong/bad/balls/#".into()]).await;

    let hop = r#"{"worker":"x","node":"n","at_ms":1}"#;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "malformed json",
            r#"{"id":"a","#.into(),
            400,
            "malformed-json",
        ),
        ("not json", "hello".into(), 400, "malformed-json"),
        ("empty body", String::new(), 400, "malformed-json"),
        (
            "wrong type",
            r#"{"id":"a","target":"w2","ttl":"3","born_ms":1}"#.into(),
            400,
            "invalid-ball",
        ),
        (
            "negative ttl",
            r#"{"id":"a","target":"w2","ttl":-3,"born_ms":1}"#.into(),
            400,
            "invalid-ball",
        ),
        (
            "missing target",
            r#"{"id":"a","ttl":3,"born_ms":1}"#.into(),
            400,
            "invalid-ball",
        ),
        (
            "hops not a list",
            r#"{"id":"a","target":"w2","ttl":3,"born_ms":1,"hops":7}"#.into(),
            400,
            "invalid-ball",
        ),
        (
            "ttl above max",
            r#"{"id":"a","target":"w2","ttl":6,"born_ms":1}"#.into(),
            400,
            "ttl-too-high",
        ),
        (
            "too many hops",
            format!(r#"{{"id":"a","target":"w2","ttl":3,"born_ms":1,"hops":[{hop},{hop},{hop}]}}"#),
            400,
            "too-many-hops",
        ),
        (
            "empty id",
            r#"{"id":"","target":"w2","ttl":3,"born_ms":1}"#.into(),
            400,
            "empty-field",
        ),
        (
            "oversized body",
            format!(
                r#"{{"id":"{}","target":"w2","ttl":3,"born_ms":1}}"#,
                "x".repeat(2000)
            ),
            413,
            "body-too-large",
        ),
    ];
    let client = reqwest::Client::new();
    for (what, body, status, code) in &cases {
        let resp = client
            .post(format!("{}/v1/balls", w.url))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), *status, "{what}");
        let err: ErrorBody = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: JSON error body: {e}"));
        assert_eq!(err.error, *code, "{what}: {}", err.detail);
        assert!(!err.detail.is_empty(), "{what}");
    }

    // The sentinel: a valid ball caught by the worker itself.
    let sentinel = r#"{"id":"sentinel","target":"w1","ttl":0,"born_ms":1}"#;
    let resp = client
        .post(format!("{}/v1/balls", w.url))
        .header("content-type", "application/json; charset=utf-8")
        .body(sentinel)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let first = tokio::time::timeout(WAIT, rx[0].recv())
        .await
        .unwrap()
        .unwrap();
    assert!(first.topic.ends_with("balls/caught"), "{}", first.topic);
    let caught: BallCaught = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(caught.ball.id, "sentinel");

    assert_eq!(
        metric(&w.url, "rackpong_worker_balls_received_total").await,
        1.0
    );
    assert_eq!(
        metric(&w.url, "rackpong_worker_balls_refused_total").await,
        cases.len() as f64
    );
    assert_eq!(
        metric(&w.url, "rackpong_worker_balls_forwarded_total").await,
        0.0
    );
    assert_eq!(
        metric(&peer.url, "rackpong_worker_balls_received_total").await,
        0.0
    );
    // Nothing else was published.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx[0].recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let broker = broker();
    let dir = tempdir();
    let peers_file = path(&dir, "peers");
    let w = spawn_worker(args("solo", &broker, "hz", &peers_file)).await;
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", w.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["worker"], "solo");
    assert_eq!(health["node"], "node-solo");
    // No peer: not ready, and says why.
    let resp = reqwest::get(format!("{}/readyz", w.url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["live_peers"], 0);
    // A peer appears in the file: ready after a refresh.
    let peer = spawn_worker(args("other", &broker, "hz", &peers_file)).await;
    write_peers(&peers_file, &[&w.url, &peer.url]);
    wait_ready(&w.url).await;
    let peers: serde_json::Value = reqwest::get(format!("{}/v1/peers", w.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        peers["live"],
        serde_json::json!([peer.url]),
        "itself excluded: {peers}"
    );
    let text = reqwest::get(format!("{}/metrics", w.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("rackpong_worker_hop_latency_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"rackpong_worker_balls_dropped_total{reason="no-live-peer"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn non_json_content_types_get_415_and_every_refusal_is_json() {
    let broker = broker();
    let dir = tempdir();
    let peers_file = path(&dir, "peers");
    let w = spawn_worker(args("w1", &broker, "ct", &peers_file)).await;
    let (_sub, mut rx) = subscriber(&broker, "ct-sub", &["rackpong/ct/balls/#".into()]).await;
    let ball = r#"{"id":"b","target":"w1","ttl":1,"born_ms":1}"#;
    let client = reqwest::Client::new();
    let balls = format!("{}/v1/balls", w.url);
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonx"),
        Some("json"),
        None,
    ] {
        let mut req = client.post(&balls).body(ball);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 415, "{ct:?}");
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(err.error, "unsupported-media-type", "{ct:?}");
        assert!(err.detail.contains(ct.unwrap_or("none")), "{}", err.detail);
    }
    // A bad deadline header is refused; a passed one too, before playing.
    for (value, status, code) in [("soon", 400, "bad-deadline"), ("1", 408, "deadline-passed")] {
        let resp = client
            .post(&balls)
            .header("content-type", "application/json")
            .header("rackpong-deadline-ms", value)
            .body(ball)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{value}");
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(err.error, code);
    }
    // Unknown routes and methods answer JSON too; 405 keeps its Allow header.
    let cases = [
        (reqwest::Method::GET, "/v1/balls", 405, "method-not-allowed"),
        (reqwest::Method::PUT, "/v1/balls", 405, "method-not-allowed"),
        (
            reqwest::Method::DELETE,
            "/v1/balls",
            405,
            "method-not-allowed",
        ),
        (reqwest::Method::POST, "/healthz", 405, "method-not-allowed"),
        (reqwest::Method::GET, "/nope", 404, "not-found"),
        (reqwest::Method::POST, "/v1/ball", 404, "not-found"),
    ];
    for (method, route, status, code) in cases {
        let resp = client
            .request(method.clone(), format!("{}{route}", w.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {route}");
        if status == 405 {
            assert!(resp.headers().contains_key("allow"), "{method} {route}");
        }
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "application/json", "{method} {route}");
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(err.error, code, "{method} {route}");
        assert!(err.detail.contains(route), "{}", err.detail);
    }
    // JSON types are accepted (`+json` suffix and parameters included).
    for (i, ct) in ["Application/JSON", "application/ball+json; charset=utf-8"]
        .iter()
        .enumerate()
    {
        let body = format!(r#"{{"id":"ok{i}","target":"w1","ttl":1,"born_ms":1}}"#);
        let resp = client
            .post(&balls)
            .header("content-type", *ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "{ct}");
    }
    // Only those two balls were played.
    for i in 0..2 {
        let p = tokio::time::timeout(WAIT, rx[0].recv())
            .await
            .unwrap()
            .unwrap();
        let c: BallCaught = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(c.ball.id, format!("ok{i}"));
    }
    assert_eq!(
        metric(&w.url, "rackpong_worker_balls_received_total").await,
        2.0
    );
}
