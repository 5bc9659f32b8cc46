//! The cgroup v1 driver: one hierarchy per controller.
//!
//! croft uses `memory`, `cpu`, `cpuacct` and `pids` for limits and accounting,
//! and `name=systemd` (no limits) so a VPS's systemd finds a writable
//! hierarchy. Where `cpuset` is mounted each VPS gets a cpuset cgroup too,
//! with all of its parent's CPUs and memory nodes: lxcfs looks up a
//! process's CPU quota at the path of its *cpuset* cgroup, so without one
//! `nproc` and /proc/cpuinfo inside would show every host CPU. A new
//! cpuset cgroup starts with empty `cpuset.cpus`/`cpuset.mems` and refuses
//! processes (ENOSPC) until they are filled ([`super::cpuset::inherit`]).
//! Where `devices` is mounted each VPS gets a devices cgroup holding its
//! device allow-list ([`super::devices`]); where `blkio` is, a blkio cgroup
//! for its disk I/O limits ([`super::disk_io`]).

use std::path::{Path, PathBuf};

use super::mountinfo::{self, Membership, Mount};
use super::{cpu, disk_io, fs, memory, pids, CgroupError, Limits, Stats};

/// The directories of one cgroup in each v1 hierarchy used. `cpu` and
/// `cpuacct` are the same directory when the two are co-mounted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Dirs {
    pub memory: PathBuf,
    pub cpu: PathBuf,
    pub cpuacct: PathBuf,
    pub pids: PathBuf,
    /// `None` when no `name=systemd` hierarchy is mounted.
    pub systemd: Option<PathBuf>,
    /// `None` when no `cpuset` hierarchy is mounted.
    pub cpuset: Option<PathBuf>,
    /// `None` when no `devices` hierarchy is mounted.
    pub devices: Option<PathBuf>,
    /// `None` when no `blkio` hierarchy is mounted (or the cgroup was
    /// recorded by a croftd that did not use it).
    #[serde(default)]
    pub blkio: Option<PathBuf>,
}

impl Dirs {
    pub fn join(&self, name: &str) -> Self {
        Self {
            memory: self.memory.join(name),
            cpu: self.cpu.join(name),
            cpuacct: self.cpuacct.join(name),
            pids: self.pids.join(name),
            systemd: self.systemd.as_ref().map(|dir| dir.join(name)),
            cpuset: self.cpuset.as_ref().map(|dir| dir.join(name)),
            devices: self.devices.as_ref().map(|dir| dir.join(name)),
            blkio: self.blkio.as_ref().map(|dir| dir.join(name)),
        }
    }

    /// Every distinct directory, memory first.
    pub fn unique(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::with_capacity(8);
        let all = [&self.memory, &self.cpu, &self.cpuacct, &self.pids]
            .into_iter()
            .chain(self.systemd.as_ref())
            .chain(self.cpuset.as_ref())
            .chain(self.devices.as_ref())
            .chain(self.blkio.as_ref());
        for dir in all {
            if !dirs.contains(dir) {
                dirs.push(dir.clone());
            }
        }
        dirs
    }
}

/// The v1 controllers whose presence makes croft use v1 (hybrid hosts count:
/// their cgroup2 mount has no such controllers).
const LIMIT_CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

pub(super) fn is_v1(mounts: &[Mount]) -> bool {
    mounts
        .iter()
        .any(|m| LIMIT_CONTROLLERS.iter().any(|c| m.carries(c)))
}

/// The daemon's own cgroup directory in every hierarchy used.
pub(super) fn resolve(mounts: &[Mount], own: &[Membership], fs_root: &Path) -> Result<Dirs, CgroupError> {
    let required = |controller: &'static str| {
        own_dir(mounts, own, fs_root, controller)?.ok_or(CgroupError::ControllerNotMounted { controller })
    };
    Ok(Dirs {
        memory: required("memory")?,
        cpu: required("cpu")?,
        cpuacct: required("cpuacct")?,
        pids: required("pids")?,
        systemd: own_dir(mounts, own, fs_root, "name=systemd")?,
        cpuset: own_dir(mounts, own, fs_root, "cpuset")?,
        devices: own_dir(mounts, own, fs_root, "devices")?,
        blkio: own_dir(mounts, own, fs_root, "blkio")?,
    })
}

/// The own cgroup directory in the hierarchy carrying `controller`, `None` if
/// no such hierarchy is mounted.
fn own_dir(
    mounts: &[Mount],
    own: &[Membership],
    fs_root: &Path,
    controller: &str,
) -> Result<Option<PathBuf>, CgroupError> {
    if !mounts.iter().any(|m| m.carries(controller)) {
        return Ok(None);
    }
    let membership = Membership::find(own, controller).ok_or_else(|| CgroupError::OwnCgroupUnknown {
        hierarchy: controller.to_owned(),
    })?;
    // A mount belongs to the hierarchy if it carries all of its controllers
    // (`cpu,cpuacct` co-mounted: both).
    let candidates = mounts.iter().filter(|m| m.carries_all(&membership.controllers));
    let hierarchy = membership.controllers.join(",");
    mountinfo::own_dir(&hierarchy, &membership.path, candidates, fs_root).map(Some)
}

pub(super) fn apply(dirs: &Dirs, limits: &Limits) -> Result<(), CgroupError> {
    let memsw = memory::v1_current_memsw(&dirs.memory)?;
    fs::apply_writes(&dirs.memory, &memory::v1_writes(limits.memory_bytes, memsw))
        .map_err(|e| memory::below_usage(&dirs.memory, limits.memory_bytes, e))?;
    fs::apply_writes(
        &dirs.cpu,
        &cpu::v1_writes(limits.cpu_millicores, limits.cpu_weight),
    )?;
    fs::apply_writes(&dirs.pids, &pids::writes(limits.pids_max))?;
    match (&dirs.blkio, &limits.io) {
        (Some(blkio), Some(io)) => fs::apply_writes(blkio, &disk_io::v1_writes(io)),
        (None, Some(io)) if io.any() => Err(CgroupError::NoIoCgroup),
        _ => Ok(()),
    }
}

/// What the cgroup read and wrote on `device`; `None` without a blkio
/// hierarchy.
pub(super) fn io_stats(
    dirs: &Dirs,
    device: disk_io::BlockDevice,
) -> Result<Option<disk_io::IoStats>, CgroupError> {
    let Some(blkio) = &dirs.blkio else {
        return Ok(None);
    };
    let bytes = fs::read_optional(&blkio.join("blkio.throttle.io_service_bytes_recursive"))?;
    let ops = fs::read_optional(&blkio.join("blkio.throttle.io_serviced_recursive"))?;
    Ok(bytes
        .zip(ops)
        .map(|(bytes, ops)| disk_io::v1_stats(device, &bytes, &ops)))
}

pub(super) fn stats(dirs: &Dirs) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    memory::v1_stats(&dirs.memory, &mut stats)?;
    cpu::v1_stats(&dirs.cpuacct, &mut stats)?;
    pids::stats(&dirs.pids, &mut stats)?;
    Ok(stats)
}
