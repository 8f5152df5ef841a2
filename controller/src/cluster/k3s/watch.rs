//! The Pod and Node watcher tasks: kube-runtime watchers (list, then watch
//! with bookmarks, resumed or re-listed on errors with backoff) whose events
//! go through the trackers and out as [`ClusterEvent`]s stamped with the
//! instant the watch event arrived.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::track::{NodeTracker, PodTracker};
use crate::cluster::{ClusterEvent, ClusterEventKind};

/// Whether each watcher has its first complete list.
#[derive(Debug)]
pub(crate) struct Synced {
    tx: tokio::sync::watch::Sender<(bool, bool)>,
}

impl Default for Synced {
    fn default() -> Self {
        Synced {
            tx: tokio::sync::watch::Sender::new((false, false)),
        }
    }
}

impl Synced {
    fn pods(&self) {
        self.tx.send_modify(|s| s.0 = true);
    }
    fn nodes(&self) {
        self.tx.send_modify(|s| s.1 = true);
    }
    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`: this cannot fail while we wait.
        let _ = rx.wait_for(|&(p, n)| p && n).await;
    }
}

pub(crate) fn spawn(inner: Arc<Inner>, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let pods = watch_pods(inner.clone());
        let nodes = watch_nodes(inner);
        tokio::select! {
            () = cancel.cancelled() => tracing::debug!("k3s watchers stopped"),
            () = pods => tracing::warn!("pod watcher ended"),
            () = nodes => tracing::warn!("node watcher ended"),
        }
    })
}

fn emit(inner: &Inner, at: Instant, kinds: impl IntoIterator<Item = ClusterEventKind>) {
    for kind in kinds {
        tracing::debug!(?kind, "cluster event");
        // No subscriber yet is fine: events are "from now on".
        let _ = inner.events.send(ClusterEvent { at, kind });
    }
}

fn events<K>(api: Api<K>, selector: Option<&str>) -> impl Stream<Item = Event<K>> + Send
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let mut cfg = watcher::Config::default();
    if let Some(sel) = selector {
        cfg = cfg.labels(sel);
    }
    watcher::watcher(api, cfg)
        .default_backoff()
        .filter_map(|res| async move {
            match res {
                Ok(ev) => Some(ev),
                Err(err) => {
                    tracing::warn!(%err, "watch error; the watcher retries with backoff");
                    None
                }
            }
        })
}

async fn watch_pods(inner: Arc<Inner>) {
    let api: Api<Pod> = Api::namespaced(inner.client.clone(), &inner.config.namespace);
    let stream = events(api, Some(&inner.config.worker_selector));
    let mut stream = std::pin::pin!(stream);
    let mut tracker = PodTracker::default();
    let mut first = true;
    while let Some(ev) = stream.next().await {
        let at = Instant::now();
        match ev {
            Event::Init if !first => tracker.relist_started(),
            Event::Init => {}
            Event::InitApply(pod) if first => tracker.seed(&pod),
            Event::InitApply(pod) | Event::Apply(pod) => emit(&inner, at, tracker.apply(&pod)),
            Event::Delete(pod) => emit(&inner, at, tracker.delete(&pod)),
            Event::InitDone => {
                emit(&inner, at, tracker.relist_done());
                if first {
                    first = false;
                    inner.synced.pods();
                }
            }
        }
        if !first && let Some(now) = tracker.take_ready_change() {
            inner.ready.send_replace(now);
        }
    }
}

async fn watch_nodes(inner: Arc<Inner>) {
    let api: Api<Node> = Api::all(inner.client.clone());
    let mut stream = std::pin::pin!(events(api, None));
    let mut tracker = NodeTracker::default();
    let mut first = true;
    while let Some(ev) = stream.next().await {
        let at = Instant::now();
        match ev {
            Event::Init => {}
            Event::InitApply(node) if first => tracker.seed(&node),
            Event::InitApply(node) | Event::Apply(node) => emit(&inner, at, tracker.apply(&node)),
            Event::Delete(node) => emit(&inner, at, tracker.delete(&node)),
            Event::InitDone => {
                if first {
                    first = false;
                    inner.synced.nodes();
                }
            }
        }
    }
}
