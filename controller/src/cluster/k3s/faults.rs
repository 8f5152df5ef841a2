//! Fault injection through the API: pod deletion, scaling through the
//! Deployment's scale subresource, cordon + drain with the Eviction API
//! (PodDisruptionBudgets answer 429: refused), agent commands through the
//! [`NodeCommander`](super::NodeCommander) seam, and their rollback.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use rackpong_agent::proto::ChaosAction;
use serde_json::json;
use tokio::time::Instant;

use super::api::{self, Record, map_err};
use super::{CHAOS_LABEL, CORDONED_BY_ANNOTATION, Inner};
use crate::cluster::{ClusterError, ClusterEvent, ClusterEventKind, KillMode, NodeFault};

fn not_opted_in(action: String, what: &str) -> ClusterError {
    ClusterError::Refused {
        action,
        reason: format!("{what} does not carry the opt-in label {CHAOS_LABEL}=true"),
    }
}

/// Deletes an opted-in worker pod: default grace period, or 0 when forced.
pub(crate) async fn kill_worker(
    inner: &Inner,
    worker: &str,
    mode: KillMode,
) -> Result<(), ClusterError> {
    let action = format!("kill worker {worker}");
    let no_such = || ClusterError::NoSuchWorker(worker.to_string());
    let pods = api::pods(inner);
    let pod = pods
        .get(worker)
        .await
        .map_err(|e| map_err(e, &action, no_such))?;
    if !api::opted_in(&pod) {
        return Err(not_opted_in(action, &format!("pod {worker}")));
    }
    let dp = DeleteParams {
        grace_period_seconds: (mode == KillMode::Forced).then_some(0),
        ..DeleteParams::default()
    };
    pods.delete(worker, &dp)
        .await
        .map_err(|e| map_err(e, &action, no_such))?;
    let (verb, how) = match mode {
        KillMode::Graceful => ("Delete", "with its grace period"),
        KillMode::Forced => ("ForceDelete", "with grace period 0"),
    };
    api::record(
        inner,
        Record {
            regarding: api::pod_ref(&pod),
            warning: true,
            reason: "ChaosPodKill",
            action: verb,
            note: format!("rackpong deleted worker {worker} {how}"),
        },
    )
    .await;
    Ok(())
}

/// Sets the worker Deployment's replicas through its scale subresource.
pub(crate) async fn scale(inner: &Inner, replicas: u32) -> Result<u32, ClusterError> {
    let previous = api::replicas(inner).await?;
    let action = format!("scale to {replicas}");
    let patch = json!({ "spec": { "replicas": replicas } });
    api::deployments(inner)
        .patch_scale(
            &inner.config.deployment,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| {
            map_err(e, &action, || {
                ClusterError::Missing("the worker Deployment".into())
            })
        })?;
    // The API's answer is the observation: the desired count has changed.
    let _ = inner.events.send(ClusterEvent {
        at: Instant::now(),
        kind: ClusterEventKind::ReplicasChanged { replicas },
    });
    api::record(
        inner,
        Record {
            regarding: api::deployment_ref(inner),
            warning: true,
            reason: "ChaosScale",
            action: "Scale",
            note: format!("rackpong scaled the workers from {previous} to {replicas}"),
        },
    )
    .await;
    Ok(previous)
}

/// Why this backend cannot inject `fault` at all, refused before any request.
fn unsupported(fault: NodeFault) -> Option<String> {
    let reason = match fault {
        // The agent cannot cut its own power, and rackpong drives no relay board yet.
        NodeFault::Agent(ChaosAction::PowerRelay) => {
            "power-relay needs a relay wired to the controller; this k3s rack has none \
             (use stop-k3s, reboot or net-drop)"
        }
        NodeFault::Partition => {
            "a partition needs a network rackpong controls (the local rack with \
             --isolation netns); on k3s, net-drop takes a Pi's uplink down"
        }
        _ => return None,
    };
    Some(reason.to_string())
}

/// Takes an opted-in, unprotected node down.
pub(crate) async fn node_down(
    inner: &Arc<Inner>,
    node: &str,
    fault: NodeFault,
    down_for: Duration,
) -> Result<(), ClusterError> {
    let action = match fault {
        NodeFault::Agent(a) => format!("{} node {node}", a.as_str()),
        NodeFault::CordonDrain => format!("cordon-drain node {node}"),
        NodeFault::Partition => format!("partition node {node}"),
    };
    if let Some(reason) = unsupported(fault) {
        return Err(ClusterError::Refused { action, reason });
    }
    let obj = target_node(inner, node, &action).await?;
    let (verb, note) = match fault {
        NodeFault::Agent(a) => {
            send(inner, node, a, down_for, &action).await?;
            let note = format!(
                "rackpong sent {} to the node agent for {down_for:?}",
                a.as_str()
            );
            (a.as_str(), note)
        }
        NodeFault::CordonDrain => {
            if obj.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
                let reason = "node is already cordoned".to_string();
                return Err(ClusterError::Refused { action, reason });
            }
            let evicted = cordon_drain(inner, node, &action).await?;
            spawn_uncordon(inner.clone(), node.to_string(), down_for);
            let note = format!(
                "rackpong cordoned the node and evicted {evicted} worker(s) for {down_for:?}"
            );
            ("CordonDrain", note)
        }
        // Refused above; kept here so that every fault kind is decided.
        NodeFault::Partition => {
            let reason = unsupported(fault).unwrap_or_default();
            return Err(ClusterError::Refused { action, reason });
        }
    };
    lock(inner).insert(node.to_string(), fault);
    let regarding = api::node_ref(node);
    let rec = Record {
        regarding,
        warning: true,
        reason: "ChaosNodeDown",
        action: verb,
        note,
    };
    api::record(inner, rec).await;
    Ok(())
}

/// The node, if it exists, opted in and is not protected.
async fn target_node(inner: &Inner, node: &str, action: &str) -> Result<Node, ClusterError> {
    let obj = api::node_api(inner)
        .get(node)
        .await
        .map_err(|e| map_err(e, action, || ClusterError::NoSuchNode(node.to_string())))?;
    if let Some(reason) = api::protected_reason(inner, &obj) {
        return Err(ClusterError::Refused {
            action: action.to_string(),
            reason: format!("protected node: {reason}"),
        });
    }
    if !api::opted_in(&obj) {
        return Err(not_opted_in(action.to_string(), &format!("node {node}")));
    }
    Ok(obj)
}

fn lock(inner: &Inner) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, NodeFault>> {
    inner.active.lock().unwrap_or_else(|e| e.into_inner())
}

async fn send(
    inner: &Inner,
    node: &str,
    a: ChaosAction,
    down_for: Duration,
    action: &str,
) -> Result<(), ClusterError> {
    let commander = inner.commander().ok_or(ClusterError::NoChaosSecret)?;
    let ack = commander
        .send(node, a, down_for)
        .await
        .map_err(ClusterError::Command)?;
    if ack.accepted {
        Ok(())
    } else {
        Err(ClusterError::Refused {
            action: action.to_string(),
            reason: format!("agent rejected the command: {}", ack.reason),
        })
    }
}

/// Cordons `node` (marked as ours) and evicts the workers on it. A
/// PodDisruptionBudget refusal stops the drain, uncordons and refuses.
async fn cordon_drain(inner: &Inner, node: &str, action: &str) -> Result<usize, ClusterError> {
    set_cordon(inner, node, true).await?;
    let lp = ListParams::default()
        .labels(&inner.config.worker_selector)
        .fields(&format!("spec.nodeName={node}"));
    let pods = api::pods(inner);
    let list = match pods.list(&lp).await {
        Ok(list) => list,
        Err(e) => {
            uncordon_best_effort(inner, node).await;
            return Err(map_err(e, action, || ClusterError::NoSuchNode(node.into())));
        }
    };
    let targets: Vec<&Pod> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    for (done, pod) in targets.iter().enumerate() {
        let name = pod.name_any();
        match pods.evict(&name, &EvictParams::default()).await {
            Ok(_) => {}
            // Evicted already or gone: nothing left to do for it.
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                uncordon_best_effort(inner, node).await;
                let err = map_err(e, action, || ClusterError::NoSuchWorker(name.clone()));
                return Err(match err {
                    ClusterError::Refused { action, reason } => ClusterError::Refused {
                        action,
                        reason: format!(
                            "eviction of {name} refused after {done} of {} (PodDisruptionBudget): {reason}",
                            targets.len()
                        ),
                    },
                    other => other,
                });
            }
        }
    }
    Ok(targets.len())
}

async fn uncordon_best_effort(inner: &Inner, node: &str) {
    if let Err(err) = set_cordon(inner, node, false).await {
        tracing::error!(%err, node, "could not uncordon after a failed drain");
    }
}

/// Cordons with our mark, or uncordons and removes the mark.
async fn set_cordon(inner: &Inner, node: &str, on: bool) -> Result<(), ClusterError> {
    let mark = on.then_some("rackpong");
    let patch = json!({
        "metadata": { "annotations": { CORDONED_BY_ANNOTATION: mark } },
        "spec": { "unschedulable": on },
    });
    let action = if on { "cordon" } else { "uncordon" };
    api::node_api(inner)
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| map_err(e, action, || ClusterError::NoSuchNode(node.to_string())))
}

/// The reversible API fault comes back by itself after `down_for`, unless the
/// backend is dropped first (rollback then goes through `node_up`).
fn spawn_uncordon(inner: Arc<Inner>, node: String, down_for: Duration) {
    let cancel = inner.timers.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(down_for) => {
                if let Err(err) = node_up(&inner, &node).await {
                    tracing::error!(%err, node, "restoring the drained node failed");
                }
            }
        }
    });
}

/// Rollback: uncordons a node rackpong cordoned and tells its agent to
/// restore (when an agent fault is in progress, or unknown after a crash).
pub(crate) async fn node_up(inner: &Inner, node: &str) -> Result<(), ClusterError> {
    let action = format!("restore node {node}");
    let obj = api::node_api(inner)
        .get(node)
        .await
        .map_err(|e| map_err(e, &action, || ClusterError::NoSuchNode(node.to_string())))?;
    let active = lock(inner).remove(node);
    let mut done = Vec::new();
    if api::cordoned_by_us(&obj) {
        set_cordon(inner, node, false).await?;
        done.push("uncordoned".to_string());
    }
    match (active, inner.commander().is_some()) {
        (Some(NodeFault::Agent(_)), _) => {
            send(inner, node, ChaosAction::Restore, Duration::ZERO, &action).await?;
            done.push("told its agent to restore".into());
        }
        // After a crash nothing is known: ask the agent, but its absence is no error.
        (None, true) => {
            match send(inner, node, ChaosAction::Restore, Duration::ZERO, &action).await {
                Ok(()) => done.push("told its agent to restore".into()),
                Err(err) => tracing::info!(%err, node, "agent restore not acknowledged"),
            }
        }
        _ => {}
    }
    if done.is_empty() {
        return Ok(());
    }
    let rec = Record {
        regarding: api::node_ref(node),
        warning: false,
        reason: "ChaosNodeRestored",
        action: "Restore",
        note: format!("rackpong {}", done.join(" and ")),
    };
    api::record(inner, rec).await;
    Ok(())
}
