//! `POST /api/estop`: the dashboard's emergency stop button. Same bearer
//! token as `/api/stop`; body `{"engaged": true}` (stop) or
//! `{"engaged": false}` (clear), `Content-Type: application/json`. Publishes
//! through [`crate::estop::EstopSender`] (a short-lived MQTT client signed
//! with the chaos secret) and answers with the published stop and the
//! agents' acks. Errors are JSON: 401 token, 415 content type, 400 body,
//! 409 when the dashboard has no chaos secret, 502 when the broker failed.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::http::{AppState, error, refusal};

/// How long the button waits for the agents' acks.
const ACK_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EstopRequest {
    engaged: bool,
}

pub(super) async fn api_estop(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&headers, &s.token) {
        return refused;
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("application/json"));
    if !json_body {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send {\"engaged\": true|false} as application/json",
        );
    }
    let req: EstopRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("body must be {{\"engaged\": true|false}}: {e}");
            return error(StatusCode::BAD_REQUEST, &msg);
        }
    };
    let Some(sender) = &s.estop else {
        return error(
            StatusCode::CONFLICT,
            "emergency stop unavailable: start the dashboard with --chaos-secret-file (or use rackpong estop)",
        );
    };
    tracing::warn!(
        engaged = req.engaged,
        "emergency stop requested from the dashboard"
    );
    match sender.send(req.engaged, "dashboard", ACK_WAIT).await {
        Ok(o) => {
            let acks: Vec<_> = o
                .acks
                .iter()
                .map(|a| json!({ "node": a.node, "accepted": a.accepted, "reason": a.reason }))
                .collect();
            let body = json!({
                "id": o.estop.id,
                "seq": o.estop.seq,
                "engaged": o.estop.engaged,
                "acks": acks,
                "silent": o.silent,
            });
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}
