//! The cgroup v2 driver: one unified hierarchy.
//!
//! Controllers reach a cgroup only if every ancestor enables them in its
//! `cgroup.subtree_control`, and a non-root cgroup that does so may not hold
//! processes itself. [`prepare`] therefore enables them in the daemon's own
//! cgroup and in the prefix, after moving the daemon (only it) into a leaf.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::mountinfo::{self, Membership, Mount};
use super::{cpu, disk_io, fs, memory, pids, CgroupError, Limits, Stats, DAEMON_LEAF};

/// The controllers croft enables and needs.
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// The controllers croft enables where they are offered.
const OPTIONAL_CONTROLLERS: [&str; 1] = ["io"];

/// The daemon's own cgroup directory, `None` if no cgroup2 is mounted. A
/// trailing [`DAEMON_LEAF`] is stepped over: that is where an earlier
/// [`prepare`] of this daemon put it. Fails if the own cgroup does not offer
/// the controllers croft needs.
pub(super) fn resolve(
    mounts: &[Mount],
    own: &[Membership],
    fs_root: &Path,
) -> Result<Option<PathBuf>, CgroupError> {
    if !mounts.iter().any(|m| m.v2) {
        return Ok(None);
    }
    let membership = own
        .iter()
        .find(|m| m.id == 0 && m.controllers.is_empty())
        .ok_or_else(|| CgroupError::OwnCgroupUnknown {
            hierarchy: "cgroup2".to_owned(),
        })?;
    let path = match membership.path.strip_suffix(DAEMON_LEAF) {
        Some(parent) if parent.ends_with('/') => parent,
        _ => &membership.path,
    };
    let dir = mountinfo::own_dir("cgroup2", path, mounts.iter().filter(|m| m.v2), fs_root)?;
    check_controllers(&dir)?;
    Ok(Some(dir))
}

/// Fails unless `dir/cgroup.controllers` lists every controller croft needs.
fn check_controllers(dir: &Path) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.controllers");
    let content = fs::read(&path)?;
    let available: BTreeSet<&str> = content.split_whitespace().collect();
    match CONTROLLERS.into_iter().find(|c| !available.contains(c)) {
        Some(controller) => Err(CgroupError::ControllerUnavailable { controller, path }),
        None => Ok(()),
    }
}

/// Enables the controllers croft needs in `dir/cgroup.subtree_control`,
/// writing only those not yet enabled.
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    check_controllers(dir)?;
    let path = dir.join("cgroup.subtree_control");
    let content = fs::read(&path)?;
    let enabled: BTreeSet<&str> = content.split_whitespace().collect();
    // `io` where it is offered: only disk I/O limits need it.
    let available: BTreeSet<String> = fs::read(&dir.join("cgroup.controllers"))?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let optional = OPTIONAL_CONTROLLERS
        .into_iter()
        .filter(|c| available.contains(*c));
    let missing: Vec<String> = CONTROLLERS
        .into_iter()
        .chain(optional)
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::write_file(&path, &missing.join(" "))
}

/// The root cgroup is the only one without a `cgroup.type` file; it is exempt
/// from the "no internal processes" rule.
fn is_root(dir: &Path) -> bool {
    !dir.join("cgroup.type").exists()
}

pub(super) fn prepare(own: &Path, base: &Path) -> Result<(), CgroupError> {
    if !is_root(own) && !fs::read(&own.join("cgroup.procs"))?.trim().is_empty() {
        let leaf = own.join(DAEMON_LEAF);
        fs::create_dir(&leaf)?;
        fs::write_file(&leaf.join("cgroup.procs"), &std::process::id().to_string())?;
    }
    enable_controllers(own)?;
    fs::create_dir(base)?;
    enable_controllers(base)
}

pub(super) fn apply(dir: &Path, limits: &Limits) -> Result<(), CgroupError> {
    fs::apply_writes(dir, &memory::v2_writes(limits.memory_bytes))?;
    fs::apply_writes(dir, &cpu::v2_writes(limits.cpu_millicores, limits.cpu_weight))?;
    fs::apply_writes(dir, &pids::writes(limits.pids_max))?;
    match &limits.io {
        Some(io) => fs::apply_writes(dir, &disk_io::v2_writes(io)).map_err(|e| match e {
            CgroupError::Write { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                CgroupError::ControllerUnavailable {
                    controller: "io",
                    path: dir.join("io.max"),
                }
            }
            e => e,
        }),
        None => Ok(()),
    }
}

/// What the cgroup read and wrote on `device`; `None` where the io
/// controller does not reach it.
pub(super) fn io_stats(
    dir: &Path,
    device: disk_io::BlockDevice,
) -> Result<Option<disk_io::IoStats>, CgroupError> {
    Ok(fs::read_optional(&dir.join("io.stat"))?.map(|text| disk_io::v2_stats(device, &text)))
}

pub(super) fn stats(dir: &Path) -> Result<Stats, CgroupError> {
    let mut stats = Stats::default();
    memory::v2_stats(dir, &mut stats)?;
    cpu::v2_stats(dir, &mut stats)?;
    pids::stats(dir, &mut stats)?;
    Ok(stats)
}
