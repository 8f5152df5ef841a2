//! The worker's HTTP surface: `POST /v1/balls` (202 at once, the ball is
//! played in its own task), `GET /healthz` (names the worker, which is how
//! peers recognise themselves), `GET /readyz`, `GET /metrics` and
//! `GET /v1/peers`. Every refusal is a 4xx/5xx with an [`ErrorBody`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::ball::{self, ErrorBody};
use super::game::Game;

/// `GET /healthz` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub worker: String,
    pub node: String,
}

/// `GET /readyz` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    pub live_peers: usize,
    pub broker_connected: bool,
}

/// The worker's router; bodies above `max_body_bytes` get `413`.
pub fn router(game: Arc<Game>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/balls", post(post_ball))
        .route("/v1/peers", get(peers))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(game)
}

fn refuse(game: &Game, status: StatusCode, error: &str, detail: String) -> Response {
    game.metrics.refused(error);
    tracing::debug!(%status, error, %detail, "ball refused");
    let body = ErrorBody {
        error: error.to_string(),
        detail,
    };
    (status, Json(body)).into_response()
}

async fn post_ball(State(game): State<Arc<Game>>, body: Result<Bytes, BytesRejection>) -> Response {
    let received = Instant::now();
    let body = match body {
        Ok(b) => b,
        Err(rej) => {
            let status = rej.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "body-too-large"
            } else {
                "unreadable-body"
            };
            return refuse(&game, status, code, rej.body_text());
        }
    };
    if game.shutdown.is_cancelled() {
        let detail = "worker is shutting down; try another".to_string();
        return refuse(
            &game,
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            detail,
        );
    }
    match ball::decode(&body, &game.limits) {
        Ok(ball) => {
            game.accept(ball, received);
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => refuse(&game, StatusCode::BAD_REQUEST, e.code(), e.to_string()),
    }
}

async fn healthz(State(game): State<Arc<Game>>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        worker: game.id.name.clone(),
        node: game.id.node.clone(),
    })
}

async fn readyz(State(game): State<Arc<Game>>) -> Response {
    let live_peers = game.peers.live_count();
    let broker_connected = *game.link.connected().borrow();
    let ready = live_peers > 0 && broker_connected && !game.shutdown.is_cancelled();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        ready,
        live_peers,
        broker_connected,
    };
    (status, Json(body)).into_response()
}

async fn peers(State(game): State<Arc<Game>>) -> Json<super::peers::PeerView> {
    Json(game.peers.view())
}

async fn metrics(State(game): State<Arc<Game>>) -> Response {
    game.metrics.live_peers.set(game.peers.live_count() as i64);
    let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, ct)], game.metrics.encode()).into_response()
}
