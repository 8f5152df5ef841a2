//! The tasks that feed the board: the rack's MQTT messages, the broker
//! connection state, and the engine's progress. Each bumps the hub's version
//! so the SSE streams push a fresh snapshot. Malformed payloads are counted
//! and logged, never fatal.

use rumqttc::Publish;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::model::Progress;

/// Applies every message of `rx` until `stop` fires or the link goes away.
pub async fn mqtt(hub: Hub, mut rx: mpsc::Receiver<Publish>, stop: CancellationToken) {
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            msg = rx.recv() => match msg { Some(m) => m, None => return },
        };
        let at = Instant::now();
        hub.update(|b| {
            if let Err(reason) = b.apply(&msg.topic, &msg.payload, at) {
                b.count_malformed();
                tracing::warn!(topic = %msg.topic, %reason, "malformed MQTT payload ignored");
            }
        });
    }
}

/// Mirrors the engine's progress until the engine drops its sender.
pub async fn progress(hub: Hub, mut rx: watch::Receiver<Progress>, stop: CancellationToken) {
    loop {
        let p = rx.borrow_and_update().clone();
        hub.update(|b| b.set_progress(p, Instant::now()));
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}

/// Mirrors the MQTT link's connection state.
pub async fn connected(hub: Hub, mut rx: watch::Receiver<bool>, stop: CancellationToken) {
    loop {
        let c = *rx.borrow_and_update();
        hub.update(|b| b.set_connected(c));
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}
