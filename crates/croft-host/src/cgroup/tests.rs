//! Tests of the whole module on fake cgroup trees in temporary directories.
//! No real cgroup is created: cgroupfs interface files are plain files here.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::*;

/// This host's layout: v1 hybrid, the daemon in a nested memory cgroup.
const HYBRID_MOUNTINFO: &str = "\
23 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/3e6845d5
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

/// A Debian 10 style v1 host with `cpu,cpuacct` co-mounted.
const COMOUNTED_MOUNTINFO: &str = "\
24 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
25 24 0:22 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
26 24 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
29 24 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
30 24 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
31 24 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids
32 24 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpuset
";
const COMOUNTED_CGROUP: &str = "\
12:cpuset:/
6:pids:/system.slice/croftd.service
4:memory:/system.slice/croftd.service
3:cpu,cpuacct:/system.slice/croftd.service
1:name=systemd:/system.slice/croftd.service
0::/system.slice/croftd.service
";

/// A pure v2 host.
const V2_MOUNTINFO: &str = "\
25 23 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
const V2_CGROUP: &str = "0::/system.slice/croftd.service\n";
const V2_OWN: &str = "sys/fs/cgroup/system.slice/croftd.service";

const GIB: u64 = 1 << 30;
/// What v1 `memory.limit_in_bytes` reads when unlimited.
const V1_UNLIMITED: &str = "9223372036854771712\n";

fn put(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn get(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn hybrid(root: &Path) -> CgroupManager {
    CgroupManager::from_sources(HYBRID_MOUNTINFO, HYBRID_CGROUP, "t1", root).unwrap()
}

/// A v2 manager whose own cgroup offers the controllers croft needs.
fn v2(root: &Path) -> CgroupManager {
    put(
        &root.join(V2_OWN).join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    );
    CgroupManager::from_sources(V2_MOUNTINFO, V2_CGROUP, "t1", root).unwrap()
}

/// The per-hierarchy directories of a v1 hybrid cgroup, by controller.
struct V1Files {
    memory: PathBuf,
    cpu: PathBuf,
    cpuacct: PathBuf,
    pids: PathBuf,
}

/// The interface files the kernel gives a new devices cgroup, if the
/// manager's layout has a devices hierarchy.
fn fake_devices_files(manager: &CgroupManager, name: &str) {
    for dir in manager.open(name).unwrap().dirs() {
        if dir.components().any(|c| c.as_os_str() == "devices") {
            put(&dir.join("devices.deny"), "");
            put(&dir.join("devices.allow"), "");
        }
    }
}

/// Creates `name` and fills it with the files and defaults the kernel would.
fn fake_v1_cgroup(manager: &CgroupManager, name: &str, memsw: bool) -> (Cgroup, V1Files) {
    for dir in manager.open(name).unwrap().dirs() {
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    }
    fake_devices_files(manager, name);
    let cgroup = manager.create(name).unwrap();
    let dirs = cgroup.dirs();
    let files = V1Files {
        memory: dirs[0].clone(),
        cpu: dirs[1].clone(),
        cpuacct: dirs[2].clone(),
        pids: dirs[3].clone(),
    };
    put(&files.memory.join("memory.limit_in_bytes"), V1_UNLIMITED);
    if memsw {
        put(&files.memory.join("memory.memsw.limit_in_bytes"), V1_UNLIMITED);
    }
    put(&files.cpu.join("cpu.cfs_period_us"), "100000\n");
    put(&files.cpu.join("cpu.cfs_quota_us"), "-1\n");
    put(&files.cpu.join("cpu.shares"), "1024\n");
    put(&files.pids.join("pids.max"), "max\n");
    (cgroup, files)
}

fn fake_v2_cgroup(manager: &CgroupManager, name: &str, swap: bool) -> (Cgroup, PathBuf) {
    std::fs::create_dir_all(&manager.base_dirs()[0]).unwrap();
    let cgroup = manager.create(name).unwrap();
    let dir = cgroup.dirs().remove(0);
    put(&dir.join("memory.max"), "max\n");
    if swap {
        put(&dir.join("memory.swap.max"), "max\n");
    }
    put(&dir.join("cpu.max"), "max 100000\n");
    put(&dir.join("cpu.weight"), "100\n");
    put(&dir.join("pids.max"), "max\n");
    (cgroup, dir)
}

fn limits() -> Limits {
    Limits {
        memory_bytes: Some(GIB),
        cpu_millicores: Some(1500),
        cpu_weight: Some(200),
        pids_max: Some(512),
        io: None,
    }
}

const LOOP: disk_io::BlockDevice = disk_io::BlockDevice { major: 7, minor: 0 };

fn io_limits() -> disk_io::IoLimits {
    disk_io::IoLimits {
        device: LOOP,
        read_bps: Some(10 << 20),
        write_bps: None,
        read_iops: None,
        write_iops: Some(100),
    }
}

/// v1: the limits land in the VPS's blkio cgroup, one device line per
/// file; lifted ones are written as 0 (the kernel drops the rule).
#[test]
fn v1_disk_io_limits_are_written_to_the_blkio_cgroup_and_lifted_with_zero() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    assert!(manager.io_available());
    let (cgroup, _) = fake_v1_cgroup(&manager, "web1", true);
    let blkio = cgroup
        .dirs()
        .into_iter()
        .find(|d| d.components().any(|c| c.as_os_str() == "blkio"))
        .expect("a blkio cgroup");
    for f in ["read_bps", "write_bps", "read_iops", "write_iops"] {
        put(&blkio.join(format!("blkio.throttle.{f}_device")), "");
    }
    let mut with_io = limits();
    with_io.io = Some(io_limits());
    cgroup.apply(&with_io).unwrap();
    assert_eq!(get(&blkio.join("blkio.throttle.read_bps_device")), "7:0 10485760");
    assert_eq!(get(&blkio.join("blkio.throttle.write_bps_device")), "7:0 0");
    assert_eq!(get(&blkio.join("blkio.throttle.write_iops_device")), "7:0 100");
    with_io.io = Some(disk_io::IoLimits {
        read_bps: None,
        write_iops: None,
        ..io_limits()
    });
    cgroup.apply(&with_io).unwrap();
    assert_eq!(get(&blkio.join("blkio.throttle.read_bps_device")), "7:0 0");
    assert_eq!(get(&blkio.join("blkio.throttle.write_iops_device")), "7:0 0");
    // A zero limit is refused, not taken as "none".
    with_io.io = Some(disk_io::IoLimits {
        read_bps: Some(0),
        ..io_limits()
    });
    assert!(matches!(
        with_io.validate(),
        Err(CgroupError::InvalidLimit {
            field: "read_bps",
            ..
        })
    ));
}

/// v1: what the VPS read and wrote on the pool's device comes from its
/// blkio cgroup's recursive throttle counts; without a blkio cgroup there
/// are none to give.
#[test]
fn v1_disk_io_counts_come_from_the_blkio_cgroup() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let (cgroup, _) = fake_v1_cgroup(&manager, "web1", true);
    let blkio = cgroup
        .dirs()
        .into_iter()
        .find(|d| d.components().any(|c| c.as_os_str() == "blkio"))
        .expect("a blkio cgroup");
    assert_eq!(cgroup.io_stats(LOOP).unwrap(), None, "no counts files");
    put(
        &blkio.join("blkio.throttle.io_service_bytes_recursive"),
        "7:0 Read 4096\n7:0 Write 1048576\n7:0 Total 1052672\nTotal 1052672\n",
    );
    put(
        &blkio.join("blkio.throttle.io_serviced_recursive"),
        "7:0 Read 1\n7:0 Write 2\nTotal 3\n",
    );
    assert_eq!(
        cgroup.io_stats(LOOP).unwrap(),
        Some(disk_io::IoStats {
            read_bytes: 4096,
            written_bytes: 1 << 20,
            reads: 1,
            writes: 2
        })
    );
}

/// v1 counts a device's I/O once a throttle rule switched blk-throttle
/// on for it: one rule of "no limit" on croft's prefix cgroup; v2 needs
/// none and writes nothing.
#[test]
fn counting_io_is_one_no_limit_rule_on_the_prefix_in_v1_only() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let blkio = tmp.path().join("sys/fs/cgroup/blkio/t1");
    // Without the file (no blk-throttle in the kernel): said, not hidden.
    std::fs::create_dir_all(&blkio).unwrap();
    std::fs::create_dir(blkio.join("blkio.throttle.read_bps_device")).unwrap();
    assert!(manager.count_io(LOOP).is_err());
    std::fs::remove_dir(blkio.join("blkio.throttle.read_bps_device")).unwrap();
    put(&blkio.join("blkio.throttle.read_bps_device"), "");
    manager.count_io(LOOP).unwrap();
    assert_eq!(get(&blkio.join("blkio.throttle.read_bps_device")), "7:0 0");
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    // Every file under the tree, with what it holds.
    let files = || -> Vec<(PathBuf, Vec<u8>)> {
        let mut all = Vec::new();
        let mut dirs = vec![tmp.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    all.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        all.sort();
        all
    };
    let before = files();
    manager.count_io(LOOP).unwrap();
    assert_eq!(files(), before, "v2 writes nothing");
}

/// v2: the counts are the device's line of `io.stat`.
#[test]
fn v2_disk_io_counts_come_from_io_stat() {
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    let (cgroup, dir) = fake_v2_cgroup(&manager, "web1", true);
    assert_eq!(cgroup.io_stats(LOOP).unwrap(), None, "io not offered");
    put(
        &dir.join("io.stat"),
        "7:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    );
    assert_eq!(
        cgroup.io_stats(LOOP).unwrap(),
        Some(disk_io::IoStats {
            read_bytes: 512,
            reads: 1,
            ..Default::default()
        })
    );
}

/// v1 without a blkio cgroup for the VPS: a limit is refused saying a
/// restart gives it one; no limit is fine.
#[test]
fn v1_disk_io_limits_without_blkio_are_refused() {
    let tmp = TempDir::new().unwrap();
    let manager =
        CgroupManager::from_sources(COMOUNTED_MOUNTINFO, COMOUNTED_CGROUP, "t1", tmp.path()).unwrap();
    assert!(!manager.io_available());
    for dir in manager.base_dirs() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let cgroup = manager.create("web1").unwrap();
    let memory = cgroup.dirs().remove(0);
    put(&memory.join("memory.limit_in_bytes"), V1_UNLIMITED);
    put(&memory.join("memory.memsw.limit_in_bytes"), V1_UNLIMITED);
    let mut with_io = Limits {
        io: Some(disk_io::IoLimits {
            read_bps: None,
            write_iops: None,
            ..io_limits()
        }),
        ..Limits::default()
    };
    cgroup.apply(&with_io).unwrap();
    with_io.io = Some(io_limits());
    assert!(matches!(cgroup.apply(&with_io), Err(CgroupError::NoIoCgroup)));
}

/// v2: io is enabled for croft's cgroups where offered, and the limits are
/// one `io.max` line.
#[test]
fn v2_disk_io_limits_are_one_io_max_line() {
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    let base = manager.base_dirs().remove(0);
    put(&tmp.path().join(V2_OWN).join("cgroup.subtree_control"), "");
    put(&tmp.path().join(V2_OWN).join("cgroup.procs"), "");
    put(&base.join("cgroup.controllers"), "cpu io memory pids\n");
    put(&base.join("cgroup.subtree_control"), "");
    manager.prepare().unwrap();
    assert!(get(&base.join("cgroup.subtree_control")).contains("+io"));
    let (cgroup, dir) = fake_v2_cgroup(&manager, "web1", true);
    put(&dir.join("io.max"), "");
    let mut with_io = limits();
    with_io.io = Some(io_limits());
    cgroup.apply(&with_io).unwrap();
    assert_eq!(
        get(&dir.join("io.max")),
        "7:0 rbps=10485760 wbps=max riops=max wiops=100"
    );
    // Without the file (io not offered): said as such.
    std::fs::remove_file(dir.join("io.max")).unwrap();
    assert!(matches!(
        cgroup.apply(&with_io),
        Err(CgroupError::ControllerUnavailable { controller: "io", .. })
    ));
}

// ---- detection ------------------------------------------------------------

#[test]
fn hybrid_host_is_v1_and_uses_the_own_cgroup_of_each_hierarchy() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let manager = hybrid(root);
    assert_eq!(manager.version(), Version::V1);
    assert_eq!(manager.prefix(), "t1");
    let fs = root.join("sys/fs/cgroup");
    assert_eq!(
        manager.base_dirs(),
        vec![
            fs.join("memory/process_api/3e6845d5/t1"),
            fs.join("cpu/t1"),
            fs.join("cpuacct/t1"),
            fs.join("pids/t1"),
            fs.join("systemd/t1"),
            fs.join("cpuset/t1"),
            fs.join("devices/t1"),
            fs.join("blkio/t1"),
        ]
    );
    let cgroup = manager.open("vps1").unwrap();
    assert_eq!(cgroup.systemd_dir(), Some(fs.join("systemd/t1/vps1")));
    assert_eq!(cgroup.dirs()[0], fs.join("memory/process_api/3e6845d5/t1/vps1"));
    assert!(!cgroup.exists());
}

#[test]
fn comounted_cpu_cpuacct_share_one_directory() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let manager = CgroupManager::from_sources(COMOUNTED_MOUNTINFO, COMOUNTED_CGROUP, "t2", root).unwrap();
    assert_eq!(manager.version(), Version::V1);
    let fs = root.join("sys/fs/cgroup");
    let own = "system.slice/croftd.service/t2";
    assert_eq!(
        manager.base_dirs(),
        vec![
            fs.join("memory").join(own),
            fs.join("cpu,cpuacct").join(own),
            fs.join("pids").join(own),
            fs.join("systemd").join(own),
            fs.join("cpuset/t2"),
        ]
    );

    // Limits and accounting both go to the co-mounted directory.
    for dir in manager.base_dirs() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let cgroup = manager.create("vps1").unwrap();
    let cpu = fs.join("cpu,cpuacct").join(own).join("vps1");
    let memory = fs.join("memory").join(own).join("vps1");
    put(&cpu.join("cpu.cfs_period_us"), "100000");
    put(&cpu.join("cpu.cfs_quota_us"), "-1");
    put(&cpu.join("cpu.shares"), "1024");
    put(&cpu.join("cpuacct.usage"), "987654321\n");
    put(&memory.join("memory.limit_in_bytes"), V1_UNLIMITED);
    put(&memory.join("memory.usage_in_bytes"), "4096\n");
    put(
        &memory.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    );
    let pids = fs.join("pids").join(own).join("vps1");
    put(&pids.join("pids.max"), "max");
    put(&pids.join("pids.current"), "3\n");
    cgroup
        .apply(&Limits {
            cpu_millicores: Some(500),
            ..Limits::default()
        })
        .unwrap();
    assert_eq!(get(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(cgroup.stats().unwrap().cpu_usage_ns, 987_654_321);
}

#[test]
fn pure_v2_host_uses_the_own_cgroup() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let manager = v2(root);
    assert_eq!(manager.version(), Version::V2);
    let own = root.join(V2_OWN);
    assert_eq!(manager.base_dirs(), vec![own.join("t1")]);
    let cgroup = manager.open("vps1").unwrap();
    assert_eq!(cgroup.dirs(), vec![own.join("t1/vps1")]);
    assert_eq!(cgroup.systemd_dir(), Some(own.join("t1/vps1")));
}

#[test]
fn v2_requires_the_controllers_in_the_own_cgroup() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    let controllers = root.join(V2_OWN).join("cgroup.controllers");
    put(&controllers, "cpu io memory\n");
    let err = CgroupManager::from_sources(V2_MOUNTINFO, V2_CGROUP, "t1", root).unwrap_err();
    assert!(
        matches!(&err, CgroupError::ControllerUnavailable { controller: "pids", path } if *path == controllers),
        "{err:?}"
    );
}

#[test]
fn v2_steps_over_the_daemon_leaf() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    put(&root.join(V2_OWN).join("cgroup.controllers"), "cpu memory pids");
    let manager = CgroupManager::from_sources(
        V2_MOUNTINFO,
        "0::/system.slice/croftd.service/croftd\n",
        "t1",
        root,
    )
    .unwrap();
    assert_eq!(manager.base_dirs(), vec![root.join(V2_OWN).join("t1")]);
}

#[test]
fn non_root_mount_root_makes_the_own_path_relative() {
    // Inside a container: each hierarchy shows only the container's subtree.
    let mountinfo = "\
100 99 0:29 /lxc/host7 /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
101 99 0:30 /lxc/host7 /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
102 99 0:31 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
103 99 0:32 /lxc/host7 /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,name=systemd
";
    let own = "\
4:memory:/lxc/host7/croft.service
3:cpu,cpuacct:/lxc/host7
2:pids:/lxc/host7/croft.service
1:name=systemd:/lxc/host7/a/b
";
    let tmp = TempDir::new().unwrap();
    let fs = tmp.path().join("sys/fs/cgroup");
    let manager = CgroupManager::from_sources(mountinfo, own, "p", tmp.path()).unwrap();
    assert_eq!(
        manager.base_dirs(),
        vec![
            fs.join("memory/croft.service/p"),
            fs.join("cpu,cpuacct/p"),
            fs.join("pids/lxc/host7/croft.service/p"),
            fs.join("systemd/a/b/p"),
        ]
    );

    let outside = own.replace("4:memory:/lxc/host7/croft.service", "4:memory:/lxc/other");
    let err = CgroupManager::from_sources(mountinfo, &outside, "p", tmp.path()).unwrap_err();
    assert!(
        matches!(&err, CgroupError::OwnCgroupNotVisible { hierarchy, own, .. } if hierarchy == "memory" && own == "/lxc/other"),
        "{err:?}"
    );
}

#[test]
fn detection_errors_name_what_is_missing() {
    let root = Path::new("/nonexistent");
    let err = CgroupManager::from_sources("23 1 0:21 / /sys rw - sysfs sysfs rw\n", "0::/\n", "p", root)
        .unwrap_err();
    assert!(matches!(err, CgroupError::NoHierarchy), "{err:?}");

    let no_pids: String = HYBRID_MOUNTINFO
        .lines()
        .filter(|l| !l.ends_with("rw,pids"))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = CgroupManager::from_sources(&no_pids, HYBRID_CGROUP, "p", root).unwrap_err();
    assert!(
        matches!(err, CgroupError::ControllerNotMounted { controller: "pids" }),
        "{err:?}"
    );

    let no_memory_line = HYBRID_CGROUP.replace("4:memory:/process_api/3e6845d5\n", "");
    let err = CgroupManager::from_sources(HYBRID_MOUNTINFO, &no_memory_line, "p", root).unwrap_err();
    assert!(
        matches!(&err, CgroupError::OwnCgroupUnknown { hierarchy } if hierarchy == "memory"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "/proc/self/cgroup has no entry for the memory hierarchy"
    );
}

#[test]
fn bad_names_are_rejected() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let long = "x".repeat(256);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../x",
        "/abs",
        "a\nb",
        "a\0b",
        long.as_str(),
    ] {
        assert!(
            matches!(manager.open(name), Err(CgroupError::InvalidName { name: n, .. }) if n == name),
            "open accepted {name:?}"
        );
        assert!(
            matches!(manager.create(name), Err(CgroupError::InvalidName { .. })),
            "create accepted {name:?}"
        );
    }
    assert_eq!(manager.open("web-1.example").unwrap().name(), "web-1.example");
    for prefix in ["..", "a/b", DAEMON_LEAF] {
        let err =
            CgroupManager::from_sources(HYBRID_MOUNTINFO, HYBRID_CGROUP, prefix, tmp.path()).unwrap_err();
        assert!(matches!(err, CgroupError::InvalidName { .. }), "{err:?}");
    }
    // Nothing was created by the refused calls.
    assert!(!tmp.path().join("sys").exists());
}

// ---- prepare / create / list / remove -------------------------------------

#[test]
fn v1_prepare_creates_the_prefix_in_every_hierarchy() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let err = manager.prepare().unwrap_err();
    assert!(
        matches!(&err, CgroupError::Create { path, .. } if *path == manager.base_dirs()[0]),
        "a missing own cgroup must not be created: {err:?}"
    );
    for dir in manager.base_dirs() {
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    }
    manager.prepare().unwrap();
    manager.prepare().unwrap();
    assert_eq!(manager.base_dirs().len(), 8);
    assert!(manager.base_dirs().iter().all(|d| d.is_dir()));
}

#[test]
fn v2_prepare_moves_the_daemon_to_a_leaf_and_enables_controllers() {
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    let own = tmp.path().join(V2_OWN);
    let base = own.join("t1");
    put(&own.join("cgroup.type"), "domain\n");
    put(&own.join("cgroup.procs"), "4242\n");
    put(&own.join("cgroup.subtree_control"), "cpu\n");
    put(&own.join("croftd/cgroup.procs"), "");
    // What the kernel shows in the prefix once the own cgroup enabled them.
    put(&base.join("cgroup.controllers"), "cpu memory pids\n");
    put(&base.join("cgroup.subtree_control"), "");
    manager.prepare().unwrap();
    assert_eq!(
        get(&own.join("croftd/cgroup.procs")),
        std::process::id().to_string()
    );
    assert_eq!(get(&own.join("cgroup.subtree_control")), "+memory +pids +io");
    assert_eq!(get(&base.join("cgroup.subtree_control")), "+memory +cpu +pids");
}

#[test]
fn v2_prepare_in_the_root_cgroup_moves_nothing() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path();
    put(&root.join("sys/fs/cgroup/cgroup.controllers"), "cpu memory pids");
    put(&root.join("sys/fs/cgroup/cgroup.procs"), "1\n");
    put(
        &root.join("sys/fs/cgroup/cgroup.subtree_control"),
        "memory cpu pids",
    );
    put(
        &root.join("sys/fs/cgroup/t1/cgroup.controllers"),
        "cpu memory pids",
    );
    put(
        &root.join("sys/fs/cgroup/t1/cgroup.subtree_control"),
        "memory pids cpu",
    );
    let manager = CgroupManager::from_sources(V2_MOUNTINFO, "0::/\n", "t1", root).unwrap();
    manager.prepare().unwrap();
    assert!(!root.join("sys/fs/cgroup/croftd").exists());
    // Already enabled: nothing rewritten.
    assert_eq!(
        get(&root.join("sys/fs/cgroup/cgroup.subtree_control")),
        "memory cpu pids"
    );
}

#[test]
fn create_is_idempotent_and_rolls_back_on_failure() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let base = manager.base_dirs();
    // The pids hierarchy lacks the prefix: creating there fails.
    for dir in &base {
        if !dir.starts_with(tmp.path().join("sys/fs/cgroup/pids")) {
            std::fs::create_dir_all(dir).unwrap();
        }
    }
    let err = manager.create("vps1").unwrap_err();
    assert!(
        matches!(&err, CgroupError::Create { path, .. } if *path == base[3].join("vps1")),
        "{err:?}"
    );
    assert!(base.iter().all(|d| !d.join("vps1").exists()), "not rolled back");

    std::fs::create_dir_all(&base[3]).unwrap();
    fake_devices_files(&manager, "vps1");
    let cgroup = manager.create("vps1").unwrap();
    assert!(cgroup.exists());
    assert_eq!(cgroup.dirs().len(), 8);
    manager.create("vps1").unwrap();
    // A name clashing with an interface file is not taken for a cgroup.
    put(&base[0].join("memory.stat"), "");
    let err = manager.create("memory.stat").unwrap_err();
    assert!(matches!(err, CgroupError::NotADirectory { .. }), "{err:?}");
}

#[test]
fn list_unions_hierarchies_and_remove_prefix_requires_empty() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    assert_eq!(manager.list().unwrap(), Vec::<String>::new());
    let base = manager.base_dirs();
    for dir in &base {
        std::fs::create_dir_all(dir.join("b")).unwrap();
    }
    // Half-created leftovers are listed too; files are not.
    std::fs::create_dir(base[4].join("a")).unwrap();
    put(&base[0].join("cgroup.procs"), "");
    assert_eq!(manager.list().unwrap(), vec!["a", "b"]);

    let err = manager.remove_prefix().unwrap_err();
    assert!(matches!(err, CgroupError::PrefixNotEmpty { .. }), "{err:?}");
    manager.open("a").unwrap().remove().unwrap();
    manager.open("b").unwrap().remove().unwrap();
    std::fs::remove_file(base[0].join("cgroup.procs")).unwrap();
    manager.remove_prefix().unwrap();
    assert!(base.iter().all(|d| !d.exists()));
    manager.remove_prefix().unwrap();
}

#[test]
fn remove_goes_depth_first_in_every_hierarchy() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let cgroup = manager.open("vps1").unwrap();
    let dirs = cgroup.dirs();
    // The VPS's systemd made a tree in its name=systemd hierarchy.
    let systemd = cgroup.systemd_dir().unwrap();
    for sub in [
        "init.scope",
        "system.slice/ssh.service",
        "system.slice/cron.service",
    ] {
        std::fs::create_dir_all(systemd.join(sub)).unwrap();
    }
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
    }
    cgroup.remove().unwrap();
    assert!(dirs.iter().all(|d| !d.exists()));
    assert!(dirs.iter().all(|d| d.parent().unwrap().is_dir()), "prefix kept");
    // Missing is fine.
    cgroup.remove().unwrap();

    // A directory that cannot be removed is named, deepest first.
    let stuck = systemd.join("system.slice/ssh.service");
    put(&stuck.join("leftover"), "");
    std::fs::create_dir_all(systemd.join("init.scope")).unwrap();
    let err = cgroup.remove().unwrap_err();
    assert!(
        matches!(&err, CgroupError::Remove { path, .. } if *path == stuck),
        "{err:?}"
    );
    assert!(!systemd.join("init.scope").exists());
}

// ---- apply ----------------------------------------------------------------

#[test]
fn v1_apply_writes_limits_and_none_removes_them() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let (cgroup, f) = fake_v1_cgroup(&manager, "vps1", true);

    cgroup.apply(&limits()).unwrap();
    assert_eq!(get(&f.memory.join("memory.limit_in_bytes")), "1073741824");
    assert_eq!(get(&f.memory.join("memory.memsw.limit_in_bytes")), "1073741824");
    assert_eq!(get(&f.cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(get(&f.cpu.join("cpu.cfs_quota_us")), "150000");
    assert_eq!(get(&f.cpu.join("cpu.shares")), "2048");
    assert_eq!(get(&f.pids.join("pids.max")), "512");
    assert!(!f.cpuacct.join("cpu.shares").exists());

    cgroup.apply(&Limits::default()).unwrap();
    assert_eq!(get(&f.memory.join("memory.limit_in_bytes")), "-1");
    assert_eq!(get(&f.memory.join("memory.memsw.limit_in_bytes")), "-1");
    assert_eq!(get(&f.cpu.join("cpu.cfs_quota_us")), "-1");
    assert_eq!(get(&f.cpu.join("cpu.shares")), "1024");
    assert_eq!(get(&f.pids.join("pids.max")), "max");
}

#[test]
fn v1_apply_without_swap_accounting_leaves_memsw_alone() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let (cgroup, f) = fake_v1_cgroup(&manager, "vps1", false);
    cgroup.apply(&limits()).unwrap();
    assert_eq!(get(&f.memory.join("memory.limit_in_bytes")), "1073741824");
    assert!(!f.memory.join("memory.memsw.limit_in_bytes").exists());
}

#[test]
fn v2_apply_writes_limits_and_none_removes_them() {
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    let (cgroup, dir) = fake_v2_cgroup(&manager, "vps1", true);

    cgroup.apply(&limits()).unwrap();
    assert_eq!(get(&dir.join("memory.max")), "1073741824");
    assert_eq!(get(&dir.join("memory.swap.max")), "0");
    assert_eq!(get(&dir.join("cpu.max")), "150000 100000");
    assert_eq!(get(&dir.join("cpu.weight")), "200");
    assert_eq!(get(&dir.join("pids.max")), "512");

    cgroup.apply(&Limits::default()).unwrap();
    assert_eq!(get(&dir.join("memory.max")), "max");
    assert_eq!(get(&dir.join("memory.swap.max")), "max");
    assert_eq!(get(&dir.join("cpu.max")), "max 100000");
    assert_eq!(get(&dir.join("cpu.weight")), "100");
    assert_eq!(get(&dir.join("pids.max")), "max");
}

#[test]
fn missing_files_fail_only_when_a_limit_needs_them() {
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    let (cgroup, dir) = fake_v2_cgroup(&manager, "vps1", false);
    std::fs::remove_file(dir.join("pids.max")).unwrap();

    // Removing limits from absent files is a no-op, and creates nothing.
    cgroup.apply(&Limits::default()).unwrap();
    assert!(!dir.join("pids.max").exists());
    assert!(!dir.join("memory.swap.max").exists());

    let err = cgroup
        .apply(&Limits {
            pids_max: Some(10),
            ..Limits::default()
        })
        .unwrap_err();
    assert!(
        matches!(&err, CgroupError::Write { path, value, .. } if *path == dir.join("pids.max") && value == "10"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("failed to write \"10\" to {}", dir.join("pids.max").display())
    );
}

#[test]
fn invalid_limits_are_refused_before_writing() {
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    let (cgroup, dir) = fake_v2_cgroup(&manager, "vps1", true);
    let cases = [
        (
            Limits {
                cpu_weight: Some(0),
                ..limits()
            },
            "cpu_weight",
        ),
        (
            Limits {
                cpu_weight: Some(10_001),
                ..limits()
            },
            "cpu_weight",
        ),
        (
            Limits {
                cpu_millicores: Some(9),
                ..limits()
            },
            "cpu_millicores",
        ),
        (
            Limits {
                pids_max: Some(5_000_000),
                ..limits()
            },
            "pids_max",
        ),
        (
            Limits {
                memory_bytes: Some(u64::MAX),
                ..limits()
            },
            "memory_bytes",
        ),
    ];
    for (bad, field) in cases {
        let err = cgroup.apply(&bad).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidLimit { field: f, .. } if f == field),
            "{err:?}"
        );
    }
    assert_eq!(get(&dir.join("memory.max")), "max\n");
    assert_eq!(get(&dir.join("cpu.weight")), "100\n");
    assert!(limits().validate().is_ok());
    assert!(Limits {
        cpu_millicores: Some(10),
        cpu_weight: Some(10_000),
        ..limits()
    }
    .validate()
    .is_ok());
}

// ---- stats / procs / add_process ------------------------------------------

#[test]
fn v1_stats_are_parsed() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let (cgroup, f) = fake_v1_cgroup(&manager, "vps1", true);
    put(&f.memory.join("memory.usage_in_bytes"), "52342784\n");
    put(
        &f.memory.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    put(&f.cpuacct.join("cpuacct.usage"), "123456789012\n");
    put(&f.pids.join("pids.current"), "17\n");
    assert_eq!(
        cgroup.stats().unwrap(),
        Stats {
            memory_bytes: 52_342_784,
            memory_limit_bytes: None,
            oom_kills: 3,
            cpu_usage_ns: 123_456_789_012,
            pids_current: 17,
        }
    );
    put(&f.memory.join("memory.limit_in_bytes"), "268435456\n");
    assert_eq!(cgroup.stats().unwrap().memory_limit_bytes, Some(268_435_456));

    put(&f.pids.join("pids.current"), "lots\n");
    let err = cgroup.stats().unwrap_err();
    assert!(
        matches!(&err, CgroupError::Malformed { path, content } if *path == f.pids.join("pids.current") && content == "lots\n"),
        "{err:?}"
    );
}

#[test]
fn v2_stats_are_parsed() {
    let tmp = TempDir::new().unwrap();
    let manager = v2(tmp.path());
    let (cgroup, dir) = fake_v2_cgroup(&manager, "vps1", true);
    put(&dir.join("memory.current"), "8392704\n");
    put(
        &dir.join("memory.events"),
        "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n",
    );
    put(
        &dir.join("cpu.stat"),
        "usage_usec 2500123\nuser_usec 2000000\nsystem_usec 500123\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    );
    put(&dir.join("pids.current"), "5\n");
    put(&dir.join("memory.max"), "536870912\n");
    assert_eq!(
        cgroup.stats().unwrap(),
        Stats {
            memory_bytes: 8_392_704,
            memory_limit_bytes: Some(536_870_912),
            oom_kills: 2,
            cpu_usage_ns: 2_500_123_000,
            pids_current: 5,
        }
    );
    put(&dir.join("memory.max"), "max\n");
    assert_eq!(cgroup.stats().unwrap().memory_limit_bytes, None);
    put(&dir.join("cpu.stat"), "user_usec 1\n");
    assert!(matches!(cgroup.stats(), Err(CgroupError::Malformed { .. })));
}

#[test]
fn procs_are_collected_recursively_across_hierarchies() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let cgroup = manager.open("vps1").unwrap();
    for dir in cgroup.dirs() {
        put(&dir.join("cgroup.procs"), "100\n");
    }
    let systemd = cgroup.systemd_dir().unwrap();
    put(&systemd.join("cgroup.procs"), "100\n");
    put(&systemd.join("init.scope/cgroup.procs"), "");
    put(&systemd.join("system.slice/cgroup.procs"), "");
    put(
        &systemd.join("system.slice/ssh.service/cgroup.procs"),
        "230\n231\n",
    );
    put(&cgroup.dirs()[0].join("cgroup.procs"), "100\n230\n231\n7\n");
    assert_eq!(cgroup.procs().unwrap(), vec![7, 100, 230, 231]);
}

#[test]
fn add_process_writes_every_hierarchy() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let cgroup = manager.open("vps1").unwrap();
    for dir in cgroup.dirs() {
        put(&dir.join("cgroup.procs"), "");
    }
    cgroup.add_process(4321).unwrap();
    for dir in cgroup.dirs() {
        assert_eq!(get(&dir.join("cgroup.procs")), "4321", "{}", dir.display());
    }
    assert_eq!(cgroup.dirs().len(), 8);
}

#[test]
fn a_new_cpuset_cgroup_gets_its_parents_cpus_and_memory_nodes() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    let cpuset = tmp.path().join("sys/fs/cgroup/cpuset");
    for dir in manager.base_dirs() {
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    }
    put(&cpuset.join("cpuset.cpus"), "0-3\n");
    put(&cpuset.join("cpuset.mems"), "0\n");
    // The kernel makes the files of a new cgroup, empty.
    put(&cpuset.join("t1/cpuset.cpus"), "\n");
    put(&cpuset.join("t1/cpuset.mems"), "\n");
    manager.prepare().unwrap();
    assert_eq!(get(&cpuset.join("t1/cpuset.cpus")), "0-3");
    assert_eq!(get(&cpuset.join("t1/cpuset.mems")), "0");
    put(&cpuset.join("t1/vps1/cpuset.cpus"), "");
    put(&cpuset.join("t1/vps1/cpuset.mems"), "");
    fake_devices_files(&manager, "vps1");
    manager.create("vps1").unwrap();
    assert_eq!(get(&cpuset.join("t1/vps1/cpuset.cpus")), "0-3");
    // One already set (a pinned VPS) is left alone.
    put(&cpuset.join("t1/vps1/cpuset.cpus"), "1");
    manager.create("vps1").unwrap();
    assert_eq!(get(&cpuset.join("t1/vps1/cpuset.cpus")), "1");
}

#[test]
fn a_new_v1_cgroup_denies_every_device_but_the_allow_list() {
    let tmp = TempDir::new().unwrap();
    let manager = hybrid(tmp.path());
    for dir in manager.base_dirs() {
        std::fs::create_dir_all(&dir).unwrap();
    }
    fake_devices_files(&manager, "vps1");
    manager.create("vps1").unwrap();
    let dir = tmp.path().join("sys/fs/cgroup/devices/t1/vps1");
    assert_eq!(get(&dir.join("devices.deny")), "a");
    // Plain files keep the last write; the plan is checked whole below.
    assert_eq!(get(&dir.join("devices.allow")), *devices::ALLOWED.last().unwrap());
    let plan = devices::v1_writes(&[]);
    assert_eq!((plan[0].file, plan[0].value.as_str()), ("devices.deny", "a"));
    let allowed: Vec<&str> = plan[1..].iter().map(|w| w.value.as_str()).collect();
    for device in ["c 1:3 rwm", "c 1:9 rwm", "c 5:2 rwm", "c 136:* rwm"] {
        assert!(allowed.contains(&device), "{device} missing");
    }
    // No block device, no wildcard over every device, no /dev/mem (1:1).
    assert!(allowed
        .iter()
        .all(|r| r.starts_with("c ") && !r.starts_with("c *") && !r.starts_with("c 1:1 ")));
}

#[test]
fn a_recorded_location_is_adopted_by_a_daemon_in_another_cgroup() {
    let tmp = TempDir::new().unwrap();
    let first = hybrid(tmp.path());
    let made = first.open("vps1").unwrap();
    let recorded = serde_json::to_string(&made.location()).unwrap();
    // The same daemon started from another shell: another memory cgroup.
    let elsewhere = HYBRID_CGROUP.replace("/process_api/3e6845d5", "/process_api/99");
    let second = CgroupManager::from_sources(HYBRID_MOUNTINFO, &elsewhere, "t1", tmp.path()).unwrap();
    assert_ne!(second.open("vps1").unwrap().dirs(), made.dirs());
    let location: CgroupLocation = serde_json::from_str(&recorded).unwrap();
    let adopted = second.adopt("vps1", &location).unwrap();
    assert_eq!(adopted.dirs(), made.dirs());
    assert_eq!(adopted.name(), "vps1");
    // Not another VPS's cgroup, nor a location of the other cgroup version.
    assert!(matches!(
        second.adopt("vps2", &location),
        Err(CgroupError::ForeignLocation { .. })
    ));
    let v2_location = v2(tmp.path()).open("vps1").unwrap().location();
    assert!(matches!(
        second.adopt("vps1", &v2_location),
        Err(CgroupError::ForeignLocation { .. })
    ));
}
