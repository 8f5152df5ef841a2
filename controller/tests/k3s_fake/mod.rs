//! A small stateful k3s 1.33 API server behind a tower-test mock service:
//! the worker pods (a ReplicaSet keeps their count, a "kubelet" moves new
//! pods Pending → scheduled → Running → Ready one step per tick), the nodes
//! (cordon by merge patch), the Deployment's scale subresource, evictions
//! that honour the workers' PodDisruptionBudget, events.k8s.io Events, and
//! ChaosExperiments for the operator. Watches are answered like the API
//! server does: the events after the asked resourceVersion as a finished
//! JSON-lines body, or parked until something changes. Every request is
//! kept, and recorded as the RBAC rule it needs ([`ApiCall`]).

#![allow(dead_code)] // each test binary uses part of this module

mod kubelet;
pub mod rack;
pub mod rbac;
mod routes;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower_test::mock::{self, Handle, SendResponse};

pub use rack::{Kind, Rack};

/// How often the fake kubelet moves one pod one step on.
const TICK: Duration = Duration::from_millis(40);

/// One API call as an RBAC rule sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiCall {
    pub verb: String,
    pub group: String,
    /// `pods`, `pods/eviction`, `deployments/scale`, …
    pub resource: String,
    /// Namespaced (Role) or cluster-scoped (ClusterRole).
    pub namespaced: bool,
    /// The object's name, when the call names one.
    pub name: Option<String>,
}

/// A request as it was made, for asserting exact PATCHes.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: Method,
    pub uri: String,
    pub body: Value,
}

/// The test's side of the fake server.
#[derive(Clone)]
pub struct FakeK3s {
    rack: Arc<Mutex<Rack>>,
    live: watch::Receiver<BTreeSet<String>>,
    version: watch::Receiver<u64>,
    stop: CancellationToken,
}

impl FakeK3s {
    /// A client talking to a fresh rack, and the handle to inspect it.
    pub fn start(rack: Rack) -> (Client, FakeK3s) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let (live_tx, live) = watch::channel(rack.live());
        let (version_tx, version) = watch::channel(rack.version());
        let rack = Arc::new(Mutex::new(rack));
        let stop = CancellationToken::new();
        let tx = Senders {
            live: live_tx,
            version: version_tx,
        };
        tokio::spawn(serve(handle, rack.clone(), tx, stop.clone()));
        let fake = FakeK3s {
            rack,
            live,
            version,
            stop,
        };
        (Client::new(service, "default"), fake)
    }

    pub fn rack(&self) -> MutexGuard<'_, Rack> {
        self.rack.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The names of the pods that exist (not yet deleted), as they change.
    pub fn live_pods(&self) -> watch::Receiver<BTreeSet<String>> {
        self.live.clone()
    }

    /// Waits until `cond` holds for the rack, checking after every change.
    pub async fn until(&self, what: &str, cond: impl Fn(&Rack) -> bool) {
        let mut version = self.version.clone();
        let wait = async {
            while !cond(&self.rack()) {
                if version.changed().await.is_err() {
                    panic!("the fake API server stopped");
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| {
                let log: Vec<String> = self
                    .requests()
                    .iter()
                    .rev()
                    .take(12)
                    .map(|r| format!("{} {} {}", r.method, r.uri, r.body))
                    .collect();
                panic!("timed out waiting for {what}; the last requests: {log:#?}")
            });
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.rack().requests.clone()
    }

    /// Every call so far, as RBAC rules.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.rack().calls.clone()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

type Parked = (Kind, u64, SendResponse<Response<Body>>);

/// What the server task tells the test about.
struct Senders {
    live: watch::Sender<BTreeSet<String>>,
    version: watch::Sender<u64>,
}

async fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    rack: Arc<Mutex<Rack>>,
    tx: Senders,
    stop: CancellationToken,
) {
    let mut parked: Vec<Parked> = Vec::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            req = handle.next_request() => {
                let Some((request, send)) = req else { return };
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let uri = parts.uri.to_string();
                let answer = lock(&rack).handle(&parts.method, &uri, body);
                match answer {
                    Answer::Now(status, body) => respond(send, status, body),
                    Answer::Watch(kind, rv) => parked.push((kind, rv, send)),
                }
            }
            _ = tick.tick() => lock(&rack).kubelet_step(),
        }
        let mut r = lock(&rack);
        tx.version.send_if_modified(|v| {
            let changed = *v != r.version();
            *v = r.version();
            changed
        });
        tx.live.send_if_modified(|names| {
            let now = r.live();
            let changed = *names != now;
            *names = now;
            changed
        });
        parked = flush(&mut r, parked);
    }
}

fn lock(rack: &Mutex<Rack>) -> MutexGuard<'_, Rack> {
    rack.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers every parked watch that has events now; keeps the others.
fn flush(rack: &mut Rack, parked: Vec<Parked>) -> Vec<Parked> {
    let mut still = Vec::new();
    for (kind, rv, send) in parked {
        let lines = rack.events_after(kind, rv);
        if lines.is_empty() {
            still.push((kind, rv, send));
        } else {
            respond(send, 200, lines.into_bytes());
        }
    }
    still
}

fn respond(send: SendResponse<Response<Body>>, status: u16, body: Vec<u8>) {
    let response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    send.send_response(response);
}

/// What a request gets.
pub enum Answer {
    Now(u16, Vec<u8>),
    /// A watch of `Kind` from this resourceVersion: parked until it has events.
    Watch(Kind, u64),
}

/// Splits `/api/v1/...` or `/apis/G/V/...` into the RBAC view of the call.
pub fn api_call(method: &Method, path: &str, query: &str) -> ApiCall {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.first() {
        Some(&"api") => (String::new(), &segs[2.min(segs.len())..]),
        _ => (
            segs.get(1).copied().unwrap_or("").to_string(),
            &segs[3.min(segs.len())..],
        ),
    };
    let (namespaced, rest) = match rest {
        ["namespaces", _, more @ ..] if !more.is_empty() => (true, more),
        other => (false, other),
    };
    let resource = match rest {
        [r, _, sub, ..] => format!("{r}/{sub}"),
        [r, ..] => r.to_string(),
        [] => String::new(),
    };
    let name = rest.get(1).map(|s| s.to_string());
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", false) if query.split('&').any(|kv| kv == "watch=true") => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", false) => "deletecollection",
        ("DELETE", true) => "delete",
        (other, _) => other,
    };
    ApiCall {
        verb: verb.to_lowercase(),
        group,
        resource,
        namespaced,
        name,
    }
}

/// The value of `key` in a query string, percent-decoded.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
