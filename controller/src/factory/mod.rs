//! The ball factory: throws balls at the rack at a set rate, each to a random
//! live worker and addressed to a random live worker, and tracks every ball
//! until it is caught, dropped or timed out. Its sliding-window service level
//! (delivery rate, catch latency p50/p95/p99) is the rack's user-visible
//! health; its outcome broadcast feeds the engine's "serving" milestone.
//! Latencies are measured on the controller's monotonic clock, from the send
//! to the arrival of the `balls/caught` message.

mod listen;
mod send;
pub(crate) mod window;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rackpong_agent::mqtt::MqttLink;
use rackpong_agent::proto::{DropReason, Hop, Topics};
use rumqttc::Publish;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::ServiceLevel;
pub use crate::model::WorkerEndpoint;
use window::{Mark, Window};

/// Where balls enter the rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// POST to a random live worker's `url`.
    Direct,
    /// POST to one ingress base URL (k3s NodePort / Service).
    Url(String),
}

/// The factory's settings.
#[derive(Debug, Clone)]
pub struct FactoryConfig {
    pub rate_per_s: f64,
    pub ttl: u32,
    /// A ball with no outcome after this long counts as timed out.
    pub timeout: Duration,
    /// Sliding window of the service level.
    pub window: Duration,
    pub seed: u64,
    /// Ball ids are `<id_prefix>-<n>`; outcomes of other prefixes are ignored.
    pub id_prefix: String,
    pub entry: Entry,
    /// Stop after this many balls (tests, benchmarks); `None` runs until cancelled.
    pub max_balls: Option<u64>,
}

/// How one ball ended, as the factory saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum OutcomeKind {
    Caught {
        latency_ms: f64,
        hops: Vec<Hop>,
        worker: String,
    },
    Dropped {
        reason: DropReason,
        worker: String,
        detail: Option<String>,
    },
    TimedOut,
    /// No worker accepted it (every entry attempt failed).
    NotAccepted {
        detail: String,
    },
    /// Thrown while no worker existed at all (a scale to zero): refused by
    /// the rack at the door, not lost in it.
    Refused,
}

/// One ball's outcome, stamped when the factory learned it.
#[derive(Debug, Clone, PartialEq)]
pub struct BallOutcome {
    pub id: String,
    /// The ball's number in send order (`<prefix>-<seq>`).
    pub seq: u64,
    pub target: String,
    /// When it was sent, and when its outcome arrived.
    pub sent: Instant,
    pub at: Instant,
    pub kind: OutcomeKind,
}

impl BallOutcome {
    /// Delivered to its target.
    pub fn delivered(&self) -> bool {
        matches!(self.kind, OutcomeKind::Caught { .. })
    }

    /// What recovery timing learns from it (the restore rule).
    pub fn observation(&self) -> crate::timing::Observation {
        crate::timing::Observation::Ball {
            seq: self.seq,
            sent: self.sent,
            delivered: self.delivered(),
        }
    }
}

/// Counts since the factory started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub sent: u64,
    pub caught: u64,
    /// By drop reason (`ttl-spent`, ...).
    pub dropped: BTreeMap<String, u64>,
    pub timed_out: u64,
    pub not_accepted: u64,
    /// Thrown while no worker existed (see [`OutcomeKind::Refused`]).
    pub refused: u64,
    /// Balls still awaiting an outcome.
    pub pending: u64,
    /// Outcomes of this factory's balls that were no longer pending (late
    /// after a timeout, or duplicates).
    pub unmatched: u64,
    /// MQTT payloads that could not be decoded.
    pub malformed: u64,
}

impl Totals {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Balls with an outcome.
    pub fn resolved(&self) -> u64 {
        self.caught + self.dropped_total() + self.timed_out + self.not_accepted + self.refused
    }
}

struct Pending {
    target: String,
    sent: Instant,
}

/// The mutable state shared by the factory's tasks.
struct State {
    pending: HashMap<String, Pending>,
    /// Send order, for the timeout sweep.
    order: VecDeque<(Instant, String)>,
    window: Window,
    totals: Totals,
    sending_done: bool,
}

struct Shared {
    cfg: FactoryConfig,
    state: Mutex<State>,
    outcomes: broadcast::Sender<BallOutcome>,
    progress: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, id: &str, target: &str, at: Instant) {
        let mut s = self.lock();
        s.pending.insert(
            id.to_string(),
            Pending {
                target: target.to_string(),
                sent: at,
            },
        );
        s.order.push_back((at, id.to_string()));
        s.window.sent(at);
        s.totals.sent += 1;
    }

    /// Records an outcome; `kind` gets its latency from the send time.
    fn resolve(&self, id: &str, at: Instant, make: impl FnOnce(Duration) -> OutcomeKind) {
        let outcome = {
            let mut s = self.lock();
            let Some(p) = s.pending.remove(id) else {
                if is_ours(&self.cfg.id_prefix, id) {
                    s.totals.unmatched += 1;
                }
                return;
            };
            let kind = make(at.saturating_duration_since(p.sent));
            let mark = match &kind {
                OutcomeKind::Caught { latency_ms, .. } => {
                    s.totals.caught += 1;
                    Mark::Caught {
                        latency_ms: *latency_ms,
                    }
                }
                OutcomeKind::Dropped { reason, .. } => {
                    *s.totals
                        .dropped
                        .entry(reason.as_str().to_string())
                        .or_default() += 1;
                    Mark::Dropped
                }
                OutcomeKind::TimedOut => {
                    s.totals.timed_out += 1;
                    Mark::TimedOut
                }
                OutcomeKind::NotAccepted { .. } => {
                    s.totals.not_accepted += 1;
                    Mark::Dropped
                }
                OutcomeKind::Refused => {
                    s.totals.refused += 1;
                    Mark::Refused
                }
            };
            s.window.outcome(at, mark);
            BallOutcome {
                id: id.to_string(),
                seq: seq_of(id),
                target: p.target,
                sent: p.sent,
                at,
                kind,
            }
        };
        self.progress.send_modify(|n| *n += 1);
        let _ = self.outcomes.send(outcome);
    }
}

/// The number of ball `<prefix>-<n>`.
fn seq_of(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn is_ours(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| rest.starts_with('-'))
}

/// Where the factory learns outcomes: the two MQTT subscriptions.
#[derive(Debug)]
pub struct OutcomeFeed {
    pub caught: mpsc::Receiver<Publish>,
    pub dropped: mpsc::Receiver<Publish>,
    /// A topic only this factory uses: subscribed last, its echo proves the
    /// subscriptions above are active before the first ball is thrown.
    pub probe_topic: String,
    pub probe: mpsc::Receiver<Publish>,
}

/// Starts ball factories.
#[derive(Debug)]
pub struct BallFactory;

impl BallFactory {
    /// Subscribes to `balls/caught` and `balls/dropped` through `link` and
    /// starts throwing once the subscriptions are active.
    pub fn start(
        cfg: FactoryConfig,
        targets: watch::Receiver<Vec<WorkerEndpoint>>,
        link: &MqttLink,
        topics: &Topics,
        cancel: CancellationToken,
    ) -> FactoryHandle {
        let probe_topic = format!("{}/factory/{}/probe", topics.root(), cfg.id_prefix);
        let feed = OutcomeFeed {
            caught: link.subscribe(topics.balls_caught()),
            dropped: link.subscribe(topics.balls_dropped()),
            probe: link.subscribe(probe_topic.clone()),
            probe_topic,
        };
        Self::start_with(cfg, targets, feed, link.clone(), cancel)
    }

    fn start_with(
        cfg: FactoryConfig,
        targets: watch::Receiver<Vec<WorkerEndpoint>>,
        feed: OutcomeFeed,
        link: MqttLink,
        cancel: CancellationToken,
    ) -> FactoryHandle {
        let (outcomes, _) = broadcast::channel(8192);
        let (progress, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: HashMap::new(),
                order: VecDeque::new(),
                window: Window::new(cfg.window),
                totals: Totals::default(),
                sending_done: false,
            }),
            cfg,
            outcomes,
            progress,
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(listen::listen(
            shared.clone(),
            feed,
            link,
            ready_tx,
            cancel.clone(),
        ));
        tokio::spawn(listen::sweep(shared.clone(), cancel.clone()));
        tokio::spawn(send::send(shared.clone(), targets, ready_rx, cancel));
        FactoryHandle { shared }
    }
}

/// A running factory's readings (cheap to clone).
#[derive(Clone)]
pub struct FactoryHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FactoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactoryHandle")
            .field("totals", &self.totals())
            .finish()
    }
}

impl FactoryHandle {
    /// The service level over the sliding window ending now.
    pub fn service_level(&self) -> ServiceLevel {
        self.shared.lock().window.level(Instant::now())
    }

    /// Every outcome from now on.
    pub fn outcomes(&self) -> broadcast::Receiver<BallOutcome> {
        self.shared.outcomes.subscribe()
    }

    pub fn totals(&self) -> Totals {
        let s = self.shared.lock();
        let mut t = s.totals.clone();
        t.pending = s.pending.len() as u64;
        t
    }

    /// Resolves once `max_balls` were sent and every one has an outcome
    /// (never, without `max_balls`).
    pub async fn settled(&self) {
        let mut progress = self.shared.progress.subscribe();
        loop {
            {
                let s = self.shared.lock();
                if s.sending_done && s.pending.is_empty() {
                    return;
                }
            }
            if progress.changed().await.is_err() {
                return;
            }
        }
    }
}
