//! A scripted in-memory rack for the engine tests: it reacts to faults like
//! a small ReplicaSet with fixed, known delays (in paused virtual time, so
//! the measured phases must equal them exactly), records every mutating
//! call, and throws one "ball" through each new worker once it is ready.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rackpong_controller::cluster::{
    Cluster, ClusterError, ClusterEvent, ClusterEventKind as K, KillMode, NodeFault, NodeInfo,
    WorkerInfo,
};
use rackpong_controller::engine::{Input, Timed};
use rackpong_controller::model::{Detection, ServiceLevel};
use rackpong_controller::timing::Observation;
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

/// Delays of a replacement after the kill, in ms: created, scheduled, running, ready, first ball.
pub const CREATED: u64 = 10;
pub const SCHEDULED: u64 = 20;
pub const RUNNING: u64 = 300;
pub const READY: u64 = 800;
pub const SERVING: u64 = 900;
/// A killed node is seen NotReady this long after the fault.
pub const NOT_READY: u64 = 100;

#[derive(Debug, Default)]
pub struct State {
    pub nodes: Vec<NodeInfo>,
    pub workers: Vec<WorkerInfo>,
    pub replicas: u32,
    next: u32,
    /// Mutating calls, in order: `kill w1`, `down n2`, `up n2`, `scale 6`.
    pub calls: Vec<String>,
    /// Replacements never become ready (an SLO failure).
    pub stuck: bool,
    /// A downed node's Last Will arrives over MQTT this many ms after the fault.
    pub lwt_after: Option<u64>,
}

pub struct FakeRack {
    pub state: Mutex<State>,
    events: broadcast::Sender<ClusterEvent>,
    inputs: mpsc::Sender<Timed>,
    /// Cancelled when a node goes down (to abort mid-run), if set.
    pub cancel_on_node_down: Mutex<Option<CancellationToken>>,
}

impl FakeRack {
    /// `nodes` nodes named n1.., `per_node` workers on each of n2.. (n1 is
    /// protected, like the k3s server).
    pub fn start(nodes: usize, per_node: usize) -> (Fake, mpsc::Receiver<Timed>) {
        let mut st = State::default();
        for i in 1..=nodes {
            st.nodes.push(NodeInfo {
                name: format!("n{i}"),
                ready: true,
                chaos_opt_in: true,
                protected: (i == 1).then(|| "k3s server".to_string()),
                cordoned: false,
            });
            if i > 1 {
                for _ in 0..per_node {
                    st.next += 1;
                    st.workers
                        .push(worker(format!("w{}", st.next), format!("n{i}")));
                }
            }
        }
        st.replicas = st.workers.len() as u32;
        let (events, _) = broadcast::channel(1024);
        let (inputs, rx) = mpsc::channel(1024);
        let rack = Arc::new(FakeRack {
            state: Mutex::new(st),
            events,
            inputs,
            cancel_on_node_down: Mutex::new(None),
        });
        (Fake(rack), rx)
    }

    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn emit(&self, kind: K) {
        let _ = self.events.send(ClusterEvent {
            at: Instant::now(),
            kind,
        });
    }

    /// Creates one replacement worker on the first ready node other than
    /// `avoid`, walking it through the known delays from now.
    fn replace(self: &Arc<Self>, avoid: Option<String>) {
        let rack = self.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            let at = |ms| tokio::time::sleep_until(t0 + Duration::from_millis(ms));
            let (name, node, stuck) = {
                let mut st = rack.state.lock().unwrap();
                st.next += 1;
                let node = st
                    .nodes
                    .iter()
                    .find(|n| n.ready && n.protected.is_none() && Some(&n.name) != avoid.as_ref())
                    .map(|n| n.name.clone())
                    .unwrap_or_else(|| "n2".into());
                let name = format!("w{}", st.next);
                let mut w = worker(name.clone(), node.clone());
                w.ready = false;
                st.workers.push(w);
                (name, node, st.stuck)
            };
            at(CREATED).await;
            rack.emit(K::WorkerCreated {
                worker: name.clone(),
            });
            at(SCHEDULED).await;
            rack.emit(K::WorkerScheduled {
                worker: name.clone(),
                node: node.clone(),
            });
            at(RUNNING).await;
            rack.emit(K::WorkerRunning {
                worker: name.clone(),
                node: node.clone(),
            });
            if stuck {
                return;
            }
            at(READY).await;
            rack.set_ready(&name);
            rack.emit(K::WorkerReady {
                worker: name.clone(),
                node: node.clone(),
            });
            at(SERVING).await;
            let hops = vec![(name, node)];
            let input = Input::Observation(Observation::BallCaught { hops });
            let _ = rack
                .inputs
                .send(Timed {
                    at: Instant::now(),
                    input,
                })
                .await;
        });
    }

    fn set_ready(&self, name: &str) {
        let mut st = self.state.lock().unwrap();
        if let Some(w) = st.workers.iter_mut().find(|w| w.name == name) {
            w.ready = true;
        }
    }

    /// Marks a worker terminating now and deletes it after 50 ms.
    fn remove(self: &Arc<Self>, name: String) {
        let node = {
            let mut st = self.state.lock().unwrap();
            let Some(w) = st.workers.iter_mut().find(|w| w.name == name) else {
                return;
            };
            w.terminating = true;
            w.ready = false;
            w.node.clone()
        };
        self.emit(K::WorkerTerminating {
            worker: name.clone(),
            node: node.clone(),
        });
        let rack = self.clone();
        tokio::spawn(async move {
            sleep(Duration::from_millis(50)).await;
            rack.state
                .lock()
                .unwrap()
                .workers
                .retain(|w| w.name != name);
            rack.emit(K::WorkerDeleted { worker: name, node });
        });
    }
}

pub fn worker(name: String, node: String) -> WorkerInfo {
    WorkerInfo {
        name,
        node: Some(node),
        ready: true,
        terminating: false,
        chaos_opt_in: true,
    }
}

/// A factory stand-in whose delivery rate the test sets.
pub fn service(rate: Arc<Mutex<Option<f64>>>) -> impl Fn() -> ServiceLevel + Send + Sync + 'static {
    move || ServiceLevel {
        window_ms: 5000,
        sent: 100,
        caught: 100,
        dropped: 0,
        timed_out: 0,
        delivery_rate: *rate.lock().unwrap(),
        p50_ms: Some(3.0),
        p95_ms: Some(9.0),
        p99_ms: Some(12.0),
    }
}

/// The cluster handle the engine gets.
#[derive(Clone)]
pub struct Fake(pub Arc<FakeRack>);

impl std::ops::Deref for Fake {
    type Target = Arc<FakeRack>;
    fn deref(&self) -> &Arc<FakeRack> {
        &self.0
    }
}

impl Cluster for Fake {
    // The fake rolls back like a real cluster (the local rack's crashed runs
    // need no rollback: its processes died with the controller).
    fn kind(&self) -> rackpong_controller::model::ClusterKind {
        rackpong_controller::model::ClusterKind::K3s
    }

    async fn detection(&self) -> Result<Detection, ClusterError> {
        Ok(Detection {
            profile: "fake".into(),
            node_monitor_grace_s: Some(1),
            readiness_period_s: Some(1),
            mqtt_keepalive_s: Some(1),
            ..Detection::default()
        })
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        Ok(self.state.lock().unwrap().nodes.clone())
    }

    async fn workers(&self) -> Result<Vec<WorkerInfo>, ClusterError> {
        Ok(self.state.lock().unwrap().workers.clone())
    }

    async fn replicas(&self) -> Result<u32, ClusterError> {
        Ok(self.state.lock().unwrap().replicas)
    }

    async fn kill_worker(&self, worker: &str, _mode: KillMode) -> Result<(), ClusterError> {
        {
            let mut st = self.state.lock().unwrap();
            if !st.workers.iter().any(|w| w.name == worker) {
                return Err(ClusterError::NoSuchWorker(worker.into()));
            }
            st.calls.push(format!("kill {worker}"));
        }
        self.remove(worker.to_string());
        self.replace(None);
        Ok(())
    }

    async fn node_down(
        &self,
        node: &str,
        _fault: NodeFault,
        down_for: Duration,
    ) -> Result<(), ClusterError> {
        let lost: Vec<String> = {
            let mut st = self.state.lock().unwrap();
            st.calls.push(format!("down {node}"));
            st.workers
                .iter()
                .filter(|w| w.node.as_deref() == Some(node))
                .map(|w| w.name.clone())
                .collect()
        };
        if let Some(c) = self.cancel_on_node_down.lock().unwrap().as_ref() {
            c.cancel();
        }
        let rack = self.0.clone();
        let node = node.to_string();
        let lwt = self.state.lock().unwrap().lwt_after;
        if let Some(ms) = lwt {
            let (rack, node) = (self.0.clone(), node.clone());
            tokio::spawn(async move {
                sleep(Duration::from_millis(ms)).await;
                let input = Input::Observation(Observation::NodeStatus {
                    node,
                    online: false,
                });
                let _ = rack
                    .inputs
                    .send(Timed {
                        at: Instant::now(),
                        input,
                    })
                    .await;
            });
        }
        tokio::spawn(async move {
            sleep(Duration::from_millis(NOT_READY)).await;
            rack.set_node(&node, false);
            rack.emit(K::NodeNotReady { node: node.clone() });
            for w in lost {
                rack.remove(w);
                rack.replace(Some(node.clone()));
            }
            sleep(down_for).await;
            rack.set_node(&node, true);
            rack.emit(K::NodeReady { node });
        });
        Ok(())
    }

    async fn node_up(&self, node: &str) -> Result<(), ClusterError> {
        self.state.lock().unwrap().calls.push(format!("up {node}"));
        self.set_node(node, true);
        Ok(())
    }

    async fn scale(&self, replicas: u32) -> Result<u32, ClusterError> {
        let (from, surplus) = {
            let mut st = self.state.lock().unwrap();
            st.calls.push(format!("scale {replicas}"));
            let from = std::mem::replace(&mut st.replicas, replicas);
            let live: Vec<String> = st
                .workers
                .iter()
                .filter(|w| !w.terminating)
                .map(|w| w.name.clone())
                .collect();
            let surplus: Vec<String> = live.iter().skip(replicas as usize).cloned().collect();
            (from, surplus)
        };
        self.emit(K::ReplicasChanged { replicas });
        for _ in from..replicas {
            self.replace(None);
        }
        for w in surplus {
            self.remove(w);
        }
        Ok(from)
    }

    fn subscribe(&self) -> broadcast::Receiver<ClusterEvent> {
        self.events.subscribe()
    }
}

impl FakeRack {
    fn set_node(&self, node: &str, ready: bool) {
        let mut st = self.state.lock().unwrap();
        if let Some(n) = st.nodes.iter_mut().find(|n| n.name == node) {
            n.ready = ready;
        }
    }
}
