//! The fake rack's state: objects, a resourceVersion counter, per-kind event
//! logs, the ReplicaSet that keeps the worker count and the kubelet steps.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use http::Method;
use serde_json::{Value, json};

use super::{Answer, ApiCall, Logged, api_call, query_param};
use crate::k3s_support::{fixture, fixture_json};

/// The kinds that can be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Pods,
    Nodes,
    Experiments,
}

/// What the kubelet does next to a pod.
#[derive(Debug, Clone, Copy)]
enum Step {
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
    rv: u64,
    pub replicas: i64,
    pub pods: BTreeMap<String, Value>,
    pub nodes: BTreeMap<String, Value>,
    pub experiments: BTreeMap<String, Value>,
    log: Vec<(Kind, u64, &'static str, Value)>,
    pending: VecDeque<(String, Step)>,
    names: VecDeque<String>,
    /// events.k8s.io Events written.
    pub events: Vec<Value>,
    pub requests: Vec<Logged>,
    pub calls: Vec<ApiCall>,
    /// Every pod that ever existed.
    created: BTreeSet<String>,
}

/// A pod name of the worker ReplicaSet.
pub fn pod_name(suffix: &str) -> String {
    format!("{RS}-{suffix}")
}

fn now() -> String {
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

    fn bump(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Stores `obj` with a new resourceVersion and logs the watch event.
    fn put(&mut self, kind: Kind, ty: &'static str, mut obj: Value) {
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

    /// The kubelet (and scheduler) move one pod one step on.
    pub fn kubelet_step(&mut self) {
        let Some((name, step)) = self.pending.pop_front() else {
            return;
        };
        let Some(mut pod) = self.pods.get(&name).cloned() else {
            return;
        };
        let t = now();
        let cond = |ty: &str, s: &str| json!({"type": ty, "status": s, "lastProbeTime": null, "lastTransitionTime": t});
        let next = match step {
            Step::Schedule => {
                pod["spec"]["nodeName"] = self.least_loaded_node().into();
                pod["status"]["conditions"] = json!([cond("PodScheduled", "True")]);
                Some(Step::Start)
            }
            Step::Start => {
                let node = pod["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or("pi4")
                    .to_string();
                let host = self.nodes[&node]["status"]["addresses"][0]["address"].clone();
                let mut template = fixture_json("pod-worker.json")["status"].clone();
                template["hostIP"] = host.clone();
                template["hostIPs"] = json!([{"ip": host}]);
                template["startTime"] = t.clone().into();
                template["containerStatuses"][0]["ready"] = false.into();
                template["containerStatuses"][0]["state"] = json!({"running": {"startedAt": t}});
                template["conditions"] = json!([
                    cond("PodReadyToStartContainers", "True"),
                    cond("Initialized", "True"),
                    cond("Ready", "False"),
                    cond("ContainersReady", "False"),
                    cond("PodScheduled", "True"),
                ]);
                pod["status"] = template;
                Some(Step::Ready)
            }
            Step::Ready => {
                pod["status"]["containerStatuses"][0]["ready"] = true.into();
                for c in pod["status"]["conditions"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                        *c = cond(c["type"].as_str().unwrap_or_default(), "True");
                    }
                }
                None
            }
            Step::Remove => {
                self.put(Kind::Pods, "DELETED", pod);
                return;
            }
        };
        self.put(Kind::Pods, "MODIFIED", pod);
        if let Some(s) = next {
            self.pending.push_back((name, s));
        }
    }

    fn least_loaded_node(&self) -> String {
        let schedulable = self.nodes.values().filter(|n| {
            n["spec"]["unschedulable"] != true
                && n["metadata"]["labels"]
                    .get("node-role.kubernetes.io/control-plane")
                    .is_none()
        });
        schedulable
            .map(|n| {
                n["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .min_by_key(|node| {
                self.pods
                    .values()
                    .filter(|p| p["spec"]["nodeName"] == node.as_str())
                    .count()
            })
            .unwrap_or_else(|| "pi4".into())
    }

    /// The ReplicaSet: new Pending pods up to the count, the newest
    /// terminated past it.
    fn reconcile_replicas(&mut self) {
        let active: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, p)| p["metadata"].get("deletionTimestamp").is_none())
            .map(|(n, _)| n.clone())
            .collect();
        let mut count = active.len() as i64;
        while count < self.replicas {
            let name = self
                .names
                .pop_front()
                .expect("the fake ran out of pod names");
            let mut pod = fixture_json("pod-worker.json");
            pod["metadata"]["name"] = name.clone().into();
            pod["metadata"]["uid"] = format!("9d8c7b6a-5f4e-4d3c-8b2a-{:0>12}", self.rv).into();
            pod["metadata"]["creationTimestamp"] = now().into();
            pod["spec"].as_object_mut().map(|s| s.remove("nodeName"));
            pod["status"] = json!({"phase": "Pending", "qosClass": "Burstable", "conditions": []});
            self.put(Kind::Pods, "ADDED", pod);
            self.pending.push_back((name, Step::Schedule));
            count += 1;
        }
        let mut newest: Vec<&String> = active.iter().collect();
        newest.sort_by_key(|n| {
            std::cmp::Reverse(
                self.pods[*n]["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse::<u64>().ok()),
            )
        });
        let surplus: Vec<String> = newest
            .into_iter()
            .take((count - self.replicas).max(0) as usize)
            .cloned()
            .collect();
        for name in surplus {
            self.terminate(&name, 30);
        }
    }

    /// Graceful: marked terminating, removed on a later kubelet step.
    fn terminate(&mut self, name: &str, grace: i64) {
        let Some(mut pod) = self.pods.get(name).cloned() else {
            return;
        };
        if grace == 0 {
            self.put(Kind::Pods, "DELETED", pod);
        } else {
            pod["metadata"]["deletionTimestamp"] = now().into();
            pod["metadata"]["deletionGracePeriodSeconds"] = grace.into();
            self.put(Kind::Pods, "MODIFIED", pod);
            self.pending.push_back((name.to_string(), Step::Remove));
        }
    }

    /// Workers Ready and not terminating.
    pub fn healthy(&self) -> i64 {
        self.pods
            .values()
            .filter(|p| {
                p["metadata"].get("deletionTimestamp").is_none()
                    && p["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            })
            .count() as i64
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

    pub fn handle(&mut self, method: &Method, uri: &str, body: Value) -> Answer {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let call = api_call(method, path, query);
        self.requests.push(Logged {
            method: method.clone(),
            uri: uri.to_string(),
            body: body.clone(),
        });
        self.calls.push(call.clone());
        let name = call.name.clone().unwrap_or_default();
        let res = (
            call.verb.as_str(),
            call.group.as_str(),
            call.resource.as_str(),
        );
        let answer = match res {
            ("list" | "watch", "", "pods") => self.collection(Kind::Pods, &call.verb, query),
            ("list" | "watch", "", "nodes") => self.collection(Kind::Nodes, &call.verb, query),
            ("list" | "watch", "rackpong.dev", "chaosexperiments") => {
                self.collection(Kind::Experiments, &call.verb, query)
            }
            ("get", "", "pods") => self.get(Kind::Pods, &name),
            ("get", "", "nodes") => self.get(Kind::Nodes, &name),
            ("get", "", "namespaces") => ok(fixture("namespace.json")),
            ("get", "apps", "deployments") => {
                let mut d = fixture_json("deployment-worker.json");
                d["spec"]["replicas"] = self.replicas.into();
                ok(d.to_string())
            }
            ("get" | "patch", "apps", "deployments/scale") => {
                if let Some(r) = body["spec"]["replicas"].as_i64() {
                    self.replicas = r;
                    self.reconcile_replicas();
                }
                let mut s = fixture_json("scale.json");
                s["spec"]["replicas"] = self.replicas.into();
                s["status"]["replicas"] = (self.pods.len() as i64).into();
                ok(s.to_string())
            }
            ("list", "policy", "poddisruptionbudgets") => ok(fixture("pdbs-list.json")),
            ("create", "events.k8s.io", "events") => {
                let mut ev = body.clone();
                ev["metadata"]["name"] = format!("rackpong-chaos-{}", self.events.len()).into();
                self.events.push(body);
                Answer::Now(201, ev.to_string().into_bytes())
            }
            ("delete", "", "pods") if self.pods.contains_key(&name) => {
                let pod = self.pods[&name].clone();
                self.terminate(&name, body["gracePeriodSeconds"].as_i64().unwrap_or(30));
                self.reconcile_replicas();
                ok(pod.to_string())
            }
            ("create", "", "pods/eviction") if self.pods.contains_key(&name) => {
                // The workers' PDB: maxUnavailable 2 of the desired count.
                if self.healthy() - (self.replicas - 2) < 1 {
                    return Answer::Now(429, fixture("status-429-pdb.json").into_bytes());
                }
                self.terminate(&name, 30);
                self.reconcile_replicas();
                Answer::Now(201, fixture("status-201-eviction.json").into_bytes())
            }
            ("patch", "", "nodes") if self.nodes.contains_key(&name) => {
                let mut node = self.nodes[&name].clone();
                json_patch::merge(&mut node, &body);
                self.put(Kind::Nodes, "MODIFIED", node);
                ok(self.nodes[&name].to_string())
            }
            ("patch", "rackpong.dev", r) if self.experiments.contains_key(&name) => {
                self.patch_experiment(&name, r.ends_with("/status"), &body)
            }
            _ => Answer::Now(404, not_found(&call)),
        };
        answer
    }

    fn collection(&self, kind: Kind, verb: &str, query: &str) -> Answer {
        if verb == "watch" {
            let rv = query_param(query, "resourceVersion").and_then(|v| v.parse().ok());
            return Answer::Watch(kind, rv.unwrap_or(self.rv));
        }
        let (objs, list_kind, api_version) = match kind {
            Kind::Pods => (&self.pods, "PodList", "v1"),
            Kind::Nodes => (&self.nodes, "NodeList", "v1"),
            Kind::Experiments => (
                &self.experiments,
                "ChaosExperimentList",
                "rackpong.dev/v1alpha1",
            ),
        };
        let field = query_param(query, "fieldSelector");
        let on_node = field
            .as_deref()
            .and_then(|f| f.strip_prefix("spec.nodeName="));
        let items: Vec<&Value> = objs
            .values()
            .filter(|o| on_node.is_none_or(|n| o["spec"]["nodeName"] == n))
            .collect();
        let list = json!({
            "kind": list_kind, "apiVersion": api_version,
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        });
        ok(list.to_string())
    }

    fn get(&self, kind: Kind, name: &str) -> Answer {
        let map = if kind == Kind::Pods {
            &self.pods
        } else {
            &self.nodes
        };
        match map.get(name) {
            Some(o) => ok(o.to_string()),
            None => Answer::Now(404, fixture("status-404-pod.json").into_bytes()),
        }
    }

    fn patch_experiment(&mut self, name: &str, status: bool, body: &Value) -> Answer {
        let mut exp = self.experiments[name].clone();
        if status {
            exp["status"] = body["status"].clone();
        } else if body.is_array() {
            // As the API server's json-patch does: testing a missing path
            // for null passes (kube's finalizer relies on it).
            let kept: Vec<&Value> = body
                .as_array()
                .into_iter()
                .flatten()
                .filter(|op| {
                    let path = op["path"].as_str().unwrap_or_default();
                    !(op["op"] == "test" && op["value"].is_null() && exp.pointer(path).is_none())
                })
                .collect();
            let ops: json_patch::Patch =
                match serde_json::to_value(kept).and_then(serde_json::from_value) {
                    Ok(p) => p,
                    Err(e) => return Answer::Now(422, e.to_string().into_bytes()),
                };
            if let Err(e) = json_patch::patch(&mut exp, &ops) {
                return Answer::Now(
                    422,
                    json!({"kind": "Status", "message": e.to_string(), "code": 422})
                        .to_string()
                        .into_bytes(),
                );
            }
        } else {
            json_patch::merge(&mut exp, body);
        }
        let gone = exp["metadata"].get("deletionTimestamp").is_some()
            && exp["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        self.put(
            Kind::Experiments,
            if gone { "DELETED" } else { "MODIFIED" },
            exp.clone(),
        );
        let mut answered = exp;
        answered["metadata"]["resourceVersion"] = self.rv.to_string().into();
        ok(answered.to_string())
    }
}

fn ok(body: String) -> Answer {
    Answer::Now(200, body.into_bytes())
}

fn not_found(call: &ApiCall) -> Vec<u8> {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{} {:?} not found", call.resource, call.name),
        "reason": "NotFound", "code": 404,
    })
    .to_string()
    .into_bytes()
}
