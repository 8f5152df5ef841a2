//! Choosing the isolated rack's subnet: a private /24 that overlaps no
//! address, route or gateway this machine already has (read from
//! `ip -j -4 addr` and `ip -j -4 route show table all`). A fixed range could
//! be the machine's own uplink — taking its gateway's address would cut the
//! machine off — so nothing is assumed free.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

/// Where candidates come from, in this order: RFC 1918 and the shared
/// address space (RFC 6598), away from the ranges home routers, Docker and
/// k3s pick by default (10.0/16, 10.42/16, 10.43/16, 172.17/16, 192.168/16).
const POOLS: [(u8, u8); 3] = [(10, 254), (172, 31), (100, 127)];

/// Every candidate /24, starting at `start` (spreads concurrent racks).
pub fn candidates(start: u16) -> impl Iterator<Item = Ipv4Net> {
    let all = POOLS.iter().flat_map(|&(a, b)| {
        (0..=255u8).map(move |c| Ipv4Net::new(Ipv4Addr::new(a, b, c, 0), 24).expect("/24"))
    });
    let all: Vec<Ipv4Net> = all.collect();
    let n = all.len();
    (0..n).map(move |i| all[(i + start as usize) % n])
}

/// The networks already in use: every address's network, every route's
/// destination (but the default route) and every gateway.
pub fn in_use(addrs: &Value, routes: &Value) -> Vec<Ipv4Net> {
    let mut used = Vec::new();
    for link in addrs.as_array().into_iter().flatten() {
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let (Some(ip), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64()) else {
                continue;
            };
            if let (Ok(ip), Ok(len)) = (ip.parse::<Ipv4Addr>(), u8::try_from(len))
                && let Ok(net) = Ipv4Net::new(ip, len)
            {
                used.push(net.trunc());
            }
        }
    }
    for r in routes.as_array().into_iter().flatten() {
        if let Some(dst) = r["dst"].as_str()
            && let Some(net) = parse_dst(dst)
            && net.prefix_len() > 0
        {
            used.push(net);
        }
        if let Some(gw) = r["gateway"]
            .as_str()
            .and_then(|g| g.parse::<Ipv4Addr>().ok())
        {
            used.push(Ipv4Net::from(gw));
        }
    }
    used
}

/// A route's `dst`: `default`, an address (a /32) or a network.
fn parse_dst(dst: &str) -> Option<Ipv4Net> {
    if dst == "default" {
        return None;
    }
    dst.parse::<Ipv4Net>()
        .ok()
        .or_else(|| dst.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
        .map(|n| n.trunc())
}

/// Whether two networks share any address.
fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first candidate from `start` that overlaps nothing in `used`.
pub fn choose(used: &[Ipv4Net], start: u16) -> Option<Ipv4Net> {
    candidates(start).find(|c| !used.iter().any(|u| overlaps(c, u)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_machine() -> (Value, Value) {
        let addrs = serde_json::json!([
            {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
            {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "192.0.2.2", "prefixlen": 24}]},
            {"ifname": "wg0", "addr_info": [{"family": "inet", "local": "10.254.3.7", "prefixlen": 24}]}
        ]);
        let routes = serde_json::json!([
            {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
            {"dst": "192.0.2.0/24", "dev": "eth0"},
            {"dst": "10.254.0.0/23", "gateway": "172.31.0.9", "dev": "eth0"},
            {"type": "local", "dst": "127.0.0.1", "dev": "lo", "table": "local"}
        ]);
        (addrs, routes)
    }

    #[test]
    fn skips_every_address_route_and_gateway_in_use() {
        let (addrs, routes) = this_machine();
        let used = in_use(&addrs, &routes);
        assert!(used.contains(&"192.0.2.0/24".parse().unwrap()));
        assert!(used.contains(&"172.31.0.9/32".parse().unwrap()));
        assert!(
            !used.iter().any(|n| n.prefix_len() == 0),
            "default route ignored"
        );
        // 10.254.0/23 is routed and 10.254.3/24 is an address: the first free is .2.
        assert_eq!(choose(&used, 0), Some("10.254.2.0/24".parse().unwrap()));
        // 172.31.0.0/24 holds a gateway.
        let from_172 = 256;
        assert_eq!(
            choose(&used, from_172),
            Some("172.31.1.0/24".parse().unwrap())
        );
    }

    #[test]
    fn a_wide_route_covering_a_pool_rules_it_out() {
        let routes = serde_json::json!([{"dst": "10.0.0.0/8", "dev": "eth1"}]);
        let used = in_use(&serde_json::json!([]), &routes);
        let got = choose(&used, 0).unwrap();
        assert_eq!(got, "172.31.0.0/24".parse().unwrap());
    }

    #[test]
    fn nothing_free_is_none() {
        let used: Vec<Ipv4Net> = ["10.0.0.0/8", "172.16.0.0/12", "100.64.0.0/10"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(choose(&used, 7), None);
    }

    #[test]
    fn candidates_wrap_around_from_the_start() {
        let n = candidates(0).count();
        assert_eq!(n, 3 * 256);
        assert_eq!(candidates(n as u16 - 1).nth(1), candidates(0).next());
    }
}
