//! Starting a VPS under a supervisor, and talking to supervisors over
//! their control sockets: stop, status, and the `watch` stream of exits
//! and reboots.

use super::{ContainerBackend, InstanceRecord};
use crate::backend::{BackendError, Result, StartSpec, VpsEvent};
use croft_host::proto::{Conn, ExitRecord, ProtoError, Reply, Request};
use croft_host::spec::{HostDevice, RunDir, SupervisorLock, VpsSpec, ID_RANGE};
use croft_host::supervise::Verdict;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

impl ContainerBackend {
    /// Start `vps` from `spec` under a new supervisor; its init's pid.
    pub(super) async fn start_supervised(&self, vps: &InstanceRecord, spec: StartSpec) -> Result<i32> {
        // Its key names what it has on the host; its name is its hostname.
        let name = &vps.key;
        if let Some(files) = spec.network_files.clone() {
            let (rootfs, hostname) = (spec.rootfs.clone(), vps.name.clone());
            crate::blocking(move || {
                croft_host::rootfs::write_network_files(&rootfs, &hostname, &files.addresses, &files.dns)
            })
            .await?
            .map_err(|e| BackendError::host("write the VPS's network files", e))?;
        }
        // The lock first: while an old supervisor of this VPS still lives,
        // nothing of its (cgroup, spec) may be touched.
        let run_dir = self.run_dir(name);
        std::fs::create_dir_all(&run_dir)
            .and_then(|()| std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| BackendError::host(format!("create {}", run_dir.display()), e))?;
        let lock = SupervisorLock::acquire(&run_dir)
            .map_err(|e| BackendError::host(format!("lock {}", RunDir(&run_dir).lock().display()), e))?
            .ok_or_else(|| {
                BackendError::Busy(format!(
                    "a supervisor of VPS {} is still running; try again when it has exited",
                    vps.name
                ))
            })?;
        // Its features: host devices in its /dev, allowed by its cgroup.
        let devices: Vec<HostDevice> = [
            (HostDevice::Tun, vps.settings.parsed.tun),
            (HostDevice::Fuse, vps.settings.parsed.fuse),
        ]
        .into_iter()
        .filter_map(|(device, on)| on.then_some(device))
        .collect();
        let cgroup = self.create_cgroup(name, &devices)?;
        let result = async {
            let cfg = &vps.settings.parsed;
            cgroup.apply(&super::cgroups::limits(cfg, cfg, self.io_device))?;
            let others = self.other_cgroups(name);
            self.pin_cpus(&cgroup, &others, cfg)?;
            cgroup.delegate(vps.uid_base)?;
            let lxcfs = self.lxcfs_mount().await;
            let vps_spec = VpsSpec {
                name: name.clone(),
                hostname: vps.name.clone(),
                stop_signal: croft_host::rootfs::stop_signal_for(&spec.rootfs, &spec.default_stop_signal),
                rootfs: spec.rootfs,
                uid_base: vps.uid_base,
                id_count: ID_RANGE,
                init: spec.init,
                env: vec!["container=croft".into(), "TERM=linux".into()],
                cgroup_dirs: cgroup.dirs(),
                run_dir: run_dir.clone(),
                idmap_rootfs: self.pool.snapshots(),
                cgroup_mount: cgroup.systemd_dir().map(|_| {
                    crate::backend::Backend::cgroup_version(self)
                        .unwrap_or("v2")
                        .to_string()
                }),
                nic: spec.nic,
                extra_nics: spec.extra_nics,
                lxcfs,
                // In a rescue boot the root is another disk.
                cpu_cgroup_dirs: cgroup.cpu_dirs(),
                disk_view: (self.cfg.disk_view && spec.rescue_disk.is_none())
                    .then(|| self.pool.disk_view(name))
                    .flatten(),
                rescue_disk: spec.rescue_disk,
                memory_limit: cfg.memory_bytes,
                devices: devices.clone(),
                nesting: cfg.nesting,
            };
            let json = serde_json::to_vec_pretty(&vps_spec).expect("spec serializes");
            std::fs::write(RunDir(&run_dir).spec(), json).map_err(|e| BackendError::host("write spec", e))?;
            let (supervisor, dir) = (self.cfg.supervisor.clone(), run_dir.clone());
            let verdict = crate::blocking(move || croft_host::supervise::start(&supervisor, &dir, &lock))
                .await?
                .map_err(|e| BackendError::host("start the supervisor", e))?;
            match verdict {
                Verdict::Ready(pid) => Ok(pid),
                Verdict::Unavailable(detail) => Err(BackendError::Unavailable {
                    name: name.clone(),
                    detail,
                }),
                Verdict::Failed(detail) => Err(BackendError::Start {
                    name: name.clone(),
                    detail,
                }),
            }
        }
        .await;
        if result.is_err() {
            if cgroup.remove().is_ok() {
                let _ = std::fs::remove_file(RunDir(&run_dir).cgroup());
            }
            let _ = std::fs::remove_file(RunDir(&run_dir).spec());
        }
        result
    }

    /// The lxcfs mount for a starting VPS, starting lxcfs again if it died;
    /// `None` (the host's /proc files) if lxcfs is off or cannot run.
    async fn lxcfs_mount(&self) -> Option<PathBuf> {
        let dir = self.cfg.lxcfs_dir.clone()?;
        match crate::blocking(move || croft_host::lxcfs::ensure(&dir)).await {
            Ok(Ok(mnt)) => Some(mnt),
            Ok(Err(e)) => {
                tracing::warn!("lxcfs unavailable, VPSes see the host's /proc files: {e}");
                None
            }
            Err(_) => None,
        }
    }
}

/// Ask the supervisor on `socket` to stop its VPS and wait until it is
/// down. Blocking.
pub(super) fn stop(socket: &Path, force: bool, timeout_secs: u64) -> Result<ExitRecord, ProtoError> {
    let conn = Conn::connect(socket)?;
    conn.send(&Request::Stop { force, timeout_secs }, &[])?;
    loop {
        if let (Reply::Down { exit }, _) = conn.recv::<Reply>()? {
            return Ok(exit);
        }
    }
}

/// Ask the supervisor on `socket` to add (or remove) an address on its
/// VPS's interface. Blocking; the error is the supervisor's message.
pub(super) fn set_address(socket: &Path, cidr: &str, remove: bool) -> Result<(), String> {
    let conn = Conn::connect(socket).map_err(|e| crate::error_chain(&e))?;
    conn.send(
        &Request::Address {
            cidr: cidr.into(),
            remove,
        },
        &[],
    )
    .map_err(|e| crate::error_chain(&e))?;
    match conn.recv::<Reply>().map_err(|e| crate::error_chain(&e))? {
        (Reply::Done, _) => Ok(()),
        (Reply::Error { message }, _) => Err(message),
        (other, _) => Err(format!("unexpected answer {other:?}")),
    }
}

/// Follow the supervisor of `run_dir`: its events on a channel, from a
/// task that holds no thread while it waits (the socket is polled by
/// tokio), until the VPS is down.
pub(super) fn watch(run_dir: PathBuf) -> mpsc::UnboundedReceiver<VpsEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let socket = RunDir(&run_dir).socket();
        let mut conn = None;
        loop {
            let event = match watch_next(&socket, &mut conn).await {
                Ok(event) => event,
                Err(lost) => VpsEvent::Down {
                    reason: read_exit_record(&run_dir)
                        .map(|r| r.reason)
                        .unwrap_or(format!("supervisor lost: {lost}")),
                },
            };
            let down = matches!(event, VpsEvent::Down { .. });
            if tx.send(event).is_err() || down {
                return;
            }
        }
    });
    rx
}

type WatchConn = AsyncFd<Conn>;

/// The next event on a supervisor's `watch` connection, opening it on the
/// first call; `Err` when the supervisor is lost.
async fn watch_next(socket: &Path, conn: &mut Option<WatchConn>) -> Result<VpsEvent, String> {
    if conn.is_none() {
        *conn = Some(open_watch(socket)?);
    }
    let afd = conn.as_ref().expect("opened above");
    loop {
        let mut guard = afd.readable().await.map_err(|e| e.to_string())?;
        let res = guard.try_io(|inner| match inner.get_ref().recv::<Reply>() {
            Err(ProtoError::Io(nix::Error::EAGAIN)) => Err(std::io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        });
        match res {
            Err(_would_block) => continue,
            Ok(Ok(Ok((Reply::Down { exit }, _)))) => return Ok(VpsEvent::Down { reason: exit.reason }),
            Ok(Ok(Ok((Reply::Rebooted { init_pid, reason }, _)))) => {
                return Ok(VpsEvent::Rebooted { init_pid, reason })
            }
            Ok(Ok(Ok(_))) => continue,
            Ok(Ok(Err(e))) => return Err(e.to_string()),
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
}

fn open_watch(socket: &Path) -> Result<WatchConn, String> {
    let conn = Conn::connect(socket).map_err(|e| e.to_string())?;
    conn.send(&Request::Watch, &[]).map_err(|e| e.to_string())?;
    conn.set_nonblocking().map_err(|e| e.to_string())?;
    // SAFETY: `Conn` owns its descriptor (an OwnedFd) and always returns
    // that same descriptor from as_raw_fd; the AsyncFd owns the Conn, so
    // the descriptor stays open for as long as it is registered.
    unsafe { AsyncFd::register(conn) }.map_err(|e| e.to_string())
}

/// The init pid of the VPS a supervisor of `run_dir` runs. A supervisor
/// that still holds its lock but does not answer yet is starting (or
/// ending): wait for it to answer or to exit, up to a minute.
pub(super) fn wait_for_supervisor(run_dir: &Path) -> Result<i32, ProtoError> {
    let socket = RunDir(run_dir).socket();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = supervisor_status(&socket);
        if status.is_ok() || !SupervisorLock::held(run_dir) || std::time::Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn supervisor_status(socket: &Path) -> Result<i32, ProtoError> {
    let conn = Conn::connect(socket)?;
    conn.send(&Request::Status, &[])?;
    match conn.recv::<Reply>()? {
        (Reply::Status { init_pid, .. }, _) => Ok(init_pid),
        _ => Err(ProtoError::Closed),
    }
}

/// How the VPS of `run_dir` last ended, as its supervisor recorded it.
pub(super) fn read_exit_record(run_dir: &Path) -> Option<ExitRecord> {
    serde_json::from_slice(&std::fs::read(RunDir(run_dir).exit_record()).ok()?).ok()
}
