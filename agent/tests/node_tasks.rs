//! The seam for extra node tasks (the chaos command handler): a task started
//! through `node::run_with` shares the node's MQTT link, and what it publishes
//! while shutting down goes out before the node's `offline`.

mod mqtt_support;

use clap::Parser;
use mqtt_support::{Subscriber, WAIT, broker_addr, unique_rack};
use rackpong_agent::node::{self, NodeArgs, NodeContext, NodeTask};
use rackpong_agent::proto::Topics;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    node: NodeArgs,
}

#[tokio::test]
async fn extra_tasks_publish_on_the_node_link_and_finish_before_offline() {
    let broker = broker_addr();
    let rack = unique_rack("tasks");
    let topics = Topics::new(&rack);
    let mut sub = Subscriber::start(broker, &topics.all()).await;
    let url = format!("mqtt://{broker}");
    let args = Args::parse_from([
        "t",
        "--broker",
        &url,
        "--rack",
        &rack,
        "--node-name",
        "n1",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let task: NodeTask = Box::new(|ctx: NodeContext| {
        tokio::spawn(async move {
            let ack = ctx.topics.node_cmd_ack(&ctx.node);
            ctx.link.publish(ack.clone(), "started", false);
            ctx.cancel.cancelled().await;
            ctx.link.publish(ack, "stopping", false);
        })
    });
    let cancel = CancellationToken::new();
    let role = tokio::spawn(node::run_with(args.node, cancel.clone(), vec![task]));

    let ack = topics.node_cmd_ack("n1");
    sub.wait_for_text(&ack, "started").await;
    cancel.cancel();
    tokio::time::timeout(WAIT, role)
        .await
        .expect("role stops")
        .unwrap()
        .expect("clean stop");
    let mut order = Vec::new();
    while order.last().map(String::as_str) != Some("offline") {
        let m = sub.next().await;
        if m.topic == ack || m.topic == topics.node_status("n1") {
            order.push(m.text());
        }
    }
    let stopping = order.iter().position(|t| t == "stopping");
    assert!(stopping.is_some(), "{order:?}");
    assert_eq!(order.last().unwrap(), "offline");
}
