//! VPS networking on the host: the bridge, one veth per VPS, addresses and
//! routes inside the VPS (netlink), and croft's own nftables tables (NAT,
//! port forwards, anti-spoofing, isolation, per-VPS firewalls).
//!
//! A VPS's veth is made by its supervisor between clone and exec of init
//! ([`attach`]): the host end is attached to the bridge, the other end is
//! created directly inside the VPS's network namespace as `eth0`, with its
//! MAC, addresses and default routes, so an image needs no network
//! configuration of its own and init starts with the network up. The pair
//! goes away with the VPS's network namespace.

pub mod netlink;
pub mod nft;
pub mod tc;

use netlink::Rtnl;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetError {
    #[error("netlink: cannot {what}")]
    Netlink {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what}")]
    Netns {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("network interface {0} does not exist")]
    NoLink(String),
    #[error("cannot write {path}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {what}: {detail}")]
    Nft { what: String, detail: String },
    #[error("bad network setting: {0}")]
    Invalid(String),
    #[error(transparent)]
    Command(#[from] crate::cmd::CommandError),
}

/// The name of the VPS's interface inside its network namespace.
pub const GUEST_IF: &str = "eth0";

/// A VPS's network interface, as its supervisor sets it up on every
/// (re)start of init.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NicSpec {
    /// The bridge the host end is attached to.
    pub bridge: String,
    /// The host end of the veth pair (stable for the VPS's life, so rules
    /// written for it keep matching across restarts).
    pub host_if: String,
    /// Its name inside: `eth0`, or `eth1`.. for further interfaces.
    #[serde(default = "guest_if")]
    pub guest_if: String,
    /// The VPS's MAC address, `0e:cf:..`.
    pub mac: String,
    /// Addresses with prefix length, `10.87.0.5/24`, `fd63::5/64`.
    pub addresses: Vec<String>,
    /// Default gateways, one per address family.
    pub gateways: Vec<IpAddr>,
    /// The gateways are outside the VPS's subnets (a routed network's
    /// 169.254.0.1 for a /32): each is reached through a link route first.
    #[serde(default)]
    pub onlink_gateways: bool,
    /// Bits per second the VPS may receive (shaped on the host end).
    #[serde(default)]
    pub ingress_bps: Option<u64>,
    /// Bits per second the VPS may send.
    #[serde(default)]
    pub egress_bps: Option<u64>,
}

fn guest_if() -> String {
    GUEST_IF.into()
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6], NetError> {
    let parts: Vec<&str> = text.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(NetError::Invalid(format!("MAC address {text:?}")));
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte =
            u8::from_str_radix(part, 16).map_err(|_| NetError::Invalid(format!("MAC address {text:?}")))?;
    }
    Ok(mac)
}

/// Parse `addr/prefix`.
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), NetError> {
    let bad = || NetError::Invalid(format!("address {text:?} (expected ADDRESS/PREFIX)"));
    let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok((addr, prefix))
}

/// Give the process `pid` (a VPS init waiting to exec) its network: a veth
/// whose host end joins the bridge and whose other end appears inside as
/// `eth0`, configured and up. On failure nothing is left behind.
pub fn attach(pid: i32, nic: &NicSpec) -> Result<(), NetError> {
    let mac = parse_mac(&nic.mac)?;
    let addresses = nic
        .addresses
        .iter()
        .map(|a| parse_cidr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|source| NetError::Netns {
        what: "open the VPS network namespace",
        source,
    })?;
    let mut host = Rtnl::new()?;
    // A host end still here belongs to an init that is gone (a crash, or
    // a reboot whose old namespace the kernel is still tearing down: it
    // may vanish between the lookup and the delete).
    if let Some(stale) = host.link_index(&nic.host_if)? {
        host.delete_link_if_present(stale)?;
    }
    let bridge = host.require_link(&nic.bridge)?;
    let host_index = host.create_veth(&nic.host_if, bridge, &nic.guest_if, mac, pid as u32)?;
    let configured = (|| {
        let mut inside = Rtnl::in_netns(&netns)?;
        let eth0 = inside.require_link(&nic.guest_if)?;
        for (addr, prefix) in &addresses {
            inside.add_address(eth0, *addr, *prefix)?;
        }
        inside.set_up(eth0)?;
        for gateway in &nic.gateways {
            if nic.onlink_gateways {
                let whole = if gateway.is_ipv4() { 32 } else { 128 };
                inside.add_link_route(eth0, *gateway, whole)?;
            }
            inside.add_default_route(eth0, *gateway)?;
        }
        // The VPS's bridge port receives only frames for its own MAC,
        // broadcast and multicast: no learning (the port's one MAC is a
        // static entry) and no flooding of unknown unicast, which would
        // otherwise show a VPS the first frames to a neighbour whose entry
        // has aged out.
        host.pin_bridge_port(host_index)?;
        host.set_static_fdb(host_index, mac)?;
        if nic.ingress_bps.is_some() || nic.egress_bps.is_some() {
            tc::set_limits(&nic.host_if, nic.ingress_bps, nic.egress_bps)?;
        }
        Ok(())
    })();
    if configured.is_err() {
        let _ = host.delete_link(host_index);
        tc::remove_ifb(&nic.host_if);
    }
    configured
}

/// Route `dst/prefix` via `gateway` on link `dev` of this namespace (a
/// prefix delegated to a VPS, through its address); with `remove`, take
/// the route away. Idempotent.
pub fn set_route_via(
    dev: &str,
    dst: IpAddr,
    prefix: u8,
    gateway: IpAddr,
    remove: bool,
) -> Result<(), NetError> {
    let mut rtnl = Rtnl::new()?;
    let index = rtnl.require_link(dev)?;
    rtnl.set_route_via(index, dst, prefix, gateway, remove)
}

/// Make uplink `uplink` answer for a routed network's addresses, where the
/// provider expects them on its link rather than routed to the host: ARP
/// for every IPv4 address the host routes elsewhere (`proxy_arp`), and
/// neighbour discovery for exactly `ipv6` (proxy entries, made and
/// removed to match).
pub fn sync_uplink_proxies(uplink: &str, ipv6: &[std::net::Ipv6Addr]) -> Result<(), NetError> {
    set_sysctl(&format!("/proc/sys/net/ipv4/conf/{uplink}/proxy_arp"))?;
    set_sysctl(&format!("/proc/sys/net/ipv6/conf/{uplink}/proxy_ndp"))?;
    let mut rtnl = Rtnl::new()?;
    let index = rtnl.require_link(uplink)?;
    let now = rtnl.ndp_proxies(index)?;
    for addr in ipv6.iter().filter(|a| !now.contains(a)) {
        rtnl.set_ndp_proxy(index, *addr, false)?;
    }
    for addr in now.iter().filter(|a| !ipv6.contains(a)) {
        rtnl.set_ndp_proxy(index, *addr, true)?;
    }
    Ok(())
}

/// Add (or remove) `cidr` on `eth0` of the VPS whose init is `pid`, live:
/// a change of its addresses. Run by its supervisor.
pub fn set_vps_address(pid: i32, cidr: &str, remove: bool) -> Result<(), NetError> {
    let (addr, prefix) = parse_cidr(cidr)?;
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|source| NetError::Netns {
        what: "open the VPS network namespace",
        source,
    })?;
    let mut inside = Rtnl::in_netns(&netns)?;
    let eth0 = inside.require_link(GUEST_IF)?;
    if remove {
        // Removing the primary IPv4 address would take the others of its
        // subnet (and the routes through them) with it: the next one is
        // made primary instead.
        if addr.is_ipv4() {
            set_sysctl_in(
                &netns,
                &format!("/proc/sys/net/ipv4/conf/{GUEST_IF}/promote_secondaries"),
            )?;
        }
        inside.delete_address(eth0, addr, prefix)
    } else {
        inside.add_address(eth0, addr, prefix)
    }
}

/// [`set_sysctl`] in network namespace `netns` (an open /proc/PID/ns/net):
/// /proc/sys/net shows the namespace of the thread that opens it.
fn set_sysctl_in(netns: &(impl AsFd + Sync), path: &str) -> Result<(), NetError> {
    in_netns(netns, || set_sysctl(path))
}

/// Run `f` in network namespace `netns` (an open /proc/PID/ns/net): a
/// short-lived thread enters it, so the caller's own thread never changes
/// namespace; what `f` makes there (a socket) keeps working there.
fn in_netns<T: Send>(
    netns: &(impl AsFd + Sync),
    f: impl FnOnce() -> Result<T, NetError> + Send,
) -> Result<T, NetError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetError::Netns {
                        what: "enter the VPS network namespace",
                        source: e.into(),
                    }
                })?;
                f()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetError::Netns {
                    what: "work in the VPS network namespace",
                    source: std::io::Error::other("the helper thread panicked"),
                })
            })
    })
}

/// Remove the host end of a VPS's veth if it is still there (its peer goes
/// with it), and its bandwidth-shaping device.
pub fn detach(host_if: &str) -> Result<(), NetError> {
    let mut host = Rtnl::new()?;
    for name in [host_if.to_string(), tc::ifb_name(host_if)] {
        if let Some(index) = host.link_index(&name)? {
            host.delete_link_if_present(index)?;
        }
    }
    Ok(())
}

/// Make sure bridge `name` exists, is up and holds `addresses` (the
/// gateways of its subnets), and that IPv4 forwarding is on. Idempotent.
/// Returns whether bridged traffic passes the IP hooks (br_netfilter),
/// which per-VPS firewalls need.
pub fn ensure_bridge(
    name: &str,
    addresses: &[(IpAddr, u8)],
    routes: &[(IpAddr, u8)],
) -> Result<bool, NetError> {
    let mut rtnl = Rtnl::new()?;
    let index = match rtnl.link_index(name)? {
        Some(i) => i,
        None => rtnl.create_bridge(name, bridge_mac(name))?,
    };
    for (addr, prefix) in addresses {
        rtnl.add_address(index, *addr, *prefix)?;
    }
    rtnl.set_up(index)?;
    // A routed network's pools are reached on its bridge (the VPSes there
    // answer for their addresses).
    for (dst, prefix) in routes {
        rtnl.add_link_route(index, *dst, *prefix)?;
    }
    enable_bridge_netfilter()
}

/// Turn on IPv4 forwarding and br_netfilter (bridged traffic through the
/// IP hooks); whether br_netfilter is there. What a bridge croft does not
/// own needs of the host.
pub fn enable_bridge_netfilter() -> Result<bool, NetError> {
    // Routing (and so NAT) of VPS traffic needs IPv4 forwarding. IPv6
    // forwarding is left alone: turning it on globally stops the host from
    // accepting router advertisements on its own uplinks.
    set_sysctl("/proc/sys/net/ipv4/ip_forward")?;
    // Bridged traffic between VPSes must pass the IP hooks, where the
    // per-VPS firewalls are: br_netfilter, loaded if it is a module (as
    // Docker and Proxmox do) and switched on.
    if !std::path::Path::new("/proc/sys/net/bridge").exists() {
        let _ = crate::cmd::run(Command::new("modprobe").arg("br_netfilter"));
    }
    let mut capable = true;
    for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        let path = format!("/proc/sys/net/bridge/{key}");
        if std::path::Path::new(&path).exists() {
            set_sysctl(&path)?;
        } else {
            capable = false;
        }
    }
    Ok(capable)
}

/// A fixed MAC for the bridge: left to itself the kernel gives a bridge
/// the lowest MAC of its ports, so the gateway's MAC (and the VPSes' ARP
/// entries for it) would change as VPSes come and go.
fn bridge_mac(name: &str) -> [u8; 6] {
    // FNV-1a of the name: stable, and different for differently named bridges.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let [a, b, c, d] = h.to_be_bytes();
    [0x0e, 0xcf, 0xff, a ^ b, c, d]
}

fn set_sysctl(path: &str) -> Result<(), NetError> {
    let path = PathBuf::from(path);
    if std::fs::read_to_string(&path)
        .map(|v| v.trim() != "1")
        .unwrap_or(true)
    {
        std::fs::write(&path, "1").map_err(|source| NetError::Sysctl { path, source })?;
    }
    Ok(())
}

/// Names of links starting with `prefix` (croft's host-side veths).
pub fn links_with_prefix(prefix: &str) -> Result<Vec<String>, NetError> {
    Rtnl::new()?.links_with_prefix(prefix)
}

/// Whether link `name` of this network namespace is a bridge.
pub fn is_bridge(name: &str) -> Result<bool, NetError> {
    Rtnl::new()?.is_bridge(name)
}

/// What a link has moved since it was made, as the kernel counts it
/// (a GSO packet counts once, with all its bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// The link's index: a new link behind the same name has another.
    pub index: u32,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Packets the link dropped, received and sent.
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// The counters of link `name` in this network namespace; `None` if it
/// does not exist.
pub fn link_counters(name: &str) -> Result<Option<LinkCounters>, NetError> {
    Rtnl::new()?.link_counters(name)
}

/// The counters of every link in this network namespace whose name starts
/// with `prefix`, by name, in one netlink dump.
pub fn links_counters(prefix: &str) -> Result<std::collections::HashMap<String, LinkCounters>, NetError> {
    Rtnl::new()?.links_counters(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_macs_and_cidrs() {
        assert_eq!(
            parse_mac("0e:cf:00:01:ff:10").unwrap(),
            [0x0e, 0xcf, 0, 1, 0xff, 0x10]
        );
        for bad in ["0e:cf:00:01:ff", "0e:cf:00:01:ff:1g", "", "0e:cf:00:01:ff:10:11"] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_cidr("10.87.0.5/24").unwrap(),
            ("10.87.0.5".parse().unwrap(), 24)
        );
        assert_eq!(
            parse_cidr("fd63::5/64").unwrap(),
            ("fd63::5".parse().unwrap(), 64)
        );
        for bad in ["10.87.0.5", "10.87.0.5/33", "fd63::5/129", "x/24", "10.87.0.5/"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }
}
