//! The end-of-run summary: the verdict (the report's, from the journal: steady state before and after, every
//! fault within the recovery SLO) and a table of every fault's milestones.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::run::Run;
use super::{EngineError, ServiceProbe};
use crate::cluster::Cluster;
use crate::journal::JOURNAL_FILE;
use crate::journal::event::{FaultOutcome, RunOutcome};
use crate::model::Milestone;

/// One fault's row: time from injection to each milestone reached.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRow {
    pub fault_id: String,
    pub fault: String,
    pub kind: &'static str,
    pub outcome: FaultOutcome,
    pub milestones: Vec<(Milestone, Duration)>,
    pub total: Duration,
}

/// What a run came to.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub outcome: RunOutcome,
    pub reason: Option<String>,
    pub steady_before: Option<(bool, String)>,
    pub steady_after: Option<(bool, String)>,
    pub faults: Vec<FaultRow>,
    /// (fault name, reason)
    pub refused: Vec<(String, String)>,
    pub recovery_timeout: Duration,
    /// Health samples received again (same node and seq: QoS 1 re-sends,
    /// retained re-deliveries), counted once and ignored.
    pub health_duplicates: u64,
}

impl RunSummary {
    pub(super) fn new<C: Cluster, S: ServiceProbe>(
        run: &Run<C, S>,
        outcome: RunOutcome,
        reason: Option<String>,
    ) -> Self {
        let faults = run
            .tracker
            .timelines()
            .iter()
            .map(|t| FaultRow {
                fault_id: t.fault_id.clone(),
                fault: t.fault.clone(),
                kind: t.kind.as_str(),
                outcome: t.outcome,
                milestones: t
                    .milestones
                    .iter()
                    .map(|(m, at)| (*m, at.saturating_duration_since(t.injected)))
                    .collect(),
                total: t.total(),
            })
            .collect();
        RunSummary {
            run_dir: run.journal.dir().to_path_buf(),
            outcome,
            reason,
            steady_before: run.steady_before.clone(),
            steady_after: run.steady_after.clone(),
            faults,
            refused: run.refused.clone(),
            recovery_timeout: run.plan.recovery_timeout,
            health_duplicates: run.health_seen.duplicates(),
        }
    }

    /// Everything that failed, as the report's verdict decides it from the
    /// run's journal (`report/verdict.rs`): the exit code, the
    /// operator's status and `report.json` all say the same.
    pub fn failures(&self) -> Vec<String> {
        match crate::report::load(&self.run_dir.join(JOURNAL_FILE)) {
            Ok(report) => report
                .verdict
                .failures
                .into_iter()
                .map(|f| f.detail)
                .collect(),
            Err(e) => vec![format!(
                "cannot read the run's journal for its verdict: {e}"
            )],
        }
    }

    /// `Ok` when nothing failed, else [`EngineError::Failed`] saying what.
    pub fn verdict(&self) -> Result<(), EngineError> {
        let failures = self.failures();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Failed {
                run_dir: self.run_dir.clone(),
                failures,
            })
        }
    }

    /// A plain-text table: one row per fault, ms from injection to each milestone.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let cols = [
            "detected", "created", "sched", "running", "ready", "serving", "restored",
        ];
        let _ = write!(
            s,
            "{:<5} {:<24} {:<9} {:<10}",
            "id", "fault", "kind", "outcome"
        );
        for c in cols {
            let _ = write!(s, " {c:>9}");
        }
        let _ = writeln!(s, " {:>9}", "total ms");
        for r in &self.faults {
            let _ = write!(
                s,
                "{:<5} {:<24} {:<9} {:<10}",
                r.fault_id,
                truncate(&r.fault, 24),
                r.kind,
                format!("{:?}", r.outcome).to_lowercase()
            );
            for m in Milestone::ALL {
                match r.milestones.iter().find(|(x, _)| *x == m) {
                    Some((_, d)) => {
                        let _ = write!(s, " {:>9}", d.as_millis());
                    }
                    None => {
                        let _ = write!(s, " {:>9}", "-");
                    }
                }
            }
            let _ = writeln!(s, " {:>9}", r.total.as_millis());
        }
        for (fault, reason) in &self.refused {
            let _ = writeln!(s, "refused {fault}: {reason}");
        }
        if self.health_duplicates > 0 {
            let _ = writeln!(
                s,
                "health samples received more than once (same node and seq: a QoS 1 re-send or a reconnect), counted once: {}",
                self.health_duplicates
            );
        }
        let failures = self.failures();
        if failures.is_empty() {
            let _ = writeln!(s, "verdict: PASS ({})", self.run_dir.display());
        } else {
            for f in failures {
                let _ = writeln!(s, "FAIL: {f}");
            }
        }
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
