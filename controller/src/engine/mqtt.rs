//! From MQTT messages to engine inputs: node status (birth / Last Will),
//! health samples, worker status and caught balls, classified by topic and
//! stamped on arrival (stale-health detection is `timing::stale`). Malformed payloads are
//! counted and logged, never fatal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rackpong_agent::proto::{BallCaught, DecodeError, RackMessage, Topics};
use rumqttc::Publish;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Input, Timed};
use crate::timing::Observation;

/// Classifies one message of the rack (decoded by [`RackMessage::decode`]):
/// `Ok(None)` for messages the engine does not use, `Err` for a payload that
/// does not decode.
pub fn classify(
    topics: &Topics,
    topic: &str,
    payload: &[u8],
) -> Result<Option<Input>, DecodeError> {
    let Some(message) = RackMessage::decode(topics, topic, payload)? else {
        return Ok(None);
    };
    Ok(Some(match message {
        RackMessage::NodeStatus { node, online } => {
            Input::Observation(Observation::NodeStatus { node, online })
        }
        RackMessage::WorkerStatus { worker, online } => {
            Input::Observation(Observation::WorkerStatus { worker, online })
        }
        RackMessage::NodeHealth { sample, .. } => Input::Health(sample),
        RackMessage::BallCaught(c) => {
            let BallCaught {
                ball, worker, node, ..
            } = *c;
            let mut hops: Vec<(String, String)> =
                ball.hops.into_iter().map(|h| (h.worker, h.node)).collect();
            if hops.last().is_none_or(|(w, _)| *w != worker) {
                hops.push((worker, node));
            }
            Input::Observation(Observation::BallCaught { hops })
        }
        RackMessage::BallDropped(_) | RackMessage::NodeLeds { .. } => return Ok(None),
    }))
}

/// Feeds the messages of `MqttLink::subscribe(topics.all())` into the
/// engine's input channel, stamped on arrival, until `cancel` or either
/// channel closes. Returns the count of malformed payloads, which is also
/// readable live through `malformed`.
pub async fn feed(
    topics: Topics,
    mut rx: mpsc::Receiver<Publish>,
    tx: mpsc::Sender<Timed>,
    malformed: Arc<AtomicU64>,
    cancel: CancellationToken,
) -> u64 {
    loop {
        let Publish { topic, payload, .. } = tokio::select! {
            _ = cancel.cancelled() => break,
            m = rx.recv() => match m { Some(m) => m, None => break },
        };
        let at = Instant::now();
        match classify(&topics, &topic, &payload) {
            Ok(Some(input)) => {
                if tx.send(Timed { at, input }).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(reason) => {
                let n = malformed.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(%topic, %reason, malformed = n, "malformed MQTT payload ignored");
            }
        }
    }
    malformed.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_rack_topics() {
        let t = Topics::new("lab");
        assert_eq!(
            classify(&t, &t.node_status("n1"), b"offline").unwrap(),
            Some(Input::Observation(Observation::NodeStatus {
                node: "n1".into(),
                online: false
            }))
        );
        assert_eq!(
            classify(&t, &t.worker_status("w1"), b"online").unwrap(),
            Some(Input::Observation(Observation::WorkerStatus {
                worker: "w1".into(),
                online: true
            }))
        );
        let caught = br#"{"v":1,"ball":{"id":"b","target":"w2","ttl":3,"born_ms":1,
            "hops":[{"worker":"w1","node":"n1","at_ms":2}]},"worker":"w2","node":"n2","caught_ms":3}"#;
        assert_eq!(
            classify(&t, &t.balls_caught(), caught).unwrap(),
            Some(Input::Observation(Observation::BallCaught {
                hops: vec![("w1".into(), "n1".into()), ("w2".into(), "n2".into())]
            }))
        );
        assert_eq!(
            classify(&t, "rackpong/other/balls/caught", caught).unwrap(),
            None
        );
        assert_eq!(classify(&t, &t.node_cmd("n1"), b"{}").unwrap(), None);
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        let t = Topics::default();
        assert!(classify(&t, &t.node_status("n1"), b"maybe").is_err());
        assert!(classify(&t, &t.node_health("n1"), b"{").is_err());
        assert!(classify(&t, &t.balls_caught(), b"[]").is_err());
    }

    #[tokio::test]
    async fn feed_stamps_forwards_and_counts_malformed() {
        let t = Topics::default();
        let (mtx, mrx) = mpsc::channel(8);
        let (tx, mut rx) = mpsc::channel(8);
        let bad = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(feed(
            t.clone(),
            mrx,
            tx,
            bad.clone(),
            CancellationToken::new(),
        ));
        let before = Instant::now();
        let msg =
            |p: &[u8]| Publish::new(t.node_status("n1"), rumqttc::QoS::AtLeastOnce, p.to_vec());
        mtx.send(msg(b"garbage")).await.unwrap();
        mtx.send(msg(b"online")).await.unwrap();
        let got = rx.recv().await.unwrap();
        assert!(got.at >= before);
        assert!(matches!(
            got.input,
            Input::Observation(Observation::NodeStatus { online: true, .. })
        ));
        drop(mtx);
        assert_eq!(task.await.unwrap(), 1);
        assert_eq!(bad.load(Ordering::Relaxed), 1);
    }
}
