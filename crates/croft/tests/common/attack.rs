//! Helpers of the escape battery (`escape.rs`, `escape_paths.rs`): a VPS
//! to attack from and the checks that an attempt was refused.

use super::Host;
use std::collections::BTreeMap;

/// A daemon with one busybox VPS, `esc`, to attack from.
pub fn attacker() -> Host {
    let host = Host::new();
    host.ok(&["launch", "busybox", "esc"]);
    host
}

/// Run `script` as root in `esc`; it must fail. Returns its stderr.
pub fn refused(host: &Host, what: &str, script: &str) -> String {
    let out = host.sh("esc", script);
    assert!(
        !out.status.success(),
        "{what} succeeded: {script}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Copy the syscall probe into `esc`, run it with `args`, and return each
/// call's errno by name.
pub fn probe(host: &Host, args: &str) -> BTreeMap<String, i32> {
    install_probe(host);
    host.sh_ok("esc", &format!("syscall_probe {args}"))
        .lines()
        .map(|l| {
            let (name, errno) = l.split_once(' ').unwrap();
            (name.to_string(), errno.parse().unwrap())
        })
        .collect()
}

/// Copy the syscall probe into `esc` as /usr/bin/syscall_probe.
pub fn install_probe(host: &Host) {
    let probe = super::bin_dir().join("examples/syscall_probe");
    assert!(
        probe.exists(),
        "build the probe first: cargo build -p croft --examples"
    );
    let rootfs = host.instance_dir("esc").join("rootfs");
    if !rootfs.join("usr/bin/syscall_probe").exists() {
        super::install_host_binary(&rootfs, &probe, "/usr/bin/syscall_probe");
    }
}

pub fn host_file(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
