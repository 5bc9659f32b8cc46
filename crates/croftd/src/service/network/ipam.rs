//! The VPS network croftd manages: its settings, address management (IPAM)
//! and the rules derived from the state database.
//!
//! `default` comes from croftd's configuration (a bridge with an IPv4
//! subnet, NAT'ed out by default, and an IPv6 /64); others are made
//! through the API: `nat` like it, `routed` (public pools routed to the
//! host) or `bridged` (an existing host bridge, the provider's link). A
//! network's `pool` may narrow what its VPSes get to ranges of its
//! subnets. Every VPS gets one interface with a stable MAC, an IPv4 and an
//! IPv6 address recorded in the `nics` table (UNIQUE per network, so no
//! address is ever given twice; freed with the VPS).

use serde::Deserialize;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetworkError {
    #[error("invalid network setting {key}: {why}")]
    Config { key: &'static str, why: String },
    #[error("{0}")]
    Address(String),
    #[error("no free {family} address left in {subnet}")]
    Exhausted { family: &'static str, subnet: String },
}

/// The `[network]` table of croftd's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Give VPSes a network at all (off: loopback only).
    pub enabled: bool,
    pub bridge: String,
    /// The bridge's IPv4 address and prefix (the VPSes' gateway); empty
    /// for no IPv4.
    pub ipv4: String,
    /// The bridge's IPv6 address and prefix; empty for no IPv6.
    pub ipv6: String,
    /// Masquerade IPv4 traffic from VPSes leaving the subnet.
    pub nat: bool,
    /// Drop traffic between VPSes (each still reaches the gateway).
    pub isolated: bool,
    /// Name servers written to each VPS's /etc/resolv.conf; default: the
    /// host's own.
    pub dns: Option<Vec<IpAddr>>,
    /// Host ports no port forward may take (TCP or UDP): by default SSH
    /// and DNS, whose host services a forward would hijack even while
    /// they are down. A port a host service listens on is refused too.
    pub reserved_ports: Vec<u16>,
    /// What VPSes may reach on the host itself besides ICMP, as
    /// `protocol/port[-port]` (`udp/53` for a resolver on the gateway):
    /// everything else the host listens on is closed to them.
    pub host_services: Vec<String>,
    /// Outbound traffic of every VPS the provider drops, as
    /// `protocol/port[-port]`: by default SMTP (tcp/25), the usual
    /// anti-spam rule; a VPS the admin sets `firewall.provider_exempt` on
    /// is spared.
    pub blocked_egress: Vec<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enabled: true,
            bridge: "croftbr0".into(),
            ipv4: "10.87.0.1/24".into(),
            // fd63:726f:6674::/48 spells "croft": a unique local prefix.
            ipv6: "fd63:726f:6674::1/64".into(),
            nat: true,
            isolated: false,
            dns: None,
            reserved_ports: vec![22, 53],
            host_services: Vec::new(),
            blocked_egress: vec!["tcp/25".into()],
        }
    }
}

/// Whether a socket of this host (croftd's network namespace) listens on
/// `port`: a TCP socket in LISTEN, or any bound UDP socket. A port forward
/// there would take its traffic from the host service.
pub fn host_listens(protocol: &str, port: u16) -> std::io::Result<bool> {
    let tcp = protocol == "tcp";
    for family in ["", "6"] {
        let table = format!("/proc/net/{protocol}{family}");
        match std::fs::read_to_string(&table) {
            Ok(text) if listens_in(&text, port, tcp) => return Ok(true),
            Ok(_) => {}
            // No IPv6 on this host.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// [`host_listens`] on the text of one /proc/net/{tcp,udp}{,6} table:
/// `sl local_address rem_address st ...`, addresses as `HEXADDR:HEXPORT`.
fn listens_in(table: &str, port: u16, tcp: bool) -> bool {
    const TCP_LISTEN: &str = "0A";
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields
            .get(1)
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        local_port == Some(port) && (!tcp || fields.get(3) == Some(&TCP_LISTEN))
    })
}

/// A subnet as croft uses it: the bridge (gateway) address and prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub gateway: IpAddr,
    pub prefix: u8,
}

impl Subnet {
    fn bits(&self) -> u8 {
        if self.gateway.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn to_int(addr: IpAddr) -> u128 {
        match addr {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        }
    }

    fn addr_at(&self, v: u128) -> IpAddr {
        match self.gateway {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
        }
    }

    fn host_bits(&self) -> u32 {
        u32::from(self.bits() - self.prefix)
    }

    pub fn network(&self) -> IpAddr {
        let mask = if self.host_bits() >= 128 {
            0
        } else {
            !((1u128 << self.host_bits()) - 1)
        };
        self.addr_at(Self::to_int(self.gateway) & mask)
    }

    /// `10.87.0.0/24`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network(), self.prefix)
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.gateway.is_ipv4() && {
            let shift = self.host_bits();
            shift >= 128 || (Self::to_int(addr) >> shift) == (Self::to_int(self.gateway) >> shift)
        }
    }

    /// Index of `addr` in the subnet (0 is the network address).
    fn offset(&self, addr: IpAddr) -> u128 {
        Self::to_int(addr) - Self::to_int(self.network())
    }

    /// How many host indexes a VPS may get: 1 .. last (IPv4 excludes the
    /// broadcast address). Capped: nobody runs 2^64 VPSes.
    fn last_index(&self) -> u128 {
        let size = 1u128 << self.host_bits().min(32);
        if self.gateway.is_ipv4() {
            size.saturating_sub(2)
        } else {
            size - 1
        }
    }

    /// Whether a VPS may have `addr`: inside, and not the network,
    /// broadcast or gateway address.
    pub fn check_assignable(&self, addr: IpAddr) -> Result<(), NetworkError> {
        if !self.contains(addr) {
            return Err(NetworkError::Address(format!(
                "{addr} is outside the network's subnet {}",
                self.cidr()
            )));
        }
        let i = self.offset(addr);
        if addr == self.gateway {
            return Err(NetworkError::Address(format!("{addr} is the network's gateway")));
        }
        if i == 0 || (self.gateway.is_ipv4() && i > self.last_index()) {
            return Err(NetworkError::Address(format!(
                "{addr} is the network or broadcast address of {}",
                self.cidr()
            )));
        }
        Ok(())
    }

    /// The lowest free address, trying index `prefer` first (so a VPS's
    /// IPv6 address can end like its IPv4 one).
    pub fn allocate(&self, used: &HashSet<IpAddr>, prefer: Option<u128>) -> Result<IpAddr, NetworkError> {
        let gateway = self.offset(self.gateway);
        let free = |i: u128| {
            let a = self.addr_at(Self::to_int(self.network()) + i);
            (i != gateway && !used.contains(&a)).then_some(a)
        };
        if let Some(a) = prefer
            .filter(|i| (1..=self.last_index()).contains(i))
            .and_then(free)
        {
            return Ok(a);
        }
        (1..=self.last_index())
            .find_map(free)
            .ok_or_else(|| NetworkError::Exhausted {
                family: if self.gateway.is_ipv4() { "IPv4" } else { "IPv6" },
                subnet: self.cidr(),
            })
    }

    /// Host index of `addr`, to prefer the same one in another subnet.
    pub fn index_of(&self, addr: IpAddr) -> u128 {
        self.offset(addr)
    }
}

/// Parse a `[network]` address setting: empty means none.
pub fn parse_subnet(key: &'static str, text: &str, v4: bool) -> Result<Option<Subnet>, NetworkError> {
    if text.is_empty() {
        return Ok(None);
    }
    let (gateway, prefix) = croft_host::net::parse_cidr(text).map_err(|e| NetworkError::Config {
        key,
        why: e.to_string(),
    })?;
    if gateway.is_ipv4() != v4 {
        return Err(NetworkError::Config {
            key,
            why: format!("{text} is not an IPv{} address", if v4 { 4 } else { 6 }),
        });
    }
    let (min, max) = if v4 { (8, 30) } else { (64, 120) };
    if !(min..=max).contains(&prefix) {
        return Err(NetworkError::Config {
            key,
            why: format!("prefix /{prefix} (use /{min} to /{max})"),
        });
    }
    let subnet = Subnet { gateway, prefix };
    if subnet.offset(gateway) == 0 {
        return Err(NetworkError::Config {
            key,
            why: format!("{text}: give the gateway's address, not the network's"),
        });
    }
    Ok(Some(subnet))
}

/// The name of the network of croftd's configuration's `[network]`.
pub const DEFAULT_NETWORK: &str = "default";

/// The gateway of a routed network's VPSes: an address no pool uses, on
/// every routed bridge, reached on-link from the VPS's /32.
pub const ROUTED_GATEWAY4: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 1);
/// The same for IPv6: a link-local address, on-link by definition.
pub const ROUTED_GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// Parse a routed network's pool: a network address and prefix given to
/// the host by its provider (`198.51.100.16/28`, `2001:db8:100::/64`).
fn parse_pool(key: &'static str, text: &str, v4: bool) -> Result<Option<Subnet>, NetworkError> {
    if text.is_empty() {
        return Ok(None);
    }
    let (addr, prefix) = croft_host::net::parse_cidr(text).map_err(|e| NetworkError::Config {
        key,
        why: e.to_string(),
    })?;
    if addr.is_ipv4() != v4 {
        return Err(NetworkError::Config {
            key,
            why: format!("{text} is not an IPv{} pool", if v4 { 4 } else { 6 }),
        });
    }
    let (min, max) = if v4 { (20, 30) } else { (48, 124) };
    if !(min..=max).contains(&prefix) {
        return Err(NetworkError::Config {
            key,
            why: format!("pool /{prefix} (use /{min} to /{max})"),
        });
    }
    let pool = Subnet {
        gateway: addr,
        prefix,
    };
    if pool.network() != addr {
        return Err(NetworkError::Config {
            key,
            why: format!("{text}: give the pool's network address, {}", pool.cidr()),
        });
    }
    Ok(Some(pool))
}

/// Parse a network's pool: addresses and inclusive ranges, comma
/// separated (`198.51.100.70-198.51.100.79,2001:db8:5::10`), each inside
/// the subnet of its family and assignable there, none overlapping.
fn parse_ranges(
    text: &str,
    ipv4: Option<Subnet>,
    ipv6: Option<Subnet>,
) -> Result<Vec<(IpAddr, IpAddr)>, NetworkError> {
    let bad = |why: String| NetworkError::Config { key: "pool", why };
    let mut ranges: Vec<(IpAddr, IpAddr)> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (first, last) = item.split_once('-').unwrap_or((item, item));
        let parse = |t: &str| {
            t.trim()
                .parse::<IpAddr>()
                .map_err(|_| bad(format!("{t:?} in {item:?} is not an IP address")))
        };
        let (a, b) = (parse(first)?, parse(last)?);
        if a.is_ipv4() != b.is_ipv4() || Subnet::to_int(a) > Subnet::to_int(b) {
            return Err(bad(format!("{item:?} is not a range from low to high")));
        }
        let subnet = if a.is_ipv4() { ipv4 } else { ipv6 }
            .ok_or_else(|| bad(format!("{item}: the network has no subnet of its family")))?;
        for end in [a, b] {
            subnet
                .check_assignable(end)
                .map_err(|e| bad(format!("{item}: {e}")))?;
        }
        if let Some((c, d)) = ranges.iter().find(|(c, d)| {
            c.is_ipv4() == a.is_ipv4()
                && Subnet::to_int(a) <= Subnet::to_int(*d)
                && Subnet::to_int(*c) <= Subnet::to_int(b)
        }) {
            return Err(bad(format!("{item} overlaps {c}-{d}")));
        }
        ranges.push((a, b));
    }
    Ok(ranges)
}

/// A validated network: what croftd sets up at start.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    /// `nat`: its own bridge and subnets, masqueraded out.
    pub kind: String,
    pub bridge: String,
    pub ipv4: Option<Subnet>,
    pub ipv6: Option<Subnet>,
    pub nat: bool,
    pub isolated: bool,
    pub dns: Vec<IpAddr>,
    /// A routed network's uplink, where its addresses are proxied.
    pub uplink: Option<String>,
    /// The addresses VPSes may get, as inclusive ranges inside the
    /// subnets; a family without a range gives its whole subnet.
    pub pool: Vec<(IpAddr, IpAddr)>,
}

/// Check a bridge name: 1 to 15 letters, digits, `-` or `_`.
fn check_bridge(bridge: &str) -> Result<(), NetworkError> {
    // crv* are VPS links: croft removes those it does not know.
    if bridge.starts_with(croft_host::net::nft::VETH_PREFIX) {
        return Err(NetworkError::Config {
            key: "bridge",
            why: format!("{bridge:?}: names starting with crv are croft's VPS links"),
        });
    }
    if bridge.is_empty()
        || bridge.len() > 15
        || !bridge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(NetworkError::Config {
            key: "bridge",
            why: format!("{bridge:?} (1 to 15 letters, digits, - or _)"),
        });
    }
    Ok(())
}

impl Network {
    pub fn from_config(cfg: &NetworkConfig) -> Result<Network, NetworkError> {
        check_bridge(&cfg.bridge)?;
        Ok(Network {
            name: DEFAULT_NETWORK.into(),
            kind: "nat".into(),
            bridge: cfg.bridge.clone(),
            ipv4: parse_subnet("ipv4", &cfg.ipv4, true)?,
            ipv6: parse_subnet("ipv6", &cfg.ipv6, false)?,
            nat: cfg.nat,
            isolated: cfg.isolated,
            dns: cfg
                .dns
                .clone()
                .unwrap_or_else(croft_host::rootfs::host_nameservers),
            uplink: None,
            pool: Vec::new(),
        })
    }

    /// A network made through the API, as stored (its name servers are
    /// the default network's).
    pub fn from_record(r: &crate::store::NetworkRecord, dns: Vec<IpAddr>) -> Result<Network, NetworkError> {
        check_bridge(&r.bridge)?;
        if !["nat", "routed", "bridged"].contains(&r.kind.as_str()) {
            return Err(NetworkError::Config {
                key: "kind",
                why: format!("{:?} (use nat, routed or bridged)", r.kind),
            });
        }
        type Parse = fn(&'static str, &str, bool) -> Result<Option<Subnet>, NetworkError>;
        let parse: Parse = if r.kind == "routed" {
            parse_pool
        } else {
            parse_subnet
        };
        if r.uplink.is_some() && r.kind != "routed" {
            return Err(NetworkError::Config {
                key: "uplink",
                why: "only a routed network has an uplink to proxy its addresses on".into(),
            });
        }
        if let Some(uplink) = &r.uplink {
            check_bridge(uplink).map_err(|_| NetworkError::Config {
                key: "uplink",
                why: format!("{uplink:?} is not an interface name"),
            })?;
        }
        let ipv4 = parse("ipv4", r.ipv4.as_deref().unwrap_or(""), true)?;
        let ipv6 = parse("ipv6", r.ipv6.as_deref().unwrap_or(""), false)?;
        if ipv4.is_none() && ipv6.is_none() {
            return Err(NetworkError::Config {
                key: "ipv4",
                why: "a network needs an IPv4 or an IPv6 subnet".into(),
            });
        }
        let pool = parse_ranges(r.pool.as_deref().unwrap_or(""), ipv4, ipv6)?;
        // The provider's link has its router and other hosts on it: only
        // what the provider gave is croft's to hand out.
        if r.kind == "bridged" {
            for (subnet, family) in [(ipv4, "IPv4"), (ipv6, "IPv6")] {
                if subnet.is_some_and(|s| !pool.iter().any(|(a, _)| a.is_ipv4() == s.gateway.is_ipv4())) {
                    return Err(NetworkError::Config {
                        key: "pool",
                        why: format!(
                            "a bridged network hands out only its pool: give the {family} addresses that are croft's (FIRST-LAST)"
                        ),
                    });
                }
            }
        }
        Ok(Network {
            name: r.name.clone(),
            kind: r.kind.clone(),
            bridge: r.bridge.clone(),
            ipv4,
            ipv6,
            // A bridged network's VPSes are on the provider's link: their
            // traffic is never the host's to masquerade.
            nat: r.nat && r.kind == "nat",
            isolated: r.isolated,
            dns,
            uplink: r.uplink.clone(),
            pool,
        })
    }

    /// A bridged network: VPSes on an existing host bridge (the
    /// provider's link), with the provider's gateway; croft neither makes
    /// nor addresses the bridge.
    pub fn bridged(&self) -> bool {
        self.kind == "bridged"
    }

    /// The pool's ranges in `subnet`'s family.
    fn ranges(&self, subnet: Subnet) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        let v4 = subnet.gateway.is_ipv4();
        self.pool.iter().copied().filter(move |(a, _)| a.is_ipv4() == v4)
    }

    /// Whether a VPS may have `addr` of `subnet`: assignable there, and in
    /// the pool when the pool has ranges of its family.
    pub fn check_assignable(&self, subnet: Subnet, addr: IpAddr) -> Result<(), NetworkError> {
        subnet.check_assignable(addr)?;
        let mut ranges = self.ranges(subnet).peekable();
        if ranges.peek().is_some() && !ranges.any(|(a, b)| (a..=b).contains(&addr)) {
            return Err(NetworkError::Address(format!(
                "{addr} is outside network {}'s pool {}",
                self.name,
                self.pool_text(subnet)
            )));
        }
        Ok(())
    }

    /// The pool's ranges of `subnet`'s family as typed: `a-b,c`.
    fn pool_text(&self, subnet: Subnet) -> String {
        self.ranges(subnet)
            .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The lowest free address of `subnet` the pool gives (trying index
    /// `prefer` first).
    pub fn allocate(
        &self,
        subnet: Subnet,
        used: &HashSet<IpAddr>,
        prefer: Option<u128>,
    ) -> Result<IpAddr, NetworkError> {
        let ranges: Vec<(IpAddr, IpAddr)> = self.ranges(subnet).collect();
        if ranges.is_empty() {
            return subnet.allocate(used, prefer);
        }
        let free = |a: IpAddr| !used.contains(&a) && self.check_assignable(subnet, a).is_ok();
        if let Some(a) = prefer
            .map(|i| subnet.addr_at(Subnet::to_int(subnet.network()) + i))
            .filter(|a| free(*a))
        {
            return Ok(a);
        }
        ranges
            .iter()
            .flat_map(|(a, b)| {
                let (a, b) = (Subnet::to_int(*a), Subnet::to_int(*b));
                // Capped like a subnet: nobody runs 2^32 VPSes.
                (a..=b).take(1 << 32).map(|v| subnet.addr_at(v))
            })
            .find(|a| free(*a))
            .ok_or_else(|| NetworkError::Exhausted {
                family: if subnet.gateway.is_ipv4() { "IPv4" } else { "IPv6" },
                subnet: format!("network {}'s pool {}", self.name, self.pool_text(subnet)),
            })
    }

    /// A routed network: public addresses from pools, routed to its
    /// bridge, no NAT.
    pub fn routed(&self) -> bool {
        self.kind == "routed"
    }

    /// The gateway its VPSes route through, in `subnet`'s family.
    pub fn gateway(&self, subnet: Subnet) -> IpAddr {
        match (self.routed(), subnet.gateway) {
            (true, IpAddr::V4(_)) => IpAddr::V4(ROUTED_GATEWAY4),
            (true, IpAddr::V6(_)) => IpAddr::V6(ROUTED_GATEWAY6),
            (false, gateway) => gateway,
        }
    }

    /// The prefix length of a VPS's address from `subnet`: a routed VPS's
    /// is its own alone.
    pub fn vps_prefix(&self, subnet: Subnet) -> u8 {
        match (self.routed(), subnet.gateway) {
            (true, IpAddr::V4(_)) => 32,
            (true, IpAddr::V6(_)) => 128,
            (false, _) => subnet.prefix,
        }
    }

    /// The addresses its bridge holds (none on a bridged network's: the
    /// bridge is the admin's).
    pub fn bridge_addresses(&self) -> Vec<(IpAddr, u8)> {
        if self.bridged() {
            return Vec::new();
        }
        if self.routed() {
            let mut out = Vec::new();
            if self.ipv4.is_some() {
                out.push((IpAddr::V4(ROUTED_GATEWAY4), 32));
            }
            if self.ipv6.is_some() {
                out.push((IpAddr::V6(ROUTED_GATEWAY6), 64));
            }
            return out;
        }
        [self.ipv4, self.ipv6]
            .into_iter()
            .flatten()
            .map(|s| (s.gateway, s.prefix))
            .collect()
    }

    /// The routes to its bridge: a routed network's pools.
    pub fn bridge_routes(&self) -> Vec<(IpAddr, u8)> {
        if !self.routed() {
            return Vec::new();
        }
        [self.ipv4, self.ipv6]
            .into_iter()
            .flatten()
            .map(|s| (s.network(), s.prefix))
            .collect()
    }

    /// The first subnet of `self` that overlaps one of `other`'s.
    pub fn overlap(&self, other: &Network) -> Option<(Subnet, Subnet)> {
        [(self.ipv4, other.ipv4), (self.ipv6, other.ipv6)]
            .into_iter()
            .find_map(|pair| match pair {
                (Some(a), Some(b)) if a.contains(b.network()) || b.contains(a.network()) => Some((a, b)),
                _ => None,
            })
    }
}

/// The host end of a VPS's veth: `crv` and the VPS's id-range index
/// (unique and stable for the VPS's life; at most 15 characters).
pub fn host_if(uid_base: u32, id_base: u32) -> String {
    format!(
        "{}{}",
        croft_host::net::nft::VETH_PREFIX,
        (uid_base - id_base) / croft_host::spec::ID_RANGE
    )
}

/// A new random, locally administered unicast MAC address (`0e:cf:..`).
pub fn new_mac() -> String {
    let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").unwrap_or_default();
    let hex: Vec<u8> = uuid
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(8)
        .map(|c| c.to_digit(16).unwrap_or(0) as u8)
        .collect();
    let byte =
        |i: usize| hex.get(2 * i).copied().unwrap_or(0) << 4 | hex.get(2 * i + 1).copied().unwrap_or(0);
    format!(
        "0e:cf:{:02x}:{:02x}:{:02x}:{:02x}",
        byte(0),
        byte(1),
        byte(2),
        byte(3)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_refuse_nonsense() {
        let s = parse_subnet("ipv4", "10.87.0.1/24", true).unwrap().unwrap();
        assert_eq!(s.cidr(), "10.87.0.0/24");
        assert!(parse_subnet("ipv4", "", true).unwrap().is_none());
        for bad in [
            "10.87.0.0/24",
            "10.87.0.1/31",
            "10.87.0.1",
            "fd00::1/64",
            "10.87.0.1/7",
        ] {
            assert!(parse_subnet("ipv4", bad, true).is_err(), "{bad}");
        }
        let s6 = parse_subnet("ipv6", "fd63:726f:6674::1/64", false)
            .unwrap()
            .unwrap();
        assert_eq!(s6.cidr(), "fd63:726f:6674::/64");
        assert!(parse_subnet("ipv6", "fd63::1/48", false).is_err());
    }

    #[test]
    fn allocation_skips_gateway_used_and_broadcast_and_runs_out() {
        let s = parse_subnet("ipv4", "10.0.0.1/29", true).unwrap().unwrap();
        let mut used = HashSet::new();
        let mut got = Vec::new();
        for _ in 0..5 {
            let a = s.allocate(&used, None).unwrap();
            used.insert(a);
            got.push(a.to_string());
        }
        assert_eq!(got, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
        assert!(matches!(
            s.allocate(&used, None),
            Err(NetworkError::Exhausted { .. })
        ));
        used.remove(&ip("10.0.0.4"));
        assert_eq!(s.allocate(&used, None).unwrap(), ip("10.0.0.4"));

        let s6 = parse_subnet("ipv6", "fd63::1/64", false).unwrap().unwrap();
        assert_eq!(s6.allocate(&HashSet::new(), Some(5)).unwrap(), ip("fd63::5"));
        assert_eq!(s6.allocate(&HashSet::new(), Some(1)).unwrap(), ip("fd63::2"));
    }

    #[test]
    fn assignable_addresses() {
        let s = parse_subnet("ipv4", "10.87.0.1/24", true).unwrap().unwrap();
        assert!(s.check_assignable(ip("10.87.0.50")).is_ok());
        for (bad, why) in [
            ("10.87.0.1", "gateway"),
            ("10.87.0.0", "network"),
            ("10.87.0.255", "broadcast"),
            ("10.88.0.5", "outside"),
            ("fd63::5", "outside"),
        ] {
            let err = s.check_assignable(ip(bad)).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn listeners_are_found_by_port_and_tcp_state() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue\n\
                   0: 00000000:0016 00000000:0000 0A 00000000:00000000\n\
                   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000\n";
        assert!(listens_in(tcp, 22, true));
        // An established connection from port 8080 is no listener.
        assert!(!listens_in(tcp, 8080, true));
        assert!(!listens_in(tcp, 53, true));
        let udp6 = "  sl  local_address                         remote_address                        st\n\
                    0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07\n";
        assert!(listens_in(udp6, 53, false));
        assert!(!listens_in(udp6, 54, false));
    }

    #[test]
    fn host_ifs_and_macs() {
        assert_eq!(host_if(1_000_000 + 3 * 65536, 1_000_000), "crv3");
        assert_eq!(host_if(1_000_000 + 9_999 * 65536, 1_000_000).len(), 7);
        let m = new_mac();
        assert!(croft_host::net::parse_mac(&m).is_ok(), "{m}");
        assert!(m.starts_with("0e:cf:"));
        assert_ne!(new_mac(), new_mac());
    }
}
