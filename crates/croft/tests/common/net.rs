//! Helpers of the network tests (`network.rs`, `firewall.rs`): a VPS's
//! interface and addresses, and commands run in a VPS or on "the host"
//! (the test daemon's network namespace).

use super::Host;
use croft_api::Nic;

/// VPS `name`'s network interface.
pub fn nic(host: &Host, name: &str) -> Nic {
    host.info(name).nic.expect("a network interface")
}

/// VPS `name`'s IPv4 address.
pub fn ipv4(host: &Host, name: &str) -> String {
    nic(host, name).ipv4.expect("an IPv4 address")
}

/// VPS `name`'s IPv6 address.
pub fn ipv6(host: &Host, name: &str) -> String {
    nic(host, name).ipv6.expect("an IPv6 address")
}

/// Exit status of a command run inside VPS `name`.
pub fn vps_ok(host: &Host, name: &str, script: &str) -> bool {
    host.sh(name, script).status.success()
}

/// Exit status of a shell script run on the host.
pub fn host_ok(host: &Host, script: &str) -> bool {
    host.host_sh(script).status.success()
}

/// The link-local IPv6 address of VPS `name`'s eth0.
pub fn link_local_of(host: &Host, name: &str) -> String {
    let out = host.sh_ok(name, "ip -6 addr show dev eth0 scope link");
    let word = out
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .unwrap_or_else(|| panic!("no link-local address: {out}"));
    word.split('/').next().unwrap().to_string()
}

/// The output of a shell script that must succeed on the host.
pub fn host_out(host: &Host, script: &str) -> String {
    let out = host.host_sh(script);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process a test started, killed and reaped when dropped.
pub struct Started(pub std::process::Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The daemon's namespace's address on the link to [`Upstream`], and the
/// upstream end's (TEST-NET-1 and the documentation IPv6 prefix).
pub const HOST_UP4: &str = "192.0.2.1";
pub const UPSTREAM4: &str = "192.0.2.2";
pub const HOST_UP6: &str = "2001:db8:1::1";
pub const UPSTREAM6: &str = "2001:db8:1::2";
/// The client's addresses beyond the upstream ([`Upstream::client`]).
pub const CLIENT4: &str = "203.0.113.2";
pub const CLIENT6: &str = "2001:db8:2::2";

/// "The internet": a network namespace beyond the host, joined to the
/// daemon's namespace by a veth pair, which routes to it (IPv6 too: the
/// upstream routes the VPSes' prefix back). Removed, with what was
/// started in it, when dropped.
pub struct Upstream {
    pub netns: String,
    started: Vec<Started>,
    dir: std::path::PathBuf,
    clients: Vec<String>,
}

impl Upstream {
    pub fn new(host: &Host) -> Upstream {
        let netns = format!("{}-up", host.netns);
        fresh_netns(&netns);
        let dir = host.dir.join("upstream-www");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "served\n").unwrap();
        let up = Upstream {
            netns,
            started: Vec::new(),
            dir,
            clients: Vec::new(),
        };
        let (h, u) = (host.netns.as_str(), up.netns.as_str());
        ip(&["-n", u, "link", "set", "lo", "up"]);
        ip(&[
            "-n", h, "link", "add", "crup", "type", "veth", "peer", "name", "crdown", "netns", u,
        ]);
        ip(&["-n", h, "addr", "add", &format!("{HOST_UP4}/24"), "dev", "crup"]);
        ip(&[
            "-n",
            h,
            "addr",
            "add",
            &format!("{HOST_UP6}/64"),
            "dev",
            "crup",
            "nodad",
        ]);
        ip(&["-n", h, "link", "set", "crup", "up"]);
        ip(&[
            "-n",
            u,
            "addr",
            "add",
            &format!("{UPSTREAM4}/24"),
            "dev",
            "crdown",
        ]);
        ip(&[
            "-n",
            u,
            "addr",
            "add",
            &format!("{UPSTREAM6}/64"),
            "dev",
            "crdown",
            "nodad",
        ]);
        ip(&["-n", u, "link", "set", "crdown", "up"]);
        ip(&[
            "-n",
            u,
            "-6",
            "route",
            "add",
            "fd63:726f:6674::/48",
            "via",
            HOST_UP6,
        ]);
        assert!(host_ok(host, "sysctl -qw net.ipv6.conf.all.forwarding=1"));
        up
    }

    /// Route `pools` (a routed network's) to the host, as a provider
    /// routes a customer's addresses to a server.
    pub fn route_to_host(&self, pools: &[&str]) {
        for pool in pools {
            let via = if pool.contains(':') { HOST_UP6 } else { HOST_UP4 };
            assert!(
                self.ok(&format!("ip route add {pool} via {via}")),
                "route {pool} upstream"
            );
        }
    }

    /// A client namespace beyond the upstream (TEST-NET-3 and
    /// 2001:db8:2::/64), routed through it: the customer's machine
    /// somewhere on the internet. Removed with the upstream.
    pub fn client(&mut self, host: &Host) -> String {
        let client = format!("{}-client", self.netns);
        fresh_netns(&client);
        self.clients.push(client.clone());
        let (u, c) = (self.netns.as_str(), client.as_str());
        ip(&["-n", c, "link", "set", "lo", "up"]);
        ip(&[
            "-n", u, "link", "add", "crnet", "type", "veth", "peer", "name", "crcli", "netns", c,
        ]);
        ip(&["-n", u, "addr", "add", "203.0.113.1/24", "dev", "crnet"]);
        ip(&[
            "-n",
            u,
            "addr",
            "add",
            "2001:db8:2::1/64",
            "dev",
            "crnet",
            "nodad",
        ]);
        ip(&["-n", u, "link", "set", "crnet", "up"]);
        ip(&["-n", c, "addr", "add", &format!("{CLIENT4}/24"), "dev", "crcli"]);
        ip(&[
            "-n",
            c,
            "addr",
            "add",
            &format!("{CLIENT6}/64"),
            "dev",
            "crcli",
            "nodad",
        ]);
        ip(&["-n", c, "link", "set", "crcli", "up"]);
        ip(&["-n", c, "route", "add", "default", "via", "203.0.113.1"]);
        ip(&["-n", c, "-6", "route", "add", "default", "via", "2001:db8:2::1"]);
        assert!(self.ok("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"));
        // The host answers the client through the upstream.
        assert!(host_ok(
            host,
            &format!("ip route add 203.0.113.0/24 via {UPSTREAM4}")
        ));
        assert!(host_ok(
            host,
            &format!("ip -6 route add 2001:db8:2::/64 via {UPSTREAM6}")
        ));
        client
    }

    /// Serve "served" over HTTP on `port` of the upstream's addresses.
    pub fn serve(&mut self, port: u16) {
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.netns, "busybox", "httpd", "-f", "-p"])
            .arg(port.to_string())
            .arg("-h")
            .arg(&self.dir)
            .spawn()
            .expect("run busybox httpd");
        self.started.push(Started(child));
        self.wait_listening(port);
    }

    /// Wait (up to 10 s) until something listens on TCP `port` upstream.
    pub fn wait_listening(&self, port: u16) {
        wait_listening(&self.netns, port);
    }

    /// Exit status of a shell script run upstream.
    pub fn ok(&self, script: &str) -> bool {
        std::process::Command::new("ip")
            .args(["netns", "exec", &self.netns, "sh", "-c", script])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run ip netns exec")
            .status
            .success()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.started.clear();
        for netns in self.clients.iter().chain(std::iter::once(&self.netns)) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", netns])
                .status();
        }
    }
}

/// Run `ip` with `args`, which must succeed.
fn ip(args: &[&str]) {
    let ok = std::process::Command::new("ip")
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip {args:?}");
}

/// Make network namespace `name` anew (one a failed run left is deleted).
fn fresh_netns(name: &str) {
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", name])
        .stderr(std::process::Stdio::null())
        .status();
    ip(&["netns", "add", name]);
}

/// Run `script` in network namespace `netns`; its output, if it worked.
pub fn in_netns(netns: &str, script: &str) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", netns, "sh", "-c", script])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ip netns exec");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Wait (up to 10 s) until something listens on TCP `port` in network
/// namespace `netns`.
pub fn wait_listening(netns: &str, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while in_netns(netns, &format!("ss -ltnH | grep -q ':{port} '")).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port} in {netns}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
