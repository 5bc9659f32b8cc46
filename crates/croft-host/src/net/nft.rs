//! croft's nftables rules: rendered from croft's own state as one text and
//! loaded in one `nft -f` transaction that replaces only croft's tables
//! (`inet croft` and `bridge croft`), never anyone else's. Loading the same
//! state twice gives the same rules, so croftd re-applies them at every
//! start and after every change.
//!
//! - `inet croft`: IPv4 masquerade for traffic routed out of the VPS
//!   subnet (never for traffic bridged between its ports), port forwards
//!   (DNAT from the host's own addresses, from outside and from the host),
//!   every VPS's firewall in both directions (a chain each way per VPS,
//!   entered through verdict maps keyed by its addresses, so one VPS's
//!   change reloads its two chains only), the provider's outbound rules,
//!   and host protection: to what a VPS port sends (marked with
//!   [`VPS_PORT_MARK`] as it enters its bridge) the host answers only
//!   ICMP and the services the admin opens.
//! - `bridge croft`: anti-spoofing on every frame a VPS sends (its MAC, its
//!   IPv4 in IP and ARP, its IPv6 and link-local address in IPv6 and in
//!   neighbour advertisements, its MAC in the link-layer options of
//!   neighbour discovery, no router advertisements, redirects or DHCP
//!   service,
//!   only IPv4/IPv6/ARP); on every frame to a VPS, IP only to its own
//!   addresses (ARP, neighbour discovery and MLD queries aside); and
//!   VPS-to-VPS isolation when asked.

use super::NetError;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

/// Everything the rules are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// croft's networks, each a bridge. Traffic routed from one to another
    /// is dropped (port forwards aside): networks are kept apart.
    pub networks: Vec<NetworkRules>,
    /// What VPSes may reach on the host itself besides ICMP (everything
    /// else the host listens on is closed to them).
    pub host_services: Vec<Service>,
    /// Outbound traffic of every VPS the provider drops (a VPS may be
    /// exempt).
    pub blocked_egress: Vec<Service>,
    pub vpses: Vec<VpsRules>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpsRules {
    pub host_if: String,
    /// Its network keeps VPSes from reaching each other.
    pub isolated: bool,
    pub mac: [u8; 6],
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// Its additional addresses, beside `ipv4` and `ipv6`.
    pub extra: Vec<std::net::IpAddr>,
    /// IPv6 prefixes routed to it (`2001:db8:100:1::/64`): it may send
    /// from and receive at any address in them.
    pub delegated: Vec<(Ipv6Addr, u8)>,
    pub forwards: Vec<PortForward>,
    pub firewall: Firewall,
    /// The provider's outbound rules do not apply to it.
    pub provider_exempt: bool,
}

/// One of croft's networks: a bridge and the VPSes' subnets on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub bridge: String,
    /// The IPv4 subnet (network address, prefix), if the network has one.
    pub ipv4_subnet: Option<(Ipv4Addr, u8)>,
    /// The IPv6 subnet, if the network has one.
    pub ipv6_subnet: Option<(Ipv6Addr, u8)>,
    /// Masquerade IPv4 traffic leaving the subnet.
    pub nat: bool,
    /// Drop traffic between its VPSes.
    pub isolated: bool,
    /// An existing host bridge, the provider's link, which carries the
    /// host's own traffic too: neither kept apart from the others nor
    /// guarded as a whole.
    pub bridged: bool,
}

/// The packet mark bit set on every frame that enters a bridge from a VPS
/// port, so host protection and the provider's outbound rules find what
/// VPSes send in the IP hooks, where only the bridge is seen (and a
/// bridged network's bridge carries the host's own traffic too). Set in
/// the bridge table's prerouting hook, before routing; no other croft
/// rule sets or clears marks. (`meta ibrname` would tell the port's
/// bridge, but needs nft_meta_bridge, which not every kernel has.)
pub const VPS_PORT_MARK: u32 = 0x0010_0000;

/// The match of what a VPS sent (see [`VPS_PORT_MARK`]).
fn from_vps() -> String {
    format!("meta mark & {VPS_PORT_MARK:#x} == {VPS_PORT_MARK:#x}")
}

/// A VPS's firewall, stateful: replies to connections already let through
/// always pass; new traffic meets the rules of its direction, first match
/// wins, then that direction's default. The default lets everything
/// through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firewall {
    pub default_deny_in: bool,
    pub default_deny_out: bool,
    /// In match order; each direction's are matched apart.
    pub rules: Vec<FirewallRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallRule {
    /// Traffic to the VPS (else from it).
    pub inbound: bool,
    pub allow: bool,
    /// "tcp", "udp", "icmp" or "any".
    pub protocol: String,
    /// Destination ports.
    pub ports: Option<(u16, u16)>,
    /// The other end: the source of inbound traffic, the destination of
    /// outbound (network address and prefix).
    pub remote: Option<(std::net::IpAddr, u8)>,
}

/// A protocol and port range: a host service VPSes may reach, or a
/// destination the provider blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// "tcp" or "udp".
    pub protocol: String,
    pub ports: (u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// "tcp" or "udp".
    pub protocol: String,
    pub host_port: u16,
    pub vps_port: u16,
    /// The last host port of a range, each going to the same VPS port.
    pub host_port_end: Option<u16>,
}

/// The prefix of every host-side veth croft makes (`crv<N>`).
pub const VETH_PREFIX: &str = "crv";

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The link-local address the kernel gives an interface with this MAC
/// (EUI-64; a VPS cannot change the generation mode, /proc/sys is
/// read-only inside).
pub fn link_local(mac: &[u8; 6]) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([mac[0] ^ 0x02, mac[1]]),
        u16::from_be_bytes([mac[2], 0xff]),
        u16::from_be_bytes([0xfe, mac[3]]),
        u16::from_be_bytes([mac[4], mac[5]]),
    )
}

/// The rules as `nft -f` input. The leading `table ...; delete table ...`
/// pairs make the load replace croft's tables whether they exist or not.
pub fn render(r: &Ruleset) -> String {
    let mut out = String::new();
    let w = &mut out;
    for family in ["inet", "bridge"] {
        let _ = writeln!(w, "table {family} croft {{}}\ndelete table {family} croft");
    }

    // --- inet: NAT and port forwards ---
    let _ = writeln!(w, "table inet croft {{");
    // A forward takes each family to the VPS's first address of it:
    // (IPv6, rule).
    let dnat: Vec<(bool, String)> = r
        .vpses
        .iter()
        .flat_map(|v| {
            let v4 = v.ipv4.map(|ip| (false, "ip", ip.to_string()));
            let v6 = v.ipv6.map(|ip| (true, "ip6", format!("[{ip}]")));
            v4.into_iter().chain(v6).map(move |to| (v, to))
        })
        .flat_map(|(v, (six, family, to))| {
            v.forwards.iter().map(move |f| {
                let rule = match f.host_port_end {
                    // A range keeps each port: the destination port is left.
                    Some(end) => format!(
                        "fib daddr type local {p} dport {h}-{end} dnat {family} to {ip}",
                        p = f.protocol,
                        h = f.host_port,
                        ip = to.trim_matches(|c| c == '[' || c == ']'),
                    ),
                    None => format!(
                        "fib daddr type local {p} dport {h} dnat {family} to {to}:{t}",
                        p = f.protocol,
                        h = f.host_port,
                        t = f.vps_port
                    ),
                };
                (six, rule)
            })
        })
        .collect();
    let _ = writeln!(
        w,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;"
    );
    for (_, rule) in &dnat {
        let _ = writeln!(w, "    {rule}");
    }
    let _ = writeln!(w, "  }}");
    // Connections the host itself opens to its own forwarded ports (not to
    // 127.0.0.1: routing those out needs route_localnet, which would let
    // VPSes reach the host's loopback services).
    let _ = writeln!(
        w,
        "  chain output {{\n    type nat hook output priority -100; policy accept;"
    );
    for (six, rule) in &dnat {
        let loopback = if *six {
            "ip6 daddr != ::1"
        } else {
            "ip daddr != 127.0.0.0/8"
        };
        let _ = writeln!(w, "    {loopback} {rule}");
    }
    let _ = writeln!(w, "  }}");
    let _ = writeln!(
        w,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
    );
    // Only what is routed out: traffic bridged between ports (which
    // br_netfilter passes through this hook too) keeps its source, else a
    // VPS's frame to a broadcast address would arrive from the gateway.
    // A bridged network's VPSes are on the provider's link, reached and
    // answered there, not through the host.
    for n in own_networks(r) {
        if let (true, Some((net, prefix))) = (n.nat, n.ipv4_subnet) {
            let _ = writeln!(
                w,
                "    oifname != \"{b}\" ip saddr {net}/{prefix} ip daddr != {net}/{prefix} masquerade",
                b = n.bridge
            );
        }
        // A forwarded connection from the host, or from a VPS (to its own
        // or a neighbour's forward), to a VPS on the bridge must come back
        // through the host: the source becomes the bridge address.
        let subnets = [
            n.ipv4_subnet.map(|(a, p)| ("ip", a.to_string(), p)),
            n.ipv6_subnet.map(|(a, p)| ("ip6", a.to_string(), p)),
        ];
        for (family, net, prefix) in subnets.into_iter().flatten().filter(|_| !dnat.is_empty()) {
            let _ = writeln!(
                w,
                "    oifname \"{b}\" {family} daddr {net}/{prefix} ct status dnat fib saddr type local masquerade",
                b = n.bridge
            );
            let _ = writeln!(
                w,
                "    oifname \"{b}\" {family} saddr {net}/{prefix} {family} daddr {net}/{prefix} ct status dnat masquerade",
                b = n.bridge
            );
        }
    }
    let _ = writeln!(w, "  }}");
    // Routed traffic from VPSes: never to link-local addresses beyond the
    // host (a cloud's instance metadata service at 169.254.169.254 would
    // hand out the host's credentials); never from one network to another,
    // and with isolation never back onto its bridge through the gateway,
    // unless it is a port forward.
    let _ = writeln!(
        w,
        "  chain route_filter {{\n    type filter hook forward priority filter - 1; policy accept;"
    );
    // IP straight from a VPS port (not through its bridge: link-local
    // group MACs, 01:80:c2:00:00:0x, are passed up on the port itself)
    // passed neither anti-spoofing nor the mark.
    let _ = writeln!(w, "    iifname \"{VETH_PREFIX}*\" drop");
    if !r.networks.is_empty() {
        let _ = writeln!(w, "    {} ip daddr 169.254.0.0/16 drop", from_vps());
    }
    // A bridged network's bridge is the provider's link, the host's way
    // out: traffic to and from it is not kept apart, but what its VPSes
    // send through the host to a croft bridge is (the mark tells them).
    for n in own_networks(r) {
        let _ = writeln!(
            w,
            "    {m} iifname != \"{b}\" oifname \"{b}\" ct status dnat accept\n    {m} iifname != \"{b}\" oifname \"{b}\" drop",
            m = from_vps(),
            b = n.bridge
        );
    }
    for n in own_networks(r) {
        let others: Vec<String> = own_networks(r)
            .filter(|o| o.bridge != n.bridge || n.isolated)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if !others.is_empty() {
            let others = format!("{{ {} }}", others.join(", "));
            let _ = writeln!(
                w,
                "    iifname \"{b}\" oifname {others} ct status dnat accept\n    iifname \"{b}\" oifname {others} drop",
                b = n.bridge
            );
        }
    }
    let _ = writeln!(w, "  }}");
    render_firewalls(w, r);
    let _ = writeln!(w, "}}");

    // --- bridge: anti-spoofing and isolation ---
    let _ = writeln!(w, "table bridge croft {{");
    for v in &r.vpses {
        render_port_chain(w, v);
    }
    // The ports: named maps (and a set), so one more VPS is two chains
    // and an element in each (see [`render_added_port`]).
    for v in &r.vpses {
        render_to_port_chain(w, v);
    }
    for (map, chain) in [("ports", "from"), ("to_ports", "to")] {
        let _ = writeln!(w, "  map {map} {{\n    type ifname : verdict");
        if !r.vpses.is_empty() {
            let jumps: Vec<String> = r
                .vpses
                .iter()
                .map(|v| format!("\"{0}\" : jump {chain}_{0}", v.host_if))
                .collect();
            let _ = writeln!(w, "    elements = {{ {} }}", jumps.join(", "));
        }
        let _ = writeln!(w, "  }}");
    }
    // The ports of VPSes on isolated networks (frames between two ports
    // of one bridge only: different networks are different bridges).
    let _ = writeln!(w, "  set isolated_ports {{\n    type ifname");
    let isolated: Vec<String> = r
        .vpses
        .iter()
        .filter(|v| v.isolated)
        .map(|v| format!("\"{}\"", v.host_if))
        .collect();
    if !isolated.is_empty() {
        let _ = writeln!(w, "    elements = {{ {} }}", isolated.join(", "));
    }
    let _ = writeln!(w, "  }}");
    let _ = writeln!(
        w,
        "  chain prerouting {{\n    type filter hook prerouting priority -200; policy accept;"
    );
    // Before the port chains, which end in accept.
    let _ = writeln!(
        w,
        "    iifname \"{VETH_PREFIX}*\" meta mark set meta mark | {VPS_PORT_MARK:#x}"
    );
    let _ = writeln!(w, "    iifname vmap @ports");
    // A croft port without rules (a VPS whose rules failed to load) sends
    // nothing: anti-spoofing fails closed.
    let _ = writeln!(w, "    iifname \"{VETH_PREFIX}*\" drop");
    let _ = writeln!(w, "  }}");
    let _ = writeln!(
        w,
        "  chain forward {{\n    type filter hook forward priority 0; policy accept;"
    );
    let _ = writeln!(w, "    iifname @isolated_ports oifname @isolated_ports drop");
    // Frames to a VPS, forwarded from another port or sent by the host,
    // carry IP only to its own addresses: broadcast, multicast or a
    // foreign address in a frame sent to its MAC would slip past its
    // firewall (which matches by address) and is nothing a VPS needs.
    // ARP and neighbour discovery (and MLD queries) pass.
    let _ = writeln!(w, "    oifname vmap @to_ports\n  }}");
    let _ = writeln!(
        w,
        "  chain output {{\n    type filter hook output priority 0; policy accept;"
    );
    let _ = writeln!(w, "    oifname vmap @to_ports\n  }}");
    let _ = writeln!(w, "}}");
    out
}

/// A VPS's IPv4 addresses, its first one first.
fn own4(v: &VpsRules) -> Vec<Ipv4Addr> {
    v.ipv4
        .into_iter()
        .chain(v.extra.iter().filter_map(|a| match a {
            std::net::IpAddr::V4(a) => Some(*a),
            std::net::IpAddr::V6(_) => None,
        }))
        .collect()
}

/// A VPS's IPv6 addresses (link-local aside), its first one first.
fn own6(v: &VpsRules) -> Vec<Ipv6Addr> {
    v.ipv6
        .into_iter()
        .chain(v.extra.iter().filter_map(|a| match a {
            std::net::IpAddr::V6(a) => Some(*a),
            std::net::IpAddr::V4(_) => None,
        }))
        .collect()
}

/// A VPS's delegated prefixes, as nft writes them: `2001:db8:100:1::/64`.
fn delegated(v: &VpsRules) -> impl Iterator<Item = String> + '_ {
    v.delegated.iter().map(|(net, len)| format!("{net}/{len}"))
}

/// Values as an nft set: `{ a, b }`.
fn set_of<T: std::fmt::Display>(values: &[T]) -> String {
    let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The networks on bridges croft made (a bridged network's is the
/// admin's).
fn own_networks(r: &Ruleset) -> impl Iterator<Item = &NetworkRules> {
    r.networks.iter().filter(|n| !n.bridged)
}

/// The chain every frame to VPS port `v.host_if` passes: IP only to the
/// VPS's own addresses.
fn render_to_port_chain(w: &mut String, v: &VpsRules) {
    let _ = writeln!(w, "  chain to_{} {{", v.host_if);
    let _ = writeln!(w, "    ether type arp return");
    let own4 = own4(v);
    if !own4.is_empty() {
        let _ = writeln!(w, "    ip daddr {} return", set_of(&own4));
    }
    let mine6 = set_of(
        &std::iter::once(link_local(&v.mac).to_string())
            .chain(own6(v).iter().map(|a| a.to_string()))
            .chain(delegated(v))
            .collect::<Vec<_>>(),
    );
    let _ = writeln!(w, "    ip6 daddr {mine6} return");
    let _ = writeln!(
        w,
        "    icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, mld-listener-query }} return"
    );
    let _ = writeln!(w, "    drop\n  }}");
}

/// The chain every frame from VPS port `v.host_if` passes: anti-spoofing.
fn render_port_chain(w: &mut String, v: &VpsRules) {
    let mac = mac_text(&v.mac);
    let lla = link_local(&v.mac);
    let _ = writeln!(w, "  chain from_{} {{", v.host_if);
    let _ = writeln!(w, "    ether saddr != {mac} drop");
    let _ = writeln!(w, "    ether type != {{ ip, ip6, arp }} drop");
    let own4 = own4(v);
    if own4.is_empty() {
        let _ = writeln!(w, "    ether type {{ ip, arp }} drop");
    } else {
        // 0.0.0.0: address-conflict probes (RFC 5227).
        let mine = set_of(
            &std::iter::once(Ipv4Addr::UNSPECIFIED)
                .chain(own4)
                .collect::<Vec<_>>(),
        );
        let _ = writeln!(w, "    ether type arp arp saddr ether != {mac} drop");
        let _ = writeln!(w, "    ether type arp arp saddr ip != {mine} drop");
        let _ = writeln!(w, "    ether type ip ip saddr != {mine} drop");
        let _ = writeln!(w, "    ether type ip udp sport 67 drop");
    }
    let mine6 = set_of(
        &[Ipv6Addr::UNSPECIFIED, lla]
            .iter()
            .map(|a| a.to_string())
            .chain(own6(v).iter().map(|a| a.to_string()))
            .chain(delegated(v))
            .collect::<Vec<_>>(),
    );
    let _ = writeln!(w, "    ether type ip6 ip6 saddr != {mine6} drop");
    let _ = writeln!(w, "    icmpv6 type {{ nd-router-advert, nd-redirect }} drop");
    let _ = writeln!(w, "    ether type ip icmp type redirect drop");
    // The link-layer address a neighbour or router solicitation or a
    // neighbour advertisement carries is what the receiver records for
    // the sender: it must be the VPS's MAC. The kernel keeps the first of
    // duplicate options, so the first option must be that one (or there
    // be none: then the load fails and the rule does not match). DAD
    // solicitations, from ::, carry none and are ignored if they do.
    let hex_mac: String = v.mac.iter().map(|b| format!("{b:02x}")).collect();
    let _ = writeln!(
        w,
        "    icmpv6 type nd-neighbor-solicit ip6 saddr != :: @th,192,64 != 0x0101{hex_mac} drop"
    );
    let _ = writeln!(
        w,
        "    icmpv6 type nd-router-solicit @th,64,64 != 0x0101{hex_mac} drop"
    );
    let _ = writeln!(
        w,
        "    icmpv6 type nd-neighbor-advert @th,192,64 != 0x0201{hex_mac} drop"
    );
    let _ = writeln!(w, "    udp sport 547 drop");
    // The target of a neighbour advertisement is the address it claims.
    let targets: Vec<String> = std::iter::once(lla)
        .chain(own6(v))
        .map(|a| format!("0x{:032x}", u128::from(a)))
        .collect();
    for_each_not_in(w, "icmpv6 type nd-neighbor-advert @th,64,128", &targets);
    // What is left is the VPS's own (prerouting drops any croft port
    // that reaches its end).
    let _ = writeln!(w, "    accept\n  }}");
}

/// The rules for one more VPS, as an `nft -f` transaction that adds to
/// croft's loaded tables instead of replacing them: its port chains and
/// firewall chains and its elements in the maps and sets. `None` when the
/// VPS needs more than that (port forwards): then the whole ruleset is
/// reloaded. Loading this on top of [`render`]'s rules gives the same
/// rules as rendering them with the VPS included.
pub fn render_added_port(v: &VpsRules) -> Option<String> {
    if !v.forwards.is_empty() {
        return None;
    }
    let mut out = String::new();
    let w = &mut out;
    let port = &v.host_if;
    for (render_chain, map, chain) in [
        (render_port_chain as fn(&mut String, &VpsRules), "ports", "from"),
        (render_to_port_chain, "to_ports", "to"),
    ] {
        // A leftover chain of that name starts over, not doubled.
        let _ = writeln!(
            w,
            "add chain bridge croft {chain}_{port}\nflush chain bridge croft {chain}_{port}"
        );
        add_rules_of(w, &format!("{chain}_{port}"), render_chain, v);
        let _ = writeln!(
            w,
            "add element bridge croft {map} {{ \"{port}\" : jump {chain}_{port} }}"
        );
    }
    if v.isolated {
        let _ = writeln!(w, "add element bridge croft isolated_ports {{ \"{port}\" }}");
    }
    for inbound in [true, false] {
        let _ = writeln!(w, "add chain inet croft {}", firewall_chain(v, inbound));
    }
    out.push_str(&render_firewall_update(v));
    port_elements(&mut out, v, true);
    Some(out)
}

/// The `nft -f` input that moves VPS `new`'s port from the addresses of
/// `old` to its own: its anti-spoofing chains made again and its entries
/// in the firewall maps and exemption sets replaced; what an address added
/// or removed live loads, whatever the number of VPSes. Its chains must be
/// loaded.
pub fn render_port_update(old: &VpsRules, new: &VpsRules) -> String {
    let mut out = String::new();
    let w = &mut out;
    let port = &new.host_if;
    for (render_chain, chain) in [
        (render_port_chain as fn(&mut String, &VpsRules), "from"),
        (render_to_port_chain, "to"),
    ] {
        let _ = writeln!(w, "flush chain bridge croft {chain}_{port}");
        add_rules_of(w, &format!("{chain}_{port}"), render_chain, new);
    }
    port_elements(w, old, false);
    port_elements(w, new, true);
    out
}

/// The rules `render_chain` writes for VPS `v`, as `add rule` commands of
/// bridge chain `name`: nft takes several times longer (20 vs 6 ms here)
/// to load the same rules as a table block.
fn add_rules_of(w: &mut String, name: &str, render_chain: fn(&mut String, &VpsRules), v: &VpsRules) {
    let mut text = String::new();
    render_chain(&mut text, v);
    let lines: Vec<&str> = text.lines().collect();
    for rule in &lines[1..lines.len() - 1] {
        let _ = writeln!(w, "add rule bridge croft {name} {}", rule.trim());
    }
}

/// Add (or take away) VPS `v`'s entries in the firewall verdict maps and
/// the provider's exemption sets.
fn port_elements(w: &mut String, v: &VpsRules, add: bool) {
    for (map, inbound) in [
        ("fw_in4", true),
        ("fw_in6", true),
        ("fw_out4", false),
        ("fw_out6", false),
    ] {
        for element in map_elements(v, map, inbound) {
            if add {
                let _ = writeln!(w, "add element inet croft {map} {{ {element} }}");
            } else {
                let key = element.split(" : ").next().unwrap_or_default();
                let _ = writeln!(w, "delete element inet croft {map} {{ {key} }}");
            }
        }
    }
    let verb = if add { "add" } else { "delete" };
    for set in ["provider_exempt4", "provider_exempt6"] {
        for element in exempt_elements(v, set) {
            let _ = writeln!(w, "{verb} element inet croft {set} {{ {element} }}");
        }
    }
}

/// The reverse of [`render_added_port`]: a deleted VPS's port leaves the
/// maps and sets, then its chains go. Only for a VPS that had no forwards,
/// whose rules are nothing else.
pub fn render_removed_port(v: &VpsRules) -> String {
    let mut out = String::new();
    let w = &mut out;
    let port = &v.host_if;
    let _ = writeln!(w, "delete element bridge croft ports {{ \"{port}\" }}");
    let _ = writeln!(w, "delete element bridge croft to_ports {{ \"{port}\" }}");
    if v.isolated {
        let _ = writeln!(w, "delete element bridge croft isolated_ports {{ \"{port}\" }}");
    }
    let _ = writeln!(w, "delete chain bridge croft from_{port}");
    let _ = writeln!(w, "delete chain bridge croft to_{port}");
    port_elements(w, v, false);
    for inbound in [true, false] {
        let _ = writeln!(w, "delete chain inet croft {}", firewall_chain(v, inbound));
    }
    out
}

/// Every VPS's firewall, the provider's outbound rules and host
/// protection, in `inet croft`.
///
/// Traffic routed or bridged past the host (bridged traffic passes the IP
/// hooks through br_netfilter, which [`super::ensure_bridge`] turns on;
/// without it croftd refuses firewall rules rather than pretend) meets,
/// in the forward hook: the provider's rules if it comes from a VPS, the
/// sender's outbound chain (by source address), then the receiver's
/// inbound chain (by destination address). An outbound chain lets traffic
/// on with `return`, so the receiver's rules still apply; an inbound one
/// ends with `accept`. The host's own traffic to a VPS meets the VPS's
/// inbound chain in the output hook. What a VPS sends to the host itself
/// meets host protection in the input hook.
fn render_firewalls(w: &mut String, r: &Ruleset) {
    for v in &r.vpses {
        for inbound in [true, false] {
            let _ = writeln!(w, "  chain {} {{", firewall_chain(v, inbound));
            for rule in firewall_rules(v, inbound) {
                let _ = writeln!(w, "    {rule}");
            }
            let _ = writeln!(w, "  }}");
        }
    }
    for (map, family, inbound) in [
        ("fw_in4", "ipv4_addr", true),
        ("fw_in6", "ipv6_addr", true),
        ("fw_out4", "ipv4_addr", false),
        ("fw_out6", "ipv6_addr", false),
    ] {
        // IPv6 keys include the VPSes' delegated prefixes: intervals.
        let flags = if family == "ipv6_addr" {
            "\n    flags interval"
        } else {
            ""
        };
        let _ = writeln!(w, "  map {map} {{\n    type {family} : verdict{flags}");
        let elements: Vec<String> = r
            .vpses
            .iter()
            .flat_map(|v| map_elements(v, map, inbound))
            .collect();
        if !elements.is_empty() {
            let _ = writeln!(w, "    elements = {{ {} }}", elements.join(", "));
        }
        let _ = writeln!(w, "  }}");
    }
    for (set, family) in [
        ("provider_exempt4", "ipv4_addr"),
        ("provider_exempt6", "ipv6_addr"),
    ] {
        let _ = writeln!(w, "  set {set} {{\n    type {family}");
        let elements: Vec<String> = r.vpses.iter().flat_map(|v| exempt_elements(v, set)).collect();
        if !elements.is_empty() {
            let _ = writeln!(w, "    elements = {{ {} }}", elements.join(", "));
        }
        let _ = writeln!(w, "  }}");
    }
    let _ = writeln!(
        w,
        "  chain provider_egress {{\n    ip saddr @provider_exempt4 return\n    ip6 saddr @provider_exempt6 return"
    );
    for blocked in &r.blocked_egress {
        let _ = writeln!(w, "    {} drop", service_match(blocked));
    }
    let _ = writeln!(w, "  }}");
    let _ = writeln!(
        w,
        "  chain filter_forward {{\n    type filter hook forward priority filter; policy accept;"
    );
    if !r.blocked_egress.is_empty() && !r.networks.is_empty() {
        let _ = writeln!(w, "    {} jump provider_egress", from_vps());
    }
    // A bridged network's VPS can reach the host's own addresses through
    // the provider's router, which sends it back onto the link unmarked:
    // host protection holds where the VPS's packet is still marked, as it
    // is forwarded along the bridge.
    if r.networks.iter().any(|n| n.bridged) {
        let _ = writeln!(w, "    {} fib daddr type local jump from_vpses", from_vps());
    }
    let _ = writeln!(
        w,
        "    ip saddr vmap @fw_out4\n    ip6 saddr vmap @fw_out6\n    ip daddr vmap @fw_in4\n    ip6 daddr vmap @fw_in6\n  }}"
    );
    let _ = writeln!(
        w,
        "  chain filter_output {{\n    type filter hook output priority filter; policy accept;\n    ip daddr vmap @fw_in4\n    ip6 daddr vmap @fw_in6\n  }}"
    );
    // Host protection: nothing the host listens on is a VPS's to reach
    // (croftd's API, sshd, anything bound to the bridge or the host's own
    // addresses), but ICMP (ping, neighbour discovery, path MTU), replies
    // to what the host opened, and what the admin opens.
    let _ = writeln!(
        w,
        "  chain host_input {{\n    type filter hook input priority filter; policy accept;"
    );
    // IP straight from a VPS port (see route_filter).
    let _ = writeln!(w, "    iifname \"{VETH_PREFIX}*\" drop");
    if !r.networks.is_empty() {
        let _ = writeln!(w, "    {} jump from_vpses", from_vps());
    }
    let _ = writeln!(w, "  }}");
    let _ = writeln!(
        w,
        "  chain from_vpses {{\n    ct state established,related accept\n    meta l4proto {{ icmp, ipv6-icmp }} accept"
    );
    for service in &r.host_services {
        let _ = writeln!(w, "    {} accept", service_match(service));
    }
    let _ = writeln!(w, "    drop\n  }}");
}

/// The name of a VPS's inbound or outbound firewall chain.
fn firewall_chain(v: &VpsRules, inbound: bool) -> String {
    format!("{}_{}", if inbound { "in" } else { "out" }, v.host_if)
}

/// The rules of a VPS's inbound or outbound chain (none when it lets
/// everything through that way).
fn firewall_rules(v: &VpsRules, inbound: bool) -> Vec<String> {
    let fw = &v.firewall;
    let default_deny = if inbound {
        fw.default_deny_in
    } else {
        fw.default_deny_out
    };
    let rules: Vec<&FirewallRule> = fw.rules.iter().filter(|r| r.inbound == inbound).collect();
    if rules.is_empty() && !default_deny {
        return Vec::new();
    }
    let (pass, mut out) = if inbound {
        (
            "accept",
            vec![
                "ct state established,related accept".to_string(),
                // Neighbour discovery and path MTU must work whatever the
                // rules say.
                "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, packet-too-big } accept"
                    .to_string(),
            ],
        )
    } else {
        (
            "return",
            vec![
                "ct state established,related return".to_string(),
                "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, packet-too-big } return"
                    .to_string(),
            ],
        )
    };
    for rule in rules {
        let mut m = String::new();
        if let Some((net, prefix)) = rule.remote {
            let family = if net.is_ipv4() { "ip" } else { "ip6" };
            let end = if inbound { "saddr" } else { "daddr" };
            let _ = write!(m, "{family} {end} {net}/{prefix} ");
        }
        match (rule.protocol.as_str(), rule.ports) {
            (p @ ("tcp" | "udp"), Some((a, b))) if a == b => {
                let _ = write!(m, "{p} dport {a} ");
            }
            (p @ ("tcp" | "udp"), Some((a, b))) => {
                let _ = write!(m, "{p} dport {a}-{b} ");
            }
            (p @ ("tcp" | "udp"), None) => {
                let _ = write!(m, "meta l4proto {p} ");
            }
            ("icmp", _) => m.push_str("meta l4proto { icmp, ipv6-icmp } "),
            _ => {}
        }
        out.push(format!("{m}{}", if rule.allow { pass } else { "drop" }));
    }
    if default_deny {
        out.push("drop".into());
    }
    out
}

/// A VPS's entries in firewall verdict map `map`.
fn map_elements(v: &VpsRules, map: &str, inbound: bool) -> Vec<String> {
    let chain = firewall_chain(v, inbound);
    let addresses: Vec<String> = if map.ends_with('4') {
        own4(v).iter().map(|a| a.to_string()).collect()
    } else {
        own6(v)
            .into_iter()
            .chain(std::iter::once(link_local(&v.mac)))
            .map(|a| a.to_string())
            .chain(delegated(v))
            .collect()
    };
    addresses
        .into_iter()
        .map(|a| format!("{a} : jump {chain}"))
        .collect()
}

/// A VPS's entries in provider exemption set `set`.
fn exempt_elements(v: &VpsRules, set: &str) -> Vec<String> {
    if !v.provider_exempt {
        return Vec::new();
    }
    if set.ends_with('4') {
        own4(v).iter().map(|a| a.to_string()).collect()
    } else {
        own6(v).iter().map(|a| a.to_string()).collect()
    }
}

fn service_match(service: &Service) -> String {
    match service.ports {
        (a, b) if a == b => format!("{} dport {a}", service.protocol),
        (a, b) => format!("{} dport {a}-{b}", service.protocol),
    }
}

/// The `nft -f` input that makes VPS `v`'s two firewall chains what its
/// rules say, and nothing else: what a rule change of one VPS loads,
/// whatever the number of VPSes. Its chains must be loaded (by [`render`]
/// or [`render_added_port`]).
pub fn render_firewall_update(v: &VpsRules) -> String {
    let mut out = String::new();
    for inbound in [true, false] {
        let chain = firewall_chain(v, inbound);
        let _ = writeln!(out, "flush chain inet croft {chain}");
        for rule in firewall_rules(v, inbound) {
            let _ = writeln!(out, "add rule inet croft {chain} {rule}");
        }
    }
    out
}

/// `MATCH != X drop` for a single value; with several, one `MATCH == X
/// accept` per value, then a drop. (Raw payload matches cannot use
/// anonymous sets of 128-bit constants in every nft version.)
fn for_each_not_in(w: &mut String, matcher: &str, values: &[String]) {
    if let [only] = values {
        let _ = writeln!(w, "    {matcher} != {only} drop");
        return;
    }
    for value in values {
        let _ = writeln!(w, "    {matcher} == {value} accept");
    }
    let prefix = matcher.split(" @").next().unwrap_or(matcher);
    let _ = writeln!(w, "    {prefix} drop");
}

/// Load `rules` (from [`render`] or [`render_added_port`]) in one
/// transaction.
pub fn apply(rules: &str) -> Result<(), NetError> {
    run_nft(rules, "load croft's nftables rules")
}

fn run_nft(input: &str, what: &str) -> Result<(), NetError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetError::Netns {
            what: "run nft (install Debian's nftables)",
            source,
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(|source| NetError::Netns {
            what: "write rules to nft",
            source,
        })?;
    let out = child.wait_with_output().map_err(|source| NetError::Netns {
        what: "wait for nft",
        source,
    })?;
    if !out.status.success() {
        return Err(NetError::Nft {
            what: what.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ruleset {
        Ruleset {
            networks: vec![NetworkRules {
                bridge: "croftbr0".into(),
                ipv4_subnet: Some(("10.87.0.0".parse().unwrap(), 24)),
                ipv6_subnet: Some(("fd63::".parse().unwrap(), 64)),
                nat: true,
                isolated: true,
                bridged: false,
            }],
            host_services: vec![Service {
                protocol: "udp".into(),
                ports: (53, 53),
            }],
            blocked_egress: vec![Service {
                protocol: "tcp".into(),
                ports: (25, 25),
            }],
            vpses: vec![VpsRules {
                host_if: "crv1".into(),
                isolated: true,
                mac: [0x0e, 0xcf, 0, 0, 0, 1],
                ipv4: Some("10.87.0.2".parse().unwrap()),
                ipv6: Some("fd63::2".parse().unwrap()),
                extra: Vec::new(),
                delegated: Vec::new(),
                forwards: vec![
                    PortForward {
                        protocol: "tcp".into(),
                        host_port: 8080,
                        vps_port: 80,
                        host_port_end: None,
                    },
                    PortForward {
                        protocol: "udp".into(),
                        host_port: 6000,
                        vps_port: 6000,
                        host_port_end: Some(6100),
                    },
                ],
                firewall: Firewall::default(),
                provider_exempt: false,
            }],
        }
    }

    #[test]
    fn renders_nat_forwards_spoofing_and_isolation() {
        let text = render(&sample());
        assert!(text.starts_with("table inet croft {}\ndelete table inet croft\n"));
        assert!(text
            .contains("oifname != \"croftbr0\" ip saddr 10.87.0.0/24 ip daddr != 10.87.0.0/24 masquerade"));
        // IP to a VPS only to its own addresses, ND aside.
        let to = &text[text.find("chain to_crv1 {").unwrap()..];
        let to = &to[..to.find("\n  }").unwrap()];
        assert!(to.contains("ip daddr { 10.87.0.2 } return"), "{to}");
        assert!(
            to.contains("ip6 daddr { fe80::ccf:ff:fe00:1, fd63::2 } return"),
            "{to}"
        );
        assert!(to.contains("nd-neighbor-solicit"), "{to}");
        assert!(to.ends_with("    drop"), "{to}");
        assert!(text.contains("elements = { \"crv1\" : jump to_crv1 }"));
        assert_eq!(text.matches("oifname vmap @to_ports").count(), 2);
        assert_eq!(text.matches("tcp dport 8080 dnat ip to 10.87.0.2:80").count(), 2);
        assert_eq!(
            text.matches("udp dport 6000-6100 dnat ip to 10.87.0.2\n").count(),
            2
        );
        // IPv6 too, to the VPS's IPv6 address; the host's own connections
        // to it (not from loopback) and hairpins come back through it.
        assert!(
            text.contains("ip6 daddr != ::1 fib daddr type local tcp dport 8080 dnat ip6 to [fd63::2]:80\n")
        );
        assert_eq!(
            text.matches("udp dport 6000-6100 dnat ip6 to fd63::2\n").count(),
            2
        );
        assert!(text.contains(
            "oifname \"croftbr0\" ip6 daddr fd63::/64 ct status dnat fib saddr type local masquerade"
        ));
        assert!(text.contains("ether saddr != 0e:cf:00:00:00:01 drop"));
        assert!(text.contains("arp saddr ip != { 0.0.0.0, 10.87.0.2 } drop"));
        assert!(text.contains(
            "icmpv6 type nd-neighbor-solicit ip6 saddr != :: @th,192,64 != 0x01010ecf00000001 drop"
        ));
        assert!(text.contains("icmpv6 type nd-neighbor-advert @th,192,64 != 0x02010ecf00000001 drop"));
        assert!(text.contains("ip6 saddr != { ::, fe80::ccf:ff:fe00:1, fd63::2 } drop"));
        assert!(text.contains("elements = { \"crv1\" : jump from_crv1 }"));
        assert!(text.contains("iifname vmap @ports"));
        assert!(text.contains("set isolated_ports {\n    type ifname\n    elements = { \"crv1\" }"));
        assert!(text.contains("iifname @isolated_ports oifname @isolated_ports drop"));
        let mut open = sample();
        open.networks[0].nat = false;
        open.networks[0].isolated = false;
        open.vpses[0].isolated = false;
        let text = render(&open);
        assert!(!text.contains("masquerade\n") || !text.contains("ip daddr != 10.87.0.0/24"));
        assert!(
            text.contains("set isolated_ports {\n    type ifname\n  }"),
            "{text}"
        );
        assert!(!text.contains("oifname { \"croftbr0\" } drop"), "{text}");
    }

    #[test]
    fn an_added_port_carries_the_same_chain_as_a_full_render() {
        let mut r = sample();
        assert_eq!(render_added_port(&r.vpses[0]), None, "forwards need a full load");
        r.vpses[0].forwards.clear();
        let added = render_added_port(&r.vpses[0]).unwrap();
        let full = render(&r);
        for (chain, least) in [("from_crv1", 5), ("to_crv1", 4)] {
            let head = format!("  chain {chain} {{\n");
            let start = full.find(&head).unwrap() + head.len();
            let in_full: Vec<&str> = full[start..start + full[start..].find("\n  }").unwrap()]
                .lines()
                .map(str::trim)
                .collect();
            let prefix = format!("add rule bridge croft {chain} ");
            let in_added: Vec<&str> = added.lines().filter_map(|l| l.strip_prefix(&prefix)).collect();
            assert!(in_full.len() >= least, "{in_full:?}");
            assert_eq!(in_added, in_full);
            assert!(added.contains(&format!(
                "add chain bridge croft {chain}\nflush chain bridge croft {chain}\n"
            )));
        }
        assert!(added.contains("add element bridge croft ports { \"crv1\" : jump from_crv1 }"));
        assert!(added.contains("add element bridge croft to_ports { \"crv1\" : jump to_crv1 }"));
        assert!(added.contains("add element bridge croft isolated_ports { \"crv1\" }"));
        let mut open = r.vpses[0].clone();
        open.isolated = false;
        assert!(!render_added_port(&open).unwrap().contains("isolated_ports"));
        let removed = render_removed_port(&r.vpses[0]);
        assert!(removed.starts_with(
            "delete element bridge croft ports { \"crv1\" }\n\
             delete element bridge croft to_ports { \"crv1\" }\n\
             delete element bridge croft isolated_ports { \"crv1\" }\n\
             delete chain bridge croft from_crv1\n\
             delete chain bridge croft to_crv1\n"
        ));
        assert!(removed.contains("delete element inet croft fw_in4 { 10.87.0.2 }"));
        assert!(removed.contains("delete element inet croft fw_out6 { fd63::2 }"));
        assert!(removed.ends_with("delete chain inet croft in_crv1\ndelete chain inet croft out_crv1\n"));
        // The firewall chains and map entries of the added port are the
        // full render's.
        assert!(added.contains("add element inet croft fw_in4 { 10.87.0.2 : jump in_crv1 }"));
        assert!(added.contains("add element inet croft fw_out6 { fd63::2 : jump out_crv1 }"));
        assert!(full.contains("elements = { 10.87.0.2 : jump in_crv1 }"));
        assert!(!added.contains("provider_exempt"), "not exempt");
        r.vpses[0].provider_exempt = true;
        let added = render_added_port(&r.vpses[0]).unwrap();
        assert!(added.contains("add element inet croft provider_exempt4 { 10.87.0.2 }"));
        assert!(
            render(&r).contains("set provider_exempt4 {\n    type ipv4_addr\n    elements = { 10.87.0.2 }")
        );
    }

    #[test]
    fn link_local_is_eui64_of_the_mac() {
        assert_eq!(
            link_local(&[0x0e, 0xcf, 0x12, 0x34, 0x56, 0x78]).to_string(),
            "fe80::ccf:12ff:fe34:5678"
        );
    }

    #[test]
    fn renders_firewalls_both_ways_in_order_with_provider_rules_and_host_protection() {
        let mut r = sample();
        // No rules and default allow: empty chains, entered all the same.
        let text = render(&r);
        assert!(text.contains("  chain in_crv1 {\n  }"), "{text}");
        assert!(
            text.contains("ip saddr vmap @fw_out4\n    ip6 saddr vmap @fw_out6\n    ip daddr vmap @fw_in4")
        );
        r.vpses[0].firewall = Firewall {
            default_deny_in: true,
            default_deny_out: false,
            rules: vec![
                FirewallRule {
                    inbound: false,
                    allow: false,
                    protocol: "tcp".into(),
                    ports: Some((25, 25)),
                    remote: None,
                },
                FirewallRule {
                    inbound: true,
                    allow: true,
                    protocol: "tcp".into(),
                    ports: Some((22, 22)),
                    remote: Some(("192.0.2.0".parse().unwrap(), 24)),
                },
                FirewallRule {
                    inbound: true,
                    allow: false,
                    protocol: "udp".into(),
                    ports: Some((8000, 8100)),
                    remote: None,
                },
                FirewallRule {
                    inbound: false,
                    allow: true,
                    protocol: "any".into(),
                    ports: None,
                    remote: Some(("2001:db8::".parse().unwrap(), 32)),
                },
            ],
        };
        let text = render(&r);
        let chain = |name: &str| {
            let head = format!("  chain {name} {{\n");
            let start = text.find(&head).unwrap() + head.len();
            text[start..start + text[start..].find("  }").unwrap()].to_string()
        };
        assert_eq!(
            chain("in_crv1"),
            "    ct state established,related accept\n\
             \x20   icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, packet-too-big } accept\n\
             \x20   ip saddr 192.0.2.0/24 tcp dport 22 accept\n\
             \x20   udp dport 8000-8100 drop\n\
             \x20   drop\n"
        );
        // Outbound: an allow lets the receiver's rules still apply.
        assert_eq!(
            chain("out_crv1"),
            "    ct state established,related return\n\
             \x20   icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, packet-too-big } return\n\
             \x20   tcp dport 25 drop\n\
             \x20   ip6 daddr 2001:db8::/32 return\n"
        );
        assert!(text.contains("elements = { 10.87.0.2 : jump in_crv1 }"));
        assert!(text.contains("elements = { fd63::2 : jump out_crv1, fe80::ccf:ff:fe00:1 : jump out_crv1 }"));
        // The provider's rules, for traffic from the bridge.
        assert!(text.contains("meta mark & 0x100000 == 0x100000 jump provider_egress"));
        assert!(chain("provider_egress").ends_with("    tcp dport 25 drop\n"));
        // Host protection: ICMP and the services opened, nothing else.
        assert!(text.contains("meta mark & 0x100000 == 0x100000 jump from_vpses"));
        assert_eq!(
            chain("from_vpses"),
            "    ct state established,related accept\n\
             \x20   meta l4proto { icmp, ipv6-icmp } accept\n\
             \x20   udp dport 53 accept\n\
             \x20   drop\n"
        );
        // One VPS's change reloads its two chains, as the full render has them.
        let update = render_firewall_update(&r.vpses[0]);
        assert!(update.starts_with("flush chain inet croft in_crv1\n"));
        assert!(update.contains("add rule inet croft out_crv1 tcp dport 25 drop\n"));
        assert_eq!(update.lines().filter(|l| l.starts_with("add rule")).count(), 9);
    }

    #[test]
    fn networks_are_kept_apart_and_each_masquerades_its_own_subnet() {
        let mut r = sample();
        r.networks[0].isolated = false;
        r.networks.push(NetworkRules {
            bridge: "croftbr1".into(),
            ipv4_subnet: Some(("10.88.0.0".parse().unwrap(), 24)),
            ipv6_subnet: None,
            nat: true,
            isolated: false,
            bridged: false,
        });
        let text = render(&r);
        assert!(text
            .contains("oifname != \"croftbr1\" ip saddr 10.88.0.0/24 ip daddr != 10.88.0.0/24 masquerade"));
        assert!(text
            .contains("oifname != \"croftbr0\" ip saddr 10.87.0.0/24 ip daddr != 10.87.0.0/24 masquerade"));
        assert!(text.contains(
            "iifname \"croftbr0\" oifname { \"croftbr1\" } ct status dnat accept\n    iifname \"croftbr0\" oifname { \"croftbr1\" } drop"
        ));
        assert!(text.contains("iifname \"croftbr1\" oifname { \"croftbr0\" } drop"));
        assert!(text.contains("meta mark & 0x100000 == 0x100000 ip daddr 169.254.0.0/16 drop"));
    }

    #[test]
    fn a_bridged_networks_vpses_are_told_by_their_port_not_the_hosts_bridge() {
        let mut r = sample();
        r.networks.push(NetworkRules {
            bridge: "br-up".into(),
            ipv4_subnet: Some(("198.51.100.64".parse().unwrap(), 26)),
            ipv6_subnet: None,
            nat: false,
            isolated: false,
            bridged: true,
        });
        let text = render(&r);
        // The admin's bridge is the host's way out: neither kept apart
        // from croft's nor guarded as a whole.
        assert!(!text.contains("br-up"), "{text}");
        // What VPS ports send is marked before the port chains, and the
        // mark (not the bridge) leads to host protection and the
        // provider's rules.
        let pre = &text[text.find("type filter hook prerouting priority -200").unwrap()..];
        let mark = pre
            .find("iifname \"crv*\" meta mark set meta mark | 0x100000")
            .expect("marked");
        assert!(mark < pre.find("iifname vmap @ports").unwrap());
        assert!(text.contains("meta mark & 0x100000 == 0x100000 jump from_vpses"));
        assert!(text.contains("meta mark & 0x100000 == 0x100000 jump provider_egress"));
        // ... and on its way back through the provider's router.
        assert!(text.contains("meta mark & 0x100000 == 0x100000 fib daddr type local jump from_vpses"));
        // Through the host, its VPSes reach croft's bridges only by port
        // forwards; IP straight from a VPS port goes nowhere.
        assert!(text.contains(
            "meta mark & 0x100000 == 0x100000 iifname != \"croftbr0\" oifname \"croftbr0\" ct status dnat accept\n    \
             meta mark & 0x100000 == 0x100000 iifname != \"croftbr0\" oifname \"croftbr0\" drop"
        ));
        assert_eq!(text.matches("    iifname \"crv*\" drop\n").count(), 3, "{text}");
    }

    #[test]
    fn additional_addresses_join_the_anti_spoofing_and_the_firewall_maps() {
        let old = sample().vpses.remove(0);
        let mut new = old.clone();
        new.extra = vec!["10.87.0.9".parse().unwrap(), "fd63::9".parse().unwrap()];
        let update = render_port_update(&old, &new);
        assert!(update.contains("add rule bridge croft from_crv1 ether type ip ip saddr != { 0.0.0.0, 10.87.0.2, 10.87.0.9 } drop"), "{update}");
        assert!(
            update.contains("add rule bridge croft to_crv1 ip daddr { 10.87.0.2, 10.87.0.9 } return"),
            "{update}"
        );
        assert!(
            update.contains("ip6 saddr != { ::, fe80::ccf:ff:fe00:1, fd63::2, fd63::9 } drop"),
            "{update}"
        );
        assert!(
            update.contains("delete element inet croft fw_in4 { 10.87.0.2 }\n"),
            "{update}"
        );
        assert!(update.contains("add element inet croft fw_in4 { 10.87.0.2 : jump in_crv1 }\nadd element inet croft fw_in4 { 10.87.0.9 : jump in_crv1 }"), "{update}");
        let deleted = update.find("delete element").unwrap();
        assert!(
            update.rfind("delete element").unwrap() < update.find("add element").unwrap() && deleted > 0,
            "{update}"
        );
        // The full render says the same.
        let mut r = sample();
        r.vpses[0] = new;
        let text = render(&r);
        assert!(text.contains("ip daddr { 10.87.0.2, 10.87.0.9 } return"));
        assert!(text.contains("10.87.0.9 : jump out_crv1"));
    }

    #[test]
    fn a_delegated_prefix_is_the_vpss_to_send_from_and_receive_at() {
        let old = sample().vpses.remove(0);
        let mut new = old.clone();
        new.delegated = vec![("2001:db8:100:1::".parse().unwrap(), 64)];
        let update = render_port_update(&old, &new);
        assert!(
            update.contains("ip6 saddr != { ::, fe80::ccf:ff:fe00:1, fd63::2, 2001:db8:100:1::/64 } drop"),
            "{update}"
        );
        assert!(
            update.contains("ip6 daddr { fe80::ccf:ff:fe00:1, fd63::2, 2001:db8:100:1::/64 } return"),
            "{update}"
        );
        assert!(
            update.contains("add element inet croft fw_in6 { 2001:db8:100:1::/64 : jump in_crv1 }"),
            "{update}"
        );
        let mut r = sample();
        r.vpses[0] = new;
        assert!(render(&r).contains("map fw_in6 {\n    type ipv6_addr : verdict\n    flags interval"));
    }
}
