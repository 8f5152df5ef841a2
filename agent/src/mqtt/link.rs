//! [`MqttLink`]: one task owning the broker connection. Every connection
//! attempt gets a fresh rumqttc event loop with a clean session, so rumqttc
//! never replays anything by itself; the [`Outbox`] is the single source of
//! retransmission, which is what keeps messages in order and sent once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rumqttc::{ConnectionError, Publish};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::LinkConfig;
use super::conn::Conn;
use super::filters;
use super::outbox::{Entry, Outbox};
use crate::proto::health::BufferStats;
use crate::proto::{STATUS_OFFLINE, STATUS_ONLINE};

/// Messages handed to one connection before their PUBACKs come back.
pub(super) const WINDOW: usize = 16;
/// Queue of each subscription's receiver; a full one drops (and counts) messages.
const SUBSCRIPTION_QUEUE: usize = 256;

/// Cheap-to-clone handle on the link task.
#[derive(Clone)]
pub struct MqttLink {
    inner: Arc<Inner>,
}

/// Counters of the link since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Successful connects (CONNACK), the first one included.
    pub connects: u64,
    /// Connection attempts that failed or connections that dropped.
    pub connection_failures: u64,
    /// Incoming messages dropped because a subscriber's queue was full.
    pub inbound_dropped: u64,
    /// Messages the broker acknowledged (birth and `offline` not included).
    pub published: u64,
}

pub(super) struct Inner {
    pub(super) cfg: LinkConfig,
    pub(super) state: Mutex<State>,
    subs: Mutex<Vec<Subscription>>,
    pub(super) connected: watch::Sender<bool>,
    /// Bumped on every ack, connect and disconnect: what `shutdown` waits on.
    progress: watch::Sender<u64>,
    pub(super) stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    connects: AtomicU64,
    failures: AtomicU64,
    inbound_dropped: AtomicU64,
    published: AtomicU64,
}

pub(super) struct State {
    outbox: Outbox,
    /// The current connection's request handle; `None` while disconnected.
    pub(super) client: Option<Conn>,
    offline_acked: bool,
}

struct Subscription {
    filter: String,
    tx: mpsc::Sender<Publish>,
}

impl MqttLink {
    /// Spawns the link task (needs a tokio runtime): connect, reconnect with
    /// exponential backoff and jitter, birth on every CONNACK, re-subscribe,
    /// drain the queue in order.
    pub fn start(cfg: LinkConfig) -> MqttLink {
        let inner = Self::inner(cfg);
        let handle = tokio::spawn(super::task::run(inner.clone()));
        *lock(&inner.task) = Some(handle);
        MqttLink { inner }
    }

    fn inner(cfg: LinkConfig) -> Arc<Inner> {
        Arc::new(Inner {
            state: Mutex::new(State {
                outbox: Outbox::new(cfg.buffer_capacity),
                client: None,
                offline_acked: false,
            }),
            cfg,
            subs: Mutex::new(Vec::new()),
            connected: watch::Sender::new(false),
            progress: watch::Sender::new(0),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
            connects: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            inbound_dropped: AtomicU64::new(0),
            published: AtomicU64::new(0),
        })
    }

    /// A link over an in-process connection into the embedded broker
    /// ([`crate::broker::EmbeddedBroker::mqtt_link`]): the same queue,
    /// birth, subscriptions and shutdown, without a socket.
    #[cfg(feature = "broker")]
    pub fn in_process(
        cfg: LinkConfig,
        link: (rumqttd::local::LinkTx, rumqttd::local::LinkRx),
    ) -> MqttLink {
        let inner = Self::inner(cfg);
        let handle = tokio::spawn(super::local::run(inner.clone(), link.0, link.1));
        *lock(&inner.task) = Some(handle);
        MqttLink { inner }
    }

    /// Publishes at QoS 1 through the store-and-forward queue. Never blocks,
    /// never fails: while disconnected the message waits (past the bound the
    /// oldest unsent message is dropped and counted) and goes out in order
    /// after reconnect. A topic that is not a valid MQTT topic is logged and dropped.
    pub fn publish(&self, topic: impl Into<String>, payload: impl Into<Vec<u8>>, retain: bool) {
        let topic = topic.into();
        if !rumqttc::valid_topic(&topic) || topic.is_empty() {
            tracing::error!(%topic, "not a valid MQTT topic, message dropped");
            return;
        }
        let entry = Entry {
            topic,
            payload: payload.into(),
            retain,
            session_only: false,
        };
        let mut st = lock(&self.inner.state);
        if st.outbox.push(entry) {
            let stats = st.outbox.stats();
            tracing::debug!(
                dropped = stats.dropped,
                capacity = stats.capacity,
                "store-and-forward buffer full, oldest message dropped"
            );
        }
        fill(&mut st);
    }

    /// Subscribes at QoS 1; re-subscribed after every reconnect. Messages
    /// matching `filter` arrive on the receiver.
    pub fn subscribe(&self, filter: impl Into<String>) -> mpsc::Receiver<Publish> {
        let filter = filter.into();
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        if !rumqttc::valid_filter(&filter) {
            tracing::error!(%filter, "not a valid MQTT topic filter, nothing will arrive");
            return rx;
        }
        let st = lock(&self.inner.state);
        // Registered before the SUBSCRIBE goes out: the broker answers with the
        // retained messages at once, and the link task routes them only to
        // registered subscriptions (it does not take the state lock).
        let (before, after) = {
            let mut subs = lock(&self.inner.subs);
            let before = at_broker(&subs);
            subs.push(Subscription { filter, tx });
            (before, at_broker(&subs))
        };
        if let Some(client) = &st.client {
            client.resubscribe(&before, &after);
        }
        rx
    }

    /// `true` while connected to the broker.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.inner.connected.subscribe()
    }

    pub fn buffer_stats(&self) -> BufferStats {
        lock(&self.inner.state).outbox.stats()
    }

    pub fn counters(&self) -> LinkCounters {
        LinkCounters {
            connects: self.inner.connects.load(Ordering::Relaxed),
            connection_failures: self.inner.failures.load(Ordering::Relaxed),
            inbound_dropped: self.inner.inbound_dropped.load(Ordering::Relaxed),
            published: self.inner.published.load(Ordering::Relaxed),
        }
    }

    /// The status topic this link announces itself on.
    pub fn status_topic(&self) -> &str {
        &self.inner.cfg.status_topic
    }

    /// Clean shutdown: flushes what is queued (for at most half of
    /// `timeout`), publishes retained `offline` on the status topic, sends
    /// DISCONNECT and stops the task. Messages still queued are lost (logged).
    pub async fn shutdown(&self, timeout: Duration) {
        let inner = &self.inner;
        let deadline = Instant::now() + timeout;
        let mut progress = inner.progress.subscribe();
        let flushed = |inner: &Inner| {
            let st = lock(&inner.state);
            st.outbox.is_empty() || st.client.is_none()
        };
        wait_until(&mut progress, Instant::now() + timeout / 2, || {
            flushed(inner)
        })
        .await;
        let online = {
            let mut st = lock(&inner.state);
            st.offline_acked = false;
            if st.client.is_some() {
                st.outbox.push_next(inner.status_entry(STATUS_OFFLINE));
                fill(&mut st);
            }
            st.client.is_some()
        };
        if online {
            let done = |i: &Inner| {
                let st = lock(&i.state);
                st.offline_acked || st.client.is_none()
            };
            wait_until(&mut progress, deadline, || done(inner)).await;
            if let Some(c) = &lock(&inner.state).client {
                c.try_disconnect();
            }
        }
        let left = lock(&inner.state).outbox.stats().queued;
        if left > 0 {
            tracing::warn!(left, "shutting down with undelivered MQTT messages");
        }
        if !online {
            inner.stop.cancel();
        }
        let task = lock(&inner.task).take();
        if let Some(mut task) = task
            && tokio::time::timeout_at(deadline, &mut task).await.is_err()
        {
            inner.stop.cancel();
            let _ = task.await;
        }
        inner.stop.cancel();
    }
}

impl std::fmt::Debug for MqttLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttLink")
            .field("broker", &self.inner.cfg.broker.to_string())
            .field("client_id", &self.inner.cfg.client_id)
            .finish()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands queued messages to the current connection, up to the window.
fn fill(st: &mut State) {
    let Some(client) = st.client.clone() else {
        return;
    };
    while let Some(e) = st.outbox.next_unsent(WINDOW) {
        if client.try_publish(e).is_err() {
            st.outbox.unsend_last();
            break;
        }
    }
}

async fn wait_until(progress: &mut watch::Receiver<u64>, until: Instant, cond: impl Fn() -> bool) {
    while !cond() {
        match tokio::time::timeout_at(until, progress.changed()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}

impl Inner {
    fn status_entry(&self, status: &str) -> Entry {
        Entry {
            topic: self.cfg.status_topic.clone(),
            payload: status.as_bytes().to_vec(),
            retain: true,
            session_only: true,
        }
    }

    pub(super) fn on_connack(&self, client: &Conn) {
        let mut st = lock(&self.state);
        // A new session: nothing is subscribed yet.
        client.resubscribe(&[], &at_broker(&lock(&self.subs)));
        st.outbox.push_next(self.status_entry(STATUS_ONLINE));
        st.client = Some(client.clone());
        fill(&mut st);
        let queued = st.outbox.stats().queued;
        drop(st);
        let n = self.connects.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(broker = %self.cfg.broker, connects = n, queued, "connected to MQTT broker");
        self.connected.send_replace(true);
        self.progress.send_modify(|p| *p += 1);
    }

    pub(super) fn on_puback(&self) {
        let mut st = lock(&self.state);
        match st.outbox.acked() {
            Some(e) if e.session_only => {
                // The birth or the shutdown's `offline`.
                st.offline_acked |= e.payload == STATUS_OFFLINE.as_bytes();
            }
            Some(_) => {
                self.published.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
        fill(&mut st);
        drop(st);
        self.progress.send_modify(|p| *p += 1);
    }

    pub(super) fn on_lost(&self, error: &ConnectionError) {
        let was_connected = {
            let mut st = lock(&self.state);
            st.outbox.disconnected();
            st.client.take().is_some()
        };
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if was_connected {
            tracing::warn!(broker = %self.cfg.broker, %error, "lost the MQTT broker; buffering");
        } else {
            tracing::warn!(broker = %self.cfg.broker, %error, failures = n, "cannot reach the MQTT broker");
        }
        self.connected.send_replace(false);
        self.progress.send_modify(|p| *p += 1);
    }

    /// A message from the in-process link, as rumqttc would have delivered it.
    #[cfg(feature = "broker")]
    pub(super) fn route_local(&self, p: &rumqttd::protocol::Publish) {
        let Ok(topic) = std::str::from_utf8(&p.topic) else {
            tracing::warn!("in-process message with a non-UTF-8 topic ignored");
            return;
        };
        let mut publish = Publish::new(topic, rumqttc::QoS::AtMostOnce, p.payload.to_vec());
        publish.retain = p.retain;
        self.route(publish);
    }

    pub(super) fn route(&self, publish: Publish) {
        let mut subs = lock(&self.subs);
        let mut closed = false;
        for sub in subs
            .iter()
            .filter(|s| rumqttc::matches(&publish.topic, &s.filter))
        {
            match sub.tx.try_send(publish.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => closed = true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.inbound_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(topic = %publish.topic, filter = %sub.filter, "subscriber queue full, message dropped");
                }
            }
        }
        if !closed {
            return;
        }
        // A subscriber went away: forget it, and subscribe again at the
        // broker any filter it covered for the others.
        let before = at_broker(&subs);
        subs.retain(|s| !s.tx.is_closed());
        let after = at_broker(&subs);
        drop(subs);
        if let Some(client) = &lock(&self.state).client {
            client.resubscribe(&before, &after);
        }
    }
}

/// The filters to hold at the broker for these subscriptions.
fn at_broker(subs: &[Subscription]) -> Vec<String> {
    filters::at_broker(subs.iter().map(|s| s.filter.as_str()))
}
