//! The dashboard's picture of the rack: what MQTT and the engine said last,
//! turned into the JSON snapshot the page renders. Stale marking is decided
//! here, at snapshot time, so a silent node turns stale without any message.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rackpong_agent::proto::{DecodeError, HealthSample, LedReport, RackMessage, Topics};
use tokio::time::Instant;

use super::timeline::RunStory;
pub use super::view::{
    BallView, LedView, NodeView, ProgressView, ReplayView, Snapshot, WorkerView, badges,
};
use super::view::{ms, online_word};
use crate::journal::event::JournalLine;
use crate::model::Progress;
use crate::report::Verdict;

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
    run: RunStory,
    /// Recorded time per wall time: stale and forget thresholds shrink by it.
    speed: f64,
    replay: Option<ReplayView>,
}

#[derive(Debug, Default)]
struct NodeEntry {
    online: Option<bool>,
    health: Option<HealthSample>,
    health_at: Option<Instant>,
    interval: Option<Duration>,
    leds: Option<LedReport>,
}

#[derive(Debug, Default)]
struct WorkerEntry {
    online: Option<bool>,
    offline_at: Option<Instant>,
    node: Option<String>,
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
            run: RunStory::default(),
            speed: 1.0,
            replay: None,
        }
    }

    /// Applies one MQTT message; `Err` names what did not decode (the
    /// caller counts it with [`Board::count_malformed`]). Foreign topics are ignored.
    pub fn apply(&mut self, topic: &str, payload: &[u8], at: Instant) -> Result<(), DecodeError> {
        if let Some(message) = RackMessage::decode(&self.topics, topic, payload)? {
            self.apply_message(message, at);
        }
        Ok(())
    }

    /// Applies one decoded message of the rack (live, or replayed).
    pub fn apply_message(&mut self, message: RackMessage, at: Instant) {
        match message {
            RackMessage::NodeStatus { node, online } => self.node(&node).online = Some(online),
            RackMessage::WorkerStatus { worker, online } => self.worker_status(&worker, online, at),
            RackMessage::NodeHealth { node, sample } => self.health(&node, *sample, at),
            RackMessage::NodeLeds { node, report } => self.leds(&node, report),
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
    }

    /// The recorded totals (a replay records a sample of the balls, and
    /// every ball in these counts).
    pub fn set_totals(&mut self, caught: u64, dropped: BTreeMap<String, u64>) {
        self.caught = caught;
        self.dropped = dropped;
    }

    /// The page shows a recorded run.
    pub fn set_replay(&mut self, replay: ReplayView) {
        self.replay = Some(replay);
    }

    /// Workers the board remembers (shown or waiting to be forgotten).
    pub fn worker_entries(&self) -> usize {
        self.workers.len()
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

    /// Folds one journal line into the story; true for a fault event.
    pub fn apply_journal(&mut self, line: &JournalLine, at: Instant) -> bool {
        self.run.apply(line, at)
    }

    /// Journal time runs `speed` times faster than the wall (replay).
    pub fn set_speed(&mut self, speed: f64) {
        self.run = RunStory::with_speed(speed);
        self.speed = if speed > 0.0 { speed } else { 1.0 };
    }

    fn forget_after(&self) -> Duration {
        FORGET_OFFLINE_WORKER.div_f64(self.speed)
    }

    /// A worker's birth or Last Will; workers gone longer than
    /// [`FORGET_OFFLINE_WORKER`] are dropped here, so a long run with many
    /// pod kills keeps only the live ones.
    fn worker_status(&mut self, worker: &str, online: bool, at: Instant) {
        let forget = self.forget_after();
        self.workers.retain(|_, w| {
            w.offline_at
                .is_none_or(|t| at.saturating_duration_since(t) < forget)
        });
        let e = self.worker(worker);
        e.online = Some(online);
        e.offline_at = (!online).then_some(at);
    }

    /// A newer LED report (by seq, or a later timestamp after a restart).
    fn leds(&mut self, node: &str, report: LedReport) {
        let e = self.node(node);
        let newer = e
            .leds
            .as_ref()
            .is_none_or(|old| report.seq > old.seq || report.ts_ms > old.ts_ms);
        if newer {
            e.leds = Some(report);
        }
    }

    /// The run is over: its verdict (`None` when the report failed).
    pub fn set_verdict(&mut self, verdict: Option<Verdict>) {
        self.run.set_verdict(verdict);
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
        let forget = self.forget_after();
        let live = |w: &&WorkerEntry| {
            w.offline_at
                .is_none_or(|t| now.saturating_duration_since(t) < forget)
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
            story: self.run.view(now),
            replay: self.replay.clone(),
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
            .unwrap_or(DEFAULT_STALE)
            .div_f64(self.speed);
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
            leds: e.leds.as_ref().map(|l| LedView {
                pattern: l.pattern.as_str(),
                green: l.green,
                red: l.red,
                catches: l.catches,
            }),
            workers: workers.unwrap_or_default(),
        }
    }
}
