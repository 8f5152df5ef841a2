//! The in-cluster operator: reconciles the `ChaosExperiment`s of one
//! namespace, one experiment at a time. A new experiment (or a changed spec)
//! is handed to the [`ExperimentRunner`] (the engine, plugged in by the
//! `operator` subcommand) and its status follows the run: Pending, Running,
//! then Succeeded, Failed or Aborted. `suspend: true` or deleting the
//! resource stops a running experiment, which the runner rolls back (a
//! finalizer holds the deletion until it has). The status is written whole,
//! as the typed [`ChaosExperimentStatus`], with server-side apply under the
//! field manager [`FIELD_MANAGER`]; a failed reconcile is counted
//! ([`Metrics`]) and left as a Warning Event on the experiment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::{ChaosExperiment, ChaosExperimentSpec, ChaosExperimentStatus, Phase};

/// Holds a deletion until a running experiment has been rolled back.
pub const FINALIZER: &str = "rackpong.dev/rollback";

/// The server-side apply field manager that owns `status`.
pub const FIELD_MANAGER: &str = "rackpong-operator";

/// The `reportingController` of the operator's Events.
pub const REPORTER: &str = "rackpong.dev/operator";

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// `Succeeded`, `Failed` or `Aborted`.
    pub phase: Phase,
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
    Finalizer(#[source] Box<finalizer::Error<OperatorError>>),
}

impl OperatorError {
    /// The `error` label of the failure metric.
    pub fn kind(&self) -> &'static str {
        match self {
            OperatorError::Kube(_) => "kube",
            OperatorError::Finalizer(_) => "finalizer",
        }
    }
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
    metrics: Arc<Metrics>,
    recorder: Recorder,
}

impl Context {
    /// `instance` names this operator in its Events (its pod's name).
    pub fn new(
        client: Client,
        namespace: &str,
        instance: &str,
        runner: Arc<dyn ExperimentRunner>,
    ) -> Context {
        let reporter = Reporter {
            controller: REPORTER.into(),
            instance: Some(instance.into()),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            namespace: namespace.to_string(),
            runner,
            active: Mutex::new(None),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Counts into `metrics` (the ones the probe server serves).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Context {
        self.metrics = metrics;
        self
    }

    /// The counters `GET /metrics` serves.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
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

/// A failed reconcile: counted, left as a Warning Event on the experiment
/// (written in the background: the policy itself cannot wait), retried in 15 s.
pub fn error_policy(exp: Arc<ChaosExperiment>, err: &OperatorError, ctx: Arc<Context>) -> Action {
    tracing::warn!(%err, name = %exp.name_any(), "reconcile failed: retrying in 15 s");
    ctx.metrics.failed(err.kind());
    let note = err.to_string();
    tokio::spawn(async move { record_failure(&exp, note, &ctx).await });
    Action::requeue(Duration::from_secs(15))
}

/// Leaves a `ReconcileFailed` Warning Event on `exp` (a repeat within a few
/// minutes becomes a series on the same Event); a failed write is logged.
pub async fn record_failure(exp: &ChaosExperiment, note: String, ctx: &Context) {
    let event = Event {
        type_: EventType::Warning,
        reason: "ReconcileFailed".into(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &exp.object_ref(&())).await {
        tracing::warn!(%err, "could not write the ReconcileFailed Event");
    }
}

/// One reconcile of one experiment (the finalizer wraps apply and cleanup).
pub async fn reconcile(
    exp: Arc<ChaosExperiment>,
    ctx: Arc<Context>,
) -> Result<Action, OperatorError> {
    ctx.metrics.reconciled();
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
        other => OperatorError::Finalizer(Box::new(other)),
    })
}

/// Writes the whole status (server-side apply: fields left out are dropped).
async fn write_status(
    api: &Api<ChaosExperiment>,
    name: &str,
    status: &ChaosExperimentStatus,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": ChaosExperiment::api_version(&()),
        "kind": ChaosExperiment::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(&patch))
        .await
        .map(|_| ())
}

fn now() -> Option<String> {
    Some(Timestamp::now().to_string())
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
    if this_generation && status.phase.is_some_and(Phase::is_final) {
        return Ok(Action::await_change());
    }
    if this_generation && status.phase == Some(Phase::Running) {
        // Running says the status, yet no run is ours: the operator restarted.
        let s = ChaosExperimentStatus {
            phase: Some(Phase::Aborted),
            message: Some("the operator restarted during the run".into()),
            finished_at: now(),
            ..status
        };
        write_status(&api, &name, &s).await?;
        return Ok(Action::await_change());
    }
    let pending = |message: String| ChaosExperimentStatus {
        phase: Some(Phase::Pending),
        message: Some(message),
        observed_generation: generation,
        ..status.clone()
    };
    if exp.spec.suspend {
        write_status(&api, &name, &pending("suspended".into())).await?;
        return Ok(Action::await_change());
    }
    if let Some(other) = busy_with {
        let s = pending(format!("waiting for experiment {other} to finish"));
        write_status(&api, &name, &s).await?;
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
            let s = ChaosExperimentStatus {
                phase: Some(Phase::Failed),
                message: Some(reason),
                observed_generation: generation,
                finished_at: now(),
                ..exp.status.clone().unwrap_or_default()
            };
            write_status(&api, name, &s).await?;
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
    let running = ChaosExperimentStatus {
        phase: Some(Phase::Running),
        run_id: Some(handle.run_id),
        started_at: now(),
        observed_generation: generation,
        ..ChaosExperimentStatus::default()
    };
    if let Err(err) = write_status(&api, name, &running).await {
        tracing::warn!(%err, name, "could not mark the experiment Running");
    }
    spawn_completion(api, name.to_string(), running, handle.done, tx);
    Ok(Action::await_change())
}

/// Records the end of the run in the status, then marks it finished.
fn spawn_completion(
    api: Api<ChaosExperiment>,
    name: String,
    running: ChaosExperimentStatus,
    done: BoxFuture<'static, RunSummary>,
    tx: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        let summary = done.await;
        let s = ChaosExperimentStatus {
            phase: Some(summary.phase),
            message: summary.message,
            faults_injected: summary.faults_injected,
            faults_refused: summary.faults_refused,
            finished_at: now(),
            ..running
        };
        if let Err(err) = write_status(&api, &name, &s).await {
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
