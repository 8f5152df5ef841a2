//! `rackpong estop [--clear]`: publishes the rack's signed, retained
//! emergency stop (or its clear) as its own short-lived MQTT client, so it
//! works with no controller running, and prints which nodes confirmed it.

use std::path::PathBuf;
use std::time::Duration;

use rackpong_agent::chaos::{Secret, SecretError};
use rackpong_agent::mqtt::MqttArgs;

use crate::estop::{EstopError, EstopOutcome, EstopSender};

/// Flags of `rackpong estop`.
#[derive(Debug, Clone, clap::Args)]
pub struct EstopArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,

    /// Clear the emergency stop: agents accept commands again (their faults
    /// stay restored).
    #[arg(long, env = "RACKPONG_ESTOP_CLEAR")]
    pub clear: bool,

    /// File holding the shared HMAC secret of node-chaos commands (mode
    /// 0600, the agents' secret): the stop is signed with it.
    #[arg(long, env = "RACKPONG_CHAOS_SECRET_FILE", value_name = "PATH")]
    pub chaos_secret_file: PathBuf,

    /// How long to collect the agents' acks after the broker took the stop.
    #[arg(long, env = "RACKPONG_ESTOP_WAIT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub wait: Duration,

    /// Bound of each wait on the broker (connect, subscribe, publish).
    #[arg(long, env = "RACKPONG_ESTOP_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Why `rackpong estop` failed.
#[derive(Debug, thiserror::Error)]
pub enum EstopCliError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Estop(#[from] EstopError),
}

/// Publishes the stop or clear and prints the outcome.
pub async fn run(args: EstopArgs) -> Result<(), EstopCliError> {
    let secret = Secret::load(&args.chaos_secret_file)?;
    let sender = EstopSender::new(&args.mqtt, secret, args.timeout)?;
    let by = format!("rackpong estop@{}", host());
    let outcome = sender.send(!args.clear, &by, args.wait).await?;
    print!("{}", describe(&outcome));
    Ok(())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The outcome as the operator reads it.
pub fn describe(o: &EstopOutcome) -> String {
    let e = &o.estop;
    let mut out = format!(
        "emergency stop {} (id {}, seq {}) published retained on {}\n",
        e.state(),
        e.id,
        e.seq,
        e.rack
    );
    if let Some(p) = &o.previous {
        out += &format!("  replaces: {} (seq {}) by {}\n", p.state(), p.seq, p.by);
    }
    for a in &o.acks {
        let mark = if a.accepted { "ok  " } else { "FAIL" };
        out += &format!("  {mark} {}: {}\n", a.node, a.reason);
    }
    for n in &o.silent {
        out += &format!(
            "  ??   {n}: online but no ack (chaos not enabled there, or unreachable); it honours the retained stop when it subscribes\n"
        );
    }
    if o.acks.is_empty() && o.silent.is_empty() {
        out += "  no node answered and none is online; agents honour the retained stop when they connect\n";
    }
    out
}
