//! The dashboard's HTTP surface: the stop endpoint's token check, JSON
//! errors, and a self-contained page with no external references.

mod dashboard_common;

use dashboard_common::{Rig, TOKEN, caught};

async fn stop(rig: &Rig, auth: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = rig.http.post(rig.url("/api/stop"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn stop_needs_the_token_and_cancels_the_run() {
    let rig = Rig::start(None).await;
    let (status, body) = stop(&rig, None).await;
    assert_eq!(status, 401);
    assert!(
        body["error"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    let (status, body) = stop(&rig, Some("Bearer not-the-token")).await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string());
    let (status, _) = stop(&rig, Some(TOKEN)).await;
    assert_eq!(status, 401, "a token without the Bearer scheme is refused");
    assert!(!rig.run.is_cancelled());

    let (status, body) = stop(&rig, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 202);
    assert_eq!(body["stopping"], true);
    assert!(rig.run.is_cancelled());
    rig.shutdown.cancel();
}

#[tokio::test]
async fn the_page_is_html_and_self_contained() {
    let rig = Rig::start(None).await;
    for (path, ty) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let r = rig.http.get(rig.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(ty), "{path}: {ct}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} refers to another host"
        );
        assert!(
            !body.contains("//cdn") && !body.contains("@import"),
            "{path}"
        );
    }
    let page = rig
        .http
        .get(rig.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"<script src="/app.js">"#), "{page}");
    let script = rig
        .http
        .get(rig.url("/app.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(script.contains(r#"new EventSource("/events")"#));
    let r = rig.http.get(rig.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].is_string());
    rig.shutdown.cancel();
}

#[tokio::test]
async fn graceful_shutdown_ends_open_event_streams() {
    let rig = Rig::start(None).await;
    let mut events = rig.http.get(rig.url("/events")).send().await.unwrap();
    assert!(events.chunk().await.unwrap().is_some());
    rig.shutdown.cancel();
    let Rig { dash, .. } = rig;
    tokio::time::timeout(dashboard_common::WAIT, dash.wait())
        .await
        .expect("the server ends although a client still listens");
}

#[tokio::test]
async fn the_page_embeds_the_current_state_safely() {
    let rig = Rig::start(None).await;
    rig.node_online("pi1").await;
    let evil = "w</script><b>x";
    rig.rack.publish(
        rig.topics.balls_caught(),
        caught("b1", &[(evil, "pi1")]),
        false,
    );
    rig.until("the ball", |s| s.caught == 1).await;
    let page = rig
        .http
        .get(rig.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("pi</script>"),
        "a node name closed the script element"
    );
    let start = page
        .find(r#"<script id="initial" type="application/json">"#)
        .unwrap();
    let json = &page[start..].split_once('>').unwrap().1;
    let json = json.split_once("</script>").unwrap().0;
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["nodes"][0]["workers"][0]["name"], evil);
    rig.shutdown.cancel();
}

#[tokio::test]
async fn without_a_run_an_authorised_stop_is_a_conflict() {
    use rackpong_controller::dashboard::{Dashboard, DashboardConfig, Sources};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cfg = DashboardConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: TOKEN.into(),
        topics: Default::default(),
        stale_after: None,
        max_balls: 4,
        run_dir: None,
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let dash = Dashboard::start(cfg, Sources::default(), None, shutdown.clone())
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/stop", dash.addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("no run"));
    let st: serde_json::Value = reqwest::get(format!("http://{}/api/state", dash.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(st["progress"].is_null() && st["nodes"].as_array().unwrap().is_empty());
    shutdown.cancel();
    dash.wait().await;
}
