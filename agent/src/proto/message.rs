//! The one decoder of rackpong's MQTT messages: a topic of the rack and its
//! payload become a typed [`RackMessage`], or a [`DecodeError`] naming what
//! did not decode. The controller's engine feed, its dashboard and its ball
//! factory all decode through here. Signed commands and their acks are not
//! decoded here: the agent verifies commands, and the controller's node
//! commander awaits the acks it is owed.

use serde::de::DeserializeOwned;

use super::topics::TopicKind;
use super::{
    BallCaught, BallDropped, HealthSample, LedReport, STATUS_OFFLINE, STATUS_ONLINE, Topics,
};

/// One decoded message of the rack.
#[derive(Debug, Clone, PartialEq)]
pub enum RackMessage {
    /// `nodes/<node>/status`: birth (`online`) or Last Will (`offline`).
    NodeStatus { node: String, online: bool },
    /// `nodes/<node>/health`: one health sample (`node` is the topic's).
    NodeHealth {
        node: String,
        sample: Box<HealthSample>,
    },
    /// `nodes/<node>/leds`: what the node's status LEDs show (`node` is the topic's).
    NodeLeds { node: String, report: LedReport },
    /// `workers/<worker>/status`: birth or Last Will.
    WorkerStatus { worker: String, online: bool },
    /// `balls/caught`.
    BallCaught(Box<BallCaught>),
    /// `balls/dropped`.
    BallDropped(Box<BallDropped>),
}

/// Why a payload did not decode.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("status {0:?} is neither online nor offline")]
    Status(String),
    /// The JSON payload of `what` (`health`, `leds`, `caught ball`, `dropped ball`).
    #[error("{what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl RackMessage {
    /// Decodes one message: `Ok(None)` for a topic of another rack or one no
    /// consumer reads here (commands, acks, anything else).
    pub fn decode(
        topics: &Topics,
        topic: &str,
        payload: &[u8],
    ) -> Result<Option<RackMessage>, DecodeError> {
        let Some(kind) = topics.parse(topic) else {
            return Ok(None);
        };
        Ok(Some(match kind {
            TopicKind::NodeStatus(node) => RackMessage::NodeStatus {
                node: node.to_string(),
                online: status(payload)?,
            },
            TopicKind::WorkerStatus(worker) => RackMessage::WorkerStatus {
                worker: worker.to_string(),
                online: status(payload)?,
            },
            TopicKind::NodeHealth(node) => RackMessage::NodeHealth {
                node: node.to_string(),
                sample: Box::new(json("health", payload)?),
            },
            TopicKind::NodeLeds(node) => RackMessage::NodeLeds {
                node: node.to_string(),
                report: json("leds", payload)?,
            },
            TopicKind::BallCaught => RackMessage::BallCaught(Box::new(caught(payload)?)),
            TopicKind::BallDropped => RackMessage::BallDropped(Box::new(dropped(payload)?)),
            TopicKind::NodeCmd(_)
            | TopicKind::NodeCmdAck(_)
            | TopicKind::NodeCatches(_)
            | TopicKind::Estop
            | TopicKind::Other(_) => {
                return Ok(None);
            }
        }))
    }
}

/// The payload of `balls/caught` (for a subscriber of that topic alone).
pub fn caught(payload: &[u8]) -> Result<BallCaught, DecodeError> {
    json("caught ball", payload)
}

/// The payload of `nodes/<node>/catches` (the node's LED driver reads it).
pub fn catches(payload: &[u8]) -> Result<super::CatchReport, DecodeError> {
    json("catches", payload)
}

/// The payload of `balls/dropped` (for a subscriber of that topic alone).
pub fn dropped(payload: &[u8]) -> Result<BallDropped, DecodeError> {
    json("dropped ball", payload)
}

fn json<T: DeserializeOwned>(what: &'static str, payload: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(payload).map_err(|source| DecodeError::Json { what, source })
}

fn status(payload: &[u8]) -> Result<bool, DecodeError> {
    match payload {
        p if p == STATUS_ONLINE.as_bytes() => Ok(true),
        p if p == STATUS_OFFLINE.as_bytes() => Ok(false),
        p => Err(DecodeError::Status(String::from_utf8_lossy(p).into_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_decode_and_other_payloads_are_named() {
        let t = Topics::new("lab");
        let m = RackMessage::decode(&t, &t.node_status("n1"), b"offline").unwrap();
        assert_eq!(
            m,
            Some(RackMessage::NodeStatus {
                node: "n1".into(),
                online: false
            })
        );
        let m = RackMessage::decode(&t, &t.worker_status("w1"), b"online").unwrap();
        assert_eq!(
            m,
            Some(RackMessage::WorkerStatus {
                worker: "w1".into(),
                online: true
            })
        );
        let e = RackMessage::decode(&t, &t.node_status("n1"), b"maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"status "maybe" is neither online nor offline"#
        );
    }

    #[test]
    fn bad_json_names_the_payload_and_keeps_its_source() {
        let t = Topics::new("lab");
        let e = RackMessage::decode(&t, &t.node_health("n1"), b"{").unwrap_err();
        assert!(e.to_string().starts_with("health: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        let e = RackMessage::decode(&t, &t.balls_dropped(), b"[]").unwrap_err();
        assert!(e.to_string().starts_with("dropped ball: "), "{e}");
    }

    #[test]
    fn led_reports_decode_and_the_catching_node_is_read_alone() {
        let t = Topics::new("lab");
        let json = br#"{"v":1,"node":"n1","seq":4,"ts_ms":9,"pattern":"chaos","green":"on","red":"blink","catches":3}"#;
        let Some(RackMessage::NodeLeds { node, report }) =
            RackMessage::decode(&t, &t.node_leds("n1"), json).unwrap()
        else {
            panic!("not an LED report")
        };
        assert_eq!((node.as_str(), report.catches), ("n1", 3));
        assert_eq!(report.pattern, super::super::LedPattern::Chaos);
        let e = RackMessage::decode(&t, &t.node_leds("n1"), b"{}").unwrap_err();
        assert!(e.to_string().starts_with("leds: "), "{e}");
        let c = catches(br#"{"v":1,"worker":"w2","caught":4}"#).unwrap();
        assert_eq!((c.worker.as_str(), c.caught), ("w2", 4));
        assert!(
            catches(b"[]")
                .unwrap_err()
                .to_string()
                .starts_with("catches: ")
        );
        // Not a rack message: only the node's own LED driver reads it.
        assert!(
            RackMessage::decode(&t, &t.node_catches("n1"), b"{")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn foreign_topics_commands_and_acks_are_not_decoded() {
        let t = Topics::new("lab");
        for topic in [
            "rackpong/other/balls/caught".to_string(),
            t.node_cmd("n1"),
            t.node_cmd_ack("n1"),
            format!("{}/controller/status", t.root()),
        ] {
            assert!(
                RackMessage::decode(&t, &topic, b"{").unwrap().is_none(),
                "{topic}"
            );
        }
    }
}
