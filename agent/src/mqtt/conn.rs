//! The request handle of one broker connection, TCP (rumqttc) or
//! in-process (rumqttd's local link), and moving its subscriptions.

use rumqttc::{AsyncClient, QoS};
#[cfg(feature = "broker")]
use tokio::sync::mpsc;

use super::filters;
use super::outbox::Entry;

/// The request handle of a connection: a TCP connection through rumqttc, or
/// an in-process link into the embedded broker ([`super::local`]).
#[derive(Clone)]
pub(super) enum Conn {
    Tcp(AsyncClient),
    #[cfg(feature = "broker")]
    Local(mpsc::UnboundedSender<super::local::Request>),
}

impl Conn {
    /// Hands a message to the connection; `Err` when its queue is full or closed.
    pub(super) fn try_publish(&self, e: Entry) -> Result<(), ()> {
        match self {
            Conn::Tcp(c) => c
                .try_publish(e.topic, QoS::AtLeastOnce, e.retain, e.payload)
                .map_err(|_| ()),
            #[cfg(feature = "broker")]
            Conn::Local(tx) => tx.send(super::local::Request::Publish(e)).map_err(|_| ()),
        }
    }

    pub(super) fn try_subscribe(&self, filter: &str) -> Result<(), String> {
        match self {
            Conn::Tcp(c) => c
                .try_subscribe(filter, QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            #[cfg(feature = "broker")]
            Conn::Local(tx) => tx
                .send(super::local::Request::Subscribe(filter.to_string()))
                .map_err(|_| "in-process link closed".to_string()),
        }
    }

    pub(super) fn try_unsubscribe(&self, filter: &str) -> Result<(), String> {
        match self {
            Conn::Tcp(c) => c.try_unsubscribe(filter).map_err(|e| e.to_string()),
            #[cfg(feature = "broker")]
            Conn::Local(tx) => tx
                .send(super::local::Request::Unsubscribe(filter.to_string()))
                .map_err(|_| "in-process link closed".to_string()),
        }
    }

    /// Moves the broker's subscriptions from `before` to `after`.
    pub(super) fn resubscribe(&self, before: &[String], after: &[String]) {
        let (add, drop) = filters::change(before, after);
        for f in add {
            if let Err(e) = self.try_subscribe(&f) {
                tracing::warn!(filter = %f, error = %e, "subscribe request not queued; retried on reconnect");
            }
        }
        for f in drop {
            if let Err(e) = self.try_unsubscribe(&f) {
                tracing::warn!(filter = %f, error = %e, "unsubscribe request not queued");
            }
        }
    }

    pub(super) fn try_disconnect(&self) {
        match self {
            Conn::Tcp(c) => {
                let _ = c.try_disconnect();
            }
            #[cfg(feature = "broker")]
            Conn::Local(tx) => {
                let _ = tx.send(super::local::Request::Disconnect);
            }
        }
    }
}
