//! Wire types shared by the agent and the controller: the MQTT topic layout,
//! health samples, LED reports, balls, node-chaos commands and the rack's emergency stop. Every JSON payload carries
//! `"v": 1`; unknown fields are ignored on decode so newer agents and older
//! controllers (and the reverse) keep talking.

pub mod ball;
pub mod command;
pub mod dedup;
pub mod estop;
pub mod health;
pub mod leds;
pub mod message;
pub mod topics;

pub use ball::{Ball, BallCaught, BallDropped, DropReason, Hop};
pub use command::{ChaosAction, CommandAck, NodeCommand, SignedCommand};
pub use dedup::SeqFilter;
pub use estop::{Estop, SignedEstop};
pub use health::{HealthSample, Throttle};
pub use leds::{CatchReport, LedMode, LedPattern, LedReport};
pub use message::{DecodeError, RackMessage};
pub use topics::Topics;

/// Version of every JSON payload defined here.
pub const PROTO_VERSION: u32 = 1;

/// Payload of the retained `status` topics (`nodes/<n>/status`, `workers/<w>/status`).
pub const STATUS_ONLINE: &str = "online";
/// Last Will and clean-shutdown payload of the `status` topics.
pub const STATUS_OFFLINE: &str = "offline";

pub(crate) fn default_version() -> u32 {
    PROTO_VERSION
}
