//! The tasks that feed the board: the rack's MQTT messages, the broker
//! connection state, the engine's progress and the run's journal lines. Each bumps the hub's version
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

/// Folds the run's journal lines into the board's story; fault events are
/// pushed to the page at once.
pub async fn journal(
    hub: Hub,
    mut rx: tokio::sync::broadcast::Receiver<crate::journal::event::JournalLine>,
    stop: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => return,
            line = rx.recv() => match line {
                Ok(l) => l,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "dashboard fell behind the journal");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        let at = Instant::now();
        let mut urgent = false;
        hub.update(|b| urgent = b.apply_journal(&line, at));
        if urgent {
            hub.update_now(|_| {});
        }
    }
}
