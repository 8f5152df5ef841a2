//! The dashboard's HTTP surface: the embedded page, `GET /api/state`,
//! `GET /events` (Server-Sent Events of state snapshots) and the
//! token-protected `POST /api/stop` and `POST /api/estop` (the rack's
//! emergency stop, in `estop.rs`). Errors are JSON with a 4xx status.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Hub;

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Snapshots are pushed at most this often, however busy the rack is.
const MIN_GAP: Duration = Duration::from_millis(250);
/// ... and at least this often, so stale marking and timers move without messages.
const MAX_GAP: Duration = Duration::from_secs(1);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    pub token: String,
    /// Cancelled by an authorised stop; `None` when there is no run to stop.
    pub stop_run: Option<CancellationToken>,
    /// Ends the SSE streams so graceful shutdown completes.
    pub shutdown: CancellationToken,
    /// Publishes the emergency stop; `None` without a chaos secret.
    pub estop: Option<Arc<crate::estop::EstopSender>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/state", get(api_state))
        .route("/api/stop", post(api_stop))
        .route("/api/estop", post(super::estop::api_estop))
        .route("/events", get(events))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page") })
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

pub(super) fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg }))).into_response()
}

/// The page with the current snapshot embedded. `<` is escaped so no name
/// coming from MQTT can close the script element.
async fn page(State(s): State<AppState>) -> Html<String> {
    let snap = serde_json::to_string(&s.hub.snapshot(Instant::now()))
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c");
    Html(PAGE.replace("__INITIAL_STATE__", &snap))
}

async fn api_state(State(s): State<AppState>) -> Response {
    Json(s.hub.snapshot(Instant::now())).into_response()
}

/// `None` for the right bearer token, else the 401 to answer.
pub(super) fn refusal(headers: &HeaderMap, token: &str) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Some(error(StatusCode::UNAUTHORIZED, "missing bearer token")),
        Some(t) if !same(t.trim().as_bytes(), token.as_bytes()) => {
            tracing::warn!("dashboard control refused: wrong token");
            Some(error(StatusCode::UNAUTHORIZED, "wrong token"))
        }
        Some(_) => None,
    }
}

async fn api_stop(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&headers, &s.token) {
        return refused;
    }
    match &s.stop_run {
        Some(run) => {
            tracing::warn!("stop requested from the dashboard: aborting the run and rolling back");
            run.cancel();
            (StatusCode::ACCEPTED, Json(json!({ "stopping": true }))).into_response()
        }
        None => error(StatusCode::CONFLICT, "no run to stop (watch mode)"),
    }
}

/// Compares without an early exit, so timing does not leak the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let version = s.hub.subscribe();
    let stream =
        futures::stream::unfold((s, version, true), |(s, mut version, first)| async move {
            if !first {
                tokio::select! {
                    _ = s.shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(MIN_GAP) => {}
                }
                tokio::select! {
                    _ = s.shutdown.cancelled() => return None,
                    _ = version.changed() => {}
                    _ = tokio::time::sleep(MAX_GAP - MIN_GAP) => {}
                }
            }
            version.borrow_and_update();
            let snap = s.hub.snapshot(Instant::now());
            let event = Event::default()
                .event("state")
                .json_data(&snap)
                .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
            Some((Ok(event), (s, version, false)))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
