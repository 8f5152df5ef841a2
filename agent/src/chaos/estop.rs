//! Admission of the rack's emergency stop (`rackpong/<rack>/estop`): decode,
//! version, signature (the chaos secret), rack, then freshness. Pure logic
//! over `(payload, retained, now)`, tested without a broker; the listener
//! acts on what it admits (restore the fault in force, refuse commands with
//! reason `estop` until a clear) and persists the last honoured stop.
//!
//! The freshness rule. A retained stop must stay in force across agent
//! restarts, broker reconnects and new agents joining the rack, however old
//! it is, so the command window cannot apply to it. Instead every estop
//! carries a `seq` that its publisher makes larger than any seq on the topic
//! (`rackpong estop` reads the retained one first, and uses at least its wall
//! clock in ms), and:
//!
//! - an agent honours a message only if its `seq` is above the last seq it
//!   honoured (persisted with the dead-man state), so an old stop or clear
//!   replayed later is refused `replayed`, even after a restart;
//! - the same message delivered again (the retained copy on every reconnect)
//!   is recognised as already in force and changes nothing;
//! - a *live* delivery (retain flag unset: published while the agent was
//!   subscribed) must also be inside the command window (±30 s), so an agent
//!   that has no state yet cannot be fooled by an old recording either;
//! - a *retained* delivery (sent by the broker on subscribe) is the rack's
//!   current state and is honoured at any age. Only the controller's login
//!   may write the topic (mosquitto ACL), so the broker's retained copy is
//!   trusted as current; the signature still proves who made it.

use serde::{Deserialize, Serialize};

use super::Secret;
use super::guard::{MAX_COMMAND_BYTES, Rejected, Rejection, check_window, salvage_id, scan_id};
use crate::proto::{Estop, PROTO_VERSION, SignedEstop};

/// The last emergency stop an agent honoured (persisted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstopRecord {
    pub id: String,
    pub seq: u64,
    pub engaged: bool,
    pub issued_ms: u64,
    pub by: String,
}

impl From<&Estop> for EstopRecord {
    fn from(e: &Estop) -> Self {
        Self {
            id: e.id.clone(),
            seq: e.seq,
            engaged: e.engaged,
            issued_ms: e.issued_ms,
            by: e.by.clone(),
        }
    }
}

/// What to do with an admitted estop message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EstopVerdict {
    /// A newer stop or clear: act on it.
    Apply(Estop),
    /// The one already honoured, delivered again (retained, after a reconnect).
    InForce,
}

/// Checks estop messages for one rack and remembers the last honoured one.
#[derive(Debug)]
pub struct EstopGate {
    secret: Secret,
    rack: String,
    window_ms: u64,
    last: Option<EstopRecord>,
}

impl EstopGate {
    pub fn new(secret: Secret, rack: &str, window_ms: u64) -> Self {
        Self {
            secret,
            rack: rack.to_string(),
            window_ms,
            last: None,
        }
    }

    /// Picks up the stop a previous run honoured.
    pub fn resume(&mut self, last: Option<EstopRecord>) {
        self.last = last;
    }

    /// The last honoured stop or clear.
    pub fn last(&self) -> Option<&EstopRecord> {
        self.last.as_ref()
    }

    /// The stop in force, if engaged.
    pub fn engaged(&self) -> Option<&EstopRecord> {
        self.last.as_ref().filter(|r| r.engaged)
    }

    /// Admits `payload` (delivered `retained` or live at `now_ms`), or says
    /// why not. An admitted newer message becomes the last honoured one.
    pub fn check(
        &mut self,
        payload: &[u8],
        retained: bool,
        now_ms: u64,
    ) -> Result<EstopVerdict, Rejected> {
        let signed = decode(payload)?;
        let e = &signed.estop;
        let reject = |reason| Rejected {
            id: e.id.clone(),
            reason,
        };
        if e.v != PROTO_VERSION {
            return Err(reject(Rejection::UnsupportedVersion(e.v)));
        }
        signed
            .verify(self.secret.as_bytes())
            .map_err(|err| reject(Rejection::BadSignature(err.to_string())))?;
        if e.rack != self.rack {
            return Err(reject(Rejection::WrongRack {
                got: e.rack.clone(),
                me: self.rack.clone(),
            }));
        }
        if let Some(last) = &self.last {
            if e.seq == last.seq && EstopRecord::from(e) == *last {
                return Ok(EstopVerdict::InForce);
            }
            if e.seq <= last.seq {
                return Err(reject(Rejection::StaleEstop {
                    seq: e.seq,
                    last: last.seq,
                }));
            }
        }
        if !retained {
            check_window(e.issued_ms, now_ms, self.window_ms).map_err(reject)?;
        }
        self.last = Some(EstopRecord::from(e));
        Ok(EstopVerdict::Apply(signed.estop))
    }
}

fn decode(payload: &[u8]) -> Result<SignedEstop, Rejected> {
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(Rejected {
            id: scan_id(&payload[..MAX_COMMAND_BYTES]),
            reason: Rejection::TooLarge(payload.len()),
        });
    }
    serde_json::from_slice(payload).map_err(|e| Rejected {
        id: salvage_id(payload),
        reason: Rejection::Malformed(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;
    const WINDOW: u64 = 30_000;

    fn gate() -> EstopGate {
        EstopGate::new(Secret::from_bytes("k"), "rack", WINDOW)
    }

    fn wire(seq: u64, engaged: bool, issued_ms: u64, rack: &str, key: &[u8]) -> Vec<u8> {
        let e = Estop {
            v: 1,
            id: format!("e{seq}"),
            rack: rack.into(),
            engaged,
            seq,
            issued_ms,
            by: "test".into(),
        };
        serde_json::to_vec(&e.sign(key)).unwrap()
    }

    fn code(r: Result<EstopVerdict, Rejected>) -> &'static str {
        match r {
            Ok(EstopVerdict::Apply(_)) => "apply",
            Ok(EstopVerdict::InForce) => "in-force",
            Err(e) => e.reason.code(),
        }
    }

    #[test]
    fn forged_foreign_and_malformed_stops_are_refused() {
        let mut g = gate();
        assert_eq!(
            code(g.check(&wire(1, true, NOW, "rack", b"x"), false, NOW)),
            "bad-signature"
        );
        assert_eq!(
            code(g.check(&wire(1, true, NOW, "lab", b"k"), false, NOW)),
            "wrong-rack"
        );
        assert_eq!(code(g.check(b"{", false, NOW)), "malformed");
        assert_eq!(g.last(), None);
    }

    #[test]
    fn a_live_stop_must_be_fresh_a_retained_one_may_be_old() {
        let mut g = gate();
        let old = NOW - WINDOW - 1;
        assert_eq!(
            code(g.check(&wire(1, true, old, "rack", b"k"), false, NOW)),
            "expired"
        );
        assert_eq!(
            code(g.check(&wire(1, true, old, "rack", b"k"), true, NOW)),
            "apply"
        );
        assert!(g.engaged().is_some());
    }

    #[test]
    fn seq_orders_stops_and_clears_and_redelivery_is_in_force() {
        let mut g = gate();
        let stop = wire(5, true, NOW, "rack", b"k");
        assert_eq!(code(g.check(&stop, false, NOW)), "apply");
        assert_eq!(code(g.check(&stop, true, NOW + 1)), "in-force");
        // An older clear, replayed: refused, the stop stays.
        assert_eq!(
            code(g.check(&wire(4, false, NOW, "rack", b"k"), false, NOW)),
            "replayed"
        );
        assert!(g.engaged().is_some());
        assert_eq!(
            code(g.check(&wire(6, false, NOW, "rack", b"k"), false, NOW)),
            "apply"
        );
        assert!(g.engaged().is_none());
        // The old stop, replayed after the clear: refused even retained.
        assert_eq!(code(g.check(&stop, true, NOW)), "replayed");
    }

    #[test]
    fn a_resumed_gate_keeps_the_stop_and_its_floor() {
        let mut g = gate();
        assert_eq!(
            code(g.check(&wire(9, true, NOW, "rack", b"k"), true, NOW)),
            "apply"
        );
        let mut again = gate();
        again.resume(g.last().cloned());
        assert!(again.engaged().is_some());
        let retained = wire(9, true, NOW, "rack", b"k");
        assert_eq!(
            code(again.check(&retained, true, NOW + 3_600_000)),
            "in-force"
        );
    }
}
