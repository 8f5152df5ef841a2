//! Hop benchmark: 8 in-process workers on loopback and an embedded broker;
//! the ball factory throws balls at a fixed rate (each addressed to a random
//! worker, so a ball makes ~8 hops on average) and the workers' own metrics
//! give the forwarded hops per second and the per-hop handling latency
//! (receipt to the next peer's `202` or the outcome queued for MQTT).
//!
//! `cargo bench -p rackpong-controller --bench worker_hops [-- RATE SECONDS WORKERS]`
//!
//! With `WORKER_BIN=/path/to/rackpong-agent` the workers are separate
//! processes of that binary instead (to compare builds, e.g. the static musl
//! binary's allocator against glibc's).

#[path = "../../agent/tests/worker_support/mod.rs"]
#[allow(dead_code, clippy::all)]
mod worker_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rackpong_agent::proto::Topics;
use rackpong_controller::factory::{BallFactory, Entry, FactoryConfig, WorkerEndpoint};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use worker_support::*;

fn arg(n: usize, default: f64) -> f64 {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Cumulative hop-latency buckets summed over the workers: le → count.
async fn buckets(urls: &[String]) -> BTreeMap<u64, f64> {
    let mut out = BTreeMap::new();
    for url in urls {
        let text = http()
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for line in text
            .lines()
            .filter(|l| l.starts_with("rackpong_worker_hop_latency_seconds_bucket"))
        {
            let le = line
                .split("le=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap();
            let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            let key = if le == "+Inf" {
                u64::MAX
            } else {
                (le.parse::<f64>().unwrap() * 1e9) as u64
            };
            *out.entry(key).or_insert(0.0) += v;
        }
    }
    out
}

/// `n` worker processes of `bin`, with a peers file listing all of them.
async fn spawn_procs(
    bin: &str,
    n: usize,
    broker: &str,
    dir: &Path,
) -> (Vec<tokio::process::Child>, Vec<WorkerEndpoint>) {
    let mut children = Vec::new();
    let mut endpoints = Vec::new();
    for i in 1..=n {
        let name = format!("w{i}");
        let announce = dir.join(format!("{name}.addr"));
        let child = tokio::process::Command::new(bin)
            .args([
                "worker",
                "--name",
                &name,
                "--listen",
                "127.0.0.1:0",
                "--broker",
                broker,
            ])
            .args([
                "--rack",
                "bench",
                "--peer-refresh",
                "1s",
                "--mqtt-buffer",
                "100000",
            ])
            .arg("--announce-file")
            .arg(&announce)
            .arg("--peers-file")
            .arg(dir.join("peers"))
            .env("RACKPONG_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn worker");
        let addr = tokio::time::timeout(WAIT, async {
            loop {
                if let Ok(s) = tokio::fs::read_to_string(&announce).await
                    && s.ends_with('\n')
                {
                    return s.trim().to_string();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("announce file");
        children.push(child);
        endpoints.push(WorkerEndpoint {
            name,
            url: Some(format!("http://{addr}")),
        });
    }
    let urls: Vec<&str> = endpoints.iter().filter_map(|e| e.url.as_deref()).collect();
    write_peers(&dir.join("peers"), &urls);
    for u in &urls {
        wait_ready(u).await;
    }
    (children, endpoints)
}

fn quantile(b: &BTreeMap<u64, f64>, q: f64) -> String {
    let total = b.get(&u64::MAX).copied().unwrap_or(0.0);
    b.iter()
        .find(|(_, c)| **c >= q * total)
        .map(|(le, _)| {
            if *le == u64::MAX {
                "> max bucket".into()
            } else {
                format!("<= {:.3} ms", *le as f64 / 1e6)
            }
        })
        .unwrap_or_default()
}

fn main() {
    let rate = arg(0, 2000.0);
    let secs = arg(1, 5.0);
    let n = arg(2, 8.0) as usize;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let broker = broker();
            let dir = tempdir();
            // Keeps the in-process workers or the child processes alive.
            let (_rack, _children, endpoints) = match std::env::var("WORKER_BIN") {
                Ok(bin) => {
                    let (children, endpoints) =
                        spawn_procs(&bin, n, &broker.url(), dir.path()).await;
                    (Vec::new(), children, endpoints)
                }
                Err(_) => {
                    let rack = spawn_rack(n, &broker, "bench", dir.path()).await;
                    let endpoints = rack
                        .iter()
                        .map(|w| WorkerEndpoint {
                            name: w.name.clone(),
                            url: Some(w.url.clone()),
                        })
                        .collect::<Vec<_>>();
                    (rack, Vec::new(), endpoints)
                }
            };
            let urls: Vec<String> = endpoints.iter().filter_map(|e| e.url.clone()).collect();
            let (_tx, targets) = watch::channel(endpoints);
            let (link, _) = subscriber(&broker, "bench-factory", &[]).await;
            let balls = (rate * secs) as u64;
            let cfg = FactoryConfig {
                rate_per_s: rate,
                ttl: 64,
                timeout: Duration::from_secs(30),
                window: Duration::from_secs(3600),
                seed: 1,
                id_prefix: "bench".into(),
                entry: Entry::Direct,
                max_balls: Some(balls),
            };
            let cancel = CancellationToken::new();
            let before = buckets(&urls).await;
            let started = Instant::now();
            let factory =
                BallFactory::start(cfg, targets, &link, &Topics::new("bench"), cancel.clone());
            tokio::time::timeout(Duration::from_secs(600), factory.settled())
                .await
                .expect("settled");
            let elapsed = started.elapsed().as_secs_f64();
            let mut forwarded = 0.0;
            let mut received = 0.0;
            for u in &urls {
                forwarded += metric(u, "rackpong_worker_balls_forwarded_total").await;
                received += metric(u, "rackpong_worker_balls_received_total").await;
            }
            let after = buckets(&urls).await;
            let delta: BTreeMap<u64, f64> = after
                .iter()
                .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0.0)))
                .collect();
            let t = factory.totals();
            let level = factory.service_level();
            let mode = std::env::var("WORKER_BIN").unwrap_or_else(|_| "in-process".into());
            println!("workers={n} ({mode}) rate={rate}/s balls={balls} elapsed={elapsed:.2}s");
            println!(
                "forwarded hops: {forwarded} ({:.0}/s); handled hops: {received} ({:.0}/s)",
                forwarded / elapsed,
                received / elapsed
            );
            println!(
                "per-hop latency: p50 {} p99 {}",
                quantile(&delta, 0.50),
                quantile(&delta, 0.99)
            );
            println!(
                "catch latency: p50 {:.2?} ms p99 {:.2?} ms",
                level.p50_ms, level.p99_ms
            );
            println!("outcomes: {t:?}");
            cancel.cancel();
        });
}
