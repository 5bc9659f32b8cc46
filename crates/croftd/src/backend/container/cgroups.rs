//! Each VPS's cgroup: made at start with its limits and CPUs, found again
//! where it was made (recorded in its run directory), drained and removed
//! when it stops.

use super::ContainerBackend;
use crate::backend::{BackendError, Result};
use croft_api::config::InstanceConfig;
use croft_api::Status;
use croft_host::cgroup::disk_io::{BlockDevice, IoLimits};
use croft_host::cgroup::{Cgroup, CgroupError, CgroupLocation, Limits};
use croft_host::spec::RunDir;
use std::time::Duration;
use tracing::warn;

/// How long a stop waits for a VPS's killed processes to leave its cgroup.
const CGROUP_DRAIN: Duration = Duration::from_secs(5);

/// The cgroup limits of `cfg`; its disk I/O limits on `device` (the
/// pool's), where there is one and `cfg` or `before` (the limits they
/// replace) has any: a VPS that never had one gets no blkio rule at all
/// (a rule the kernel refuses, on a device it does not throttle, would
/// fail its start).
pub(super) fn limits(cfg: &InstanceConfig, before: &InstanceConfig, device: Option<BlockDevice>) -> Limits {
    let io_device = device.filter(|_| !(cfg.disk_io.is_unlimited() && before.disk_io.is_unlimited()));
    Limits {
        memory_bytes: cfg.memory_bytes,
        cpu_millicores: cfg.cpu_millicores,
        cpu_weight: cfg.cpu_weight,
        pids_max: cfg.processes,
        io: io_device.map(|device| IoLimits {
            device,
            read_bps: cfg.disk_io.read_bps,
            write_bps: cfg.disk_io.write_bps,
            read_iops: cfg.disk_io.read_iops,
            write_iops: cfg.disk_io.write_iops,
        }),
    }
}

/// CPUs a quota of `millicores` is pinned to: ceil(quota), at least one.
fn cpus_for_quota(millicores: u64) -> usize {
    millicores.div_ceil(1000).max(1) as usize
}

impl ContainerBackend {
    /// Make VPS `name`'s cgroup and record where it is.
    pub(super) fn create_cgroup(
        &self,
        name: &str,
        devices: &[croft_host::spec::HostDevice],
    ) -> Result<Cgroup> {
        let rules: Vec<&str> = devices.iter().map(|d| d.rule()).collect();
        let cgroup = self.cgroups.create_with_devices(name, &rules)?;
        let json = serde_json::to_vec(&cgroup.location()).expect("a location serializes");
        let path = RunDir(&self.run_dir(name)).cgroup();
        if let Err(e) = std::fs::write(&path, json) {
            let _ = cgroup.remove();
            return Err(BackendError::host(format!("write {}", path.display()), e));
        }
        Ok(cgroup)
    }

    /// Where VPS `name`'s cgroup was recorded when it started (this
    /// croftd may since run in another cgroup), else where this croftd
    /// makes it; `None` for a name no cgroup can have.
    pub(super) fn cgroup(&self, name: &str) -> Option<Cgroup> {
        match self.recorded_location(name) {
            Some(location) => self.cgroups.adopt(name, &location).ok(),
            None => self.cgroups.open(name).ok(),
        }
    }

    fn recorded_location(&self, name: &str) -> Option<CgroupLocation> {
        let text = std::fs::read(RunDir(&self.run_dir(name)).cgroup()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Remove VPS `name`'s cgroup once its processes are gone, and forget
    /// where it was. Processes killed a moment ago (exec helpers outside
    /// the pid namespace, an init still tearing down its mount namespaces
    /// on a busy host) may take a while to leave: up to [`CGROUP_DRAIN`].
    pub(super) async fn remove_cgroup(&self, name: &str) {
        let Some(cg) = self.cgroup(name) else {
            return;
        };
        let deadline = std::time::Instant::now() + CGROUP_DRAIN;
        loop {
            match cg.remove() {
                Ok(()) => {
                    let _ = std::fs::remove_file(RunDir(&self.run_dir(name)).cgroup());
                    return;
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    // Kept on record: the next stop or croftd start tries
                    // again where it is.
                    warn!(vps = name, "cgroup not removed: {e}");
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// SIGKILL everything in VPS `name`'s cgroup until it is empty (for a
    /// second at most).
    pub(super) async fn kill_cgroup(&self, name: &str) {
        let Some(cg) = self.cgroup(name) else {
            return;
        };
        for _ in 0..50 {
            match cg.kill_all() {
                Ok(0) | Err(_) => return,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The cgroups of the VPSes other than `name` that have one (the
    /// running ones).
    pub(super) fn other_cgroups(&self, name: &str) -> Vec<Cgroup> {
        let Ok(entries) = std::fs::read_dir(&self.cfg.vps_run_dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != name)
            .filter_map(|n| {
                let location = self.recorded_location(&n)?;
                self.cgroups.adopt(&n, &location).ok()
            })
            .collect()
    }

    /// Pin a VPS with a CPU quota to ceil(quota) of the CPUs the fewest
    /// other VPSes are pinned to (so `nproc` and /proc/cpuinfo inside show
    /// the CPUs it has, and its threads stay on them); let one without a
    /// quota, or with a quota of every CPU, run anywhere. A running VPS
    /// whose quota still needs as many CPUs keeps the ones it has.
    pub(super) fn pin_cpus(&self, cgroup: &Cgroup, others: &[Cgroup], cfg: &InstanceConfig) -> Result<()> {
        let Some(host) = self.cgroups.host_cpus()?.filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        let Some(want) = cfg.cpu_millicores.map(cpus_for_quota).filter(|&n| n < host.len()) else {
            return Ok(cgroup.pin_cpus(None)?);
        };
        if let Some(current) = cgroup.cpus()? {
            if current.len() == want && current.iter().all(|c| host.contains(c)) {
                return Ok(());
            }
        }
        let mut pins = std::collections::BTreeMap::new();
        for other in others {
            let Ok(Some(cpus)) = other.cpus() else {
                continue;
            };
            if cpus.len() < host.len() {
                for cpu in cpus {
                    *pins.entry(cpu).or_insert(0) += 1;
                }
            }
        }
        let chosen = croft_host::cgroup::cpuset::least_used(&host, &pins, want);
        Ok(cgroup.pin_cpus(Some(&chosen))?)
    }

    /// Limits of a running VPS, changed live; the old ones put back if the
    /// new ones do not take.
    pub(super) async fn apply_cgroup_limits(
        &self,
        name: &str,
        new: &InstanceConfig,
        old: &InstanceConfig,
    ) -> Result<()> {
        let cg = self
            .cgroup(name)
            .ok_or_else(|| BackendError::Busy(format!("VPS {name} has no cgroup to apply limits to")))?;
        let others = self.other_cgroups(name);
        let applied = cg
            .apply(&limits(new, old, self.io_device))
            .map_err(BackendError::from)
            .and_then(|()| self.pin_cpus(&cg, &others, new));
        if let Err(e) = applied {
            let _ = cg.apply(&limits(old, new, self.io_device));
            let _ = self.pin_cpus(&cg, &others, old);
            // Said of the VPS by the service, which knows its name.
            if let BackendError::Cgroup(CgroupError::MemoryInUse { .. }) = &e {
                return Err(e);
            }
            return Err(BackendError::Limits(Box::new(e)));
        }
        Ok(())
    }

    /// After croftd started: remove the empty cgroups of stopped VPSes
    /// and those of VPSes croft does not know (a crash between making and
    /// recording them).
    pub(super) async fn tidy_cgroups(&self, known: &[(String, Status)]) {
        for (name, status) in known {
            if *status != Status::Stopped {
                continue;
            }
            if let Some(cg) = self.cgroup(name) {
                if cg.exists() && cg.procs().map(|p| p.is_empty()).unwrap_or(false) && cg.remove().is_ok() {
                    let _ = std::fs::remove_file(RunDir(&self.run_dir(name)).cgroup());
                }
            }
        }
        let Ok(present) = self.cgroups.list() else {
            return;
        };
        for orphan in present.into_iter().filter(|n| !known.iter().any(|(k, _)| k == n)) {
            if let Ok(cg) = self.cgroups.open(&orphan) {
                if cg.procs().map(|p| p.is_empty()).unwrap_or(false) {
                    warn!(cgroup = %orphan, "removing an orphaned cgroup");
                    let _ = cg.remove();
                }
            }
        }
    }
}
