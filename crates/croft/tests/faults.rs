//! Fault injection: croftd killed with SIGKILL at random moments during
//! launch, delete, snapshot, snapshot import, copy, rebuild, image build
//! and image import, many times over. After every restart the state must be
//! consistent (every VPS running or stopped with exactly one disk; no
//! orphaned volume, snapshot (whole or half-received), cgroup, veth,
//! nftables rule or address) and the VPS that runs throughout is never
//! disturbed. `CROFT_FAULT_SEED` replays a run,
//! `CROFT_FAULT_ROUNDS` makes it longer. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use croft_api::{Instance, Network, Snapshot, Status};
use std::collections::BTreeSet;
use std::time::Duration;

fn list(host: &Host) -> Vec<Instance> {
    host.list()
}

fn names_in(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Everything croftd's state says, checked against the pool, the cgroup
/// tree, the network namespace and the nftables ruleset.
fn assert_consistent(host: &Host, context: &str) {
    // A stop the killed croftd was in the middle of is finished by the
    // next one: wait for the VPSes to settle first.
    let mut vpses = list(host);
    for _ in 0..300 {
        if vpses
            .iter()
            .all(|v| v.status == Status::Running || v.status == Status::Stopped)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        vpses = list(host);
    }
    let known: BTreeSet<String> = vpses.iter().map(|v| v.name.clone()).collect();
    let containers = host.pool_dir().join("containers");
    assert_eq!(
        names_in(&containers),
        known,
        "{context}: volumes and VPSes differ"
    );
    let mut running = BTreeSet::new();
    let mut host_ifs = BTreeSet::new();
    for v in &vpses {
        let name = v.name.as_str();
        let status = v.status.as_str();
        assert!(
            status == "running" || status == "stopped",
            "{context}: {name} is {status}"
        );
        let dir = host.instance_dir(name);
        assert!(dir.join("rootfs").is_dir(), "{context}: {name} has no disk");
        if status == "running" {
            running.insert(name.to_string());
            let pid = host
                .details(name)
                .init_pid
                .unwrap_or_else(|| panic!("{context}: {name} runs without an init pid"));
            assert!(common::pid_alive(pid), "{context}: {name}'s init {pid} is gone");
        } else {
            for side in ["rescue", "rootfs.new"] {
                assert!(!dir.join(side).exists(), "{context}: {name} kept {side}");
            }
        }
        if let Some(nic) = &v.nic {
            host_ifs.insert(nic.host_interface.clone());
        }
        let (code, snaps) = host.api_raw("GET", &format!("/1.0/instances/{name}/snapshots"), None);
        assert_eq!(code, 200);
        let recorded: BTreeSet<String> = common::decode::<Vec<Snapshot>>(&snaps)
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names_in(&dir.join("snapshots")),
            recorded,
            "{context}: snapshots of {name} on disk and on record differ"
        );
    }
    // A cgroup exactly for each running VPS.
    for d in host.cgroup_prefix_dirs() {
        assert_eq!(names_in(&d), running, "{context}: cgroups in {}", d.display());
    }
    // Veths of running VPSes only, and rules naming known interfaces only.
    let links = host.host_sh("ip -o link show");
    let veths: BTreeSet<String> = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .filter(|n| n.starts_with("crv") && !n.ends_with('i'))
        .collect();
    let running_ifs: BTreeSet<String> = vpses
        .iter()
        .filter(|v| v.status == Status::Running)
        .filter_map(|v| v.nic.as_ref().map(|n| n.host_interface.clone()))
        .collect();
    let table: Vec<String> = vpses
        .iter()
        .map(|v| {
            format!(
                "{:?} {:?} {:?}",
                v.name,
                v.status.as_str(),
                v.nic.as_ref().map(|n| &n.host_interface)
            )
        })
        .collect();
    assert_eq!(
        veths, running_ifs,
        "{context}: veths and running VPSes differ: {table:?}"
    );
    let ruleset = host.host_sh("nft list ruleset");
    let ruleset = String::from_utf8_lossy(&ruleset.stdout);
    for word in ruleset.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
        let iface = word
            .strip_prefix("fw_")
            .or(word.strip_prefix("from_"))
            .or(word.strip_prefix("to_"))
            .unwrap_or(word);
        if iface.starts_with("crv") && iface[3..].chars().all(|c| c.is_ascii_digit()) && iface.len() > 3 {
            assert!(
                host_ifs.contains(iface),
                "{context}: rules name {iface}, which no VPS has"
            );
        }
    }
    // Addresses are held by known VPSes only.
    let net: Network = host.ok_json(&["network", "info", "default", "--format", "json"]);
    for lease in &net.leases {
        let owner = lease.instance.as_str();
        assert!(
            known.contains(owner),
            "{context}: {owner} holds an address but is gone"
        );
    }
    // No image half-made.
    let images = names_in(&host.pool_dir().join("images"));
    assert!(
        images.iter().all(|i| !i.starts_with('.')),
        "{context}: unfinished image volumes {images:?}"
    );
}

#[test]
fn croftd_killed_at_random_moments_always_restarts_into_a_consistent_state() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "keep1"]);
    host.ok(&["snapshot", "create", "keep1", "base"]);
    let keep_pid = host.init_pid("keep1");
    // A small image to import again and again.
    let tarball = host.dir.join("small.tar.gz");
    host.ok(&["image", "export", "busybox", tarball.to_str().unwrap()]);
    // And a snapshot stream to import again and again.
    let stream = host.dir.join("base.stream");
    host.ok(&["snapshot", "export", "keep1", "base", stream.to_str().unwrap()]);
    let seed = common::fuzz::seed_from_env("CROFT_FAULT_SEED");
    let rounds = common::fuzz::count_from_env("CROFT_FAULT_ROUNDS", 24);
    eprintln!("fault seed {seed} (CROFT_FAULT_SEED={seed} replays it), {rounds} rounds");
    let mut rng = common::fuzz::Rng(seed);
    let croft = common::bin_dir().join("croft");
    let mut killed_mid_way = 0;
    for round in 0..rounds {
        // Something to delete, copy from or rebuild, most rounds.
        let existing: Vec<String> = list(&host)
            .into_iter()
            .map(|v| v.name)
            .filter(|n| n != "keep1")
            .collect();
        let new = format!("v{round}");
        let other = existing.first().cloned();
        let args: Vec<String> = match (rng.below(9), &other) {
            (0, _) | (1, None) => vec!["launch".into(), "busybox".into(), new],
            (1, Some(o)) => vec!["delete".into(), "--force".into(), o.clone()],
            (2, _) => vec![
                "snapshot".into(),
                "create".into(),
                "keep1".into(),
                format!("s{round}"),
            ],
            (3, _) => vec!["copy".into(), "keep1/base".into(), new],
            (4, Some(o)) => vec!["rebuild".into(), o.clone(), "busybox".into()],
            (5, _) => vec![
                "image".into(),
                "import".into(),
                tarball.to_str().unwrap().into(),
                format!("fz/i{round}"),
            ],
            (6, _) => vec![
                "snapshot".into(),
                "import".into(),
                "keep1".into(),
                stream.to_str().unwrap().into(),
                "--name".into(),
                format!("i{round}"),
            ],
            (7, _) => {
                // A build from scratch (the image goes first, unhurried;
                // VPSes launched from it keep their disks).
                host.ok(&["image", "delete", "busybox"]);
                vec!["image".into(), "build".into(), "busybox".into()]
            }
            (_, _) => vec![
                "snapshot".into(),
                "delete".into(),
                "keep1".into(),
                format!("s{}", round.saturating_sub(1)),
            ],
        };
        let mut op = std::process::Command::new(&croft)
            .arg("--socket")
            .arg(&host.socket)
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rng.below(250) as u64);
        std::thread::sleep(delay);
        let finished = op.try_wait().unwrap().is_some();
        if !finished {
            killed_mid_way += 1;
        }
        host.kill_daemon();
        let _ = op.wait();
        host.start_daemon();
        let context = format!("round {round}: {args:?} killed after {delay:?} (seed {seed})");
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_consistent(&host, &context)
        })) {
            eprintln!("daemon log:\n{}", host.daemon_log());
            std::panic::resume_unwind(panic);
        }
        assert_eq!(host.init_pid("keep1"), keep_pid, "{context}: keep1 was disturbed");
        // The state works, not just looks right: every VPS starts or runs.
        let usable = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // (A VPS the interrupted operation was stopping may still be
            // on its way down: its supervisor finishes the stop it was
            // asked for, and the new croftd records it.)
            for v in list(&host) {
                let name = v.name.as_str();
                let mut tries = 0;
                loop {
                    if host.info(name).status == Status::Stopped {
                        host.ok(&["start", name]);
                    }
                    if host.sh(name, "true").status.success() {
                        break;
                    }
                    tries += 1;
                    assert!(tries < 5, "{name} cannot be started and entered");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }));
        if let Err(panic) = usable {
            eprintln!("{context}\ndaemon log:\n{}", host.daemon_log());
            for v in list(&host) {
                let name = v.name.as_str();
                let log = host.run_dir().join("vps").join(name).join("supervisor.log");
                eprintln!(
                    "{v:?}\n{name} supervisor log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!("{killed_mid_way} of {rounds} operations killed before they answered");
    assert!(killed_mid_way > 0, "no operation was ever interrupted");
    for v in list(&host) {
        host.ok(&["delete", "--force", &v.name]);
    }
}

/// The memory cgroup directory of process `pid` (v1).
fn memory_cgroup_of(pid: u32) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = text
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .expect("a v1 memory cgroup");
    std::path::Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'))
}

/// croftd derived each VPS's cgroup from its own current cgroup: started
/// again from another shell (another memory cgroup here; systemd on a real
/// host), it set limits in a cgroup no VPS was in (answering 200 while the
/// VPS kept its limit), read usage from there (`-` in `croft list`) and
/// left the real cgroup behind on delete. Now it uses where each VPS's
/// cgroup was made.
#[test]
fn croftd_restarted_in_another_cgroup_keeps_each_vps_where_its_cgroup_is() {
    // Declared first, so it is removed after the daemon in it is gone.
    let elsewhere = common::ScratchCgroup::new(&memory_cgroup_of(std::process::id()), "elsewhere");
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "sec1", "--memory", "256MiB"]);
    let real = memory_cgroup_of(host.init_pid("sec1") as u32);
    let limit = || {
        std::fs::read_to_string(real.join("memory.limit_in_bytes"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(limit(), (256u64 << 20).to_string());

    host.kill_daemon();
    host.start_daemon_in_cgroup(&elsewhere.0.join("cgroup.procs"));
    assert!(memory_cgroup_of(host.daemon_pid()).starts_with(&elsewhere.0));
    host.ok(&["config", "set", "sec1", "limits.memory=300MiB"]);
    assert_eq!(
        limit(),
        (300u64 << 20).to_string(),
        "the new limit was not applied"
    );
    let usage = &host.info("sec1").usage;
    assert!(usage.as_ref().is_some_and(|u| u.memory_bytes > 0), "{usage:?}");
    assert_eq!(
        usage.as_ref().and_then(|u| u.memory_limit_bytes),
        Some(300 << 20),
        "{usage:?}"
    );
    // A VPS this croftd starts lives beneath it.
    host.ok(&["launch", "busybox", "sec2"]);
    assert!(memory_cgroup_of(host.init_pid("sec2") as u32).starts_with(&elsewhere.0));
    host.ok(&["delete", "--force", "sec1"]);
    assert!(!real.exists(), "{} left behind", real.display());
}
