//! The container backend: each VPS runs under its own `croft-supervisor`,
//! in a cgroup of its own beneath croftd's, from a disk in the pool.
//!
//! croftd never forks a VPS itself: a start writes the spec and launches a
//! supervisor, which detaches and owns the VPS from then on. This backend
//! talks to supervisors over their control sockets and keeps one `watch`
//! connection per running VPS to learn of exits and reboots.

mod cgroups;
mod disk;
mod exec;
mod supervisor;

use super::{Backend, BackendError, DiskSource, Found, Identity, Result, StartSpec, VpsEvent};
use crate::service::images::catalog::Catalog;
use crate::store::InstanceRecord;
use async_trait::async_trait;
use croft_api::config::InstanceConfig;
use croft_api::{Status, Usage};
use croft_host::cgroup::disk_io::BlockDevice;
use croft_host::cgroup::{CgroupManager, Version};
use croft_host::spec::RunDir;
use croft_host::storage::{Pool, SideVolume};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::warn;

/// What cgroup v1's blkio throttling enforces, as measured with fio on a
/// loop-file btrfs pool (docs/benchmarks.md): what the VPS's own processes
/// submit to the pool's device.
const DISK_IO_V1: &str = "cgroup v1 (blkio) throttles, on the pool's device, reads (direct or \
     missing the page cache), direct (O_DIRECT) writes and the writes a VPS's own fsync pushes \
     out; buffered writes the kernel writes back later (on its own, or for sync) are not throttled";
/// What cgroup v2's io.max enforces (not measured here: this host is v1).
const DISK_IO_V2: &str = "cgroup v2 (io.max) throttles reads and writes on the pool's device; \
     buffered writes are throttled as they are written back where the filesystem supports \
     cgroup writeback (btrfs and ext4 do)";

/// Why a cgroup v2 host gives no containers inside a VPS in this croft.
const NESTING_V2: &str = "containers inside a VPS are built and tested on cgroup v1 hosts only \
     (where they run without cgroups of their own); on cgroup v2 croft would also delegate \
     the VPS's cgroup subtree to them, which is not built yet; see docs/vps-features.md";

/// Where the container backend keeps things on the host.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// Each VPS's run directory (spec, control socket, console log) is
    /// `<vps_run_dir>/<name>`.
    pub vps_run_dir: PathBuf,
    /// The `croft-supervisor` binary.
    pub supervisor: PathBuf,
    /// Where lxcfs is mounted (`<dir>/lxcfs`), when VPSes get lxcfs.
    pub lxcfs_dir: Option<PathBuf>,
    /// croft's cgroup beneath croftd's own.
    pub cgroup_prefix: String,
    /// `statfs` inside answers with the VPS's disk (where the pool can).
    pub disk_view: bool,
}

pub struct ContainerBackend {
    cfg: ContainerConfig,
    cgroups: CgroupManager,
    pool: Arc<dyn Pool>,
    catalog: Catalog,
    /// The block device the pool is on: where disk I/O limits apply.
    io_device: Option<BlockDevice>,
    /// Whether the kernel counts each VPS's I/O on it
    /// ([`croft_host::cgroup::CgroupManager::count_io`]).
    io_counted: bool,
}

impl ContainerBackend {
    /// Find the host's cgroups and make croft's beneath croftd's own.
    pub fn new(cfg: ContainerConfig, pool: Arc<dyn Pool>, catalog: Catalog) -> Result<ContainerBackend> {
        let cgroups = CgroupManager::detect(&cfg.cgroup_prefix)?;
        cgroups.prepare()?;
        let io_device = pool
            .info()
            .ok()
            .and_then(|info| croft_host::storage::block_device_of(std::path::Path::new(&info.mount)))
            .map(|(major, minor)| BlockDevice { major, minor });
        // Disk I/O counts for the metrics: without them a VPS still runs,
        // and shows none rather than zeros.
        let io_counted = io_device.is_some_and(|device| match cgroups.count_io(device) {
            Ok(()) => true,
            Err(e) => {
                warn!("disk I/O of VPSes will not be counted: {e}");
                false
            }
        });
        Ok(ContainerBackend {
            cfg,
            cgroups,
            pool,
            catalog,
            io_device,
            io_counted,
        })
    }

    fn run_dir(&self, name: &str) -> PathBuf {
        self.cfg.vps_run_dir.join(name)
    }
}

#[async_trait]
impl Backend for ContainerBackend {
    fn kind(&self) -> &'static str {
        "container"
    }

    fn cgroup_version(&self) -> Option<&'static str> {
        Some(match self.cgroups.version() {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }

    fn nesting(&self) -> std::result::Result<(), String> {
        // On v1 a VPS gets no cgroup subtree of its own to hand to its
        // containers (blkio throttling is not hierarchical there, so a
        // child cgroup would escape the VPS's disk I/O limits): they run
        // without cgroups, held by the VPS's own limits.
        if self.cgroups.version() == Version::V2 {
            return Err(NESTING_V2.into());
        }
        // The unmasked /proc of nesting shows /proc/kallsyms: with real
        // addresses (KASLR undone) where the host shows them to everyone.
        let sysctl = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        if sysctl("kptr_restrict") == Some(0) && sysctl("perf_event_paranoid").is_some_and(|p| p <= 1) {
            return Err(
                "this host shows kernel addresses in /proc/kallsyms to every reader \
                 (kernel.kptr_restrict = 0 and kernel.perf_event_paranoid <= 1), and a VPS with \
                 nesting has a /proc that does not hide them: set kernel.kptr_restrict = 1 first"
                    .into(),
            );
        }
        Ok(())
    }

    fn disk_io(&self) -> std::result::Result<&'static str, String> {
        if self.io_device.is_none() {
            return Err("the storage pool is not on a block device".into());
        }
        match (self.cgroups.version(), self.cgroups.io_available()) {
            (Version::V1, false) => Err("no blkio cgroup hierarchy is mounted".into()),
            (Version::V2, false) => Err("the io controller is not offered to croftd's cgroup".into()),
            (Version::V1, true) => Ok(DISK_IO_V1),
            (Version::V2, true) => Ok(DISK_IO_V2),
        }
    }

    async fn prepare_disk(
        &self,
        vps: &InstanceRecord,
        source: DiskSource<'_>,
        side: Option<SideVolume>,
    ) -> Result<PathBuf> {
        self.make_disk(vps, source, side).await
    }

    async fn provision(&self, disk: PathBuf, identity: Identity) -> Result<()> {
        disk::provision(disk, identity).await
    }

    async fn start(&self, vps: &InstanceRecord, spec: StartSpec) -> Result<i32> {
        self.start_supervised(vps, spec).await
    }

    async fn stop(&self, vps: &InstanceRecord, force: bool, timeout_secs: u64) -> Result<String> {
        let socket = RunDir(&self.run_dir(&vps.key)).socket();
        let reply = crate::blocking(move || supervisor::stop(&socket, force, timeout_secs)).await?;
        Ok(match reply {
            Ok(exit) => exit.reason,
            Err(e) => {
                // The supervisor is gone: end whatever it left in the cgroup.
                warn!(vps = %vps.key, "supervisor unreachable during stop ({e}); killing the VPS cgroup");
                self.kill(&vps.key).await;
                supervisor::read_exit_record(&self.run_dir(&vps.key))
                    .map(|r| r.reason)
                    .unwrap_or_else(|| "killed".into())
            }
        })
    }

    async fn kill(&self, name: &str) {
        self.kill_cgroup(name).await;
    }

    async fn release(&self, name: &str) {
        self.remove_cgroup(name).await;
        let _ = std::fs::remove_file(RunDir(&self.run_dir(name)).spec());
    }

    async fn remove(&self, name: &str) -> Result<()> {
        if let Some(cg) = self.cgroup(name) {
            cg.remove()?;
        }
        let _ = std::fs::remove_dir_all(self.run_dir(name));
        Ok(())
    }

    async fn reattach(&self, name: &str) -> Found {
        let run_dir = self.run_dir(name);
        let status = crate::blocking(move || supervisor::wait_for_supervisor(&run_dir)).await;
        match status {
            Ok(Ok(init_pid)) => Found::Running { init_pid },
            _ => {
                let reason = supervisor::read_exit_record(&self.run_dir(name))
                    .map(|r| r.reason)
                    .unwrap_or_else(|| "stopped while croftd was down".into());
                self.kill_cgroup(name).await;
                Found::Gone { reason }
            }
        }
    }

    fn watch(&self, name: &str) -> mpsc::UnboundedReceiver<VpsEvent> {
        supervisor::watch(self.run_dir(name))
    }

    async fn tidy(&self, known: &[(String, Status)]) {
        self.tidy_cgroups(known).await;
    }

    async fn shutdown(&self) {
        if let Err(e) = self.cgroups.remove_prefix() {
            warn!("leaving croft's cgroup prefix in place: {e}");
        }
    }

    async fn apply_limits(&self, name: &str, new: &InstanceConfig, old: &InstanceConfig) -> Result<()> {
        self.apply_cgroup_limits(name, new, old).await
    }

    async fn set_address(&self, name: &str, cidr: &str, remove: bool) -> Result<()> {
        let socket = RunDir(&self.run_dir(name)).socket();
        let (text, vps) = (cidr.to_string(), name.to_string());
        crate::blocking(move || supervisor::set_address(&socket, &text, remove))
            .await?
            .map_err(|detail| {
                BackendError::host(
                    format!("change the addresses of VPS {vps}"),
                    std::io::Error::other(detail),
                )
            })?;
        // Where a reboot from inside (a new interface) finds it.
        let spec_path = RunDir(&self.run_dir(name)).spec();
        let Ok(text) = std::fs::read(&spec_path) else {
            return Ok(());
        };
        let Ok(mut spec) = serde_json::from_slice::<croft_host::spec::VpsSpec>(&text) else {
            return Ok(());
        };
        if let Some(n) = spec.nic.as_mut() {
            n.addresses.retain(|a| a != cidr);
            if !remove {
                n.addresses.push(cidr.to_string());
            }
        }
        let json = serde_json::to_vec_pretty(&spec).expect("spec serializes");
        let tmp = spec_path.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|_| std::fs::rename(&tmp, &spec_path))
            .map_err(|e| BackendError::host("update the spec", e))
    }

    async fn addresses(&self, name: &str) -> Result<Vec<String>> {
        let spec_path = RunDir(&self.run_dir(name)).spec();
        let text = std::fs::read(&spec_path).map_err(|e| BackendError::host("read the spec", e))?;
        let spec = serde_json::from_slice::<croft_host::spec::VpsSpec>(&text)
            .map_err(|e| BackendError::host("read the spec", std::io::Error::other(e)))?;
        Ok(spec.nic.map(|n| n.addresses).unwrap_or_default())
    }

    async fn record_bandwidth(&self, name: &str, ingress: Option<u64>, egress: Option<u64>) -> Result<()> {
        let spec_path = RunDir(&self.run_dir(name)).spec();
        let Ok(text) = std::fs::read(&spec_path) else {
            return Ok(());
        };
        let Ok(mut spec) = serde_json::from_slice::<croft_host::spec::VpsSpec>(&text) else {
            return Ok(());
        };
        for n in spec.nic.iter_mut().chain(spec.extra_nics.iter_mut()) {
            n.ingress_bps = ingress;
            n.egress_bps = egress;
        }
        // Written aside and renamed: the supervisor may read it at any
        // moment (a reboot from inside).
        let json = serde_json::to_vec_pretty(&spec).expect("spec serializes");
        let tmp = spec_path.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|_| std::fs::rename(&tmp, &spec_path))
            .map_err(|e| BackendError::host("update the spec", e))
    }

    fn usage(&self, name: &str) -> Option<Usage> {
        let cgroup = self.cgroup(name)?;
        let s = cgroup.stats().ok()?;
        let disk_io = self
            .io_device
            .filter(|_| self.io_counted)
            .and_then(|device| cgroup.io_stats(device).ok().flatten())
            .map(|io| croft_api::DiskIoCounts {
                read_bytes: io.read_bytes,
                written_bytes: io.written_bytes,
                reads: io.reads,
                writes: io.writes,
            });
        Some(Usage {
            memory_bytes: s.memory_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            oom_kills: s.oom_kills,
            cpu_usage_ns: s.cpu_usage_ns,
            processes: s.pids_current,
            disk_io,
        })
    }

    fn control_socket(&self, name: &str) -> Option<String> {
        Some(RunDir(&self.run_dir(name)).socket().display().to_string())
    }

    async fn console_log(&self, name: &str, max: usize) -> Vec<u8> {
        let path = RunDir(&self.run_dir(name)).console_log();
        let mut bytes = std::fs::read(path.with_extension("log.1")).unwrap_or_default();
        bytes.extend(std::fs::read(&path).unwrap_or_default());
        let start = bytes.len().saturating_sub(max);
        bytes.split_off(start)
    }

    async fn exec(
        &self,
        name: &str,
        start: croft_api::exec::ExecStart,
    ) -> Result<super::session::ExecSession> {
        self.exec_supervised(name, start).await
    }

    async fn console(&self, name: &str) -> Result<super::session::ExecSession> {
        self.console_supervised(name).await
    }
}
