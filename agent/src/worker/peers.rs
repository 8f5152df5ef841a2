//! Peer discovery and liveness: which other workers a ball may be forwarded
//! to. Candidates come from a static list, a file re-read on every refresh and
//! the DNS A records of a headless Service re-resolved on every refresh. Every
//! refresh probes each candidate's `/healthz` (which names the worker, so the
//! worker finds and skips itself); only peers that answered are live. A peer
//! that fails a forward leaves the live set at once and comes back only when a
//! later refresh's probe succeeds, so a killed worker stops receiving balls
//! within one refresh at most (at once, when it fails a forward).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::Uri;
use rand::Rng;
use tokio_util::sync::CancellationToken;

/// Where peers come from.
#[derive(Debug, Clone, Default)]
pub struct PeerSources {
    /// Base URLs (`http://host:port`).
    pub static_urls: Vec<String>,
    /// A file with one base URL per line (`#` comments, blank lines ignored).
    pub file: Option<PathBuf>,
    /// `host:port` whose A records are the peers (headless Service).
    pub dns: Option<String>,
}

/// A live peer: its base URL and the ball endpoint (parsed once, shared
/// cheaply: a `Uri` clone is a reference count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub base: Arc<str>,
    pub balls_uri: Uri,
}

impl Peer {
    /// `None` when `base` does not make a valid `http://` ball URI.
    fn new(base: &str) -> Option<Self> {
        let base = base.trim_end_matches('/');
        let balls_uri: Uri = format!("{base}/v1/balls").parse().ok()?;
        (balls_uri.scheme_str() == Some("http")).then(|| Peer {
            base: base.into(),
            balls_uri,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    /// Candidates other than this worker, from the last refresh.
    known: Vec<String>,
    live: Vec<Peer>,
}

/// The worker's view of its peers, shared by the HTTP handlers, the ball
/// tasks and the refresh task.
#[derive(Debug, Clone, Default)]
pub struct PeerSet {
    state: Arc<RwLock<State>>,
}

/// A snapshot for `/v1/peers` and the tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerView {
    pub known: Vec<String>,
    pub live: Vec<String>,
}

impl PeerSet {
    /// A random live peer not in `exclude`.
    pub fn pick(&self, exclude: &[Arc<str>]) -> Option<Peer> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let candidates = state
            .live
            .iter()
            .filter(|p| !exclude.contains(&p.base))
            .count();
        if candidates == 0 {
            return None;
        }
        let n = rand::rng().random_range(0..candidates);
        state
            .live
            .iter()
            .filter(|p| !exclude.contains(&p.base))
            .nth(n)
            .cloned()
    }

    /// Takes a peer out of the live set after a failed forward.
    pub fn mark_dead(&self, base: &str) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let before = state.live.len();
        state.live.retain(|p| &*p.base != base);
        if state.live.len() != before {
            tracing::info!(
                peer = base,
                "peer failed a forward, avoided until a probe succeeds"
            );
        }
    }

    pub fn live_count(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .live
            .len()
    }

    pub fn view(&self) -> PeerView {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        PeerView {
            known: state.known.clone(),
            live: state.live.iter().map(|p| p.base.to_string()).collect(),
        }
    }

    fn set(&self, known: Vec<String>, live: Vec<Peer>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.known = known;
        state.live = live;
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// Answered, naming this worker.
    Alive(String),
    /// Did not answer within the probe timeout (busy, or unreachable).
    Slow,
    /// Refused the connection or answered an error.
    Down,
}

/// Probes and candidate gathering for one worker.
#[derive(Debug, Clone)]
pub struct Refresher {
    pub sources: PeerSources,
    /// This worker's name: a candidate whose `/healthz` names it is itself.
    pub self_name: String,
    pub client: reqwest::Client,
    pub probe_timeout: Duration,
}

impl Refresher {
    /// Gathers the candidate base URLs from every source (errors are logged:
    /// a missing file or a failed lookup leaves the other sources working).
    pub async fn candidates(&self) -> BTreeSet<String> {
        let mut urls: BTreeSet<String> = self
            .sources
            .static_urls
            .iter()
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if let Some(path) = &self.sources.file {
            match tokio::fs::read_to_string(path).await {
                Ok(text) => urls.extend(parse_peer_lines(&text)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read peers file")
                }
            }
        }
        if let Some(host_port) = &self.sources.dns {
            match tokio::net::lookup_host(host_port.as_str()).await {
                Ok(addrs) => urls.extend(addrs.map(|a| format!("http://{a}"))),
                Err(e) => tracing::warn!(dns = %host_port, error = %e, "peer DNS lookup failed"),
            }
        }
        urls
    }

    /// Probes one candidate's `/healthz`.
    async fn probe(&self, base: &str) -> Probe {
        let sent = self
            .client
            .get(format!("{base}/healthz"))
            .timeout(self.probe_timeout)
            .send()
            .await;
        let resp = match sent {
            Ok(r) if r.status().is_success() => r,
            Ok(_) => return Probe::Down,
            Err(e) if e.is_timeout() => return Probe::Slow,
            Err(_) => return Probe::Down,
        };
        match resp.json::<super::http::Health>().await {
            Ok(h) => Probe::Alive(h.worker),
            Err(e) if e.is_timeout() => Probe::Slow,
            Err(_) => Probe::Down,
        }
    }

    /// One refresh: gather candidates, probe them all concurrently, publish
    /// the result into `peers`. A peer too busy to answer the probe in time
    /// keeps its current state: only a refused probe takes a live peer out.
    pub async fn refresh(&self, peers: &PeerSet) {
        let candidates = self.candidates().await;
        let probes = candidates.iter().map(|base| async move {
            let probe = self.probe(base).await;
            (base.clone(), probe)
        });
        let results = futures::future::join_all(probes).await;
        let was_live: BTreeSet<String> = peers.view().live.into_iter().collect();
        let mut known = Vec::new();
        let mut live = Vec::new();
        for (base, probe) in results {
            let alive = match probe {
                Probe::Alive(n) if n == self.self_name => continue,
                Probe::Alive(_) => true,
                Probe::Slow => was_live.contains(&base),
                Probe::Down => false,
            };
            match Peer::new(&base) {
                Some(peer) if alive => live.push(peer),
                Some(_) => {}
                None => tracing::warn!(peer = %base, "not an http:// peer URL, never forwarded to"),
            }
            known.push(base);
        }
        tracing::debug!(known = known.len(), live = live.len(), "peers refreshed");
        peers.set(known, live);
    }

    /// Refreshes every `period` until `cancel` fires (the first one at once).
    pub async fn run(self, peers: PeerSet, period: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => self.refresh(&peers).await,
            }
        }
    }
}

/// Parses a peers file: one base URL per line, `#` comments and blank lines skipped.
pub fn parse_peer_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_file_lines() {
        let got: Vec<String> =
            parse_peer_lines("http://a:1/\n# c\n\n  http://b:2 # two\n").collect();
        assert_eq!(got, vec!["http://a:1", "http://b:2"]);
    }

    #[test]
    fn pick_excludes_tried_and_dead() {
        let set = PeerSet::default();
        set.set(
            vec!["http://a".into(), "http://b".into()],
            vec![
                Peer::new("http://a").unwrap(),
                Peer::new("http://b/").unwrap(),
            ],
        );
        let a: Arc<str> = "http://a".into();
        for _ in 0..20 {
            assert_eq!(
                &*set.pick(std::slice::from_ref(&a)).unwrap().base,
                "http://b"
            );
        }
        set.mark_dead("http://b");
        assert!(set.pick(&[a]).is_none());
        assert_eq!(set.live_count(), 1);
        assert_eq!(set.view().known.len(), 2);
        assert_eq!(
            Peer::new("http://b/").unwrap().balls_uri,
            "http://b/v1/balls"
        );
        assert!(Peer::new("https://c").is_none());
        assert!(Peer::new("not a url").is_none());
    }
}
