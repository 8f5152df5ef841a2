//! Reads through the API (nodes, workers, replica count), the mapping of API
//! errors to [`ClusterError`], and the Kubernetes Events written for faults.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::{Api, Resource, ResourceExt};

use super::track::{node_ready, pod_node, pod_ready};
use super::{CHAOS_LABEL, CORDONED_BY_ANNOTATION, Inner, PROTECTED_LABEL, REPORTING_CONTROLLER};
use crate::cluster::{ClusterError, NodeInfo, WorkerInfo};

/// Maps an API error: 404 to the caller's "no such", 429 (an eviction a
/// PodDisruptionBudget refuses) to [`ClusterError::Refused`], the rest to `Kube`.
pub(crate) fn map_err(
    err: kube::Error,
    action: &str,
    not_found: impl FnOnce() -> ClusterError,
) -> ClusterError {
    match &err {
        kube::Error::Api(status) if status.code == 404 => not_found(),
        kube::Error::Api(status) if status.code == 429 => ClusterError::Refused {
            action: action.to_string(),
            reason: status.message.clone(),
        },
        _ => ClusterError::Kube {
            action: action.to_string(),
            source: err,
        },
    }
}

pub(crate) fn kube_err(action: &str) -> impl FnOnce(kube::Error) -> ClusterError + '_ {
    move |source| ClusterError::Kube {
        action: action.to_string(),
        source,
    }
}

pub(crate) fn pods(inner: &Inner) -> Api<Pod> {
    Api::namespaced(inner.client.clone(), &inner.config.namespace)
}

pub(crate) fn deployments(inner: &Inner) -> Api<Deployment> {
    Api::namespaced(inner.client.clone(), &inner.config.namespace)
}

pub(crate) fn node_api(inner: &Inner) -> Api<Node> {
    Api::all(inner.client.clone())
}

pub(crate) fn opted_in<K: Resource>(obj: &K) -> bool {
    obj.meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(CHAOS_LABEL))
        .is_some_and(|v| v == "true")
}

/// Why `node` must never be faulted, if it must not.
pub(crate) fn protected_reason(inner: &Inner, node: &Node) -> Option<String> {
    let name = node.name_any();
    let labels = node.labels();
    for role in [
        "node-role.kubernetes.io/control-plane",
        "node-role.kubernetes.io/master",
    ] {
        if labels.contains_key(role) {
            return Some(format!("k3s server ({role})"));
        }
    }
    if labels.get(PROTECTED_LABEL).is_some_and(|v| v == "true") {
        return Some(format!("labelled {PROTECTED_LABEL}=true"));
    }
    if inner.config.own_node.as_deref() == Some(name.as_str()) {
        return Some("runs this controller".into());
    }
    if inner.config.protected_nodes.contains(&name) {
        return Some("configured as protected (runs the MQTT broker)".into());
    }
    None
}

pub(crate) fn node_info(inner: &Inner, node: &Node) -> NodeInfo {
    NodeInfo {
        name: node.name_any(),
        ready: node_ready(node),
        chaos_opt_in: opted_in(node),
        protected: protected_reason(inner, node),
        cordoned: node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
    }
}

pub(crate) fn cordoned_by_us(node: &Node) -> bool {
    node.annotations().contains_key(CORDONED_BY_ANNOTATION)
}

pub(crate) async fn nodes(inner: &Inner) -> Result<Vec<NodeInfo>, ClusterError> {
    let list = node_api(inner)
        .list(&ListParams::default())
        .await
        .map_err(kube_err("list nodes"))?;
    Ok(list.items.iter().map(|n| node_info(inner, n)).collect())
}

pub(crate) async fn workers(inner: &Inner) -> Result<Vec<WorkerInfo>, ClusterError> {
    let lp = ListParams::default().labels(&inner.config.worker_selector);
    let list = pods(inner)
        .list(&lp)
        .await
        .map_err(kube_err("list workers"))?;
    Ok(list
        .items
        .iter()
        .map(|p| WorkerInfo {
            name: p.name_any(),
            node: pod_node(p),
            ready: pod_ready(p),
            terminating: p.metadata.deletion_timestamp.is_some(),
            chaos_opt_in: opted_in(p),
        })
        .collect())
}

pub(crate) async fn replicas(inner: &Inner) -> Result<u32, ClusterError> {
    let scale = deployments(inner)
        .get_scale(&inner.config.deployment)
        .await
        .map_err(kube_err("read scale"))?;
    Ok(scale
        .spec
        .and_then(|s| s.replicas)
        .map_or(0, |r| u32::try_from(r).unwrap_or(0)))
}

/// One Event to record: what was done to which object, and why.
pub(crate) struct Record<'a> {
    pub regarding: ObjectReference,
    pub warning: bool,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: String,
}

/// Writes an `events.k8s.io/v1` Event in the configured namespace (also for
/// Nodes: the controller's Role stays inside its namespace; `kubectl describe
/// node` searches every namespace). A failed write is logged, never fatal: the
/// fault has happened and the journal holds it.
pub(crate) async fn record(inner: &Inner, rec: Record<'_>) {
    let event = K8sEvent {
        metadata: ObjectMeta {
            generate_name: Some("rackpong-chaos-".into()),
            namespace: Some(inner.config.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        type_: Some(if rec.warning { "Warning" } else { "Normal" }.into()),
        reason: Some(rec.reason.into()),
        action: Some(rec.action.into()),
        note: Some(rec.note),
        regarding: Some(rec.regarding),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(inner.config.instance.clone()),
        ..K8sEvent::default()
    };
    let api: Api<K8sEvent> = Api::namespaced(inner.client.clone(), &inner.config.namespace);
    if let Err(err) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(%err, reason = rec.reason, "could not write the Kubernetes Event");
    }
}

pub(crate) fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// Like kubelet's own node events: `uid` is the node name, which is what
/// `kubectl describe node` searches for.
pub(crate) fn node_ref(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: Some(name.into()),
        uid: Some(name.into()),
        ..ObjectReference::default()
    }
}

pub(crate) fn deployment_ref(inner: &Inner) -> ObjectReference {
    ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some(inner.config.deployment.clone()),
        namespace: Some(inner.config.namespace.clone()),
        ..ObjectReference::default()
    }
}

/// The PodDisruptionBudget guarding the workers: the one whose selector's
/// `matchLabels` are all part of the worker selector.
pub(crate) async fn worker_pdb(inner: &Inner) -> Result<Option<PodDisruptionBudget>, ClusterError> {
    let wanted: BTreeMap<&str, &str> = inner
        .config
        .worker_selector
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let api: Api<PodDisruptionBudget> =
        Api::namespaced(inner.client.clone(), &inner.config.namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(kube_err("list PodDisruptionBudgets"))?;
    Ok(list.items.into_iter().find(|pdb| {
        let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            return false;
        };
        let labels = selector.match_labels.as_ref();
        selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
            && labels.is_some_and(|l| {
                !l.is_empty()
                    && l.iter()
                        .all(|(k, v)| wanted.get(k.as_str()) == Some(&v.as_str()))
            })
    }))
}
