//! The dashboard's picture of the rack: what MQTT and the engine said last,
//! turned into the JSON snapshot the page renders. Stale marking is decided
//! here, at snapshot time, so a silent node turns stale without any message.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rackpong_agent::proto::{DecodeError, HealthSample, RackMessage, Throttle, Topics};
use serde::Serialize;
use tokio::time::Instant;

use crate::model::Progress;

/// Health older than this many sample intervals marks a node stale.
const STALE_INTERVALS: u32 = 3;
/// Stale threshold while a node's interval is not known yet (3 × the 2 s default).
const DEFAULT_STALE: Duration = Duration::from_secs(6);
/// A worker offline this long leaves the page: killed pods get new names,
/// and a projector full of dead ones hides the live game.
pub const FORGET_OFFLINE_WORKER: Duration = Duration::from_secs(15);

/// The rack as last reported.
#[derive(Debug)]
pub struct Board {
    topics: Topics,
    stale_after: Option<Duration>,
    max_balls: usize,
    nodes: BTreeMap<String, NodeEntry>,
    workers: BTreeMap<String, WorkerEntry>,
    balls: VecDeque<BallView>,
    ball_seq: u64,
    caught: u64,
    dropped: BTreeMap<String, u64>,
    malformed: u64,
    /// Health samples seen before (same node and seq), counted, not shown twice.
    health_seen: rackpong_agent::proto::SeqFilter,
    progress: Option<Progress>,
    open_since: Option<Instant>,
    mqtt_connected: Option<bool>,
}

#[derive(Debug, Default)]
struct NodeEntry {
    online: Option<bool>,
    health: Option<HealthSample>,
    health_at: Option<Instant>,
    interval: Option<Duration>,
}

#[derive(Debug, Default)]
struct WorkerEntry {
    online: Option<bool>,
    offline_at: Option<Instant>,
    node: Option<String>,
}

/// One finished ball, for the flying-ball lane.
#[derive(Debug, Clone, Serialize)]
pub struct BallView {
    /// Increases per ball seen, so the page animates each ball once.
    pub seq: u64,
    pub id: String,
    pub target: String,
    pub caught: bool,
    /// Drop reason, for dropped balls.
    pub reason: Option<String>,
    /// Workers in order, the catching (or dropping) one last.
    pub hops: Vec<String>,
    /// Wall-clock flight time (born → caught/dropped), when it makes sense.
    pub flight_ms: Option<u64>,
}

/// The JSON the page renders (`GET /api/state`, every SSE `state` event).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub nodes: Vec<NodeView>,
    /// Workers whose node is not known yet.
    pub unplaced_workers: Vec<WorkerView>,
    pub balls: Vec<BallView>,
    pub caught: u64,
    pub dropped: u64,
    pub dropped_by_reason: BTreeMap<String, u64>,
    /// Payloads that did not decode (counted, logged, ignored).
    pub malformed: u64,
    /// Health samples received again (QoS 1 re-sends, retained
    /// re-deliveries), counted once and ignored.
    pub health_duplicates: u64,
    pub progress: Option<ProgressView>,
    pub mqtt_connected: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub name: String,
    /// `online`, `offline`, `stale` or `unknown`.
    pub status: &'static str,
    pub health_age_ms: Option<u64>,
    pub stale_after_ms: u64,
    pub temp_c: Option<f32>,
    pub cpu_pct: Option<f32>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub throttle: Vec<Badge>,
    pub workers: Vec<WorkerView>,
}

/// A throttle flag that is set: `now` (red) or only since boot (amber).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Badge {
    pub label: &'static str,
    pub now: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub name: String,
    /// `online`, `offline` or `unknown`.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgressView {
    pub phase: &'static str,
    pub elapsed_ms: u64,
    pub duration_ms: u64,
    pub injected: u32,
    pub refused: u32,
    pub open: usize,
    /// How long faults have been open without a break (the running recovery timer).
    pub open_for_ms: Option<u64>,
    pub last: String,
}

impl Board {
    /// An empty board for `topics`; `stale_after` overrides 3 × each node's interval.
    pub fn new(topics: Topics, stale_after: Option<Duration>, max_balls: usize) -> Board {
        Board {
            topics,
            stale_after,
            max_balls: max_balls.max(1),
            nodes: BTreeMap::new(),
            workers: BTreeMap::new(),
            balls: VecDeque::new(),
            ball_seq: 0,
            caught: 0,
            dropped: BTreeMap::new(),
            malformed: 0,
            health_seen: rackpong_agent::proto::SeqFilter::new(),
            progress: None,
            open_since: None,
            mqtt_connected: None,
        }
    }

    /// Applies one MQTT message; `Err` names what did not decode (the
    /// caller counts it with [`Board::count_malformed`]). Foreign topics are ignored.
    pub fn apply(&mut self, topic: &str, payload: &[u8], at: Instant) -> Result<(), DecodeError> {
        let Some(message) = RackMessage::decode(&self.topics, topic, payload)? else {
            return Ok(());
        };
        match message {
            RackMessage::NodeStatus { node, online } => self.node(&node).online = Some(online),
            RackMessage::WorkerStatus { worker, online } => {
                let e = self.worker(&worker);
                e.online = Some(online);
                e.offline_at = (!online).then_some(at);
            }
            RackMessage::NodeHealth { node, sample } => self.health(&node, *sample, at),
            RackMessage::BallCaught(c) => {
                self.caught += 1;
                let flight = c.caught_ms.checked_sub(c.ball.born_ms);
                self.ball(c.ball, (c.worker, c.node), true, None, flight);
            }
            RackMessage::BallDropped(d) => {
                *self.dropped.entry(d.reason.as_str().into()).or_default() += 1;
                let flight = d.dropped_ms.checked_sub(d.ball.born_ms);
                let reason = Some(d.reason.as_str().to_string());
                self.ball(d.ball, (d.worker, d.node), false, reason, flight);
            }
        }
        Ok(())
    }

    pub fn count_malformed(&mut self) {
        self.malformed += 1;
    }

    pub fn set_progress(&mut self, p: Progress, at: Instant) {
        match (p.open, self.open_since) {
            (0, _) => self.open_since = None,
            (_, None) => self.open_since = Some(at),
            _ => {}
        }
        self.progress = Some(p);
    }

    pub fn set_connected(&mut self, connected: bool) {
        self.mqtt_connected = Some(connected);
    }

    fn node(&mut self, name: &str) -> &mut NodeEntry {
        self.nodes.entry(name.to_string()).or_default()
    }

    fn worker(&mut self, name: &str) -> &mut WorkerEntry {
        self.workers.entry(name.to_string()).or_default()
    }

    fn health(&mut self, node: &str, s: HealthSample, at: Instant) {
        if !self.health_seen.admit(node, s.seq, s.ts_ms) {
            return;
        }
        let e = self.node(node);
        if let Some(prev) = &e.health
            && s.seq > prev.seq
            && s.ts_ms > prev.ts_ms
        {
            let per = (s.ts_ms - prev.ts_ms) / (s.seq - prev.seq);
            e.interval = Some(Duration::from_millis(per.max(1)));
        }
        e.health = Some(s);
        e.health_at = Some(at);
    }

    fn ball(
        &mut self,
        ball: rackpong_agent::proto::Ball,
        last: (String, String),
        caught: bool,
        reason: Option<String>,
        flight_ms: Option<u64>,
    ) {
        let mut hops: Vec<(String, String)> =
            ball.hops.into_iter().map(|h| (h.worker, h.node)).collect();
        if hops.last().is_none_or(|(w, _)| *w != last.0) {
            hops.push(last);
        }
        for (w, n) in &hops {
            self.node(n);
            self.worker(w).node = Some(n.clone());
        }
        self.ball_seq += 1;
        self.balls.push_back(BallView {
            seq: self.ball_seq,
            id: ball.id,
            target: ball.target,
            caught,
            reason,
            hops: hops.into_iter().map(|(w, _)| w).collect(),
            flight_ms,
        });
        while self.balls.len() > self.max_balls {
            self.balls.pop_front();
        }
    }

    /// The page's view at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut by_node: BTreeMap<&str, Vec<WorkerView>> = BTreeMap::new();
        let mut unplaced = Vec::new();
        let live = |w: &&WorkerEntry| {
            w.offline_at
                .is_none_or(|t| now.saturating_duration_since(t) < FORGET_OFFLINE_WORKER)
        };
        for (name, w) in self.workers.iter().filter(|(_, w)| live(w)) {
            let view = WorkerView {
                name: name.clone(),
                status: online_word(w.online),
            };
            match &w.node {
                Some(n) => by_node.entry(n.as_str()).or_default().push(view),
                None => unplaced.push(view),
            }
        }
        let nodes = self
            .nodes
            .iter()
            .map(|(name, e)| self.node_view(name, e, by_node.remove(name.as_str()), now))
            .collect();
        Snapshot {
            nodes,
            unplaced_workers: unplaced,
            balls: self.balls.iter().cloned().collect(),
            caught: self.caught,
            dropped: self.dropped.values().sum(),
            dropped_by_reason: self.dropped.clone(),
            malformed: self.malformed,
            health_duplicates: self.health_seen.duplicates(),
            progress: self.progress.as_ref().map(|p| ProgressView {
                phase: p.phase,
                elapsed_ms: p.elapsed.as_millis() as u64,
                duration_ms: p.duration.as_millis() as u64,
                injected: p.injected,
                refused: p.refused,
                open: p.open,
                open_for_ms: self.open_since.map(|t| ms(now - t)),
                last: p.last.clone(),
            }),
            mqtt_connected: self.mqtt_connected,
        }
    }

    fn node_view(
        &self,
        name: &str,
        e: &NodeEntry,
        workers: Option<Vec<WorkerView>>,
        now: Instant,
    ) -> NodeView {
        let stale_after = self
            .stale_after
            .or(e.interval.map(|i| i * STALE_INTERVALS))
            .unwrap_or(DEFAULT_STALE);
        let age = e.health_at.map(|t| now.saturating_duration_since(t));
        let status = match (e.online, age) {
            (Some(false), _) => "offline",
            (_, Some(a)) if a > stale_after => "stale",
            (Some(true), _) => "online",
            // Health without a status message still means it is publishing.
            (None, Some(_)) => "online",
            (None, None) => "unknown",
        };
        let h = e.health.as_ref();
        NodeView {
            name: name.to_string(),
            status,
            health_age_ms: age.map(ms),
            stale_after_ms: ms(stale_after),
            temp_c: h.and_then(|h| h.temp_c),
            cpu_pct: h.and_then(|h| h.cpu_pct),
            mem_used_bytes: h.and_then(|h| h.memory.map(|m| m.used_bytes)),
            mem_total_bytes: h.and_then(|h| h.memory.map(|m| m.total_bytes)),
            throttle: h.and_then(|h| h.throttle).map(badges).unwrap_or_default(),
            workers: workers.unwrap_or_default(),
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn online_word(online: Option<bool>) -> &'static str {
    match online {
        Some(true) => "online",
        Some(false) => "offline",
        None => "unknown",
    }
}

/// The set throttle flags: "now" ones, then "since boot" ones not also set now.
pub fn badges(t: Throttle) -> Vec<Badge> {
    let pairs = [
        (
            "UNDER-VOLTAGE",
            t.under_voltage_now,
            t.under_voltage_occurred,
        ),
        ("FREQ CAPPED", t.freq_capped_now, t.freq_capped_occurred),
        ("THROTTLED", t.throttled_now, t.throttled_occurred),
        (
            "TEMP LIMIT",
            t.soft_temp_limit_now,
            t.soft_temp_limit_occurred,
        ),
    ];
    let mut out = Vec::new();
    for (label, now, ever) in pairs {
        if now == Some(true) {
            out.push(Badge { label, now: true });
        } else if ever == Some(true) {
            out.push(Badge { label, now: false });
        }
    }
    out
}
