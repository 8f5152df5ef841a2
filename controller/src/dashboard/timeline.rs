//! The board's part of the recovery story: the run's journal lines folded
//! into a [`Story`], the run clock (journal time now, so open faults' timers
//! run between lines) and, after the run, its verdict.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::journal::event::JournalLine;
use crate::report::Verdict;
use crate::story::{Change, Story};

/// The story as the board keeps it.
#[derive(Debug, Default)]
pub struct RunStory {
    story: Story,
    /// The instant of journal time 0, from the first line seen.
    zero: Option<Instant>,
    /// Journal time runs this many times faster than the wall (replay).
    speed: f64,
    verdict: Option<Verdict>,
    finished: bool,
}

/// The story in a snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct StoryView {
    #[serde(flatten)]
    pub story: Story,
    /// Journal time at this snapshot (the open faults' timers run from it).
    pub now_ms: u64,
    /// Set once the report is rendered after the run.
    pub verdict: Option<Verdict>,
    /// The run is over and its report was asked for (`/report.html`).
    pub finished: bool,
    /// Journal time per wall time (1 live, N in a replay).
    pub speed: f64,
}

impl RunStory {
    pub fn with_speed(speed: f64) -> RunStory {
        RunStory {
            speed,
            ..RunStory::default()
        }
    }

    /// Folds `line` in, received at `at`; true for a fault event.
    pub fn apply(&mut self, line: &JournalLine, at: Instant) -> bool {
        if self.zero.is_none() {
            let back = Duration::from_secs_f64(line.t_ms as f64 / 1000.0 / self.speed());
            self.zero = Some(at.checked_sub(back).unwrap_or(at));
        }
        !matches!(self.story.apply(line), Change::Other)
    }

    fn speed(&self) -> f64 {
        if self.speed > 0.0 { self.speed } else { 1.0 }
    }

    pub fn set_verdict(&mut self, verdict: Option<Verdict>) {
        self.verdict = verdict;
        self.finished = true;
    }

    pub fn view(&self, now: Instant) -> Option<StoryView> {
        let zero = self.zero?;
        let wall = now.saturating_duration_since(zero).as_secs_f64() * self.speed();
        // Never behind the latest line (a line stamped with when it was
        // observed), and stopped when the run ended.
        let now_ms = match self.story.run_outcome {
            Some(_) => self.story.last_t_ms,
            None => ((wall * 1000.0) as u64).max(self.story.last_t_ms),
        };
        Some(StoryView {
            story: self.story.clone(),
            now_ms,
            verdict: self.verdict.clone(),
            finished: self.finished,
            speed: self.speed(),
        })
    }
}
