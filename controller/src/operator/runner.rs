//! The engine behind the operator's
//! [`ExperimentRunner`] seam. A `ChaosExperiment`'s `spec.plan` goes through
//! the same parser as a plan file (errors name `ChaosExperiment/<name>`), then
//! runs on the shared [`K3sRig`] in its own task; the outcome becomes the
//! status the reconciler writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::metrics::Metrics;
use super::reconcile::{self, Context, ExperimentRunner, RunHandle, RunSummary};
use super::{ChaosExperimentSpec, Phase};
use crate::cluster::ClusterError;
use crate::engine::{EngineConfig, RunSummary as EngineSummary};
use crate::journal::event::RunOutcome;
use crate::journal::{new_run_id, reserve_run_dir};
use crate::plan::{self, Plan};
use crate::rig::{K3sRig, K3sRunArgs, RigError, WireError};

/// The engine as the operator's runner.
pub struct EngineRunner {
    rig: Arc<K3sRig>,
    runs_dir: PathBuf,
    /// The operator is stopping: a running experiment is aborted too.
    shutdown: CancellationToken,
    /// The run tasks, awaited before the rig stops (they roll back through it).
    runs: TaskTracker,
}

impl EngineRunner {
    pub fn new(rig: Arc<K3sRig>, runs_dir: PathBuf, shutdown: CancellationToken) -> EngineRunner {
        EngineRunner {
            rig,
            runs_dir,
            shutdown,
            runs: TaskTracker::new(),
        }
    }

    /// Waits until every started run has ended (rolled back if aborted).
    pub async fn wait(&self) {
        self.runs.close();
        self.runs.wait().await;
    }
}

/// The plan of a `ChaosExperiment`, validated like a plan file; `spec.dryRun`
/// makes it a dry run (decide and journal, touch nothing).
pub fn plan_of(name: &str, spec: &ChaosExperimentSpec) -> Result<Plan, String> {
    let origin = format!("ChaosExperiment/{name}");
    let yaml =
        serde_saphyr::to_string(&spec.plan).map_err(|e| format!("{origin}: spec.plan: {e}"))?;
    let mut plan = plan::parse(&yaml, Path::new(&origin)).map_err(|e| e.to_string())?;
    plan.safety.dry_run |= spec.dry_run;
    Ok(plan)
}

impl ExperimentRunner for EngineRunner {
    fn start(
        &self,
        name: &str,
        spec: &ChaosExperimentSpec,
        cancel: CancellationToken,
    ) -> Result<RunHandle, String> {
        let plan = plan_of(name, spec)?;
        let run_id = reserve_run(&self.runs_dir, &plan.name)?;
        let rig = self.rig.clone();
        let mut cfg = EngineConfig::new(&self.runs_dir);
        cfg.run_id = Some(run_id.clone());
        let shutdown = self.shutdown.clone();
        let task = self.runs.spawn(async move {
            let abort = CancellationToken::new();
            let run = rig.run(plan, cfg, false, abort.clone());
            tokio::pin!(run);
            tokio::select! {
                result = &mut run => return result,
                _ = cancel.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
            abort.cancel();
            run.await
        });
        let done = async move {
            match task.await {
                Ok(result) => summarize(result),
                Err(e) => failed(format!("the run task ended abnormally: {e}")),
            }
        };
        Ok(RunHandle {
            run_id,
            done: done.boxed(),
        })
    }
}

/// Reserves the run directory under `runs_dir` and returns its id: the one
/// the status shows is the one the engine writes into, also when two runs
/// start in the same second (the second gets a `-2` suffix).
pub fn reserve_run(runs_dir: &Path, plan_name: &str) -> Result<String, String> {
    let dir = reserve_run_dir(runs_dir, &new_run_id(plan_name)).map_err(|e| e.to_string())?;
    Ok(dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default())
}

/// The reconciler's view of how a run ended.
pub fn summarize(result: Result<EngineSummary, RigError>) -> RunSummary {
    match result {
        Ok(s) => {
            let failures = s.failures();
            let phase = match (&s.outcome, failures.is_empty()) {
                (RunOutcome::Aborted, _) => Phase::Aborted,
                (_, true) => Phase::Succeeded,
                (_, false) => Phase::Failed,
            };
            RunSummary {
                phase,
                faults_injected: u32::try_from(s.faults.len()).unwrap_or(u32::MAX),
                faults_refused: u32::try_from(s.refused.len()).unwrap_or(u32::MAX),
                message: (!failures.is_empty()).then(|| failures.join("; ")),
            }
        }
        Err(e) => failed(e.to_string()),
    }
}

fn failed(message: String) -> RunSummary {
    RunSummary {
        phase: Phase::Failed,
        faults_injected: 0,
        faults_refused: 0,
        message: Some(message),
    }
}

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum OperatorRunError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("k3s: {0}")]
    Cluster(ClusterError),
    #[error(transparent)]
    Health(#[from] super::health::HealthError),
}

/// Reconciles the namespace's `ChaosExperiment`s with
/// the engine until `cancel` fires; a running experiment is then aborted and
/// rolled back before the operator returns.
pub async fn serve(
    k3s: &K3sRunArgs,
    runs_dir: PathBuf,
    health: &super::health::HealthArgs,
    cancel: CancellationToken,
) -> Result<(), OperatorRunError> {
    let metrics = Arc::new(Metrics::default());
    let (_, ready) =
        super::health::start(health.health_addr, metrics.clone(), cancel.clone()).await?;
    let rig = Arc::new(K3sRig::connect(k3s, &cancel).await?);
    ready.send_replace(true);
    let client = k3s.k3s.client().await.map_err(OperatorRunError::Cluster)?;
    let runner = Arc::new(EngineRunner::new(rig.clone(), runs_dir, cancel.clone()));
    let ctx = Context::new(
        client,
        &k3s.k3s.namespace,
        &k3s.k3s.instance,
        runner.clone(),
    )
    .with_metrics(metrics);
    tracing::info!(namespace = %k3s.k3s.namespace, "operator reconciling ChaosExperiments");
    reconcile::run(Arc::new(ctx), cancel).await;
    tracing::info!("operator stopping: waiting for a running experiment to roll back");
    runner.wait().await;
    rig.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::ChaosExperiment;

    fn example(file: &str) -> ChaosExperiment {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../k3s/examples")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    }

    #[test]
    fn the_example_experiments_give_valid_plans() {
        let exp = example("pod-kill.yaml");
        let plan = plan_of("pod-kill", &exp.spec).unwrap();
        assert_eq!(plan.name, "pod-kill");
        assert_eq!(plan.seed, 42);
        assert_eq!(plan.duration, std::time::Duration::from_secs(600));
        assert_eq!(plan.faults.len(), 2);
        assert_eq!(plan.steady_state.min_ready_workers, 4);
        assert!(!plan.safety.dry_run);
        let exp = example("node-faults.yaml");
        assert!(plan_of("node-faults", &exp.spec).is_ok());
    }

    #[test]
    fn spec_dry_run_makes_a_dry_run() {
        let mut exp = example("pod-kill.yaml");
        exp.spec.dry_run = true;
        assert!(plan_of("pod-kill", &exp.spec).unwrap().safety.dry_run);
    }

    #[test]
    fn a_bad_plan_names_the_experiment_and_the_problem() {
        let mut exp = example("pod-kill.yaml");
        exp.spec.plan["faults"][1]["pod-kill"]["percent"] = serde_json::json!(140);
        let e = plan_of("pod-kill", &exp.spec).unwrap_err();
        assert!(e.starts_with("ChaosExperiment/pod-kill"), "{e}");
        assert!(
            e.contains("percent must be between 1 and 100 (got 140)"),
            "{e}"
        );
    }

    #[test]
    fn the_reserved_run_id_names_an_existing_directory_even_in_the_same_second() {
        let runs = tempfile::tempdir().unwrap();
        let a = reserve_run(runs.path(), "pod kill").unwrap();
        let b = reserve_run(runs.path(), "pod kill").unwrap();
        assert_ne!(a, b, "two runs in one second get two directories");
        for id in [&a, &b] {
            assert!(runs.path().join(id).is_dir(), "{id}");
            assert!(
                id.ends_with("pod-kill") || id.ends_with("pod-kill-2"),
                "{id}"
            );
        }
    }

    #[test]
    fn an_engine_error_is_a_failed_status_with_its_reason() {
        let gone = std::io::Error::other("gone");
        let s = summarize(Err(RigError::OwnExe(gone)));
        assert_eq!(s.phase, Phase::Failed);
        assert_eq!(
            s.message.as_deref(),
            Some("local rack: own executable: gone")
        );
    }
}
