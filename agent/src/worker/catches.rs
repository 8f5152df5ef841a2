//! The worker's catch reports for its node's LEDs: every [`EVERY`], when
//! balls were caught since the last one, a [`CatchReport`] with how many on
//! `nodes/<node>/catches`. The node agent's catch flash reads only its own
//! node's reports (a few a second) instead of the rack's whole
//! `balls/caught` stream. Sent only while the broker link is up: a backlog
//! of old flashes is worth nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::game::Game;
use crate::proto::{CatchReport, PROTO_VERSION};

/// How often a worker reports its catches (at most).
pub const EVERY: Duration = Duration::from_millis(100);

/// Reports `game`'s catches to `topic` until `cancel`.
pub async fn report(game: Arc<Game>, topic: String, cancel: CancellationToken) {
    let connected = game.link.connected();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut reported = game.metrics.caught.get();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let total = game.metrics.caught.get();
        if total == reported {
            continue;
        }
        if !*connected.borrow() {
            // Dropped, not queued: the LEDs show catches as they happen.
            reported = total;
            continue;
        }
        let msg = CatchReport {
            v: PROTO_VERSION,
            worker: game.id.name.clone(),
            caught: total - reported,
        };
        reported = total;
        match serde_json::to_vec(&msg) {
            Ok(payload) => game.link.publish(topic.clone(), payload, false),
            Err(e) => tracing::error!(error = %e, "cannot encode a catch report"),
        }
    }
}
