//! The in-process connection of an [`MqttLink`](super::MqttLink) into the
//! embedded broker (rumqttd's `Broker::link`): no socket, so no Nagle delay
//! and no keepalive — what the controller uses for its own subscriptions
//! and commands when it runs the broker itself (demo, tests). Messages go
//! through the router at QoS 0: in-process nothing is lost on the way, so a
//! publish counts as acknowledged once the router has it.
//!
//! rumqttd disconnects a link that publishes to a topic no filter matches,
//! so before the first publish to such a topic the link subscribes to the
//! exact topic itself; the echoes of those internal filters are not routed.

use std::sync::Arc;

use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish};
use tokio::sync::mpsc;

use super::conn::Conn;
use super::link::{Inner, lock};
use super::outbox::Entry;

/// What the link asks of its in-process connection.
pub(crate) enum Request {
    Publish(Entry),
    Subscribe(String),
    Unsubscribe(String),
    Disconnect,
}

/// Runs the in-process connection until it is disconnected or stopped.
pub(super) async fn run(inner: Arc<Inner>, mut tx: LinkTx, mut rx: LinkRx) {
    let (req_tx, mut req_rx) = mpsc::unbounded_channel();
    let mut filters = Filters::default();
    inner.on_connack(&Conn::Local(req_tx));
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => break,
            req = req_rx.recv() => match req {
                Some(Request::Publish(e)) => {
                    filters.cover(&mut tx, &e.topic);
                    let p = Publish::new(e.topic.into_bytes(), e.payload, e.retain);
                    if let Err(err) = tx.send(Packet::Publish(p, None)).await {
                        tracing::error!(error = %err, "in-process broker link closed");
                        break;
                    }
                    inner.on_puback();
                }
                Some(Request::Subscribe(f)) => filters.subscribe(&mut tx, f),
                Some(Request::Unsubscribe(f)) => filters.unsubscribe(&mut tx, &f),
                Some(Request::Disconnect) | None => break,
            },
            n = rx.next() => match n {
                Ok(Some(Notification::Forward(f))) => inner.route_local(&f.publish),
                Ok(Some(Notification::Unschedule)) => {
                    // The router paused us (our buffer filled up): resume.
                    if rx.wake().await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(error = %err, "in-process broker link closed");
                    break;
                }
            },
        }
    }
    lock(&inner.state).client = None;
    inner.connected.send_replace(false);
}

/// The link's filters at the router: the subscribers' own, and exact
/// topics subscribed only so that a publish to them has a matching filter.
#[derive(Default)]
struct Filters {
    wanted: Vec<String>,
    internal: Vec<String>,
}

impl Filters {
    /// Makes sure a filter matches `topic` before it is published to.
    fn cover(&mut self, tx: &mut LinkTx, topic: &str) {
        let all = self.wanted.iter().chain(&self.internal);
        if all.clone().any(|f| rumqttc::matches(topic, f)) {
            return;
        }
        request(tx.subscribe(topic), topic);
        self.internal.push(topic.to_string());
    }

    /// A subscriber's filter; internal filters it covers are dropped, or
    /// their messages would arrive twice (once per matching filter).
    fn subscribe(&mut self, tx: &mut LinkTx, filter: String) {
        request(tx.subscribe(filter.as_str()), &filter);
        let (covered, kept) = std::mem::take(&mut self.internal)
            .into_iter()
            .partition(|t| rumqttc::matches(t, &filter));
        self.internal = kept;
        for t in covered {
            request(tx.unsubscribe(t.as_str()), &t);
        }
        self.wanted.push(filter);
    }

    /// A filter another one now covers (see `mqtt::filters`).
    fn unsubscribe(&mut self, tx: &mut LinkTx, filter: &str) {
        self.wanted.retain(|f| f != filter);
        request(tx.unsubscribe(filter), filter);
    }
}

fn request<T, E: std::fmt::Display>(r: Result<T, E>, filter: &str) {
    if let Err(e) = r {
        tracing::error!(%filter, error = %e, "in-process (un)subscribe failed");
    }
}
