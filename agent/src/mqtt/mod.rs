//! The MQTT link every agent role talks through: Last Will and birth on the
//! status topic, reconnect with exponential backoff and jitter, re-subscribe,
//! a bounded store-and-forward queue (messages published while the broker is
//! unreachable go out later, in order, once each), TLS (rustls + ring) and
//! username/password. Also the MQTT flags both roles share ([`MqttArgs`]).

mod args;
mod backoff;
mod conn;
mod filters;
mod link;
#[cfg(feature = "broker")]
mod local;
mod outbox;
mod task;
mod tls;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use args::MqttArgs;
pub use backoff::Backoff;
pub use link::{LinkCounters, MqttLink};
/// The rustls client config of `mqtts://` (ring provider, `--mqtt-ca-file` or
/// system roots), for other MQTT clients of the same broker.
pub use tls::client_config as tls_client_config;

/// Why MQTT settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error(
        "invalid broker URL {url:?}: {reason} (expected mqtt://host:port or mqtts://host:port)"
    )]
    BrokerUrl { url: String, reason: &'static str },
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Tls { path: String, reason: String },
    #[error("a password needs --mqtt-username")]
    PasswordWithoutUser,
    #[error("{0}")]
    Invalid(String),
}

/// Where the broker is: `mqtt://host:port` (plain TCP, default port 1883) or
/// `mqtts://host:port` (TLS, default port 8883).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl FromStr for BrokerUrl {
    type Err = MqttError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let bad = |reason| MqttError::BrokerUrl {
            url: url.to_string(),
            reason,
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err(bad("unknown scheme"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = split_host_port(rest).ok_or_else(|| bad("bad port"))?;
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return Err(bad("bad host"));
        }
        let port = port.unwrap_or(if tls { 8883 } else { 1883 });
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(Self {
            tls,
            host: host.to_string(),
            port,
        })
    }
}

/// Splits `host[:port]`, `[v6][:port]`; `None` when the port is not a number.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(v6) = s.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        return match rest.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((host, p)) => Some((host, Some(p.parse().ok()?))),
        None => Some((s, None)),
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Everything [`MqttLink::start`] needs.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub broker: BrokerUrl,
    pub client_id: String,
    /// MQTT keepalive (whole seconds, at least 1 s); the broker fires the Last
    /// Will after 1.5 × this much silence.
    pub keepalive: Duration,
    pub username: Option<String>,
    /// Read by the caller from a file or the environment, never a flag.
    pub password: Option<String>,
    /// PEM file of the CA(s) to trust for `mqtts`; the system roots otherwise.
    pub ca_file: Option<PathBuf>,
    /// Retained `online` on every connect; retained `offline` as Last Will and
    /// on [`MqttLink::shutdown`].
    pub status_topic: String,
    /// Store-and-forward bound in messages (at least 1).
    pub buffer_capacity: usize,
}

/// Checks that `s` can be one level of a topic (a rack, node or worker name).
pub fn topic_segment(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| matches!(c, '/' | '+' | '#') || c.is_control())
    {
        return Err(format!(
            "must not contain {c:?} (it is an MQTT topic level)"
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_default_ports() {
        let u: BrokerUrl = "mqtt://pi1.local".parse().unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "pi1.local", 1883));
        let u: BrokerUrl = "mqtts://10.0.0.2:8884/".parse().unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "10.0.0.2", 8884));
        let u: BrokerUrl = "mqtt://[::1]:1999".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1999));
        assert_eq!(u.to_string(), "mqtt://[::1]:1999");
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://h:x",
            "mqtt://h:0",
            "mqtt://u@h",
            "h:1883",
        ] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_segments_reject_wildcards_and_separators() {
        assert_eq!(topic_segment("pi-1").unwrap(), "pi-1");
        for bad in ["", "a/b", "a+", "#", "a\nb"] {
            assert!(topic_segment(bad).is_err(), "{bad:?}");
        }
    }
}
