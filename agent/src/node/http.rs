//! The node role's HTTP server: `GET /healthz` (liveness plus a JSON
//! summary) and `GET /metrics` (Prometheus text). Also writes the
//! `--announce-file` once the server is bound.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::NodeError;
use super::metrics::NodeMetrics;
use crate::leds::Leds;
use crate::mqtt::MqttLink;

/// What the handlers read.
pub struct HttpState {
    pub node: String,
    pub metrics: Arc<NodeMetrics>,
    pub link: MqttLink,
    pub leds: Arc<dyn Leds>,
    pub chaos: Arc<crate::chaos::ChaosStats>,
    /// (seq, ts_ms) of the last sample taken.
    pub last_sample: Mutex<Option<(u64, u64)>>,
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn healthz(State(s): State<Arc<HttpState>>) -> Json<serde_json::Value> {
    let last = *s.last_sample.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!({
        "status": "ok",
        "node": s.node,
        "version": crate::VERSION,
        "mqtt_connected": *s.link.connected().borrow(),
        "last_seq": last.map(|l| l.0),
        "last_sample_ms": last.map(|l| l.1),
        "buffer": s.link.buffer_stats(),
        "leds": s.leds.state(),
    }))
}

async fn metrics(State(s): State<Arc<HttpState>>) -> Response {
    let body = s.metrics.render(&s.link, s.leds.state(), &s.chaos);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn not_found() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not found; try GET /healthz or GET /metrics"})),
    )
}

/// The running server.
pub struct Server {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves on `listener` and writes the announce file, if any.
    pub fn start(
        listener: TcpListener,
        state: Arc<HttpState>,
        announce_file: Option<&Path>,
    ) -> Result<Server, NodeError> {
        let addr = listener.local_addr().map_err(NodeError::Serve)?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(
            axum::serve(listener, router(state))
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );
        if let Some(path) = announce_file {
            announce(path, addr).map_err(|source| NodeError::Announce {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Ok(Server { addr, stop, task })
    }

    /// Finishes the requests in progress and stops.
    pub async fn stop(self) -> Result<(), NodeError> {
        self.stop.cancel();
        match self.task.await {
            Ok(result) => result.map_err(NodeError::Serve),
            Err(e) => {
                tracing::error!(error = %e, "HTTP server task failed");
                Ok(())
            }
        }
    }
}

/// Writes `ip:port\n` to `path` atomically (temporary file + rename), so a
/// reader never sees a partial address.
pub fn announce(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, format!("{addr}\n"))?;
    std::fs::rename(&tmp, path)
}
