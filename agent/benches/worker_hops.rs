//! Hop benchmark: 8 workers on loopback and an embedded broker; balls are
//! thrown at a fixed rate, each at a random worker and addressed to a random
//! worker (so a ball makes ~8 hops on average), until every one has its
//! `caught`/`dropped` message. The workers' own metrics give the forwarded
//! hops per second and the per-hop handling latency (receipt to the next
//! peer's `202`, or the outcome queued for MQTT).
//!
//! `cargo bench -p rackpong-agent --bench worker_hops [-- RATE SECONDS WORKERS]`
//!
//! With `WORKER_BIN=/path/to/rackpong-agent` the workers are separate
//! processes of that binary instead of tasks in this process (to compare
//! builds, e.g. the static musl binary's allocator against glibc's).

#[path = "../tests/worker_support/mod.rs"]
#[allow(dead_code, clippy::all)]
mod worker_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rackpong_agent::proto::Ball;
use rand::Rng;
use tokio::process::{Child, Command};
use worker_support::*;

/// A worker to throw at: its name and base URL.
struct Endpoint {
    name: String,
    url: String,
}

fn arg(n: usize, default: f64) -> f64 {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Cumulative hop-latency buckets summed over the workers: le (ns) → count.
async fn buckets(urls: &[&str]) -> BTreeMap<u64, f64> {
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
        let lines = text
            .lines()
            .filter(|l| l.starts_with("rackpong_worker_hop_latency_seconds_bucket"));
        for line in lines {
            let le = line.split("le=\"").nth(1).and_then(|r| r.split('"').next());
            let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            let key = match le.unwrap() {
                "+Inf" => u64::MAX,
                le => (le.parse::<f64>().unwrap() * 1e9) as u64,
            };
            *out.entry(key).or_insert(0.0) += v;
        }
    }
    out
}

/// The upper bound of the bucket holding quantile `q`.
fn quantile(b: &BTreeMap<u64, f64>, q: f64) -> String {
    let total = b.get(&u64::MAX).copied().unwrap_or(0.0);
    match b.iter().find(|(_, c)| **c >= q * total) {
        Some((&u64::MAX, _)) => "> largest bucket".into(),
        Some((le, _)) => format!("<= {:.3} ms", *le as f64 / 1e6),
        None => "n/a".into(),
    }
}

/// `n` worker processes of `bin` with a peers file listing all of them.
async fn spawn_procs(bin: &str, n: usize, broker: &str, dir: &Path) -> (Vec<Child>, Vec<Endpoint>) {
    let mut children = Vec::new();
    let mut endpoints = Vec::new();
    for i in 1..=n {
        let name = format!("w{i}");
        let announce = dir.join(format!("{name}.addr"));
        let child = Command::new(bin)
            .args(["worker", "--name", &name, "--listen", "127.0.0.1:0"])
            .args([
                "--broker",
                broker,
                "--rack",
                "bench",
                "--peer-refresh",
                "1s",
            ])
            .args(["--mqtt-buffer", "100000"])
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
        endpoints.push(Endpoint {
            name,
            url: format!("http://{addr}"),
        });
    }
    (children, endpoints)
}

/// CPU seconds (user + system) used so far by these processes.
fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // Fields after the command name: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit(')').next().unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 =
                f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
            ticks / 100.0
        })
        .sum()
}

/// Throws `balls` balls at `rate` per second, each at a random worker and
/// addressed to a random worker.
async fn throw_all(workers: &[Endpoint], rate: f64, balls: u64) {
    let client = http();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sends = tokio::task::JoinSet::new();
    // A real client bounds its concurrency too.
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    let mut n = 0u64;
    while n < balls {
        tick.tick().await;
        let due = ((start.elapsed().as_secs_f64() * rate) as u64 + 1).min(balls);
        while n < due {
            let (entry, target) = {
                let mut rng = rand::rng();
                let len = workers.len();
                (rng.random_range(0..len), rng.random_range(0..len))
            };
            let url = format!("{}/v1/balls", workers[entry].url);
            let ball = Ball {
                id: format!("b-{n}"),
                target: workers[target].name.clone(),
                ttl: 64,
                born_ms: 0,
                hops: vec![],
            };
            let c = client.clone();
            let permit = permits.clone().acquire_owned().await.unwrap();
            sends.spawn(async move {
                let r = c.post(url).json(&ball).send().await.map(|r| r.status());
                drop(permit);
                r
            });
            n += 1;
        }
    }
    while let Some(r) = sends.join_next().await {
        assert_eq!(r.unwrap().unwrap().as_u16(), 202);
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // a measurement has nothing to check there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("worker_hops: a measurement; run it with cargo bench");
        return;
    }
    let rate = arg(0, 2000.0);
    let secs = arg(1, 5.0);
    let n = arg(2, 8.0) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let broker = broker();
        let dir = tempdir();
        let mode = std::env::var("WORKER_BIN").unwrap_or_else(|_| "in-process".into());
        let (_rack, _children, endpoints) = match std::env::var("WORKER_BIN") {
            Ok(bin) => {
                let (children, eps) = spawn_procs(&bin, n, &broker.url(), dir.path()).await;
                (Vec::new(), children, eps)
            }
            Err(_) => {
                let peers = dir.path().join("peers");
                let mut rack = Vec::new();
                for i in 1..=n {
                    let a = args(&format!("w{i}"), &broker, "bench", &peers);
                    rack.push(spawn_worker(a).await);
                }
                let eps = rack
                    .iter()
                    .map(|w| Endpoint {
                        name: w.name.clone(),
                        url: w.url.clone(),
                    })
                    .collect();
                (rack, Vec::new(), eps)
            }
        };
        let urls: Vec<&str> = endpoints.iter().map(|e| e.url.as_str()).collect();
        write_peers(&dir.path().join("peers"), &urls);
        for u in &urls {
            wait_ready(u).await;
        }
        let topics = vec!["rackpong/bench/balls/#".to_string()];
        let (link, mut rx) = subscriber(&broker, "bench-driver", &topics).await;
        let mut rx = rx.remove(0);
        let balls = (rate * secs) as u64;
        let mut pids = vec![std::process::id()];
        pids.extend(_children.iter().filter_map(|c| c.id()));
        let before = buckets(&urls).await;
        let cpu_before = cpu_seconds(&pids);
        let started = Instant::now();
        // Outcomes the driver's subscription queue dropped count as seen
        // (they were published; the driver was just slow to read them).
        let driver = link.clone();
        let outcomes = tokio::spawn(async move {
            let (mut seen, mut caught) = (0u64, 0u64);
            let mut quiet = 0;
            while seen + driver.counters().inbound_dropped < balls && quiet < 30 {
                match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
                    Ok(Some(p)) => {
                        quiet = 0;
                        seen += 1;
                        caught += u64::from(p.topic.ends_with("caught"));
                    }
                    Ok(None) => break,
                    Err(_) => quiet += 1,
                }
            }
            (seen, caught)
        });
        throw_all(&endpoints, rate, balls).await;
        let (seen, caught) = outcomes.await.unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(&pids) - cpu_before;
        let (mut forwarded, mut received) = (0.0, 0.0);
        for u in &urls {
            forwarded += metric(u, "rackpong_worker_balls_forwarded_total").await;
            received += metric(u, "rackpong_worker_balls_received_total").await;
        }
        let after = buckets(&urls).await;
        let delta: BTreeMap<u64, f64> = after
            .iter()
            .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0.0)))
            .collect();
        println!("workers={n} ({mode}) rate={rate}/s balls={balls} elapsed={elapsed:.2}s");
        println!(
            "forwarded hops: {forwarded} ({:.0}/s); handled hops: {received} ({:.0}/s)",
            forwarded / elapsed,
            received / elapsed
        );
        println!(
            "CPU: {cpu:.2} s over {elapsed:.2} s ({:.0}% of one core); {:.0} forwarded hops per CPU-second; load average {}",
            100.0 * cpu / elapsed,
            forwarded / cpu,
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
        );
        println!(
            "per-hop latency: p50 {} p99 {}",
            quantile(&delta, 0.50),
            quantile(&delta, 0.99)
        );
        println!(
            "outcomes seen {seen}/{balls}, caught {caught}; driver link {:?}",
            link.counters()
        );
    });
}
