//! Health samples deduplicated by `seq` on the dashboard (issue 11): a
//! sample delivered again over a real broker (a QoS 1 re-send after a
//! reconnect) is counted as a duplicate and does not replace the newer one
//! on the board.

mod dashboard_common;

use dashboard_common::{Rig, health};

#[tokio::test]
async fn a_resent_health_sample_is_counted_not_shown_again() {
    let rig = Rig::start(None).await;
    rig.node_online("n1").await;
    let topic = rig.topics.node_health("n1");
    rig.rack
        .publish(topic.clone(), health("n1", 1, 40.0), false);
    rig.rack
        .publish(topic.clone(), health("n1", 2, 41.0), false);
    rig.rack
        .publish(topic.clone(), health("n1", 1, 40.0), false);
    rig.rack.publish(topic, health("n1", 2, 41.0), false);
    let s = rig
        .until("two duplicates counted", |s| s.health_duplicates == 2)
        .await;
    let n1 = s.nodes.iter().find(|n| n.name == "n1").unwrap();
    assert_eq!(n1.temp_c, Some(41.0), "the newer sample stays shown");
    assert_eq!(rig.state().await["health_duplicates"], 2);
    rig.shutdown.cancel();
}
