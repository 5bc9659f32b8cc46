//! End-to-end tests of the VPS runtime through the real croftd, croft and
//! croft-supervisor binaries. They need root; each test runs its own
//! daemon in its own network namespace (see common/mod.rs).
#![cfg(feature = "e2e")]

mod common;

use common::prometheus::parse_prometheus;
use common::{pid_alive, Host};
use croft_api::Status;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

fn launch(host: &Host, name: &str, extra: &[&str]) {
    let mut args = vec!["launch", "busybox", name];
    args.extend_from_slice(extra);
    host.ok(&args);
}

#[test]
fn init_is_pid_1_and_host_processes_are_invisible() {
    let host = Host::new();
    launch(&host, "iso1", &[]);
    let out = host.sh_ok("iso1", "cat /proc/1/comm; ls /proc | grep -c '^[0-9]'");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("init"));
    let visible: usize = lines.next().unwrap().parse().unwrap();
    // init, its askfirst shell, the exec'd sh and grep/ls: a handful, not
    // the hundreds of host processes.
    assert!(visible < 10, "{visible} processes visible inside");
    let host_pid = std::process::id();
    let out = host.sh(
        "iso1",
        &format!("test -e /proc/{host_pid}/status && cat /proc/{host_pid}/cmdline"),
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("vps-"),
        "host process visible inside"
    );
    assert_eq!(host.sh_ok("iso1", "hostname").trim(), "iso1");
    assert!(host.sh_ok("iso1", "cat /etc/hosts").contains("127.0.1.1 iso1"));
    // Commands start with no blocked and no ignored signals.
    let sigs = host.ok(&[
        "exec",
        "iso1",
        "--",
        "grep",
        "-E",
        "^Sig(Blk|Ign)",
        "/proc/self/status",
    ]);
    assert_eq!(sigs.lines().count(), 2, "{sigs}");
    for line in sigs.lines() {
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    // Its own loopback is up (flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING...).
    let flags = host.sh_ok("iso1", "cat /sys/class/net/lo/flags");
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down inside");
    // Its own interfaces only: loopback and its veth end, never the
    // host's (the bridge, other VPSes' veths).
    let links: Vec<String> = host
        .sh_ok("iso1", "ls /sys/class/net")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(links, ["eth0", "lo"], "host interfaces visible inside");
    // Changing the hostname inside does not touch the host.
    let before = nix::unistd::gethostname().unwrap();
    host.sh_ok("iso1", "hostname changed-inside");
    assert_eq!(nix::unistd::gethostname().unwrap(), before);
}

#[test]
fn root_inside_is_an_unprivileged_uid_outside_with_a_private_range() {
    let host = Host::new();
    launch(&host, "ids1", &[]);
    launch(&host, "ids2", &[]);
    let (base_a, base_b) = (u64::from(host.uid_base("ids1")), u64::from(host.uid_base("ids2")));
    assert!(base_a >= 65536 && base_b >= 65536);
    // The CLI shows the same host view as the API, and the plain view
    // keeps it out.
    let shown: croft_api::HostDetails = host.ok_json(&["info", "ids1", "--host", "--format", "json"]);
    assert_eq!(shown, host.details("ids1"));
    assert!(!host
        .ok(&["info", "ids1", "--format", "json"])
        .contains("uid_base"));
    assert!(
        base_a.abs_diff(base_b) >= 65536,
        "ranges overlap: {base_a} {base_b}"
    );
    let map = host.sh_ok("ids1", "cat /proc/self/uid_map");
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, ["0", &base_a.to_string(), "65536"]);
    assert_eq!(host.sh_ok("ids1", "id -u").trim(), "0");
    let init = host.init_pid("ids1");
    let meta = std::fs::metadata(format!("/proc/{init}")).unwrap();
    assert_eq!(
        meta.uid() as u64,
        base_a,
        "init runs as the VPS's base uid on the host"
    );
    let dir = std::fs::metadata(host.instance_dir("ids1")).unwrap();
    assert_eq!(
        (dir.uid() as u64, dir.mode() & 0o777),
        (base_a, 0o700),
        "VPS files open to others"
    );
    // The disk keeps the image's ids (0..65536) and the VPS sees it through
    // an idmapped mount: root's files are uid 0 on disk and inside, and
    // what root creates inside lands on disk as uid 0 too.
    let rootfs = host.instance_dir("ids1").join("rootfs");
    assert_eq!(std::fs::metadata(rootfs.join("etc/passwd")).unwrap().uid(), 0);
    host.sh_ok("ids1", "touch /root/made-inside && chown 1000:1000 /tmp");
    assert_eq!(host.sh_ok("ids1", "stat -c %u /root/made-inside").trim(), "0");
    assert_eq!(
        std::fs::metadata(rootfs.join("root/made-inside")).unwrap().uid(),
        0
    );
    assert_eq!(std::fs::metadata(rootfs.join("tmp")).unwrap().uid(), 1000);
}

#[test]
fn memory_hog_is_oom_killed_inside_and_the_vps_survives() {
    let host = Host::new();
    launch(&host, "mem1", &["--memory", "32MiB"]);
    let limit =
        std::fs::read_to_string(host.vps_cgroup("memory", "mem1").join("memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (32u64 << 20).to_string());
    let out = host.sh(
        "mem1",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived ${#x}",
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("survived 200000000"),
        "the hog was not stopped"
    );
    let info = host.info("mem1");
    let init = host.init_pid("mem1");
    assert!(
        info.usage.as_ref().unwrap().oom_kills >= 1,
        "no OOM kill recorded: {info:?}"
    );
    assert_eq!(info.status, Status::Running);
    assert_eq!(host.sh_ok("mem1", "echo alive").trim(), "alive");
    // Live change, no restart.
    host.ok(&["config", "set", "mem1", "limits.memory=48MiB"]);
    let limit =
        std::fs::read_to_string(host.vps_cgroup("memory", "mem1").join("memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
    assert_eq!(host.init_pid("mem1"), init, "VPS was restarted");
    // A limit below what it holds (a file in /dev/shm cannot be reclaimed
    // without swap) is refused in the VPS's words, and nothing changes.
    host.sh_ok(
        "mem1",
        "dd if=/dev/zero of=/dev/shm/held bs=1M count=12 2>/dev/null",
    );
    let err = host.fails(&["config", "set", "mem1", "limits.memory=4MiB"]);
    assert!(
        err.contains("mem1 uses ") && err.contains("MiB, more than 4 MiB"),
        "{err}"
    );
    assert!(!err.contains("/sys/fs/cgroup") && !err.contains("busy"), "{err}");
    let limit =
        std::fs::read_to_string(host.vps_cgroup("memory", "mem1").join("memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
    assert!(host
        .ok(&["config", "show", "mem1"])
        .contains("limits.memory=48MiB"));
}

/// /dev/shm and /run were sized from the host's RAM: filling them (anyone
/// may write /dev/shm) took more than the VPS's memory, the OOM killer
/// killed every process, init last, and the VPS stayed down. Now they are
/// sized from its limit, and a VPS whose init the OOM killer kills anyway
/// is restarted and says why.
#[test]
fn filling_ram_disks_cannot_stop_a_vps_and_an_oom_killed_init_restarts() {
    let host = Host::new();
    launch(&host, "shm1", &["--memory", "64MiB"]);
    let init = host.init_pid("shm1");
    // busybox df -k: name, size in KiB, used, available, use%, mount point.
    let sizes: Vec<(String, u64)> = host
        .sh_ok("shm1", "df -k /dev/shm /run")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[5].to_string(), f[1].parse().unwrap())
        })
        .collect();
    // Half and a fifth of the limit, in whole 4 KiB pages.
    let run_kib = ((64 << 10) / 5u64).div_ceil(4) * 4;
    assert_eq!(
        sizes,
        [("/dev/shm".to_string(), 32 << 10), ("/run".to_string(), run_kib)]
    );
    for dir in ["/dev/shm", "/run"] {
        let out = host.sh("shm1", &format!("dd if=/dev/zero of={dir}/fill bs=1M count=200"));
        assert!(!out.status.success(), "{dir} took 200 MiB");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No space left"),
            "{out:?}"
        );
    }
    assert_eq!(host.sh_ok("shm1", "echo alive").trim(), "alive");
    assert_eq!(host.init_pid("shm1"), init, "the VPS restarted");

    // Its init made the OOM killer's first choice, then memory runs out.
    let _ = host.sh(
        "shm1",
        "echo 1000 > /proc/1/oom_score_adj; x=$(head -c 200000000 /dev/zero | tr '\\0' a)",
    );
    host.wait_for("the VPS to come back", Duration::from_secs(20), || {
        host.info("shm1").status == Status::Running && host.details("shm1").init_pid != Some(init)
    });
    let info = host.info("shm1");
    assert!(
        info.last_exit
            .as_deref()
            .unwrap_or_default()
            .contains("OOM killer"),
        "{info:?}"
    );
    assert_eq!(
        host.sh_ok("shm1", "ls /dev/shm /run | grep -c fill || true")
            .trim(),
        "0"
    );
    assert_eq!(host.sh_ok("shm1", "echo alive").trim(), "alive");
}

#[test]
fn fork_bomb_stops_at_the_pids_limit_and_the_limit_changes_live() {
    let host = Host::new();
    launch(&host, "bomb1", &["--processes", "40"]);
    // Forks far more processes than allowed; the shell gives up at the
    // first refused fork, and what it started stays.
    let out = host.sh(
        "bomb1",
        "for i in $(seq 1 200); do sleep 100 >/dev/null 2>&1 & done 2>&1; echo unreachable",
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("unreachable"),
        "200 forks all succeeded"
    );
    let pids = host.vps_cgroup("pids", "bomb1");
    host.wait_for("the bomb to fill the limit", Duration::from_secs(30), || {
        std::fs::read_to_string(pids.join("pids.current"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
            >= 38
    });
    std::thread::sleep(Duration::from_millis(300));
    let current: u64 = std::fs::read_to_string(pids.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 40, "{current} processes despite a limit of 40");
    // The host is unaffected and the VPS can be reset.
    host.ok(&["restart", "bomb1", "--force"]);
    host.ok(&["config", "set", "bomb1", "limits.processes=10"]);
    assert_eq!(
        std::fs::read_to_string(pids.join("pids.max")).unwrap().trim(),
        "10"
    );
    let out = host.sh(
        "bomb1",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done; wait",
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("can't fork"),
        "limit of 10 not enforced"
    );
}

#[test]
fn cpu_usage_stays_near_the_quota() {
    let host = Host::new();
    launch(&host, "cpu1", &["--cpu", "0.5"]);
    let quota = std::fs::read_to_string(host.vps_cgroup("cpu", "cpu1").join("cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "50000");
    let cpu_usage_ns = || host.info("cpu1").usage.unwrap().cpu_usage_ns;
    let before = cpu_usage_ns();
    let start = std::time::Instant::now();
    // Two busy loops would use two CPUs unconstrained.
    host.sh(
        "cpu1",
        "timeout 3 sh -c 'while :; do :; done' & timeout 3 sh -c 'while :; do :; done'; wait",
    );
    let wall = start.elapsed().as_secs_f64();
    let used = (cpu_usage_ns() - before) as f64 / 1e9;
    let share = used / wall;
    assert!(
        share < 0.7,
        "used {used:.2}s of CPU in {wall:.2}s: {share:.2} CPUs with a 0.5 quota"
    );
    assert!(share > 0.25, "used only {share:.2} CPUs: the loops did not run");
    // Weight and quota change live; unsetting the quota lifts it.
    host.ok(&["config", "set", "cpu1", "limits.cpu.weight=200"]);
    let cpu = host.vps_cgroup("cpu", "cpu1");
    assert_eq!(
        std::fs::read_to_string(cpu.join("cpu.shares")).unwrap().trim(),
        "2048"
    );
    host.ok(&["config", "unset", "cpu1", "limits.cpu"]);
    assert_eq!(
        std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
            .unwrap()
            .trim(),
        "-1"
    );
    assert_eq!(
        host.ok(&["config", "show", "cpu1"]).trim(),
        "limits.cpu.weight=200"
    );
}

#[test]
fn two_vpses_cannot_see_each_others_processes_or_files() {
    let host = Host::new();
    launch(&host, "left", &[]);
    launch(&host, "right", &[]);
    host.sh_ok(
        "left",
        "echo s3cret > /root/secret; (sleep 31337 >/dev/null 2>&1 &) ; true",
    );
    let out = host.sh_ok("right", "ps; cat /root/secret 2>&1; ls /proc");
    assert!(!out.contains("31337"), "process of left visible in right: {out}");
    assert!(!out.contains("s3cret"), "file of left visible in right");
    assert!(host.sh_ok("left", "ps").contains("31337"));
    // The neighbour's rootfs is not reachable by path from inside.
    let left_root = host.instance_dir("left").join("rootfs/root/secret");
    assert!(!host
        .sh("right", &format!("cat {}", left_root.display()))
        .status
        .success());
}

#[test]
fn vps_survives_a_daemon_crash_and_the_restarted_daemon_reattaches() {
    let mut host = Host::new();
    launch(&host, "crash1", &[]);
    launch(&host, "crash2", &[]);
    let init1 = host.init_pid("crash1");
    let init2 = host.init_pid("crash2");
    host.kill_daemon();
    assert!(pid_alive(init1), "VPS died with croftd");
    // While croftd is down, crash2's init dies.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init2),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let sup2 = host.run_dir().join("vps/crash2/supervisor.pid");
    host.wait_for("crash2's supervisor to exit", Duration::from_secs(10), || {
        !sup2.exists()
    });
    host.start_daemon();
    let info = host.info("crash1");
    assert_eq!(info.status, Status::Running);
    assert_eq!(host.details("crash1").init_pid.unwrap(), init1);
    assert_eq!(host.sh_ok("crash1", "hostname").trim(), "crash1");
    let info2 = host.info("crash2");
    assert_eq!(info2.status, Status::Stopped);
    assert!(
        info2.last_exit.as_deref().unwrap().contains("signal 9"),
        "{info2:?}"
    );
    host.ok(&["stop", "crash1"]);
    assert!(!pid_alive(init1));
    // Exits while croftd runs are noticed too (the watch connection).
    host.ok(&["start", "crash1"]);
    let init = host.init_pid("crash1");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    host.wait_for("croftd to notice the exit", Duration::from_secs(10), || {
        host.info("crash1").status == Status::Stopped
    });
}

#[test]
fn autostart_vpses_come_back_after_a_host_reboot() {
    let mut host = Host::new();
    launch(&host, "auto1", &["-c", "boot.autostart=true"]);
    launch(&host, "manual1", &[]);
    let inits = [host.init_pid("auto1"), host.init_pid("manual1")];
    // Simulated host reboot: everything dies and /run is emptied.
    host.kill_daemon();
    for pid in inits {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    for name in ["auto1", "manual1"] {
        let pidfile = host.run_dir().join(format!("vps/{name}/supervisor.pid"));
        host.wait_for("supervisors to exit", Duration::from_secs(10), || {
            !pidfile.exists()
        });
    }
    host.stop_lxcfs();
    std::fs::remove_dir_all(host.run_dir()).unwrap();
    host.start_daemon();
    host.wait_for("auto1 to start", Duration::from_secs(20), || {
        host.info("auto1").status == Status::Running
    });
    assert_eq!(host.info("manual1").status, Status::Stopped);
    assert_eq!(host.sh_ok("auto1", "hostname").trim(), "auto1");
}

#[test]
fn stop_is_clean_force_kills_and_delete_removes_everything() {
    let host = Host::new();
    launch(&host, "life1", &[]);
    host.ok(&["stop", "life1"]);
    assert_eq!(host.info("life1").last_exit.as_deref(), Some("stopped"));
    // Stop asked init to power off, not to reboot.
    assert!(host
        .ok(&["console", "life1", "--show-log"])
        .contains("Requesting system poweroff"));
    assert!(host.fails(&["stop", "life1"]).contains("not running"));
    host.ok(&["start", "life1"]);
    assert!(host.fails(&["start", "life1"]).contains("not stopped"));
    host.ok(&["stop", "life1", "--force"]);
    assert_eq!(host.info("life1").last_exit.as_deref(), Some("stopped (killed)"));
    host.ok(&["start", "life1"]);
    assert!(host.fails(&["delete", "life1"]).contains("force the delete"));
    host.ok(&["delete", "life1", "--force"]);
    host.assert_no_trace_of("life1");
    assert!(host.ok(&["list", "--format", "json"]).trim() == "[]");
}

#[test]
fn a_failed_launch_leaves_nothing_behind() {
    let host = Host::with_config("supervisor = \"/nonexistent/croft-supervisor\"");
    let err = host.fails(&["launch", "busybox", "broken1", "--memory", "64MiB"]);
    assert!(err.contains("broken1"), "{err}");
    host.assert_no_trace_of("broken1");
    assert_eq!(host.ok(&["list", "--format", "json"]).trim(), "[]");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let host = Host::new();
    launch(&host, "good1", &["--memory", "64MiB"]);
    for (args, expect) in [
        (vec!["launch", "busybox", "../x"], "name"),
        (vec!["launch", "busybox", "Web1"], "lowercase"),
        (vec!["launch", "busybox", &"a".repeat(70)], "70 characters long"),
        (vec!["launch", "nope", "x1"], "unknown image"),
        (
            vec!["launch", "busybox", "x1", "--memory", "lots"],
            "invalid size",
        ),
        (
            vec!["launch", "busybox", "x1", "--memory", "1KiB"],
            "out of range",
        ),
        (vec!["launch", "busybox", "x1", "--cpu", "0"], "out of range"),
        (
            vec!["launch", "busybox", "x1", "--processes", "-1"],
            "unexpected argument",
        ),
        (
            vec!["launch", "busybox", "x1", "--processes", "lots"],
            "limits.processes",
        ),
        (vec!["launch", "busybox", "good1"], "already exists"),
        (
            vec!["config", "set", "good1", "features.nesting=maybe"],
            "expected true or false",
        ),
        (vec!["stop", "nosuch"], "not found"),
        (vec!["exec", "nosuch", "--", "true"], "not found"),
        (vec!["info", "../etc"], "name"),
        (
            vec!["config", "set", "good1", "limits.memory=huge"],
            "invalid size",
        ),
        (
            vec!["config", "set", "good1", "limits.nope=1"],
            "unknown configuration key",
        ),
        (vec!["config", "set", "good1", "novalue"], "key=value"),
        (vec!["exec", "good1"], "<COMMAND>"),
    ] {
        let err = host.fails(&args);
        assert!(
            err.contains(expect),
            "croft {args:?}: {err:?} does not mention {expect:?}"
        );
    }
    assert_eq!(
        host.info("good1").config.get("limits.memory").map(String::as_str),
        Some("64MiB")
    );
    let list = host.list();
    assert_eq!(list.len(), 1, "bad input created something: {list:?}");

    // The API answers malformed requests with a 4xx JSON error.
    for (method, path, body, code) in [
        ("POST", "/1.0/instances", "{not json", 400),
        (
            "POST",
            "/1.0/instances",
            r#"{"name": 5, "image": "busybox"}"#,
            422,
        ),
        (
            "POST",
            "/1.0/instances",
            r#"{"name": "x2", "image": "busybox", "bogus": 1}"#,
            422,
        ),
        (
            "POST",
            "/1.0/instances",
            r#"{"name": "x/../2", "image": "busybox"}"#,
            400,
        ),
        (
            "POST",
            "/1.0/instances/good1/state",
            r#"{"action": "explode"}"#,
            422,
        ),
        (
            "POST",
            "/1.0/instances/good1/state",
            r#"{"action": "stop", "timeout": 0}"#,
            400,
        ),
        ("GET", "/1.0/instances/..", "", 400),
        ("GET", "/1.0/nothing-here", "", 404),
        ("PUT", "/1.0/instances", "", 405),
        ("GET", "/1.0/jobs/does-not-exist", "", 404),
    ] {
        let (status, json) = host.api_err(method, path, Some(body));
        assert_eq!(status, code, "{method} {path} {body}: {json:?}");
        assert!(!json.error.is_empty(), "{method} {path}: no JSON error: {json:?}");
    }
    // A body over the limit is refused.
    let big = format!(r#"{{"name":"big","image":"{}"}}"#, "x".repeat(2 << 20));
    let (status, json) = host.api_err("POST", "/1.0/instances", Some(&big));
    assert_eq!(status, 413, "{json:?}");

    assert_eq!(host.info("good1").status, Status::Running);
}

#[test]
fn concurrent_operations_on_one_vps_are_serialized() {
    let host = Host::new();
    launch(&host, "conc1", &[]);
    let socket = host.socket.clone();
    let run = move |args: &'static [&'static str]| {
        let socket = socket.clone();
        std::thread::spawn(move || {
            std::process::Command::new(common::bin_dir().join("croft"))
                .arg("--socket")
                .arg(socket)
                .args(args)
                .output()
                .unwrap()
        })
    };
    let a = run(&["stop", "conc1"]);
    let b = run(&["stop", "conc1"]);
    let results = [a.join().unwrap(), b.join().unwrap()];
    let ok = results.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one stop must win: {results:?}");
    let c = run(&["launch", "busybox", "conc2"]);
    let d = run(&["launch", "busybox", "conc2"]);
    let results = [c.join().unwrap(), d.join().unwrap()];
    assert_eq!(
        results.iter().filter(|o| o.status.success()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(host.info("conc2").status, Status::Running);
    // Many launches at once all succeed, each with its own id range and
    // address (no "database is locked" under contention).
    let names: Vec<String> = (0..8).map(|i| format!("many{i}")).collect();
    let launches: Vec<_> = names
        .iter()
        .map(|n| {
            let (socket, n) = (host.socket.clone(), n.clone());
            std::thread::spawn(move || {
                std::process::Command::new(common::bin_dir().join("croft"))
                    .arg("--socket")
                    .arg(socket)
                    .args(["launch", "busybox", &n])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for out in launches.into_iter().map(|t| t.join().unwrap()) {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut ranges = std::collections::BTreeSet::new();
    let mut addresses = std::collections::BTreeSet::new();
    for n in &names {
        let i = host.info(n);
        assert_eq!(i.status, Status::Running, "{n}");
        ranges.insert(host.uid_base(n));
        addresses.insert(i.nic.unwrap().ipv4.unwrap());
    }
    assert_eq!((ranges.len(), addresses.len()), (8, 8));
    // Their ports' rules went in together (one nft run for several
    // launches); a port without its rules drops all it sends.
    for n in &names {
        let out = host.sh(n, "ping -c1 -W2 10.87.0.1");
        assert!(out.status.success(), "{n} cannot reach the gateway: {out:?}");
    }
}

#[test]
fn a_guest_ignoring_shutdown_is_killed_after_the_timeout_and_a_dying_init_is_reported() {
    let host = Host::new();
    launch(&host, "stub1", &[]);
    // Root inside may replace its own init: one that ignores SIGTERM.
    host.sh_ok(
        "stub1",
        "rm /sbin/init && printf '#!/bin/sh\\ntrap \"\" TERM\\nwhile :; do sleep 1; done\\n' > /sbin/init && chmod +x /sbin/init",
    );
    host.ok(&["restart", "stub1", "--force"]);
    let start = std::time::Instant::now();
    host.ok(&["stop", "stub1", "--timeout", "2"]);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "stop returned after {took:?}, before the timeout"
    );
    assert_eq!(host.info("stub1").last_exit.as_deref(), Some("stopped (killed)"));
    // An init that exits at once: the VPS ends up stopped with the reason.
    let rootfs = host.instance_dir("stub1").join("rootfs");
    std::fs::write(rootfs.join("sbin/init"), "#!/bin/sh\nexit 3\n").unwrap();
    host.ok(&["start", "stub1"]);
    host.wait_for("the exit to be recorded", Duration::from_secs(10), || {
        host.info("stub1").status == Status::Stopped
    });
    assert_eq!(
        host.info("stub1").last_exit.as_deref(),
        Some("init exited with status 3")
    );
}

#[test]
fn ssh_keys_and_user_data_are_checked_and_keys_land_in_roots_authorized_keys() {
    let host = Host::new();
    let key = host.dir.join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tester@croft", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (Debian's openssh-client)");
    assert!(made.success());
    let pubkey = host.dir.join("id_ed25519.pub");
    host.ok(&["launch", "busybox", "k1", "--ssh-key", pubkey.to_str().unwrap()]);
    let wanted = std::fs::read_to_string(&pubkey).unwrap();
    let inside = host.sh_ok(
        "k1",
        "cat /root/.ssh/authorized_keys; stat -c %a /root/.ssh /root/.ssh/authorized_keys",
    );
    assert!(inside.contains(wanted.trim()), "{inside}");
    assert!(inside.contains("700\n600"), "{inside}");
    assert_eq!(host.info("k1").ssh_keys[0], wanted.trim());
    // The list shows a VPS as info does (it showed no keys and no disk).
    let k1 = host.listed("k1");
    let info = host.info("k1");
    assert_eq!(k1.ssh_keys, info.ssh_keys, "{k1:?}");
    assert_eq!(k1.user_data, info.user_data, "{k1:?}");
    assert!(k1.disk_bytes.is_some_and(|b| b > 0), "{k1:?}");
    assert_eq!(k1.firewall, info.firewall, "{k1:?}");

    let garbage = host.dir.join("garbage.pub");
    std::fs::write(&garbage, "this is not a key\n").unwrap();
    let script = host.dir.join("ud.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let no_shebang = host.dir.join("noshebang.sh");
    std::fs::write(&no_shebang, "echo hi\n").unwrap();
    for (args, expect) in [
        (vec!["--ssh-key", "/nonexistent.pub"], "cannot read SSH key"),
        (
            vec!["--ssh-key", garbage.to_str().unwrap()],
            "not an OpenSSH public key",
        ),
        (vec!["--user-data", no_shebang.to_str().unwrap()], "#!"),
        (vec!["--user-data", "/nonexistent.sh"], "cannot read user-data"),
        // busybox has no systemd to run it at first boot.
        (vec!["--user-data", script.to_str().unwrap()], "systemd"),
    ] {
        let mut cmd = vec!["launch", "busybox", "k2"];
        cmd.extend(args.iter());
        let err = host.fails(&cmd);
        assert!(err.contains(expect), "{args:?}: {err}");
        host.assert_no_trace_of("k2");
    }
    let (code, body) = host.api_err(
        "POST",
        "/1.0/instances",
        Some(r#"{"name":"k3","image":"busybox","ssh_keys":["command=\"sh\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"]}"#),
    );
    assert_eq!(code, 400, "{body:?}");
    host.assert_no_trace_of("k3");
}

/// Removes a file when dropped, also when the test fails.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn every_new_vps_gets_the_keys_of_croftds_ssh_key_files() {
    common::require_root();
    let key = TempFile(std::env::temp_dir().join(format!("croft-test-key-{}.pub", std::process::id())));
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "admin@croft", "-f"])
        .arg(key.0.with_extension(""))
        .status()
        .unwrap();
    let _private = TempFile(key.0.with_extension(""));
    assert!(made.success());
    let host = Host::with_config(&format!("ssh_key_files = [\"{}\"]", key.0.display()));
    let pubkey = host.dir.join("own.pub");
    std::fs::copy(&key.0, host.dir.join("admin.pub")).unwrap();
    let own = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "tenant@croft", "-f"])
        .arg(host.dir.join("own"))
        .status()
        .unwrap();
    assert!(own.success());
    host.ok(&["launch", "busybox", "dk1", "--ssh-key", pubkey.to_str().unwrap()]);
    let keys = host.sh_ok("dk1", "cat /root/.ssh/authorized_keys");
    assert!(keys.contains("admin@croft"), "the default key is missing: {keys}");
    assert!(keys.contains("tenant@croft"), "the launch key is missing: {keys}");
    assert_eq!(host.info("dk1").ssh_keys.len(), 2);
}

#[test]
fn proc_inside_shows_the_vps_limits_and_follows_a_live_change() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "p1", "--memory", "256MiB"]);
    // (busybox's free asks sysinfo(2), which no container runtime can
    // change; procps' free reads /proc/meminfo: see the Debian test.)
    let total_mib = |host: &Host| -> u64 {
        let line = host.sh_ok("p1", "grep MemTotal /proc/meminfo");
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024
    };
    assert_eq!(
        total_mib(&host),
        256,
        "/proc/meminfo inside does not show the limit"
    );
    host.ok(&["config", "set", "p1", "limits.memory=512MiB"]);
    assert_eq!(
        total_mib(&host),
        512,
        "/proc/meminfo did not follow the live change"
    );
    // Its uptime is its own, not the host's.
    let up: f64 = host
        .sh_ok("p1", "cut -d' ' -f1 /proc/uptime")
        .trim()
        .parse()
        .unwrap();
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(up < 120.0 && up < host_up, "uptime inside {up}, host {host_up}");
    // The host's own view is untouched.
    let host_total = std::fs::read_to_string("/proc/meminfo").unwrap();
    assert!(!host_total.lines().next().unwrap().contains(" 524288 kB"));

    // A CPU quota shows as that many CPUs: nproc (the CPUs it may run on),
    // /proc/cpuinfo and the online CPUs (lxcfs); two VPSes of one CPU each
    // get different CPUs; lifting the quota gives them all back.
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    if host_cpus < 2 {
        eprintln!("one host CPU: nothing to pin");
        return;
    }
    let cpus_seen = |name: &str| -> (String, String, String, String) {
        let out = host.sh_ok(
            name,
            // (`read`, not busybox cat: its sendfile sees a stale page
            // cache of the lxcfs file after a change.)
            "nproc; grep -c ^processor /proc/cpuinfo; read l < /sys/devices/system/cpu/online; echo $l; grep Cpus_allowed_list /proc/self/status | cut -f2",
        );
        let v: Vec<String> = out.lines().map(str::to_string).collect();
        assert_eq!(v.len(), 4, "{out}");
        (v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone())
    };
    host.ok(&["config", "set", "p1", "limits.cpu=1"]);
    let (nproc, cpuinfo, online, allowed1) = cpus_seen("p1");
    assert_eq!(
        (nproc.as_str(), cpuinfo.as_str()),
        ("1", "1"),
        "{online} {allowed1}"
    );
    assert_eq!(online, allowed1, "online CPUs are not the pinned one");
    host.ok(&["launch", "busybox", "p2", "--cpu", "0.5"]);
    let (nproc, _, _, allowed2) = cpus_seen("p2");
    assert_eq!(nproc, "1");
    assert_ne!(
        allowed1, allowed2,
        "two one-CPU VPSes share a CPU while another is idle"
    );
    host.ok(&["config", "unset", "p1", "limits.cpu"]);
    let (nproc, cpuinfo, _, _) = cpus_seen("p1");
    assert_eq!(nproc, host_cpus.to_string());
    assert_eq!(cpuinfo, host_cpus.to_string());
    host.ok(&["delete", "--force", "p2"]);
}

/// TUN and FUSE, the features a customer asks for: absent by default,
/// there from the next start once switched on, as OpenVPN or sshfs would
/// use them (the probe makes a TUN interface, and mounts and serves a FUSE
/// filesystem it stats through).
#[test]
fn tun_and_fuse_work_once_switched_on_and_not_before() {
    let host = Host::new();
    launch(&host, "feat1", &[]);
    let probe = common::bin_dir().join("examples/device_probe");
    assert!(
        probe.exists(),
        "build the probe first: cargo build -p croft --examples"
    );
    let rootfs = host.instance_dir("feat1").join("rootfs");
    common::install_host_binary(&rootfs, &probe, "/usr/bin/device_probe");
    let tun = "timeout 10 device_probe tun";
    let fuse = "mkdir -p /mnt/f && timeout 10 device_probe fuse /mnt/f";
    let off = host.sh("feat1", tun);
    assert!(!off.status.success(), "TUN without features.tun");
    assert!(String::from_utf8_lossy(&off.stdout).contains("open /dev/net/tun"));
    assert!(
        !host.sh("feat1", fuse).status.success(),
        "FUSE without features.fuse"
    );
    host.ok(&[
        "config",
        "set",
        "feat1",
        "features.tun=true",
        "features.fuse=true",
    ]);
    // From the next start, as the key says.
    assert!(!host.sh("feat1", tun).status.success(), "switched on live");
    host.ok(&["restart", "feat1"]);
    assert_eq!(host.sh_ok("feat1", tun).trim(), "tun ok");
    assert_eq!(host.sh_ok("feat1", fuse).trim(), "fuse size=4242");
    // Switched off again: gone at the next start, the device too.
    host.ok(&[
        "config",
        "set",
        "feat1",
        "features.tun=false",
        "features.fuse=false",
    ]);
    host.ok(&["restart", "feat1"]);
    assert!(
        !host.sh("feat1", tun).status.success(),
        "TUN after switching it off"
    );
    assert!(
        !host.sh("feat1", fuse).status.success(),
        "FUSE after switching it off"
    );
    assert!(
        !host.sh("feat1", "ls /dev/net/tun /dev/fuse").status.success(),
        "the nodes stayed"
    );
}

#[test]
fn a_renamed_vps_keeps_its_disk_and_boots_with_its_new_hostname() {
    let host = Host::new();
    launch(&host, "old1", &[]);
    host.sh_ok("old1", "echo kept > /root/note");
    let err = host.fails(&["rename", "old1", "new1"]);
    assert!(err.contains("stop it to rename it"), "{err}");
    host.ok(&["stop", "old1"]);
    host.ok(&["rename", "old1", "new1"]);
    assert!(host.fails(&["info", "old1"]).contains("not found"));
    host.ok(&["start", "new1"]);
    assert_eq!(host.sh_ok("new1", "hostname").trim(), "new1");
    assert_eq!(host.sh_ok("new1", "cat /root/note").trim(), "kept");
    // The old name can be used again.
    launch(&host, "old1", &[]);
    assert_eq!(host.sh_ok("old1", "hostname").trim(), "old1");
}

#[test]
fn ssh_keys_are_added_and_removed_on_the_disk_at_once_leaving_keys_put_there_by_hand() {
    let host = Host::new();
    launch(&host, "key1", &[]);
    let key = host.dir.join("k1");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "added-later", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let pubkey = host.dir.join("k1.pub");
    let text = std::fs::read_to_string(&pubkey).unwrap();
    host.sh_ok("key1", "mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHandMade hand' >> /root/.ssh/authorized_keys");
    host.ok(&["ssh-key", "add", "key1", pubkey.to_str().unwrap()]);
    let file = host.sh_ok("key1", "cat /root/.ssh/authorized_keys");
    assert!(file.contains(text.trim()) && file.contains("hand"), "{file}");
    let err = host.fails(&["ssh-key", "add", "key1", pubkey.to_str().unwrap()]);
    assert!(err.contains("has that key already"), "{err}");
    let junk = host.dir.join("junk.pub");
    std::fs::write(&junk, "not a key\n").unwrap();
    assert!(host
        .fails(&["ssh-key", "add", "key1", junk.to_str().unwrap()])
        .contains("SSH key"));
    assert!(host
        .fails(&["ssh-key", "remove", "key1", "5"])
        .contains("not found"));
    // Stopped too: the disk is written.
    host.ok(&["stop", "key1"]);
    host.ok(&["ssh-key", "remove", "key1", "1"]);
    host.ok(&["start", "key1"]);
    let file = host.sh_ok("key1", "cat /root/.ssh/authorized_keys");
    assert!(!file.contains("added-later") && file.contains("hand"), "{file}");
    assert_eq!(host.ok(&["ssh-key", "list", "key1"]).trim(), "");
    // VPS root points /root/.ssh at /etc: the key lands in the VPS's own
    // /etc (written from inside), never in the host's.
    host.sh_ok("key1", "rm -rf /root/.ssh && ln -s /etc /root/.ssh");
    host.ok(&["ssh-key", "add", "key1", pubkey.to_str().unwrap()]);
    assert!(host
        .sh_ok("key1", "cat /etc/authorized_keys")
        .contains("added-later"));
    assert!(
        !std::path::Path::new("/etc/authorized_keys").exists(),
        "written on the host"
    );
}

/// Whether `hash` (a /etc/shadow field) is `password`'s, as login checks
/// it (the host's crypt(3), through Python).
fn shadow_matches(hash: &str, password: &str) -> bool {
    let out = std::process::Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
        ])
        .args([password, hash])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "True"
}

#[test]
fn root_password_is_set_on_the_disk_given_or_generated_and_shown_once() {
    let host = Host::new();
    launch(&host, "pw1", &[]);
    let root_hash = |host: &Host| {
        let shadow = host.sh_ok("pw1", "grep '^root:' /etc/shadow");
        shadow.split(':').nth(1).unwrap().to_string()
    };
    let out = host.ok(&["password", "pw1", "--generate"]);
    let generated = out.trim().rsplit(' ').next().unwrap().to_string();
    assert!(out.contains("shown once") && generated.len() == 20, "{out}");
    let hash = root_hash(&host);
    assert!(hash.starts_with("$6$"), "{hash}");
    assert!(
        shadow_matches(&hash, &generated),
        "the generated password does not open it"
    );
    // Typed (here on stdin), for a stopped VPS too.
    host.ok(&["stop", "pw1"]);
    let mut child = std::process::Command::new(common::bin_dir().join("croft"))
        .args(["--socket", host.socket.to_str().unwrap(), "password", "pw1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"correct horse 42\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    host.ok(&["start", "pw1"]);
    let hash = root_hash(&host);
    assert!(shadow_matches(&hash, "correct horse 42"));
    assert!(!shadow_matches(&hash, &generated));
    // Too short: refused, nothing changed.
    let err = host.fails(&["password", "pw1"]);
    assert!(err.contains("8 to 256 characters"), "{err}");
    assert_eq!(root_hash(&host), hash);
}

/// Disk I/O limits, set live and measured from inside with direct I/O
/// (busybox dd): they hold reads, direct writes and the writes a VPS's own
/// fsync pushes out, on the pool's device; on this cgroup-v1 host buffered
/// writes the kernel writes back later are not held, as `croft info`
/// says. Lifted, the VPS is fast again; bad values change nothing.
#[test]
fn disk_io_limits_hold_what_the_host_can_enforce_and_info_says_what_that_is() {
    // What it measures is cgroup v1's (blkio); a v2 host holds buffered
    // writes too, which this test would call a failure.
    if !std::path::Path::new("/sys/fs/cgroup/blkio").is_dir() {
        eprintln!("not a cgroup v1 host with blkio: this test is for one");
        return;
    }
    let host = Host::with_config("storage_size = \"1GiB\"");
    launch(&host, "io1", &[]);
    // 16 MiB in 1 MiB blocks: at 4 MB/s that takes 4.2 s; the host does
    // it in a fraction of a second.
    let timed = |script: &str| {
        let start = std::time::Instant::now();
        host.sh_ok("io1", script);
        start.elapsed()
    };
    let write_direct = "dd if=/dev/zero of=/root/f bs=1M count=16 oflag=direct 2>/dev/null";
    let read_direct = "dd if=/root/f of=/dev/null bs=1M iflag=direct 2>/dev/null";
    let fast = Duration::from_millis(2500);
    let held = Duration::from_secs(3);
    let free = timed(write_direct);
    assert!(free < fast, "an unlimited direct write took {free:?}");
    assert!(host.info("io1").disk_io_enforced.is_none());

    host.ok(&[
        "config",
        "set",
        "io1",
        "limits.disk.write=4MB",
        "limits.disk.read=4MB",
    ]);
    // The limit is on the pool's device, in the VPS's own blkio cgroup.
    let pool_device = {
        let out = std::process::Command::new("findmnt")
            .args(["-n", "-o", "MAJ:MIN,SOURCE", "--target"])
            .arg(host.pool_dir())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let source = text.split_whitespace().nth(1).unwrap().to_string();
        let rdev = std::fs::metadata(&source).unwrap();
        let rdev = std::os::unix::fs::MetadataExt::rdev(&rdev);
        format!("{}:{}", libc::major(rdev), libc::minor(rdev))
    };
    let rule = std::fs::read_to_string(
        host.vps_cgroup("blkio", "io1")
            .join("blkio.throttle.write_bps_device"),
    )
    .unwrap();
    assert_eq!(rule.trim(), format!("{pool_device} 4000000"));
    let info = host.info("io1");
    let enforced = info.disk_io_enforced.unwrap();
    assert!(enforced.starts_with("cgroup v1 (blkio)"), "{enforced}");
    assert!(host
        .ok(&["info", "io1"])
        .contains("Disk I/O:    enforced here: cgroup v1"));

    let took = timed(write_direct);
    assert!(took >= held, "a direct write under 4 MB/s took {took:?}");
    let took = timed(read_direct);
    assert!(took >= held, "a direct read under 4 MB/s took {took:?}");
    // What cgroup v1 cannot hold, and says it cannot: buffered writes
    // left to the kernel. Pushed out by the VPS's own fsync, they are held.
    let took = timed("dd if=/dev/zero of=/root/g bs=1M count=16 2>/dev/null");
    assert!(took < fast, "a buffered write took {took:?}");
    host.sh_ok("io1", "rm /root/g");
    let took = timed("dd if=/dev/zero of=/root/g bs=1M count=16 conv=fsync 2>/dev/null");
    assert!(
        took >= held,
        "a buffered write with fsync under 4 MB/s took {took:?}"
    );

    // Operations per second: 200 direct 4 KiB writes at 50 per second.
    host.ok(&["config", "unset", "io1", "limits.disk.write", "limits.disk.read"]);
    host.ok(&["config", "set", "io1", "limits.disk.write_iops=50"]);
    let took = timed("dd if=/dev/zero of=/root/h bs=4k count=200 oflag=direct 2>/dev/null");
    assert!(took >= held, "200 writes at 50 IOPS took {took:?}");

    // Lifted: fast again, and the rules are gone.
    host.ok(&["config", "unset", "io1", "limits.disk.write_iops"]);
    let took = timed(write_direct);
    assert!(
        took < fast,
        "a direct write after the limits were lifted took {took:?}"
    );
    let rules = std::fs::read_to_string(
        host.vps_cgroup("blkio", "io1")
            .join("blkio.throttle.write_iops_device"),
    )
    .unwrap();
    assert_eq!(rules.trim(), "", "a rule stayed: {rules}");

    // Bad values: one line each, nothing changed.
    let before = host.info("io1").config;
    for (setting, says) in [
        ("limits.disk.read=0", "limits.disk.read=0 is out of range"),
        ("limits.disk.write=fast", "invalid limits.disk.write"),
        ("limits.disk.read_iops=5", "between 10 and 1000000"),
    ] {
        let err = host.fails(&["config", "set", "io1", setting]);
        assert!(err.contains(says), "{setting}: {err}");
    }
    assert_eq!(host.info("io1").config, before);
    // A stopped VPS takes them, and gets them at its next start.
    host.ok(&["stop", "io1"]);
    host.ok(&["config", "set", "io1", "limits.disk.read=4MB"]);
    host.ok(&["start", "io1"]);
    let rule = std::fs::read_to_string(
        host.vps_cgroup("blkio", "io1")
            .join("blkio.throttle.read_bps_device"),
    )
    .unwrap();
    assert_eq!(rule.trim(), format!("{pool_device} 4000000"));
}

/// `df` inside shows the VPS's disk: its limit as the size, its usage as
/// used, what it may still write as free; it follows a live change of the
/// limit; without a limit it shows the pool as before. Other filesystems
/// (/dev, /proc) are the kernel's as always, and a statfs on a FUSE-like
/// path or a closed descriptor fails as it would.
#[test]
fn df_inside_shows_the_disk_limit_and_usage_and_follows_a_live_change() {
    let host = Host::with_config("storage_size = \"1GiB\"");
    launch(&host, "df1", &["--disk", "200MiB"]);
    // busybox df -k: "Filesystem 1K-blocks Used Available Use% Mounted on".
    let df = |path: &str| -> (u64, u64, u64) {
        let out = host.sh_ok("df1", &format!("df -k {path} | tail -n 1"));
        let f: Vec<u64> = out
            .split_whitespace()
            .skip(1)
            .take(3)
            .map(|v| v.parse().unwrap())
            .collect();
        (f[0], f[1], f[2])
    };
    let (size, used, free) = df("/");
    assert_eq!(size, 200 * 1024, "df / size");
    assert!(used > 0 && used < 20 * 1024, "used {used} KiB");
    assert!(
        free <= size - used && free + used + 1024 >= size,
        "free {free} KiB of {size} with {used} used"
    );
    // Writing 50 MiB shows once btrfs commits (qgroups are counted then).
    host.sh_ok(
        "df1",
        "dd if=/dev/zero of=/root/fill bs=1M count=50 2>/dev/null && sync",
    );
    host.wait_for("df to count the write", Duration::from_secs(10), || {
        let (_, now, _) = df("/");
        now >= used + 50 * 1024
    });
    let (_, used2, free2) = df("/root/fill");
    assert!(free2 <= 200 * 1024 - used2, "free {free2} with {used2} used");
    // A live change of the limit: df follows at once.
    host.ok(&["config", "set", "df1", "limits.disk=300MiB"]);
    assert_eq!(df("/").0, 300 * 1024);
    // fstatfs on a descriptor of the disk answers the same (df on an
    // open file's directory is statfs; `stat -f` in busybox is statfs too).
    let out = host.sh_ok("df1", "stat -f -c '%b %S' /etc");
    let blocks: Vec<u64> = out.split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(blocks[0] * blocks[1], 300 << 20, "{out}");
    // A link climbing out of the root stays inside it (resolved in the
    // VPS's root, never the host's): the VPS's disk again.
    host.sh_ok("df1", "ln -s ../../../../../../.. /root/up");
    assert_eq!(df("/root/up").0, 300 * 1024);
    // A relative path, from the working directory (`df .`).
    let here = host.sh_ok("df1", "cd /root && df -k . | tail -n 1");
    assert_eq!(here.split_whitespace().nth(1), Some("307200"), "{here}");
    // Other filesystems are the kernel's: /dev is a small tmpfs.
    assert_ne!(df("/dev").0, 300 * 1024);
    // A user who may not search a directory learns nothing through it:
    // the path is resolved with the caller's ids.
    host.sh_ok("df1", "chmod 700 /root");
    let out = host.sh("df1", "su -s /bin/sh nobody -c 'stat -f /root/fill'");
    assert!(!out.status.success(), "nobody reached /root/fill: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{out:?}"
    );
    // The server's CPU time is the VPS's: it is in the VPS's cpu cgroup.
    let procs = std::fs::read_to_string(host.vps_cgroup("cpu", "df1").join("cgroup.procs")).unwrap();
    let server = procs.lines().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("croft-superviso"))
    });
    assert!(server, "no disk view server among {procs}");
    // Errors are the kernel's.
    let err = host.sh("df1", "stat -f /nonexistent");
    assert!(!err.status.success());
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("No such file"),
        "{err:?}"
    );
    // Without a limit: the pool, as before.
    host.ok(&["config", "unset", "df1", "limits.disk"]);
    let (size, _, _) = df("/");
    assert!(size > 300 * 1024, "unlimited df / shows {size} KiB");
    // From the next boot on too (the filter and its server come back).
    host.ok(&["config", "set", "df1", "limits.disk=250MiB"]);
    host.ok(&["restart", "df1"]);
    assert_eq!(df("/").0, 250 * 1024);
}

/// `GET /metrics` on real VPSes: a running VPS's series match its cgroups
/// within one sample (taken every second here), a stopped one shows as
/// not running with no usage. Its direct writes are counted on the pool's
/// device (a VPS without disk I/O limits too).
#[test]
fn metrics_match_the_vps_cgroups_within_one_sample() {
    let host = Host::with_config("metrics_interval = 1");
    launch(&host, "m1", &["--memory", "128MiB"]);
    launch(&host, "m2", &["--no-start"]);
    let scrape = || String::from_utf8(host.api_ok_bytes("GET", "/metrics", None)).unwrap();
    let value = |text: &str, family: &str, vps: &str| -> Option<f64> {
        let prefix = format!("{family}{{tenant=\"default\",vps=\"{vps}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(|v| v.parse().unwrap())
    };
    host.wait_for("a sample with m1 running", Duration::from_secs(10), || {
        value(&scrape(), "croft_vps_running", "m1") == Some(1.0)
    });
    let text = scrape();
    // The Prometheus client's own parser takes the whole text.
    let families = parse_prometheus(&text);
    assert_eq!(families["croft_vps_cpu_seconds"].kind, "counter", "{text}");
    assert_eq!(families["croft_vps_disk_read_bytes"].kind, "counter", "{text}");
    let cgroup = |controller: &str, file: &str| -> f64 {
        std::fs::read_to_string(host.vps_cgroup(controller, "m1").join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(&text, "croft_vps_memory_limit_bytes", "m1"),
        Some((128u64 << 20) as f64)
    );
    // An idle busybox VPS: init and its shell, the same at both reads.
    assert_eq!(
        value(&text, "croft_vps_processes", "m1"),
        Some(cgroup("pids", "pids.current"))
    );
    let memory = value(&text, "croft_vps_memory_bytes", "m1").unwrap();
    let now = cgroup("memory", "memory.usage_in_bytes");
    assert!(
        (memory - now).abs() <= (4 << 20) as f64,
        "sampled {memory}, cgroup {now}"
    );
    let cpu = value(&text, "croft_vps_cpu_seconds_total", "m1").unwrap();
    let cpu_now = cgroup("cpuacct", "cpuacct.usage") / 1e9;
    assert!(cpu > 0.0 && cpu <= cpu_now, "sampled {cpu} s, cgroup {cpu_now} s");
    assert_eq!(value(&text, "croft_vps_running", "m2"), Some(0.0));
    assert_eq!(value(&text, "croft_vps_memory_bytes", "m2"), None);
    assert!(text.contains("\ncroft_pool_size_bytes "), "{text}");
    // What its interface sends shows at the next samples, from its side.
    let before = value(&text, "croft_vps_network_transmit_packets_total", "m1").unwrap();
    host.sh_ok(
        "m1",
        "ping -c 5 -W 1 $(ip route | awk '/default/ {print $3}') >/dev/null; true",
    );
    host.wait_for("the pings in the metrics", Duration::from_secs(10), || {
        let text = scrape();
        value(&text, "croft_vps_network_transmit_packets_total", "m1").unwrap() >= before + 5.0
            && value(&text, "croft_vps_network_receive_packets_total", "m1").unwrap() >= 5.0
    });
    // 8 MiB written past the page cache: counted at the next samples, and
    // the figure is the cgroup's own count of the pool's device.
    let written = |text: &str| value(text, "croft_vps_disk_written_bytes_total", "m1").unwrap();
    let before = written(&scrape());
    host.sh_ok(
        "m1",
        "dd if=/dev/zero of=/direct-io bs=1M count=8 oflag=direct 2>/dev/null && rm /direct-io",
    );
    host.wait_for(
        "the direct writes in the metrics",
        Duration::from_secs(10),
        || written(&scrape()) >= before + (8 << 20) as f64,
    );
    let counted_by_cgroup = || -> Vec<f64> {
        std::fs::read_to_string(
            host.vps_cgroup("blkio", "m1")
                .join("blkio.throttle.io_service_bytes_recursive"),
        )
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" Write ")?.1.parse().ok())
        .collect()
    };
    host.wait_for("the same count in the cgroup", Duration::from_secs(10), || {
        counted_by_cgroup().contains(&written(&scrape()))
    });
}
