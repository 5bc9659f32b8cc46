//! What the network service changes on the host, behind [`NetHost`]: the
//! bridge, the nftables ruleset, VPS links and their shaping. The kernel
//! does it for real ([`KernelNet`]); [`SimNet`] keeps it in memory for
//! the simulated backend.

use croft_host::net::{nft, LinkCounters, NetError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Blocking calls (run them off the async threads).
pub trait NetHost: Send + Sync + 'static {
    /// What this host network is, for the logs: `kernel` or `simulated`.
    fn kind(&self) -> &'static str;
    /// Make sure the bridge exists with `addresses` and `routes` to it;
    /// whether bridged traffic passes the IP hooks (so per-VPS firewalls
    /// can be enforced).
    fn ensure_bridge(
        &self,
        bridge: &str,
        addresses: &[(IpAddr, u8)],
        routes: &[(IpAddr, u8)],
    ) -> Result<bool, NetError>;
    /// Whether the host routes IPv6 (a routed network's IPv6 pool needs
    /// it).
    fn ipv6_forwarding(&self) -> bool;
    /// Whether link `name` is a bridge (a bridged network's must be).
    fn is_bridge(&self, name: &str) -> bool;
    /// What a bridge croft does not own needs of the host (forwarding,
    /// br_netfilter); whether bridged traffic passes the IP hooks.
    fn bridge_netfilter(&self) -> Result<bool, NetError>;
    /// Make uplink `uplink` answer ARP for the addresses routed to the
    /// host's bridges and neighbour discovery for exactly `ipv6`.
    fn sync_uplink(&self, uplink: &str, ipv6: &[std::net::Ipv6Addr]) -> Result<(), NetError>;
    /// Route `dst/prefix` via `gateway` on bridge `dev` (a prefix
    /// delegated to a VPS), or with `remove` take the route away.
    fn route_via(
        &self,
        dev: &str,
        dst: IpAddr,
        prefix: u8,
        gateway: IpAddr,
        remove: bool,
    ) -> Result<(), NetError>;
    /// Load an nftables script (a whole ruleset or a change to it).
    fn apply_rules(&self, script: &str) -> Result<(), NetError>;
    /// Links whose names start with `prefix`.
    fn links(&self, prefix: &str) -> Result<Vec<String>, NetError>;
    /// Remove a VPS's host-side link and what shapes it; gone is removed.
    fn detach(&self, link: &str) -> Result<(), NetError>;
    /// Limit the bandwidth of a VPS's link.
    fn set_bandwidth(&self, host_if: &str, ingress: Option<u64>, egress: Option<u64>)
        -> Result<(), NetError>;
    /// Whether a service on the host listens on `port`.
    fn host_listens(&self, protocol: &str, port: u16) -> std::io::Result<bool>;
    /// What a VPS's host-side link has moved; `None` if it is not there.
    fn link_counters(&self, host_if: &str) -> Result<Option<LinkCounters>, NetError>;
    /// What every VPS's host-side link has moved, by name (those named
    /// `prefix`...), read at once.
    fn all_link_counters(&self, prefix: &str) -> Result<HashMap<String, LinkCounters>, NetError>;
}

pub struct KernelNet;

impl NetHost for KernelNet {
    fn kind(&self) -> &'static str {
        "kernel"
    }

    fn ensure_bridge(
        &self,
        bridge: &str,
        addresses: &[(IpAddr, u8)],
        routes: &[(IpAddr, u8)],
    ) -> Result<bool, NetError> {
        croft_host::net::ensure_bridge(bridge, addresses, routes)
    }

    fn ipv6_forwarding(&self) -> bool {
        std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").is_ok_and(|v| v.trim() == "1")
    }

    fn is_bridge(&self, name: &str) -> bool {
        croft_host::net::is_bridge(name).unwrap_or(false)
    }

    fn bridge_netfilter(&self) -> Result<bool, NetError> {
        croft_host::net::enable_bridge_netfilter()
    }

    fn route_via(
        &self,
        dev: &str,
        dst: IpAddr,
        prefix: u8,
        gateway: IpAddr,
        remove: bool,
    ) -> Result<(), NetError> {
        croft_host::net::set_route_via(dev, dst, prefix, gateway, remove)
    }

    fn sync_uplink(&self, uplink: &str, ipv6: &[std::net::Ipv6Addr]) -> Result<(), NetError> {
        croft_host::net::sync_uplink_proxies(uplink, ipv6)
    }

    fn apply_rules(&self, script: &str) -> Result<(), NetError> {
        nft::apply(script)
    }

    fn links(&self, prefix: &str) -> Result<Vec<String>, NetError> {
        croft_host::net::links_with_prefix(prefix)
    }

    fn detach(&self, link: &str) -> Result<(), NetError> {
        croft_host::net::detach(link)
    }

    fn set_bandwidth(
        &self,
        host_if: &str,
        ingress: Option<u64>,
        egress: Option<u64>,
    ) -> Result<(), NetError> {
        croft_host::net::tc::set_limits(host_if, ingress, egress)
    }

    fn host_listens(&self, protocol: &str, port: u16) -> std::io::Result<bool> {
        super::ipam::host_listens(protocol, port)
    }

    fn link_counters(&self, host_if: &str) -> Result<Option<LinkCounters>, NetError> {
        croft_host::net::link_counters(host_if)
    }

    fn all_link_counters(&self, prefix: &str) -> Result<HashMap<String, LinkCounters>, NetError> {
        croft_host::net::links_counters(prefix)
    }
}

/// The bandwidth limits of a link, (ingress, egress) in bits/s.
pub type Bandwidth = (Option<u64>, Option<u64>);

/// The host network in memory: every script loaded is kept, in order;
/// tests set what links have moved and read the bandwidth they were given.
#[derive(Default)]
pub struct SimNet {
    scripts: Mutex<Vec<String>>,
    fail_next: Mutex<Option<String>>,
    counters: Mutex<HashMap<String, LinkCounters>>,
    routes: Mutex<Vec<String>>,
    proxies: Mutex<HashMap<String, Vec<std::net::Ipv6Addr>>>,
    links: Mutex<Vec<String>>,
    bridges: Mutex<Vec<String>>,
    bandwidth: Mutex<HashMap<String, Bandwidth>>,
}

impl SimNet {
    /// Link `host_if` has moved `counters` (since it was made).
    pub fn set_counters(&self, host_if: &str, counters: LinkCounters) {
        self.counters
            .lock()
            .expect("sim net poisoned")
            .insert(host_if.into(), counters);
    }

    /// The routes made (`2001:db8:100:1::/64 via 2001:db8:100::1 dev
    /// croftbr1`).
    pub fn routes(&self) -> Vec<String> {
        self.routes.lock().expect("sim net poisoned").clone()
    }

    /// The host has a link named `name` (an uplink).
    pub fn add_link(&self, name: &str) {
        self.links.lock().expect("sim net poisoned").push(name.into());
    }

    /// The host has a bridge named `name` (the provider's link).
    pub fn add_bridge(&self, name: &str) {
        self.add_link(name);
        self.bridges.lock().expect("sim net poisoned").push(name.into());
    }

    /// The IPv6 addresses uplink `uplink` was last made to proxy.
    pub fn proxies(&self, uplink: &str) -> Option<Vec<std::net::Ipv6Addr>> {
        self.proxies
            .lock()
            .expect("sim net poisoned")
            .get(uplink)
            .cloned()
    }

    /// The bandwidth (ingress, egress) link `host_if` was last given.
    pub fn bandwidth(&self, host_if: &str) -> Option<Bandwidth> {
        self.bandwidth
            .lock()
            .expect("sim net poisoned")
            .get(host_if)
            .copied()
    }

    /// The next script fails to load, with `detail` (as nft would refuse
    /// it).
    pub fn fail_next_apply(&self, detail: &str) {
        *self.fail_next.lock().expect("sim net poisoned") = Some(detail.into());
    }

    /// The scripts loaded so far.
    pub fn scripts(&self) -> Vec<String> {
        self.scripts.lock().expect("sim net poisoned").clone()
    }
}

impl NetHost for SimNet {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    fn ensure_bridge(
        &self,
        _bridge: &str,
        _addresses: &[(IpAddr, u8)],
        _routes: &[(IpAddr, u8)],
    ) -> Result<bool, NetError> {
        Ok(true)
    }

    fn ipv6_forwarding(&self) -> bool {
        true
    }

    fn is_bridge(&self, name: &str) -> bool {
        self.bridges
            .lock()
            .expect("sim net poisoned")
            .iter()
            .any(|l| l == name)
    }

    fn bridge_netfilter(&self) -> Result<bool, NetError> {
        Ok(true)
    }

    fn sync_uplink(&self, uplink: &str, ipv6: &[std::net::Ipv6Addr]) -> Result<(), NetError> {
        self.proxies
            .lock()
            .expect("sim net poisoned")
            .insert(uplink.into(), ipv6.to_vec());
        Ok(())
    }

    fn route_via(
        &self,
        dev: &str,
        dst: IpAddr,
        prefix: u8,
        gateway: IpAddr,
        remove: bool,
    ) -> Result<(), NetError> {
        let route = format!("{dst}/{prefix} via {gateway} dev {dev}");
        let mut routes = self.routes.lock().expect("sim net poisoned");
        routes.retain(|r| *r != route);
        if !remove {
            routes.push(route);
        }
        Ok(())
    }

    fn apply_rules(&self, script: &str) -> Result<(), NetError> {
        if let Some(detail) = self.fail_next.lock().expect("sim net poisoned").take() {
            return Err(NetError::Nft {
                what: "load croft's nftables rules".into(),
                detail,
            });
        }
        self.scripts
            .lock()
            .expect("sim net poisoned")
            .push(script.to_string());
        Ok(())
    }

    fn links(&self, prefix: &str) -> Result<Vec<String>, NetError> {
        Ok(self
            .links
            .lock()
            .expect("sim net poisoned")
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn detach(&self, _link: &str) -> Result<(), NetError> {
        Ok(())
    }

    fn set_bandwidth(
        &self,
        host_if: &str,
        ingress: Option<u64>,
        egress: Option<u64>,
    ) -> Result<(), NetError> {
        self.bandwidth
            .lock()
            .expect("sim net poisoned")
            .insert(host_if.into(), (ingress, egress));
        Ok(())
    }

    fn host_listens(&self, _protocol: &str, _port: u16) -> std::io::Result<bool> {
        Ok(false)
    }

    fn link_counters(&self, host_if: &str) -> Result<Option<LinkCounters>, NetError> {
        Ok(self
            .counters
            .lock()
            .expect("sim net poisoned")
            .get(host_if)
            .copied())
    }

    fn all_link_counters(&self, prefix: &str) -> Result<HashMap<String, LinkCounters>, NetError> {
        Ok(self
            .counters
            .lock()
            .expect("sim net poisoned")
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, c)| (name.clone(), *c))
            .collect())
    }
}
