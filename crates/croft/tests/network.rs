//! End-to-end tests of VPS networking: addresses, reachability over IPv4
//! and IPv6, port forwards, anti-spoofing, isolation, and clean removal.
//! Each test's daemon runs in a network namespace of its own; "the host"
//! below is that namespace.
#![cfg(feature = "e2e")]

mod common;

use common::net::{host_ok, host_out, ipv4, ipv6, nic, vps_ok};
use common::Host;
use croft_api::{Network, PortForward};

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
        // The address given, and who holds it (once it named the IPv6
        // address croft would have chosen beside it).
        (
            vec!["--ip", "10.87.0.50"],
            "error: 10.87.0.50 (VPS f1 holds it) is already in use",
        ),
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
    // From the world beyond the host, at its IPv4 and IPv6 addresses.
    let upstream = common::net::Upstream::new(&host);
    for address in [common::net::HOST_UP4, common::net::HOST_UP6] {
        assert!(
            upstream.ok(&format!(
                "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 busybox nc {address} 8080 | grep -q served-by-web1"
            )),
            "forwarded from outside at {address}"
        );
    }
    let fetch6 = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://[fd63:726f:6674::1]:8080/', timeout=5).read().decode())\"";
    assert_eq!(
        host_out(&host, fetch6).trim(),
        "served-by-web1",
        "from the host over IPv6"
    );
    // From another VPS through the host's address (hairpin).
    host.ok(&["launch", "busybox", "client1"]);
    for address in ["10.87.0.1", "fd63:726f:6674::1"] {
        let via_host = host.sh_ok(
            "client1",
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {address} 8080 | tail -1"),
        );
        assert_eq!(via_host.trim(), "served-by-web1", "hairpin at {address}");
    }
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
    // A range: each host port to the same port of the VPS.
    host.ok(&["port", "add", "web1", "tcp", "9000-9002"]);
    host.sh_ok("web1", "httpd -p 9001 -h /www");
    let fetch_range = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://10.87.0.1:9001/', timeout=5).read().decode())\"";
    assert_eq!(host_out(&host, fetch_range).trim(), "served-by-web1");
    let err = host.fails(&["port", "add", "client1", "tcp", "9002"]);
    assert!(err.contains("9000-9002/tcp is already forwarded"), "{err}");
    assert!(host.ok(&["port", "list", "web1"]).contains("9000-9002"));
    host.ok(&["port", "remove", "web1", "tcp", "9000"]);
    assert!(
        !host_ok(&host, fetch_range),
        "the range still forwards after remove"
    );

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
    iperf_for(host, from, to, 3, 1).bits_per_second
}

/// Run iperf3 for `secs` seconds (after `omit` seconds it leaves out of
/// its figures) from VPS `from` to VPS `to` (the host's iperf3 in their
/// network namespaces); what the receiver got.
fn iperf_for(host: &Host, from: &str, to: &str, secs: u32, omit: u32) -> IperfSum {
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
                &client_ns,
                "iperf3",
                "-c",
                &target,
                "-p",
                "5201",
                "-t",
                &secs.to_string(),
                "-O",
                &omit.to_string(),
                "-J",
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
    report.end.sum_received
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
    /// Bytes of the run (the omitted seconds left out).
    #[serde(default)]
    bytes: u64,
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

/// This month's traffic of VPS `name`, as `croft info` has it.
fn traffic(host: &Host, name: &str) -> croft_api::TrafficStatus {
    host.info(name).traffic.expect("traffic")
}

/// Wait until croftd has read what VPS `name` moved (the reading every
/// `traffic_interval`) so that it sent at least `sent` bytes.
fn wait_sent(host: &Host, name: &str, sent: u64) -> croft_api::TrafficStatus {
    host.wait_for("the traffic reading", std::time::Duration::from_secs(10), || {
        traffic(host, name).month.sent_bytes >= sent
    });
    traffic(host, name)
}

#[test]
fn traffic_is_counted_as_iperf3_moved_it_survives_a_croftd_kill_and_the_quota_throttles() {
    let mut host = Host::with_config("traffic_interval = 1\n");
    host.ok(&["launch", "busybox", "tx1"]);
    host.ok(&["launch", "busybox", "rx1"]);
    // What iperf3 moved (all of it: nothing omitted).
    let moved = iperf_for(&host, "tx1", "rx1", 3, 0);
    let lower = moved.bytes;
    let t = wait_sent(&host, "tx1", lower);
    let ratio = t.month.sent_bytes as f64 / moved.bytes as f64;
    eprintln!(
        "iperf3 moved {} bytes; tx1 sent {} ({ratio:.4}), rx1 received {}",
        moved.bytes,
        t.month.sent_bytes,
        traffic(&host, "rx1").month.received_bytes
    );
    assert!(
        (1.0..=1.02).contains(&ratio),
        "the count is not within 2% of what iperf3 moved: {ratio}"
    );
    let received = traffic(&host, "rx1").month.received_bytes as f64 / moved.bytes as f64;
    assert!((1.0..=1.02).contains(&received), "rx1 received {received}");

    // croftd killed and started again: the totals stay, and what moves
    // after adds to them.
    let before = traffic(&host, "tx1").month.sent_bytes;
    host.kill_daemon();
    host.start_daemon();
    assert!(
        traffic(&host, "tx1").month.sent_bytes >= before,
        "lost with the kill"
    );
    let again = iperf_for(&host, "tx1", "rx1", 2, 0);
    let t = wait_sent(&host, "tx1", before + again.bytes);
    assert!(
        (t.month.sent_bytes as f64) <= (before + again.bytes) as f64 * 1.02,
        "counted twice after the restart: {} against {}",
        t.month.sent_bytes,
        before + again.bytes
    );
    let months: Vec<croft_api::Traffic> = host.ok_json(&["traffic", "tx1", "--format", "json"]);
    assert_eq!(months.len(), 1);
    assert_eq!(months[0].sent_bytes, t.month.sent_bytes.max(months[0].sent_bytes));

    // Past its transfer quota: throttled to 5Mbit each way, and free again
    // when the quota is lifted.
    host.ok(&[
        "config",
        "set",
        "tx1",
        "limits.transfer=1MiB",
        "limits.transfer.throttle=5Mbit",
    ]);
    host.wait_for("the throttle", std::time::Duration::from_secs(10), || {
        traffic(&host, "tx1").throttled
    });
    assert!(host.ok(&["info", "tx1"]).contains("(past it: throttled)"));
    assert_near(iperf(&host, "tx1", "rx1"), 5e6, "tx1 past its quota");
    host.ok(&["config", "unset", "tx1", "limits.transfer"]);
    host.wait_for("the throttle lifted", std::time::Duration::from_secs(10), || {
        !traffic(&host, "tx1").throttled
    });
    let free = iperf(&host, "tx1", "rx1");
    assert!(free > 50e6, "still throttled: {free} bit/s");
}

/// Whether VPS `vps` fetches the page `to` serves on port 80.
fn fetches(host: &Host, vps: &str, to: &str) -> bool {
    vps_ok(
        host,
        vps,
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc {to} 80 | grep -q served"),
    )
}

#[test]
fn a_second_network_gets_its_own_bridge_and_addresses_reaches_out_and_is_kept_apart() {
    let mut host = Host::new();
    let mut upstream = common::net::Upstream::new(&host);
    upstream.serve(80);
    let made = host.ok(&[
        "network",
        "create",
        "lan2",
        "--ipv4",
        "10.88.0.1/24",
        "--ipv6",
        "fd00:88::1/64",
    ]);
    assert!(made.contains("croftbr1"), "{made}");
    assert!(host_out(&host, "ip -br addr show croftbr1").contains("10.88.0.1/24"));
    host.ok(&["launch", "busybox", "n2", "--network", "lan2"]);
    host.ok(&["launch", "busybox", "n1"]);
    let (a1, a2) = (ipv4(&host, "n1"), ipv4(&host, "n2"));
    assert_eq!((a1.as_str(), a2.as_str()), ("10.87.0.2", "10.88.0.2"));
    assert!(host.sh_ok("n2", "ip route").contains("default via 10.88.0.1"));
    // Out through its own masquerade; its gateway answers.
    assert!(
        fetches(&host, "n2", common::net::UPSTREAM4),
        "n2 cannot reach the upstream"
    );
    assert!(vps_ok(&host, "n2", "ping -c1 -W2 10.88.0.1"));
    // Networks are kept apart, both ways.
    assert!(
        !vps_ok(&host, "n2", &format!("ping -c1 -W2 {a1}")),
        "lan2 reached default"
    );
    assert!(
        !vps_ok(&host, "n1", &format!("ping -c1 -W2 {a2}")),
        "default reached lan2"
    );
    // A second interface puts n1 on lan2 too (made at its next start).
    let err = host.fails(&["nic", "add", "n1", "lan2"]);
    assert!(err.contains("stop it to add or remove an interface"), "{err}");
    host.ok(&["stop", "n1"]);
    host.ok(&["nic", "add", "n1", "lan2"]);
    host.ok(&["start", "n1"]);
    assert!(host.ok(&["nic", "list", "n1"]).contains("eth1"));
    let inside = host.sh_ok("n1", "ip addr show eth1; ip route");
    assert!(inside.contains("inet 10.88.0.3/24"), "{inside}");
    assert!(inside.contains("default via 10.87.0.1 dev eth0"), "{inside}");
    assert!(
        vps_ok(&host, "n2", "ping -c1 -W2 10.88.0.3"),
        "n1's eth1 from lan2"
    );
    assert!(
        fetches(&host, "n1", common::net::UPSTREAM4),
        "n1 out through eth0"
    );
    // Its eth1 sends only from its own address there.
    let _ = host.sh("n1", "ip addr add 10.88.0.77/24 dev eth1");
    assert!(
        !vps_ok(&host, "n2", "ping -c1 -W2 10.88.0.77"),
        "a spoofed address on eth1 answered"
    );
    let nets: Vec<Network> = host.ok_json(&["network", "list", "--format", "json"]);
    assert_eq!(nets.len(), 2);
    // A croftd restart brings it back whole.
    host.kill_daemon();
    host.start_daemon();
    assert!(
        fetches(&host, "n2", common::net::UPSTREAM4),
        "lost with a croftd restart"
    );
    for (args, expect) in [
        (
            vec!["network", "create", "lan3", "--ipv4", "10.88.0.129/25"],
            "overlaps network lan2",
        ),
        (
            vec!["network", "create", "lan3"],
            "needs an IPv4 or an IPv6 subnet",
        ),
        (vec!["network", "delete", "lan2"], "in use by n1, n2"),
        (vec!["network", "delete", "default"], "cannot be deleted"),
        (
            vec!["launch", "busybox", "n3", "--network", "nope"],
            "network nope not found",
        ),
    ] {
        let err = host.fails(&args);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    host.assert_no_trace_of("n3");
    assert!(
        vps_ok(&host, "n2", "ping -c1 -W2 10.88.0.3"),
        "eth1 lost with a croftd restart"
    );
    host.ok(&["delete", "--force", "n2"]);
    let err = host.fails(&["network", "delete", "lan2"]);
    assert!(err.contains("in use by n1"), "{err}");
    host.ok(&["stop", "n1"]);
    host.ok(&["nic", "remove", "n1", "eth1"]);
    host.ok(&["start", "n1"]);
    assert!(!host.sh_ok("n1", "ip link").contains("eth1"));
    host.ok(&["network", "delete", "lan2"]);
    assert!(
        !host_out(&host, "ip -br link").contains("croftbr1"),
        "its bridge is left"
    );
}

/// The source address a TCP connection from VPS `vps` arrives with at
/// the client namespace `client` (which listens on port 7000 for it).
fn source_seen_by(host: &Host, client: &str, vps: &str) -> String {
    let listener = std::process::Command::new("ip")
        .args(["netns", "exec", client, "python3", "-c"])
        .arg(
            "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0', 7000))\ns.listen(1)\ns.settimeout(10)\nc, a = s.accept()\nprint(a[0])",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::net::wait_listening(client, 7000);
    let _ = host.sh(
        vps,
        &format!("echo hi | timeout 3 nc {} 7000", common::net::CLIENT4),
    );
    let seen = listener.wait_with_output().unwrap();
    String::from_utf8_lossy(&seen.stdout).trim().to_string()
}

#[test]
fn a_routed_vps_is_reached_at_its_public_addresses_from_beyond_the_upstream_without_nat() {
    use common::net::{in_netns, Upstream};
    let host = Host::new();
    let mut upstream = Upstream::new(&host);
    upstream.route_to_host(&["198.51.100.16/28", "2001:db8:100::/56"]);
    let client = upstream.client(&host);
    host.ok(&[
        "network",
        "create",
        "pub",
        "--type",
        "routed",
        "--ipv4",
        "198.51.100.16/28",
        "--ipv6",
        "2001:db8:100::/56",
    ]);
    host.ok(&["launch", "busybox", "r1", "--network", "pub"]);
    host.ok(&["launch", "busybox", "r2", "--network", "pub"]);
    assert_eq!(ipv4(&host, "r1"), "198.51.100.17");
    // The VPS sees its public address on eth0.
    let inside = host.sh_ok("r1", "ip addr show eth0; ip route; ip -6 route");
    assert!(inside.contains("inet 198.51.100.17/32"), "{inside}");
    assert!(inside.contains("2001:db8:100::1/128"), "{inside}");
    assert!(inside.contains("default via 169.254.0.1"), "{inside}");
    for (vps, page) in [("r1", "served-r1"), ("r2", "served-r2")] {
        host.sh_ok(
            vps,
            &format!("mkdir -p /www && echo {page} > /www/index.html && httpd -p 80 -h /www"),
        );
    }
    let fetch = |to: &str| {
        in_netns(
            &client,
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 busybox nc {to} 80 | tail -1"),
        )
        .unwrap_or_default()
    };
    // Straight to the public addresses, IPv4 and IPv6.
    assert_eq!(fetch("198.51.100.17").trim(), "served-r1");
    assert_eq!(fetch("2001:db8:100::1").trim(), "served-r1");
    assert_eq!(fetch("198.51.100.18").trim(), "served-r2");
    // What the VPS sends leaves with its own address: no NAT.
    assert_eq!(source_seen_by(&host, &client, "r1"), "198.51.100.17");
    // r2 claiming r1's public address gets none of its traffic.
    let _ = host.sh("r2", "ip addr add 198.51.100.17/32 dev eth0");
    let _ = host.sh("r2", "arping -U -c2 -I eth0 -s 198.51.100.17 169.254.0.1");
    assert_eq!(fetch("198.51.100.17").trim(), "served-r1", "r2 took r1's address");
    // Another public address, live: answered at once, kept across a
    // restart of the VPS, gone when removed.
    let added = std::time::Instant::now();
    host.ok(&["address", "add", "r1", "198.51.100.20"]);
    eprintln!(
        "address added live in {:?} (with the CLI's round trip)",
        added.elapsed()
    );
    assert!(host.sh_ok("r1", "ip addr show eth0").contains("198.51.100.20/32"));
    assert_eq!(fetch("198.51.100.20").trim(), "served-r1");
    let err = host.fails(&["address", "add", "r2", "198.51.100.20"]);
    assert!(err.contains("VPS r1 holds it"), "{err}");
    host.ok(&["restart", "r1"]);
    host.sh_ok("r1", "httpd -p 80 -h /www");
    assert_eq!(fetch("198.51.100.20").trim(), "served-r1", "lost with a restart");
    host.ok(&["address", "remove", "r1", "198.51.100.20"]);
    assert!(!host.sh_ok("r1", "ip addr show eth0").contains("198.51.100.20"));
    assert_eq!(
        fetch("198.51.100.20").trim(),
        "",
        "still answered after its removal"
    );
    // A whole /64 routed to it: the VPS uses any address in it.
    host.ok(&["address", "add", "r1", "--prefix", "64"]);
    assert!(host
        .ok(&["address", "list", "r1"])
        .contains("2001:db8:100:1::/64"));
    host.sh_ok("r1", "ip -6 addr add 2001:db8:100:1::5/128 dev lo");
    assert_eq!(
        fetch("2001:db8:100:1::5").trim(),
        "served-r1",
        "the delegated prefix"
    );
    host.ok(&["address", "remove", "r1", "2001:db8:100:1::/64"]);
    assert_eq!(fetch("2001:db8:100:1::5").trim(), "", "routed after its removal");
    // Never masqueraded: the rules hold no masquerade for the pool.
    assert!(!host_out(&host, "nft list table inet croft")
        .contains("198.51.100.16/28 ip daddr != 198.51.100.16/28 masquerade"));
    host.ok(&["delete", "--force", "r1"]);
    host.ok(&["delete", "--force", "r2"]);
    host.ok(&["network", "delete", "pub"]);
}

#[test]
fn a_routed_pool_the_provider_expects_on_link_is_answered_on_the_uplink() {
    use common::net::{in_netns, Upstream};
    let host = Host::new();
    let upstream = Upstream::new(&host);
    // The provider's router expects the pool on its link, not routed.
    assert!(upstream.ok("ip route add 198.51.100.32/28 dev crdown"));
    assert!(upstream.ok("ip -6 route add 2001:db8:300::/64 dev crdown"));
    host.ok(&[
        "network",
        "create",
        "onlink",
        "--type",
        "routed",
        "--ipv4",
        "198.51.100.32/28",
        "--ipv6",
        "2001:db8:300::/64",
        "--uplink",
        "crup",
    ]);
    host.ok(&["launch", "busybox", "o1", "--network", "onlink"]);
    host.sh_ok(
        "o1",
        "mkdir -p /www && echo served-o1 > /www/index.html && httpd -p 80 -h /www",
    );
    let fetch = |to: &str| {
        in_netns(
            &upstream.netns,
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 busybox nc {to} 80 | tail -1"),
        )
        .unwrap_or_default()
    };
    assert_eq!(fetch("198.51.100.33").trim(), "served-o1", "ARP on the uplink");
    assert_eq!(
        fetch("2001:db8:300::1").trim(),
        "served-o1",
        "neighbour discovery on the uplink"
    );
    assert!(host_out(&host, "ip -6 neigh show proxy dev crup").contains("2001:db8:300::1"));
    // Gone with the VPS.
    host.ok(&["delete", "--force", "o1"]);
    assert!(!host_out(&host, "ip -6 neigh show proxy dev crup").contains("2001:db8:300::1"));
}

#[test]
fn a_bridged_vps_is_on_the_providers_link_with_its_fixed_mac_and_kept_off_the_host() {
    use common::net::{in_netns, Started, Upstream};
    let host = Host::new();
    let mut upstream = Upstream::new(&host);
    let client = upstream.client(&host);
    // The provider's link: an existing host bridge (the host has its own
    // address on it, as on a Proxmox vmbr0), a port to the provider's
    // router upstream, which is the VPSes' gateway.
    assert!(host_ok(
        &host,
        "ip link add crl2 type bridge && ip link add crl2h master crl2 type veth peer name crl2u && \
         ip addr add 198.51.100.66/26 dev crl2 && ip link set crl2 up && ip link set crl2h up"
    ));
    assert!(host_ok(
        &host,
        &format!("ip link set crl2u netns {}", upstream.netns)
    ));
    assert!(upstream.ok(
        "ip addr add 198.51.100.65/26 dev crl2u && ip addr add 2001:db8:5::1/64 dev crl2u nodad && \
         ip link set crl2u up"
    ));
    host.ok(&[
        "network",
        "create",
        "lan",
        "--type",
        "bridged",
        "--bridge",
        "crl2",
        "--ipv4",
        "198.51.100.65/26",
        "--ipv6",
        "2001:db8:5::1/64",
        "--pool",
        "198.51.100.70-198.51.100.79",
        "--pool",
        "2001:db8:5::100-2001:db8:5::1ff",
    ]);
    host.ok(&[
        "launch",
        "busybox",
        "b1",
        "--network",
        "lan",
        "--mac",
        "0e:cf:12:34:56:78",
    ]);
    host.ok(&["launch", "busybox", "b2", "--network", "lan"]);
    let inside = host.sh_ok(
        "b1",
        "cat /sys/class/net/eth0/address; ip addr show eth0; ip route; ip -6 route",
    );
    assert!(inside.starts_with("0e:cf:12:34:56:78"), "{inside}");
    assert!(inside.contains("inet 198.51.100.70/26"), "{inside}");
    assert!(inside.contains("2001:db8:5::100/64"), "{inside}");
    assert!(inside.contains("default via 198.51.100.65"), "{inside}");
    assert!(inside.contains("default via 2001:db8:5::1"), "{inside}");
    host.sh_ok(
        "b1",
        "mkdir -p /www && echo served-b1 > /www/index.html && httpd -p 80 -h /www",
    );
    let fetch = |to: &str| {
        in_netns(
            &client,
            &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 busybox nc {to} 80 | tail -1"),
        )
        .unwrap_or_default()
    };
    // From beyond the provider's router, over IPv4 and IPv6.
    assert_eq!(fetch("198.51.100.70").trim(), "served-b1");
    assert_eq!(fetch("2001:db8:5::100").trim(), "served-b1");
    // What it sends leaves with its own address.
    assert_eq!(source_seen_by(&host, &client, "b1"), "198.51.100.70");
    // b2 claiming b1's address on the link gets none of its traffic.
    host.sh_ok("b2", "ip addr add 198.51.100.70/26 dev eth0");
    let _ = host.sh("b2", "arping -U -c2 -I eth0 -s 198.51.100.70 198.51.100.65");
    assert_eq!(fetch("198.51.100.70").trim(), "served-b1", "b2 took b1's address");
    host.sh_ok("b2", "ip addr del 198.51.100.70/26 dev eth0");
    // The host's own service on the bridge: the provider's side reaches
    // it, a VPS on the same bridge does not.
    let www = host.dir.join("host-www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "served\n").unwrap();
    let _server = Started(
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &host.netns,
                "busybox",
                "httpd",
                "-f",
                "-p",
                "198.51.100.66:8088",
                "-h",
            ])
            .arg(&www)
            .spawn()
            .unwrap(),
    );
    common::net::wait_listening(&host.netns, 8088);
    let probe =
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 busybox nc 198.51.100.66 8088 | grep -q served";
    assert!(upstream.ok(probe), "the provider's side reaches the host");
    assert!(
        !vps_ok(&host, "b1", probe),
        "a bridged VPS reached a host service"
    );
    // Nor through the provider's router, which sends it back onto the
    // link.
    host.sh_ok("b1", "ip route add 198.51.100.66/32 via 198.51.100.65 dev eth0");
    // (The router's way works: b2 answers through it.)
    host.sh_ok("b1", "ip route add 198.51.100.71/32 via 198.51.100.65 dev eth0");
    assert!(
        vps_ok(&host, "b1", "ping -c1 -W2 198.51.100.71"),
        "b2 through the router"
    );
    assert!(
        !vps_ok(&host, "b1", probe),
        "a bridged VPS reached a host service through the router"
    );
    // (The same probe works from the VPS, to its own service.)
    assert!(vps_ok(
        &host,
        "b1",
        &probe
            .replace("198.51.100.66 8088", "198.51.100.70 80")
            .replace("served", "served-b1")
    ));
    assert!(
        vps_ok(&host, "b1", "ping -c1 -W2 198.51.100.66"),
        "ICMP to the host"
    );
    host.ok(&["delete", "--force", "b1"]);
    host.ok(&["delete", "--force", "b2"]);
    host.ok(&["network", "delete", "lan"]);
    // The admin's bridge stays.
    assert!(host_ok(&host, "ip link show crl2"));
}

#[test]
fn an_address_change_croftd_dies_in_is_made_right_at_its_next_start_and_a_first_address_changes_live() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "c1"]);
    let answers = |host: &Host| host_ok(host, "busybox ping -c1 -W2 10.87.0.50");
    // Killed once the address is recorded (and let through its rules),
    // before it is on the VPS's interface: the next start puts it there.
    let point = "address-add:recorded";
    host.kill_daemon();
    host.start_daemon_with_env(&[("CROFTD_CRASH_AT", point)]);
    let _ = host.croft(&["address", "add", "c1", "10.87.0.50"]);
    host.wait_daemon_gone();
    assert!(host.daemon_log().contains(point), "{point} not reached");
    host.start_daemon();
    assert!(host.ok(&["address", "list", "c1"]).contains("10.87.0.50"));
    assert!(host.sh_ok("c1", "ip addr show eth0").contains("10.87.0.50/24"));
    assert!(answers(&host), "the recorded address does not answer");
    // Killed once it is off the interface, before its record goes: the
    // removal did not happen, and the next start puts it back.
    let point = "address-remove:taken-off";
    host.kill_daemon();
    host.start_daemon_with_env(&[("CROFTD_CRASH_AT", point)]);
    let _ = host.croft(&["address", "remove", "c1", "10.87.0.50"]);
    host.wait_daemon_gone();
    assert!(host.daemon_log().contains(point), "{point} not reached");
    host.start_daemon();
    assert!(host.ok(&["address", "list", "c1"]).contains("10.87.0.50"));
    assert!(host.sh_ok("c1", "ip addr show eth0").contains("10.87.0.50/24"));
    assert!(answers(&host), "the still recorded address does not answer");
    host.ok(&["address", "remove", "c1", "10.87.0.50"]);
    assert!(!host.sh_ok("c1", "ip addr show eth0").contains("10.87.0.50"));
    assert!(!answers(&host), "the removed address answers");
    // Its first address changed live: the one added takes its place, and
    // the VPS keeps its routes out.
    host.ok(&["address", "add", "c1", "10.87.0.60"]);
    host.ok(&["address", "remove", "c1", "10.87.0.2"]);
    let inside = host.sh_ok("c1", "ip addr show eth0; ip route");
    assert!(inside.contains("inet 10.87.0.60/24"), "{inside}");
    assert!(!inside.contains("10.87.0.2/"), "{inside}");
    assert!(inside.contains("default via 10.87.0.1"), "{inside}");
    assert!(host_ok(&host, "busybox ping -c1 -W2 10.87.0.60"));
    assert!(!host_ok(&host, "busybox ping -c1 -W2 10.87.0.2"));
    assert!(vps_ok(&host, "c1", "ping -c1 -W2 10.87.0.1"));
    assert!(host.ok(&["info", "c1"]).contains("Address:   10.87.0.60\n"));
}
