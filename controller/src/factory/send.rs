//! The factory's sending task: paced by a tokio interval (several balls per
//! tick at high rates), each ball addressed to a random live worker and thrown
//! at a random live worker (or the ingress URL), from a seeded RNG. A ball no
//! worker accepted (connection refused, 5xx) is retried at up to
//! [`ENTRY_ATTEMPTS`] entries, then counted as not accepted.

use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::proto::Ball;
use rackpong_agent::proto::ball::{DEADLINE_HEADER, Deadline};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Entry, OutcomeKind, Shared, WorkerEndpoint};

/// Entries tried per ball in [`Entry::Direct`] mode.
pub const ENTRY_ATTEMPTS: usize = 3;

pub(super) async fn send(
    shared: Arc<Shared>,
    targets: watch::Receiver<Vec<WorkerEndpoint>>,
    ready: oneshot::Receiver<()>,
    cancel: CancellationToken,
) {
    tokio::select! {
        _ = cancel.cancelled() => return,
        r = ready => if r.is_err() { return },
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(256)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "ball factory cannot build its HTTP client");
            return;
        }
    };
    let cfg = &shared.cfg;
    let rate = cfg.rate_per_s.max(0.001);
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64((1.0 / rate).max(0.001)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let start = Instant::now();
    let limit = cfg.max_balls.unwrap_or(u64::MAX);
    let mut n = 0u64;
    tracing::info!(rate, ttl = cfg.ttl, "ball factory throwing");
    while n < limit {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let due_total = (start.elapsed().as_secs_f64() * rate).floor() as u64 + 1;
        // After a stall, catch up at most one second's worth at once.
        let due = due_total
            .saturating_sub(n)
            .min(rate.ceil() as u64)
            .min(limit - n);
        let snapshot = targets.borrow().clone();
        for _ in 0..due {
            throw(&shared, &client, &snapshot, &mut rng, n);
            n += 1;
        }
    }
    shared.lock().sending_done = true;
    shared.progress.send_modify(|_| {});
}

fn throw(
    shared: &Arc<Shared>,
    client: &reqwest::Client,
    workers: &[WorkerEndpoint],
    rng: &mut StdRng,
    n: u64,
) {
    let cfg = &shared.cfg;
    let id = format!("{}-{n}", cfg.id_prefix);
    let now = Instant::now();
    if workers.is_empty() {
        // The rack has no worker at all (scaled to zero): the ball is
        // refused at the door, which is not the rack losing it.
        shared.register(&id, "", now);
        shared.resolve(&id, now, |_| OutcomeKind::Refused);
        return;
    }
    let target = workers[rng.random_range(0..workers.len())].name.clone();
    let entries = entries(&cfg.entry, workers, rng);
    let ball = Ball {
        id: id.clone(),
        target: target.clone(),
        ttl: cfg.ttl,
        born_ms: rackpong_agent::now_ms(),
        hops: Vec::new(),
    };
    shared.register(&id, &target, now);
    if entries.is_empty() {
        shared.resolve(&id, now, |_| OutcomeKind::NotAccepted {
            detail: "no worker URL".into(),
        });
        return;
    }
    let shared = shared.clone();
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(detail) = post(&client, &entries, &ball, shared.cfg.timeout).await {
            tracing::debug!(id = %ball.id, %detail, "ball not accepted");
            shared.resolve(&ball.id, Instant::now(), |_| OutcomeKind::NotAccepted {
                detail,
            });
        }
    });
}

/// Up to [`ENTRY_ATTEMPTS`] distinct random workers with a URL, or the ingress.
fn entries(entry: &Entry, workers: &[WorkerEndpoint], rng: &mut StdRng) -> Vec<String> {
    match entry {
        Entry::Url(u) => vec![u.trim_end_matches('/').to_string()],
        Entry::Direct => {
            let mut urls: Vec<&str> = workers.iter().filter_map(|w| w.url.as_deref()).collect();
            let mut picked = Vec::new();
            while picked.len() < ENTRY_ATTEMPTS && !urls.is_empty() {
                let u = urls.swap_remove(rng.random_range(0..urls.len()));
                picked.push(u.trim_end_matches('/').to_string());
            }
            picked
        }
    }
}

/// Throws the ball at the entries in turn until one answers `202`. A 5xx or
/// a connection error moves on (a worker that died mid-request took nothing
/// it could still answer for); a timeout does not: the ball may have been
/// accepted, so it is not thrown twice. Each throw carries the deadline
/// header, so a worker that gets to it after this gave up refuses it.
async fn post(
    client: &reqwest::Client,
    entries: &[String],
    ball: &Ball,
    timeout: Duration,
) -> Result<(), String> {
    let mut last = String::new();
    for base in entries {
        // A worker reaching the ball after this gives up on it (it is
        // reported here as not accepted) and does not play it.
        let deadline = Deadline::for_give_up(timeout);
        let sent = client
            .post(format!("{base}/v1/balls"))
            .header(DEADLINE_HEADER, deadline.header_value())
            .json(ball)
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => return Ok(()),
            Ok(r) => {
                last = format!("{base} answered {}", r.status());
                if !r.status().is_server_error() {
                    break;
                }
            }
            Err(e) => {
                last = format!("{base}: {}", rackpong_agent::worker::game::error_chain(&e));
                if e.is_timeout() {
                    break;
                }
            }
        }
    }
    Err(last)
}
