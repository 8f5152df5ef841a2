//! The isolated local rack's network (`--isolation netns`): one network
//! namespace per node, each with one veth into a rack bridge on the host.
//! The control side (embedded broker, controller, ball factory) is the
//! bridge's address `.1` of a private /24 chosen at start so that it
//! collides with nothing this machine has (`subnet.rs`); node `i` is `.1+i`
//! inside its namespace. Faults become network events: a node's link goes
//! down and up (`net-drop`, `power-relay`), or a blackhole route to the
//! control address inside its namespace cuts it from the control side while
//! it still reaches its peers on the bridge (`partition`).
//!
//! Names carry a 4-hex tag of the run: bridge `rp<tag>b`, host-side veth
//! `rp<tag>n<i>`, node-side veth `rp<tag>p<i>`, namespace `rp<tag>-node<i>`.
//! Everything is removed on [`RackNet::teardown`] and on drop (Ctrl-C,
//! panic); what a crashed run left is removed on the next start
//! (`leftovers.rs`). Needs root and iproute2.

mod ip;
mod leftovers;
mod subnet;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

pub use ip::NetError;
use ip::{ip, ip_json, ip_quiet};
pub use leftovers::MARKER_DIR;

/// Why namespaces cannot be used here, or `Ok` when they can: root, and
/// an `ip netns` that works.
pub fn available() -> Result<(), NetError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(NetError::Unavailable(
            "not root (network namespaces and veths need CAP_NET_ADMIN)".into(),
        ));
    }
    ip(&["netns", "list"]).map_err(|e| NetError::Unavailable(e.to_string()))?;
    Ok(())
}

/// The network of one isolated rack; removed when dropped.
#[derive(Debug)]
pub struct RackNet {
    tag: String,
    subnet: Ipv4Net,
    nodes: u8,
    marker: PathBuf,
    /// Set once torn down (teardown is idempotent).
    gone: Mutex<bool>,
}

impl RackNet {
    /// Creates the bridge and `nodes` namespaces for the run `label`,
    /// after removing what crashed runs left.
    pub fn create(nodes: u8, label: &str) -> Result<Self, NetError> {
        if nodes == 0 || nodes > 253 {
            return Err(NetError::TooManyNodes);
        }
        available()?;
        let lock = leftovers::lock()?;
        leftovers::clean_dead()?;
        let (tag, marker) = claim_tag(label)?;
        let used = subnet::in_use(
            &ip_json(&["-4", "addr", "show"])?,
            &ip_json(&["-4", "route", "show", "table", "all"])?,
        );
        let start = u16::from_str_radix(&tag, 16).unwrap_or(0);
        let Some(subnet) = subnet::choose(&used, start) else {
            let _ = std::fs::remove_file(&marker);
            return Err(NetError::NoSubnet);
        };
        let net = RackNet {
            subnet,
            tag,
            nodes,
            marker,
            gone: Mutex::new(false),
        };
        // From here on, a failure drops `net`, which removes what was made.
        net.make_bridge()?;
        drop(lock);
        for i in 1..=nodes {
            net.make_node(i)?;
        }
        net.check_routes()?;
        tracing::info!(tag = %net.tag, subnet = %net.subnet, nodes, bridge = %net.bridge(), "isolated rack network created");
        Ok(net)
    }

    /// The run's tag (4 hex digits) every name carries.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The rack's /24.
    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    /// The control side's address on the bridge (broker, controller, factory).
    pub fn control_ip(&self) -> Ipv4Addr {
        self.host(1)
    }

    /// Node `i`'s address (1-based) inside its namespace.
    pub fn node_ip(&self, i: u8) -> Ipv4Addr {
        self.host(1 + u32::from(i))
    }

    fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.network()) + n)
    }

    /// The bridge's name.
    pub fn bridge(&self) -> String {
        format!("rp{}b", self.tag)
    }

    /// Node `i`'s namespace.
    pub fn namespace(&self, i: u8) -> String {
        format!("rp{}-node{i}", self.tag)
    }

    fn host_veth(&self, i: u8) -> String {
        format!("rp{}n{i}", self.tag)
    }

    fn node_veth(&self, i: u8) -> String {
        format!("rp{}p{i}", self.tag)
    }

    /// The prefix of every name this rack creates (`ip link`, `ip netns list`).
    pub fn name_prefix(&self) -> String {
        format!("rp{}", self.tag)
    }

    fn make_bridge(&self) -> Result<(), NetError> {
        let (br, addr) = (self.bridge(), format!("{}/24", self.control_ip()));
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&["addr", "add", &addr, "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        Ok(())
    }

    fn make_node(&self, i: u8) -> Result<(), NetError> {
        let (ns, host, peer) = (self.namespace(i), self.host_veth(i), self.node_veth(i));
        let addr = format!("{}/24", self.node_ip(i));
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &host, "type", "veth", "peer", "name", &peer, "netns", &ns,
        ])?;
        ip(&["link", "set", &host, "master", &self.bridge(), "up"])?;
        ip(&["-n", &ns, "addr", "add", &addr, "dev", &peer])?;
        ip(&["-n", &ns, "link", "set", &peer, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// Every node address must route through the bridge before any traffic.
    fn check_routes(&self) -> Result<(), NetError> {
        for i in 1..=self.nodes {
            let ip = self.node_ip(i).to_string();
            let got = ip_json(&["route", "get", &ip])?;
            let dev = got[0]["dev"].as_str().unwrap_or_default().to_string();
            if dev != self.bridge() {
                return Err(NetError::Misrouted {
                    ip,
                    bridge: self.bridge(),
                    got: got.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Pulls node `i`'s cable: its link goes down, its processes run on.
    pub fn link_down(&self, i: u8) -> Result<(), NetError> {
        ip(&["link", "set", &self.host_veth(i), "down"]).map(drop)
    }

    /// Plugs node `i`'s cable back in.
    pub fn link_up(&self, i: u8) -> Result<(), NetError> {
        ip(&["link", "set", &self.host_veth(i), "up"]).map(drop)
    }

    /// Cuts node `i` from the control side: inside its namespace the control
    /// address becomes a blackhole, so nothing it sends reaches the broker
    /// or the controller and no answer to them leaves it, while its peers
    /// stay on-link through the bridge.
    pub fn partition(&self, i: u8) -> Result<(), NetError> {
        let dst = format!("{}/32", self.control_ip());
        ip(&["-n", &self.namespace(i), "route", "add", "blackhole", &dst]).map(drop)
    }

    /// Heals node `i`'s partition.
    pub fn heal(&self, i: u8) -> Result<(), NetError> {
        let dst = format!("{}/32", self.control_ip());
        ip(&["-n", &self.namespace(i), "route", "del", "blackhole", &dst]).map(drop)
    }

    /// Removes the namespaces, the veths and the bridge, then the marker.
    /// Processes still inside a namespace keep it alive until they exit,
    /// but its name is gone at once. Idempotent.
    pub fn teardown(&self) {
        let mut gone = self.gone.lock().unwrap_or_else(|e| e.into_inner());
        if std::mem::replace(&mut *gone, true) {
            return;
        }
        for i in 1..=self.nodes {
            ip_quiet(&["netns", "del", &self.namespace(i)]);
            ip_quiet(&["link", "del", &self.host_veth(i)]);
        }
        ip_quiet(&["link", "del", &self.bridge()]);
        if let Err(e) = leftovers::remove_all(&self.tag) {
            tracing::warn!(error = %e, tag = %self.tag, "cannot check for leftovers");
        }
        let _ = std::fs::remove_file(&self.marker);
        tracing::info!(tag = %self.tag, "isolated rack network removed");
    }
}

impl Drop for RackNet {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A tag derived from the run label that no live rack holds, and its marker.
fn claim_tag(label: &str) -> Result<(String, PathBuf), NetError> {
    for attempt in 0u32..1000 {
        let seed = format!("{label}/{}/{attempt}", std::process::id());
        let tag = hex::encode(&Sha256::digest(seed.as_bytes())[..2]);
        let taken = ip(&["link", "show", &format!("rp{tag}b")]).is_ok();
        if taken {
            continue;
        }
        if let Some(marker) = leftovers::claim(&tag, label)? {
            return Ok((tag, marker));
        }
    }
    Err(NetError::Unavailable("no free rack tag".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_names() {
        let net = RackNet {
            tag: "a1b2".into(),
            subnet: "10.254.7.0/24".parse().unwrap(),
            nodes: 253,
            marker: PathBuf::new(),
            gone: Mutex::new(true),
        };
        assert_eq!(net.bridge(), "rpa1b2b");
        assert!(net.host_veth(253).len() <= 15 && net.node_veth(253).len() <= 15);
        assert_eq!(net.control_ip(), Ipv4Addr::new(10, 254, 7, 1));
        assert_eq!(net.node_ip(1), Ipv4Addr::new(10, 254, 7, 2));
        assert_eq!(net.node_ip(253), Ipv4Addr::new(10, 254, 7, 254));
        assert_eq!(net.namespace(3), "rpa1b2-node3");
    }
}
