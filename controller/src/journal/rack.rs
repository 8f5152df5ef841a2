//! The rack record: `runs/<run-id>/rack.jsonl`, a sampled, bounded copy of
//! the rack's MQTT traffic that the journal does not keep and the dashboard
//! shows — node and worker births and Last Wills, LED reports, a sample of
//! the balls in flight, and the ball totals once a second — so
//! `rackpong replay` can show a recorded run as it looked live. Health
//! samples are not copied: the journal has every one.
//!
//! Bounds: at most [`BALLS_PER_S`] balls and [`LINES_PER_S`] lines a second
//! (what is left out is counted in the next `totals` line's `skipped`), an
//! LED report only when its pattern changes or once a second per node.
//! Lines are written as they are decided (one `write` each, like the
//! journal), so a crash loses nothing already recorded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rackpong_agent::proto::topics::TopicKind;
use rackpong_agent::proto::{LedPattern, LedReport, Topics, message};
use rumqttc::Publish;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{JournalError, io};

/// File name of the rack record in a run directory.
pub const RACK_FILE: &str = "rack.jsonl";
/// Balls recorded per second at most (the page animates a dozen at once).
pub const BALLS_PER_S: u32 = 5;
/// Lines per second at most, whatever the rack does.
pub const LINES_PER_S: u32 = 40;
/// An unchanged LED pattern is recorded at most this often per node.
const LED_EVERY: Duration = Duration::from_secs(1);

/// One line of `rack.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RackLine {
    /// Always the first line: the record's time 0 on the wall clock and the rack.
    Start {
        v: u32,
        started_unix_ms: u64,
        rack: String,
    },
    /// One MQTT message of the rack; `topic` after `rackpong/<rack>/`,
    /// `payload` the JSON payload, or a string for a non-JSON one (`online`).
    Mqtt {
        t_ms: u64,
        topic: String,
        payload: serde_json::Value,
    },
    /// Every ball so far, recorded or not, and the lines left out.
    Totals {
        t_ms: u64,
        caught: u64,
        dropped: BTreeMap<String, u64>,
        skipped: u64,
    },
}

impl RackLine {
    /// The record's time of the line (0 for `start`).
    pub fn t_ms(&self) -> u64 {
        match self {
            RackLine::Start { .. } => 0,
            RackLine::Mqtt { t_ms, .. } | RackLine::Totals { t_ms, .. } => *t_ms,
        }
    }
}

/// The payload bytes an `mqtt` line stands for.
pub fn payload_bytes(payload: &serde_json::Value) -> Vec<u8> {
    match payload {
        serde_json::Value::String(s) => s.clone().into_bytes(),
        v => serde_json::to_vec(v).unwrap_or_default(),
    }
}

/// Reads a rack record; a partial last line (a crash mid-write) is left
/// out, any other line that is not a rack line is an error naming it.
pub fn read_rack(path: &Path) -> Result<Vec<RackLine>, JournalError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut lines = Vec::new();
    for (i, raw) in complete.lines().enumerate() {
        let bad = |reason: String| JournalError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let line: RackLine = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        if (i == 0) != matches!(line, RackLine::Start { .. }) {
            return Err(bad("`start` must be the first line, and only it".into()));
        }
        lines.push(line);
    }
    Ok(lines)
}

/// Records the messages of `rx` (a subscription to `topics.all()`) into
/// `dir/rack.jsonl` until `stop` or the link goes away. A write error is
/// logged once and ends the record; the run goes on.
pub async fn record(
    dir: PathBuf,
    topics: Topics,
    mut rx: mpsc::Receiver<Publish>,
    stop: CancellationToken,
) {
    let mut rec = match Recorder::create(&dir, topics) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "no rack record for replay");
            return;
        }
    };
    let mut second = tokio::time::interval(Duration::from_secs(1));
    let result = loop {
        let step = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            _ = second.tick() => rec.tick(Instant::now()),
            msg = rx.recv() => match msg {
                Some(p) => rec.offer(&p.topic, &p.payload, Instant::now()),
                None => break Ok(()),
            },
        };
        if let Err(e) = step {
            break Err(e);
        }
    };
    if let Err(e) = result.and_then(|()| rec.tick(Instant::now())) {
        tracing::warn!(error = %e, "the rack record stopped");
    }
}

/// The sampler and the file.
pub struct Recorder {
    file: File,
    path: PathBuf,
    topics: Topics,
    start: Instant,
    caught: u64,
    dropped: BTreeMap<String, u64>,
    skipped: u64,
    /// (caught + dropped, skipped) in the last `totals` line.
    told: (u64, u64),
    /// The current second's window and what it has used.
    window: (Instant, u32, u32),
    leds: BTreeMap<String, (LedPattern, Instant)>,
    buf: Vec<u8>,
}

impl Recorder {
    /// Creates `dir/rack.jsonl` with its `start` line.
    pub fn create(dir: &Path, topics: Topics) -> Result<Recorder, JournalError> {
        let path = dir.join(RACK_FILE);
        let file = File::create(&path).map_err(io(&path))?;
        let start = Instant::now();
        let mut rec = Recorder {
            file,
            path,
            start,
            caught: 0,
            dropped: BTreeMap::new(),
            skipped: 0,
            told: (0, 0),
            window: (start, 0, 0),
            leds: BTreeMap::new(),
            buf: Vec::with_capacity(1024),
            topics,
        };
        rec.write(&RackLine::Start {
            v: 1,
            started_unix_ms: rackpong_agent::now_ms(),
            rack: rec.topics.rack().to_string(),
        })?;
        Ok(rec)
    }

    /// Counts one message and records it when the sample wants it.
    pub fn offer(&mut self, topic: &str, payload: &[u8], at: Instant) -> Result<(), JournalError> {
        let Some(kind) = self.topics.parse(topic) else {
            return Ok(());
        };
        let wanted = match kind {
            TopicKind::NodeStatus(_) | TopicKind::WorkerStatus(_) => true,
            TopicKind::NodeLeds(node) => self.led_wanted(node, payload, at),
            TopicKind::BallCaught => {
                self.caught += 1;
                self.ball_wanted(at)
            }
            TopicKind::BallDropped => match message::dropped(payload) {
                Ok(d) => {
                    *self.dropped.entry(d.reason.as_str().into()).or_default() += 1;
                    self.ball_wanted(at)
                }
                Err(_) => false,
            },
            _ => false,
        };
        if !wanted {
            return Ok(());
        }
        if !self.line_budget(at) {
            self.skipped += 1;
            return Ok(());
        }
        let rel = topic
            .strip_prefix(self.topics.root())
            .map_or(topic, |t| t.trim_start_matches('/'));
        let payload = serde_json::from_slice(payload)
            .unwrap_or_else(|_| String::from_utf8_lossy(payload).into_owned().into());
        self.write(&RackLine::Mqtt {
            t_ms: self.t_ms(at),
            topic: rel.to_string(),
            payload,
        })
    }

    /// Once a second: the totals, when they moved.
    pub fn tick(&mut self, at: Instant) -> Result<(), JournalError> {
        let balls = self.caught + self.dropped.values().sum::<u64>();
        if (balls, self.skipped) == self.told {
            return Ok(());
        }
        self.told = (balls, self.skipped);
        self.write(&RackLine::Totals {
            t_ms: self.t_ms(at),
            caught: self.caught,
            dropped: self.dropped.clone(),
            skipped: self.skipped,
        })
    }

    fn t_ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_millis() as u64
    }

    /// Rolls the one-second window; `(lines, balls)` used in it.
    fn window(&mut self, at: Instant) -> &mut (Instant, u32, u32) {
        if at.saturating_duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (at, 0, 0);
        }
        &mut self.window
    }

    fn ball_wanted(&mut self, at: Instant) -> bool {
        let w = self.window(at);
        if w.2 >= BALLS_PER_S {
            return false;
        }
        w.2 += 1;
        true
    }

    fn line_budget(&mut self, at: Instant) -> bool {
        let w = self.window(at);
        if w.1 >= LINES_PER_S {
            return false;
        }
        w.1 += 1;
        true
    }

    fn led_wanted(&mut self, node: &str, payload: &[u8], at: Instant) -> bool {
        let Ok(report) = serde_json::from_slice::<LedReport>(payload) else {
            return false;
        };
        let due = match self.leds.get(node) {
            Some((p, last)) => {
                *p != report.pattern || at.saturating_duration_since(*last) >= LED_EVERY
            }
            None => true,
        };
        if due {
            self.leds.insert(node.to_string(), (report.pattern, at));
        }
        due
    }

    fn write(&mut self, line: &RackLine) -> Result<(), JournalError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, line)?;
        self.buf.push(b'\n');
        self.file.write_all(&self.buf).map_err(io(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ball(node: &str) -> Vec<u8> {
        format!(
            r#"{{"v":1,"ball":{{"id":"b","target":"w","ttl":3,"born_ms":1,"hops":[]}},"worker":"w","node":"{node}","caught_ms":3}}"#
        )
        .into_bytes()
    }

    fn leds(seq: u64, pattern: &str) -> Vec<u8> {
        format!(r#"{{"v":1,"node":"n1","seq":{seq},"ts_ms":1,"pattern":"{pattern}","green":"on","red":"off","catches":{seq}}}"#).into_bytes()
    }

    #[test]
    fn balls_are_sampled_statuses_kept_and_totals_count_everything() {
        let dir = tempfile::tempdir().unwrap();
        let t = Topics::default();
        let mut rec = Recorder::create(dir.path(), t.clone()).unwrap();
        let t0 = rec.start;
        rec.offer(&t.node_status("n1"), b"online", t0).unwrap();
        // 200 balls within one second, then the totals.
        for i in 0..200u64 {
            let at = t0 + Duration::from_millis(i * 4);
            rec.offer(&t.balls_caught(), &ball("n1"), at).unwrap();
        }
        rec.offer(&t.node_health("n1"), b"{}", t0).unwrap();
        rec.offer(&t.node_leds("n1"), &leds(1, "ok"), t0).unwrap();
        rec.offer(&t.node_leds("n1"), &leds(2, "ok"), t0).unwrap();
        rec.offer(&t.node_leds("n1"), &leds(3, "chaos"), t0)
            .unwrap();
        rec.offer("rackpong/other/balls/caught", &ball("n1"), t0)
            .unwrap();
        rec.tick(t0 + Duration::from_secs(1)).unwrap();
        rec.tick(t0 + Duration::from_secs(2)).unwrap();

        let lines = read_rack(&dir.path().join(RACK_FILE)).unwrap();
        let topics: Vec<&str> = lines
            .iter()
            .filter_map(|l| match l {
                RackLine::Mqtt { topic, .. } => Some(topic.as_str()),
                _ => None,
            })
            .collect();
        let balls = topics.iter().filter(|t| **t == "balls/caught").count();
        assert_eq!(balls, BALLS_PER_S as usize);
        assert_eq!(topics.iter().filter(|t| **t == "nodes/n1/leds").count(), 2);
        assert!(topics.contains(&"nodes/n1/status"));
        assert!(
            !topics.iter().any(|t| t.ends_with("health")),
            "the journal has health"
        );
        let RackLine::Mqtt { payload, .. } = &lines[1] else {
            panic!("{:?}", lines[1])
        };
        assert_eq!(payload, "online");
        // One totals line: nothing moved in the second tick.
        let totals: Vec<&RackLine> = lines
            .iter()
            .filter(|l| matches!(l, RackLine::Totals { .. }))
            .collect();
        assert_eq!(totals.len(), 1);
        assert!(matches!(totals[0], RackLine::Totals { caught: 200, .. }));
    }

    #[test]
    fn a_bad_line_is_named_and_a_cut_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RACK_FILE);
        let start = r#"{"type":"start","v":1,"started_unix_ms":5,"rack":"rack"}"#;
        std::fs::write(&path, format!("{start}\n{{\"type\":\"totals\"")).unwrap();
        assert_eq!(read_rack(&path).unwrap().len(), 1);
        std::fs::write(&path, format!("{start}\n{start}\n")).unwrap();
        let e = read_rack(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:2: ", path.display())), "{e}");
        std::fs::write(&path, "{\"type\":\"totals\",\"t_ms\":1}\n").unwrap();
        let e = read_rack(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:1: ", path.display())), "{e}");
    }
}
