//! The terminal during `demo` and `run`: an indicatif progress bar on stderr
//! and, above it, one line per fault event on stdout (injected, refused,
//! recovered with its total, SLO breach), told from the run's journal lines
//! ([`crate::story`]). Nothing else is printed while the run lasts: the logs
//! go to `runs/<id>/controller.log` ([`logs`]).

pub(crate) mod logs;

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{broadcast, watch};

use crate::journal::event::JournalLine;
use crate::model::Progress;
use crate::story::{Change, FaultStory, Refused, Story};

/// Shows the bar and the fault lines until both sources end.
pub async fn follow(
    duration: Duration,
    progress: watch::Receiver<Progress>,
    lines: broadcast::Receiver<JournalLine>,
) {
    let bar = progress_bar(duration);
    logs::set_bar(Some(bar.clone()));
    let events = tokio::spawn(print_events(lines));
    render_progress(&bar, progress).await;
    let _ = events.await;
    bar.finish_and_clear();
    logs::set_bar(None);
}

fn progress_bar(duration: Duration) -> ProgressBar {
    let bar = ProgressBar::new(duration.as_millis() as u64);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {prefix} {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn render_progress(bar: &ProgressBar, mut rx: watch::Receiver<Progress>) {
    while rx.changed().await.is_ok() {
        let p = rx.borrow_and_update().clone();
        bar.set_position((p.elapsed.as_millis() as u64).min(bar.length().unwrap_or(u64::MAX)));
        bar.set_prefix(format!(
            "{} | faults {} refused {} recovering {}",
            p.phase, p.injected, p.refused, p.open
        ));
    }
}

async fn print_events(mut lines: broadcast::Receiver<JournalLine>) {
    let mut story = Story::default();
    loop {
        let line = match lines.recv().await {
            Ok(l) => l,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "terminal fell behind the journal");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let change = story.apply(&line);
        if let Some(text) = event_line(&story, &change) {
            logs::above_bar(|| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            });
        }
        if change == Change::RunEnded {
            return;
        }
    }
}

/// The terminal line for what a journal line changed, if it is a fault event.
pub fn event_line(story: &Story, change: &Change) -> Option<String> {
    match change {
        Change::Injected(id) => story.fault(id).map(injected_line),
        Change::Refused(i) => story.refused.get(*i).map(refused_line),
        Change::Ended(id) => story.fault(id).map(|f| ended_line(story, f)),
        _ => None,
    }
}

fn stamp(t: u64) -> String {
    format!("{:>7}", clock(t))
}

fn injected_line(f: &FaultStory) -> String {
    let id = &f.fault_id;
    let what = match f.replicas {
        Some((from, to)) => format!("{from} → {to} replicas"),
        None => format!("{} → {}", f.action, f.targets.join(", ")),
    };
    let mut s = format!(
        "{} {id:<4} INJECTED   {} {what}",
        stamp(f.injected_ms),
        f.kind
    );
    if let Some(n) = f.node.as_ref().filter(|n| !f.targets.contains(n)) {
        s.push_str(&format!(" on {n}"));
    }
    if let Some(p) = f.predicted_ms {
        s.push_str(&format!("  (predicted ≤ {})", secs(p)));
    }
    s
}

fn refused_line(r: &Refused) -> String {
    let target = r
        .target
        .as_deref()
        .map(|t| format!(" {t}"))
        .unwrap_or_default();
    format!(
        "{} --   REFUSED    {} ({}{target}): {}",
        stamp(r.t_ms),
        r.fault,
        r.kind,
        r.reason
    )
}

fn ended_line(story: &Story, f: &FaultStory) -> String {
    let id = &f.fault_id;
    let t = stamp(f.ended_ms.unwrap_or(story.last_t_ms));
    let slo = story.recovery_timeout_ms.map(secs).unwrap_or_default();
    match (f.outcome, f.total_ms) {
        (Some("recovered"), Some(total)) => {
            let mut s = format!(
                "{t} {id:<4} RECOVERED  in {} ± {}",
                secs(total),
                secs(f.precision_ms.unwrap_or(0))
            );
            if f.slo_breached {
                s.push_str(&format!("  SLO BREACH (over {slo})"));
            }
            if f.over_prediction {
                let p = f.predicted_ms.map(secs).unwrap_or_default();
                s.push_str(&format!("  over prediction ({p})"));
            }
            s
        }
        (Some("timed-out"), _) => format!("{t} {id:<4} NOT RECOVERED within {slo}  SLO BREACH"),
        (Some("aborted"), _) => format!("{t} {id:<4} ABORTED    before it recovered"),
        _ => format!("{t} {id:<4} RECOVERED  (no milestone timed it)  SLO BREACH"),
    }
}

/// Run time as `m:ss.s`.
fn clock(ms: u64) -> String {
    format!("{}:{:04.1}", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
}

/// A duration as seconds with millisecond precision.
fn secs(ms: u64) -> String {
    format!("{:.3} s", ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests;
