//! End-to-end tests of storage pools: the btrfs loop pool, per-VPS
//! subvolumes and disk limits, and the dir driver. Root needed; each test
//! has its own daemon and its own small loop-file pool.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use croft_api::{Network, Snapshot, Status, StoragePool};
use std::time::Duration;

#[test]
fn a_write_past_the_disk_limit_fails_with_edquot_inside_and_nothing_else_breaks() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "full1", "--disk", "64MiB"]);
    host.ok(&["launch", "busybox", "other1"]);
    let out = host.sh("full1", "dd if=/dev/zero of=/root/big bs=1M count=100 2>&1; sync");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Disk quota exceeded"), "no EDQUOT inside: {text}");
    // The neighbour and the host keep writing.
    host.sh_ok(
        "other1",
        "dd if=/dev/zero of=/root/f bs=1M count=80 2>/dev/null && sync && ls -l /root/f",
    );
    std::fs::write(host.dir.join("host-write"), vec![0u8; 1 << 20]).unwrap();
    assert_eq!(host.sh_ok("full1", "echo still-alive").trim(), "still-alive");
    // Usage is reported, and a live raise lets the write through.
    let disk = host.info("full1").disk_bytes.unwrap();
    assert!(disk > 50 << 20 && disk <= 64 << 20, "disk usage {disk}");
    host.ok(&["config", "set", "full1", "limits.disk=256MiB"]);
    host.sh_ok(
        "full1",
        "rm /root/big && dd if=/dev/zero of=/root/big bs=1M count=100 2>/dev/null && sync",
    );
    // A limit below what is used is refused and changes nothing.
    let err = host.fails(&["config", "set", "full1", "limits.disk=32MiB"]);
    assert!(err.contains("below"), "{err}");
    assert_eq!(
        host.info("full1").config.get("limits.disk").map(String::as_str),
        Some("256MiB")
    );
    // Lifting the limit works too.
    host.ok(&["config", "unset", "full1", "limits.disk"]);
    host.sh_ok(
        "full1",
        "dd if=/dev/zero of=/root/more bs=1M count=40 2>/dev/null && sync",
    );
}

#[test]
fn pool_is_listed_reattached_after_a_restart_and_volumes_are_removed_on_delete() {
    let mut host = Host::new();
    let pools: Vec<StoragePool> = host.ok_json(&["storage", "list", "--format", "json"]);
    let pool = &pools[0];
    assert_eq!(pool.driver, "btrfs");
    assert_eq!(pool.name, "default");
    let size = pool.size_bytes;
    assert!(size > 450 << 20 && size <= 512 << 20, "pool size {size}");
    assert!(pool.source.ends_with("disks/default.img"));
    host.ok(&["launch", "busybox", "keep1"]);
    host.sh_ok("keep1", "echo persisted > /root/note");
    let client = host.client();
    assert_eq!(client.storage_pool("default").unwrap().volumes, 1);
    assert_eq!(client.storage_pool("nope").unwrap_err().status(), Some(404));

    // Host reboot: everything stops, the pool is unmounted, /run is empty.
    host.ok(&["stop", "keep1"]);
    host.kill_daemon();
    nix::mount::umount2(&host.pool_dir(), nix::mount::MntFlags::MNT_DETACH).unwrap();
    host.stop_lxcfs();
    std::fs::remove_dir_all(host.run_dir()).unwrap();
    host.start_daemon();
    host.ok(&["start", "keep1"]);
    assert_eq!(host.sh_ok("keep1", "cat /root/note").trim(), "persisted");

    host.ok(&["delete", "--force", "keep1"]);
    host.assert_no_trace_of("keep1");
    let subvols = std::process::Command::new("btrfs")
        .args(["subvolume", "list"])
        .arg(host.pool_dir())
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&subvols.stdout).contains("keep1"),
        "subvolume left: {}",
        String::from_utf8_lossy(&subvols.stdout)
    );
    // Its qgroup goes in the background, once deletes pause (the delete
    // answers without waiting for btrfs's cleaner).
    let qgroups = || {
        let out = std::process::Command::new("btrfs")
            .args(["qgroup", "show"])
            .arg(host.pool_dir())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let gone = |q: &str| !q.contains("containers/") && !q.contains("<stale>");
    host.wait_for("its qgroup gone", Duration::from_secs(30), || gone(&qgroups()));
    let left = qgroups();
    assert!(gone(&left), "qgroups left: {left:?}");
}

#[test]
fn the_dir_driver_refuses_disk_limits_instead_of_ignoring_them() {
    let host = Host::with_config("storage_driver = \"dir\"");
    let err = host.fails(&["launch", "busybox", "plain1", "--disk", "1GiB"]);
    assert!(err.contains("dir storage driver"), "{err}");
    host.assert_no_trace_of("plain1");
    host.ok(&["launch", "busybox", "plain1"]);
    let err = host.fails(&["config", "set", "plain1", "limits.disk=1GiB"]);
    assert!(err.contains("dir storage driver"), "{err}");
    assert!(!host.info("plain1").config.contains_key("limits.disk"));
    // No snapshots to import into either: the head of a real stream (a
    // SUBVOL command naming "s1") is read, then refused, and nothing stays.
    let mut stream = b"btrfs-stream\0\x01\0\0\0".to_vec();
    stream.extend([
        26, 0, 0, 0, 1, 0, 0, 0, 0, 0, 15, 0, 2, 0, b's', b'1', 1, 0, 16, 0,
    ]);
    stream.extend([7u8; 16]);
    let file = host.dir.join("s1.stream");
    std::fs::write(&file, &stream).unwrap();
    let err = host.fails(&["snapshot", "import", "plain1", file.to_str().unwrap()]);
    assert!(err.contains("dir storage driver cannot import"), "{err}");
    assert_eq!(
        host.ok(&["snapshot", "list", "plain1", "--format", "json"])
            .trim(),
        "[]"
    );
    let info = host.ok(&["storage", "info"]);
    assert!(info.contains("Driver:  dir"), "{info}");
    // A rebuild copies the image into a new disk too (owners shifted).
    host.sh_ok("plain1", "echo old > /root/mark");
    host.ok(&["rebuild", "plain1", "busybox"]);
    host.wait_for("the rebuilt VPS running", Duration::from_secs(5), || {
        host.info("plain1").status == Status::Running
    });
    assert_eq!(
        host.sh_ok("plain1", "ls /root/mark 2>/dev/null || echo gone")
            .trim(),
        "gone"
    );
    host.wait_for("a running VPS", Duration::from_secs(5), || {
        host.info("plain1").status == Status::Running
    });
}

fn btrfs_out(args: &[&str], path: &std::path::Path) -> String {
    let out = std::process::Command::new("btrfs")
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "btrfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field<'a>(show: &'a str, name: &str) -> &'a str {
    show.lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .map(str::trim)
        .unwrap_or_default()
}

#[test]
fn vps_disks_are_snapshots_of_a_read_only_image_and_cost_almost_nothing() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "snap1"]);
    host.ok(&["launch", "busybox", "snap2"]);
    let image = host.pool_dir().join("images/busybox");
    assert_eq!(btrfs_out(&["property", "get", "-ts"], &image).trim(), "ro=true");
    let image_uuid = field(&btrfs_out(&["subvolume", "show"], &image), "UUID:").to_string();
    assert!(!image_uuid.is_empty());
    for name in ["snap1", "snap2"] {
        let rootfs = host.instance_dir(name).join("rootfs");
        let show = btrfs_out(&["subvolume", "show"], &rootfs);
        assert_eq!(
            field(&show, "Parent UUID:"),
            image_uuid,
            "{name} is not a snapshot of the image: {show}"
        );
        // What the VPS owns alone (exclusive) is tiny: the image's blocks
        // are shared.
        let q = btrfs_out(&["qgroup", "show", "--raw", "--sync", "-f"], &rootfs);
        let exclusive: u64 = q
            .lines()
            .find(|l| l.starts_with("0/"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(exclusive < 1 << 20, "{name} uses {exclusive} bytes of its own");
    }
    // Writes inside one VPS stay in its snapshot.
    host.sh_ok("snap1", "echo mine > /etc/motd");
    assert!(!host
        .sh_ok("snap2", "cat /etc/motd 2>/dev/null || true")
        .contains("mine"));
    assert!(!image.join("etc/motd").exists());
}

#[test]
fn snapshot_change_restore_returns_the_old_content() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "web1", "--disk", "128MiB"]);
    host.sh_ok("web1", "echo version-1 > /root/app && sync");
    host.ok(&["snapshot", "create", "web1"]);
    host.ok(&["snapshot", "create", "web1", "before-upgrade"]);
    host.sh_ok("web1", "echo version-2 > /root/app && rm /bin/ls && sync");
    let list: Vec<Snapshot> = host.ok_json(&["snapshot", "list", "web1", "--format", "json"]);
    let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["snap0", "before-upgrade"]);
    // A snapshot is read-only.
    let snap = host.instance_dir("web1").join("snapshots/snap0");
    assert!(
        std::fs::write(snap.join("root/app"), "x").is_err(),
        "snapshot is writable"
    );
    // Restoring a running VPS needs --stop; nothing changes without it.
    let err = host.fails(&["snapshot", "restore", "web1", "snap0"]);
    assert!(err.contains("--stop"), "{err}");
    assert_eq!(host.sh_ok("web1", "cat /root/app").trim(), "version-2");
    host.ok(&["snapshot", "restore", "web1", "snap0", "--stop"]);
    assert_eq!(host.info("web1").status, Status::Running);
    assert_eq!(host.sh_ok("web1", "cat /root/app").trim(), "version-1");
    host.sh_ok("web1", "ls / >/dev/null");
    // The disk limit survives the restore.
    let out = host.sh("web1", "dd if=/dev/zero of=/root/big bs=1M count=200 2>&1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Disk quota exceeded"));
    // Bad input.
    assert!(host
        .fails(&["snapshot", "restore", "web1", "nope", "--stop"])
        .contains("not found"));
    assert!(host
        .fails(&["snapshot", "create", "web1", "snap0"])
        .contains("already has"));
    assert!(host
        .fails(&["snapshot", "create", "web1", "../x"])
        .contains("name"));
    host.ok(&["snapshot", "delete", "web1", "before-upgrade"]);
    assert!(!host
        .instance_dir("web1")
        .join("snapshots/before-upgrade")
        .exists());
    // Deleting the VPS takes its snapshots along.
    host.ok(&["delete", "--force", "web1"]);
    host.assert_no_trace_of("web1");
}

/// The offset of the first command boundary of a btrfs send stream at or
/// after `at` (commands: u32 length of the attributes, u16 kind, u32 crc).
fn command_boundary_near(stream: &[u8], at: usize) -> usize {
    let mut pos = 17;
    while pos < at {
        let len = u32::from_le_bytes(stream[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 10 + len;
    }
    assert!(pos < stream.len(), "no boundary before the end");
    pos
}

#[test]
fn snapshots_move_to_another_host_whole_then_as_changes_only_and_restore_there() {
    let a = Host::new();
    let b = Host::new();
    a.ok(&["launch", "busybox", "src1"]);
    a.sh_ok(
        "src1",
        "dd if=/dev/urandom of=/root/big bs=1M count=24 2>/dev/null && echo v1 > /root/app && sync",
    );
    a.ok(&["snapshot", "create", "src1", "s1"]);
    a.sh_ok(
        "src1",
        "echo v2 > /root/app && echo new > /root/added && rm /bin/vi && sync",
    );
    a.ok(&["snapshot", "create", "src1", "s2"]);
    let big_sum = a.sh_ok("src1", "sha256sum /root/big | cut -d' ' -f1");
    let full = a.dir.join("s1.stream");
    let changes = a.dir.join("s2-since-s1.stream");
    let (full_s, changes_s) = (full.to_str().unwrap(), changes.to_str().unwrap());
    a.ok(&["snapshot", "export", "src1", "s1", full_s]);
    let out = a.ok(&["snapshot", "export", "src1", "s2", changes_s, "--since", "s1"]);
    assert!(out.contains("changes since s1"), "{out}");
    let (full_len, changes_len) = (
        std::fs::metadata(&full).unwrap().len(),
        std::fs::metadata(&changes).unwrap().len(),
    );
    assert!(full_len > 24 << 20, "whole stream is {full_len} bytes");
    assert!(
        changes_len < 256 << 10,
        "the changes alone are {changes_len} bytes"
    );

    // The other host: a VPS to hold them.
    b.ok(&["launch", "busybox", "dst1"]);
    let snaps = |h: &Host, vps: &str| -> Vec<String> {
        let list: Vec<Snapshot> = h.ok_json(&["snapshot", "list", vps, "--format", "json"]);
        list.into_iter().map(|s| s.name).collect()
    };
    // The changes before what they change: refused, nothing left.
    let err = b.fails(&["snapshot", "import", "dst1", changes_s]);
    assert!(err.contains("import that one"), "{err}");
    assert!(snaps(&b, "dst1").is_empty());
    let leftovers = |h: &Host, vps: &str| -> Vec<String> {
        std::fs::read_dir(h.instance_dir(vps).join("snapshots"))
            .map(|d| {
                let mut names: Vec<String> = d
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            })
            .unwrap_or_default()
    };
    assert!(leftovers(&b, "dst1").is_empty(), "{:?}", leftovers(&b, "dst1"));
    b.ok(&["snapshot", "import", "dst1", full_s]);
    b.ok(&["snapshot", "import", "dst1", changes_s]);
    assert_eq!(snaps(&b, "dst1"), ["s1", "s2"]);
    b.ok(&["snapshot", "restore", "dst1", "s2", "--stop"]);
    assert_eq!(b.sh_ok("dst1", "cat /root/app").trim(), "v2");
    assert_eq!(b.sh_ok("dst1", "cat /root/added").trim(), "new");
    assert!(
        !b.sh("dst1", "test -e /bin/vi").status.success(),
        "a deleted file came back"
    );
    assert_eq!(b.sh_ok("dst1", "sha256sum /root/big | cut -d' ' -f1"), big_sum);
    // The older one is there too, whole, and a new VPS can be made of it.
    b.ok(&["copy", "dst1/s1", "old1"]);
    b.ok(&["start", "old1"]);
    assert_eq!(b.sh_ok("old1", "cat /root/app").trim(), "v1");
    assert_eq!(b.sh_ok("old1", "hostname").trim(), "old1");
    // Under another name, on the first host too.
    a.ok(&["snapshot", "import", "src1", full_s, "--name", "s1-again"]);
    assert_eq!(snaps(&a, "src1"), ["s1", "s2", "s1-again"]);

    // Bad input: a clear error, nothing changed.
    let not_a_stream = a.dir.join("not-a-stream");
    std::fs::write(&not_a_stream, b"hello, not btrfs").unwrap();
    let nas = not_a_stream.to_str().unwrap();
    // A stream cut short (a copy that did not finish), at a byte inside a
    // command and exactly after one.
    let bytes = std::fs::read(&full).unwrap();
    let cut_inside = a.dir.join("cut-inside.stream");
    std::fs::write(&cut_inside, &bytes[..bytes.len() / 2]).unwrap();
    let boundary = command_boundary_near(&bytes, bytes.len() / 2);
    let cut_between = a.dir.join("cut-between.stream");
    std::fs::write(&cut_between, &bytes[..boundary]).unwrap();
    let (cut_inside, cut_between) = (cut_inside.to_str().unwrap(), cut_between.to_str().unwrap());
    // One file holding two snapshots, as `btrfs send A B` writes it (two
    // whole streams, one after the other): only the first is taken, the
    // second never lands under a name of the stream's choosing.
    let two = a.dir.join("two.stream");
    let sent = std::process::Command::new("btrfs")
        .args(["-q", "send", "-f"])
        .arg(&two)
        .arg(a.instance_dir("src1").join("snapshots/s1"))
        .arg(a.instance_dir("src1").join("snapshots/s2"))
        .status()
        .unwrap();
    assert!(sent.success());
    let two = two.to_str().unwrap();
    for (h, args, expect) in [
        (
            &b,
            vec!["snapshot", "import", "dst1", nas],
            "not a btrfs send stream",
        ),
        (
            &b,
            vec!["snapshot", "import", "dst1", cut_inside, "--name", "cut"],
            "cut short",
        ),
        (
            &b,
            vec!["snapshot", "import", "dst1", cut_between, "--name", "cut"],
            "cut short (no end marker)",
        ),
        (
            &b,
            vec!["snapshot", "import", "dst1", full_s],
            "already has a snapshot s1",
        ),
        (
            &b,
            vec!["snapshot", "import", "dst1", "/nonexistent/x.stream"],
            "cannot read",
        ),
        (
            &b,
            vec!["snapshot", "import", "dst1", full_s, "--name", "../x"],
            "name",
        ),
        (&b, vec!["snapshot", "import", "nope1", full_s], "not found"),
        (
            &a,
            vec!["snapshot", "export", "src1", "nope", "/tmp/x.stream"],
            "not found",
        ),
        (&a, vec!["snapshot", "export", "src1", "s2", full_s], "exists"),
        (
            &a,
            vec!["snapshot", "export", "src1", "s2", "/tmp", "--force"],
            "directory",
        ),
        (
            &a,
            vec!["snapshot", "export", "src1", "s2", "/nonexistent/x.stream"],
            "existing directory",
        ),
        (
            &a,
            vec![
                "snapshot",
                "export",
                "src1",
                "s2",
                "/tmp/y.stream",
                "--since",
                "s2",
            ],
            "itself",
        ),
        (
            &a,
            vec![
                "snapshot",
                "export",
                "src1",
                "s2",
                "/tmp/y.stream",
                "--since",
                "nope",
            ],
            "not found",
        ),
    ] {
        let err = h.fails(&args);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    assert_eq!(snaps(&b, "dst1"), ["s1", "s2"]);
    assert_eq!(leftovers(&b, "dst1"), ["s1", "s2"]);
    b.ok(&["snapshot", "import", "dst1", two, "--name", "two"]);
    assert_eq!(leftovers(&b, "dst1"), ["s1", "s2", "two"]);
    assert!(!b.instance_dir("dst1").join("snapshots/two/root/added").exists());
    assert_eq!(std::fs::metadata(&full).unwrap().len(), full_len);
    assert!(!std::path::Path::new("/tmp/y.stream").exists());
    for h in [&a, &b] {
        assert!(!h.dir.read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")));
    }
    b.ok(&["delete", "--force", "dst1"]);
    b.assert_no_trace_of("dst1");
}

#[test]
fn an_import_that_fills_the_pool_is_refused_whole_and_the_space_comes_back() {
    let a = Host::with_config("storage_size = \"2GiB\"");
    let b = Host::new(); // 512 MiB
    a.ok(&["launch", "busybox", "big1"]);
    a.sh_ok(
        "big1",
        "dd if=/dev/zero of=/root/zeros bs=1M count=640 2>/dev/null && sync",
    );
    a.ok(&["snapshot", "create", "big1", "s1"]);
    let stream = a.dir.join("big.stream");
    a.ok(&["snapshot", "export", "big1", "s1", stream.to_str().unwrap()]);
    a.ok(&["delete", "--force", "big1"]);
    b.ok(&["launch", "busybox", "dst1"]);
    let used = |h: &Host| -> u64 {
        let pool: StoragePool = h.ok_json(&["storage", "info", "default", "--format", "json"]);
        pool.used_bytes
    };
    let before = used(&b);
    let err = b.fails(&["snapshot", "import", "dst1", stream.to_str().unwrap()]);
    assert!(err.contains("pool is full"), "{err}");
    let left: Vec<_> = std::fs::read_dir(b.instance_dir("dst1").join("snapshots"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left after a failed import: {left:?}");
    // The space comes back (the cleaner frees it in the background), and
    // the VPS and the pool go on working.
    b.wait_for("the space back", Duration::from_secs(30), || {
        used(&b) < before + (64 << 20)
    });
    b.sh_ok(
        "dst1",
        "dd if=/dev/zero of=/root/f bs=1M count=100 2>/dev/null && sync && rm /root/f",
    );
    b.ok(&["snapshot", "create", "dst1", "after"]);
}

#[test]
fn an_import_croftd_dies_in_leaves_no_snapshot_behind_and_the_next_one_works() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "src1"]);
    host.ok(&["snapshot", "create", "src1", "s1"]);
    let stream = host.dir.join("s1.stream");
    let stream = stream.to_str().unwrap();
    host.ok(&["snapshot", "export", "src1", "s1", stream]);
    let point = "snapshot-import:recorded";
    host.kill_daemon();
    host.start_daemon_with_env(&[("CROFTD_CRASH_AT", point)]);
    let _ = host.croft(&["snapshot", "import", "src1", stream, "--name", "s2"]);
    host.wait_daemon_gone();
    assert!(host.daemon_log().contains(point), "{point} not reached");
    // What a croftd killed in the middle of the receive leaves: the
    // snapshot under its hidden name, writable, half-filled.
    let snapshots = host.instance_dir("src1").join("snapshots");
    let half = snapshots.join(".incoming-s2");
    let made = std::process::Command::new("btrfs")
        .args(["-q", "subvolume", "create"])
        .arg(&half)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::write(half.join("part"), b"half a stream").unwrap();
    host.start_daemon();
    let list: Vec<Snapshot> = host.ok_json(&["snapshot", "list", "src1", "--format", "json"]);
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(!half.exists(), "the half-received snapshot was left");
    host.ok(&["snapshot", "import", "src1", stream, "--name", "s2"]);
    host.ok(&["copy", "src1/s2", "again1"]);
    host.ok(&["start", "again1"]);
    host.sh_ok("again1", "true");
}

#[test]
fn copy_gives_a_new_vps_with_its_own_identity() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "orig1", "--memory", "64MiB"]);
    host.sh_ok(
        "orig1",
        "echo 0123456789abcdef0123456789abcdef > /etc/machine-id && echo data > /root/d && sync",
    );
    host.ok(&["snapshot", "create", "orig1", "s1"]);
    host.sh_ok("orig1", "echo later > /root/d && sync");
    host.ok(&["copy", "orig1", "copy1"]);
    host.ok(&["copy", "orig1/s1", "copy2"]);
    let c1 = host.info("copy1");
    assert_eq!(c1.status, Status::Stopped);
    assert_eq!(c1.config.get("limits.memory").map(String::as_str), Some("64MiB"));
    assert_ne!(host.uid_base("copy1"), host.uid_base("orig1"));
    host.ok(&["start", "copy1"]);
    host.ok(&["start", "copy2"]);
    assert_eq!(host.sh_ok("copy1", "cat /root/d").trim(), "later");
    assert_eq!(host.sh_ok("copy2", "cat /root/d").trim(), "data");
    assert_eq!(host.sh_ok("copy1", "hostname").trim(), "copy1");
    assert_eq!(host.sh_ok("copy1", "cat /etc/hostname").trim(), "copy1");
    let ids: Vec<String> = ["orig1", "copy1", "copy2"]
        .iter()
        .map(|n| host.sh_ok(n, "cat /etc/machine-id").trim().to_string())
        .collect();
    assert_eq!(ids[0], "0123456789abcdef0123456789abcdef");
    assert_ne!(ids[1], ids[0]);
    assert_ne!(ids[2], ids[0]);
    assert_ne!(ids[1], ids[2]);
    // Its own network identity too: a new MAC and address, reachable, and
    // the anti-spoofing rules that let it send were loaded at its start.
    let (o, c) = (host.info("orig1").nic, host.info("copy1").nic);
    assert_ne!(o.as_ref().map(|n| &n.mac), c.as_ref().map(|n| &n.mac));
    assert_ne!(
        o.as_ref().and_then(|n| n.ipv4.as_ref()),
        c.as_ref().and_then(|n| n.ipv4.as_ref())
    );
    let ip = c.as_ref().and_then(|n| n.ipv4.as_deref()).unwrap();
    assert!(host.sh_ok("copy1", "ip -4 addr show eth0").contains(ip));
    assert!(host.sh("orig1", &format!("ping -c1 -W2 {ip}")).status.success());
    // The copies are independent of the original.
    host.sh_ok("copy1", "echo mine > /root/d");
    assert_eq!(host.sh_ok("orig1", "cat /root/d").trim(), "later");
    assert!(host.fails(&["copy", "orig1", "copy1"]).contains("already exists"));
    assert!(host.fails(&["copy", "orig1/nope", "copy3"]).contains("not found"));
    host.assert_no_trace_of("copy3");
}

/// croftd killed between the steps of a copy, a launch and a delete (at
/// crash points, see croftd's failpoint.rs): the next start finishes or
/// undoes each one, leaving no half-made VPS, volume, address or rule, and
/// the VPS that was running all along keeps running.
#[test]
fn croftd_killed_mid_copy_launch_or_delete_leaves_a_consistent_state() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "keep1"]);
    host.ok(&["launch", "busybox", "del1"]);
    let keep_pid = host.init_pid("keep1");
    let containers = host.pool_dir().join("containers");
    for (point, args, gone) in [
        ("copy:volume-made", vec!["copy", "keep1", "cp1"], "cp1"),
        ("launch:disk-made", vec!["launch", "busybox", "new1"], "new1"),
        ("delete:volume-gone", vec!["delete", "--force", "del1"], "del1"),
    ] {
        host.kill_daemon();
        host.start_daemon_with_env(&[("CROFTD_CRASH_AT", point)]);
        let _ = host.croft(&args);
        host.wait_daemon_gone();
        assert!(host.daemon_log().contains(point), "{point} not reached");
        host.start_daemon();
        assert!(
            host.fails(&["info", gone]).contains("not found"),
            "{point}: {gone} survived"
        );
        assert!(!containers.join(gone).exists(), "{point}: volume of {gone} left");
        let net: Network = host.ok_json(&["network", "info", "default", "--format", "json"]);
        let leases: Vec<&str> = net.leases.iter().map(|l| l.instance.as_str()).collect();
        assert!(
            !leases.contains(&gone),
            "{point}: address of {gone} not freed: {leases:?}"
        );
        assert_eq!(
            host.init_pid("keep1"),
            keep_pid,
            "{point}: the running VPS was disturbed"
        );
    }
    // And the names can be used again.
    host.ok(&["copy", "keep1", "cp1"]);
    host.ok(&["launch", "busybox", "new1"]);
    assert_eq!(host.sh_ok("new1", "hostname").trim(), "new1");
}
