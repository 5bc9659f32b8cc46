//! End-to-end tests of VPS networking: addresses, reachability over IPv4
//! and IPv6, port forwards, anti-spoofing, isolation, and clean removal.
//! Each test's daemon runs in a network namespace of its own; "the host"
//! below is that namespace.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use croft_api::{Firewall, Network, Nic, PortForward};

fn nic(host: &Host, name: &str) -> Nic {
    host.info(name).nic.expect("a network interface")
}

fn ipv4(host: &Host, name: &str) -> String {
    nic(host, name).ipv4.expect("an IPv4 address")
}

fn ipv6(host: &Host, name: &str) -> String {
    nic(host, name).ipv6.expect("an IPv6 address")
}

/// Exit status of a command run inside VPS `name`.
fn vps_ok(host: &Host, name: &str, script: &str) -> bool {
    host.sh(name, script).status.success()
}

fn host_ok(host: &Host, script: &str) -> bool {
    host.host_sh(script).status.success()
}

/// The link-local IPv6 address of VPS `name`'s eth0.
fn link_local_of(host: &Host, name: &str) -> String {
    let out = host.sh_ok(name, "ip -6 addr show dev eth0 scope link");
    let word = out
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .unwrap_or_else(|| panic!("no link-local address: {out}"));
    word.split('/').next().unwrap().to_string()
}

fn host_out(host: &Host, script: &str) -> String {
    let out = host.host_sh(script);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vpses_reach_each_other_and_the_host_over_ipv4_and_ipv6_and_delete_leaves_nothing() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "n1"]);
    host.ok(&["launch", "busybox", "n2"]);
    let (a4, b4, b6) = (ipv4(&host, "n1"), ipv4(&host, "n2"), ipv6(&host, "n2"));
    assert_eq!((a4.as_str(), b4.as_str()), ("10.87.0.2", "10.87.0.3"));
    assert_eq!(b6, "fd63:726f:6674::3", "IPv6 follows the IPv4 host part");
    assert_ne!(nic(&host, "n1").mac, nic(&host, "n2").mac);

    // Set up before init: the address, route and names are there at once.
    let inside = host.sh_ok("n1", "ip -4 addr show eth0; ip route; cat /etc/hosts");
    assert!(inside.contains(&format!("inet {a4}/24")), "{inside}");
    assert!(inside.contains("default via 10.87.0.1"), "{inside}");
    assert!(inside.contains(&format!("{a4} n1")), "{inside}");

    for target in [b4.as_str(), "10.87.0.1"] {
        assert!(
            vps_ok(&host, "n1", &format!("ping -c1 -W2 {target}")),
            "n1 -> {target}"
        );
    }
    for target in [b6.as_str(), "fd63:726f:6674::1"] {
        assert!(
            vps_ok(&host, "n1", &format!("ping6 -c1 -W2 {target}")),
            "n1 -> {target}"
        );
    }
    assert!(
        host_ok(&host, &format!("busybox ping -c1 -W2 {a4}")),
        "host -> n1"
    );
    assert!(
        host_ok(&host, &format!("busybox ping6 -c1 -W2 {}", ipv6(&host, "n1"))),
        "host -> n1 (v6)"
    );

    let net: Network = host.ok_json(&["network", "info", "default", "--format", "json"]);
    assert_eq!(net.bridge, "croftbr0");
    // Each VPS's port takes only its own frames: no learning, no flooding
    // of unknown unicast, its MAC a static entry.
    let port = host_out(
        &host,
        &format!("bridge -d link show dev {}", nic(&host, "n1").host_interface),
    );
    assert!(
        port.contains("learning off") && port.contains("flood off"),
        "{port}"
    );
    let mac = nic(&host, "n1").mac;
    assert!(host_out(&host, "bridge fdb show")
        .lines()
        .any(|l| l.starts_with(&mac) && l.contains("static")));
    // The gateway keeps its MAC as VPSes come and go.
    let bridge_mac = || host_out(&host, "ip -brief link show croftbr0 | tr -s ' ' | cut -d' ' -f3");
    let before = bridge_mac();
    host.ok(&["launch", "busybox", "n9"]);
    host.ok(&["delete", "--force", "n9"]);
    assert_eq!(bridge_mac(), before);
    assert_eq!(net.leases.len(), 2, "{net:?}");

    // A restart keeps the addresses (they are the VPS's, not the run's).
    host.ok(&["restart", "n1"]);
    assert_eq!(ipv4(&host, "n1"), a4);
    assert!(vps_ok(&host, "n1", &format!("ping -c1 -W2 {b4}")));

    let host_if = nic(&host, "n1").host_interface;
    host.ok(&["delete", "--force", "n1"]);
    host.ok(&["delete", "--force", "n2"]);
    let links = host_out(&host, "ip -br link");
    assert!(!links.contains("crv"), "veths left: {links}");
    let rules = host_out(&host, "nft list table bridge croft");
    assert!(!rules.contains(&host_if), "rules left for {host_if}: {rules}");
    let net: Network = host.ok_json(&["network", "info", "default", "--format", "json"]);
    assert_eq!(net.leases.len(), 0, "{net:?}");
    // Freed addresses are given again.
    host.ok(&["launch", "busybox", "n3"]);
    assert_eq!(ipv4(&host, "n3"), "10.87.0.2");
}

#[test]
fn fixed_addresses_and_bad_network_input_get_clear_errors_and_change_nothing() {
    let host = Host::new();
    host.ok(&[
        "launch",
        "busybox",
        "f1",
        "--ip",
        "10.87.0.50",
        "--ip6",
        "fd63:726f:6674::beef",
    ]);
    assert_eq!(ipv4(&host, "f1"), "10.87.0.50");
    assert_eq!(ipv6(&host, "f1"), "fd63:726f:6674::beef");
    assert!(vps_ok(&host, "f1", "ping -c1 -W2 10.87.0.1"));

    for (args, expect) in [
        (vec!["--ip", "10.87.0.50"], "already in use"),
        (vec!["--ip", "10.99.0.5"], "outside"),
        (vec!["--ip", "10.87.0.1"], "gateway"),
        (vec!["--ip", "10.87.0.255"], "broadcast"),
        (vec!["--ip", "not-an-ip"], "not an IPv4 address"),
        (vec!["--ip", "fd63:726f:6674::9"], "not an IPv4 address"),
        (vec!["--ip6", "fd00::9"], "outside"),
    ] {
        let mut cmd = vec!["launch", "busybox", "f2"];
        cmd.extend(args.iter());
        let err = host.fails(&cmd);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(
            host.fails(&["info", "f2"]).contains("not found"),
            "{args:?} left a VPS"
        );
    }
    let (code, body) = host.api_err(
        "POST",
        "/1.0/instances",
        Some(r#"{"name":"f3","image":"busybox","ipv4":"10.87.0.50"}"#),
    );
    assert_eq!(code, 409, "{body:?}");

    host.ok(&["port", "add", "f1", "tcp", "8080:80"]);
    for (args, expect) in [
        (vec!["sctp", "81:80"], "unknown protocol"),
        (vec!["tcp", "0:80"], "invalid port"),
        (vec!["tcp", "80:70000"], "invalid port"),
        (vec!["udp", "x"], "invalid port"),
        (vec!["tcp", "8080:22"], "already forwarded"),
    ] {
        let mut cmd = vec!["port", "add", "f1"];
        cmd.extend(args.iter());
        let err = host.fails(&cmd);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let (code, body) = host.api_err(
        "POST",
        "/1.0/instances/f1/forwards",
        Some(r#"{"protocol":"icmp","host_port":1,"vps_port":1}"#),
    );
    assert_eq!(code, 400, "{body:?}");
    assert!(host
        .fails(&["port", "remove", "f1", "tcp", "9999"])
        .contains("not found"));
    assert!(host
        .fails(&["port", "add", "nosuch", "tcp", "81"])
        .contains("not found"));
    let list: Vec<PortForward> = host.ok_json(&["port", "list", "f1", "--format", "json"]);
    assert_eq!(list.len(), 1, "{list:?}");
    let rules = host_out(&host, "nft list table inet croft");
    assert_eq!(rules.matches("dnat ip to").count(), 2, "{rules}");
}

#[test]
fn a_port_forward_reaches_a_service_in_the_vps_and_survives_restarts() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "web1"]);
    let serve = "mkdir -p /www && echo served-by-web1 > /www/index.html && httpd -p 80 -h /www";
    host.sh_ok("web1", serve);
    // Never a host service's port: SSH and DNS are reserved, and a port
    // a host service listens on is taken.
    for (protocol, port) in [("tcp", "22:80"), ("udp", "53:53")] {
        let err = host.fails(&["port", "add", "web1", protocol, port]);
        assert!(err.contains("reserved for the host"), "{err}");
    }
    let mut listener = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", host.netns))
        .args([
            "python3",
            "-c",
            "import socket, sys\ns = socket.socket()\ns.bind(('0.0.0.0', 2222))\ns.listen(1)\n\
             print('ready', flush=True)\nsys.stdin.read()",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(listener.stdout.as_mut().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    let err = host.fails(&["port", "add", "web1", "tcp", "2222:80"]);
    drop(listener.stdin.take());
    listener.wait().unwrap();
    assert!(err.contains("in use by a service on the host"), "{err}");
    let info = host.ok(&["info", "web1"]);
    assert!(!info.contains("host port"), "{info}");
    host.ok(&["port", "add", "web1", "tcp", "8080:80"]);
    let fetch = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://10.87.0.1:8080/', timeout=5).read().decode())\"";
    assert_eq!(host_out(&host, fetch).trim(), "served-by-web1");
    // From another VPS through the host's address (hairpin).
    host.ok(&["launch", "busybox", "client1"]);
    let via_host = host.sh_ok(
        "client1",
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 10.87.0.1 8080 | tail -1",
    );
    assert_eq!(via_host.trim(), "served-by-web1");
    // The forward is the VPS's: it outlives a restart of the VPS...
    host.ok(&["restart", "web1"]);
    host.sh_ok("web1", serve);
    assert_eq!(host_out(&host, fetch).trim(), "served-by-web1");
    // ... and a crash of croftd, whose next start rebuilds the rules.
    host.kill_daemon();
    assert!(host.host_sh("nft delete table inet croft").status.success());
    assert!(!host_ok(&host, fetch), "still forwarded without the rules");
    host.start_daemon();
    assert_eq!(host_out(&host, fetch).trim(), "served-by-web1");

    host.ok(&["port", "remove", "web1", "tcp", "8080"]);
    assert!(!host_ok(&host, fetch), "forward still works after remove");

    // UDP: a datagram to host port 5353 arrives at the VPS's port 53
    // (received by the host's python3 in the VPS's network namespace:
    // busybox nc has no UDP).
    host.ok(&["port", "add", "web1", "udp", "5353:53"]);
    let receiver = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", host.init_pid("web1")))
        .args([
            "python3",
            "-c",
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 53))\n\
             s.settimeout(10)\nprint(s.recvfrom(100)[0].decode())",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let send = "python3 -c \"import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor _ in range(20):\n    s.sendto(b'udp-through', ('10.87.0.1', 5353)); time.sleep(0.1)\"";
    assert!(host_ok(&host, send));
    let got = receiver.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "udp-through");
    let info = host.ok(&["info", "web1"]);
    assert!(info.contains("host port 5353/udp -> 53"), "{info}");
}

#[test]
fn a_vps_that_takes_a_neighbours_ip_or_mac_gets_no_traffic_through() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "good1"]);
    host.ok(&["launch", "busybox", "evil1"]);
    let good_ip = ipv4(&host, "good1");
    let good_mac = nic(&host, "good1").mac;
    let good_ip6 = ipv6(&host, "good1");
    assert!(host_ok(&host, &format!("busybox ping -c1 -W2 {good_ip}")));
    let neigh = |host: &Host| host_out(host, &format!("ip neigh show {good_ip}"));
    assert!(neigh(&host).contains(&good_mac), "{}", neigh(&host));

    // Its own traffic passes.
    assert!(vps_ok(&host, "evil1", "ping -c1 -W2 10.87.0.1"));
    // Any address but its own: nothing gets out. (Without the rules this
    // ping would work: the host would ARP for .99 and evil1 would answer.)
    host.sh_ok("evil1", "ip addr add 10.87.0.99/24 dev eth0");
    assert!(
        !vps_ok(&host, "evil1", "ping -c1 -W2 -I 10.87.0.99 10.87.0.1"),
        "spoofed IPv4 source passed"
    );
    host.sh_ok("evil1", "ip addr del 10.87.0.99/24 dev eth0");
    // Gratuitous ARP claiming the neighbour's address: the host keeps the
    // true owner (without the rules it would update the entry).
    let _ = host.sh("evil1", &format!("arping -U -c2 -I eth0 -s {good_ip} 10.87.0.1"));
    assert!(neigh(&host).contains(&good_mac), "ARP poisoned: {}", neigh(&host));
    // The same for IPv6 (after duplicate address detection let it in).
    host.sh_ok("evil1", "ip -6 addr add fd63:726f:6674::99/64 dev eth0");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let addr = host.sh_ok("evil1", "ip -6 addr show dev eth0");
    assert!(
        addr.contains("fd63:726f:6674::99") && !addr.contains("tentative"),
        "{addr}"
    );
    assert!(
        !vps_ok(
            &host,
            "evil1",
            "ping6 -c1 -W2 -I fd63:726f:6674::99 fd63:726f:6674::1"
        ),
        "spoofed IPv6 source passed"
    );
    host.sh_ok("evil1", "ip -6 addr del fd63:726f:6674::99/64 dev eth0");
    assert!(
        vps_ok(&host, "evil1", &format!("ping6 -c1 -W2 {good_ip6}")),
        "own IPv6 traffic"
    );
    // The neighbour's MAC address (with its own IP): dropped too, and the
    // bridge never learns the MAC on the wrong port.
    host.sh_ok("evil1", &format!("ip link set eth0 address {good_mac}"));
    assert!(
        !vps_ok(&host, "evil1", "ping -c1 -W2 10.87.0.1"),
        "spoofed MAC passed"
    );
    assert!(
        host_ok(&host, &format!("busybox ping -c1 -W2 {good_ip}")),
        "the neighbour lost its traffic"
    );
    assert!(neigh(&host).contains(&good_mac));
}

/// Sends, on eth0 of the network namespace it runs in, an IPv6 neighbour
/// solicitation to the gateway fd63:726f:6674::1 at its MAC `argv[3]`
/// (unicast, as neighbour unreachability detection does) from `argv[1]`
/// (the sender's address) and MAC `argv[4]`, whose source link-layer
/// option names `argv[2]`.
const NS_SENDER: &str = r#"
import socket, struct, sys
src, claimed, gateway, own = sys.argv[1:5]
mac = lambda s: bytes.fromhex(s.strip().replace(':', ''))
def csum(b):
    b += b'\0' * (len(b) % 2)
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
s6 = socket.inet_pton(socket.AF_INET6, src)
target = socket.inet_pton(socket.AF_INET6, 'fd63:726f:6674::1')
d6 = target
icmp = struct.pack('!BBHI', 135, 0, 0, 0) + target + bytes([1, 1]) + mac(claimed)
c = csum(s6 + d6 + struct.pack('!I3xB', len(icmp), 58) + icmp)
icmp = icmp[:2] + struct.pack('!H', c) + icmp[4:]
ip6 = struct.pack('!IHBB', 6 << 28, len(icmp), 58, 255) + s6 + d6
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
raw.bind(('eth0', 0))
raw.send(mac(gateway) + mac(own) + b'\x86\xdd' + ip6 + icmp)
"#;

/// A neighbour solicitation whose source link-layer option names another
/// MAC than the sender's rewrote the host's neighbour entry for the
/// sender's address (its traffic then went to that MAC).
#[test]
fn neighbour_discovery_cannot_claim_another_mac() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "nd1"]);
    let ip6 = ipv6(&host, "nd1");
    let own_mac = nic(&host, "nd1").mac;
    let forged = "0e:cf:de:ad:be:ef";
    let gateway = host_out(&host, "ip -br link show croftbr0")
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let send = |claimed: &str| {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", host.init_pid("nd1")))
            .args(["python3", "-c", NS_SENDER, &ip6, claimed, &gateway, &own_mac])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        std::thread::sleep(std::time::Duration::from_millis(300));
        host_out(&host, &format!("ip -6 neigh show {ip6} dev croftbr0"))
    };
    let after_forged = send(forged);
    assert!(
        !after_forged.contains(forged),
        "the host now sends to {forged}: {after_forged}"
    );
    // The same solicitation with the VPS's own MAC is taken: the forged
    // one was dropped for its option, not for its form.
    let after_genuine = send(&own_mac);
    assert!(
        after_genuine.contains(&own_mac),
        "the genuine solicitation was not taken: {after_genuine:?}"
    );
}

#[test]
fn an_isolated_network_keeps_vpses_apart_but_reaches_the_gateway() {
    let host = Host::with_config("[network]\nisolated = true\nipv4 = \"10.88.0.1/24\"\nipv6 = \"\"");
    host.ok(&["launch", "busybox", "i1"]);
    host.ok(&["launch", "busybox", "i2"]);
    assert_eq!(ipv4(&host, "i1"), "10.88.0.2");
    assert!(
        host.info("i1").nic.and_then(|n| n.ipv6).is_none(),
        "no IPv6 subnet configured"
    );
    assert!(vps_ok(&host, "i1", "ping -c1 -W2 10.88.0.1"));
    assert!(
        !vps_ok(&host, "i1", "ping -c1 -W2 10.88.0.3"),
        "isolation let i1 reach i2"
    );
    // Not by routing through the gateway either.
    host.sh_ok("i1", "ip route add 10.88.0.3/32 via 10.88.0.1");
    assert!(
        !vps_ok(&host, "i1", "ping -c1 -W2 10.88.0.3"),
        "isolation bypassed through the gateway"
    );
}

/// TCP throughput from VPS `from` to VPS `to` in bits per second, measured
/// with the host's iperf3 run inside each VPS's network namespace.
fn iperf(host: &Host, from: &str, to: &str) -> f64 {
    let server_ns = format!("--net=/proc/{}/ns/net", host.init_pid(to));
    let client_ns = format!("--net=/proc/{}/ns/net", host.init_pid(from));
    let mut server = std::process::Command::new("nsenter")
        .args([&server_ns, "iperf3", "-s", "-1", "-p", "5201"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 (Debian's iperf3 package)");
    let target = ipv4(host, to);
    let mut out = None;
    for _ in 0..50 {
        let o = std::process::Command::new("nsenter")
            .args([
                &client_ns, "iperf3", "-c", &target, "-p", "5201", "-t", "3", "-O", "1", "-J",
            ])
            .output()
            .unwrap();
        if o.status.success() {
            out = Some(o);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = server.kill();
    let _ = server.wait();
    let out = out.expect("iperf3 client never connected");
    let report: IperfReport = serde_json::from_slice(&out.stdout).expect("iperf3 report");
    report.end.sum_received.bits_per_second
}

/// What `iperf3 -J` reports (the part read here).
#[derive(serde::Deserialize)]
struct IperfReport {
    end: IperfEnd,
}

#[derive(serde::Deserialize)]
struct IperfEnd {
    sum_received: IperfSum,
}

#[derive(serde::Deserialize)]
struct IperfSum {
    bits_per_second: f64,
}

fn assert_near(measured: f64, limit: f64, what: &str) {
    let ratio = measured / limit;
    eprintln!(
        "{what}: {:.1} Mbit/s against a {:.0} Mbit/s limit",
        measured / 1e6,
        limit / 1e6
    );
    assert!(
        (0.9..=1.1).contains(&ratio),
        "{what}: {measured} bit/s against {limit}"
    );
}

#[test]
fn bandwidth_limits_hold_within_ten_percent_and_change_live() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "bw1", "-c", "limits.ingress=100Mbit"]);
    host.ok(&["launch", "busybox", "bw2"]);
    assert_near(iperf(&host, "bw2", "bw1"), 100e6, "into bw1 at 100Mbit");
    host.ok(&["config", "set", "bw1", "limits.ingress=50Mbit"]);
    assert_near(iperf(&host, "bw2", "bw1"), 50e6, "into bw1 at 50Mbit (live)");
    // What a VPS sends, shaped on the host side of its veth.
    host.ok(&["config", "unset", "bw1", "limits.ingress"]);
    host.ok(&["config", "set", "bw2", "limits.egress=30Mbit"]);
    assert_near(iperf(&host, "bw2", "bw1"), 30e6, "out of bw2 at 30Mbit");
    // Kept across a restart of the VPS (a new veth each time).
    host.ok(&["restart", "bw2"]);
    assert_near(iperf(&host, "bw2", "bw1"), 30e6, "out of bw2 after a restart");

    for bad in [
        "limits.egress=fast",
        "limits.egress=100mbps",
        "limits.ingress=1bit",
    ] {
        let err = host.fails(&["config", "set", "bw2", bad]);
        assert!(err.contains("limits."), "{bad}: {err}");
    }
    assert_eq!(
        host.info("bw2").config.get("limits.egress").map(String::as_str),
        Some("30Mbit")
    );

    let host_if = nic(&host, "bw2").host_interface;
    assert!(host_out(&host, "ip -br link").contains(&format!("{host_if}i")));
    host.ok(&["delete", "--force", "bw2"]);
    let links = host_out(&host, "ip -br link");
    assert!(!links.contains(&host_if), "left behind: {links}");
}

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
