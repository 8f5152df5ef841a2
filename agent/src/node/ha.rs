//! Home Assistant MQTT discovery: one `sensor` per health value and one
//! `binary_sensor` per throttle flag, all reading the retained health topic,
//! available while the node's status topic says `online`. Sent at start and
//! again whenever Home Assistant announces `online` on `<prefix>/status`.

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::mqtt::MqttLink;
use crate::proto::{STATUS_OFFLINE, STATUS_ONLINE, Topics};

/// (key, name, JSON path in the sample, unit, device_class)
type SensorSpec = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

const SENSORS: &[SensorSpec] = &[
    ("cpu_pct", "CPU", "cpu_pct", Some("%"), None),
    ("load_1", "Load 1m", "load.one", None, None),
    ("load_5", "Load 5m", "load.five", None, None),
    ("load_15", "Load 15m", "load.fifteen", None, None),
    (
        "memory_used",
        "Memory used",
        "memory.used_bytes",
        Some("B"),
        Some("data_size"),
    ),
    (
        "swap_used",
        "Swap used",
        "swap.used_bytes",
        Some("B"),
        Some("data_size"),
    ),
    (
        "disk_used",
        "Root disk used",
        "disk.used_bytes",
        Some("B"),
        Some("data_size"),
    ),
    (
        "net_rx",
        "Network in",
        "net.rx_bps",
        Some("B/s"),
        Some("data_rate"),
    ),
    (
        "net_tx",
        "Network out",
        "net.tx_bps",
        Some("B/s"),
        Some("data_rate"),
    ),
    (
        "temperature",
        "CPU temperature",
        "temp_c",
        Some("°C"),
        Some("temperature"),
    ),
    ("uptime", "Uptime", "uptime_s", Some("s"), Some("duration")),
    (
        "buffer_queued",
        "MQTT buffer queued",
        "buffer.queued",
        None,
        None,
    ),
    (
        "buffer_dropped",
        "MQTT buffer dropped",
        "buffer.dropped",
        None,
        None,
    ),
];

/// Throttle flags (field of `throttle`, name).
const FLAGS: &[(&str, &str)] = &[
    ("under_voltage_now", "Under-voltage"),
    ("freq_capped_now", "Frequency capped"),
    ("throttled_now", "Throttled"),
    ("soft_temp_limit_now", "Soft temperature limit"),
    ("under_voltage_occurred", "Under-voltage since boot"),
    ("freq_capped_occurred", "Frequency capped since boot"),
    ("throttled_occurred", "Throttled since boot"),
    (
        "soft_temp_limit_occurred",
        "Soft temperature limit since boot",
    ),
];

/// Jinja expression that is the value at `path`, or renders `None` (which
/// Home Assistant shows as unknown) when it or a parent is null.
fn template(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    let mut guards = Vec::new();
    for i in 1..=parts.len() {
        guards.push(format!("value_json.{} is not none", parts[..i].join(".")));
    }
    format!(
        "{{{{ value_json.{path} if ({}) else None }}}}",
        guards.join(" and ")
    )
}

/// A name as a Home Assistant object id, injectively: ASCII letters and
/// digits stay, every other byte (`_` included) becomes `_xx` in hex, so
/// `ha-1` (`ha_2d1`) and `ha_1` (`ha_5f1`) never collide, and neither do
/// rack and node across the `_` that joins them.
pub fn escape_id(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// Every discovery message: (topic, retained JSON config).
pub fn discovery_messages(
    prefix: &str,
    topics: &Topics,
    rack: &str,
    node: &str,
) -> Vec<(String, Vec<u8>)> {
    let object = format!("rackpong_{}_{}", escape_id(rack), escape_id(node));
    let device = json!({
        "identifiers": [object],
        "name": format!("rackpong {node}"),
        "manufacturer": "rackpong",
        "model": "rackpong-agent node",
        "sw_version": crate::VERSION,
    });
    let base = |key: &str, name: &str| -> Value {
        json!({
            "name": name,
            "unique_id": format!("{object}_{key}"),
            "state_topic": topics.node_health(node),
            "availability_topic": topics.node_status(node),
            "payload_available": STATUS_ONLINE,
            "payload_not_available": STATUS_OFFLINE,
            "device": device,
        })
    };
    let mut out = Vec::new();
    for (key, name, path, unit, class) in SENSORS {
        let mut cfg = base(key, name);
        cfg["value_template"] = template(path).into();
        cfg["state_class"] = "measurement".into();
        if let Some(u) = unit {
            cfg["unit_of_measurement"] = (*u).into();
        }
        if let Some(c) = class {
            cfg["device_class"] = (*c).into();
        }
        out.push((
            format!("{prefix}/sensor/{object}/{key}/config"),
            cfg.to_string().into_bytes(),
        ));
    }
    for (flag, name) in FLAGS {
        let mut cfg = base(flag, name);
        let value = template(&format!("throttle.{flag}"));
        cfg["value_template"] = value
            .replace("{{ value_json", "{{ ('ON' if value_json")
            .replace(" if (", " else 'OFF') if (")
            .into();
        cfg["device_class"] = "problem".into();
        out.push((
            format!("{prefix}/binary_sensor/{object}/{flag}/config"),
            cfg.to_string().into_bytes(),
        ));
    }
    out
}

/// Publishes the discovery now and again on every Home Assistant birth.
pub async fn run(
    link: MqttLink,
    prefix: String,
    topics: Topics,
    rack: String,
    node: String,
    cancel: CancellationToken,
) {
    let messages = discovery_messages(&prefix, &topics, &rack, &node);
    let mut births = link.subscribe(format!("{prefix}/status"));
    let send = || {
        for (topic, payload) in &messages {
            link.publish(topic.clone(), payload.clone(), true);
        }
        tracing::info!(count = messages.len(), %prefix, "Home Assistant discovery published");
    };
    send();
    loop {
        tokio::select! {
            msg = births.recv() => match msg {
                Some(p) if &p.payload[..] == b"online" => send(),
                Some(_) => {}
                None => return,
            },
            _ = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sensor_per_value_and_one_binary_sensor_per_flag_bound_to_status() {
        let topics = Topics::new("lab");
        let msgs = discovery_messages("homeassistant", &topics, "lab", "pi-1");
        assert_eq!(msgs.len(), SENSORS.len() + FLAGS.len());
        let (topic, payload) = &msgs[0];
        assert_eq!(
            topic,
            "homeassistant/sensor/rackpong_lab_pi_2d1/cpu_pct/config"
        );
        let cfg: Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(cfg["availability_topic"], "rackpong/lab/nodes/pi-1/status");
        assert_eq!(cfg["state_topic"], "rackpong/lab/nodes/pi-1/health");
        assert_eq!(
            cfg["value_template"],
            "{{ value_json.cpu_pct if (value_json.cpu_pct is not none) else None }}"
        );
        let flag = msgs
            .iter()
            .find(|(t, _)| t.ends_with("/throttled_now/config"))
            .unwrap();
        let cfg: Value = serde_json::from_slice(&flag.1).unwrap();
        assert!(flag.0.starts_with("homeassistant/binary_sensor/"));
        assert_eq!(
            cfg["value_template"],
            "{{ ('ON' if value_json.throttle.throttled_now else 'OFF') if (value_json.throttle is not none \
             and value_json.throttle.throttled_now is not none) else None }}"
        );
    }
}
