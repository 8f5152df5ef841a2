//! rackpong's agent: one small static binary with two roles. `node` runs on
//! every Pi as a host daemon reporting health over MQTT (and executing signed
//! node-chaos commands when enabled); `worker` is the ping-pong pod that
//! catches and forwards balls. `main.rs` only parses flags and calls [`run`].

#[cfg(feature = "broker")]
pub mod broker;
pub mod chaos;
pub mod cli;
pub mod health;
pub mod leds;
pub mod mqtt;
pub mod node;
pub mod proto;
pub mod shutdown;
pub mod worker;

pub use cli::{Cli, Role, run};

/// The agent's version, published in every health sample.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Wall-clock now in Unix milliseconds (wire timestamps are wall clock; the
/// controller measures durations on its own monotonic clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
