//! Exactly one outcome per accepted ball across a stall longer than the
//! forward timeout, with real worker processes over a real broker: balls
//! flow through four workers while one is frozen with SIGSTOP for well over
//! the forward timeout and then resumed with SIGCONT. The forwards that sat
//! in the frozen worker's sockets were reported by their senders; on resume
//! the frozen worker must refuse them (past their deadline) instead of
//! playing them a second time, and must still answer for the balls it held.
//! Whether a stale forward reaches the frozen worker's handler depends on
//! timing (hyper drops most of them when it sees the sender's FIN first), so
//! the two halves of the rule are also tested one at a time: a request
//! queued in a frozen receiver past its deadline is refused, and a `202`
//! that reached a frozen sender during its freeze is honoured.

mod worker_support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rackpong_agent::proto::{Ball, BallCaught, BallDropped};
use rand::Rng;
use rumqttc::Publish;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::Receiver;
use worker_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_rackpong-agent");
/// The workers' forward timeout, and how long one is frozen (over 2× the
/// timeout plus the settle time, so every stuck forward has been given up).
const FORWARD_TIMEOUT: &str = "2s";
const FREEZE: Duration = Duration::from_secs(5);
const RATE_PERIOD: Duration = Duration::from_millis(10);

fn ball_id(p: &Publish) -> String {
    if p.topic.ends_with("caught") {
        serde_json::from_slice::<BallCaught>(&p.payload)
            .unwrap()
            .ball
            .id
    } else {
        serde_json::from_slice::<BallDropped>(&p.payload)
            .unwrap()
            .ball
            .id
    }
}

/// Throws `n` balls, one per tick, at the running workers `urls`, each
/// addressed to a random one of `names`; returns the ids answered `202`.
async fn throw(prefix: &str, n: usize, urls: &[&str], names: &[&str]) -> HashSet<String> {
    let client = http();
    let mut tick = tokio::time::interval(RATE_PERIOD);
    let mut accepted = HashSet::new();
    for i in 0..n {
        tick.tick().await;
        let (entry, target) = {
            let mut rng = rand::rng();
            (
                urls[rng.random_range(0..urls.len())],
                names[rng.random_range(0..names.len())],
            )
        };
        let ball = Ball {
            id: format!("{prefix}{i}"),
            target: target.into(),
            ttl: 12,
            born_ms: rackpong_agent::now_ms(),
            hops: vec![],
        };
        let sent = client
            .post(format!("{entry}/v1/balls"))
            .json(&ball)
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().as_u16() == 202) {
            accepted.insert(ball.id);
        }
    }
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frozen_past_the_forward_timeout_ends_no_ball_twice() {
    let broker = broker();
    let dir = tempdir();
    let peers_file = path(&dir, "peers");
    write_peers(&peers_file, &[]);
    let extra = [
        "--forward-timeout",
        FORWARD_TIMEOUT,
        "--peer-refresh",
        "200ms",
    ];
    let names = ["w1", "w2", "w3", "w4"];
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for name in names {
        let (child, url) =
            spawn_process(BIN, name, &broker.url(), "stall", &peers_file, &extra).await;
        children.push(child);
        urls.push(url);
    }
    let url_refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    write_peers(&peers_file, &url_refs);
    for u in &urls {
        wait_ready(u).await;
    }
    let (_sub, mut rx) = subscriber(&broker, "stall-sub", &["rackpong/stall/balls/#".into()]).await;
    // Drained all along: the subscription queue is shorter than the game.
    let mut rx = {
        let mut sub = rx.remove(0);
        let (tx, ids) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(p) = sub.recv().await {
                let _ = tx.send(ball_id(&p));
            }
        });
        ids
    };
    let frozen = Pid::from_raw(children[3].id().unwrap() as i32);
    let running = &url_refs[..3];

    // Before, during and after the freeze, balls enter at w1..w3 and are
    // addressed to any of the four, so some are forwarded to the frozen w4.
    let mut accepted = throw("a", 25, running, &names).await;
    freeze(frozen).await;
    let per_tick = RATE_PERIOD.as_millis() as usize;
    accepted.extend(throw("b", FREEZE.as_millis() as usize / per_tick, running, &names).await);
    kill(frozen, Signal::SIGCONT).unwrap();
    accepted.extend(throw("c", 25, running, &names).await);

    let mut ended: HashMap<String, usize> = HashMap::new();
    tokio::time::timeout(WAIT, async {
        while accepted.iter().any(|id| !ended.contains_key(id)) {
            *ended.entry(rx.recv().await.unwrap()).or_default() += 1;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {} balls ended", ended.len(), accepted.len()));
    // A second outcome would come from w4 replaying a stale forward right
    // after SIGCONT, long before now; give a late one a moment to show.
    while let Ok(Some(id)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
        *ended.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = ended.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "balls that ended twice: {twice:?}");
    let unknown: Vec<_> = ended.keys().filter(|id| !accepted.contains(*id)).collect();
    assert!(
        unknown.is_empty(),
        "outcomes of balls never accepted: {unknown:?}"
    );

    // The freeze did strand forwards: their senders gave up on them.
    let failures: f64 = {
        let mut sum = 0.0;
        for u in running {
            sum += metric(u, "rackpong_worker_forward_failures_total").await;
        }
        sum
    };
    assert!(failures >= 1.0, "no sender gave up on w4");
}

/// SIGSTOPs `pid` and waits (bounded) until the kernel shows it stopped.
async fn freeze(pid: Pid) {
    kill(pid, Signal::SIGSTOP).unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            if stat
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('T')
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("worker stopped");
}

/// One worker process `name` with a 1 s forward timeout and the given peers.
async fn one_worker(
    broker: &rackpong_agent::broker::EmbeddedBroker,
    rack: &str,
    dir: &tempfile::TempDir,
    peers: &[&str],
) -> (tokio::process::Child, String, Pid) {
    let peers_file = path(dir, "peers");
    write_peers(&peers_file, peers);
    let extra = ["--forward-timeout", "1s", "--peer-refresh", "200ms"];
    let (child, url) = spawn_process(BIN, "w4", &broker.url(), rack, &peers_file, &extra).await;
    let pid = Pid::from_raw(child.id().unwrap() as i32);
    (child, url, pid)
}

/// Throws a ball caught at once by `url`'s worker `w4`; the next outcome on
/// `rx` must be it, so nothing was published before it.
async fn sentinel_is_next(url: &str, rx: &mut Receiver<Publish>) {
    let ball = Ball {
        id: "sentinel".into(),
        target: "w4".into(),
        ttl: 1,
        born_ms: 1,
        hops: vec![],
    };
    let r = http()
        .post(format!("{url}/v1/balls"))
        .json(&ball)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let p = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ball_id(&p), "sentinel", "published first: {}", p.topic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_queued_in_a_frozen_worker_past_its_deadline_is_refused() {
    let broker = broker();
    let dir = tempdir();
    let (_child, url, pid) = one_worker(&broker, "late", &dir, &[]).await;
    let (_sub, mut rx) = subscriber(&broker, "late-sub", &["rackpong/late/balls/#".into()]).await;
    freeze(pid).await;
    // A sender whose deadline is 300 ms away writes its forward into the
    // frozen worker's socket and keeps the connection open (as TCP does
    // when it resends after a partition).
    let deadline = rackpong_agent::now_ms() + 300;
    let body = r#"{"id":"stale","target":"w4","ttl":3,"born_ms":1}"#;
    let request = format!(
        "POST /v1/balls HTTP/1.1\r\nhost: w4\r\ncontent-type: application/json\r\n\
         rackpong-deadline-ms: {deadline}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    // The freeze outlasts the deadline (this wait is the fault itself).
    tokio::time::sleep(Duration::from_millis(800)).await;
    kill(pid, Signal::SIGCONT).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"deadline-passed""#), "{answer}");
    sentinel_is_next(&url, &mut rx[0]).await;
}

/// A stand-in peer that names itself `peer` on `/healthz` and holds every
/// ball until told to answer `202`.
async fn holding_peer() -> (String, Receiver<()>, tokio::sync::mpsc::Sender<()>) {
    use axum::routing::{get, post};
    let (got_tx, got) = tokio::sync::mpsc::channel::<()>(4);
    let (go, go_rx) = tokio::sync::mpsc::channel::<()>(4);
    let go_rx = std::sync::Arc::new(tokio::sync::Mutex::new(go_rx));
    let app = axum::Router::new()
        .route(
            "/healthz",
            get(|| async {
                axum::Json(serde_json::json!({"status":"ok","worker":"peer","node":"n"}))
            }),
        )
        .route(
            "/v1/balls",
            post(move || async move {
                let _ = got_tx.send(()).await;
                go_rx.lock().await.recv().await;
                axum::http::StatusCode::ACCEPTED
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got, go)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_202_that_reached_a_frozen_sender_is_honoured_on_resume() {
    let broker = broker();
    let dir = tempdir();
    let (peer, mut got, go) = holding_peer().await;
    let (_child, url, pid) = one_worker(&broker, "held", &dir, &[&peer]).await;
    wait_ready(&url).await;
    let (_sub, mut rx) = subscriber(&broker, "held-sub", &["rackpong/held/balls/#".into()]).await;
    let ball = Ball {
        id: "held".into(),
        target: "peer".into(),
        ttl: 3,
        born_ms: 1,
        hops: vec![],
    };
    let r = http()
        .post(format!("{url}/v1/balls"))
        .json(&ball)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // w4 is waiting for the peer's answer: freeze it, let the peer take the
    // ball (its 202 lands in w4's socket), resume w4 after its timeout.
    tokio::time::timeout(WAIT, got.recv())
        .await
        .unwrap()
        .unwrap();
    freeze(pid).await;
    go.send(()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1800)).await;
    kill(pid, Signal::SIGCONT).unwrap();
    tokio::time::timeout(WAIT, async {
        while metric(&url, "rackpong_worker_balls_forwarded_total").await
            + metric(&url, "rackpong_worker_balls_dropped_total").await
            < 1.0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(
        metric(&url, "rackpong_worker_balls_forwarded_total").await,
        1.0
    );
    assert_eq!(
        metric(&url, "rackpong_worker_balls_dropped_total").await,
        0.0
    );
    sentinel_is_next(&url, &mut rx[0]).await;
}
