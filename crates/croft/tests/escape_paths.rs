//! The escape battery, second half: root inside a VPS (or a hostile
//! stream or tarball) tries the ways out through what croftd handles for a
//! VPS — its disk and the pool beneath it, exports and imports, terminals
//! and the console. The kernel-interface attempts are in escape.rs;
//! docs/security.md lists them all. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::attack::{attacker, host_file, refused};
use common::Host;
use std::time::Duration;

#[test]
fn a_btrfs_subvolume_to_write_past_the_disk_limit_is_refused() {
    // A new subvolume gets a qgroup of its own, outside the VPS's limit.
    let host = Host::new();
    host.ok(&["launch", "busybox", "esc", "--disk", "32MiB"]);
    let rootfs = host.instance_dir("esc").join("rootfs");
    common::install_host_binary(&rootfs, std::path::Path::new("/usr/bin/btrfs"), "/usr/bin/btrfs");
    for (what, script) in [
        ("btrfs subvolume create", "btrfs subvolume create /root/sv"),
        (
            "btrfs subvolume snapshot",
            "btrfs subvolume snapshot / /root/snap",
        ),
    ] {
        let err = refused(&host, what, script);
        assert!(err.contains("not permitted"), "{what}: {err}");
    }
    let out = host.sh("esc", "dd if=/dev/zero of=/root/fill bs=1M count=64 2>&1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Disk quota exceeded"));
}

#[test]
fn filling_the_disk_with_inodes_stops_at_the_disk_limit() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "esc", "--disk", "32MiB"]);
    let out = host.sh(
        "esc",
        // (xargs stops at the first batch that fails: exit 255.)
        "mkdir /root/i && cd /root/i && seq 1 2000000 | xargs -n 2000 sh -c 'touch \"$@\" || exit 255' _ 2>/tmp/err; grep -m1 touch /tmp/err",
    );
    let err = String::from_utf8_lossy(&out.stdout);
    assert!(
        err.contains("quota exceeded") || err.contains("No space left"),
        "the inode flood was not stopped: {err}"
    );
    // The pool still has room: the neighbour writes.
    host.ok(&["launch", "busybox", "other"]);
    host.sh_ok("other", "echo fine > /root/f && cat /root/f");
}

/// The pool's loop device as the host knows it: its path and its
/// `(major, minor)`.
fn pool_loop_device(host: &Host) -> (u64, u64) {
    let pool = host.pool_dir();
    let table = host_file("/proc/self/mountinfo");
    let line = table
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(&*pool.to_string_lossy()))
        .expect("the pool is mounted");
    let source = line
        .split(" - ")
        .nth(1)
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(source.starts_with("/dev/loop"), "pool on {source}");
    let rdev = std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(&source).unwrap());
    (libc::major(rdev) as u64, libc::minor(rdev) as u64)
}

/// A snapshot stream that makes a device node: the attack put the
/// pool's loop device on a VPS disk through `btrfs receive` (host root),
/// and a VPS copied from that snapshot read every tenant's disk through
/// it. Three layers, each tried here: the stream check refuses MKNOD; a
/// VPS's disk is mounted `nodev`; and the devices cgroup denies every
/// device but the usual ones, even after VPS root takes `nodev` off.
#[test]
fn a_device_node_on_a_vps_disk_opens_nothing() {
    use croft_host::storage::send_stream::encode_command;
    let host = attacker();
    let (major, minor) = pool_loop_device(&host);
    host.sh_ok("esc", "echo mine > /root/file");
    host.ok(&["snapshot", "create", "esc", "s1"]);
    let stream = host.dir.join("s1.stream");
    host.ok(&["snapshot", "export", "esc", "s1", stream.to_str().unwrap()]);

    // Layer 1: the crafted stream, a MKNOD with a valid checksum slipped in
    // before the end marker.
    let bytes = std::fs::read(&stream).unwrap();
    let end = bytes.len() - 10;
    assert_eq!(
        u16::from_le_bytes([bytes[end + 4], bytes[end + 5]]),
        21,
        "the stream ends with END"
    );
    let mode = u64::from(libc::S_IFBLK | 0o666);
    let rdev = libc::makedev(major as u32, minor as u32);
    let mknod = encode_command(
        5,
        &[
            (15, b"root/disk"),
            (5, &mode.to_le_bytes()),
            (8, &rdev.to_le_bytes()),
        ],
    );
    let crafted = host.dir.join("crafted.stream");
    std::fs::write(&crafted, [&bytes[..end], &mknod, &bytes[end..]].concat()).unwrap();
    let err = host.fails(&[
        "snapshot",
        "import",
        "esc",
        crafted.to_str().unwrap(),
        "--name",
        "evil",
    ]);
    assert!(err.contains("device node"), "{err}");
    let list = host.ok(&["snapshot", "list", "esc"]);
    assert!(!list.contains("evil"), "{list}");
    assert!(!host.instance_dir("esc").join("snapshots/evil").exists());

    // Layers 2 and 3: a device node that reached the disk anyway (put
    // there by the host here) opens nothing, nodev or not.
    let rootfs = host.instance_dir("esc").join("rootfs");
    for (name, kind, maj, min) in [
        ("disk", libc::S_IFBLK, major, minor),
        ("mem", libc::S_IFCHR, 1, 1),
    ] {
        nix::sys::stat::mknod(
            &rootfs.join("root").join(name),
            nix::sys::stat::SFlag::from_bits_truncate(kind),
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            libc::makedev(maj as u32, min as u32),
        )
        .unwrap();
    }
    let root_mount = host.sh_ok("esc", "awk '$5 == \"/\"' /proc/self/mountinfo");
    assert!(
        root_mount.contains("nodev"),
        "the VPS disk is mounted without nodev: {root_mount}"
    );
    for device in ["/root/disk", "/root/mem"] {
        let err = refused(
            &host,
            &format!("reading {device}"),
            &format!("head -c 512 {device} > /dev/null"),
        );
        assert!(
            err.contains("denied") || err.contains("not permitted"),
            "{device}: {err}"
        );
    }
    // VPS root may take nodev off its own mount (it is not locked); the
    // devices cgroup still says no.
    host.sh_ok("esc", "mount -o remount,bind,dev / ; true");
    for device in ["/root/disk", "/root/mem"] {
        refused(
            &host,
            &format!("reading {device} without nodev"),
            &format!("head -c 512 {device} > /dev/null"),
        );
    }
    refused(&host, "writing the pool's loop device", "echo x > /root/disk");
    let list = host_file(
        &host
            .vps_cgroup("devices", "esc")
            .join("devices.list")
            .to_string_lossy(),
    );
    assert!(
        !list.contains("a *:* rwm") && !list.contains(&format!("b {major}:")),
        "{list}"
    );
    assert!(list.contains("c 1:3 rwm"), "{list}");
    // The usual devices still work.
    host.sh_ok(
        "esc",
        "echo x > /dev/null && head -c 4 /dev/urandom > /dev/null && head -c 4 /dev/zero > /dev/null",
    );
}

/// Exports write host files a request names: the attacks planted
/// a symlink where the temporary `<name>.partial` would be made (the
/// export followed it and truncated its target, even without
/// `overwrite`), and exported with `overwrite` to `/dev/full`, replacing
/// the device node with a file. A device node of our own stands in for
/// `/dev/full` here.
#[test]
fn an_export_never_writes_through_a_symlink_or_replaces_a_device() {
    let host = attacker();
    host.ok(&["snapshot", "create", "esc", "s1"]);
    let dir = host.dir.join("exports");
    std::fs::create_dir(&dir).unwrap();
    let victim = host.dir.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    // The old temporary names, planted as symlinks to the victim.
    for planted in ["img.tar.partial", ".img.tar.gz.partial", "snap.partial"] {
        std::os::unix::fs::symlink(&victim, dir.join(planted)).unwrap();
    }
    host.ok(&["image", "export", "busybox", &path("img.tar.gz")]);
    host.ok(&["snapshot", "export", "esc", "s1", &path("snap")]);
    // Targets that are not regular files, with and without --force.
    std::os::unix::fs::symlink(&victim, dir.join("link")).unwrap();
    nix::sys::stat::mknod(
        &dir.join("full"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        libc::makedev(1, 7),
    )
    .unwrap();
    nix::unistd::mkfifo(&dir.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for target in ["link", "full", "fifo"] {
        let target_path = path(target);
        for force in [&[][..], &["--force"][..]] {
            let image = [&["image", "export"][..], force, &["busybox", &target_path]].concat();
            let err = host.fails(&image);
            assert!(
                err.contains("not a regular file"),
                "image export to {target}: {err}"
            );
            let snap = [&["snapshot", "export"][..], force, &["esc", "s1", &target_path]].concat();
            let err = host.fails(&snap);
            assert!(
                err.contains("not a regular file"),
                "snapshot export to {target}: {err}"
            );
        }
    }
    assert_eq!(host_file(&victim.to_string_lossy()), "precious");
    let kind = |name: &str| std::fs::symlink_metadata(dir.join(name)).unwrap().file_type();
    use std::os::unix::fs::FileTypeExt;
    assert!(kind("link").is_symlink() && kind("full").is_char_device() && kind("fifo").is_fifo());
    // Only what was asked for (and what was planted) is there: no
    // temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".img.tar.gz.partial",
            "fifo",
            "full",
            "img.tar.gz",
            "img.tar.partial",
            "link",
            "snap",
            "snap.partial"
        ]
    );
}

/// `croft exec` without `-t` used to hand the CLI's own stdin, stdout and
/// stderr (the admin's terminal) into the VPS: a process that kept them
/// read what the admin typed after `croft exec` returned, and could write
/// escape sequences to their terminal. Here the admin's terminal is a pty
/// of the test's; the command leaves two processes behind holding its
/// stdio, one to read what is typed next, one to write to the terminal.
/// Then the console log's escape sequences are shown, not obeyed.
#[test]
fn exec_and_the_console_log_never_lend_the_admins_terminal() {
    use std::io::{Read, Write};
    let host = attacker();
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let script =
        "echo $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2) > /tmp/fds; \
                  exec 3<&0 4>&1; \
                  (sleep 1; cat <&3 > /tmp/stolen) & \
                  (sleep 1; printf '\\033]0;pwned\\007' >&4) & \
                  echo done";
    let out = std::process::Command::new(common::bin_dir().join("croft"))
        .arg("--socket")
        .arg(&host.socket)
        .args(["exec", "esc", "--", "sh", "-c", script])
        .stdin(slave.try_clone().unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(slave)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    // The admin types the next command's password at the terminal.
    let mut master = std::fs::File::from(pty.master);
    master.write_all(b"hunter2\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let fds = host.sh_ok("esc", "cat /tmp/fds");
    assert!(
        fds.split_whitespace().count() == 3 && fds.split_whitespace().all(|l| l.starts_with("pipe:")),
        "the command's stdio are not pipes of the CLI's: {fds}"
    );
    assert_eq!(
        host.sh_ok("esc", "cat /tmp/stolen"),
        "",
        "what the admin typed was read inside"
    );
    // Nothing was written to the terminal either: what it shows is the
    // echo of the password typed, not the escape sequence.
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&master),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut shown = Vec::new();
    let _ = master.read_to_end(&mut shown);
    assert!(!String::from_utf8_lossy(&shown).contains("pwned"), "{shown:?}");

    // The console log as recorded holds what init and anything in the VPS
    // wrote to the console; shown, its controls are made visible.
    host.sh_ok(
        "esc",
        "printf 'before \\033]0;pwned\\007\\033[2J after\\n' > /dev/console",
    );
    host.wait_for("the console log", Duration::from_secs(5), || {
        host.ok(&["console", "esc", "--show-log", "--raw"])
            .contains("after")
    });
    let shown = host.ok(&["console", "esc", "--show-log"]);
    assert!(!shown.contains('\x1b') && !shown.contains('\x07'), "{shown:?}");
    assert!(shown.contains("before ^[]0;pwned^G^[[2J after"), "{shown:?}");
    let raw = host.ok(&["console", "esc", "--show-log", "--raw"]);
    assert!(raw.contains("before \x1b]0;pwned\x07\x1b[2J after"), "{raw:?}");
    let err = host.fails(&["console", "esc", "--raw"]);
    assert!(err.contains("--show-log"), "{err}");
}

/// A snapshot import's stream may make symlinks, and `btrfs receive`
/// follows them (confined to the VPS's snapshots directory): one to the
/// directory itself let the stream leave, in that directory, a symlink to
/// another VPS's disk where croftd expects a subvolume (a partly received
/// snapshot, or an existing snapshot renamed away), and croftd's next
/// delete, restore, copy or export acted on that disk as host root.
#[test]
fn an_imported_stream_cannot_point_croftd_at_another_vps_disk() {
    use croft_host::storage::send_stream::encode_command;
    let host = attacker();
    host.ok(&["launch", "busybox", "victim"]);
    host.sh_ok("victim", "echo precious > /root/data");
    let victim_disk = host.instance_dir("victim").join("rootfs");
    let victim_link = victim_disk.to_str().unwrap().as_bytes().to_vec();
    host.ok(&["snapshot", "create", "esc", "s1"]);
    let stream = host.dir.join("s1.stream");
    host.ok(&["snapshot", "export", "esc", "s1", stream.to_str().unwrap()]);
    let bytes = std::fs::read(&stream).unwrap();
    let end = bytes.len() - 10;
    let symlink = |path: &[u8], target: &[u8], ino: u64| {
        encode_command(8, &[(15, path), (3, &ino.to_le_bytes()), (17, target)])
    };
    // `up` leads to the snapshots directory.
    let up = symlink(b"up", b"/", 1_000_001);
    let import = |name: &str, extra: &[Vec<u8>]| {
        let crafted = host.dir.join(format!("{name}.stream"));
        let injected: Vec<u8> = extra.concat();
        std::fs::write(&crafted, [&bytes[..end], &up, &injected, &bytes[end..]].concat()).unwrap();
        host.croft(&[
            "snapshot",
            "import",
            "esc",
            crafted.to_str().unwrap(),
            "--name",
            name,
        ])
    };
    // 1. A partly received snapshot's name on a symlink to the victim's
    //    disk, then a refused command: croftd discards the partial import.
    let mode = u64::from(libc::S_IFBLK | 0o600);
    let refused_mknod = encode_command(
        5,
        &[(15, b"dev0"), (5, &mode.to_le_bytes()), (8, &0u64.to_le_bytes())],
    );
    let out = import(
        "evil1",
        &[
            symlink(b"up/.incoming-evil9", &victim_link, 1_000_002),
            refused_mknod,
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    // 2. The VPS's own snapshot renamed away, a symlink in its place.
    let _ = import(
        "evil2",
        &[
            encode_command(9, &[(15, b"up/s1"), (16, b"up/s1-moved")]),
            symlink(b"up/s1", &victim_link, 1_000_003),
        ],
    );
    for args in [
        vec!["snapshot", "restore", "esc", "s1", "--stop"],
        vec!["copy", "esc/s1", "stolen"],
        vec![
            "snapshot",
            "export",
            "esc",
            "s1",
            host.dir.join("out.stream").to_str().unwrap(),
        ],
    ] {
        let out = host.croft(&args);
        assert!(!out.status.success(), "{args:?} went through: {out:?}");
    }
    let _ = host.croft(&["snapshot", "delete", "esc", "s1"]);
    // The victim's disk is whole and its own.
    assert!(
        victim_disk.join("root/data").exists(),
        "the victim's disk is gone"
    );
    assert_eq!(host.sh_ok("victim", "cat /root/data").trim(), "precious");
    let list = host.ok(&["list"]);
    assert!(!list.contains("stolen"), "{list}");
}

/// An imported image keeps its files' modes and owners, setuid root ones
/// included, and the pool is mounted without `nosuid` (VPSes need setuid
/// inside): a host user who could reach the pool's images could run one
/// as host root. The pool's images and VPS disks are host root's alone.
#[test]
fn no_host_user_reaches_the_pools_images_or_disks() {
    let host = attacker();
    for (dir, want) in [("images", 0o700), ("containers", 0o711)] {
        let path = host.pool_dir().join(dir);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, want, "{}", path.display());
        let out = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", "ls"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "nobody listed {}: {out:?}", path.display());
    }
    // Nor enters a VPS's disk by its name.
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "ls"])
        .arg(host.instance_dir("esc").join("rootfs"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "nobody listed a VPS disk: {out:?}");
}

/// What a VPS writes to its console while nobody is attached is copied to
/// its console log by its supervisor, which no limit of the VPS covers: a
/// flood cost the supervisor ~35% of a CPU. The log now takes it at a
/// fast serial line's rate, and the flooding writer waits.
#[test]
fn a_console_flood_costs_the_supervisor_little() {
    let host = attacker();
    let run = host.run_dir().join("vps/esc");
    let supervisor: i32 = std::fs::read_to_string(run.join("supervisor.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Nanoseconds on a CPU, exactly (schedstat's first field; stat's
    // utime and stime are sampled at ticks).
    let cpu_ns = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{supervisor}/schedstat")).unwrap();
        stat.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (before, start) = (cpu_ns(), std::time::Instant::now());
    let _ = host.sh(
        "esc",
        "timeout 4 sh -c 'while :; do cat /bin/busybox; done > /dev/console'",
    );
    let wall = start.elapsed().as_secs_f64();
    let share = (cpu_ns() - before) as f64 / 1e9 / wall;
    let logged: u64 = ["console.log", "console.log.1"]
        .iter()
        .filter_map(|f| std::fs::metadata(run.join(f)).ok())
        .map(|m| m.len())
        .sum();
    eprintln!(
        "supervisor: {:.1}% of a CPU, {logged} bytes logged in {wall:.1} s",
        share * 100.0
    );
    assert!(
        share < 0.10,
        "the supervisor spent {:.0}% of a CPU",
        share * 100.0
    );
    // At most the burst and the rate (1 MiB, 256 KiB/s), a little slack.
    assert!(
        logged < (1 << 20) + (wall * 1.2 * 262_144.0) as u64,
        "{logged} bytes"
    );
    // The console is still the VPS's: a line written afterwards is logged.
    host.sh_ok("esc", "sleep 4; echo after-the-flood > /dev/console");
    host.wait_for("the line after the flood", Duration::from_secs(10), || {
        host.ok(&["console", "esc", "--show-log", "--raw"])
            .contains("after-the-flood")
    });
}
