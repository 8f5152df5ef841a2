//! Running iproute2's `ip` (Debian's `iproute2` package): one place that
//! spawns it, captures its output and turns a failure into an error naming
//! the command and what `ip` said. Each call is a few milliseconds; callers
//! run it synchronously so a fault happens at the instant it is stamped.

use std::process::Command;

use serde_json::Value;

/// Why the isolated rack's network could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot run `ip {args}` (is iproute2 installed?): {source}")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`ip {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("`ip {args}` printed JSON that cannot be read: {source}")]
    Json {
        args: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "no private /24 is free on this machine (10.254.x, 172.31.x and 100.127.x are all in use)"
    )]
    NoSubnet,
    #[error("network namespaces are not available: {0}")]
    Unavailable(String),
    #[error(
        "the rack's address {ip} does not route through its bridge {bridge} (ip route get: {got})"
    )]
    Misrouted {
        ip: String,
        bridge: String,
        got: String,
    },
    #[error("the netns marker {path}: {source}")]
    Marker {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("isolated racks hold at most 253 nodes (one /24, .1 is the control side)")]
    TooManyNodes,
}

/// Runs `ip args...`; its stdout on success.
pub fn ip(args: &[&str]) -> Result<String, NetError> {
    let joined = || args.join(" ");
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetError::Spawn {
            args: joined(),
            source,
        })?;
    if !out.status.success() {
        return Err(NetError::Failed {
            args: joined(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip -j args...` and parses its JSON (empty output is `[]`).
pub fn ip_json(args: &[&str]) -> Result<Value, NetError> {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    let text = ip(&all)?;
    if text.trim().is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_str(&text).map_err(|source| NetError::Json {
        args: all.join(" "),
        source,
    })
}

/// Runs `ip args...`, logging instead of failing (teardown: keep removing
/// the rest when one part is already gone).
pub fn ip_quiet(args: &[&str]) {
    if let Err(e) = ip(args) {
        tracing::debug!(error = %e, "ip command during cleanup");
    }
}
