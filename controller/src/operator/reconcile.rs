//! The in-cluster operator: reconciles the `ChaosExperiment`s of one
//! namespace, one experiment at a time. A new experiment (or a changed spec)
//! is handed to the [`ExperimentRunner`] (the engine, plugged in by the
//! `operator` subcommand) and its status follows the run: Pending, Running,
//! then Succeeded, Failed or Aborted. `suspend: true` or deleting the
//! resource stops a running experiment, which the runner rolls back (a
//! finalizer holds the deletion until it has).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{ChaosExperiment, ChaosExperimentSpec};

/// Holds a deletion until a running experiment has been rolled back.
pub const FINALIZER: &str = "rackpong.dev/rollback";

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// `Succeeded`, `Failed` or `Aborted`.
    pub phase: String,
    pub faults_injected: u32,
    pub faults_refused: u32,
    pub message: Option<String>,
}

/// A run that has started.
pub struct RunHandle {
    /// The run directory's id, shown in the status.
    pub run_id: String,
    /// Resolves when the run has ended (rolled back first if cancelled).
    pub done: BoxFuture<'static, RunSummary>,
}

/// Runs an experiment's plan: the seam to the engine.
pub trait ExperimentRunner: Send + Sync + 'static {
    /// Validates the plan and starts the run, or says why it cannot start.
    /// `cancel` aborts the run, which then rolls back before `done` resolves.
    fn start(
        &self,
        name: &str,
        spec: &ChaosExperimentSpec,
        cancel: CancellationToken,
    ) -> Result<RunHandle, String>;
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

/// The experiment in progress.
struct Active {
    name: String,
    generation: Option<i64>,
    cancel: CancellationToken,
    finished: watch::Receiver<bool>,
}

/// What the reconciler shares between calls.
pub struct Context {
    client: Client,
    namespace: String,
    runner: Arc<dyn ExperimentRunner>,
    active: Mutex<Option<Active>>,
}

impl Context {
    pub fn new(client: Client, namespace: &str, runner: Arc<dyn ExperimentRunner>) -> Context {
        Context {
            client,
            namespace: namespace.to_string(),
            runner,
            active: Mutex::new(None),
        }
    }

    fn api(&self) -> Api<ChaosExperiment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn active(&self) -> std::sync::MutexGuard<'_, Option<Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs the operator until `cancel` fires.
pub async fn run(ctx: Arc<Context>, cancel: CancellationToken) {
    let api = ctx.api();
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(cancel.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => tracing::debug!(%obj, "reconciled"),
                Err(err) => tracing::warn!(%err, "reconcile failed"),
            }
        })
        .await;
}

fn error_policy(_: Arc<ChaosExperiment>, err: &OperatorError, _: Arc<Context>) -> Action {
    tracing::warn!(%err, "retrying");
    Action::requeue(Duration::from_secs(15))
}

/// One reconcile of one experiment (the finalizer wraps apply and cleanup).
pub async fn reconcile(
    exp: Arc<ChaosExperiment>,
    ctx: Arc<Context>,
) -> Result<Action, OperatorError> {
    let api = ctx.api();
    finalizer::finalizer(&api, FINALIZER, exp, |event| async {
        match event {
            Finalizer::Apply(exp) => apply(&exp, &ctx).await,
            Finalizer::Cleanup(exp) => cleanup(&exp, &ctx).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => OperatorError::Finalizer(other.to_string()),
    })
}

async fn patch_status(
    api: &Api<ChaosExperiment>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), kube::Error> {
    let patch = json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

fn is_final(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded" | "Failed" | "Aborted"))
}

/// What the operator is doing about an experiment, decided under the lock.
enum Known {
    /// Its run is in progress.
    Running,
    /// Its run for this generation has ended (the status says so, or soon will).
    Finished,
    /// Another experiment is running.
    Busy(String),
    /// Nothing runs.
    Idle,
}

fn known(ctx: &Context, exp: &ChaosExperiment) -> Known {
    let name = exp.name_any();
    let active = ctx.active();
    let Some(a) = active.as_ref() else {
        return Known::Idle;
    };
    let finished = *a.finished.borrow();
    match (a.name == name, finished) {
        (true, false) => {
            if exp.spec.suspend {
                a.cancel.cancel();
            }
            Known::Running
        }
        (true, true) if a.generation == exp.metadata.generation => Known::Finished,
        (false, false) => Known::Busy(a.name.clone()),
        _ => Known::Idle,
    }
}

async fn apply(exp: &ChaosExperiment, ctx: &Arc<Context>) -> Result<Action, OperatorError> {
    let name = exp.name_any();
    let generation = exp.metadata.generation;
    let status = exp.status.clone().unwrap_or_default();
    let api = ctx.api();
    let busy_with = match known(ctx, exp) {
        Known::Running | Known::Finished => return Ok(Action::await_change()),
        Known::Busy(other) => Some(other),
        Known::Idle => None,
    };
    let this_generation = status.observed_generation == generation;
    if this_generation && is_final(status.phase.as_deref()) {
        return Ok(Action::await_change());
    }
    if this_generation && status.phase.as_deref() == Some("Running") {
        // Running says the status, yet no run is ours: the operator restarted.
        let s = json!({
            "phase": "Aborted", "message": "the operator restarted during the run",
            "finishedAt": Timestamp::now().to_string(),
        });
        patch_status(&api, &name, s).await?;
        return Ok(Action::await_change());
    }
    if exp.spec.suspend {
        let s =
            json!({ "phase": "Pending", "message": "suspended", "observedGeneration": generation });
        patch_status(&api, &name, s).await?;
        return Ok(Action::await_change());
    }
    if let Some(other) = busy_with {
        let message = format!("waiting for experiment {other} to finish");
        let s = json!({ "phase": "Pending", "message": message, "observedGeneration": generation });
        patch_status(&api, &name, s).await?;
        return Ok(Action::requeue(Duration::from_secs(10)));
    }
    start(exp, ctx, &name, generation).await
}

async fn start(
    exp: &ChaosExperiment,
    ctx: &Arc<Context>,
    name: &str,
    generation: Option<i64>,
) -> Result<Action, OperatorError> {
    let api = ctx.api();
    let cancel = CancellationToken::new();
    let handle = match ctx.runner.start(name, &exp.spec, cancel.clone()) {
        Ok(handle) => handle,
        Err(reason) => {
            let s = json!({
                "phase": "Failed", "message": reason, "observedGeneration": generation,
                "finishedAt": Timestamp::now().to_string(),
            });
            patch_status(&api, name, s).await?;
            return Ok(Action::await_change());
        }
    };
    let (tx, finished) = watch::channel(false);
    *ctx.active() = Some(Active {
        name: name.to_string(),
        generation,
        cancel,
        finished,
    });
    let s = json!({
        "phase": "Running", "runId": handle.run_id, "message": null,
        "startedAt": Timestamp::now().to_string(), "finishedAt": null,
        "faultsInjected": 0, "faultsRefused": 0, "observedGeneration": generation,
    });
    if let Err(err) = patch_status(&api, name, s).await {
        tracing::warn!(%err, name, "could not mark the experiment Running");
    }
    spawn_completion(api, name.to_string(), generation, handle.done, tx);
    Ok(Action::await_change())
}

/// Records the end of the run in the status, then marks it finished.
fn spawn_completion(
    api: Api<ChaosExperiment>,
    name: String,
    generation: Option<i64>,
    done: BoxFuture<'static, RunSummary>,
    tx: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        let summary = done.await;
        let s = json!({
            "phase": summary.phase, "message": summary.message,
            "faultsInjected": summary.faults_injected, "faultsRefused": summary.faults_refused,
            "finishedAt": Timestamp::now().to_string(), "observedGeneration": generation,
        });
        if let Err(err) = patch_status(&api, &name, s).await {
            tracing::warn!(%err, name, "could not record the end of the experiment");
        }
        let _ = tx.send(true);
    });
}

/// The resource is being deleted: stop its run and wait for the rollback.
async fn cleanup(exp: &ChaosExperiment, ctx: &Context) -> Result<Action, OperatorError> {
    let name = exp.name_any();
    let finished = {
        let active = ctx.active();
        match active.as_ref() {
            Some(a) if a.name == name => {
                a.cancel.cancel();
                tracing::info!(name, generation = ?a.generation, "experiment deleted: rolling back");
                Some(a.finished.clone())
            }
            _ => None,
        }
    };
    if let Some(mut finished) = finished {
        // The completion task owns the sender: it resolves once the rollback is done.
        let _ = finished.wait_for(|&done| done).await;
    }
    Ok(Action::await_change())
}
