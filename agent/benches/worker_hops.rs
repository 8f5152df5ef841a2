//! Hop benchmark: a sweep of offered ball rates over 8 workers on loopback
//! and an embedded broker, so the knee is visible. At each rate balls are
//! thrown for SECONDS, each at a random worker and addressed to a random
//! worker (so a ball makes ~7 forwards), until every one has its
//! `caught`/`dropped` message. Per rate it prints the forwarded hops/s, the
//! CPU per forwarded hop (the whole game: driver, broker and workers), the
//! per-hop latency p50/p99/p999 (the workers' histogram: receipt to the next
//! peer's `202`, or the outcome queued for MQTT) and the load average.
//!
//! `cargo bench -p rackpong-agent --bench worker_hops [-- RATES SECONDS WORKERS]`
//! with RATES a comma list of balls/s (default `500,1000,1500,2000,2500,3000,4000,5000`).
//!
//! With `WORKER_BIN=/path/to/rackpong-agent` the workers are separate
//! processes of that binary instead of tasks in this process. Under
//! `valgrind --tool=callgrind` run one rate twice with different SECONDS:
//! the difference of the instruction counts over the difference of the
//! forwarded hops is the instructions per hop, free of the setup.
//!
//! `BENCH_THREADS=N` sets the runtime's worker threads (default: one per
//! core). With `STALL_PROBE=1` every row is followed by what a 1 ms sleeper on an
//! OS thread and one on the runtime saw (`support/stall.rs`): who stalls.

#[path = "support/stall.rs"]
mod stall;
#[path = "../tests/worker_support/mod.rs"]
#[allow(dead_code, clippy::all)]
mod worker_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rackpong_agent::proto::Ball;
use rackpong_agent::worker::{Worker, WorkerError};
use rand::Rng;
use tokio::process::Child;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use worker_support::*;

type RunningWorker = JoinHandle<Result<(), WorkerError>>;

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
        Some((le, _)) => format!("≤ {:.3} ms", *le as f64 / 1e6),
        None => "n/a".into(),
    }
}

/// `n` worker processes of `bin` with a peers file listing all of them.
async fn spawn_procs(bin: &str, n: usize, broker: &str, dir: &Path) -> (Vec<Child>, Vec<Endpoint>) {
    let mut children = Vec::new();
    let mut endpoints = Vec::new();
    let peers = dir.join("peers");
    for i in 1..=n {
        let name = format!("w{i}");
        let extra = ["--peer-refresh", "1s"];
        let (child, url) = spawn_process(bin, &name, broker, "bench", &peers, &extra).await;
        children.push(child);
        endpoints.push(Endpoint { name, url });
    }
    (children, endpoints)
}

/// How often the in-process workers re-probe their peers: slow, so that
/// probes are not counted as hop cost (the peers file is complete before
/// the first refresh, which runs at start).
const BENCH_PEER_REFRESH: Duration = Duration::from_secs(30);

/// `n` in-process workers: all bound first, then the peers file written,
/// then started, so their first peer refresh already finds every peer.
async fn in_process(
    n: usize,
    broker: &rackpong_agent::broker::EmbeddedBroker,
    peers: &Path,
) -> (Vec<RunningWorker>, Vec<Endpoint>) {
    let mut bound = Vec::new();
    let mut endpoints = Vec::new();
    for i in 1..=n {
        let name = format!("w{i}");
        let mut a = args(&name, broker, "bench", peers);
        a.peer_refresh = BENCH_PEER_REFRESH;
        let w = Worker::bind(a, CancellationToken::new()).await.unwrap();
        let url = format!("http://{}", w.local_addr().unwrap());
        endpoints.push(Endpoint { name, url });
        bound.push(w);
    }
    let urls: Vec<&str> = endpoints.iter().map(|e| e.url.as_str()).collect();
    write_peers(peers, &urls);
    let running = bound.into_iter().map(|w| tokio::spawn(w.run())).collect();
    (running, endpoints)
}

/// CPU seconds (user, system) used so far by these processes.
fn cpu_seconds(pids: &[u32]) -> (f64, f64) {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // Fields after the command name: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit(')').next().unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| f[i].parse::<f64>().unwrap_or(0.0) / 100.0;
            (ticks(11), ticks(12))
        })
        .fold((0.0, 0.0), |(u, s), (a, b)| (u + a, s + b))
}

/// Throws `balls` balls at `rate` per second, each at a random worker and
/// addressed to a random worker.
async fn throw_all(workers: &[Endpoint], rate: f64, balls: u64, run: usize) {
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
                id: format!("b{run}-{n}"),
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

/// One rate's measurement.
struct Row {
    rate: f64,
    forwarded_per_s: f64,
    cpu_us_per_hop: f64,
    sys_us_per_hop: f64,
    cpu_share: f64,
    p50: String,
    p99: String,
    p999: String,
    outcomes: String,
    load: String,
    stalls: Option<String>,
}

/// The workers under test and how to read them.
struct Game<'a> {
    endpoints: &'a [Endpoint],
    urls: Vec<&'a str>,
    pids: Vec<u32>,
    broker: &'a rackpong_agent::broker::EmbeddedBroker,
}

async fn forwarded(urls: &[&str]) -> f64 {
    let mut sum = 0.0;
    for u in urls {
        sum += metric(u, "rackpong_worker_balls_forwarded_total").await;
    }
    sum
}

impl Game<'_> {
    /// Throws `rate` balls/s for `secs` and waits for every outcome.
    async fn measure(&self, rate: f64, secs: f64, run: usize) -> Row {
        let topics = vec!["rackpong/bench/balls/#".to_string()];
        let (link, mut rx) = subscriber(self.broker, &format!("bench-driver-{run}"), &topics).await;
        let mut rx = rx.remove(0);
        let balls = (rate * secs) as u64;
        let before = buckets(&self.urls).await;
        let fwd_before = forwarded(&self.urls).await;
        let cpu_before = cpu_seconds(&self.pids);
        let started = Instant::now();
        let probe = stall::start();
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
        throw_all(self.endpoints, rate, balls, run).await;
        let (seen, caught) = outcomes.await.unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        let stalls = probe.map(|p| p.report());
        let (user, sys) = cpu_seconds(&self.pids);
        let (user, sys) = (user - cpu_before.0, sys - cpu_before.1);
        let cpu = user + sys;
        let fwd = forwarded(&self.urls).await - fwd_before;
        let after = buckets(&self.urls).await;
        let delta: BTreeMap<u64, f64> = after
            .iter()
            .map(|(k, v)| (*k, v - before.get(k).copied().unwrap_or(0.0)))
            .collect();
        let lost = link.counters().inbound_dropped;
        link.shutdown(Duration::from_secs(1)).await;
        Row {
            rate,
            forwarded_per_s: fwd / elapsed,
            cpu_us_per_hop: 1e6 * cpu / fwd,
            sys_us_per_hop: 1e6 * sys / fwd,
            cpu_share: 100.0 * cpu / elapsed,
            p50: quantile(&delta, 0.50),
            p99: quantile(&delta, 0.99),
            p999: quantile(&delta, 0.999),
            outcomes: format!("{seen}+{lost}/{balls} ({caught} caught), {fwd} forwarded"),
            load: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split(' ')
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            stalls,
        }
    }
}

fn rates() -> Vec<f64> {
    let list = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "500,1000,1500,2000,2500,3000,4000,5000".into());
    list.split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` does not, and
    // a measurement has nothing to check there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("worker_hops: a measurement; run it with cargo bench");
        return;
    }
    let rates = rates();
    let secs = arg(1, 4.0);
    let n = arg(2, 8.0) as usize;
    // BENCH_THREADS: the runtime's worker threads (default: one per core).
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        rt.worker_threads(t);
    }
    let rt = rt.enable_all().build().unwrap();
    rt.block_on(async move {
        let broker = broker();
        let dir = tempdir();
        let mode = std::env::var("WORKER_BIN").unwrap_or_else(|_| "in-process".into());
        let (_rack, children, endpoints) = match std::env::var("WORKER_BIN") {
            Ok(bin) => {
                let (children, eps) = spawn_procs(&bin, n, &broker.url(), dir.path()).await;
                (Vec::new(), children, eps)
            }
            Err(_) => {
                let (rack, eps) = in_process(n, &broker, &dir.path().join("peers")).await;
                (rack, Vec::new(), eps)
            }
        };
        let urls: Vec<&str> = endpoints.iter().map(|e| e.url.as_str()).collect();
        if !children.is_empty() {
            write_peers(&dir.path().join("peers"), &urls);
        }
        for u in &urls {
            wait_ready(u).await;
        }
        let mut pids = vec![std::process::id()];
        pids.extend(children.iter().filter_map(|c| c.id()));
        let game = Game {
            endpoints: &endpoints,
            urls: urls.clone(),
            pids,
            broker: &broker,
        };
        println!("workers={n} ({mode}), {secs} s per rate, 2 vCPUs; CPU is the whole game's");
        println!(
            "| balls/s | forwarded hops/s | CPU per hop (of it kernel) | CPU (of one core) \
             | p50 | p99 | p999 | outcomes | load avg |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        for (run, rate) in rates.into_iter().enumerate() {
            let r = game.measure(rate, secs, run).await;
            let cpu = format!("{:.1} µs ({:.1})", r.cpu_us_per_hop, r.sys_us_per_hop);
            let tail = format!("{} | {} | {}", r.p50, r.p99, r.p999);
            println!(
                "| {} | {:.0} | {cpu} | {:.0} % | {tail} | {} | {} |",
                r.rate, r.forwarded_per_s, r.cpu_share, r.outcomes, r.load
            );
            if let Some(s) = r.stalls {
                println!("{s}");
            }
        }
    });
}
