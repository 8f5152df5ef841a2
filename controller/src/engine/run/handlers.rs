//! The pump's handlers: each cluster event, input, service sample and
//! timeout tick goes to the journal and the tracker, and the tracker's
//! conclusions go to the journal.

use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::Run;
use crate::cluster::{Cluster, ClusterEvent, ClusterEventKind};
use crate::engine::{EngineError, Input, ServiceProbe, Timed};
use crate::journal::event::Event;
use crate::timing::{Observation, Output};

impl<C: Cluster, S: ServiceProbe> Run<C, S> {
    pub(super) fn on_cluster(&mut self, ev: ClusterEvent) -> Result<(), EngineError> {
        let (what, name, node) = describe_cluster(&ev.kind);
        self.journal.append_at(
            ev.at,
            Event::Cluster {
                what: what.into(),
                name,
                node,
            },
        )?;
        let out = self.tracker.observe(ev.at, &Observation::Cluster(ev.kind));
        self.emit(out)
    }

    pub(super) fn on_input(&mut self, t: Timed) -> Result<(), EngineError> {
        match t.input {
            Input::Health(sample) => {
                if !self
                    .health_seen
                    .admit(&sample.node, sample.seq, sample.ts_ms)
                {
                    tracing::debug!(node = %sample.node, seq = sample.seq, duplicates = self.health_seen.duplicates(), "duplicate health sample ignored");
                    return Ok(());
                }
                self.health
                    .seen(&sample.node, t.at, sample.seq, sample.ts_ms);
                self.journal
                    .append_at(t.at, Event::Health { sample: *sample })?;
                Ok(())
            }
            Input::Observation(obs) => {
                if let Some((what, name)) = describe_observation(&obs) {
                    self.journal.append_at(
                        t.at,
                        Event::Cluster {
                            what: what.into(),
                            name,
                            node: None,
                        },
                    )?;
                }
                let out = self.tracker.observe(t.at, &obs);
                self.emit(out)
            }
        }
    }

    pub(super) fn sample_service(&mut self) -> Result<(), EngineError> {
        let at = Instant::now();
        let level = self.service.service_level();
        let rate = level.delivery_rate;
        self.journal.append_at(at, Event::Service(level))?;
        let out = self.tracker.observe(
            at,
            &Observation::Service {
                delivery_rate: rate,
            },
        );
        self.emit(out)?;
        self.progress.open = self.tracker.open();
        self.progress.elapsed = at.saturating_duration_since(self.fault_start);
        self.publish_progress();
        Ok(())
    }

    pub(super) fn on_tick(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        let out = self.tracker.tick(now, self.plan.recovery_timeout);
        self.emit(out)?;
        for s in self.health.stale(now) {
            let obs = Observation::HealthStale {
                node: s.node,
                interval_ms: s.interval_ms,
            };
            self.on_input(Timed {
                at: s.at,
                input: Input::Observation(obs),
            })?;
        }
        Ok(())
    }

    /// Journals the tracker's conclusions.
    pub(in crate::engine) fn emit(&mut self, out: Vec<Output>) -> Result<(), EngineError> {
        self.cold_outputs(&out);
        for o in out {
            if let Output::Ended {
                fault_id, outcome, ..
            } = &o
            {
                self.progress.last = format!("{fault_id} {outcome:?}");
            }
            let (at, ev) = self.to_event(o);
            self.journal.append_at(at, ev)?;
        }
        Ok(())
    }

    /// A tracker conclusion as a journal line and the instant it is stamped with.
    fn to_event(&self, o: Output) -> (Instant, Event) {
        let ms = |i: Instant| self.journal.t_ms(i);
        match o {
            Output::Milestone { at, event } => (at, Event::Milestone(event)),
            Output::Zombie {
                fault_id,
                worker,
                node,
                from,
                to,
            } => {
                let ev = Event::Zombie {
                    fault_id,
                    worker,
                    node,
                    from_ms: ms(from),
                    to_ms: ms(to),
                };
                (to, ev)
            }
            Output::Overlap {
                fault_id,
                old_worker,
                new_worker,
                from,
                to,
            } => {
                let (from_ms, to_ms) = (ms(from), ms(to));
                (
                    to,
                    Event::Overlap {
                        fault_id,
                        old_worker,
                        new_worker,
                        from_ms,
                        to_ms,
                    },
                )
            }
            Output::Ended {
                at,
                fault_id,
                outcome,
            } => (at, Event::FaultEnded { fault_id, outcome }),
        }
    }
}

pub(super) async fn recv_event(
    rx: &mut Option<broadcast::Receiver<ClusterEvent>>,
) -> Option<ClusterEvent> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    match r.recv().await {
        Ok(ev) => Some(ev),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            tracing::warn!(
                missed = n,
                "cluster events lagged: timings may miss signals"
            );
            None
        }
        Err(broadcast::error::RecvError::Closed) => {
            tracing::warn!("cluster event stream closed");
            *rx = None;
            None
        }
    }
}

pub(super) async fn recv_input(rx: &mut Option<mpsc::Receiver<Timed>>) -> Option<Timed> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    let t = r.recv().await;
    if t.is_none() {
        *rx = None;
    }
    t
}

/// The journal's `cluster` line for a cluster event: what, name, node.
fn describe_cluster(k: &ClusterEventKind) -> (&'static str, String, Option<String>) {
    use ClusterEventKind::*;
    match k {
        WorkerCreated { worker } => ("worker-created", worker.clone(), None),
        WorkerScheduled { worker, node } => {
            ("worker-scheduled", worker.clone(), Some(node.clone()))
        }
        WorkerRunning { worker, node } => ("worker-running", worker.clone(), Some(node.clone())),
        WorkerReady { worker, node } => ("worker-ready", worker.clone(), Some(node.clone())),
        WorkerNotReady { worker, node } => ("worker-not-ready", worker.clone(), node.clone()),
        WorkerTerminating { worker, node } => ("worker-terminating", worker.clone(), node.clone()),
        WorkerDeleted { worker, node } => ("worker-deleted", worker.clone(), node.clone()),
        NodeReady { node } => ("node-ready", node.clone(), Some(node.clone())),
        NodeNotReady { node } => ("node-not-ready", node.clone(), Some(node.clone())),
        ReplicasChanged { replicas } => ("replicas-changed", replicas.to_string(), None),
    }
}

/// The journal's `cluster` line for an MQTT observation (balls and service
/// samples are journaled elsewhere).
fn describe_observation(o: &Observation) -> Option<(&'static str, String)> {
    match o {
        Observation::NodeStatus { node, online } => Some((
            if *online {
                "node-online"
            } else {
                "node-offline"
            },
            node.clone(),
        )),
        Observation::WorkerStatus { worker, online } => Some((
            if *online {
                "worker-online"
            } else {
                "worker-offline"
            },
            worker.clone(),
        )),
        Observation::HealthStale { node, .. } => Some(("node-health-stale", node.clone())),
        _ => None,
    }
}
