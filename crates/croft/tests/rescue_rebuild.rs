//! End-to-end tests of the two repair operations a tenant reaches for when
//! a VPS no longer boots or must be reinstalled: a rescue boot (a rescue
//! system with the VPS's disk at /mnt) and a rebuild (a fresh disk from an
//! image, everything else about the VPS kept). Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use croft_api::Status;
use std::time::Duration;

fn status(host: &Host, name: &str) -> String {
    host.info(name).status.to_string()
}

#[test]
fn rescue_boot_mounts_the_disk_at_mnt_and_a_normal_start_boots_the_repaired_disk() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "r1", "--disk", "64MiB"]);
    let ip = host.info("r1").nic.and_then(|n| n.ipv4);
    // Break the VPS: an init that exits at once, the working one kept aside.
    host.sh_ok(
        "r1",
        "echo precious > /root/data && mv /sbin/init /sbin/init.good && printf '#!/bin/sh\\nexit 1\\n' > /sbin/init && chmod +x /sbin/init",
    );
    host.ok(&["stop", "r1", "--force"]);
    host.ok(&["start", "r1"]);
    host.wait_for("the broken init to exit", Duration::from_secs(10), || {
        status(&host, "r1") == "stopped"
    });
    assert_eq!(
        host.info("r1").last_exit.as_deref(),
        Some("init exited with status 1")
    );

    let out = host.ok(&["start", "r1", "--rescue"]);
    assert!(out.contains("rescue mode (busybox)"), "{out}");
    let info = host.info("r1");
    assert_eq!(info.status, Status::Running);
    assert_eq!(info.rescue.as_deref(), Some("busybox"));
    assert_eq!(
        info.nic.and_then(|n| n.ipv4),
        ip,
        "a rescue boot keeps the VPS's address"
    );
    let listed = host.ok(&["list"]);
    assert!(listed.contains("running (rescue)"), "{listed}");
    // Inside: a different root (the rescue system), the VPS's own disk at
    // /mnt with its files owned by root, the VPS's hostname.
    let seen = host.sh_ok(
        "r1",
        "hostname; cat /mnt/root/data; stat -c %u /mnt/root/data; test -e /sbin/init.good && echo rescue-root-is-the-disk; grep -c ' /mnt ' /proc/mounts",
    );
    assert_eq!(seen, "r1\nprecious\n0\n1\n", "{seen}");
    // Repair from the rescue system.
    host.sh_ok(
        "r1",
        "mv /mnt/sbin/init.good /mnt/sbin/init && echo fixed > /mnt/root/repair-note",
    );
    let rescue_root = host.instance_dir("r1").join("rescue");
    assert!(rescue_root.exists());
    // The rescue system is held to the VPS's disk limit too.
    let out = host.sh("r1", "dd if=/dev/zero of=/fill bs=1M count=100 2>&1; rm -f /fill");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Disk quota exceeded"),
        "the rescue system wrote past the VPS's disk limit"
    );
    host.ok(&["stop", "r1"]);
    assert!(!rescue_root.exists(), "the rescue system outlived its boot");
    assert!(host.info("r1").rescue.is_none());

    // A normal start boots the repaired disk.
    host.ok(&["start", "r1"]);
    let seen = host.sh_ok(
        "r1",
        "cat /root/data /root/repair-note; stat -c %u /root/repair-note",
    );
    assert_eq!(seen, "precious\nfixed\n0\n");
    assert!(host.info("r1").rescue.is_none());
    // Straight from running into rescue and back, waiting for the boot.
    let out = host.ok(&["restart", "r1", "--rescue", "--wait"]);
    assert!(out.contains("rescue mode (busybox)"), "{out}");
    assert_eq!(host.sh_ok("r1", "cat /mnt/root/repair-note"), "fixed\n");
    host.ok(&["restart", "r1", "--wait", "--wait-timeout", "30"]);
    assert!(host.info("r1").rescue.is_none());
    let err = host.fails(&["stop", "r1", "--wait"]);
    assert!(err.contains("--wait"), "{err}");
    host.ok(&["stop", "r1"]);
    host.ok(&["delete", "r1"]);
    host.assert_no_trace_of("r1");
}

#[test]
fn rescue_bad_input_changes_nothing_and_a_croftd_crash_keeps_the_rescue_boot() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "r2"]);
    let err = host.fails(&["start", "r2", "--rescue"]);
    assert!(err.contains("running, not stopped"), "{err}");
    assert!(host.info("r2").rescue.is_none());
    host.ok(&["stop", "r2"]);
    let err = host.fails(&["start", "r2", "--rescue", "--rescue-image", "nosuch/image"]);
    assert!(err.contains("unknown image"), "{err}");
    let err = host.fails(&["start", "r2", "--rescue-image", "busybox"]);
    assert!(err.contains("--rescue"), "{err}");
    for body in [
        r#"{"action":"stop","rescue":true}"#,
        r#"{"action":"start","rescue_image":"busybox"}"#,
        r#"{"action":"start","rescue":"yes"}"#,
    ] {
        let (code, reply) = host.api_err("POST", "/1.0/instances/r2/state", Some(body));
        assert!((400..500).contains(&code), "{body}: {code} {reply:?}");
        assert!(!reply.error.is_empty(), "{reply:?}");
    }
    assert_eq!(status(&host, "r2"), "stopped");
    assert!(!host.instance_dir("r2").join("rescue").exists());

    // croftd dies while the VPS runs its rescue system: the VPS keeps
    // running, the restarted croftd still knows it is a rescue boot, and
    // its end removes the rescue system.
    host.ok(&["start", "r2", "--rescue"]);
    let pid = host.init_pid("r2");
    host.kill_daemon();
    host.start_daemon();
    let info = host.info("r2");
    assert_eq!(host.details("r2").init_pid, Some(pid));
    assert_eq!(info.rescue.as_deref(), Some("busybox"));
    host.sh_ok("r2", "test -d /mnt/etc");
    // A poweroff from inside ends it like a stop.
    host.sh("r2", "poweroff");
    host.wait_for("the rescue boot to end", Duration::from_secs(20), || {
        status(&host, "r2") == "stopped"
    });
    assert!(host.info("r2").rescue.is_none());
    assert!(!host.instance_dir("r2").join("rescue").exists());
    host.ok(&["delete", "r2"]);
    host.assert_no_trace_of("r2");
}

#[test]
fn rebuild_reinstalls_the_disk_and_keeps_addresses_forwards_firewall_limits_keys_and_snapshots() {
    let host = Host::new();
    let key = host.dir.join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let pubkey = host.dir.join("id_ed25519.pub");
    host.ok(&[
        "launch",
        "busybox",
        "b1",
        "--memory",
        "256MiB",
        "--disk",
        "64MiB",
        "--ssh-key",
        pubkey.to_str().unwrap(),
    ]);
    host.ok(&["port", "add", "b1", "tcp", "18080:80"]);
    host.ok(&["firewall", "add", "b1", "allow", "tcp", "22"]);
    host.sh_ok("b1", "echo old > /root/marker");
    host.ok(&["snapshot", "create", "b1", "before"]);
    let before = host.info("b1");
    let before_host = host.details("b1");

    let out = host.ok(&["rebuild", "b1", "busybox"]);
    assert!(out.contains("Rebuilt b1"), "{out}");
    let after = host.info("b1");
    let after_host = host.details("b1");
    assert_eq!(after.status, Status::Running, "a running VPS runs again");
    assert_eq!(after.nic, before.nic, "nic changed");
    assert_eq!(after.forwards, before.forwards, "forwards changed");
    assert_eq!(after.firewall, before.firewall, "firewall changed");
    assert_eq!(after.config, before.config, "config changed");
    assert_eq!(after.ssh_keys, before.ssh_keys, "ssh_keys changed");
    assert_eq!(after_host.uid_base, before_host.uid_base, "uid_base changed");
    assert_eq!(after.created_at, before.created_at, "created_at changed");
    assert_ne!(after_host.init_pid, before_host.init_pid);
    // A fresh disk, with the key put in place again.
    let inside = host.sh_ok(
        "b1",
        "test -e /root/marker && echo marker-survived; cat /root/.ssh/authorized_keys",
    );
    let wanted = std::fs::read_to_string(&pubkey).unwrap();
    assert_eq!(inside.trim(), wanted.trim());
    // Snapshots stay, and still hold the old disk.
    let snaps = host.ok(&["snapshot", "list", "b1"]);
    assert!(snaps.contains("before"), "{snaps}");
    // The rebuilt disk keeps the disk limit.
    let out = host.sh(
        "b1",
        "dd if=/dev/zero of=/root/fill bs=1M count=100 2>&1; rm -f /root/fill",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Disk quota exceeded"),
        "the rebuilt disk has no limit"
    );
    // The memory limit is applied to the rebuilt VPS's cgroup.
    assert_eq!(
        after.usage.as_ref().and_then(|u| u.memory_limit_bytes),
        Some(256 << 20),
        "{after:?}"
    );

    // A stopped VPS is rebuilt and stays stopped.
    host.ok(&["stop", "b1"]);
    host.ok(&["rebuild", "b1", "busybox"]);
    assert_eq!(status(&host, "b1"), "stopped");
    assert!(!host.instance_dir("b1").join("rootfs.new").exists());
    host.ok(&["delete", "b1"]);
    host.assert_no_trace_of("b1");
}

#[test]
fn a_failed_or_interrupted_rebuild_keeps_the_old_disk() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "f1"]);
    host.sh_ok("f1", "echo old > /root/marker");
    let new_disk = host.instance_dir("f1").join("rootfs.new");

    // Refused up front: nothing happens.
    let err = host.fails(&["rebuild", "f1", "nosuch/image"]);
    assert!(err.contains("unknown image"), "{err}");
    let err = host.fails(&["rebuild", "nosuch", "busybox"]);
    assert!(err.contains("not found"), "{err}");
    let (code, reply) = host.api_err(
        "POST",
        "/1.0/instances/f1/rebuild",
        Some(r#"{"image":"busybox","wipe":true}"#),
    );
    assert!((400..500).contains(&code), "{code} {reply:?}");
    assert_eq!(status(&host, "f1"), "running");

    // Fails half-way (busybox cannot run a user-data script: no systemd):
    // the new disk is dropped and the VPS runs again on its old one.
    let script = host.dir.join("ud.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let err = host.fails(&[
        "rebuild",
        "f1",
        "busybox",
        "--user-data",
        script.to_str().unwrap(),
    ]);
    assert!(
        err.contains("rebuild of f1 failed") && err.contains("systemd"),
        "{err}"
    );
    assert_eq!(status(&host, "f1"), "running");
    assert_eq!(host.sh_ok("f1", "cat /root/marker"), "old\n");
    assert!(!new_disk.exists());

    // croftd killed with the new disk made but not yet swapped in: the
    // next start drops it, the old disk stays.
    host.ok(&["stop", "f1"]);
    host.kill_daemon();
    host.start_daemon_with_env(&[("CROFTD_CRASH_AT", "rebuild:disk-made")]);
    let _ = host.croft(&["rebuild", "f1", "busybox"]);
    host.wait_daemon_gone();
    assert!(new_disk.exists(), "the crash point was not reached");
    host.start_daemon();
    assert!(!new_disk.exists(), "the unfinished disk survived a restart");
    assert_eq!(status(&host, "f1"), "stopped");
    host.ok(&["start", "f1"]);
    assert_eq!(host.sh_ok("f1", "cat /root/marker"), "old\n");

    // croftd killed after the old disk was removed but before the new one
    // took its place (simulated: the state that crash leaves): the next
    // start finishes the swap.
    host.ok(&["stop", "f1"]);
    host.kill_daemon();
    let disk = host.instance_dir("f1").join("rootfs");
    let moved = std::process::Command::new("mv")
        .arg(&disk)
        .arg(&new_disk)
        .status()
        .unwrap();
    assert!(moved.success());
    host.start_daemon();
    assert!(disk.exists() && !new_disk.exists());
    host.ok(&["start", "f1"]);
    assert_eq!(host.sh_ok("f1", "cat /root/marker"), "old\n");
    host.ok(&["delete", "f1", "--force"]);
    host.assert_no_trace_of("f1");
}
