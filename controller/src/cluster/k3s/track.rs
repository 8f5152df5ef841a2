//! Turns Pod and Node objects, as the watchers deliver them, into
//! [`ClusterEventKind`] transitions. Pure state machines: no I/O, no clock,
//! so the translation is tested object by object. Each transition is emitted
//! once per pod (a MODIFIED that changes nothing we track emits nothing).

use std::collections::{BTreeSet, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::cluster::ClusterEventKind;

/// What we last saw of one worker pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PodState {
    node: Option<String>,
    running: bool,
    ready: bool,
    terminating: bool,
}

impl PodState {
    fn of(pod: &Pod) -> PodState {
        PodState {
            node: pod_node(pod),
            running: pod_running(pod),
            ready: pod_ready(pod),
            terminating: pod.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// The node a pod is bound to: `spec.nodeName` (set by the scheduler's binding).
pub fn pod_node(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone())
}

/// Whether the pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Pod) -> bool {
    condition_true(
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| c.iter().map(|c| (c.type_.as_str(), c.status.as_str()))),
        "Ready",
    )
}

/// Running: phase `Running` with at least one container in state `running`
/// (kubelet reports the phase before the status when a container restarts).
pub fn pod_running(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let phase_running = status.phase.as_deref() == Some("Running");
    let container_running = status
        .container_statuses
        .iter()
        .flatten()
        .any(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
    phase_running && container_running
}

/// Whether the node's `Ready` condition is `True` (`False` and `Unknown`,
/// the node controller's mark for a silent kubelet, both count as not ready).
pub fn node_ready(node: &Node) -> bool {
    condition_true(
        node.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|c| c.iter().map(|c| (c.type_.as_str(), c.status.as_str()))),
        "Ready",
    )
}

fn condition_true<'a>(
    conditions: Option<impl Iterator<Item = (&'a str, &'a str)>>,
    wanted: &str,
) -> bool {
    conditions
        .into_iter()
        .flatten()
        .any(|(t, s)| t == wanted && s == "True")
}

/// Pod transitions, keyed by pod name (one namespace, one label selector).
#[derive(Debug, Default)]
pub struct PodTracker {
    pods: HashMap<String, PodState>,
    /// Names seen during a re-list, to find the pods deleted while the watch was down.
    relisted: Option<HashSet<String>>,
    /// Ready, non-terminating workers, kept in step with `pods`.
    ready: BTreeSet<String>,
    ready_changed: bool,
}

impl PodTracker {
    /// Records a pod without emitting anything (the first list: not news).
    pub fn seed(&mut self, pod: &Pod) {
        if let Some(name) = pod.metadata.name.clone() {
            self.store(name, PodState::of(pod));
        }
    }

    /// A pod was added or modified: the transitions it shows, in lifecycle order.
    pub fn apply(&mut self, pod: &Pod) -> Vec<ClusterEventKind> {
        let Some(name) = pod.metadata.name.clone() else {
            return Vec::new();
        };
        if let Some(seen) = self.relisted.as_mut() {
            seen.insert(name.clone());
        }
        let now = PodState::of(pod);
        let mut out = Vec::new();
        let before = match self.pods.get(&name) {
            Some(before) => before.clone(),
            None => {
                out.push(ClusterEventKind::WorkerCreated {
                    worker: name.clone(),
                });
                PodState::default()
            }
        };
        transitions(&name, &before, &now, &mut out);
        self.store(name, now);
        out
    }

    /// A pod is gone. Emits `WorkerDeleted` once, only for a pod we knew.
    pub fn delete(&mut self, pod: &Pod) -> Vec<ClusterEventKind> {
        let Some(name) = pod.metadata.name.as_deref() else {
            return Vec::new();
        };
        match self.forget(name) {
            Some(state) => vec![ClusterEventKind::WorkerDeleted {
                worker: name.to_string(),
                node: state.node,
            }],
            None => Vec::new(),
        }
    }

    fn store(&mut self, name: String, state: PodState) {
        let takes_balls = state.ready && !state.terminating;
        self.ready_changed |= if takes_balls {
            self.ready.insert(name.clone())
        } else {
            self.ready.remove(&name)
        };
        self.pods.insert(name, state);
    }

    fn forget(&mut self, name: &str) -> Option<PodState> {
        self.ready_changed |= self.ready.remove(name);
        self.pods.remove(name)
    }

    /// Workers ready to take balls (`Ready`, not terminating), sorted, if
    /// that set changed since the last call.
    pub fn take_ready_change(&mut self) -> Option<Vec<String>> {
        std::mem::take(&mut self.ready_changed).then(|| self.ready.iter().cloned().collect())
    }

    /// The watch restarted with a fresh list (e.g. after `410 Gone`).
    pub fn relist_started(&mut self) {
        self.relisted = Some(HashSet::new());
    }

    /// The re-list is complete: pods we knew that it did not contain were
    /// deleted while the watch was down.
    pub fn relist_done(&mut self) -> Vec<ClusterEventKind> {
        let Some(seen) = self.relisted.take() else {
            return Vec::new();
        };
        let mut gone: Vec<String> = self
            .pods
            .keys()
            .filter(|name| !seen.contains(*name))
            .cloned()
            .collect();
        gone.sort();
        gone.into_iter()
            .filter_map(|name| {
                let state = self.forget(&name)?;
                Some(ClusterEventKind::WorkerDeleted {
                    worker: name,
                    node: state.node,
                })
            })
            .collect()
    }
}

fn transitions(name: &str, before: &PodState, now: &PodState, out: &mut Vec<ClusterEventKind>) {
    let worker = || name.to_string();
    if let (None, Some(node)) = (&before.node, &now.node) {
        out.push(ClusterEventKind::WorkerScheduled {
            worker: worker(),
            node: node.clone(),
        });
    }
    if let (false, true, Some(node)) = (before.running, now.running, &now.node) {
        out.push(ClusterEventKind::WorkerRunning {
            worker: worker(),
            node: node.clone(),
        });
    }
    match (before.ready, now.ready, &now.node) {
        (false, true, Some(node)) => out.push(ClusterEventKind::WorkerReady {
            worker: worker(),
            node: node.clone(),
        }),
        (true, false, node) => out.push(ClusterEventKind::WorkerNotReady {
            worker: worker(),
            node: node.clone(),
        }),
        _ => {}
    }
    if !before.terminating && now.terminating {
        out.push(ClusterEventKind::WorkerTerminating {
            worker: worker(),
            node: now.node.clone(),
        });
    }
}

/// Node readiness transitions, keyed by node name.
#[derive(Debug, Default)]
pub struct NodeTracker {
    ready: HashMap<String, bool>,
}

impl NodeTracker {
    /// Records a node without emitting anything (the first list).
    pub fn seed(&mut self, node: &Node) {
        if let Some(name) = node.metadata.name.clone() {
            self.ready.insert(name, node_ready(node));
        }
    }

    /// A node was added or modified: `NodeReady`/`NodeNotReady` when its
    /// readiness changed (or, for a node we had not seen, what it is now).
    pub fn apply(&mut self, node: &Node) -> Option<ClusterEventKind> {
        let name = node.metadata.name.clone()?;
        let now = node_ready(node);
        let before = self.ready.insert(name.clone(), now);
        if before == Some(now) {
            return None;
        }
        Some(if now {
            ClusterEventKind::NodeReady { node: name }
        } else {
            ClusterEventKind::NodeNotReady { node: name }
        })
    }

    /// A node object was deleted: not ready from now on, if it was ready.
    pub fn delete(&mut self, node: &Node) -> Option<ClusterEventKind> {
        let name = node.metadata.name.clone()?;
        match self.ready.remove(&name) {
            Some(true) => Some(ClusterEventKind::NodeNotReady { node: name }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
