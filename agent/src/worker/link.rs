//! The worker's MQTT seam: publish ball outcomes, report the broker connection,
//! birth/Last Will on the worker's status topic, flush on shutdown.
//!
//! Interim: a small rumqttc client with the same API as the node engineer's
//! `mqtt::MqttLink` (start / publish / subscribe / connected / shutdown), to
//! be replaced by it once it lands. It has no store-and-forward across
//! reconnects beyond rumqttc's own request queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, Publish, QoS};
use std::sync::Mutex;

use tokio::sync::{mpsc, watch};

use crate::proto::{STATUS_OFFLINE, STATUS_ONLINE};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub keepalive: Duration,
    pub status_topic: String,
    pub buffer_capacity: usize,
}

/// Why a broker URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid broker URL {url:?}: expected mqtt://host:port")]
pub struct BrokerUrlError {
    pub url: String,
}

/// Splits `mqtt://host:port` into host and port.
pub fn parse_broker(url: &str) -> Result<(String, u16), BrokerUrlError> {
    let err = || BrokerUrlError { url: url.into() };
    let rest = url.strip_prefix("mqtt://").ok_or_else(err)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(err)?;
    let port = port.parse().map_err(|_| err())?;
    if host.is_empty() {
        return Err(err());
    }
    Ok((host.to_string(), port))
}

type Subscribers = Arc<Mutex<Vec<(String, mpsc::Sender<Publish>)>>>;

/// A running MQTT client (cheap to clone).
#[derive(Clone)]
pub struct MqttLink {
    client: AsyncClient,
    status_topic: String,
    connected: watch::Receiver<bool>,
    sent: Arc<AtomicU64>,
    acked: watch::Receiver<u64>,
    subscribers: Subscribers,
    stop: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for MqttLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttLink")
            .field("status_topic", &self.status_topic)
            .finish()
    }
}

impl MqttLink {
    /// Spawns the event loop: connects, publishes the birth on every connack,
    /// re-subscribes, reconnects after errors.
    pub fn start(cfg: LinkConfig) -> MqttLink {
        let mut opts = MqttOptions::new(cfg.client_id, cfg.host, cfg.port);
        opts.set_keep_alive(cfg.keepalive);
        opts.set_last_will(LastWill::new(
            cfg.status_topic.clone(),
            STATUS_OFFLINE,
            QoS::AtLeastOnce,
            true,
        ));
        let (client, mut el) = AsyncClient::new(opts, cfg.buffer_capacity.max(16));
        let (conn_tx, connected) = watch::channel(false);
        let (ack_tx, acked) = watch::channel(0u64);
        let subscribers: Subscribers = Arc::default();
        let stop = tokio_util::sync::CancellationToken::new();
        let link = MqttLink {
            client,
            status_topic: cfg.status_topic,
            connected,
            sent: Arc::default(),
            acked,
            subscribers,
            stop,
        };
        let l = link.clone();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = l.stop.cancelled() => return,
                    ev = el.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        conn_tx.send_replace(true);
                        l.on_connack().await;
                    }
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        ack_tx.send_modify(|n| *n += 1);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => l.dispatch(p).await,
                    Ok(_) => {}
                    Err(e) => {
                        conn_tx.send_replace(false);
                        tracing::warn!(error = %e, "MQTT connection lost, reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        link
    }

    async fn on_connack(&self) {
        self.publish(self.status_topic.clone(), STATUS_ONLINE, true);
        let filters: Vec<String> = self.lock_subs().iter().map(|(f, _)| f.clone()).collect();
        for filter in filters {
            let _ = self.client.try_subscribe(filter, QoS::AtLeastOnce);
        }
    }

    async fn dispatch(&self, p: Publish) {
        let targets: Vec<mpsc::Sender<Publish>> = self
            .lock_subs()
            .iter()
            .filter(|(f, _)| rumqttc::matches(&p.topic, f))
            .map(|(_, tx)| tx.clone())
            .collect();
        for tx in targets {
            let _ = tx.send(p.clone()).await;
        }
    }

    fn lock_subs(&self) -> std::sync::MutexGuard<'_, Vec<(String, mpsc::Sender<Publish>)>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// QoS 1, never blocks; a full request queue drops (and logs) the message.
    pub fn publish(&self, topic: impl Into<String>, payload: impl Into<Vec<u8>>, retain: bool) {
        let topic = topic.into();
        match self
            .client
            .try_publish(topic.clone(), QoS::AtLeastOnce, retain, payload.into())
        {
            Ok(()) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(%topic, error = %e, "MQTT publish queue full, message dropped")
            }
        }
    }

    /// QoS 1 subscription, re-subscribed after every reconnect.
    pub fn subscribe(&self, filter: impl Into<String>) -> mpsc::Receiver<Publish> {
        let filter = filter.into();
        let (tx, rx) = mpsc::channel(4096);
        self.lock_subs().push((filter.clone(), tx));
        let _ = self.client.try_subscribe(filter, QoS::AtLeastOnce);
        rx
    }

    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Publishes retained `offline`, waits (bounded) until every publish is
    /// acknowledged, disconnects.
    pub async fn shutdown(&self, timeout: Duration) {
        self.publish(self.status_topic.clone(), STATUS_OFFLINE, true);
        let sent = self.sent.load(Ordering::Relaxed);
        let mut acked = self.acked.clone();
        let timed_out = tokio::time::timeout(timeout, acked.wait_for(|n| *n >= sent))
            .await
            .is_err();
        if timed_out {
            tracing::warn!(?timeout, "MQTT flush timed out at shutdown");
        }
        let _ = self.client.disconnect().await;
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883)
        );
        assert!(parse_broker("http://x:1").is_err());
        assert!(parse_broker("mqtt://x").is_err());
    }
}
