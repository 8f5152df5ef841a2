//! Playing one ball: catch it when it is addressed to this worker, otherwise
//! append this worker's hop, spend one `ttl` and forward it to a random live
//! peer (another one after a failure, a bounded number of times). Every ball
//! that got a `202` ends here as exactly one `balls/caught` or `balls/dropped`
//! publish, or as one forward a peer accepted with `202` (from then on the
//! ball is that peer's). A forward already under way when shutdown starts is
//! finished (bounded by the forward timeout) rather than abandoned, because
//! abandoning it could leave the ball with both workers.
//!
//! A forward carries this worker's give-up deadline (see
//! [`crate::proto::ball`]): a peer that gets to it later (it was frozen, or
//! the link was cut and TCP resent the request) refuses it, so a ball this
//! worker reported as `forward-failed` is not also played there. After the
//! forward timeout the answer is awaited [`SETTLE`] longer, measured from
//! when this worker notices the timeout: if this worker was the one frozen,
//! a `202` that arrived meanwhile is already in its socket and is read,
//! instead of the ball being reported while the peer plays it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ball::Limits;
use super::client::ForwardClient;
use super::metrics::Metrics;
use super::peers::PeerSet;
use crate::mqtt::MqttLink;
use crate::proto::ball::Deadline;
use crate::proto::{Ball, BallCaught, BallDropped, DropReason, Hop, PROTO_VERSION};

/// How long an answer is still awaited once the forward timeout has fired.
pub const SETTLE: Duration = Duration::from_millis(250);

/// Who this worker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub node: String,
}

/// Everything a ball's handling needs, shared by the HTTP handlers and the
/// ball tasks.
#[derive(Debug)]
pub struct Game {
    pub id: Identity,
    pub limits: Limits,
    pub peers: PeerSet,
    pub client: ForwardClient,
    pub link: MqttLink,
    pub metrics: Metrics,
    pub caught_topic: String,
    pub dropped_topic: String,
    pub forward_attempts: u32,
    pub forward_timeout: Duration,
    pub max_in_flight: i64,
    /// Bounds concurrent forward requests (and so sockets) under overload.
    pub forward_permits: tokio::sync::Semaphore,
    /// Cancelled when shutdown starts: no new balls, no new forward attempts.
    pub shutdown: CancellationToken,
    /// Every ball task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// How a ball left this worker's hands, when it did not go to a peer.
enum Ending {
    Caught,
    Dropped(DropReason, Option<String>),
}

impl Game {
    /// Takes responsibility for an accepted ball (the caller answers `202`).
    pub fn accept(self: &Arc<Self>, ball: Ball, received: Instant) {
        self.metrics.received.inc();
        let in_flight = self.metrics.in_flight.inc() + 1;
        if in_flight > self.max_in_flight {
            let detail = format!("{in_flight} balls in flight, limit {}", self.max_in_flight);
            self.finish(
                self.stamp(ball),
                Ending::Dropped(DropReason::Overloaded, Some(detail)),
                received,
            );
            return;
        }
        let game = self.clone();
        self.tasks
            .spawn(async move { game.play(ball, received).await });
    }

    fn stamp(&self, mut ball: Ball) -> Ball {
        ball.hops.push(Hop {
            worker: self.id.name.clone(),
            node: self.id.node.clone(),
            at_ms: crate::now_ms(),
        });
        ball
    }

    async fn play(self: Arc<Self>, ball: Ball, received: Instant) {
        let mut ball = self.stamp(ball);
        let ending = if ball.target == self.id.name {
            Ending::Caught
        } else if self.shutdown.is_cancelled() {
            Ending::Dropped(DropReason::Shutdown, None)
        } else if ball.ttl == 0 {
            Ending::Dropped(DropReason::TtlSpent, None)
        } else if ball.hops.len() > self.limits.max_hops {
            let detail = format!("hop trail full ({} hops)", ball.hops.len());
            Ending::Dropped(DropReason::TtlSpent, Some(detail))
        } else {
            ball.ttl -= 1;
            match self.forward(&ball).await {
                Ok(()) => {
                    self.metrics.forwarded.inc();
                    self.done(received);
                    return;
                }
                Err((reason, detail)) => Ending::Dropped(reason, detail),
            }
        };
        self.finish(ball, ending, received);
    }

    /// Publishes the ball's end and records it.
    fn finish(&self, ball: Ball, ending: Ending, received: Instant) {
        let now = crate::now_ms();
        let (topic, payload) = match ending {
            Ending::Caught => {
                self.metrics.caught.inc();
                let msg = BallCaught {
                    v: PROTO_VERSION,
                    ball,
                    worker: self.id.name.clone(),
                    node: self.id.node.clone(),
                    caught_ms: now,
                };
                (&self.caught_topic, serde_json::to_vec(&msg))
            }
            Ending::Dropped(reason, detail) => {
                self.metrics.dropped(reason);
                tracing::debug!(id = %ball.id, reason = reason.as_str(), ?detail, "ball dropped");
                let msg = BallDropped {
                    v: PROTO_VERSION,
                    ball,
                    worker: self.id.name.clone(),
                    node: self.id.node.clone(),
                    dropped_ms: now,
                    reason,
                    detail,
                };
                (&self.dropped_topic, serde_json::to_vec(&msg))
            }
        };
        match payload {
            Ok(p) => self.link.publish(topic.clone(), p, false),
            Err(e) => tracing::error!(error = %e, "cannot encode a ball outcome"),
        }
        self.done(received);
    }

    fn done(&self, received: Instant) {
        self.metrics.in_flight.dec();
        self.metrics
            .hop_latency
            .observe(received.elapsed().as_secs_f64());
    }

    /// Forwards to random live peers until one answers `202`, at most
    /// `forward_attempts` of them. Only failures where the peer certainly did
    /// not take the ball (refused connection, error status) move on to
    /// another peer.
    async fn forward(&self, ball: &Ball) -> Result<(), (DropReason, Option<String>)> {
        let body: Bytes = serde_json::to_vec(ball)
            .map_err(|e| (DropReason::ForwardFailed, Some(e.to_string())))?
            .into();
        let mut tried: Vec<Arc<str>> = Vec::new();
        let mut last_error = None;
        for _ in 0..self.forward_attempts.max(1) {
            let Ok(_permit) = self.forward_permits.acquire().await else {
                return Err((DropReason::Shutdown, last_error));
            };
            if self.shutdown.is_cancelled() {
                return Err((DropReason::Shutdown, last_error));
            }
            let Some(peer) = self.peers.pick(&tried) else {
                break;
            };
            let deadline = Deadline::for_give_up(self.forward_timeout);
            let request = self
                .client
                .post_ball(&peer.balls_uri, body.clone(), deadline);
            let (error, retry) = match answer_within(request, self.forward_timeout).await {
                None => {
                    self.peers.mark_dead(&peer.base);
                    // The peer may have taken the ball before the deadline:
                    // trying another peer could leave two copies in play.
                    let t = self.forward_timeout;
                    (
                        format!("{}: no answer within {t:?} (outcome unknown)", peer.base),
                        false,
                    )
                }
                Some(Ok(StatusCode::ACCEPTED)) => return Ok(()),
                Some(Ok(status)) => {
                    // A 4xx is about the ball, not the peer: keep the peer.
                    if !status.is_client_error() {
                        self.peers.mark_dead(&peer.base);
                    }
                    (format!("{} answered {status}", peer.base), true)
                }
                Some(Err(e)) => {
                    self.peers.mark_dead(&peer.base);
                    // After a timeout the peer may have taken the ball: trying
                    // another peer could leave two copies in play, so stop.
                    let retry = !e.is_timeout();
                    let what = if retry { "" } else { " (outcome unknown)" };
                    (format!("{}: {}{what}", peer.base, error_chain(&e)), retry)
                }
            };
            tracing::debug!(id = %ball.id, %error, "forward failed");
            self.metrics.forward_failures.inc();
            last_error = Some(error);
            tried.push(peer.base);
            if !retry {
                return Err((DropReason::ForwardFailed, last_error));
            }
        }
        if tried.is_empty() {
            Err((DropReason::NoLivePeer, None))
        } else {
            Err((DropReason::ForwardFailed, last_error))
        }
    }
}

/// Awaits `answer` for `limit`, then [`SETTLE`] more; `None` if it never came.
async fn answer_within<F: std::future::Future>(answer: F, limit: Duration) -> Option<F::Output> {
    tokio::pin!(answer);
    if let Ok(out) = tokio::time::timeout(limit, &mut answer).await {
        return Some(out);
    }
    tokio::time::timeout(SETTLE, answer).await.ok()
}

/// An error with its sources, `: `-separated (reqwest's own Display omits them).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
