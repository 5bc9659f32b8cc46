//! Resource limits and accounting for VPSes through Linux control groups.
//!
//! Every VPS gets one cgroup; its memory, CPU and process-count limits are
//! written there and its usage is read back from there. Two kernel interfaces
//! exist and both are supported, chosen at runtime by [`CgroupManager::detect`]:
//!
//! - **v1** (also "hybrid" hosts, where a controller-less cgroup2 is mounted
//!   beside the v1 controllers): one hierarchy per controller. croft uses
//!   `memory`, `cpu`, `cpuacct` (possibly co-mounted as `cpu,cpuacct`), `pids`
//!   and, without limits, `name=systemd` so a VPS's own systemd can boot and
//!   `cpuset` so lxcfs finds the VPS's CPU quota.
//! - **v2**: one unified hierarchy; controllers must be enabled in the
//!   parents' `cgroup.subtree_control`, and a cgroup that enables controllers
//!   for its children may not hold processes itself.
//!
//! **Architecture Invariant:** croft creates cgroups only beneath the cgroup
//! the daemon itself runs in, in every hierarchy (delegation, as systemd's
//! `Delegate=yes` or LXC's `lxc.cgroup.relative`). The base of each hierarchy
//! is `<mount point>/<own cgroup>/<prefix>`, so several daemons with distinct
//! prefixes can run side by side and nothing outside the daemon's own subtree
//! is ever touched. The only process ever moved is the daemon itself (v2, see
//! [`CgroupManager::prepare`]).
//!
//! All paths are derived from `/proc/self/mountinfo` and `/proc/self/cgroup`
//! plus a filesystem root, so the whole module is unit-tested on a fake tree in
//! a temporary directory ([`CgroupManager::from_sources`]).

mod cpu;
pub mod cpuset;
pub mod devices;
pub mod disk_io;
mod fs;
mod memory;
pub(crate) mod mountinfo;
mod pids;
mod v1;
mod v2;

/// Bytes as people read a memory size: `612 MiB` (`4 KiB` under one).
fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes.div_ceil(1 << 10))
    } else {
        format!("{} MiB", (bytes + (1 << 19)) >> 20)
    }
}

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cpu::{CFS_PERIOD_US, DEFAULT_CPU_WEIGHT};

/// Name of the leaf cgroup (v2) the daemon moves itself into so that its own
/// cgroup may enable controllers for its children ("no internal processes").
pub const DAEMON_LEAF: &str = "croftd";

/// How many processes the OOM killer has killed in the cgroup whose
/// directories are `dirs` (as [`Cgroup::dirs`] gives them, the memory one
/// first); `None` where that cannot be read. For the supervisor, which
/// knows its VPS's cgroup only by these directories.
pub fn oom_kills_in(dirs: &[PathBuf]) -> Option<u64> {
    dirs.iter().find_map(|dir| memory::oom_kills(dir))
}

/// Errors of the cgroup module.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory could not be read.
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A value could not be written to a cgroup file.
    #[error("failed to write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    /// A cgroup directory could not be created.
    #[error("failed to create cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path of a cgroup exists but is not a directory (for example a VPS
    /// named like a cgroup interface file).
    #[error("{path} exists but is not a directory")]
    NotADirectory { path: PathBuf },
    /// A cgroup directory could not be removed.
    #[error("failed to remove cgroup {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A memory limit below what the VPS uses, which the kernel could not
    /// reclaim down to (EBUSY on cgroup v1): nothing changed.
    #[error("uses {}, more than {}", mib(*usage), mib(*limit))]
    MemoryInUse { usage: u64, limit: u64 },
    /// `rmdir` returned EBUSY: the cgroup still has processes.
    #[error("cgroup {path} is busy (it still has processes)")]
    Busy { path: PathBuf },
    /// [`CgroupManager::remove_prefix`] found VPS cgroups under the prefix.
    #[error("cgroup prefix {path} still contains cgroups")]
    PrefixNotEmpty { path: PathBuf },
    /// A line of `/proc/self/mountinfo` or `/proc/self/cgroup` is malformed.
    #[error("malformed line in {file}: {line:?}")]
    MalformedLine { file: &'static str, line: String },
    /// A cgroup file holds something that is not what the kernel writes.
    #[error("unexpected content {content:?} in {path}")]
    Malformed { path: PathBuf, content: String },
    /// Neither v1 controllers nor a cgroup2 hierarchy are mounted.
    #[error("no usable cgroup hierarchy is mounted (neither v1 memory, cpu or pids, nor cgroup2)")]
    NoHierarchy,
    /// A v1 host lacks a controller croft needs.
    #[error("cgroup v1 controller {controller} is not mounted")]
    ControllerNotMounted { controller: &'static str },
    /// Disk I/O limits for a VPS whose cgroup has no blkio directory (made
    /// by a croftd that did not use blkio).
    #[error("its cgroup has no blkio controller (made before croft set disk I/O limits): restart the VPS to apply them")]
    NoIoCgroup,
    /// `/proc/self/cgroup` has no line for a mounted hierarchy.
    #[error("/proc/self/cgroup has no entry for the {hierarchy} hierarchy")]
    OwnCgroupUnknown { hierarchy: String },
    /// The daemon's cgroup is not below the root of the mount of a hierarchy,
    /// so croft cannot reach its own cgroup through that mount.
    #[error("own cgroup {own} of the {hierarchy} hierarchy is not below its mount root {root}")]
    OwnCgroupNotVisible {
        hierarchy: String,
        own: String,
        root: PathBuf,
    },
    /// A v2 controller croft needs is not available in a cgroup.
    #[error("controller {controller} is not available in {path}")]
    ControllerUnavailable { controller: &'static str, path: PathBuf },
    /// A recorded cgroup location does not fit this host's hierarchies.
    #[error("the recorded cgroup of {name} is not one this host's cgroup hierarchies hold")]
    ForeignLocation { name: String },
    /// A VPS name or prefix cannot be used as a cgroup directory name.
    #[error("invalid cgroup name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A limit is outside what the kernel accepts.
    #[error("invalid limit {field}={value}: {reason}")]
    InvalidLimit {
        field: &'static str,
        value: u64,
        reason: &'static str,
    },
}

/// Resource limits of one VPS. `None` means "no limit" (for `cpu_weight`: the
/// default weight), so applying a `Limits` also removes limits set before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory limit in bytes (v1 also limits memory+swap to the same value;
    /// v2 sets `memory.swap.max` to 0, which is equivalent).
    pub memory_bytes: Option<u64>,
    /// CPU bandwidth in thousandths of a CPU: 1500 = 1.5 CPUs, enforced as a
    /// quota over a [`CFS_PERIOD_US`] period. At least 10 (a 1 ms quota).
    pub cpu_millicores: Option<u64>,
    /// Relative CPU weight, 1..=10000 with v2 semantics (default 100).
    pub cpu_weight: Option<u64>,
    /// Maximum number of tasks (processes and threads), at most 4194304.
    pub pids_max: Option<u64>,
    /// Disk I/O limits on the pool's device; `None` leaves what is set.
    pub io: Option<disk_io::IoLimits>,
}

/// Largest value `pids.max` accepts (the kernel's `PID_MAX_LIMIT`).
const PIDS_MAX_LIMIT: u64 = 4 * 1024 * 1024;

impl Limits {
    /// Checks the limits against what the kernel accepts, so that a bad value
    /// is refused before anything is written.
    pub fn validate(&self) -> Result<(), CgroupError> {
        let invalid = |field, value, reason| Err(CgroupError::InvalidLimit { field, value, reason });
        if let Some(bytes) = self.memory_bytes {
            if bytes > i64::MAX as u64 {
                return invalid("memory_bytes", bytes, "must be at most 2^63-1");
            }
        }
        if let Some(millicores) = self.cpu_millicores {
            if millicores < 10 {
                return invalid("cpu_millicores", millicores, "must be at least 10 (a 1 ms quota)");
            }
            if millicores > cpu::MAX_MILLICORES {
                return invalid("cpu_millicores", millicores, "is too large");
            }
        }
        if let Some(weight) = self.cpu_weight {
            if !(1..=10_000).contains(&weight) {
                return invalid("cpu_weight", weight, "must be within 1..=10000");
            }
        }
        if let Some(pids) = self.pids_max {
            if pids > PIDS_MAX_LIMIT {
                return invalid("pids_max", pids, "must be at most 4194304");
            }
        }
        for (field, value) in self.io.iter().flat_map(disk_io::IoLimits::values) {
            if value == Some(0) {
                return invalid(field, 0, "must be at least 1 (0 is no limit)");
            }
        }
        Ok(())
    }
}

/// Usage figures of one VPS cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Memory in use (including page cache), in bytes.
    pub memory_bytes: u64,
    /// The memory limit in force, `None` when unlimited.
    pub memory_limit_bytes: Option<u64>,
    /// Processes killed by the OOM killer because of the memory limit.
    pub oom_kills: u64,
    /// CPU time consumed, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Number of tasks (processes and threads).
    pub pids_current: u64,
}

/// The cgroup interface in use on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// One hierarchy per controller (also hybrid hosts).
    V1,
    /// The unified hierarchy.
    V2,
}

/// Directories of one cgroup (or of the prefix) in every hierarchy used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Dirs {
    V1(v1::Dirs),
    V2(PathBuf),
}

impl Dirs {
    fn join(&self, name: &str) -> Self {
        match self {
            Dirs::V1(dirs) => Dirs::V1(dirs.join(name)),
            Dirs::V2(dir) => Dirs::V2(dir.join(name)),
        }
    }

    /// Every distinct directory, the primary (memory) one first.
    fn unique(&self) -> Vec<PathBuf> {
        match self {
            Dirs::V1(dirs) => dirs.unique(),
            Dirs::V2(dir) => vec![dir.clone()],
        }
    }
}

/// Where a VPS's cgroup is, in every hierarchy: recorded when it is made
/// (JSON through serde), so a daemon started later in another cgroup of
/// its own (another shell, systemd) still finds a running VPS's cgroup
/// instead of deriving a path beneath itself where there is none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CgroupLocation(Dirs);

/// Finds the host's cgroup hierarchies and creates VPS cgroups beneath the
/// daemon's own cgroup.
#[derive(Clone, Debug)]
pub struct CgroupManager {
    prefix: String,
    /// The prefix directories (`<mount>/<own>/<prefix>`).
    base: Dirs,
    /// v2 only: the daemon's own cgroup directory.
    own_v2: Option<PathBuf>,
    /// The hierarchies are the kernel's (the filesystem root is `/`), so
    /// BPF programs can be attached; not on the fake trees of unit tests.
    kernel: bool,
}

impl CgroupManager {
    /// Detects the host's cgroup layout from `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`; VPS cgroups will live under `<own cgroup>/<prefix>`.
    ///
    /// Call it once per process: on v2, [`prepare`](Self::prepare) may move the
    /// daemon into its [`DAEMON_LEAF`] child, which a later detection sees and
    /// steps over.
    pub fn detect(prefix: &str) -> Result<Self, CgroupError> {
        let read = |path: &str| {
            std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
                path: path.into(),
                source,
            })
        };
        let mountinfo = read("/proc/self/mountinfo")?;
        let own = read("/proc/self/cgroup")?;
        Self::from_sources(&mountinfo, &own, prefix, Path::new("/"))
    }

    /// Builds a manager from the text of `/proc/self/mountinfo` and
    /// `/proc/self/cgroup`, with `fs_root` prepended to every mount point (a
    /// temporary directory in tests, `/` for the real host). On v2 it checks
    /// that the own cgroup offers the memory, cpu and pids controllers.
    pub fn from_sources(
        mountinfo: &str,
        proc_self_cgroup: &str,
        prefix: &str,
        fs_root: &Path,
    ) -> Result<Self, CgroupError> {
        validate_name(prefix)?;
        if prefix == DAEMON_LEAF {
            return Err(CgroupError::InvalidName {
                name: prefix.to_owned(),
                reason: "reserved for the daemon's own leaf cgroup",
            });
        }
        let mounts = mountinfo::parse_mountinfo(mountinfo)?;
        let own = mountinfo::parse_proc_cgroup(proc_self_cgroup)?;
        if v1::is_v1(&mounts) {
            let dirs = v1::resolve(&mounts, &own, fs_root)?;
            Ok(Self {
                prefix: prefix.to_owned(),
                base: Dirs::V1(dirs.join(prefix)),
                own_v2: None,
                kernel: fs_root == Path::new("/"),
            })
        } else if let Some(own_dir) = v2::resolve(&mounts, &own, fs_root)? {
            Ok(Self {
                prefix: prefix.to_owned(),
                base: Dirs::V2(own_dir.join(prefix)),
                own_v2: Some(own_dir),
                kernel: fs_root == Path::new("/"),
            })
        } else {
            Err(CgroupError::NoHierarchy)
        }
    }

    /// Whether VPS cgroups get a disk I/O controller: the `blkio`
    /// hierarchy (v1), or `io` enabled for croft's cgroups (v2).
    pub fn io_available(&self) -> bool {
        match &self.base {
            Dirs::V1(dirs) => dirs.blkio.is_some(),
            Dirs::V2(base) => fs::read(&base.join("cgroup.subtree_control"))
                .is_ok_and(|enabled| enabled.split_whitespace().any(|c| c == "io")),
        }
    }

    /// Make the kernel count every cgroup's I/O on `device` (what
    /// [`Cgroup::io_stats`] reads). v2 always does. v1 counts per cgroup
    /// only on a device where blk-throttle was switched on, which the
    /// first throttle rule written for it does, even a rule of "no limit":
    /// one such rule on croft's prefix cgroup, which limits nothing.
    /// Done after [`Self::prepare`]; a no-op without a blkio hierarchy.
    pub fn count_io(&self, device: disk_io::BlockDevice) -> Result<(), CgroupError> {
        match &self.base {
            Dirs::V1(dirs) => match &dirs.blkio {
                Some(blkio) => fs::write_file(
                    &blkio.join("blkio.throttle.read_bps_device"),
                    &format!("{device} 0"),
                ),
                None => Ok(()),
            },
            Dirs::V2(_) => Ok(()),
        }
    }

    /// The cgroup interface in use.
    pub fn version(&self) -> Version {
        match self.base {
            Dirs::V1(_) => Version::V1,
            Dirs::V2(_) => Version::V2,
        }
    }

    /// The prefix this manager was built with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The prefix directory in every hierarchy used.
    pub fn base_dirs(&self) -> Vec<PathBuf> {
        self.base.unique()
    }

    /// Creates the prefix directory in every hierarchy used (idempotent).
    ///
    /// On v2 it also enables the memory, cpu and pids controllers in the
    /// `cgroup.subtree_control` of the daemon's own cgroup and of the prefix.
    /// A non-root cgroup that enables controllers may not hold processes, so
    /// if the own cgroup has some, the calling process (and only it) is first
    /// moved into the leaf `<own>/`[`DAEMON_LEAF`].
    pub fn prepare(&self) -> Result<(), CgroupError> {
        match (&self.base, &self.own_v2) {
            (Dirs::V2(base), Some(own)) => v2::prepare(own, base),
            (Dirs::V1(dirs), _) => {
                for dir in self.base.unique() {
                    fs::create_dir(&dir)?;
                }
                if let Some(cpuset) = &dirs.cpuset {
                    cpuset::inherit(cpuset)?;
                }
                Ok(())
            }
            (Dirs::V2(_), None) => unreachable!("a v2 manager knows its own cgroup"),
        }
    }

    /// The CPUs VPSes may be pinned to (those of the prefix's cpuset
    /// cgroup); `None` where croft cannot pin.
    pub fn host_cpus(&self) -> Result<Option<Vec<u32>>, CgroupError> {
        let dir = match &self.base {
            Dirs::V1(dirs) => dirs.cpuset.clone(),
            Dirs::V2(dir) => dir.join(cpuset::CPUS).exists().then(|| dir.clone()),
        };
        dir.map(|dir| cpuset::read(&dir)).transpose()
    }

    /// Creates (or reuses) the cgroup of VPS `name` in every hierarchy. If one
    /// hierarchy fails, the directories this call created are removed again.
    pub fn create(&self, name: &str) -> Result<Cgroup, CgroupError> {
        self.create_with_devices(name, &[])
    }

    /// [`Self::create`], the devices controller allowing `devices` (rules
    /// like `c 10:200 rwm`) beside the usual ones.
    pub fn create_with_devices(&self, name: &str, devices: &[&str]) -> Result<Cgroup, CgroupError> {
        let cgroup = self.open(name)?;
        let mut created = Vec::new();
        for dir in cgroup.dirs() {
            match fs::create_dir(&dir) {
                Ok(true) => created.push(dir),
                Ok(false) => {}
                Err(err) => {
                    for dir in created.iter().rev() {
                        // Best effort: the original error is the one to report.
                        let _ = std::fs::remove_dir(dir);
                    }
                    return Err(err);
                }
            }
        }
        let prepared = match &cgroup.dirs {
            Dirs::V1(dirs) => dirs
                .cpuset
                .as_deref()
                .map_or(Ok(()), cpuset::inherit)
                .and_then(|()| {
                    dirs.devices
                        .as_deref()
                        .map_or(Ok(()), |d| devices::v1_restrict(d, devices))
                }),
            Dirs::V2(dir) if self.kernel && created.contains(dir) => devices::v2_restrict(dir, devices),
            // A program attached stays for the cgroup's life: a reused one
            // (a VPS's, left by a crash or a stop) is made anew when empty,
            // so its devices are this start's; one still busy keeps its own.
            Dirs::V2(dir) if self.kernel => match fs::remove_tree(dir) {
                Ok(()) => fs::create_dir(dir).and_then(|_| devices::v2_restrict(dir, devices)),
                Err(_) => Ok(()),
            },
            Dirs::V2(_) => Ok(()),
        };
        if let Err(err) = prepared {
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(err);
        }
        Ok(cgroup)
    }

    /// A handle on the cgroup of VPS `name`, without touching the filesystem.
    pub fn open(&self, name: &str) -> Result<Cgroup, CgroupError> {
        validate_name(name)?;
        Ok(Cgroup {
            name: name.to_owned(),
            dirs: self.base.join(name),
        })
    }

    /// A handle on the cgroup of VPS `name` at a recorded `location`
    /// (see [`Cgroup::location`]). Refused if the location is not one this
    /// manager's hierarchies could have made for `name`: another cgroup
    /// version, or directories not named after the VPS.
    pub fn adopt(&self, name: &str, location: &CgroupLocation) -> Result<Cgroup, CgroupError> {
        validate_name(name)?;
        let dirs = &location.0;
        let same_kind = matches!(
            (&self.base, dirs),
            (Dirs::V1(_), Dirs::V1(_)) | (Dirs::V2(_), Dirs::V2(_))
        );
        let named = dirs
            .unique()
            .iter()
            .all(|dir| dir.is_absolute() && dir.file_name() == Some(std::ffi::OsStr::new(name)));
        if !same_kind || !named {
            return Err(CgroupError::ForeignLocation {
                name: name.to_owned(),
            });
        }
        Ok(Cgroup {
            name: name.to_owned(),
            dirs: dirs.clone(),
        })
    }

    /// Names of the VPS cgroups under the prefix, sorted, in any hierarchy
    /// (so a half-created cgroup is listed too). Empty if the prefix does not
    /// exist.
    pub fn list(&self) -> Result<Vec<String>, CgroupError> {
        let mut names = BTreeSet::new();
        for dir in self.base.unique() {
            names.extend(fs::child_dirs(&dir)?);
        }
        Ok(names.into_iter().collect())
    }

    /// Removes the prefix directory in every hierarchy; fails with
    /// [`CgroupError::PrefixNotEmpty`] if VPS cgroups remain. Missing
    /// directories are fine.
    pub fn remove_prefix(&self) -> Result<(), CgroupError> {
        let dirs = self.base.unique();
        for dir in &dirs {
            if !fs::child_dirs(dir)?.is_empty() {
                return Err(CgroupError::PrefixNotEmpty { path: dir.clone() });
            }
        }
        for dir in &dirs {
            fs::remove_dir(dir)?;
        }
        Ok(())
    }
}

/// The cgroup of one VPS, in every hierarchy used.
#[derive(Clone, Debug)]
pub struct Cgroup {
    name: String,
    dirs: Dirs,
}

impl Cgroup {
    /// The VPS name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `limits`, removing any limit that is `None`. Works on a live
    /// cgroup; lowering memory below current usage makes the kernel reclaim
    /// and may fail with EBUSY.
    pub fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        limits.validate()?;
        match &self.dirs {
            Dirs::V1(dirs) => v1::apply(dirs, limits),
            Dirs::V2(dir) => v2::apply(dir, limits),
        }
    }

    /// Moves process `pid` into this cgroup in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.dirs.unique() {
            fs::write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Current usage figures.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.dirs {
            Dirs::V1(dirs) => v1::stats(dirs),
            Dirs::V2(dir) => v2::stats(dir),
        }
    }

    /// What this cgroup and its descendants read and wrote on `device`
    /// (see [`disk_io`] for what each cgroup version counts); `None` where
    /// no I/O controller reaches it.
    pub fn io_stats(&self, device: disk_io::BlockDevice) -> Result<Option<disk_io::IoStats>, CgroupError> {
        match &self.dirs {
            Dirs::V1(dirs) => v1::io_stats(dirs, device),
            Dirs::V2(dir) => v2::io_stats(dir, device),
        }
    }

    /// The processes in this cgroup and its descendants, in any hierarchy,
    /// sorted and without duplicates.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = BTreeSet::new();
        for dir in self.dirs.unique() {
            fs::collect_procs(&dir, &mut pids)?;
        }
        Ok(pids.into_iter().collect())
    }

    /// SIGKILL every process in this cgroup and its descendants; how many
    /// there were (0: it is empty).
    pub fn kill_all(&self) -> Result<usize, CgroupError> {
        let procs = self.procs()?;
        for &pid in &procs {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        Ok(procs.len())
    }

    /// Whether the cgroup exists in every hierarchy.
    pub fn exists(&self) -> bool {
        self.dirs.unique().iter().all(|dir| dir.is_dir())
    }

    /// Removes the cgroup and its descendants (children first) in every
    /// hierarchy. Missing directories are fine; a cgroup that still has
    /// processes yields [`CgroupError::Busy`] naming it.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.dirs.unique() {
            fs::remove_tree(&dir)?;
        }
        Ok(())
    }

    /// The directory to delegate to the VPS's systemd: v1 the `name=systemd`
    /// one (`None` if that hierarchy is not mounted), v2 the cgroup itself.
    pub fn systemd_dir(&self) -> Option<PathBuf> {
        match &self.dirs {
            Dirs::V1(dirs) => dirs.systemd.clone(),
            Dirs::V2(dir) => Some(dir.clone()),
        }
    }

    /// The cpuset directory of this cgroup, where there is one (v1 with a
    /// cpuset hierarchy; v2 with the cpuset controller enabled).
    fn cpuset_dir(&self) -> Option<PathBuf> {
        match &self.dirs {
            Dirs::V1(dirs) => dirs.cpuset.clone(),
            Dirs::V2(dir) => dir.join(cpuset::CPUS).exists().then(|| dir.clone()),
        }
    }

    /// The CPUs this cgroup may run on; `None` where croft cannot pin.
    pub fn cpus(&self) -> Result<Option<Vec<u32>>, CgroupError> {
        self.cpuset_dir().map(|dir| cpuset::read(&dir)).transpose()
    }

    /// Pin the cgroup to `cpus`, or with `None` let it run on all the CPUs
    /// its parent has. Does nothing where croft cannot pin.
    pub fn pin_cpus(&self, cpus: Option<&[u32]>) -> Result<(), CgroupError> {
        match self.cpuset_dir() {
            Some(dir) => cpuset::pin(&dir, cpus),
            None => Ok(()),
        }
    }

    /// Every directory of this cgroup (for chown-delegation to the VPS's root).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.unique()
    }

    /// The directories a helper process working for the VPS joins so its
    /// CPU time is the VPS's (v1: the cpu and cpuacct hierarchies, whose
    /// files the VPS cannot write; none on v2, where the VPS's directory is
    /// delegated to it and holds no processes of croft's).
    pub fn cpu_dirs(&self) -> Vec<PathBuf> {
        match &self.dirs {
            Dirs::V1(dirs) if dirs.cpu == dirs.cpuacct => vec![dirs.cpu.clone()],
            Dirs::V1(dirs) => vec![dirs.cpu.clone(), dirs.cpuacct.clone()],
            Dirs::V2(_) => Vec::new(),
        }
    }

    /// Where this cgroup is, to be recorded and later [`CgroupManager::adopt`]ed.
    pub fn location(&self) -> CgroupLocation {
        CgroupLocation(self.dirs.clone())
    }

    /// Delegate the subtree an init system manages (`systemd_dir`) to
    /// `uid`: the directory and its interface files become the VPS root's,
    /// so the VPS's systemd can create its own cgroups beneath it (as
    /// systemd's `Delegate=yes`). Limits stay in the other hierarchies (v1)
    /// or in files the VPS cannot reach through its cgroup namespace (v2:
    /// the limit files of this directory stay root's).
    pub fn delegate(&self, uid: u32) -> Result<(), CgroupError> {
        let Some(dir) = self.systemd_dir() else {
            return Ok(());
        };
        let owner = Some(nix::unistd::Uid::from_raw(uid));
        let group = Some(nix::unistd::Gid::from_raw(uid));
        let chown = |path: &Path| {
            nix::unistd::chown(path, owner, group).map_err(|e| CgroupError::Write {
                path: path.to_path_buf(),
                value: format!("owner {uid}"),
                source: e.into(),
            })
        };
        chown(&dir)?;
        let delegated: &[&str] = match &self.dirs {
            Dirs::V1(_) => &[
                "cgroup.procs",
                "tasks",
                "cgroup.clone_children",
                "notify_on_release",
            ],
            Dirs::V2(_) => &["cgroup.procs", "cgroup.threads", "cgroup.subtree_control"],
        };
        for f in delegated {
            let p = dir.join(f);
            if p.exists() {
                chown(&p)?;
            }
        }
        Ok(())
    }
}

/// Accepts names usable as one cgroup directory: 1 to 255 bytes, not `.` or
/// `..`, no `/`, no control characters (they would corrupt
/// `/proc/<pid>/cgroup`).
fn validate_name(name: &str) -> Result<(), CgroupError> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > 255 {
        Some("must be at most 255 bytes")
    } else if name == "." || name == ".." {
        Some("must not be . or ..")
    } else if name.contains('/') {
        Some("must not contain /")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CgroupError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
