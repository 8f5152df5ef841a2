//! One run's state and its event pump: every cluster event, input and
//! service sample goes through here to the journal and the tracker.

use std::sync::Arc;
use std::time::Duration;

use crate::model::ClusterKind;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, Interval, MissedTickBehavior, sleep_until};
use tokio_util::sync::CancellationToken;

mod handlers;

use handlers::{recv_event, recv_input};

use super::{EngineConfig, EngineError, Progress, ServiceProbe, Timed};
use crate::cluster::{Cluster, ClusterEvent};
use crate::journal::event::{Event, FaultInjected, RunOutcome, RunStarted};
use crate::journal::{Journal, new_run_id, reserve_run_dir};
use crate::plan::Plan;
use crate::timing::stale::{STALE_AFTER_INTERVALS, Staleness};
use crate::timing::{Budget, Precision, Tracker};

/// Why the pump returned.
pub(super) enum Stop {
    Deadline,
    Cancelled,
}

/// How the run ended, with the reason when not completed cleanly.
pub(super) type Ending = (RunOutcome, Option<String>);

pub(super) struct Run<C: Cluster, S: ServiceProbe> {
    pub(super) cluster: Arc<C>,
    pub(super) service: S,
    pub(super) plan: Plan,
    pub(super) cfg: EngineConfig,
    pub(super) journal: Journal,
    pub(super) tracker: Tracker,
    pub(super) detection: crate::model::Detection,
    pub(super) budget: Budget,
    events: Option<broadcast::Receiver<ClusterEvent>>,
    inputs: Option<mpsc::Receiver<Timed>>,
    service_tick: Interval,
    timeout_tick: Interval,
    health: Staleness,
    /// Health samples by (node, seq): a re-sent or re-delivered one is counted, not used twice.
    pub(super) health_seen: rackpong_agent::proto::SeqFilter,
    pub(super) rng: StdRng,
    pub(super) next_fault: u32,
    pub(super) injected: Vec<FaultInjected>,
    pub(super) refused: Vec<(String, String)>,
    /// Replica count before the first scale fault.
    pub(super) original_replicas: Option<u32>,
    /// Nodes taken down, in order, without repeats.
    pub(super) faulted_nodes: Vec<String>,
    /// Cold starts (scale to zero) and their scale back up.
    pub(super) cold: Vec<super::cold::ColdStart>,
    pub(super) steady_before: Option<(bool, String)>,
    pub(super) steady_after: Option<(bool, String)>,
    pub(super) fault_start: Instant,
    pub(super) progress: Progress,
}

fn interval(period: Duration) -> Interval {
    let mut i = tokio::time::interval(period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

impl<C: Cluster, S: ServiceProbe> Run<C, S> {
    /// Reads the cluster, opens the journal and writes `run-started`.
    pub(super) async fn start(
        cluster: Arc<C>,
        service: S,
        plan: Plan,
        cfg: EngineConfig,
        inputs: mpsc::Receiver<Timed>,
    ) -> Result<Self, EngineError> {
        let events = cluster.subscribe();
        let detection = cluster.detection().await?;
        let nodes = cluster.nodes().await?;
        let workers = cluster.workers().await?;
        let (tracker, budget) = tracker_for(cluster.kind(), &cfg, &plan, &detection, &workers);
        let start = Instant::now();
        let nodes: Vec<String> = nodes.into_iter().map(|n| n.name).collect();
        let journal = open_journal(&cfg, &plan, cluster.kind(), nodes, &detection, start)?;
        let progress = Progress {
            phase: "settling",
            duration: plan.duration,
            ..Progress::default()
        };
        Ok(Run {
            rng: StdRng::seed_from_u64(plan.seed.wrapping_add(0x5eed)),
            service_tick: interval(cfg.service_period),
            timeout_tick: interval(Duration::from_millis(100)),
            health: Staleness::new(cfg.stale_after / STALE_AFTER_INTERVALS),
            health_seen: rackpong_agent::proto::SeqFilter::new(),
            cluster,
            service,
            plan,
            cfg,
            journal,
            tracker,
            detection,
            budget,
            events: Some(events),
            inputs: Some(inputs),
            next_fault: 0,
            injected: Vec::new(),
            refused: Vec::new(),
            original_replicas: None,
            faulted_nodes: Vec::new(),
            cold: Vec::new(),
            steady_before: None,
            steady_after: None,
            fault_start: start,
            progress,
        })
    }

    /// Settle, fire the faults, wait for recovery, check the steady state.
    pub(super) async fn execute(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<Ending, EngineError> {
        let settle_deadline = Instant::now() + self.cfg.settle_timeout;
        let Some((ok, detail)) = self.checked_steady(settle_deadline, cancel).await? else {
            return Ok(cancelled());
        };
        self.steady_before = Some((ok, detail.clone()));
        // Settled: the rack has now measured what it could (its cold start).
        self.detection = self.cluster.detection().await?;
        self.budget.workers = self.cluster.workers().await?.len() as u32;
        if !ok {
            let reason = format!("steady state not met before the first fault: {detail}");
            return Ok((RunOutcome::Aborted, Some(reason)));
        }
        if let Stop::Cancelled = self.fault_window(cancel).await? {
            return Ok(cancelled());
        }
        self.set_phase("recovering");
        while self.tracker.open() > 0 {
            let next = Instant::now() + self.cfg.service_period;
            if let Stop::Cancelled = self.pump(next, cancel).await? {
                return Ok(cancelled());
            }
        }
        self.set_phase("checking");
        let deadline = Instant::now() + self.plan.steady_state.window;
        let Some(after) = self.checked_steady(deadline, cancel).await? else {
            return Ok(cancelled());
        };
        self.steady_after = Some(after);
        Ok((RunOutcome::Completed, None))
    }

    /// Fires every scheduled fault on time, then waits out the window.
    async fn fault_window(&mut self, cancel: &CancellationToken) -> Result<Stop, EngineError> {
        self.fault_start = Instant::now();
        self.set_phase("faults");
        for s in super::schedule(&self.plan) {
            if let Stop::Cancelled = self.pump(self.fault_start + s.at, cancel).await? {
                return Ok(Stop::Cancelled);
            }
            self.fire(&s).await?;
        }
        self.pump(self.fault_start + self.plan.duration, cancel)
            .await
    }

    /// [`Run::wait_steady`], journaling the result.
    async fn checked_steady(
        &mut self,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Option<(bool, String)>, EngineError> {
        let Some((ok, detail)) = self.wait_steady(deadline, cancel).await? else {
            return Ok(None);
        };
        let ev = Event::SteadyState {
            ok,
            detail: detail.clone(),
        };
        self.journal.append(ev)?;
        Ok(Some((ok, detail)))
    }

    /// Checks the steady state until it holds or `deadline`; `None` when cancelled.
    async fn wait_steady(
        &mut self,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Option<(bool, String)>, EngineError> {
        loop {
            let (ok, detail) = self.steady().await;
            if ok || Instant::now() >= deadline {
                return Ok(Some((ok, detail)));
            }
            let next = (Instant::now() + self.cfg.service_period).min(deadline);
            if let Stop::Cancelled = self.pump(next, cancel).await? {
                return Ok(None);
            }
        }
    }

    /// Whether the steady-state hypothesis holds now, in words.
    async fn steady(&mut self) -> (bool, String) {
        let s = &self.plan.steady_state;
        let ready = match self.cluster.workers().await {
            Ok(w) => w.iter().filter(|w| w.ready && !w.terminating).count() as u32,
            Err(e) => return (false, format!("cannot list workers: {e}")),
        };
        let level = self.service.service_level();
        // Balls the rack refused during a planned zero are intended
        // unavailability, not a service failure.
        let planned = level.refused > 0 && self.planned_zero_within(s.window);
        let delivery = if planned {
            level.delivery_rate_accepted()
        } else {
            level.delivery_rate
        };
        let rate_ok = delivery.is_some_and(|r| r >= s.min_delivery_rate);
        let mut rate =
            delivery.map_or("no balls yet".to_string(), |r| format!("{:.1}%", r * 100.0));
        if planned {
            rate.push_str(&format!(
                " ({} balls refused during the planned zero left out)",
                level.refused
            ));
        }
        let ok = ready >= s.min_ready_workers && rate_ok;
        let detail = format!(
            "{ready} ready workers (need {}), delivery {rate} (need {:.1}%) over {}",
            s.min_ready_workers,
            s.min_delivery_rate * 100.0,
            humantime::format_duration(Duration::from_millis(level.window_ms))
        );
        (ok, detail)
    }

    /// Handles events until `deadline` or cancellation.
    pub(super) async fn pump(
        &mut self,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Stop, EngineError> {
        loop {
            let cold_due = self.cold_due();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(Stop::Cancelled),
                ev = recv_event(&mut self.events) => {
                    if let Some(ev) = ev {
                        self.on_cluster(ev)?;
                    }
                }
                t = recv_input(&mut self.inputs) => {
                    if let Some(t) = t {
                        self.on_input(t)?;
                    }
                }
                _ = self.service_tick.tick() => self.sample_service()?,
                _ = self.timeout_tick.tick() => self.on_tick()?,
                _ = sleep_until_some(cold_due) => self.scale_up_due().await?,
                _ = sleep_until(deadline) => return Ok(Stop::Deadline),
            }
        }
    }

    pub(super) fn set_phase(&mut self, phase: &'static str) {
        self.progress.phase = phase;
        self.publish_progress();
    }

    pub(super) fn publish_progress(&self) {
        if let Some(tx) = &self.cfg.progress {
            tx.send_replace(self.progress.clone());
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The tracker and the prediction budget of a run on this cluster.
fn tracker_for(
    kind: ClusterKind,
    cfg: &EngineConfig,
    plan: &Plan,
    detection: &crate::model::Detection,
    workers: &[crate::cluster::WorkerInfo],
) -> (Tracker, Budget) {
    let precision = Precision::from_detection(
        detection,
        cfg.service_period.as_millis() as u64,
        cfg.stale_after.as_millis() as u64,
    )
    .with_ball_rate(plan.balls.rate_per_s);
    let budget = Budget {
        ball_ms: precision.ball_ms,
        workers: workers.len() as u32,
    };
    let tracker =
        Tracker::new(precision, plan.steady_state.min_delivery_rate, workers).for_cluster(kind);
    (tracker, budget)
}

/// Opens the run's journal (the run id chosen by the caller, or a new one)
/// and writes `run-started`.
fn open_journal(
    cfg: &EngineConfig,
    plan: &Plan,
    kind: ClusterKind,
    nodes: Vec<String>,
    detection: &crate::model::Detection,
    start: Instant,
) -> Result<Journal, EngineError> {
    let dir = match &cfg.run_id {
        Some(id) => cfg.runs_dir.join(id),
        None => reserve_run_dir(&cfg.runs_dir, &new_run_id(&plan.name))?,
    };
    let journal = Journal::create_in(dir, start)?.with_tap(cfg.journal_tap.clone());
    let first = run_started(&journal, kind, nodes, plan, detection);
    journal.append_at(start, first)?;
    tracing::info!(run_dir = %journal.dir().display(), "run started");
    Ok(journal)
}

/// The first line of the journal.
fn run_started(
    journal: &Journal,
    kind: ClusterKind,
    nodes: Vec<String>,
    plan: &Plan,
    detection: &crate::model::Detection,
) -> Event {
    Event::RunStarted(RunStarted {
        run_id: journal.run_id(),
        started_unix_ms: rackpong_agent::now_ms(),
        controller_version: crate::VERSION.to_string(),
        cluster_kind: kind,
        nodes,
        plan_name: plan.name.clone(),
        seed: plan.seed,
        plan: serde_json::to_value(plan).unwrap_or_default(),
        recovery_timeout_ms: plan.recovery_timeout.as_millis() as u64,
        min_delivery_rate: plan.steady_state.min_delivery_rate,
        detection: detection.clone(),
    })
}

fn cancelled() -> Ending {
    (
        RunOutcome::Aborted,
        Some("cancelled (Ctrl-C, SIGTERM or stop)".into()),
    )
}
