//! The factory's listening tasks: decode `balls/caught` and `balls/dropped`
//! (malformed payloads are counted and logged, never fatal), confirm the
//! subscriptions with a probe before the first throw, and time out balls
//! with no outcome.

use std::sync::Arc;
use std::time::Duration;

use rackpong_agent::mqtt::MqttLink;
use rackpong_agent::proto::DecodeError;
use rackpong_agent::proto::message;
use rumqttc::Publish;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{OutcomeFeed, OutcomeKind, Shared};

pub(super) async fn listen(
    shared: Arc<Shared>,
    mut feed: OutcomeFeed,
    link: MqttLink,
    ready: oneshot::Sender<()>,
    cancel: CancellationToken,
) {
    let mut ready = Some(ready);
    let mut probe_tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = probe_tick.tick(), if ready.is_some() => {
                link.publish(feed.probe_topic.clone(), b"probe".to_vec(), false);
            }
            Some(_) = feed.probe.recv(), if ready.is_some() => {
                tracing::debug!("ball factory subscriptions active");
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            m = feed.caught.recv() => match m {
                Some(p) => on_caught(&shared, &p),
                None => return,
            },
            m = feed.dropped.recv() => match m {
                Some(p) => on_dropped(&shared, &p),
                None => return,
            },
        }
    }
}

fn malformed(shared: &Shared, p: &Publish, e: &DecodeError) {
    shared.lock().totals.malformed += 1;
    tracing::warn!(topic = %p.topic, error = %e, "malformed ball outcome ignored");
}

fn on_caught(shared: &Shared, p: &Publish) {
    let at = Instant::now();
    match message::caught(&p.payload) {
        Ok(c) => shared.resolve(&c.ball.id, at, |latency| OutcomeKind::Caught {
            latency_ms: latency.as_secs_f64() * 1000.0,
            hops: c.ball.hops,
            worker: c.worker,
        }),
        Err(e) => malformed(shared, p, &e),
    }
}

fn on_dropped(shared: &Shared, p: &Publish) {
    let at = Instant::now();
    match message::dropped(&p.payload) {
        Ok(d) => shared.resolve(&d.ball.id, at, |_| OutcomeKind::Dropped {
            reason: d.reason,
            worker: d.worker,
            detail: d.detail,
        }),
        Err(e) => malformed(shared, p, &e),
    }
}

/// Times out pending balls older than the configured timeout.
pub(super) async fn sweep(shared: Arc<Shared>, cancel: CancellationToken) {
    let timeout = shared.cfg.timeout;
    let mut tick = tokio::time::interval((timeout / 20).max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let expired: Vec<String> = {
            let mut s = shared.lock();
            let mut out = Vec::new();
            while s.order.front().is_some_and(|(t, _)| *t + timeout <= now) {
                if let Some((_, id)) = s.order.pop_front()
                    && s.pending.contains_key(&id)
                {
                    out.push(id);
                }
            }
            out
        };
        for id in expired {
            shared.resolve(&id, now, |_| OutcomeKind::TimedOut);
        }
    }
}
