//! A small synchronous rtnetlink client: the handful of link, address and
//! route requests croft makes, on a socket bound to one network namespace.
//!
//! Messages are built and parsed by `netlink-packet-route`; this module
//! only sends a request and waits for its acknowledgement. Synchronous on
//! purpose: it runs in the supervisor between clone and exec of a VPS init
//! (no async runtime there) and in croftd's blocking threads.

use super::NetError;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::IpAddr;
use std::os::fd::AsFd;

pub struct Rtnl {
    socket: Socket,
    seq: u32,
}

fn nl_err(what: &str) -> impl FnOnce(std::io::Error) -> NetError + '_ {
    move |source| NetError::Netlink {
        what: what.to_string(),
        source,
    }
}

/// A link's counters as croft keeps them.
fn counters_of(index: u32, s: &netlink_packet_route::link::Stats64) -> super::LinkCounters {
    super::LinkCounters {
        index,
        rx_bytes: s.rx_bytes,
        tx_bytes: s.tx_bytes,
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
        rx_dropped: s.rx_dropped,
        tx_dropped: s.tx_dropped,
    }
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> Result<Rtnl, NetError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(nl_err("open a netlink socket"))?;
        socket.bind_auto().map_err(nl_err("bind a netlink socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(nl_err("connect a netlink socket"))?;
        socket.set_ext_ack(true).map_err(nl_err("set netlink ext_ack"))?;
        Ok(Rtnl { socket, seq: 0 })
    }

    /// A socket in the network namespace `netns` (an open /proc/PID/ns/net).
    /// A short-lived thread enters the namespace to create the socket, which
    /// keeps working there; the caller's own thread never changes namespace.
    pub fn in_netns(netns: &(impl AsFd + Sync)) -> Result<Rtnl, NetError> {
        super::in_netns(netns, Rtnl::new)
    }

    /// Send one request and collect the messages the kernel answers with
    /// until its acknowledgement (or the end of a dump).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        // Every request but a dump asks for an acknowledgement: it is what
        // ends the wait (a plain GET is answered with its one message only).
        header.flags = NLM_F_REQUEST | flags | if flags & NLM_F_DUMP == 0 { NLM_F_ACK } else { 0 };
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(nl_err(what))?;
        let mut answers = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(nl_err(what))?;
            let mut offset = 0;
            while offset < data.len() {
                let reply =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..]).map_err(|e| {
                        NetError::Netlink {
                            what: what.to_string(),
                            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                        }
                    })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += len;
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(code) => Err(NetError::Netlink {
                                what: what.to_string(),
                                source: std::io::Error::from_raw_os_error(-code.get()),
                            }),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(m) => answers.push(m),
                    _ => {}
                }
            }
        }
    }

    /// The index of link `name`, if it exists.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        match self.request(
            RouteNetlinkMessage::GetLink(msg),
            0,
            &format!("look up link {name}"),
        ) {
            Ok(answers) => Ok(answers.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The counters of every link whose name starts with `prefix`, by name:
    /// one dump, however many links there are.
    pub fn links_counters(
        &mut self,
        prefix: &str,
    ) -> Result<std::collections::HashMap<String, super::LinkCounters>, NetError> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "read the links' counters",
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => {
                    let index = l.header.index;
                    let mut name = None;
                    let mut counters = None;
                    for a in l.attributes {
                        match a {
                            LinkAttribute::IfName(n) if n.starts_with(prefix) => name = Some(n),
                            LinkAttribute::Stats64(s) => counters = Some(counters_of(index, &s)),
                            _ => {}
                        }
                    }
                    Some((name?, counters?))
                }
                _ => None,
            })
            .collect())
    }

    /// The counters of link `name`, if it exists.
    pub fn link_counters(&mut self, name: &str) -> Result<Option<super::LinkCounters>, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        let answers = match self.request(
            RouteNetlinkMessage::GetLink(msg),
            0,
            &format!("read the counters of link {name}"),
        ) {
            Ok(answers) => answers,
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        Ok(answers.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => {
                let index = l.header.index;
                l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::Stats64(s) => Some(counters_of(index, &s)),
                    _ => None,
                })
            }
            _ => None,
        }))
    }

    /// Whether link `name` exists and is a bridge.
    pub fn is_bridge(&mut self, name: &str) -> Result<bool, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        let answers = match self.request(
            RouteNetlinkMessage::GetLink(msg),
            0,
            &format!("look up link {name}"),
        ) {
            Ok(answers) => answers,
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        Ok(answers.into_iter().any(|m| match m {
            RouteNetlinkMessage::NewLink(l) => l.attributes.iter().any(|a| {
                matches!(a, LinkAttribute::LinkInfo(infos)
                    if infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))))
            }),
            _ => false,
        }))
    }

    pub fn require_link(&mut self, name: &str) -> Result<u32, NetError> {
        self.link_index(name)?
            .ok_or_else(|| NetError::NoLink(name.into()))
    }

    /// Names of all links whose name starts with `prefix`.
    pub fn links_with_prefix(&mut self, prefix: &str) -> Result<Vec<String>, NetError> {
        let answers = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
            "list links",
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) if n.starts_with(prefix) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    pub fn create_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<u32, NetError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &format!("create bridge {name}"),
        )?;
        self.require_link(name)
    }

    /// A veth pair: `host` here, attached to bridge `master` and up; its
    /// peer created directly inside the namespace of process `peer_pid`
    /// as `peer`, with MAC address `peer_mac` (so no name clash here).
    pub fn create_veth(
        &mut self,
        host: &str,
        master: u32,
        peer: &str,
        peer_mac: [u8; 6],
        peer_pid: u32,
    ) -> Result<u32, NetError> {
        let mut peer_msg = LinkMessage::default();
        peer_msg.attributes.push(LinkAttribute::IfName(peer.into()));
        peer_msg
            .attributes
            .push(LinkAttribute::Address(peer_mac.to_vec()));
        peer_msg.attributes.push(LinkAttribute::NetNsPid(peer_pid));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.into()));
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &format!("create veth {host}"),
        )?;
        self.require_link(host)
    }

    pub fn set_up(&mut self, index: u32) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(msg), NLM_F_ACK, "set a link up")?;
        Ok(())
    }

    pub fn delete_link(&mut self, index: u32) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), NLM_F_ACK, "delete a link")?;
        Ok(())
    }

    /// [`Self::delete_link`] for a link that may be going away by itself
    /// (a veth whose peer's network namespace the kernel is tearing down
    /// after its VPS's init died): gone by now is as good as deleted.
    pub fn delete_link_if_present(&mut self, index: u32) -> Result<(), NetError> {
        match self.delete_link(index) {
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// Bridge port `index` no longer learns source MACs nor floods unicast
    /// to unknown MACs (`ip link set dev X type bridge_slave learning off
    /// flood off`).
    pub fn pin_bridge_port(&mut self, index: u32) -> Result<(), NetError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![
                InfoBridgePort::Learning(false),
                InfoBridgePort::UnicastFlood(false),
            ])),
        ]));
        // RTM_NEWLINK on an existing link: only that path applies the
        // port data (RTM_SETLINK ignores IFLA_LINKINFO).
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_ACK,
            "turn off learning and flooding on a bridge port",
        )?;
        Ok(())
    }

    /// A static forwarding entry on the bridge for `mac` behind port
    /// `index` (`bridge fdb replace MAC dev X master static`).
    pub fn set_static_fdb(&mut self, index: u32, mac: [u8; 6]) -> Result<(), NetError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        msg.header.ifindex = index;
        msg.header.state = NeighbourState::Noarp;
        msg.header.flags = NeighbourFlags::Controller;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            "add a static bridge forwarding entry",
        )?;
        Ok(())
    }

    /// Answer neighbour solicitations for `addr` on link `index` (an IPv6
    /// proxy entry: a routed VPS's address where the provider expects it
    /// on-link), or with `remove` stop. Idempotent.
    pub fn set_ndp_proxy(
        &mut self,
        index: u32,
        addr: std::net::Ipv6Addr,
        remove: bool,
    ) -> Result<(), NetError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.ifindex = index;
        msg.header.flags = NeighbourFlags::Proxy;
        msg.attributes.push(NeighbourAttribute::Destination(addr.into()));
        let (request, flags) = if remove {
            (RouteNetlinkMessage::DelNeighbour(msg), NLM_F_ACK)
        } else {
            (
                RouteNetlinkMessage::NewNeighbour(msg),
                NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            )
        };
        match self.request(request, flags, &format!("proxy neighbour discovery for {addr}")) {
            Err(NetError::Netlink { source, .. })
                if remove && source.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// The IPv6 addresses link `index` answers for as a proxy.
    pub fn ndp_proxies(&mut self, index: u32) -> Result<Vec<std::net::Ipv6Addr>, NetError> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.flags = NeighbourFlags::Proxy;
        let answers = self.request(
            RouteNetlinkMessage::GetNeighbour(msg),
            NLM_F_DUMP,
            "list proxy neighbours",
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) if n.header.ifindex == index => {
                    n.attributes.into_iter().find_map(|a| match a {
                        NeighbourAttribute::Destination(
                            netlink_packet_route::neighbour::NeighbourAddress::Inet6(a),
                        ) => Some(a),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Add `addr/prefix` to link `index`; an address that is already
    /// there is fine. IPv6 addresses skip duplicate address detection:
    /// IPAM already made them unique, and DAD would hold them unusable
    /// for a second after start.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix;
        msg.header.family = match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        if addr.is_ipv6() {
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        msg.attributes.push(AddressAttribute::Local(addr));
        msg.attributes.push(AddressAttribute::Address(addr));
        match self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &format!("add address {addr}/{prefix}"),
        ) {
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Take address `addr/prefix` off link `index`; not there is fine.
    pub fn delete_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
        let mut msg = AddressMessage::default();
        msg.header.index = index;
        msg.header.prefix_len = prefix;
        msg.header.family = match addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.attributes.push(AddressAttribute::Local(addr));
        msg.attributes.push(AddressAttribute::Address(addr));
        match self.request(
            RouteNetlinkMessage::DelAddress(msg),
            NLM_F_ACK,
            &format!("remove address {addr}/{prefix}"),
        ) {
            Err(NetError::Netlink { source, .. })
                if matches!(
                    source.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)
                ) =>
            {
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// A route to `dst/prefix` via `gateway` on link `index` (a prefix
    /// delegated to a VPS, through its address), or with `remove` its
    /// removal. Already there, or already gone, is fine.
    pub fn set_route_via(
        &mut self,
        index: u32,
        dst: IpAddr,
        prefix: u8,
        gateway: IpAddr,
        remove: bool,
    ) -> Result<(), NetError> {
        let msg = route_message(index, Some((dst, prefix)), Some(gateway));
        let (request, flags) = if remove {
            (RouteNetlinkMessage::DelRoute(msg), NLM_F_ACK)
        } else {
            // Replace: a route left to another next hop is made right.
            (
                RouteNetlinkMessage::NewRoute(msg),
                NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            )
        };
        match self.request(request, flags, &format!("route {dst}/{prefix} via {gateway}")) {
            Err(NetError::Netlink { source, .. })
                if matches!(source.raw_os_error(), Some(libc::EEXIST) | Some(libc::ESRCH)) =>
            {
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// The default route of `gateway`'s family through link `index`.
    /// A route to `dst/prefix` straight out of link `index` (no gateway):
    /// how a host reaches a routed pool on its bridge, and how a VPS with
    /// a /32 reaches a gateway outside its subnet. There already is fine.
    pub fn add_link_route(&mut self, index: u32, dst: IpAddr, prefix: u8) -> Result<(), NetError> {
        let msg = route_message(index, Some((dst, prefix)), None);
        match self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &format!("add a route to {dst}/{prefix}"),
        ) {
            Err(NetError::Netlink { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other.map(drop),
        }
    }

    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> Result<(), NetError> {
        let msg = route_message(index, None, Some(gateway));
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            &format!("add the default route via {gateway}"),
        )?;
        Ok(())
    }
}

/// A static unicast route of the main table out of link `index`: to
/// `dst` (none: the default route) via `gateway` (none: on the link).
fn route_message(index: u32, dst: Option<(IpAddr, u8)>, gateway: Option<IpAddr>) -> RouteMessage {
    let family_of = dst
        .map(|(a, _)| a)
        .or(gateway)
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let mut msg = RouteMessage::default();
    msg.header.address_family = match family_of {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.scope = if gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    msg.header.kind = RouteType::Unicast;
    if let Some((dst, prefix)) = dst {
        msg.header.destination_prefix_length = prefix;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dst)));
    }
    if let Some(gateway) = gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    }
    msg.attributes.push(RouteAttribute::Oif(index));
    msg
}
