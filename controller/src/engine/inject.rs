//! Firing one scheduled fault: read the cluster, ask the safety rules, then
//! (unless dry run) inject through the `Cluster` and start timing it. A
//! refusal, by the rules or by the cluster, is journaled as `fault-refused`.

use rackpong_agent::proto::ChaosAction;
use rand::Rng;
use tokio::time::Instant;

use super::cold::ColdStart;
use super::run::Run;
use super::{EngineError, Scheduled, ServiceProbe};
use crate::cluster::{Cluster, ClusterError, KillMode, NodeFault};
use crate::journal::event::{Event, FaultInjected, PhaseBudget};
use crate::plan::{FaultAction, FaultSpec, KillModeSpec, NodeAction, SCALE_TO_ZERO_ACTION};
use crate::safety::{self, View};
use crate::timing::{Injected, predict};

/// Why a scheduled fault was not injected: journaled as `fault-refused`
/// with [`Refused::target`] and [`Refused::reason`].
#[derive(Debug)]
enum Refused {
    /// A safety rule said no.
    Rule {
        target: Option<String>,
        refusal: safety::Refusal,
    },
    /// A dry run: decided, journaled, nothing touched.
    DryRun {
        target: Option<String>,
        would: String,
    },
    /// The cluster could not be read before deciding.
    Unreadable(ClusterError),
    /// The cluster refused or failed the change.
    Cluster {
        target: Option<String>,
        error: ClusterError,
    },
    /// Every pod kill of the fault failed.
    KillsFailed {
        target: Option<String>,
        errors: Vec<String>,
    },
    /// A scale fault with no replica count to go to.
    NothingToScale { current: u32, min: u32, max: u32 },
}

impl Refused {
    fn rule(target: Option<String>) -> impl FnOnce(safety::Refusal) -> Refused {
        move |refusal| Refused::Rule { target, refusal }
    }

    fn target(&self) -> Option<String> {
        match self {
            Refused::Rule { target, .. }
            | Refused::DryRun { target, .. }
            | Refused::Cluster { target, .. }
            | Refused::KillsFailed { target, .. } => target.clone(),
            Refused::Unreadable(_) | Refused::NothingToScale { .. } => None,
        }
    }

    fn reason(&self) -> String {
        match self {
            Refused::Rule { refusal, .. } => refusal.reason.clone(),
            Refused::DryRun { would, .. } => format!("dry run: would {would}"),
            Refused::Unreadable(e) => format!("cannot read the cluster: {e}"),
            Refused::Cluster { error, .. } => error.to_string(),
            Refused::KillsFailed { errors, .. } => errors.join("; "),
            Refused::NothingToScale { current, min, max } => {
                format!("the replica count is already {current}, the only value in {min}..={max}")
            }
        }
    }
}

/// What a fault did once injected: its record and the workers it took.
struct Done {
    at: Instant,
    action: String,
    targets: Vec<String>,
    node: Option<String>,
    replicas: Option<(u32, u32)>,
    lost: Vec<String>,
    /// A cold start's hold at zero.
    hold: Option<std::time::Duration>,
}

impl<C: Cluster, S: ServiceProbe> Run<C, S> {
    /// Fires one scheduled fault.
    pub(super) async fn fire(&mut self, s: &Scheduled) -> Result<(), EngineError> {
        let spec = self.plan.faults[s.fault].clone();
        match self.decide_and_inject(&spec).await {
            Ok(done) => self.record(&spec, done),
            Err(refused) => self.refuse(&spec, refused.target(), refused.reason()),
        }
    }

    fn refuse(
        &mut self,
        spec: &FaultSpec,
        target: Option<String>,
        reason: String,
    ) -> Result<(), EngineError> {
        tracing::info!(fault = %spec.name, %reason, "fault refused");
        self.journal.append(Event::FaultRefused {
            fault: spec.name.clone(),
            kind: spec.kind(),
            target,
            reason: reason.clone(),
        })?;
        self.refused.push((spec.name.clone(), reason.clone()));
        self.progress.refused += 1;
        self.progress.last = format!("{} refused: {reason}", spec.name);
        self.publish_progress();
        Ok(())
    }

    fn record(&mut self, spec: &FaultSpec, d: Done) -> Result<(), EngineError> {
        self.next_fault += 1;
        let kind = spec.kind();
        let prediction = predict(kind, &d.action, &self.detection, &self.budget);
        let (predicted_ms, predicted_basis, predicted_phases) = match prediction {
            Some(p) => {
                let phases = p.phases.iter();
                let phases = phases.map(|&(milestone, ms)| PhaseBudget { milestone, ms });
                (Some(p.total_ms), Some(p.basis), phases.collect())
            }
            None => (None, None, Vec::new()),
        };
        let fault = FaultInjected {
            fault_id: format!("f{}", self.next_fault),
            fault: spec.name.clone(),
            kind,
            action: d.action,
            targets: d.targets,
            node: d.node,
            replicas_from: d.replicas.map(|r| r.0),
            replicas_to: d.replicas.map(|r| r.1),
            hold_ms: d.hold.map(|h| h.as_millis() as u64),
            predicted_ms,
            predicted_basis,
            predicted_phases,
        };
        tracing::info!(fault_id = %fault.fault_id, fault = %fault.fault, targets = ?fault.targets, "fault injected");
        self.journal
            .append_at(d.at, Event::FaultInjected(fault.clone()))?;
        self.progress.injected += 1;
        self.progress.last = format!(
            "{} {}: {}",
            fault.fault_id,
            fault.fault,
            fault.targets.join(", ")
        );
        self.publish_progress();
        if let (Some(hold), Some((from, _))) = (d.hold, d.replicas) {
            self.cold.push(ColdStart {
                fault_id: fault.fault_id.clone(),
                back_to: from,
                hold,
                due: None,
                issued: false,
                ended: None,
            });
        }
        self.tracker.injected(Injected {
            at: d.at,
            fault: fault.clone(),
            lost_workers: d.lost,
        });
        self.injected.push(fault);
        Ok(())
    }

    /// Decides and injects, or says why not.
    async fn decide_and_inject(&mut self, spec: &FaultSpec) -> Result<Done, Refused> {
        let read = Refused::Unreadable;
        let nodes = self.cluster.nodes().await.map_err(read)?;
        let workers = self.cluster.workers().await.map_err(read)?;
        let replicas = self.cluster.replicas().await.map_err(read)?;
        let view = View {
            nodes: &nodes,
            workers: &workers,
            replicas,
            pdb: self.cfg.pdb,
        };
        let limits = self.plan.safety.clone();
        let dry = limits.dry_run;
        safety::planned_zero(self.open_cold_start()).map_err(Refused::rule(None))?;
        match &spec.action {
            FaultAction::PodKill { amount, mode } => {
                let targets = safety::pod_kill(view, &limits, *amount, &mut self.rng)
                    .map_err(Refused::rule(None))?;
                if dry {
                    return Err(Refused::DryRun {
                        target: targets.first().cloned(),
                        would: format!("kill {}", targets.join(", ")),
                    });
                }
                let node = workers
                    .iter()
                    .find(|w| Some(&w.name) == targets.first())
                    .and_then(|w| w.node.clone());
                self.kill(&targets, *mode, node).await
            }
            FaultAction::NodeKill {
                action,
                down_for,
                node,
            } => {
                let choice = safety::node_kill(view, &limits, node.as_deref(), &mut self.rng)
                    .map_err(Refused::rule(node.clone()))?;
                if dry {
                    return Err(Refused::DryRun {
                        target: Some(choice.node.clone()),
                        would: format!("{} node {}", action.as_str(), choice.node),
                    });
                }
                self.node_down(choice, *action, *down_for).await
            }
            FaultAction::Scale { min, max } => self.scale(*min, *max, replicas, dry).await,
            FaultAction::ScaleToZero { hold } => {
                let recovering = self.tracker.open_fault_ids();
                safety::scale_to_zero(view, &limits, &recovering).map_err(Refused::rule(None))?;
                self.scale_to_zero(*hold, replicas, dry).await
            }
        }
    }

    async fn node_down(
        &mut self,
        choice: safety::NodeChoice,
        action: NodeAction,
        down_for: std::time::Duration,
    ) -> Result<Done, Refused> {
        let fault = match action {
            NodeAction::StopK3s => NodeFault::Agent(ChaosAction::StopK3s),
            NodeAction::Reboot => NodeFault::Agent(ChaosAction::Reboot),
            NodeAction::NetDrop => NodeFault::Agent(ChaosAction::NetDrop),
            NodeAction::PowerRelay => NodeFault::Agent(ChaosAction::PowerRelay),
            NodeAction::CordonDrain => NodeFault::CordonDrain,
            NodeAction::Partition => NodeFault::Partition,
        };
        if !self.faulted_nodes.contains(&choice.node) {
            self.faulted_nodes.push(choice.node.clone());
        }
        let at = Instant::now();
        self.cluster
            .node_down(&choice.node, fault, down_for)
            .await
            .map_err(|error| Refused::Cluster {
                target: Some(choice.node.clone()),
                error,
            })?;
        Ok(Done {
            at,
            action: action.as_str().to_string(),
            targets: vec![choice.node.clone()],
            node: Some(choice.node),
            replicas: None,
            lost: choice.workers,
            hold: None,
        })
    }

    async fn kill(
        &mut self,
        targets: &[String],
        mode: KillModeSpec,
        node: Option<String>,
    ) -> Result<Done, Refused> {
        let how = match mode {
            KillModeSpec::Graceful => KillMode::Graceful,
            KillModeSpec::Forced => KillMode::Forced,
        };
        let at = Instant::now();
        let mut killed = Vec::new();
        let mut errors = Vec::new();
        for t in targets {
            match self.cluster.kill_worker(t, how).await {
                Ok(()) => killed.push(t.clone()),
                Err(e) => errors.push(format!("{t}: {e}")),
            }
        }
        if killed.is_empty() {
            return Err(Refused::KillsFailed {
                target: targets.first().cloned(),
                errors,
            });
        }
        if !errors.is_empty() {
            tracing::warn!(?errors, "some pod kills failed");
        }
        Ok(Done {
            at,
            action: mode.as_str().to_string(),
            targets: killed.clone(),
            node,
            replicas: None,
            lost: killed,
            hold: None,
        })
    }

    async fn scale(
        &mut self,
        min: u32,
        max: u32,
        current: u32,
        dry: bool,
    ) -> Result<Done, Refused> {
        let choices: Vec<u32> = (min..=max).filter(|n| *n != current).collect();
        let Some(&to) = choices.get(self.rng.random_range(0..choices.len().max(1))) else {
            return Err(Refused::NothingToScale { current, min, max });
        };
        safety::scale(to, &self.plan.safety).map_err(Refused::rule(None))?;
        if dry {
            return Err(Refused::DryRun {
                target: None,
                would: format!("scale {current} -> {to}"),
            });
        }
        let at = Instant::now();
        let from = self
            .cluster
            .scale(to)
            .await
            .map_err(|error| Refused::Cluster {
                target: None,
                error,
            })?;
        self.original_replicas.get_or_insert(from);
        Ok(Done {
            at,
            action: "scale".into(),
            targets: vec![],
            node: None,
            replicas: Some((from, to)),
            lost: vec![],
            hold: None,
        })
    }

    /// A cold start: to zero now, back after the hold (see `cold`).
    async fn scale_to_zero(
        &mut self,
        hold: std::time::Duration,
        current: u32,
        dry: bool,
    ) -> Result<Done, Refused> {
        let hold_text = humantime::format_duration(hold);
        if dry {
            return Err(Refused::DryRun {
                target: None,
                would: format!("scale {current} -> 0, hold {hold_text}, then back to {current}"),
            });
        }
        let at = Instant::now();
        let from = self
            .cluster
            .scale(0)
            .await
            .map_err(|error| Refused::Cluster {
                target: None,
                error,
            })?;
        self.original_replicas.get_or_insert(from);
        tracing::info!(from, hold = %hold_text, "cold start: scaled to zero");
        Ok(Done {
            at,
            action: SCALE_TO_ZERO_ACTION.into(),
            targets: vec![],
            node: None,
            replicas: Some((from, 0)),
            lost: vec![],
            hold: Some(hold),
        })
    }
}
