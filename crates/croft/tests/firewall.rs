//! End-to-end tests of the per-VPS firewall and outbound NAT: default
//! deny, allowed ports and sources, replies kept, masquerading switched
//! on and off. Each test's daemon runs in a network namespace of its own;
//! "the host" below is that namespace. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::net::{
    host_ok, host_out, ipv4, ipv6, link_local_of, nic, vps_ok, Started, Upstream, HOST_UP4, UPSTREAM4,
    UPSTREAM6,
};
use common::Host;
use croft_api::{Firewall, Network};

/// Whether VPS `from` (or the host, with `None`) can open a TCP connection
/// to `port` of `to_ip`.
fn tcp_open(host: &Host, from: Option<&str>, to_ip: &str, port: u16) -> bool {
    let probe = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc {to_ip} {port} | grep -q served");
    match from {
        Some(vps) => vps_ok(host, vps, &probe),
        None => host_ok(host, &format!("busybox sh -c \"{}\"", probe.replace('"', "\\\""))),
    }
}

#[test]
fn the_firewall_denies_by_default_admits_what_is_allowed_and_keeps_replies() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "fw1"]);
    host.ok(&["launch", "busybox", "fw2"]);
    let (ip1, ip2) = (ipv4(&host, "fw1"), ipv4(&host, "fw2"));
    for vps in ["fw1", "fw2"] {
        host.sh_ok(
            vps,
            "mkdir -p /www && echo served > /www/index.html && httpd -p 80 -h /www && httpd -p 81 -h /www",
        );
    }
    assert!(tcp_open(&host, Some("fw2"), &ip1, 80) && tcp_open(&host, Some("fw2"), &ip1, 81));

    host.ok(&["firewall", "default", "fw1", "deny"]);
    assert!(
        !tcp_open(&host, Some("fw2"), &ip1, 80),
        "default deny let port 80 in"
    );
    assert!(!tcp_open(&host, None, &ip1, 80), "default deny let the host in");
    assert!(!vps_ok(&host, "fw2", &format!("ping -c1 -W2 {ip1}")));
    let lla1 = link_local_of(&host, "fw1");
    assert!(
        !vps_ok(&host, "fw2", &format!("ping6 -c1 -W2 -I eth0 {lla1}")),
        "default deny let the link-local address in"
    );
    // Replies to what fw1 opens itself still come back.
    assert!(
        tcp_open(&host, Some("fw1"), &ip2, 80),
        "replies to fw1's own connection were dropped"
    );
    assert!(vps_ok(&host, "fw1", "ping -c1 -W2 10.87.0.1"));

    host.ok(&["firewall", "add", "fw1", "allow", "tcp", "80"]);
    host.ok(&[
        "firewall",
        "add",
        "fw1",
        "allow",
        "tcp",
        "81",
        "--from",
        &format!("{ip2}/32"),
    ]);
    host.ok(&["firewall", "add", "fw1", "allow", "icmp"]);
    assert!(tcp_open(&host, Some("fw2"), &ip1, 80));
    assert!(tcp_open(&host, None, &ip1, 80), "allowed port closed to the host");
    assert!(tcp_open(&host, Some("fw2"), &ip1, 81), "allowed source refused");
    assert!(
        !tcp_open(&host, None, &ip1, 81),
        "port 81 open to a source not allowed"
    );
    assert!(vps_ok(&host, "fw2", &format!("ping -c1 -W2 {ip1}")));
    assert!(vps_ok(&host, "fw2", &format!("ping6 -c1 -W2 -I eth0 {lla1}")));
    // IPv6 goes through the same rules.
    assert!(vps_ok(
        &host,
        "fw2",
        &format!("ping6 -c1 -W2 {}", ipv6(&host, "fw1"))
    ));

    // A port forward lands on the VPS port, which the rules then govern.
    host.ok(&["port", "add", "fw1", "tcp", "8081:81"]);
    assert!(
        !tcp_open(&host, None, "10.87.0.1", 8081),
        "forward bypassed the firewall"
    );
    host.ok(&["port", "add", "fw1", "tcp", "8080:80"]);
    assert!(tcp_open(&host, None, "10.87.0.1", 8080));

    let fw: Firewall = host.ok_json(&["firewall", "list", "fw1", "--format", "json"]);
    assert_eq!(fw.default, "deny");
    assert_eq!(fw.rules.len(), 3, "{fw:?}");
    host.ok(&["firewall", "remove", "fw1", "1"]);
    assert!(
        !tcp_open(&host, Some("fw2"), &ip1, 80),
        "removed rule still admits"
    );
    assert!(
        tcp_open(&host, Some("fw2"), &ip1, 81),
        "the other rules went with it"
    );

    for (args, expect) in [
        (vec!["add", "fw1", "permit", "tcp", "22"], "unknown action"),
        (vec!["add", "fw1", "allow", "sctp"], "unknown protocol"),
        (vec!["add", "fw1", "allow", "icmp", "22"], "needs protocol"),
        (vec!["add", "fw1", "allow", "tcp", "99999"], "invalid port"),
        (
            vec!["add", "fw1", "allow", "tcp", "22", "--from", "10.0.0.0/40"],
            "invalid address",
        ),
        (vec!["remove", "fw1", "9"], "not found"),
        (vec!["default", "fw1", "maybe"], "unknown policy"),
    ] {
        let mut cmd = vec!["firewall"];
        cmd.extend(args.iter());
        let err = host.fails(&cmd);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let (code, body) = host.api_err(
        "POST",
        "/1.0/instances/fw1/firewall/rules",
        Some(r#"{"action":"allow","protocol":"tcp","port":"1-0"}"#),
    );
    assert_eq!(code, 400, "{body:?}");
    let (code, _) = host.api_err(
        "PATCH",
        "/1.0/instances/fw1/config",
        Some(r#"{"set":{"firewall.default":"x"}}"#),
    );
    assert_eq!(code, 400);
    let fw: Firewall = host.ok_json(&["firewall", "list", "fw1", "--format", "json"]);
    assert_eq!(fw.rules.len(), 2, "bad input changed the rules: {fw:?}");

    host.ok(&["firewall", "default", "fw1", "allow"]);
    assert!(tcp_open(&host, None, &ip1, 81));
    host.ok(&["delete", "--force", "fw1"]);
    let rules = host_out(&host, "nft list table inet croft");
    assert!(!rules.contains("jump fw_"), "firewall rules left: {rules}");
}

/// A network outside the host: another namespace joined to the host's by a
/// veth (`up0`, 192.0.2.1 on the host, 192.0.2.2 outside) and the host's
/// default route. Outside has no route back to the VPS subnet, so only
/// masqueraded traffic can be answered. Removed on drop.
struct Outside {
    netns: String,
}

impl Outside {
    fn new(host: &Host) -> Outside {
        let netns = format!("{}-out", host.netns);
        let run = |args: &[&str]| {
            let st = std::process::Command::new("ip").args(args).status().unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        run(&["netns", "add", &netns]);
        let outside = Outside { netns };
        let n = outside.netns.as_str();
        run(&[
            "-n",
            &host.netns,
            "link",
            "add",
            "up0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            n,
        ]);
        run(&["-n", &host.netns, "addr", "add", "192.0.2.1/24", "dev", "up0"]);
        run(&["-n", &host.netns, "link", "set", "up0", "up"]);
        run(&["-n", &host.netns, "route", "add", "default", "via", "192.0.2.2"]);
        run(&["-n", n, "addr", "add", "192.0.2.2/24", "dev", "eth0"]);
        run(&["-n", n, "link", "set", "eth0", "up"]);
        run(&["-n", n, "link", "set", "lo", "up"]);
        outside
    }

    /// Accept one TCP connection on 192.0.2.2:9000 and return the address
    /// it came from, or `None` if nobody got through. The server says
    /// "ready" once it listens (python starts slowly on a loaded host), and
    /// the VPS tries a few times, so only a refused route can give `None`.
    fn peer_of_one_connection(&self, host: &Host, vps: &str) -> Option<String> {
        use std::io::BufRead;
        let mut server = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args([
                "python3",
                "-c",
                "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('192.0.2.2', 9000))\ns.listen(1)\ns.settimeout(10)\nprint('ready', flush=True)\n\
                 try:\n    c, a = s.accept()\n    print(a[0])\nexcept OSError:\n    pass",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
        let ready = lines.next().and_then(Result::ok);
        assert_eq!(
            ready.as_deref(),
            Some("ready"),
            "the outside server did not start"
        );
        for _ in 0..3 {
            let _ = host.sh(vps, "echo hello | timeout 3 nc 192.0.2.2 9000");
            if server.try_wait().unwrap().is_some() {
                break;
            }
        }
        let peer = lines.next().and_then(Result::ok).unwrap_or_default();
        let _ = server.wait();
        let peer = peer.trim().to_string();
        (!peer.is_empty()).then_some(peer)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

#[test]
fn outbound_ipv4_is_masqueraded_unless_nat_is_switched_off() {
    let host = Host::new();
    let outside = Outside::new(&host);
    host.ok(&["launch", "busybox", "out1"]);
    assert_eq!(
        outside.peer_of_one_connection(&host, "out1").as_deref(),
        Some("192.0.2.1"),
        "the VPS did not reach outside as the host"
    );
    // Link-local addresses beyond the host (a cloud's metadata service)
    // stay out of reach, though the host itself reaches them.
    let ip = |args: &[&str]| {
        let st = std::process::Command::new("ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    ip(&[
        "-n",
        &outside.netns,
        "addr",
        "add",
        "169.254.169.254/32",
        "dev",
        "eth0",
    ]);
    ip(&[
        "-n",
        &host.netns,
        "route",
        "add",
        "169.254.169.254/32",
        "via",
        "192.0.2.2",
    ]);
    assert!(host_ok(&host, "busybox ping -c1 -W2 169.254.169.254"));
    assert!(
        !vps_ok(&host, "out1", "ping -c1 -W2 169.254.169.254"),
        "metadata address reachable"
    );

    let plain = Host::with_config("[network]\nnat = false");
    let outside2 = Outside::new(&plain);
    plain.ok(&["launch", "busybox", "out2"]);
    assert_eq!(
        outside2.peer_of_one_connection(&plain, "out2"),
        None,
        "reached outside without NAT"
    );
    let net: Network = plain.ok_json(&["network", "info", "default", "--format", "json"]);
    assert!(!net.nat);
}

/// Two ports on the VPS bridge that are not croft's (`lan0` and `lan1` on
/// the host, `eth0` and `eth1` in their own namespace): a machine on the
/// VPS LAN that sends any frame it likes. Removed on drop.
struct Lan {
    netns: String,
}

impl Lan {
    fn new(host: &Host) -> Lan {
        let lan = Lan {
            netns: format!("{}-lan", host.netns),
        };
        let run = |args: &[&str]| {
            let st = std::process::Command::new("ip").args(args).status().unwrap();
            assert!(st.success(), "ip {args:?}");
        };
        run(&["netns", "add", &lan.netns]);
        for (port, dev) in [("lan0", "eth0"), ("lan1", "eth1")] {
            run(&[
                "-n",
                &host.netns,
                "link",
                "add",
                port,
                "type",
                "veth",
                "peer",
                "name",
                dev,
                "netns",
                &lan.netns,
            ]);
            run(&["-n", &host.netns, "link", "set", port, "master", "croftbr0", "up"]);
            run(&["-n", &lan.netns, "link", "set", dev, "up"]);
        }
        run(&["-n", &lan.netns, "addr", "add", "10.87.0.251/24", "dev", "eth1"]);
        lan
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// Sends, from the LAN's eth0, UDP to port 9999 in frames to the MAC
/// `argv[1]`: to the broadcast 10.87.0.255, to 255.255.255.255, to ff02::1,
/// then to the VPS's own address `argv[2]`; then to eth1's MAC, to
/// 255.255.255.255 from 10.87.0.77, and prints the source eth1 got it from.
const LAN_SENDER: &str = r#"
import socket, struct, sys
vmac, vip = sys.argv[1], sys.argv[2]
mac = lambda s: bytes.fromhex(s.strip().replace(':', ''))
own = open('/sys/class/net/eth0/address').read()
def csum(b):
    b += b'\0' * (len(b) % 2)
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
def v4(to, src, dst):
    udp = struct.pack('!HHHH', 40000, 9999, 12, 0) + b'ping'
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    return mac(to) + mac(own) + b'\x08\x00' + ip + udp
def v6(to, src, dst):
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    udp = struct.pack('!HHHH', 40000, 9999, 12, 0) + b'ping'
    sum6 = csum(s + d + struct.pack('!I3xB', len(udp), 17) + udp) or 0xffff
    udp = udp[:6] + struct.pack('!H', sum6) + udp[8:]
    return mac(to) + mac(own) + b'\x86\xdd' + struct.pack('!IHBB', 6 << 28, len(udp), 17, 1) + s + d + udp
listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth1')
listener.bind(('', 9999))
listener.settimeout(5)
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(('eth0', 0))
for frame in [v4(vmac, '10.87.0.77', '10.87.0.255'), v4(vmac, '10.87.0.77', '255.255.255.255'),
              v6(vmac, 'fd63:726f:6674::77', 'ff02::1'), v4(vmac, '10.87.0.77', vip),
              v4(open('/sys/class/net/eth1/address').read(), '10.87.0.77', '255.255.255.255')]:
    raw.send(frame)
try:
    print(listener.recvfrom(100)[1][0])
except socket.timeout:
    print('nothing')
"#;

/// The UDP datagrams `name`'s kernel took in (delivered, to no socket, or
/// broadcast or multicast no socket wanted), for IPv4 and for IPv6.
fn udp_received(host: &Host, name: &str) -> (u64, u64) {
    let snmp = host.sh_ok(name, "cat /proc/net/snmp");
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp: ")).collect();
    let v4: u64 = udp[0]
        .split_whitespace()
        .zip(udp[1].split_whitespace())
        .filter(|(k, _)| ["InDatagrams", "NoPorts", "IgnoredMulti"].contains(k))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    let v6: u64 = host
        .sh_ok(name, "cat /proc/net/snmp6")
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .filter(|(k, _)| ["Udp6InDatagrams", "Udp6NoPorts", "Udp6IgnoredMulti"].contains(k))
        .map(|(_, v)| v.trim().parse::<u64>().unwrap())
        .sum();
    (v4, v6)
}

/// With `firewall default deny`, UDP in a frame to the VPS's MAC but to a
/// broadcast or multicast address passed (its firewall matches by the
/// VPS's address); and bridged traffic to 255.255.255.255 was masqueraded,
/// arriving from the gateway. Now a VPS gets IP only to its own addresses,
/// and bridged traffic keeps its source.
#[test]
fn ip_to_a_vps_reaches_it_only_at_its_own_address_and_bridged_traffic_keeps_its_source() {
    let host = Host::new();
    let lan = Lan::new(&host);
    host.ok(&["launch", "busybox", "fw1"]);
    host.ok(&["firewall", "default", "fw1", "deny"]);
    host.ok(&["firewall", "add", "fw1", "allow", "udp", "9999"]);
    let mac = nic(&host, "fw1").mac;
    let before = udp_received(&host, "fw1");
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lan.netns,
            "python3",
            "-c",
            LAN_SENDER,
            &mac,
            &ipv4(&host, "fw1"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let after = udp_received(&host, "fw1");
    // Only the datagram to its own address (allowed by its firewall).
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 0),
        "UDP to a broadcast or multicast address reached the VPS"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "10.87.0.77",
        "bridged traffic was masqueraded"
    );
}

/// Whether VPS `vps` can fetch the upstream's page on `port`, over IPv4
/// or IPv6.
fn upstream_open(host: &Host, vps: &str, v6: bool, port: u16) -> bool {
    let to = if v6 { UPSTREAM6 } else { UPSTREAM4 };
    tcp_open(host, Some(vps), to, port)
}

/// The provider's SMTP block, outbound rules in the order given (IPv4 and
/// IPv6 from one rule), and host protection, against an upstream
/// namespace beyond the host.
#[test]
fn outbound_rules_the_providers_smtp_block_and_host_protection_hold() {
    let host = Host::with_config("[network]\nhost_services = [\"tcp/2223\"]\n");
    let mut upstream = Upstream::new(&host);
    upstream.serve(25);
    upstream.serve(80);
    host.ok(&["launch", "busybox", "out1"]);
    // The provider's rule: SMTP out is dropped, the web is not, on both
    // address families.
    for v6 in [false, true] {
        assert!(upstream_open(&host, "out1", v6, 80), "v6={v6}: port 80 out");
        assert!(!upstream_open(&host, "out1", v6, 25), "v6={v6}: port 25 got out");
    }
    let fw: Firewall = host.ok_json(&["firewall", "list", "out1", "--format", "json"]);
    assert_eq!(fw.provider_blocked, ["tcp/25"]);
    // Lifted for this VPS by the admin.
    host.ok(&["config", "set", "out1", "firewall.provider_exempt=true"]);
    assert!(
        upstream_open(&host, "out1", false, 25),
        "the exemption did not lift the block"
    );

    // Tenant rules, in order: a deny inserted before an allow wins.
    host.ok(&["firewall", "add", "out1", "allow", "tcp", "80", "--out"]);
    host.ok(&[
        "firewall",
        "add",
        "out1",
        "deny",
        "tcp",
        "80",
        "--out",
        "--to",
        UPSTREAM4,
        "--position",
        "1",
    ]);
    assert!(
        !upstream_open(&host, "out1", false, 80),
        "the deny inserted first did not win"
    );
    assert!(
        upstream_open(&host, "out1", true, 80),
        "the IPv4-only deny caught IPv6"
    );
    host.ok(&["firewall", "move", "out1", "1", "2"]);
    assert!(
        upstream_open(&host, "out1", false, 80),
        "the allow moved first did not win"
    );
    // One rule without an address: both families.
    host.ok(&["firewall", "replace", "out1", "1", "deny", "tcp", "80", "--out"]);
    for v6 in [false, true] {
        assert!(
            !upstream_open(&host, "out1", v6, 80),
            "v6={v6}: the replacing deny"
        );
    }
    let fw: Firewall = host.ok_json(&["firewall", "list", "out1", "--format", "json"]);
    let rules: Vec<(&str, &str, Option<&str>)> = fw
        .rules
        .iter()
        .map(|r| (r.direction.as_str(), r.action.as_str(), r.destination.as_deref()))
        .collect();
    assert_eq!(rules, [("out", "deny", None), ("out", "deny", Some(UPSTREAM4))]);
    // Outbound default deny: nothing new gets out, not even ping; what
    // comes in still does.
    host.ok(&["firewall", "remove", "out1", "1"]);
    host.ok(&["firewall", "remove", "out1", "1"]);
    host.ok(&["firewall", "default", "out1", "deny", "--out"]);
    assert!(!upstream_open(&host, "out1", false, 80));
    assert!(!vps_ok(&host, "out1", &format!("ping -c1 -W2 {UPSTREAM4}")));
    host.sh_ok(
        "out1",
        "mkdir -p /www && echo served > /www/index.html && httpd -p 80 -h /www",
    );
    let ip1 = ipv4(&host, "out1");
    assert!(
        tcp_open(&host, None, &ip1, 80),
        "inbound with outbound default deny"
    );
    host.ok(&["firewall", "default", "out1", "allow", "--out"]);
    assert!(upstream_open(&host, "out1", false, 80));

    // Host protection: a service of the host is closed to VPSes on every
    // host address (the upstream still reaches it), one the admin opened
    // is not, and the gateway answers ping.
    let www = host.dir.join("host-www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "served\n").unwrap();
    let _services: Vec<Started> = [2222, 2223]
        .into_iter()
        .map(|port| {
            Started(
                std::process::Command::new("nsenter")
                    .arg(format!("--net=/run/netns/{}", host.netns))
                    .args(["busybox", "httpd", "-f", "-p", &port.to_string(), "-h"])
                    .arg(&www)
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    for port in [2222, 2223] {
        common::net::wait_listening(&host.netns, port);
    }
    for address in ["10.87.0.1", HOST_UP4] {
        assert!(
            !tcp_open(&host, Some("out1"), address, 2222),
            "a VPS reached the host's service at {address}"
        );
        assert!(
            tcp_open(&host, Some("out1"), address, 2223),
            "the opened service at {address}"
        );
    }
    assert!(
        !tcp_open(&host, Some("out1"), "fd63:726f:6674::1", 2222),
        "a VPS reached the host's service over IPv6"
    );
    assert!(
        upstream.ok(&format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 busybox nc {HOST_UP4} 2222 | grep -q served"
        )),
        "the host's service is closed to the rest of the world too"
    );
    assert!(vps_ok(&host, "out1", "ping -c1 -W2 10.87.0.1"));

    // Bad input: one-line errors, nothing changed.
    for (args, expect) in [
        (
            vec![
                "add",
                "out1",
                "allow",
                "tcp",
                "22",
                "--out",
                "--from",
                "192.0.2.0/24",
            ],
            "destination",
        ),
        (
            vec!["add", "out1", "allow", "tcp", "22", "--to", "192.0.2.0/24"],
            "source",
        ),
        (vec!["move", "out1", "1", "2"], "not found"),
        (
            vec!["add", "out1", "allow", "tcp", "22", "--position", "3"],
            "not found",
        ),
    ] {
        let mut cmd = vec!["firewall"];
        cmd.extend(args.iter());
        let err = host.fails(&cmd);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let fw: Firewall = host.ok_json(&["firewall", "list", "out1", "--format", "json"]);
    assert!(fw.rules.is_empty(), "{fw:?}");
    host.ok(&["delete", "--force", "out1"]);
}

/// A security group defined once holds on every VPS it is attached to,
/// and a change to it takes on all of them at once.
#[test]
fn a_security_group_holds_on_every_vps_it_is_attached_to() {
    let host = Host::new();
    for vps in ["sg1", "sg2", "sgc"] {
        host.ok(&["launch", "busybox", vps]);
    }
    for vps in ["sg1", "sg2"] {
        host.sh_ok(
            vps,
            "mkdir -p /www && echo served > /www/index.html && httpd -p 80 -h /www && httpd -p 81 -h /www",
        );
        host.ok(&["firewall", "default", vps, "deny"]);
    }
    host.ok(&[
        "firewall",
        "group",
        "create",
        "web",
        "--description",
        "web servers",
    ]);
    host.ok(&["firewall", "group", "add", "web", "allow", "tcp", "80"]);
    for vps in ["sg1", "sg2"] {
        host.ok(&["firewall", "attach", vps, "web"]);
    }
    let (ip1, ip2, ipc) = (ipv4(&host, "sg1"), ipv4(&host, "sg2"), ipv4(&host, "sgc"));
    for ip in [&ip1, &ip2] {
        assert!(tcp_open(&host, Some("sgc"), ip, 80), "the group's allow on {ip}");
        assert!(!tcp_open(&host, Some("sgc"), ip, 81), "81 open on {ip}");
    }
    // One change to the group: on both members.
    host.ok(&[
        "firewall",
        "group",
        "add",
        "web",
        "deny",
        "tcp",
        "80",
        "--from",
        &ipc,
        "--position",
        "1",
    ]);
    for ip in [&ip1, &ip2] {
        assert!(
            !tcp_open(&host, Some("sgc"), ip, 80),
            "the group's new deny on {ip}"
        );
    }
    host.ok(&["firewall", "group", "remove", "web", "1"]);
    assert!(tcp_open(&host, Some("sgc"), &ip2, 80));
    let shown = host.ok(&["firewall", "list", "sg1"]);
    assert!(shown.contains("security groups: web"), "{shown}");
    let group: croft_api::FirewallGroup =
        host.ok_json(&["firewall", "group", "show", "web", "--format", "json"]);
    assert_eq!(group.members, ["sg1", "sg2"]);
    // Detached, sg2 is back to its own default deny.
    host.ok(&["firewall", "detach", "sg2", "web"]);
    assert!(!tcp_open(&host, Some("sgc"), &ip2, 80), "detached, yet open");
    assert!(tcp_open(&host, Some("sgc"), &ip1, 80));
    for (args, expect) in [
        (vec!["group", "delete", "web"], "attached to sg1"),
        (vec!["attach", "sg1", "web"], "attached already"),
        (vec!["attach", "sg1", "nope"], "not found"),
        (vec!["group", "create", "web"], "already in use"),
        (vec!["group", "remove", "web", "5"], "not found"),
    ] {
        let mut cmd = vec!["firewall"];
        cmd.extend(args.iter());
        let err = host.fails(&cmd);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    host.ok(&["firewall", "detach", "sg1", "web"]);
    host.ok(&["firewall", "group", "delete", "web"]);
    assert!(!tcp_open(&host, Some("sgc"), &ip1, 80));
}
