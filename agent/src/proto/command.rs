//! Signed node-chaos commands (`nodes/<node>/cmd`) and their acks
//! (`nodes/<node>/cmd/ack`). The signature is HMAC-SHA256, hex encoded, over
//! the canonical JSON of the unsigned command: its fields in declaration order,
//! no whitespace, exactly as `serde_json::to_vec(&NodeCommand)` writes them.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a node-chaos command asks the node to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChaosAction {
    /// Stop k3s and its containers (`k3s-killall.sh`), start it after `down_for_s`.
    StopK3s,
    /// Reboot the node.
    Reboot,
    /// Take the uplink down, bring it back after `down_for_s`.
    NetDrop,
    /// Cut power through a GPIO relay (executed by the controller, not the agent).
    PowerRelay,
    /// Undo any reversible action now (the controller's rollback).
    Restore,
}

impl ChaosAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChaosAction::StopK3s => "stop-k3s",
            ChaosAction::Reboot => "reboot",
            ChaosAction::NetDrop => "net-drop",
            ChaosAction::PowerRelay => "power-relay",
            ChaosAction::Restore => "restore",
        }
    }

    /// Reversible actions arm the agent's dead-man timer.
    pub fn is_reversible(self) -> bool {
        matches!(self, ChaosAction::StopK3s | ChaosAction::NetDrop)
    }
}

/// The unsigned command; its canonical JSON is what gets signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCommand {
    pub v: u32,
    pub id: String,
    pub node: String,
    pub action: ChaosAction,
    pub down_for_s: u64,
    /// Wall-clock issue time (Unix ms); the agent rejects it outside ±30 s.
    pub issued_ms: u64,
    /// Random, never reused; the agent rejects a nonce it has seen.
    pub nonce: String,
}

/// A command with its signature, as sent on the wire (flat JSON: the command's
/// fields plus `sig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCommand {
    #[serde(flatten)]
    pub cmd: NodeCommand,
    /// Lowercase hex HMAC-SHA256 of the canonical JSON of `cmd`.
    pub sig: String,
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature is not hex")]
    NotHex,
    #[error("bad signature")]
    Mismatch,
}

impl NodeCommand {
    /// The exact bytes that are signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a NodeCommand always serialises")
    }

    /// Signs the command with the shared secret.
    pub fn sign(self, secret: &[u8]) -> SignedCommand {
        let sig = mac_hex(secret, &self.canonical_bytes());
        SignedCommand { cmd: self, sig }
    }
}

/// Lowercase hex HMAC-SHA256 of `bytes` (commands and the estop).
pub(crate) fn mac_hex(secret: &[u8], bytes: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(bytes);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a hex HMAC-SHA256 of `bytes` in constant time.
pub(crate) fn verify_mac(secret: &[u8], bytes: &[u8], sig_hex: &str) -> Result<(), SignatureError> {
    let sig = hex::decode(sig_hex).map_err(|_| SignatureError::NotHex)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(bytes);
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

impl SignedCommand {
    /// Checks the signature in constant time.
    pub fn verify(&self, secret: &[u8]) -> Result<(), SignatureError> {
        verify_mac(secret, &self.cmd.canonical_bytes(), &self.sig)
    }
}

/// The agent's answer to a command, on `nodes/<node>/cmd/ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAck {
    #[serde(default = "super::default_version")]
    pub v: u32,
    /// The command id (empty when the payload could not be decoded at all).
    pub id: String,
    pub node: String,
    pub accepted: bool,
    /// Why it was rejected, or what was done.
    pub reason: String,
    /// When the agent received the command (Unix ms).
    pub received_ms: u64,
    /// When the action started, if it did (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// When the node will restore itself by its dead-man timer (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_by_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> NodeCommand {
        NodeCommand {
            v: 1,
            id: "c1".into(),
            node: "pi2".into(),
            action: ChaosAction::StopK3s,
            down_for_s: 20,
            issued_ms: 1_700_000_000_000,
            nonce: "n1".into(),
        }
    }

    #[test]
    fn signed_command_round_trips_and_verifies() {
        let signed = cmd().sign(b"secret");
        let wire = serde_json::to_string(&signed).unwrap();
        assert!(wire.contains(r#""action":"stop-k3s""#));
        let back: SignedCommand = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.verify(b"secret"), Ok(()));
        assert_eq!(back.verify(b"other"), Err(SignatureError::Mismatch));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let mut signed = cmd().sign(b"secret");
        signed.cmd.down_for_s = 9999;
        assert_eq!(signed.verify(b"secret"), Err(SignatureError::Mismatch));
        signed.sig = "zz".into();
        assert_eq!(signed.verify(b"secret"), Err(SignatureError::NotHex));
    }

    #[test]
    fn canonical_json_is_stable() {
        assert_eq!(
            String::from_utf8(cmd().canonical_bytes()).unwrap(),
            r#"{"v":1,"id":"c1","node":"pi2","action":"stop-k3s","down_for_s":20,"issued_ms":1700000000000,"nonce":"n1"}"#
        );
    }
}
