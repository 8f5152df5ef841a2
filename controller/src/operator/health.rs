//! The operator's probe endpoints for kubelet: `GET /healthz` answers while
//! the process serves (liveness), `GET /readyz` once its watchers have
//! synced and it reconciles (readiness), `GET /metrics` the operator's
//! counters ([`Metrics`]); anything else is a JSON 404.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// The probe server could not bind its address.
#[derive(Debug, thiserror::Error)]
#[error("--health-addr {addr}: cannot listen")]
pub struct HealthError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// Flags of the probe server.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Where kubelet's probes reach the operator (`/healthz`, `/readyz`).
    #[arg(long, env = "RACKPONG_HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,
}

#[derive(Clone)]
struct Probes {
    ready: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
}

fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            let body = json!({"error": "not found; try GET /healthz, /readyz or /metrics"});
            (StatusCode::NOT_FOUND, Json(body))
        })
        .with_state(probes)
}

async fn metrics(State(p): State<Probes>) -> impl IntoResponse {
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, kind)], p.metrics.encode())
}

async fn readyz(State(p): State<Probes>) -> (StatusCode, Json<Value>) {
    if *p.ready.borrow() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        let body = json!({"status": "starting", "reason": "the k3s watchers have not synced yet"});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

/// Binds `addr` and serves the probes and `metrics` until `cancel`; returns
/// the bound address (port 0 picks one) and the switch that makes `/readyz`
/// pass.
pub async fn start(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<(SocketAddr, watch::Sender<bool>), HealthError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HealthError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HealthError { addr, source })?;
    let (ready_tx, ready) = watch::channel(false);
    tokio::spawn(async move {
        let serve = axum::serve(listener, router(Probes { ready, metrics }))
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "operator probe server stopped");
        }
    });
    tracing::info!(%bound, "operator probes on /healthz, /readyz and /metrics");
    Ok((bound, ready_tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> (u16, Value) {
        // reqwest is built without a default crypto provider (ring is ours).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    #[tokio::test]
    async fn ready_only_once_synced_and_alive_throughout() {
        let cancel = CancellationToken::new();
        let metrics = Arc::new(Metrics::default());
        metrics.failed("kube");
        let (addr, ready) = start("127.0.0.1:0".parse().unwrap(), metrics, cancel.clone())
            .await
            .unwrap();
        assert_eq!(get(addr, "/healthz").await.0, 200);
        let (status, body) = get(addr, "/readyz").await;
        assert_eq!(status, 503);
        assert!(body["reason"].as_str().unwrap().contains("synced"));
        ready.send_replace(true);
        assert_eq!(
            get(addr, "/readyz").await,
            (200, json!({"status": "ready"}))
        );
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("rackpong_operator_reconcile_failures_total{error=\"kube\"} 1"),
            "{text}"
        );
        let (status, body) = get(addr, "/nope").await;
        assert_eq!(status, 404);
        assert!(body["error"].is_string());
        cancel.cancel();
    }
}
