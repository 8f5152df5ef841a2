//! A recorded run on the live dashboard (`rackpong replay RUN_DIR`): the
//! run's `journal.jsonl` (the recovery story and every health sample) and
//! its `rack.jsonl` (births, Last Wills, LED reports, a sample of the balls
//! and the ball totals) merged on the journal's clock and fed, `speed`
//! times faster than recorded, into the same board the live page reads.
//! After the last line the page shows the verdict (built from the journal,
//! nothing is written into the run directory) and keeps serving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rackpong_agent::proto::{RackMessage, Topics};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Hub;
use super::board::{Board, ReplayView};
use crate::journal::event::{Event, JournalLine};
use crate::journal::rack::{RACK_FILE, RackLine, payload_bytes, read_rack};
use crate::journal::{JOURNAL_FILE, JournalError};
use crate::model::Progress;
use crate::report::{ReportError, Verdict};

/// Why a run cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{}: not a run directory (no {JOURNAL_FILE})", .0.display())]
    NotARun(PathBuf),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("--speed must be a positive number, not {0}")]
    Speed(f64),
}

/// One thing to show, at its journal time (ms; rack lines from before the
/// run started are negative).
#[derive(Debug, Clone)]
struct Step {
    t_ms: i64,
    what: What,
}

#[derive(Debug, Clone)]
enum What {
    Line(Box<JournalLine>),
    Message(RackMessage),
    /// A recorded payload that did not decode (counted, as live).
    Malformed,
    Totals {
        caught: u64,
        dropped: BTreeMap<String, u64>,
    },
}

/// A run directory read back, in the order it is shown.
#[derive(Debug, Clone)]
pub struct Recording {
    pub run_dir: PathBuf,
    pub run_id: String,
    /// The rack's name, from the record (`rack` without one).
    pub rack: String,
    /// Journal time of the last line.
    pub end_ms: u64,
    /// Lines of `rack.jsonl` (0 when the run has none).
    pub rack_lines: usize,
    steps: Vec<Step>,
    verdict: Verdict,
}

impl Recording {
    /// Reads `dir/journal.jsonl` and, when present, `dir/rack.jsonl`.
    pub fn load(dir: &Path) -> Result<Recording, ReplayError> {
        let journal = dir.join(JOURNAL_FILE);
        if !journal.is_file() {
            return Err(ReplayError::NotARun(dir.to_path_buf()));
        }
        // The report's reader: the same checks and the same tolerance of a
        // line cut off mid-write (a crashed run replays too), read once for
        // both the steps and the verdict.
        let read = crate::report::parse::read_journal(&journal)?;
        let verdict = crate::report::from_journal(&read).verdict;
        let Some(Event::RunStarted(start)) = read.lines.first().map(|l| &l.event) else {
            unreachable!("the report's reader guarantees the first line is run-started")
        };
        let (run_id, started) = (start.run_id.clone(), start.started_unix_ms);
        let end_ms = read.lines.last().map_or(0, |l| l.t_ms);
        let mut steps: Vec<Step> = read
            .lines
            .into_iter()
            .map(|l| Step {
                t_ms: l.t_ms as i64,
                what: What::Line(Box::new(l)),
            })
            .collect();
        let rack_path = dir.join(RACK_FILE);
        let rack = match rack_path.is_file() {
            true => read_rack(&rack_path)?,
            false => {
                tracing::warn!(dir = %dir.display(), "no {RACK_FILE}: replaying without births, LEDs and balls");
                Vec::new()
            }
        };
        let rack_lines = rack.len();
        let name = rack_steps(rack, started, &mut steps);
        // Stable: at the same time the journal's line comes first.
        steps.sort_by_key(|s| s.t_ms);
        Ok(Recording {
            run_dir: dir.to_path_buf(),
            run_id,
            rack: name,
            end_ms,
            rack_lines,
            steps,
            verdict,
        })
    }
}

/// The rack record's lines as steps on the journal's clock; the rack's name.
fn rack_steps(rack: Vec<RackLine>, started_unix_ms: u64, steps: &mut Vec<Step>) -> String {
    let mut name = "rack".to_string();
    let mut offset = 0i64;
    let mut topics = Topics::new(&name);
    for line in rack {
        let what = match line {
            RackLine::Start {
                started_unix_ms: s,
                rack,
                ..
            } => {
                offset = s as i64 - started_unix_ms as i64;
                topics = Topics::new(&rack);
                name = rack;
                continue;
            }
            RackLine::Mqtt {
                ref topic,
                ref payload,
                ..
            } => {
                let full = format!("{}/{topic}", topics.root());
                match RackMessage::decode(&topics, &full, &payload_bytes(payload)) {
                    Ok(Some(m)) => What::Message(m),
                    Ok(None) => continue,
                    Err(_) => What::Malformed,
                }
            }
            RackLine::Totals {
                ref caught,
                ref dropped,
                ..
            } => What::Totals {
                caught: *caught,
                dropped: dropped.clone(),
            },
        };
        steps.push(Step {
            t_ms: line.t_ms() as i64 + offset,
            what,
        });
    }
    name
}

/// Plays `rec` into `hub` at `speed` until its end (then the verdict) or `stop`.
pub async fn play(hub: Hub, rec: Recording, speed: f64, stop: CancellationToken) {
    let view = |done| ReplayView {
        run_dir: rec.run_dir.display().to_string(),
        speed,
        done,
    };
    hub.update(|b| {
        b.set_speed(speed);
        b.set_replay(view(false));
    });
    let t0 = rec.steps.first().map_or(0, |s| s.t_ms.min(0));
    let wall0 = Instant::now();
    let due = |t: i64| wall0 + Duration::from_secs_f64((t - t0) as f64 / 1000.0 / speed);
    let mut progress = Replayed::new(&rec, speed);
    let mut next = 0;
    while next < rec.steps.len() {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(due(rec.steps[next].t_ms)) => {}
        }
        let now = Instant::now();
        let mut urgent = false;
        hub.update(|b| {
            while next < rec.steps.len() && due(rec.steps[next].t_ms) <= now {
                urgent |= progress.apply(b, &rec.steps[next], now);
                next += 1;
            }
        });
        if urgent {
            hub.update_now(|_| {});
        }
    }
    let verdict = rec.verdict.clone();
    hub.update_now(|b| {
        b.set_verdict(Some(verdict));
        b.set_replay(view(true));
    });
    tracing::info!(run = %rec.run_id, "replay finished; the page stays up");
}

/// The replay's progress bar, kept from the lines shown so far.
struct Replayed {
    p: Progress,
    ended: usize,
}

impl Replayed {
    fn new(rec: &Recording, speed: f64) -> Replayed {
        Replayed {
            p: Progress {
                phase: "replay",
                duration: Duration::from_millis(rec.end_ms),
                last: format!("replay of {} at {speed}×", rec.run_id),
                ..Progress::default()
            },
            ended: 0,
        }
    }

    /// Shows one step; true for a fault event.
    fn apply(&mut self, b: &mut Board, step: &Step, at: Instant) -> bool {
        match &step.what {
            What::Line(line) => {
                match &line.event {
                    Event::Health { sample } => b.apply_message(
                        RackMessage::NodeHealth {
                            node: sample.node.clone(),
                            sample: Box::new(sample.clone()),
                        },
                        at,
                    ),
                    Event::FaultInjected(_) => self.p.injected += 1,
                    Event::FaultRefused { .. } => self.p.refused += 1,
                    Event::FaultEnded { .. } => self.ended += 1,
                    _ => {}
                }
                self.p.elapsed = Duration::from_millis(line.t_ms);
                self.p.open = (self.p.injected as usize).saturating_sub(self.ended);
                b.set_progress(self.p.clone(), at);
                b.apply_journal(line, at)
            }
            What::Message(m) => {
                b.apply_message(m.clone(), at);
                false
            }
            What::Malformed => {
                b.count_malformed();
                false
            }
            What::Totals { caught, dropped } => {
                b.set_totals(*caught, dropped.clone());
                false
            }
        }
    }
}

/// Checks `--speed`.
pub fn check_speed(speed: f64) -> Result<f64, ReplayError> {
    if speed.is_finite() && speed > 0.0 {
        Ok(speed)
    } else {
        Err(ReplayError::Speed(speed))
    }
}

/// Serves the dashboard on `listen` and starts playing `rec` on it; the
/// server ends with `shutdown`. `POST /api/stop` answers 409 (no run) and
/// the emergency stop 409 (no rack).
pub async fn start(
    listen: std::net::SocketAddr,
    token: String,
    rec: Recording,
    speed: f64,
    shutdown: CancellationToken,
) -> Result<super::Dashboard, super::DashboardError> {
    let cfg = super::DashboardConfig {
        listen,
        token,
        topics: Topics::new(&rec.rack),
        stale_after: None,
        max_balls: super::DEFAULT_MAX_BALLS,
        run_dir: Some(rec.run_dir.clone()),
    };
    let dash =
        super::Dashboard::start(cfg, super::Sources::default(), None, shutdown.clone()).await?;
    tokio::spawn(play(dash.hub.clone(), rec, speed, shutdown));
    Ok(dash)
}
