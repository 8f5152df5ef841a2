//! The controllers of the fake rack: the ReplicaSet that keeps the worker
//! count, the scheduler (least-loaded schedulable agent node) and the
//! kubelet that moves each new pod Pending → scheduled → Running → Ready
//! and removes terminating pods, one step per tick.

use serde_json::{Value, json};

use super::rack::{Kind, Rack, Step, now};
use crate::k3s_support::fixture_json;

impl Rack {
    /// The kubelet (and scheduler) move one pod one step on.
    pub fn kubelet_step(&mut self) {
        let Some((name, step)) = self.pending.pop_front() else {
            return;
        };
        let Some(mut pod) = self.pods.get(&name).cloned() else {
            return;
        };
        let t = now();
        let cond = |ty: &str, s: &str| condition(ty, s, &t);
        let next = match step {
            Step::Schedule => {
                pod["spec"]["nodeName"] = self.least_loaded_node().into();
                pod["status"]["conditions"] = json!([cond("PodScheduled", "True")]);
                Some(Step::Start)
            }
            Step::Start => {
                let node = pod["spec"]["nodeName"].as_str().unwrap_or("pi4");
                let host = self.nodes[node]["status"]["addresses"][0]["address"].clone();
                pod["status"] = running(host, &t);
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
    pub(super) fn reconcile_replicas(&mut self) {
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
    pub(super) fn terminate(&mut self, name: &str, grace: i64) {
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
}

fn condition(ty: &str, status: &str, at: &str) -> Value {
    json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": at})
}

/// The status kubelet reports once the container started, before the
/// readiness probe passed (k3s 1.33's condition set).
fn running(host: Value, at: &str) -> Value {
    let mut status = fixture_json("pod-worker.json")["status"].clone();
    status["hostIP"] = host.clone();
    status["hostIPs"] = json!([{ "ip": host }]);
    status["startTime"] = at.into();
    status["containerStatuses"][0]["ready"] = false.into();
    status["containerStatuses"][0]["state"] = json!({"running": {"startedAt": at}});
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", "True", at),
        condition("Initialized", "True", at),
        condition("Ready", "False", at),
        condition("ContainersReady", "False", at),
        condition("PodScheduled", "True", at),
    ]);
    status
}
