//! The ball factory against a real rack (6 in-process workers on loopback,
//! embedded broker): 1,000 balls, each accounted for exactly once, caught
//! balls with a consistent hop trail ending at their target; the service
//! level agrees with the totals; malformed outcome payloads are counted, not
//! fatal; entries that refuse are retried elsewhere; silence times out.

#[path = "../../agent/tests/worker_support/mod.rs"]
mod worker_support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rackpong_agent::proto::Topics;
use rackpong_controller::factory::{
    BallFactory, Entry, FactoryConfig, OutcomeKind, WorkerEndpoint,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use worker_support::*;

fn config(prefix: &str, rate: f64, n: u64) -> FactoryConfig {
    FactoryConfig {
        rate_per_s: rate,
        ttl: 64,
        // Generous: this asserts accounting, not speed, and CI shares 2 cores.
        timeout: Duration::from_secs(60),
        window: Duration::from_secs(60),
        seed: 7,
        id_prefix: prefix.into(),
        entry: Entry::Direct,
        max_balls: Some(n),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_balls_each_accounted_for_once() {
    let broker = broker();
    let dir = tempdir();
    let rack = spawn_rack(6, &broker, "fg", dir.path()).await;
    let names: HashSet<String> = rack.iter().map(|w| w.name.clone()).collect();
    let endpoints: Vec<WorkerEndpoint> = rack
        .iter()
        .map(|w| WorkerEndpoint {
            name: w.name.clone(),
            url: Some(w.url.clone()),
        })
        .collect();
    let (_targets_tx, targets) = watch::channel(endpoints);
    let (link, _) = subscriber(&broker, "factory-fg", &[]).await;
    let topics = Topics::new("fg");

    let cancel = CancellationToken::new();
    let factory = BallFactory::start(
        config("run1", 400.0, 1000),
        targets,
        &link,
        &topics,
        cancel.clone(),
    );
    let mut outcomes = factory.outcomes();
    // Garbage on the outcome topics must not disturb the count.
    link.publish(topics.balls_caught(), b"{not json".to_vec(), false);
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while all.len() < 1000 {
            match outcomes.recv().await {
                Ok(o) => all.push(o),
                Err(e) => panic!("outcome stream: {e}"),
            }
        }
        all
    });
    tokio::time::timeout(Duration::from_secs(120), factory.settled())
        .await
        .expect("all balls settled");
    let all = tokio::time::timeout(WAIT, collect).await.unwrap().unwrap();

    let t = factory.totals();
    assert_eq!(t.sent, 1000);
    assert_eq!(t.resolved(), 1000, "{t:?}");
    assert_eq!(
        (t.pending, t.unmatched, t.timed_out, t.not_accepted),
        (0, 0, 0, 0),
        "{t:?}"
    );
    // (1 - 1/5)^64: a ball not caught within its ttl is practically impossible.
    assert_eq!(t.caught, 1000, "{t:?}");

    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for o in &all {
        *per_id.entry(o.id.as_str()).or_default() += 1;
        let OutcomeKind::Caught { hops, worker, .. } = &o.kind else {
            panic!("{o:?}");
        };
        assert_eq!(worker, &o.target);
        assert_eq!(
            hops.last().map(|h| h.worker.as_str()),
            Some(o.target.as_str()),
            "{o:?}"
        );
        assert!(hops.len() <= 65);
        assert!(
            hops.iter()
                .all(|h| names.contains(&h.worker) && h.node == format!("node-{}", h.worker))
        );
        // Never forwarded to itself, and only the last hop is the target.
        assert!(
            hops.windows(2).all(|p| p[0].worker != p[1].worker),
            "{hops:?}"
        );
        assert!(
            hops[..hops.len() - 1].iter().all(|h| h.worker != o.target),
            "{hops:?}"
        );
        assert!(hops.windows(2).all(|p| p[0].at_ms <= p[1].at_ms));
    }
    assert_eq!(per_id.len(), 1000);
    assert!(per_id.values().all(|&c| c == 1));

    // The workers saw exactly the hops the trails record.
    let total_hops: usize = all
        .iter()
        .map(|o| match &o.kind {
            OutcomeKind::Caught { hops, .. } => hops.len(),
            _ => 0,
        })
        .sum();
    let mut received = 0.0;
    for w in &rack {
        received += metric(&w.url, "rackpong_worker_balls_received_total").await;
    }
    assert_eq!(received as usize, total_hops);

    let level = factory.service_level();
    assert_eq!((level.sent, level.caught), (1000, 1000));
    assert_eq!(level.delivery_rate, Some(1.0));
    assert!(level.p50_ms.unwrap() <= level.p95_ms.unwrap());
    assert!(level.p95_ms.unwrap() <= level.p99_ms.unwrap());
    assert_eq!(t.malformed, 1);
    cancel.cancel();
}

#[tokio::test]
async fn no_worker_means_refused_by_the_rack_not_lost_and_a_zero_delivery_rate() {
    let broker = broker();
    let (link, _) = subscriber(&broker, "factory-empty", &[]).await;
    let (_tx, targets) = watch::channel(Vec::<WorkerEndpoint>::new());
    let cancel = CancellationToken::new();
    let factory = BallFactory::start(
        config("e", 500.0, 20),
        targets,
        &link,
        &Topics::new("fe"),
        cancel.clone(),
    );
    tokio::time::timeout(WAIT, factory.settled()).await.unwrap();
    let t = factory.totals();
    assert_eq!((t.sent, t.refused, t.caught), (20, 20, 0));
    assert_eq!((t.not_accepted, t.dropped_total(), t.timed_out), (0, 0, 0));
    let level = factory.service_level();
    assert_eq!(level.delivery_rate, Some(0.0));
    assert_eq!(
        (level.refused, level.refused_total, level.dropped),
        (20, 20, 0)
    );
    assert_eq!(level.delivery_rate_accepted(), None, "nothing was accepted");
    cancel.cancel();
}

#[tokio::test]
async fn a_dead_entry_is_retried_elsewhere_and_a_silent_rack_times_out() {
    let broker = broker();
    let (link, _) = subscriber(&broker, "factory-dead", &[]).await;
    // A listener that accepts balls but never publishes an outcome.
    let app = axum::Router::new().route(
        "/v1/balls",
        axum::routing::post(|| async { axum::http::StatusCode::ACCEPTED }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    // A port nothing listens on (bound, then closed).
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let endpoints = vec![
        WorkerEndpoint {
            name: "silent".into(),
            url: Some(silent),
        },
        WorkerEndpoint {
            name: "dead".into(),
            url: Some(dead),
        },
    ];
    let (_tx, targets) = watch::channel(endpoints);
    let mut cfg = config("d", 500.0, 30);
    cfg.timeout = Duration::from_millis(300);
    let cancel = CancellationToken::new();
    let factory = BallFactory::start(cfg, targets, &link, &Topics::new("fd"), cancel.clone());
    let mut outcomes = factory.outcomes();
    tokio::time::timeout(WAIT, factory.settled()).await.unwrap();
    let t = factory.totals();
    // Every ball reached the silent worker (the dead one was skipped), then timed out.
    assert_eq!((t.sent, t.timed_out, t.not_accepted), (30, 30, 0), "{t:?}");
    let o = outcomes.recv().await.unwrap();
    assert_eq!(o.kind, OutcomeKind::TimedOut);
    cancel.cancel();
}

#[tokio::test]
async fn an_ingress_url_takes_every_ball() {
    let broker = broker();
    let dir = tempdir();
    let rack = spawn_rack(3, &broker, "fu", dir.path()).await;
    // No worker URL: only the ingress is thrown at.
    let endpoints: Vec<WorkerEndpoint> = rack
        .iter()
        .map(|w| WorkerEndpoint {
            name: w.name.clone(),
            url: None,
        })
        .collect();
    let (_tx, targets) = watch::channel(endpoints);
    let (link, _) = subscriber(&broker, "factory-fu", &[]).await;
    let mut cfg = config("u", 500.0, 100);
    cfg.entry = Entry::Url(format!("{}/", rack[1].url));
    let cancel = CancellationToken::new();
    let factory = BallFactory::start(cfg, targets, &link, &Topics::new("fu"), cancel.clone());
    let mut outcomes = factory.outcomes();
    tokio::time::timeout(Duration::from_secs(60), factory.settled())
        .await
        .unwrap();
    let t = factory.totals();
    assert_eq!((t.sent, t.caught), (100, 100), "{t:?}");
    for _ in 0..100 {
        let o = outcomes.recv().await.unwrap();
        let OutcomeKind::Caught { hops, .. } = &o.kind else {
            panic!("{o:?}");
        };
        assert_eq!(hops[0].worker, "w2", "{o:?}");
    }
    cancel.cancel();
}
