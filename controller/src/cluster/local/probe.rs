//! Readiness probes of the local workers, one task per worker: it learns the
//! worker's address from its announce file, then asks `/readyz` every probe
//! period. A `ready` timestamp is the arrival of the first 200, so its
//! precision is the probe period (as kubelet's readiness probe period is on k3s).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::inner::Inner;
use crate::cluster::ClusterEventKind;

/// Starts probing worker `name` until `token` is cancelled (the worker exited).
pub fn spawn(inner: Arc<Inner>, name: String, token: CancellationToken) {
    tokio::spawn(async move {
        let announce = inner.announce_path(&name);
        let mut tick = tokio::time::interval(inner.cfg.probe_period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut addr = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = token.cancelled() => return,
                _ = inner.cancel.cancelled() => return,
            }
            if addr.is_none() {
                addr = read_announce(&announce).await;
                match addr {
                    Some(a) => on_announced(&inner, &name, a),
                    None => continue,
                }
            }
            if let Some(a) = addr {
                let ok = probe(&inner.http, a).await;
                on_probe(&inner, &name, ok, Instant::now());
            }
        }
    });
}

/// The `ip:port` a role wrote once its server was bound; `None` until then.
pub async fn read_announce(path: &Path) -> Option<SocketAddr> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    match text.trim().parse() {
        Ok(addr) => Some(addr),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "unreadable announce file");
            None
        }
    }
}

async fn probe(http: &reqwest::Client, addr: SocketAddr) -> bool {
    match http.get(format!("http://{addr}/readyz")).send().await {
        Ok(resp) => resp.status() == reqwest::StatusCode::OK,
        Err(e) => {
            tracing::debug!(%addr, error = %e, "readiness probe failed");
            false
        }
    }
}

fn on_announced(inner: &Inner, name: &str, addr: SocketAddr) {
    let mut st = inner.lock();
    if let Some(w) = st.workers.get_mut(name) {
        w.addr = Some(addr);
    }
    inner.sync_peers(&mut st);
}

fn on_probe(inner: &Inner, name: &str, ok: bool, at: Instant) {
    let mut st = inner.lock();
    let Some(w) = st.workers.get_mut(name) else {
        return;
    };
    if w.proc.is_none() || ok == w.ready || (ok && w.terminating) {
        return;
    }
    w.ready = ok;
    let (worker, node) = (w.name.clone(), w.node.clone());
    let kind = match (ok, node) {
        (true, Some(node)) => ClusterEventKind::WorkerReady { worker, node },
        (true, None) => return,
        (false, node) => ClusterEventKind::WorkerNotReady { worker, node },
    };
    // Channels first, so whoever sees the event sees them updated.
    inner.sync_peers(&mut st);
    inner.emit(at, kind);
}
