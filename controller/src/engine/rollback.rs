//! Leaving the rack as it was found: at the end of a run (replicas restored,
//! faulted nodes brought back), on abort, and on the next start for runs a
//! crashed controller left unfinished. Every action is journaled as
//! `rollback` so a crash during rollback is resumed, not repeated.

use std::path::Path;

use tokio::time::Instant;

use super::run::{Ending, Run};
use super::{EngineError, RunSummary, ServiceProbe};
use crate::cluster::Cluster;
use crate::journal::event::{Event, RunOutcome};
use crate::journal::recover::{ACTION_NODE_UP, ACTION_RESTORE_REPLICAS};
use crate::journal::{Journal, RollbackPlan, find_unfinished};
use crate::model::ClusterKind;

impl<C: Cluster, S: ServiceProbe> Run<C, S> {
    /// Ends open faults, rolls back, writes `run-ended` and builds the summary.
    pub(super) async fn finish(
        mut self,
        result: Result<Ending, EngineError>,
    ) -> Result<RunSummary, EngineError> {
        let (outcome, reason) = match &result {
            Ok(e) => e.clone(),
            Err(e) => (RunOutcome::Aborted, Some(e.to_string())),
        };
        if outcome != RunOutcome::Completed {
            let out = self.tracker.abort(Instant::now());
            if let Err(e) = self.emit(out) {
                tracing::error!(error = %e, "cannot journal aborted faults");
            }
        }
        self.set_phase("rolling back");
        let plan = self.what_to_undo(outcome).await;
        roll_back(&*self.cluster, &self.journal, &plan).await;
        let summary = RunSummary::new(&self, outcome, reason.clone());
        self.journal.finish(outcome, reason)?;
        self.set_phase("done");
        result?;
        Ok(summary)
    }

    /// Aborted: everything changed. Completed: the replica count, and the
    /// faulted nodes still NotReady or cordoned (the others came back).
    async fn what_to_undo(&self, outcome: RunOutcome) -> RollbackPlan {
        let mut nodes = self.faulted_nodes.clone();
        if outcome == RunOutcome::Completed
            && let Ok(now) = self.cluster.nodes().await
        {
            nodes.retain(|n| now.iter().any(|x| &x.name == n && (!x.ready || x.cordoned)));
        }
        RollbackPlan {
            replicas: self.original_replicas,
            nodes,
        }
    }
}

/// Performs a rollback plan, journaling each action; failures are journaled
/// and logged, never fatal (the rest is still attempted).
pub async fn roll_back<C: Cluster>(cluster: &C, journal: &Journal, plan: &RollbackPlan) {
    if let Some(r) = plan.replicas {
        let res = cluster.scale(r).await;
        log(
            journal,
            ACTION_RESTORE_REPLICAS,
            res.as_ref().err(),
            format!("{r}"),
        );
    }
    for node in &plan.nodes {
        let res = cluster.node_up(node).await;
        log(journal, ACTION_NODE_UP, res.as_ref().err(), node.clone());
    }
}

fn log(
    journal: &Journal,
    action: &str,
    err: Option<&crate::cluster::ClusterError>,
    detail: String,
) {
    match err {
        None => tracing::info!(action, %detail, "rolled back"),
        Some(e) => tracing::error!(action, %detail, error = %e, "rollback failed"),
    }
    let ev = Event::Rollback {
        action: action.into(),
        ok: err.is_none(),
        detail,
    };
    if let Err(e) = journal.append(ev) {
        tracing::error!(error = %e, "cannot journal a rollback action");
    }
}

/// Rolls back and closes every run under `runs_dir` a crashed controller
/// left unfinished on this kind of cluster (`run-ended {outcome: crashed}`).
/// A local rack dies with its controller, so a local run is only closed.
/// Runs of another cluster kind are left for a controller of that kind.
pub async fn recover_unfinished<C: Cluster>(
    cluster: &C,
    runs_dir: &Path,
) -> Result<Vec<std::path::PathBuf>, EngineError> {
    let mut closed = Vec::new();
    for u in find_unfinished(runs_dir)? {
        if u.already_ended() {
            u.clear_marker()?;
            continue;
        }
        let kind = u.cluster_kind().unwrap_or(cluster.kind());
        if kind != cluster.kind() {
            tracing::warn!(run = %u.dir.display(), %kind, "unfinished run of another cluster kind left alone");
            continue;
        }
        tracing::warn!(run = %u.dir.display(), "rolling back a run left unfinished by a crashed controller");
        let journal = u.reopen()?;
        let plan = u.rollback_plan();
        if kind == ClusterKind::Local {
            let ev = Event::Rollback {
                action: "none".into(),
                ok: true,
                detail: "the local rack stopped with its controller".into(),
            };
            journal.append(ev)?;
        } else {
            roll_back(cluster, &journal, &plan).await;
        }
        journal.finish(
            RunOutcome::Crashed,
            Some(
                "the controller stopped without ending the run; rolled back on the next start"
                    .into(),
            ),
        )?;
        closed.push(u.dir.clone());
    }
    Ok(closed)
}
