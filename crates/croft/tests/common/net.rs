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
