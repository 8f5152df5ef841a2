//! The MQTT topic layout under `rackpong/<rack>/`.

/// Builds every topic of one rack, so no other module formats topic strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    root: String,
}

impl Topics {
    /// Topics for the rack named `rack` (default `"rack"`).
    pub fn new(rack: &str) -> Self {
        Self {
            root: format!("rackpong/{rack}"),
        }
    }

    /// `rackpong/<rack>`.
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn node_status(&self, node: &str) -> String {
        format!("{}/nodes/{node}/status", self.root)
    }

    pub fn node_health(&self, node: &str) -> String {
        format!("{}/nodes/{node}/health", self.root)
    }

    /// The node's LED report (retained): `nodes/<node>/leds`.
    pub fn node_leds(&self, node: &str) -> String {
        format!("{}/nodes/{node}/leds", self.root)
    }

    /// Catches on the node, for its LEDs: `nodes/<node>/catches`.
    pub fn node_catches(&self, node: &str) -> String {
        format!("{}/nodes/{node}/catches", self.root)
    }

    pub fn node_cmd(&self, node: &str) -> String {
        format!("{}/nodes/{node}/cmd", self.root)
    }

    pub fn node_cmd_ack(&self, node: &str) -> String {
        format!("{}/nodes/{node}/cmd/ack", self.root)
    }

    pub fn balls_caught(&self) -> String {
        format!("{}/balls/caught", self.root)
    }

    pub fn balls_dropped(&self) -> String {
        format!("{}/balls/dropped", self.root)
    }

    pub fn worker_status(&self, worker: &str) -> String {
        format!("{}/workers/{worker}/status", self.root)
    }

    /// The rack's emergency stop (retained, signed): `rackpong/<rack>/estop`.
    pub fn estop(&self) -> String {
        format!("{}/estop", self.root)
    }

    /// The rack name (the part after `rackpong/`).
    pub fn rack(&self) -> &str {
        self.root.strip_prefix("rackpong/").unwrap_or(&self.root)
    }

    /// Wildcard matching every topic of this rack.
    pub fn all(&self) -> String {
        format!("{}/#", self.root)
    }

    /// Splits a topic of this rack into its parts after the root, or `None`
    /// when it belongs to another rack.
    pub fn parse<'a>(&self, topic: &'a str) -> Option<TopicKind<'a>> {
        let rest = topic.strip_prefix(self.root.as_str())?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        Some(match parts.as_slice() {
            ["nodes", n, "status"] => TopicKind::NodeStatus(n),
            ["nodes", n, "health"] => TopicKind::NodeHealth(n),
            ["nodes", n, "leds"] => TopicKind::NodeLeds(n),
            ["nodes", n, "catches"] => TopicKind::NodeCatches(n),
            ["nodes", n, "cmd"] => TopicKind::NodeCmd(n),
            ["nodes", n, "cmd", "ack"] => TopicKind::NodeCmdAck(n),
            ["balls", "caught"] => TopicKind::BallCaught,
            ["balls", "dropped"] => TopicKind::BallDropped,
            ["workers", w, "status"] => TopicKind::WorkerStatus(w),
            ["estop"] => TopicKind::Estop,
            _ => TopicKind::Other(rest),
        })
    }
}

impl Default for Topics {
    fn default() -> Self {
        Self::new("rack")
    }
}

/// A topic of the rack, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind<'a> {
    NodeStatus(&'a str),
    NodeHealth(&'a str),
    NodeLeds(&'a str),
    NodeCatches(&'a str),
    NodeCmd(&'a str),
    NodeCmdAck(&'a str),
    BallCaught,
    BallDropped,
    WorkerStatus(&'a str),
    Estop,
    Other(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_round_trip() {
        let t = Topics::new("lab");
        assert_eq!(t.node_health("pi1"), "rackpong/lab/nodes/pi1/health");
        assert_eq!(
            t.parse(&t.node_health("pi1")),
            Some(TopicKind::NodeHealth("pi1"))
        );
        assert_eq!(
            t.parse(&t.node_cmd_ack("pi2")),
            Some(TopicKind::NodeCmdAck("pi2"))
        );
        assert_eq!(
            t.parse(&t.worker_status("w-1")),
            Some(TopicKind::WorkerStatus("w-1"))
        );
        assert_eq!(t.parse(&t.balls_caught()), Some(TopicKind::BallCaught));
        assert_eq!(t.node_leds("pi1"), "rackpong/lab/nodes/pi1/leds");
        assert_eq!(
            t.parse(&t.node_leds("pi1")),
            Some(TopicKind::NodeLeds("pi1"))
        );
        assert_eq!(t.node_catches("pi1"), "rackpong/lab/nodes/pi1/catches");
        assert_eq!(
            t.parse(&t.node_catches("pi1")),
            Some(TopicKind::NodeCatches("pi1"))
        );
        assert_eq!(t.estop(), "rackpong/lab/estop");
        assert_eq!(t.parse(&t.estop()), Some(TopicKind::Estop));
        assert_eq!(t.rack(), "lab");
        assert_eq!(t.parse("rackpong/other/balls/caught"), None);
        assert_eq!(t.parse("rackpong/lab/x/y"), Some(TopicKind::Other("x/y")));
    }
}
