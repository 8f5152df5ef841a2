//! The fake rack's state: objects, a resourceVersion counter, per-kind event
//! logs and the pods the kubelet still has to move on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Value, json};

use super::{ApiCall, Logged};
use crate::k3s_support::fixture_json;

/// The kinds that can be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Pods,
    Nodes,
    Experiments,
}

/// What the kubelet does next to a pod.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Schedule,
    Start,
    Ready,
    Remove,
}

const NS: &str = "rackpong";
const RS: &str = "rackpong-worker-7d9c6b5f4d";
/// Names the ReplicaSet gives its new pods, in order.
pub const NEW_NAMES: [&str; 10] = [
    "qm7tz", "b8n4c", "v2l9w", "h6r3p", "z5k8d", "t4g7m", "f9x2s", "c3w6j", "p7d5q", "r2m8v",
];

pub struct Rack {
    pub(super) rv: u64,
    pub replicas: i64,
    pub pods: BTreeMap<String, Value>,
    pub nodes: BTreeMap<String, Value>,
    pub experiments: BTreeMap<String, Value>,
    pub(super) log: Vec<(Kind, u64, &'static str, Value)>,
    pub(super) pending: VecDeque<(String, Step)>,
    pub(super) names: VecDeque<String>,
    /// events.k8s.io Events written.
    pub events: Vec<Value>,
    pub requests: Vec<Logged>,
    pub calls: Vec<ApiCall>,
    /// Every pod that ever existed.
    pub(super) created: BTreeSet<String>,
}

/// A pod name of the worker ReplicaSet.
pub fn pod_name(suffix: &str) -> String {
    format!("{RS}-{suffix}")
}

pub(super) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Rack {
    /// pi1 (k3s server), pi2 and pi3 (opted in), pi4 (not opted in), and a
    /// Ready worker for each `(suffix, node)`.
    pub fn new(workers: &[(&str, &str)]) -> Rack {
        let mut rack = Rack {
            rv: 2000,
            replicas: workers.len() as i64,
            pods: BTreeMap::new(),
            nodes: BTreeMap::new(),
            experiments: BTreeMap::new(),
            log: Vec::new(),
            pending: VecDeque::new(),
            names: NEW_NAMES.iter().map(|s| pod_name(s)).collect(),
            events: Vec::new(),
            requests: Vec::new(),
            calls: Vec::new(),
            created: BTreeSet::new(),
        };
        for (name, file, ip) in [
            ("pi1", "node-pi1-server.json", "192.168.50.11"),
            ("pi2", "node-pi2.json", "192.168.50.12"),
            ("pi3", "node-pi2.json", "192.168.50.13"),
            ("pi4", "node-pi4-no-opt-in.json", "192.168.50.14"),
        ] {
            let mut node = fixture_json(file);
            node["metadata"]["name"] = name.into();
            node["metadata"]["labels"]["kubernetes.io/hostname"] = name.into();
            node["status"]["addresses"] = json!([{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]);
            node["metadata"]["resourceVersion"] = rack.bump().into();
            rack.nodes.insert(name.into(), node);
        }
        for (suffix, node) in workers {
            let mut pod = fixture_json("pod-worker.json");
            let name = pod_name(suffix);
            pod["metadata"]["name"] = name.clone().into();
            pod["metadata"]["uid"] = format!("5f1b7c2e-8a43-4d1e-9c55-{suffix:0>12}").into();
            pod["spec"]["nodeName"] = (*node).into();
            pod["metadata"]["resourceVersion"] = rack.bump().into();
            rack.created.insert(name.clone());
            rack.pods.insert(name, pod);
        }
        rack
    }

    pub(super) fn bump(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Stores `obj` with a new resourceVersion and logs the watch event.
    pub(super) fn put(&mut self, kind: Kind, ty: &'static str, mut obj: Value) {
        obj["metadata"]["resourceVersion"] = self.bump().into();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.log.push((kind, self.rv, ty, obj.clone()));
        if kind == Kind::Pods {
            self.created.insert(name.clone());
        }
        let map = match kind {
            Kind::Pods => &mut self.pods,
            Kind::Nodes => &mut self.nodes,
            Kind::Experiments => &mut self.experiments,
        };
        if ty == "DELETED" {
            map.remove(&name);
        } else {
            map.insert(name, obj);
        }
    }

    /// The watch events of `kind` after `rv`, as a JSON-lines body.
    pub fn events_after(&self, kind: Kind, rv: u64) -> String {
        self.log
            .iter()
            .filter(|(k, at, ..)| *k == kind && *at > rv)
            .map(|(_, _, ty, obj)| format!("{}\n", json!({"type": ty, "object": obj})))
            .collect()
    }

    /// The current resourceVersion: it moves on every change.
    pub fn version(&self) -> u64 {
        self.rv
    }

    /// Whether pod `name` ever existed.
    pub fn ever_created(&self, name: &str) -> bool {
        self.created.contains(name)
    }

    /// The pods that exist.
    pub fn live(&self) -> BTreeSet<String> {
        self.pods.keys().cloned().collect()
    }

    /// Adds a ChaosExperiment (as `kubectl apply` would).
    pub fn add_experiment(&mut self, exp: Value) {
        self.put(Kind::Experiments, "ADDED", exp);
    }

    /// `kubectl delete`: with a finalizer it only gets a deletionTimestamp.
    pub fn delete_experiment(&mut self, name: &str) {
        let Some(mut exp) = self.experiments.get(name).cloned() else {
            return;
        };
        exp["metadata"]["deletionTimestamp"] = now().into();
        self.put(Kind::Experiments, "MODIFIED", exp);
    }
}
