//! The fake API server's routes: each request answered from (and applied
//! to) the rack as the k3s API server would, and recorded.

use http::Method;
use serde_json::{Value, json};

use super::rack::{Kind, Rack};
use super::{Answer, ApiCall, Logged, api_call, query_param};
use crate::k3s_support::{fixture, fixture_json};

impl Rack {
    /// Records the request and answers it.
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
        match res {
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
            ("list", "policy", "poddisruptionbudgets") => ok(fixture("pdbs-list.json")),
            ("create", "events.k8s.io", "events") => {
                let mut ev = body.clone();
                ev["metadata"]["name"] = format!("rackpong-chaos-{}", self.events.len()).into();
                self.events.push(body);
                Answer::Now(201, ev.to_string().into_bytes())
            }
            // A repeated Event (kube's Recorder): the series count goes up.
            ("patch", "events.k8s.io", "events") => {
                let Some(ev) = self
                    .events
                    .iter_mut()
                    .find(|e| e["metadata"]["name"] == name.as_str())
                else {
                    return Answer::Now(404, fixture("status-404-pod.json").into_bytes());
                };
                ev["series"] = body["series"].clone();
                ok(ev.to_string())
            }
            _ => self.change(&call, &name, &body),
        }
    }

    /// The calls that change the rack.
    fn change(&mut self, call: &ApiCall, name: &str, body: &Value) -> Answer {
        let res = (
            call.verb.as_str(),
            call.group.as_str(),
            call.resource.as_str(),
        );
        match res {
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
            ("delete", "", "pods") if self.pods.contains_key(name) => {
                let pod = self.pods[name].clone();
                self.terminate(name, body["gracePeriodSeconds"].as_i64().unwrap_or(30));
                self.reconcile_replicas();
                ok(pod.to_string())
            }
            ("create", "", "pods/eviction") if self.pods.contains_key(name) => {
                // The workers' PDB: maxUnavailable 2 of the desired count.
                if self.healthy() - (self.replicas - 2) < 1 {
                    return Answer::Now(429, fixture("status-429-pdb.json").into_bytes());
                }
                self.terminate(name, 30);
                self.reconcile_replicas();
                Answer::Now(201, fixture("status-201-eviction.json").into_bytes())
            }
            ("patch", "", "nodes") if self.nodes.contains_key(name) => {
                let mut node = self.nodes[name].clone();
                json_patch::merge(&mut node, body);
                self.put(Kind::Nodes, "MODIFIED", node);
                ok(self.nodes[name].to_string())
            }
            ("patch", "rackpong.dev", r) if self.experiments.contains_key(name) => {
                self.patch_experiment(name, r.ends_with("/status"), body)
            }
            _ => Answer::Now(404, not_found(call)),
        }
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
