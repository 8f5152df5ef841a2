//! The rack's emergency stop (`rackpong/<rack>/estop`, QoS 1, retained): a
//! signed message that engages or clears the stop for every agent of the
//! rack. Signed like node commands (HMAC-SHA256 with the chaos secret over
//! the canonical JSON of [`Estop`], hex in `sig`).
//!
//! Freshness is a sequence, not a time window: the retained message is the
//! rack's current stop state and must still be in force after an agent
//! restart hours later, so its age cannot make it invalid. Each publisher
//! picks `seq` above every seq it has seen on the topic (and at least its
//! wall clock in ms), and agents honour a message only if its `seq` is above
//! the last one they honoured (persisted). The full rule is in
//! `agent::chaos::estop` and docs/PROTOCOL.md.

use serde::{Deserialize, Serialize};

use super::command::{mac_hex, verify_mac};

/// The unsigned emergency stop; its canonical JSON is what gets signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estop {
    pub v: u32,
    /// Unique id, echoed in the agents' acks.
    pub id: String,
    /// The rack it is for (a message copied to another rack's topic is refused).
    pub rack: String,
    /// `true`: stop (restore faults, refuse commands); `false`: clear the stop.
    pub engaged: bool,
    /// Strictly increasing per rack; an agent honours only a seq above its last.
    pub seq: u64,
    /// Wall-clock issue time (Unix ms); a live (not retained) delivery outside
    /// the command window is refused.
    pub issued_ms: u64,
    /// Who sent it (e.g. `rackpong estop@host`, `dashboard`), for logs and acks.
    pub by: String,
}

/// An estop with its signature, as sent on the wire (flat JSON plus `sig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEstop {
    #[serde(flatten)]
    pub estop: Estop,
    /// Lowercase hex HMAC-SHA256 of the canonical JSON of `estop`.
    pub sig: String,
}

impl Estop {
    /// The exact bytes that are signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an Estop always serialises")
    }

    /// Signs with the shared chaos secret.
    pub fn sign(self, secret: &[u8]) -> SignedEstop {
        let sig = mac_hex(secret, &self.canonical_bytes());
        SignedEstop { estop: self, sig }
    }

    /// `"engaged"` or `"cleared"`.
    pub fn state(&self) -> &'static str {
        if self.engaged { "engaged" } else { "cleared" }
    }
}

impl SignedEstop {
    /// Checks the signature in constant time.
    pub fn verify(&self, secret: &[u8]) -> Result<(), super::command::SignatureError> {
        verify_mac(secret, &self.estop.canonical_bytes(), &self.sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estop() -> Estop {
        Estop {
            v: 1,
            id: "e1".into(),
            rack: "rack".into(),
            engaged: true,
            seq: 7,
            issued_ms: 1_700_000_000_000,
            by: "test".into(),
        }
    }

    #[test]
    fn signed_estop_round_trips_and_tampering_breaks_it() {
        let wire = serde_json::to_vec(&estop().sign(b"k")).unwrap();
        let mut back: SignedEstop = serde_json::from_slice(&wire).unwrap();
        assert_eq!(back.verify(b"k"), Ok(()));
        assert!(back.verify(b"x").is_err());
        back.estop.engaged = false;
        assert!(back.verify(b"k").is_err());
    }

    #[test]
    fn canonical_json_is_stable() {
        assert_eq!(
            String::from_utf8(estop().canonical_bytes()).unwrap(),
            r#"{"v":1,"id":"e1","rack":"rack","engaged":true,"seq":7,"issued_ms":1700000000000,"by":"test"}"#
        );
    }
}
