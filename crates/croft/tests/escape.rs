//! The escape battery: root inside a VPS tries the known ways out, one
//! named test per attempt, each asserting the denial (and, where the
//! attempt would change the host, that the host did not change). Here the
//! kernel's interfaces; the ways through croftd's disks, streams and
//! terminals are in escape_paths.rs. The
//! resource-exhaustion attempts live beside the limits they hit: fork bomb
//! and memory in vps.rs, disk in storage.rs, neighbour spoofing in
//! network.rs; docs/security.md lists them all. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::attack::{attacker, host_file, install_probe, probe, refused};
use common::Host;
use std::time::Duration;

#[test]
fn loading_a_kernel_module_is_refused() {
    let host = attacker();
    refused(&host, "insmod", "echo junk > /tmp/x.ko && insmod /tmp/x.ko");
    refused(&host, "modprobe", "modprobe dummy");
    let calls = probe(&host, "");
    for call in ["init_module", "finit_module", "delete_module"] {
        assert_eq!(calls[call], libc::EPERM, "{call}");
    }
    // Nor can it make the kernel run its own program on a module request
    // (where the kernel has modules at all).
    if let Ok(before) = std::fs::read_to_string("/proc/sys/kernel/modprobe") {
        refused(
            &host,
            "changing kernel.modprobe",
            "mount -o remount,rw /proc/sys 2>/dev/null; echo /tmp/evil > /proc/sys/kernel/modprobe",
        );
        assert_eq!(host_file("/proc/sys/kernel/modprobe"), before);
    }
}

#[test]
fn mounting_the_host_disk_is_refused() {
    let host = attacker();
    // The host's block devices, by name, as the host sees them.
    let partitions = host_file("/proc/partitions");
    let devices: Vec<(String, String, String)> = partitions
        .lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4).then(|| (f[0].to_string(), f[1].to_string(), f[3].to_string()))
        })
        .collect();
    assert!(!devices.is_empty(), "no host block devices to try: {partitions}");
    let inside_dev = host.sh_ok("esc", "ls /dev");
    for (major, minor, name) in &devices {
        assert!(
            !inside_dev.split_whitespace().any(|d| d == name),
            "host device {name} is visible inside"
        );
        refused(
            &host,
            &format!("mounting host device {name}"),
            &format!(
                "mknod /tmp/{name} b {major} {minor} 2>/dev/null; mkdir -p /tmp/m && mount /tmp/{name} /tmp/m || mount /dev/{name} /tmp/m"
            ),
        );
    }
}

#[test]
fn mknod_of_a_block_or_memory_device_is_refused() {
    let host = attacker();
    refused(&host, "mknod of a block device", "mknod /tmp/sda b 8 0");
    refused(&host, "mknod of /dev/mem", "mknod /tmp/mem c 1 1");
    refused(&host, "mknod of /dev/kmsg", "mknod /tmp/kmsg c 1 11");
}

#[test]
fn writing_proc_sys_is_refused() {
    let host = attacker();
    let core_pattern = host_file("/proc/sys/kernel/core_pattern");
    for (what, script) in [
        // The classic: a core_pattern pipe runs as host root.
        (
            "kernel.core_pattern",
            "echo '|/tmp/evil' > /proc/sys/kernel/core_pattern",
        ),
        ("vm.drop_caches", "echo 1 > /proc/sys/vm/drop_caches"),
        ("kernel.hostname", "echo evil > /proc/sys/kernel/hostname"),
    ] {
        refused(&host, what, script);
        // /proc/sys is a locked read-only bind; even if it were not, the
        // kernel's own checks must still refuse every host-wide knob.
        refused(
            &host,
            &format!("{what} after remounting /proc/sys read-write"),
            &format!("mount -o remount,rw /proc/sys; {script}"),
        );
    }
    assert_eq!(host_file("/proc/sys/kernel/core_pattern"), core_pattern);
}

#[test]
fn writing_sys_is_refused() {
    let host = attacker();
    for (what, script) in [
        ("/sys/kernel/mm/ksm/run", "echo 1 > /sys/kernel/mm/ksm/run"),
        ("remounting /sys read-write", "mount -o remount,rw /sys"),
        (
            "a fresh sysfs read-write",
            "mkdir -p /tmp/s && mount -t sysfs sysfs /tmp/s && echo 1 > /tmp/s/kernel/mm/ksm/run",
        ),
    ] {
        refused(&host, what, script);
    }
}

#[test]
fn kernel_memory_and_host_kernel_state_are_not_readable() {
    let host = attacker();
    refused(&host, "reading /proc/kcore", "head -c 1 /proc/kcore | grep -q .");
    // Masked files read as empty.
    for file in [
        "kallsyms",
        "sched_debug",
        "timer_list",
        "keys",
        "kmsg",
        "cmdline",
        "diskstats",
    ] {
        let out = host.sh("esc", &format!("head -c 100 /proc/{file} 2>/dev/null | wc -c"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0",
            "/proc/{file} shows host data"
        );
    }
    // Every VPS's disk usage and limit, as the pool's quota groups.
    // (The host's shows them: the pool is btrfs.)
    assert!(std::fs::read_dir("/sys/fs/btrfs").unwrap().count() > 0);
    assert_eq!(
        host.sh_ok("esc", "ls -A /sys/fs/btrfs | wc -l").trim(),
        "0",
        "/sys/fs/btrfs shows the pool's quota groups"
    );
    refused(&host, "dmesg", "dmesg | grep -q .");
    assert_eq!(
        probe(&host, "")["syslog"],
        libc::EPERM,
        "the kernel log is readable"
    );
}

#[test]
fn host_processes_are_not_visible_in_proc() {
    let host = attacker();
    let mut sleeper = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let pid = sleeper.id();
    let seen = host.sh("esc", &format!("cat /proc/{pid}/cmdline"));
    let init = host.sh_ok("esc", "readlink /proc/1/exe");
    let all = host.sh_ok("esc", "cat /proc/[0-9]*/comm 2>/dev/null | sort -u");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert!(!seen.status.success(), "host pid {pid} is visible inside");
    assert!(
        init.contains("busybox"),
        "PID 1 inside is not the VPS init: {init}"
    );
    assert!(!all.contains("sleep") && !all.contains("croftd"), "{all}");
}

#[test]
fn open_by_handle_at_shocker_is_refused() {
    let host = attacker();
    assert_eq!(probe(&host, "")["open_by_handle_at"], libc::EPERM);
}

#[test]
fn the_cgroup_v1_release_agent_escape_is_refused() {
    // CVE-2022-0492: mount a cgroup v1 hierarchy and point its
    // release_agent at a program the host then runs as root.
    let host = attacker();
    let agent = host_file("/sys/fs/cgroup/memory/release_agent");
    // A VPS may mount a v1 hierarchy it is in (the kernel allows it in its
    // own cgroup namespace: it sees its own cgroup as the root), but there
    // is no release_agent there, nor in a hierarchy of its own making, and
    // its limits stay out of reach.
    for controller in ["memory", "rdma", "none,name=escape"] {
        refused(
            &host,
            &format!("release_agent of a cgroup v1 {controller} mount"),
            &format!(
                "mkdir -p /tmp/cg && mount -t cgroup -o {controller} cgroup /tmp/cg && echo /tmp/evil > /tmp/cg/release_agent"
            ),
        );
        refused(
            &host,
            &format!("release_agent of a cgroup v1 {controller} mount in a new user namespace"),
            &format!(
                "mkdir -p /tmp/cg2 && unshare -U -r -m -C sh -c 'mount -t cgroup -o {controller} cgroup /tmp/cg2 && echo /tmp/evil > /tmp/cg2/release_agent'"
            ),
        );
        host.sh("esc", "umount /tmp/cg 2>/dev/null; true");
    }
    refused(
        &host,
        "lifting its own memory limit",
        "mount -t cgroup -o memory cgroup /tmp/cg && echo -1 > /tmp/cg/memory.limit_in_bytes",
    );
    refused(&host, "making a child memory cgroup", "mkdir /tmp/cg/escape");
    assert_eq!(host_file("/sys/fs/cgroup/memory/release_agent"), agent);
    // The VPS's own cgroup tree has no release_agent to write.
    let found = host.sh_ok("esc", "find /sys/fs/cgroup -name release_agent 2>/dev/null");
    assert_eq!(found.trim(), "", "release_agent visible inside");
}

#[test]
fn overwriting_the_runtime_through_proc_exe_is_refused() {
    // CVE-2019-5736: while the runtime enters the VPS (croft exec), a
    // process inside opens /proc/PID/exe of the entering process and
    // writes to the host binary behind it.
    let host = attacker();
    let binaries = ["croft-supervisor", "croftd", "croft"].map(|b| common::bin_dir().join(b));
    let before: Vec<Vec<u8>> = binaries.iter().map(|b| std::fs::read(b).unwrap()).collect();
    host.sh_ok(
        "esc",
        "cat > /tmp/race <<'EOF'\n\
         #!/bin/sh\n\
         end=$(( $(date +%s) + 6 ))\n\
         while [ $(date +%s) -lt $end ]; do\n\
           for p in /proc/[0-9]*; do\n\
             case $(readlink $p/exe 2>/dev/null) in *busybox*|'') continue;; esac\n\
             readlink $p/exe >> /tmp/seen\n\
             (echo '#!/bin/sh' >> $p/exe) 2>/dev/null && echo $p >> /tmp/won\n\
           done\n\
         done\n\
         EOF\n\
         chmod +x /tmp/race",
    );
    let racer = std::process::Command::new(common::bin_dir().join("croft"))
        .args([
            "--socket",
            host.socket.to_str().unwrap(),
            "exec",
            "esc",
            "--",
            "/tmp/race",
        ])
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let mut entries = 0;
    while start.elapsed() < Duration::from_secs(5) {
        host.sh_ok("esc", "true");
        entries += 1;
    }
    let out = racer.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(entries > 5, "only {entries} entries raced");
    assert_eq!(
        host.sh_ok("esc", "cat /tmp/won 2>/dev/null || true"),
        "",
        "a process inside wrote through /proc/PID/exe"
    );
    for (binary, old) in binaries.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(binary).unwrap(),
            old,
            "{} changed",
            binary.display()
        );
    }
}

#[test]
fn ptrace_of_a_host_or_neighbour_process_is_refused() {
    let host = attacker();
    host.ok(&["launch", "busybox", "neighbour"]);
    let neighbour = host.init_pid("neighbour");
    let mut sleeper = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let host_pid = sleeper.id();
    let daemon = host.daemon_pid();
    for (what, pid) in [
        ("the neighbour's init", neighbour as u32),
        ("a host process", host_pid),
        ("croftd", daemon),
    ] {
        let calls = probe(&host, &format!("ptrace {pid}"));
        assert_ne!(calls["ptrace"], 0, "ptrace of {what} (host pid {pid}) worked");
        refused(&host, &format!("signalling {what}"), &format!("kill -0 {pid}"));
    }
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn the_kernel_keyring_is_refused() {
    let host = attacker();
    let calls = probe(&host, "");
    // "Not there" (as under LXC), so runtimes inside go on without one.
    for call in ["keyctl", "add_key", "request_key"] {
        assert_eq!(calls[call], libc::ENOSYS, "{call}");
    }
}

#[test]
fn sysrq_trigger_is_refused() {
    let host = attacker();
    // 'h' only prints help: harmless should the write ever get through.
    refused(&host, "sysrq", "echo h > /proc/sysrq-trigger");
    refused(
        &host,
        "sysrq via a fresh procfs",
        "mkdir -p /tmp/p && mount -t proc proc /tmp/p && echo h > /tmp/p/sysrq-trigger",
    );
}

#[test]
fn changing_the_host_time_is_refused() {
    let host = attacker();
    let out = host.sh("esc", "date -s '2000-01-01 00:00:00'");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not permitted"),
        "setting the clock was not refused"
    );
    assert_eq!(probe(&host, "")["clock_settime"], libc::EPERM);
    let year = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 31_557_600
        + 1970;
    assert!(year > 2020, "the host clock moved");
}

#[test]
fn another_vps_files_are_unreachable_through_proc_pid_root() {
    let host = attacker();
    host.ok(&["launch", "busybox", "victim"]);
    host.sh_ok("victim", "echo secret > /root/secret");
    let victim = host.init_pid("victim");
    refused(
        &host,
        "reading the victim's files through /proc/*/root",
        "cat /proc/*/root/root/secret",
    );
    refused(
        &host,
        "reaching the victim's init by its host pid",
        &format!("ls /proc/{victim}/root/root"),
    );
    // The victim's disk on the host is closed to the attacker's ids too.
    let victim_dir = host.instance_dir("victim");
    let attacker_uid = host.uid_base("esc");
    let denied = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={attacker_uid}"),
            &format!("--regid={attacker_uid}"),
            "--clear-groups",
            "cat",
        ])
        .arg(victim_dir.join("rootfs/root/secret"))
        .output()
        .unwrap();
    assert!(
        !denied.status.success(),
        "the attacker's uid reads the victim's disk"
    );
}

#[test]
fn the_remaining_dangerous_syscalls_are_refused() {
    let host = attacker();
    let calls = probe(&host, "");
    assert_eq!(calls.len(), 17, "{calls:?}");
    for (name, errno) in calls {
        // The keyring is "not there" (ENOSYS, as under LXC); the rest EPERM.
        let want = match name.as_str() {
            "keyctl" | "add_key" | "request_key" => libc::ENOSYS,
            _ => libc::EPERM,
        };
        assert_eq!(errno, want, "{name} was not refused with {want}");
    }
}

/// runc's CVE-2016-9962 against `croft exec`: VPS root spins
/// `PTRACE_ATTACH` on the next pid while the host runs commands inside.
/// Before the fix, the command's process was born inside the VPS as host
/// uid 0, dumpable, without seccomp and holding the supervisor's
/// descriptors: the attacker caught it at every exec (540 of 540 in one
/// 15-second run here). Every exec'd
/// command may be caught once it runs (it is the VPS's own process then),
/// but never before it has the VPS's ids, seccomp and only its own fds.
#[test]
fn exec_cannot_be_caught_before_it_is_confined() {
    let host = attacker();
    install_probe(&host);
    let started = std::time::Instant::now();
    host.sh_ok("esc", "syscall_probe race 8 > /tmp/race.out 2>&1 &");
    let execs = 40;
    for i in 0..execs {
        // Every tenth runs long enough to be caught once confined, which
        // shows the attacker works.
        let command: &[&str] = if i % 10 == 0 { &["sleep", "0.3"] } else { &["true"] };
        let out = host.croft(&[&["exec", "esc", "--"], command].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // No polling by exec while the attacker runs: each would be one more
    // exec for it to catch.
    std::thread::sleep(Duration::from_secs(9).saturating_sub(started.elapsed()));
    host.wait_for("the attacker to finish", Duration::from_secs(10), || {
        host.sh_ok("esc", "cat /tmp/race.out").contains("race attached=")
    });
    let report = host.sh_ok("esc", "cat /tmp/race.out");
    let summary = report.lines().last().unwrap();
    assert!(
        !report.contains("won=true"),
        "the attacker caught an exec before it was confined, in {execs} execs:\n{report}"
    );
    assert!(
        !summary.contains("attached=0 "),
        "the attacker caught nothing, not even a running command: {report}"
    );
    eprintln!("{summary} over {execs} execs (each catch a confined command)");
}

/// A descriptor croftd inherited from whoever started it (here a host
/// pipe at fd 9) reached every VPS's init and every `croft exec` command.
/// Now nothing beyond stdio crosses: not croftd's, not the supervisor's.
#[test]
fn no_host_descriptor_crosses_into_a_vps() {
    use std::os::fd::AsRawFd;
    let mut host = Host::new();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    let pipe_inode = std::fs::metadata(format!("/proc/self/fd/{}", write_end.as_raw_fd()))
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    host.kill_daemon();
    host.start_daemon_inheriting(&[], Some(write_end.as_raw_fd()));
    drop(read_end);
    host.ok(&["launch", "busybox", "esc"]);
    // PID 1 (busybox init) holds the console as 0, 1 and 2, nothing else;
    // the shell of an exec holds its stdio and whatever it opens itself.
    let init_fds = host.sh_ok("esc", "ls /proc/1/fd | sort -n | tr '\\n' ' '");
    assert_eq!(init_fds.trim(), "0 1 2", "descriptors of the VPS's init");
    // The shell's own descriptors, listed by a child so that listing opens
    // none in the shell.
    let targets = host.sh_ok("esc", "ls -l /proc/1/fd/ /proc/$$/fd/");
    assert!(
        !targets.contains(&format!("pipe:[{pipe_inode}]")),
        "croftd's inherited pipe is open inside:\n{targets}"
    );
    let open: Vec<&str> = targets
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(l, _)| l.rsplit(' ').next().unwrap())
        .collect();
    assert!(open.len() >= 6, "{targets}");
    assert!(
        open.iter().all(|fd| ["0", "1", "2"].contains(fd)),
        "descriptors beyond stdio inside:\n{targets}"
    );
}

/// Every namespace a VPS made was counted against host root's
/// `user.max_user_namespaces`: one VPS holding ~96k user namespaces made
/// every launch on the host fail (ENOSPC) and a restart left it stopped.
/// Here the attacker takes every user namespace the kernel grants it, and
/// while it holds them host root, a new VPS and the attacker's own restart
/// must all still get theirs.
#[test]
fn one_vps_using_up_its_namespaces_leaves_the_host_and_other_vpses_theirs() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "esc", "--memory", "1GiB"]);
    install_probe(&host);
    host.sh_ok("esc", "syscall_probe userns > /tmp/userns 2>&1 &");
    let mut report = String::new();
    host.wait_for("the flood to stop", Duration::from_secs(120), || {
        report = host.sh_ok("esc", "cat /tmp/userns");
        report.contains("userns held=")
    });
    let field = |name: &str| -> u64 {
        report
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {report:?}"))
    };
    // It stopped at its budget (ENOSPC), not at a descriptor limit, and
    // that budget is the host's whole limit: the attack ran to the end.
    let host_limit: u64 = host_file("/proc/sys/user/max_user_namespaces")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(field("errno="), libc::ENOSPC as u64, "{report}");
    assert!(field("held=") + 100 > host_limit, "{report} of {host_limit}");

    let unshare = std::process::Command::new("unshare")
        .args(["--user", "true"])
        .output()
        .unwrap();
    assert!(
        unshare.status.success(),
        "host root got no user namespace: {unshare:?}"
    );
    host.ok(&["launch", "busybox", "other"]);
    assert_eq!(host.sh_ok("other", "echo up").trim(), "up");
    // The attacker's restart frees its namespaces and gets new ones.
    host.ok(&["restart", "esc"]);
    assert_eq!(host.sh_ok("esc", "echo up").trim(), "up");
}

/// The masks over /proc and /sys were made in the VPS's own user
/// namespace, so its root could unmount them (`umount /proc/timer_list`,
/// then read the host's timers) or mount a fresh, unmasked procfs or
/// sysfs. Now they are made by the host and locked by the kernel.
#[test]
fn the_masks_over_proc_and_sys_cannot_be_lifted() {
    let host = attacker();
    for target in [
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/cmdline",
        "/sys/firmware",
        "/sys/fs/btrfs",
    ] {
        refused(
            &host,
            &format!("unmounting the mask over {target}"),
            &format!("umount {target}"),
        );
        refused(
            &host,
            &format!("lazily unmounting the mask over {target}"),
            &format!("umount -l {target}"),
        );
    }
    assert_eq!(
        host.sh_ok("esc", "head -c 100 /proc/timer_list | wc -c").trim(),
        "0",
        "the host's timers are readable"
    );
    // A fresh procfs or sysfs would have no masks.
    refused(
        &host,
        "mounting a fresh procfs",
        "mkdir -p /tmp/p && mount -t proc proc /tmp/p",
    );
    refused(
        &host,
        "mounting a fresh sysfs",
        "mkdir -p /tmp/s && mount -t sysfs sysfs /tmp/s",
    );
    // Read-only stays read-only.
    refused(
        &host,
        "remounting /proc/sys writable",
        "mount -o remount,rw,bind /proc/sys",
    );
    refused(&host, "unmounting /proc/sys", "umount /proc/sys");
    // What the VPS mounts itself stays its own to unmount.
    host.sh_ok(
        "esc",
        "mkdir -p /tmp/t && mount -t tmpfs tmpfs /tmp/t && umount /tmp/t",
    );

    // A /proc on the disk that is a symlink (to /run, which a tmpfs then
    // covers) would have put proc, and every mask, out of sight, leaving
    // the kernel nothing locked to refuse a fresh procfs for: the start
    // is refused instead, and says why.
    host.ok(&["stop", "esc", "--force"]);
    let proc_dir = host.instance_dir("esc").join("rootfs/proc");
    std::fs::remove_dir(&proc_dir).unwrap();
    std::os::unix::fs::symlink("run", &proc_dir).unwrap();
    let err = host.fails(&["start", "esc"]);
    assert!(err.contains("/proc is not a directory"), "{err}");
    assert_eq!(host.info("esc").status, croft_api::Status::Stopped);
    std::fs::remove_file(&proc_dir).unwrap();
    std::fs::create_dir(&proc_dir).unwrap();
    host.ok(&["start", "esc"]);
    refused(
        &host,
        "mounting a fresh procfs",
        "mkdir -p /tmp/p && mount -t proc proc /tmp/p",
    );
}

/// The cgroup2 mount point and this process's cgroup in it.
fn own_cgroup2() -> Option<std::path::PathBuf> {
    let mountinfo = host_file("/proc/self/mountinfo");
    let mount = mountinfo
        .lines()
        .find(|l| l.split(" - ").nth(1).is_some_and(|fs| fs.starts_with("cgroup2 ")))?
        .split_whitespace()
        .nth(4)?
        .to_string();
    let own = host_file("/proc/self/cgroup")
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))?;
    Some(std::path::Path::new(&mount).join(own.trim_start_matches('/')))
}

/// On a cgroup v2 host the device allow-list is a BPF program attached
/// to each VPS's cgroup. This host is v1 (hybrid), but its cgroup2
/// hierarchy runs cgroup BPF programs all the same, so the program is
/// tried here on a cgroup of the test's own: host root in it (who may
/// open anything, /dev/mem included) opens only the allowed devices.
#[test]
fn the_v2_device_program_allows_only_the_allow_list() {
    common::require_root();
    let Some(parent) = own_cgroup2() else {
        panic!("no cgroup2 hierarchy mounted");
    };
    // Devices of both kinds, all present here, all of which host root
    // may open without the program.
    let allowed = ["/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"];
    let denied = ["/dev/loop-control", "/dev/kmsg", "/dev/loop0"];
    for device in allowed.iter().chain(&denied) {
        assert!(std::path::Path::new(device).exists(), "{device} is missing here");
    }
    let cgroup = common::ScratchCgroup::new(&parent, "devices");
    croft_host::cgroup::devices::v2_restrict(&cgroup.0, &[]).unwrap();
    // Opens each device (and reads nothing) and says how it went.
    let script: String = allowed
        .iter()
        .chain(&denied)
        .map(|d| format!("(: < {d}) 2>/dev/null && echo '{d} opened' || echo '{d} refused'; "))
        .collect();
    let mut command = std::process::Command::new("sh");
    command.args(["-c", &script]);
    common::join_cgroup_on_exec(&mut command, &cgroup.0.join("cgroup.procs"));
    let out = command.output().unwrap();
    let want: String = allowed
        .iter()
        .map(|d| format!("{d} opened\n"))
        .chain(denied.iter().map(|d| format!("{d} refused\n")))
        .collect();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{out:?}");
}

/// /proc/sys is read-only where the kernel would let VPS root write (a
/// sysctl of its own user namespace), and stays so; only the VPS's own
/// network sysctls are writable.
#[test]
fn proc_sys_is_read_only_but_for_the_vps_own_network_sysctls() {
    let host = attacker();
    let err = refused(
        &host,
        "user.max_user_namespaces through the read-only /proc/sys",
        "echo 100 > /proc/sys/user/max_user_namespaces",
    );
    assert!(err.contains("Read-only file system"), "{err}");
    refused(
        &host,
        "remounting /proc/sys writable",
        "mount -o remount,rw /proc/sys",
    );
    let mounts = host.sh_ok("esc", "cat /proc/self/mountinfo");
    let options = |point: &str| {
        mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(point))
            .and_then(|l| l.split(' ').nth(5))
            .unwrap_or_else(|| panic!("no mount at {point}: {mounts}"))
            .to_string()
    };
    assert!(
        options("/proc/sys").starts_with("ro,"),
        "{}",
        options("/proc/sys")
    );
    let net = options("/proc/sys/net");
    assert!(
        net.starts_with("rw,") && ["nosuid", "nodev", "noexec"].iter().all(|f| net.contains(f)),
        "{net}"
    );
    host.sh_ok("esc", "echo 1 > /proc/sys/net/ipv4/ip_forward");
}

/// With `features.nesting` the VPS has a procfs with nothing masked at
/// /dev/.croft/proc (container runtimes need one): it cannot be unmounted
/// or made writable, a fresh sysfs is still refused, and the host-wide
/// knobs stay closed through it and through a fresh proc.
#[test]
fn the_visible_proc_of_nesting_opens_no_host_knob() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "esc", "-c", "features.nesting=true"]);
    let core_pattern = host_file("/proc/sys/kernel/core_pattern");
    // Kernels without module support have no modprobe knob.
    let modprobe = std::fs::read_to_string("/proc/sys/kernel/modprobe").ok();
    host.sh_ok("esc", "test -e /dev/.croft/proc/self/status");
    for (what, script) in [
        ("unmounting it", "umount /dev/.croft/proc"),
        ("lazily unmounting it", "umount -l /dev/.croft/proc"),
        (
            "core_pattern through it",
            "echo '|/tmp/evil' > /dev/.croft/proc/sys/kernel/core_pattern",
        ),
        ("modprobe through it", "echo /tmp/evil > /dev/.croft/proc/sys/kernel/modprobe"),
        ("sysrq-trigger through it", "echo h > /dev/.croft/proc/sysrq-trigger"),
        ("the kernel's memory through it", "head -c 1 /dev/.croft/proc/kcore"),
        (
            "core_pattern through a fresh proc",
            "mkdir -p /tmp/p && mount -t proc proc /tmp/p && echo '|/tmp/evil' > /tmp/p/sys/kernel/core_pattern",
        ),
        ("a fresh sysfs", "mkdir -p /tmp/s && mount -t sysfs sysfs /tmp/s"),
    ] {
        refused(&host, what, script);
    }
    assert_eq!(host_file("/proc/sys/kernel/core_pattern"), core_pattern);
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/modprobe").ok(),
        modprobe
    );
    // Its pid directories are the VPS's own: no host process.
    let pids = host.sh_ok("esc", "ls /dev/.croft/proc | grep -c '^[0-9]'");
    assert!(pids.trim().parse::<u32>().unwrap() < 20, "{pids} pids visible");
}
