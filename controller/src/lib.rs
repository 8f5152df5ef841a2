//! rackpong's controller: plays chaos monkey on a rack (local stand-in or
//! k3s), measures detection and recovery to the millisecond from watch events
//! and MQTT messages, and writes journals and reports. `main.rs` only parses
//! flags and calls [`cmd::run`].

pub mod cluster;
pub mod cmd;
pub mod dashboard;
pub mod engine;
pub mod factory;
pub mod journal;
pub mod model;
pub mod operator;
pub mod plan;
pub mod report;
pub mod rig;
pub mod safety;
pub mod timing;

/// The controller's version, recorded in every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
