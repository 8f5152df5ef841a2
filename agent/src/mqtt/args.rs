//! The MQTT flags both agent roles share, flattened into their arguments.

use std::path::PathBuf;
use std::time::Duration;

use super::{BrokerUrl, LinkConfig, MqttError, topic_segment};
use crate::proto::Topics;

/// Environment variable holding the MQTT password (when no password file is given).
pub const PASSWORD_ENV: &str = "RACKPONG_MQTT_PASSWORD";

/// MQTT connection flags (`#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub struct MqttArgs {
    /// MQTT broker: mqtt://host:port (plain) or mqtts://host:port (TLS).
    #[arg(long, env = "RACKPONG_BROKER", default_value = "mqtt://127.0.0.1:1883")]
    pub broker: BrokerUrl,

    /// Rack name: topics live under `rackpong/<rack>/`.
    #[arg(long, env = "RACKPONG_RACK", default_value = "rack", value_parser = topic_segment)]
    pub rack: String,

    /// MQTT keepalive, whole seconds (e.g. "5s"); the broker announces this
    /// agent `offline` (Last Will) after 1.5 × keepalive of silence. Note:
    /// mosquitto 2.0 checks keepalives only every few seconds (measured on
    /// 2.0.11: the Last Will came 7.3–7.6 s after a freeze at keepalive 2 s
    /// and at 5 s), so the controller detects a lost node from health
    /// staleness (no sample for k × the node's interval) instead.
    #[arg(long, env = "RACKPONG_MQTT_KEEPALIVE", default_value = "5s", value_parser = parse_keepalive)]
    pub mqtt_keepalive: Duration,

    /// MQTT username.
    #[arg(long, env = "RACKPONG_MQTT_USERNAME")]
    pub mqtt_username: Option<String>,

    /// File holding the MQTT password (trailing newline ignored). Without it
    /// the password is read from the environment variable RACKPONG_MQTT_PASSWORD.
    /// There is deliberately no password flag.
    #[arg(long, env = "RACKPONG_MQTT_PASSWORD_FILE")]
    pub mqtt_password_file: Option<PathBuf>,

    /// PEM file of the CA certificate(s) to trust for mqtts:// (default: the system's roots).
    #[arg(long, env = "RACKPONG_MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<PathBuf>,

    /// Store-and-forward bound: messages kept while the broker is unreachable;
    /// past it the oldest are dropped and counted (the default holds 33
    /// minutes of health samples at the default 2 s interval).
    #[arg(long, env = "RACKPONG_MQTT_BUFFER", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub mqtt_buffer: u32,
}

fn parse_keepalive(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.subsec_nanos() != 0 || d < Duration::from_secs(1) || d.as_secs() > u64::from(u16::MAX) {
        return Err("must be whole seconds between 1s and 65535s".into());
    }
    Ok(d)
}

impl MqttArgs {
    /// The link settings for one client, reading the password file or env
    /// and checking the CA file now, so bad settings fail at start.
    pub fn link_config(
        &self,
        client_id: &str,
        status_topic: String,
    ) -> Result<LinkConfig, MqttError> {
        let password = self.password()?;
        if password.is_some() && self.mqtt_username.is_none() {
            return Err(MqttError::PasswordWithoutUser);
        }
        if self.broker.tls {
            super::tls::client_config(self.mqtt_ca_file.as_deref())?;
        }
        Ok(LinkConfig {
            broker: self.broker.clone(),
            client_id: client_id.to_string(),
            keepalive: self.mqtt_keepalive,
            username: self.mqtt_username.clone(),
            password,
            ca_file: self.mqtt_ca_file.clone(),
            status_topic,
            buffer_capacity: self.mqtt_buffer as usize,
        })
    }

    /// The topic layout of `--rack`.
    pub fn topics(&self) -> Topics {
        Topics::new(&self.rack)
    }

    fn password(&self) -> Result<Option<String>, MqttError> {
        if let Some(path) = &self.mqtt_password_file {
            let raw = std::fs::read_to_string(path).map_err(|source| MqttError::ReadFile {
                what: "MQTT password file",
                path: path.clone(),
                source,
            })?;
            return Ok(Some(raw.trim_end_matches(['\r', '\n']).to_string()));
        }
        Ok(std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        mqtt: MqttArgs,
    }

    #[test]
    fn defaults_and_keepalive_validation() {
        let t = T::try_parse_from(["t"]).unwrap();
        assert_eq!(t.mqtt.broker.port, 1883);
        assert_eq!(t.mqtt.mqtt_keepalive, Duration::from_secs(5));
        assert_eq!(t.mqtt.topics().root(), "rackpong/rack");
        for bad in ["500ms", "1500ms", "0s", "100000s", "soon"] {
            assert!(
                T::try_parse_from(["t", "--mqtt-keepalive", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(T::try_parse_from(["t", "--mqtt-buffer", "0"]).is_err());
        assert!(T::try_parse_from(["t", "--rack", "a/b"]).is_err());
    }

    #[test]
    fn password_comes_from_a_file_and_needs_a_username() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let pw = file.to_str().unwrap();
        let t = T::try_parse_from(["t", "--mqtt-password-file", pw]).unwrap();
        assert!(matches!(
            t.mqtt.link_config("c", "s".into()),
            Err(MqttError::PasswordWithoutUser)
        ));
        let t =
            T::try_parse_from(["t", "--mqtt-password-file", pw, "--mqtt-username", "u"]).unwrap();
        let cfg = t.mqtt.link_config("c", "s".into()).unwrap();
        assert_eq!(cfg.password.as_deref(), Some("s3cret"));
        let missing = dir.path().join("nope");
        let t =
            T::try_parse_from(["t", "--mqtt-password-file", missing.to_str().unwrap()]).unwrap();
        let err = t.mqtt.link_config("c", "s".into()).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn a_bad_ca_file_fails_at_start_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let t = T::try_parse_from([
            "t",
            "--broker",
            "mqtts://h",
            "--mqtt-ca-file",
            ca.to_str().unwrap(),
        ])
        .unwrap();
        let err = t.mqtt.link_config("c", "s".into()).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
    }
}
