//! Admission of node-chaos commands: decode, signature, node, time window and
//! nonce replay, in that order, so nothing unauthenticated reaches the replay
//! cache. Pure logic over `(payload, now)`, tested without a broker.
//!
//! Why a bounded cache of recent nonces suffices: the signed `issued_ms` is
//! checked against ±`window` first, so a replay of a command issued more than
//! `window` ago is already rejected as expired. A nonce therefore only needs to
//! be remembered while its command could still pass the window check, i.e.
//! until `issued_ms + window`; older entries are pruned. When the cache is full
//! of still-live nonces, new commands are refused (fail closed) rather than
//! evicting a live nonce, which would reopen a replay.

use std::collections::{BTreeSet, HashSet};

use crate::proto::{NodeCommand, PROTO_VERSION, SignedCommand};

use super::Secret;

/// Longest nonce or id accepted: they are kept in memory and echoed in acks.
const MAX_TOKEN_LEN: usize = 128;
/// Largest command payload decoded; a real one is a few hundred bytes.
pub const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// Why a command was rejected. `code()` is the stable machine-readable prefix
/// of the ack's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("unsupported-version: v={0}, this agent speaks v={PROTO_VERSION}")]
    UnsupportedVersion(u32),
    #[error("bad-signature: {0}")]
    BadSignature(String),
    #[error("wrong-node: command is for {got:?}, this node is {me:?}")]
    WrongNode { got: String, me: String },
    #[error("expired: issued {age_ms} ms ago, window is ±{window_ms} ms")]
    Expired { age_ms: u64, window_ms: u64 },
    #[error(
        "from-future: issued {ahead_ms} ms ahead of this node's clock, window is ±{window_ms} ms"
    )]
    FromFuture { ahead_ms: u64, window_ms: u64 },
    #[error("replayed: nonce {0:?} already seen")]
    Replayed(String),
    #[error("replay-cache-full: {0} live nonces, refusing until some expire")]
    ReplayCacheFull(usize),
    #[error("unsupported-action: {0}")]
    UnsupportedAction(String),
    #[error("bad-duration: {0}")]
    BadDuration(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("no-uplink: {0}")]
    NoUplink(String),
    #[error(
        "issued-before-restart: issued at {issued_ms}, before {floor_ms}, the last command admitted before this agent restarted"
    )]
    BeforeRestart { issued_ms: u64, floor_ms: u64 },
    #[error("too-large: {0} bytes, a command is at most {MAX_COMMAND_BYTES}")]
    TooLarge(usize),
    #[error(
        "retained: commands are never retained by rackpong; a retained message on the command topic is ignored"
    )]
    Retained,
    #[error("estop: {0}")]
    Estop(String),
    #[error("wrong-rack: emergency stop is for rack {got:?}, this agent is in {me:?}")]
    WrongRack { got: String, me: String },
    #[error("replayed: emergency stop seq {seq} is not above {last}, the last one honoured")]
    StaleEstop { seq: u64, last: u64 },
}

impl Rejection {
    /// The stable reason code (the text before the first `:` of the reason).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::UnsupportedVersion(_) => "unsupported-version",
            Rejection::BadSignature(_) => "bad-signature",
            Rejection::WrongNode { .. } => "wrong-node",
            Rejection::Expired { .. } => "expired",
            Rejection::FromFuture { .. } => "from-future",
            Rejection::Replayed(_) => "replayed",
            Rejection::ReplayCacheFull(_) => "replay-cache-full",
            Rejection::UnsupportedAction(_) => "unsupported-action",
            Rejection::BadDuration(_) => "bad-duration",
            Rejection::Busy(_) => "busy",
            Rejection::NoUplink(_) => "no-uplink",
            Rejection::TooLarge(_) => "too-large",
            Rejection::BeforeRestart { .. } => "issued-before-restart",
            Rejection::Retained => "retained",
            Rejection::Estop(_) => "estop",
            Rejection::WrongRack { .. } => "wrong-rack",
            Rejection::StaleEstop { .. } => "replayed",
        }
    }
}

/// A rejected payload: the command id if one could be read (else empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub id: String,
    pub reason: Rejection,
}

/// Nonces of recently issued commands: a set for lookup plus the same
/// entries ordered by `issued_ms`, so pruning pops only what expired.
#[derive(Debug)]
pub struct NonceCache {
    seen: HashSet<String>,
    by_issue: BTreeSet<(u64, String)>,
    capacity: usize,
}

impl NonceCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            by_issue: BTreeSet::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records `nonce`; fails if it is already live or the cache is full of
    /// live nonces. Entries issued before `now_ms - window_ms` are dropped first.
    fn admit(
        &mut self,
        nonce: &str,
        issued_ms: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<(), Rejection> {
        let oldest_live = now_ms.saturating_sub(window_ms);
        while let Some((issued, _)) = self.by_issue.first()
            && *issued < oldest_live
        {
            let (_, old) = self.by_issue.pop_first().expect("just seen");
            self.seen.remove(&old);
        }
        if self.seen.contains(nonce) {
            return Err(Rejection::Replayed(nonce.to_string()));
        }
        if self.seen.len() >= self.capacity {
            return Err(Rejection::ReplayCacheFull(self.seen.len()));
        }
        self.seen.insert(nonce.to_string());
        self.by_issue.insert((issued_ms, nonce.to_string()));
        Ok(())
    }
}

/// Checks commands for one node.
#[derive(Debug)]
pub struct Guard {
    secret: Secret,
    node: String,
    window_ms: u64,
    nonces: NonceCache,
    /// Commands issued before this are refused (the previous run's last admitted).
    floor_ms: u64,
    /// `issued_ms` of the last command admitted (persisted as the next run's floor).
    last_admitted_ms: u64,
}

impl Guard {
    pub fn new(secret: Secret, node: &str, window_ms: u64, nonce_capacity: usize) -> Self {
        Self {
            secret,
            node: node.to_string(),
            window_ms,
            nonces: NonceCache::new(nonce_capacity),
            floor_ms: 0,
            last_admitted_ms: 0,
        }
    }

    /// Picks up a previous run's replay state: its live nonces, and its last
    /// admitted `issued_ms` as the floor below which commands are refused.
    pub fn resume(&mut self, nonces: &[(u64, String)], last_admitted_ms: u64) {
        for (issued, nonce) in nonces {
            self.nonces.seen.insert(nonce.clone());
            self.nonces.by_issue.insert((*issued, nonce.clone()));
        }
        self.floor_ms = last_admitted_ms;
        self.last_admitted_ms = last_admitted_ms;
    }

    /// What to persist: live `(issued_ms, nonce)` pairs and the last admitted `issued_ms`.
    pub fn replay_state(&self) -> (Vec<(u64, String)>, u64) {
        let nonces = self.nonces.by_issue.iter().cloned().collect();
        (nonces, self.last_admitted_ms)
    }

    /// Admits `payload` received at `now_ms` (wall clock), or says why not.
    pub fn check(&mut self, payload: &[u8], now_ms: u64) -> Result<NodeCommand, Rejected> {
        let signed = decode(payload)?;
        let reject = |reason| Rejected {
            id: signed.cmd.id.clone(),
            reason,
        };
        let cmd = &signed.cmd;
        if cmd.v != PROTO_VERSION {
            return Err(reject(Rejection::UnsupportedVersion(cmd.v)));
        }
        signed
            .verify(self.secret.as_bytes())
            .map_err(|e| reject(Rejection::BadSignature(e.to_string())))?;
        if cmd.node != self.node {
            return Err(reject(Rejection::WrongNode {
                got: cmd.node.clone(),
                me: self.node.clone(),
            }));
        }
        check_window(cmd.issued_ms, now_ms, self.window_ms).map_err(reject)?;
        if cmd.issued_ms < self.floor_ms {
            return Err(reject(Rejection::BeforeRestart {
                issued_ms: cmd.issued_ms,
                floor_ms: self.floor_ms,
            }));
        }
        self.nonces
            .admit(&cmd.nonce, cmd.issued_ms, now_ms, self.window_ms)
            .map_err(reject)?;
        self.last_admitted_ms = self.last_admitted_ms.max(cmd.issued_ms);
        Ok(signed.cmd)
    }

    /// Live nonces held (for tests and metrics).
    pub fn nonces_held(&self) -> usize {
        self.nonces.len()
    }
}

/// `issued_ms` within ±`window_ms` of `now_ms` (inclusive), or why not.
pub(super) fn check_window(issued_ms: u64, now_ms: u64, window_ms: u64) -> Result<(), Rejection> {
    if now_ms > issued_ms && now_ms - issued_ms > window_ms {
        return Err(Rejection::Expired {
            age_ms: now_ms - issued_ms,
            window_ms,
        });
    }
    if issued_ms > now_ms && issued_ms - now_ms > window_ms {
        return Err(Rejection::FromFuture {
            ahead_ms: issued_ms - now_ms,
            window_ms,
        });
    }
    Ok(())
}

/// Decodes a signed command; on failure salvages the `id` for the ack.
fn decode(payload: &[u8]) -> Result<SignedCommand, Rejected> {
    if payload.len() > MAX_COMMAND_BYTES {
        return Err(Rejected {
            id: scan_id(&payload[..MAX_COMMAND_BYTES]),
            reason: Rejection::TooLarge(payload.len()),
        });
    }
    let signed: SignedCommand = serde_json::from_slice(payload).map_err(|e| Rejected {
        id: salvage_id(payload),
        reason: Rejection::Malformed(e.to_string()),
    })?;
    let cmd = &signed.cmd;
    if cmd.nonce.is_empty() || cmd.nonce.len() > MAX_TOKEN_LEN || cmd.id.len() > MAX_TOKEN_LEN {
        return Err(Rejected {
            id: cmd.id.chars().take(MAX_TOKEN_LEN).collect(),
            reason: Rejection::Malformed(format!(
                "nonce must be 1..={MAX_TOKEN_LEN} bytes and id at most {MAX_TOKEN_LEN}"
            )),
        });
    }
    Ok(signed)
}

pub(super) fn salvage_id(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("id")?.as_str().map(str::to_string))
        .filter(|id| id.len() <= MAX_TOKEN_LEN)
        .unwrap_or_default()
}

/// The `"id":"…"` near the start of a payload too large to decode.
pub(super) fn scan_id(head: &[u8]) -> String {
    let key = br#""id":""#;
    head.windows(key.len())
        .position(|w| w == key)
        .and_then(|at| {
            let rest = &head[at + key.len()..];
            let end = rest.iter().position(|&b| b == b'"')?;
            std::str::from_utf8(&rest[..end]).ok().map(str::to_string)
        })
        .filter(|id| id.len() <= MAX_TOKEN_LEN && !id.contains('\\'))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ChaosAction;

    const NOW: u64 = 1_700_000_000_000;
    const WINDOW: u64 = 30_000;

    fn guard(capacity: usize) -> Guard {
        Guard::new(Secret::from_bytes("k"), "pi2", WINDOW, capacity)
    }

    fn wire(node: &str, issued_ms: u64, nonce: &str, key: &[u8]) -> Vec<u8> {
        let cmd = NodeCommand {
            v: 1,
            id: format!("id-{nonce}"),
            node: node.into(),
            action: ChaosAction::StopK3s,
            down_for_s: 5,
            issued_ms,
            nonce: nonce.into(),
        };
        serde_json::to_vec(&cmd.sign(key)).unwrap()
    }

    fn code(r: Result<NodeCommand, Rejected>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|e| e.reason.code())
    }

    #[test]
    fn each_check_rejects_with_its_code() {
        let mut g = guard(16);
        assert_eq!(code(g.check(&wire("pi2", NOW, "a", b"k"), NOW)), "ok");
        assert_eq!(code(g.check(&wire("pi2", NOW, "a", b"k"), NOW)), "replayed");
        assert_eq!(
            code(g.check(&wire("pi2", NOW, "b", b"x"), NOW)),
            "bad-signature"
        );
        assert_eq!(
            code(g.check(&wire("pi3", NOW, "c", b"k"), NOW)),
            "wrong-node"
        );
        let old = NOW - WINDOW - 1;
        assert_eq!(code(g.check(&wire("pi2", old, "d", b"k"), NOW)), "expired");
        let ahead = NOW + WINDOW + 1;
        assert_eq!(
            code(g.check(&wire("pi2", ahead, "e", b"k"), NOW)),
            "from-future"
        );
        assert_eq!(code(g.check(b"{not json", NOW)), "malformed");
        // Only the admitted command holds a nonce: rejected ones never pollute the cache.
        assert_eq!(g.nonces_held(), 1);
    }

    #[test]
    fn window_edges_are_inclusive() {
        let mut g = guard(16);
        assert_eq!(
            code(g.check(&wire("pi2", NOW - WINDOW, "a", b"k"), NOW)),
            "ok"
        );
        assert_eq!(
            code(g.check(&wire("pi2", NOW + WINDOW, "b", b"k"), NOW)),
            "ok"
        );
    }

    #[test]
    fn malformed_salvages_the_id() {
        let mut g = guard(16);
        let e = g.check(br#"{"id":"c9","v":1}"#, NOW).unwrap_err();
        assert_eq!((e.id.as_str(), e.reason.code()), ("c9", "malformed"));
        let e = g.check(&[0xff, 0x00], NOW).unwrap_err();
        assert_eq!(e.id, "");
    }

    #[test]
    fn a_replay_after_pruning_is_still_rejected_as_expired() {
        let mut g = guard(16);
        let cmd = wire("pi2", NOW, "a", b"k");
        assert_eq!(code(g.check(&cmd, NOW)), "ok");
        // Later, another command prunes "a" out of the cache ...
        let later = NOW + WINDOW + 1;
        assert_eq!(code(g.check(&wire("pi2", later, "b", b"k"), later)), "ok");
        assert_eq!(g.nonces_held(), 1);
        // ... and the replay of "a" fails the window check instead.
        assert_eq!(code(g.check(&cmd, later)), "expired");
    }

    #[test]
    fn full_cache_fails_closed_then_recovers_when_nonces_expire() {
        let mut g = guard(2);
        assert_eq!(code(g.check(&wire("pi2", NOW, "a", b"k"), NOW)), "ok");
        assert_eq!(code(g.check(&wire("pi2", NOW, "b", b"k"), NOW)), "ok");
        assert_eq!(
            code(g.check(&wire("pi2", NOW, "c", b"k"), NOW)),
            "replay-cache-full"
        );
        let later = NOW + WINDOW + 1;
        assert_eq!(code(g.check(&wire("pi2", later, "c", b"k"), later)), "ok");
    }

    #[test]
    fn oversized_payload_is_too_large_with_its_id() {
        let mut g = guard(16);
        let big = format!(
            r#"{{"id":"big-1","pad":"{}"}}"#,
            "x".repeat(MAX_COMMAND_BYTES)
        );
        let e = g.check(big.as_bytes(), NOW).unwrap_err();
        assert_eq!((e.id.as_str(), e.reason.code()), ("big-1", "too-large"));
    }

    #[test]
    fn oversized_nonce_is_malformed() {
        let mut g = guard(16);
        let long = "n".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            code(g.check(&wire("pi2", NOW, &long, b"k"), NOW)),
            "malformed"
        );
    }
}
