//! The worker's HTTP surface: `POST /v1/balls` (202 at once, the ball is
//! played in its own task), `GET /healthz` (names the worker, which is how
//! peers recognise themselves), `GET /readyz`, `GET /metrics` and
//! `GET /v1/peers`. Every refusal is a 4xx/5xx with an [`ErrorBody`],
//! unknown routes (404) and methods (405) included. A ball must be sent as
//! JSON (`application/json` or `application/*+json`; anything else, no
//! Content-Type included, gets 415, so a web page's form or `text/plain`
//! POST cannot throw balls), and one that arrives after its sender's
//! deadline ([`DEADLINE_HEADER`]) is refused with 408 and never played.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::ball::{self, ErrorBody};
use super::game::Game;
use crate::proto::ball::{DEADLINE_HEADER, Deadline};

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
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(game)
}

fn error(status: StatusCode, error: &str, detail: String) -> Response {
    let body = ErrorBody {
        error: error.to_string(),
        detail,
    };
    (status, Json(body)).into_response()
}

fn refuse(game: &Game, status: StatusCode, code: &str, detail: String) -> Response {
    game.metrics.refused(code);
    tracing::debug!(%status, code, %detail, "ball refused");
    error(status, code, detail)
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let detail = format!("no route for {method} {}", uri.path());
    error(StatusCode::NOT_FOUND, "not-found", detail)
}

/// Axum keeps the `Allow` header on this answer.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let detail = format!("{method} is not allowed on {}", uri.path());
    error(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", detail)
}

/// `application/json` or `application/<anything>+json`, parameters ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(ct) = ct.to_str() else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// The checks made before the body is decoded: Content-Type, then the
/// sender's deadline, then shutdown.
fn precheck(game: &Game, headers: &HeaderMap) -> Option<Response> {
    if !is_json(headers) {
        let got = headers
            .get(header::CONTENT_TYPE)
            .map_or("none".into(), |v| {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            });
        let detail = format!("a ball is sent as application/json, not {got}");
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Some(refuse(game, status, "unsupported-media-type", detail));
    }
    if let Some(value) = headers.get(DEADLINE_HEADER) {
        let Some(deadline) = Deadline::parse(value.as_bytes()) else {
            let detail = format!("{DEADLINE_HEADER} is not a Unix time in ms");
            return Some(refuse(
                game,
                StatusCode::BAD_REQUEST,
                "bad-deadline",
                detail,
            ));
        };
        // The sender has given up on this ball and reports it: playing it
        // too would give it a second outcome.
        if let Some(late) = deadline.passed_by(crate::now_ms()) {
            let detail = format!("arrived {late:?} after its sender's deadline");
            return Some(refuse(
                game,
                StatusCode::REQUEST_TIMEOUT,
                "deadline-passed",
                detail,
            ));
        }
    }
    if game.shutdown.is_cancelled() {
        let detail = "worker is shutting down; try another".to_string();
        let status = StatusCode::SERVICE_UNAVAILABLE;
        return Some(refuse(game, status, "shutting-down", detail));
    }
    None
}

async fn post_ball(
    State(game): State<Arc<Game>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received = Instant::now();
    if let Some(refusal) = precheck(&game, &headers) {
        return refusal;
    }
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
