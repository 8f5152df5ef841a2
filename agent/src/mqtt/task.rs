//! The link task: one connection after another, each with a fresh rumqttc
//! event loop, paced by the backoff; the events of a connection are handed to
//! [`super::link`]'s state.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS,
    TlsConfiguration, Transport,
};

use super::conn::Conn;
use super::link::{Inner, WINDOW, lock};
use super::{Backoff, LinkConfig, MqttError, tls};
use crate::proto::STATUS_OFFLINE;

/// Room in rumqttc's request channel beyond the window (subscribe, disconnect).
const CHANNEL_SLACK: usize = 256;
/// Largest MQTT packet we send (matches the embedded broker's limit).
const MAX_OUTGOING: usize = 1024 * 1024;
/// Largest MQTT packet we accept. rumqttc drops the whole connection on a
/// bigger one, so this is set well above anything rackpong sends (a command
/// is under 1 KiB): an oversized message arrives and is rejected as a
/// command (`too-large`) instead of costing the connection. Brokers should
/// also bound messages (mosquitto: `message_size_limit`), because a message
/// above even this limit still ends the connection.
pub const MAX_INCOMING: usize = 16 * 1024 * 1024;
/// A connection that stayed up this long resets the reconnect backoff; one
/// that drops sooner (a broker refusing us, a message that kills it) keeps
/// backing off, so nothing can drive a reconnect storm.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

fn options(cfg: &LinkConfig) -> Result<MqttOptions, MqttError> {
    let mut o = MqttOptions::new(&cfg.client_id, &cfg.broker.host, cfg.broker.port);
    // rumqttc panics on sub-second keepalives; MQTT counts whole seconds.
    let keepalive = Duration::from_secs(cfg.keepalive.as_secs().clamp(1, u64::from(u16::MAX)));
    o.set_keep_alive(keepalive)
        // The outbox retransmits; a broker-side session would replay too.
        .set_clean_session(true)
        .set_inflight(WINDOW as u16)
        .set_max_packet_size(MAX_INCOMING, MAX_OUTGOING)
        .set_last_will(LastWill::new(
            &cfg.status_topic,
            STATUS_OFFLINE,
            QoS::AtLeastOnce,
            true,
        ));
    if let Some(user) = &cfg.username {
        o.set_credentials(user, cfg.password.clone().unwrap_or_default());
    }
    if cfg.broker.tls {
        let tls = tls::client_config(cfg.ca_file.as_deref())?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    Ok(o)
}

/// Runs until the link is stopped or disconnects cleanly.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut backoff = Backoff::default();
    // When the link was last known healthy: the outage is measured from here.
    let mut healthy_at = Instant::now();
    loop {
        match options(&inner.cfg) {
            Ok(opts) => {
                let (client, mut eventloop) = AsyncClient::new(opts, WINDOW + CHANNEL_SLACK);
                // Nagle would hold small QoS 1 packets for up to ~40 ms: timing
                // signals (births, Last Wills, caught balls) must leave at once.
                let mut net = eventloop.network_options();
                net.set_tcp_nodelay(true);
                eventloop.set_network_options(net);
                let ended = tokio::select! {
                    e = connection(&inner, &client, &mut eventloop, &mut backoff, &mut healthy_at) => e,
                    _ = inner.stop.cancelled() => return,
                };
                match ended {
                    Some(error) => inner.on_lost(&error),
                    None => {
                        // DISCONNECT sent by `shutdown`.
                        lock(&inner.state).client = None;
                        inner.connected.send_replace(false);
                        return;
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot set up the MQTT connection"),
        }
        let delay = backoff.next_delay_in(healthy_at.elapsed());
        tracing::debug!(?delay, "reconnecting after backoff");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = inner.stop.cancelled() => return,
        }
    }
}

/// Drives one connection until it fails (`Some`) or we disconnected cleanly (`None`).
async fn connection(
    inner: &Inner,
    client: &AsyncClient,
    eventloop: &mut rumqttc::EventLoop,
    backoff: &mut Backoff,
    healthy_at: &mut Instant,
) -> Option<ConnectionError> {
    let mut connected_at = None;
    let mut healthy = false;
    loop {
        let event = eventloop.poll().await;
        if !healthy && connected_at.is_some_and(|at: Instant| at.elapsed() >= HEALTHY_AFTER) {
            backoff.reset();
            healthy = true;
        }
        if healthy {
            // Also on the error that ends it: the outage starts now.
            *healthy_at = Instant::now();
        }
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected_at = Some(Instant::now());
                inner.on_connack(&Conn::Tcp(client.clone()));
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => inner.on_puback(),
            Ok(Event::Incoming(Packet::Publish(p))) => inner.route(p),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return None,
            Ok(_) => {}
            Err(e) => return Some(e),
        }
    }
}
