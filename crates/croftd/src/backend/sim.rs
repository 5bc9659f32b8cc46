//! The simulated backend: VPSes that exist only in memory, with disks as
//! empty directories of the pool. Everything above the backend (services,
//! store, API) runs on it for real, without root: the service and API
//! tests, and `croftd --simulate` for panel and client development.
//!
//! Tests drive what a real VPS would do on its own through
//! [`SimBackend::crash`], [`SimBackend::reboot`] and
//! [`SimBackend::fail_next_start`], and hold a disk being made with
//! [`SimBackend::hold_disks`] (a slow copy) to act while it is. Exec runs a handful of simulated
//! commands (`sim_exec.rs`).

use super::{Backend, BackendError, DiskSource, Found, Identity, Result, StartSpec, VpsEvent};
use crate::store::InstanceRecord;
use async_trait::async_trait;
use croft_api::config::InstanceConfig;
use croft_api::{Status, Usage};
use croft_host::storage::{Pool, SideVolume};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Default)]
struct SimVps {
    init_pid: Option<i32>,
    /// Addresses added or removed live (`set_address`).
    addresses: Vec<String>,
    config: InstanceConfig,
    events: Option<mpsc::UnboundedSender<VpsEvent>>,
}

#[derive(Default)]
struct State {
    vpses: HashMap<String, SimVps>,
    /// Identities given to disks, by disk path.
    identities: HashMap<PathBuf, Identity>,
    next_pid: i32,
    fail_next_start: Option<String>,
    disk_hold: Option<Arc<DiskHold>>,
    /// Why disk I/O limits cannot be enforced, as a host may say.
    no_disk_io: Option<String>,
}

/// Disks being made wait here until released: see [`SimBackend::hold_disks`].
pub struct DiskHold {
    reached: tokio::sync::Notify,
    /// Never given a permit: closing it lets every waiter through.
    gate: tokio::sync::Semaphore,
}

impl DiskHold {
    /// Wait until a disk is being made (and held).
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Let every held disk (and every later one) be made.
    pub fn release(&self) {
        self.gate.close();
    }
}

pub struct SimBackend {
    pool: Arc<dyn Pool>,
    state: Mutex<State>,
}

impl SimBackend {
    pub fn new(pool: Arc<dyn Pool>) -> SimBackend {
        SimBackend {
            pool,
            state: Mutex::new(State {
                next_pid: 1000,
                ..Default::default()
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("sim state poisoned")
    }

    /// Whether VPS `name` runs, and its init's pid.
    pub fn running(&self, name: &str) -> Option<i32> {
        self.state().vpses.get(name).and_then(|v| v.init_pid)
    }

    /// The limits running VPS `name` has.
    pub fn limits(&self, name: &str) -> Option<InstanceConfig> {
        let state = self.state();
        let vps = state.vpses.get(name)?;
        vps.init_pid.map(|_| vps.config.clone())
    }

    /// The addresses added live to running VPS `name` (and not removed).
    pub fn live_addresses(&self, name: &str) -> Vec<String> {
        self.state()
            .vpses
            .get(name)
            .map(|v| v.addresses.clone())
            .unwrap_or_default()
    }

    /// The identity the disk at `disk` was given.
    pub fn identity(&self, disk: &std::path::Path) -> Option<Identity> {
        self.state().identities.get(disk).cloned()
    }

    /// VPS `name` goes down on its own, for `reason`.
    pub fn crash(&self, name: &str, reason: &str) {
        let mut state = self.state();
        if let Some(vps) = state.vpses.get_mut(name) {
            vps.init_pid = None;
            if let Some(tx) = vps.events.take() {
                let _ = tx.send(VpsEvent::Down {
                    reason: reason.into(),
                });
            }
        }
    }

    /// VPS `name` reboots from inside: a new init.
    /// Act as a host that cannot enforce disk I/O limits, for `why`.
    pub fn refuse_disk_io(&self, why: &str) {
        self.state().no_disk_io = Some(why.into());
    }

    pub fn reboot(&self, name: &str) -> Option<i32> {
        let mut state = self.state();
        state.next_pid += 1;
        let pid = state.next_pid;
        let vps = state.vpses.get_mut(name)?;
        vps.init_pid?;
        vps.init_pid = Some(pid);
        if let Some(tx) = &vps.events {
            let _ = tx.send(VpsEvent::Rebooted {
                init_pid: pid,
                reason: None,
            });
        }
        Some(pid)
    }

    /// From now on each disk being made (launch, copy, rebuild) waits
    /// until the hold is released, as a slow copy would.
    pub fn hold_disks(&self) -> Arc<DiskHold> {
        let hold = Arc::new(DiskHold {
            reached: tokio::sync::Notify::new(),
            gate: tokio::sync::Semaphore::new(0),
        });
        self.state().disk_hold = Some(hold.clone());
        hold
    }

    /// The next start fails, with `detail`.
    pub fn fail_next_start(&self, detail: &str) {
        self.state().fail_next_start = Some(detail.into());
    }
}

#[async_trait]
impl Backend for SimBackend {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn cgroup_version(&self) -> Option<&'static str> {
        None
    }

    fn disk_io(&self) -> std::result::Result<&'static str, String> {
        match &self.state().no_disk_io {
            Some(why) => Err(why.clone()),
            None => Ok("simulated: nothing is throttled"),
        }
    }

    fn nesting(&self) -> std::result::Result<(), String> {
        Err("the simulated backend runs no containers inside".into())
    }

    async fn prepare_disk(
        &self,
        vps: &InstanceRecord,
        source: DiskSource<'_>,
        side: Option<SideVolume>,
    ) -> Result<PathBuf> {
        let hold = self.state().disk_hold.clone();
        if let Some(hold) = hold {
            hold.reached.notify_one();
            // Err once released (closed): the only way through.
            let _ = hold.gate.acquire().await;
        }
        let dir = self.pool.instance_dir(&vps.key);
        std::fs::create_dir_all(&dir)
            .map_err(|e| BackendError::host(format!("create {}", dir.display()), e))?;
        let image = match source {
            DiskSource::Image(image) => crate::service::images::catalog::pool_name(image),
            DiskSource::Copy { vps: from, snapshot } => {
                return Ok(self.pool.copy_volume(from, snapshot, &vps.key)?);
            }
        };
        let snapshots = self.pool.snapshots();
        Ok(match side {
            None if snapshots => self.pool.clone_image(&image, &vps.key)?,
            None => self.pool.create_volume(&vps.key)?,
            Some(side) => {
                self.pool
                    .create_side_volume(&vps.key, side, snapshots.then_some(image.as_str()))?
            }
        })
    }

    async fn provision(&self, disk: PathBuf, identity: Identity) -> Result<()> {
        self.state().identities.insert(disk, identity);
        Ok(())
    }

    async fn start(&self, vps: &InstanceRecord, spec: StartSpec) -> Result<i32> {
        let mut state = self.state();
        if let Some(detail) = state.fail_next_start.take() {
            return Err(BackendError::Start {
                name: vps.name.clone(),
                detail,
            });
        }
        if !spec.rootfs.is_dir() {
            return Err(BackendError::Start {
                name: vps.name.clone(),
                detail: format!("{} is missing", spec.rootfs.display()),
            });
        }
        state.next_pid += 1;
        let pid = state.next_pid;
        let entry = state.vpses.entry(vps.key.clone()).or_default();
        if entry.init_pid.is_some() {
            return Err(BackendError::Busy(format!("VPS {} is still running", vps.name)));
        }
        entry.init_pid = Some(pid);
        entry.config = vps.settings.parsed.clone();
        Ok(pid)
    }

    async fn stop(&self, vps: &InstanceRecord, force: bool, _timeout_secs: u64) -> Result<String> {
        let mut state = self.state();
        if let Some(v) = state.vpses.get_mut(&vps.key) {
            v.init_pid = None;
            // A stop answers itself: the watcher hears nothing more.
            v.events = None;
        }
        Ok(if force {
            "killed"
        } else {
            "init exited with status 0"
        }
        .into())
    }

    async fn kill(&self, name: &str) {
        if let Some(v) = self.state().vpses.get_mut(name) {
            v.init_pid = None;
            v.events = None;
        }
    }

    async fn release(&self, _name: &str) {}

    async fn remove(&self, name: &str) -> Result<()> {
        self.state().vpses.remove(name);
        Ok(())
    }

    async fn reattach(&self, name: &str) -> Found {
        match self.running(name) {
            Some(init_pid) => Found::Running { init_pid },
            None => Found::Gone {
                reason: "the simulator does not outlive croftd".into(),
            },
        }
    }

    fn watch(&self, name: &str) -> mpsc::UnboundedReceiver<VpsEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(v) = self.state().vpses.get_mut(name) {
            v.events = Some(tx);
        }
        rx
    }

    async fn tidy(&self, _known: &[(String, Status)]) {}

    async fn shutdown(&self) {}

    async fn apply_limits(&self, name: &str, new: &InstanceConfig, _old: &InstanceConfig) -> Result<()> {
        if let Some(v) = self.state().vpses.get_mut(name) {
            v.config = new.clone();
        }
        Ok(())
    }

    async fn record_bandwidth(&self, _name: &str, _ingress: Option<u64>, _egress: Option<u64>) -> Result<()> {
        Ok(())
    }

    async fn set_address(&self, name: &str, cidr: &str, remove: bool) -> Result<()> {
        let mut state = self.state();
        let vps = state
            .vpses
            .get_mut(name)
            .filter(|v| v.init_pid.is_some())
            .ok_or_else(|| BackendError::Busy(format!("VPS {name} is not running")))?;
        if remove {
            vps.addresses.retain(|a| a != cidr);
        } else if !vps.addresses.iter().any(|a| a == cidr) {
            vps.addresses.push(cidr.into());
        }
        Ok(())
    }

    async fn addresses(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.live_addresses(name))
    }

    fn usage(&self, name: &str) -> Option<Usage> {
        let state = self.state();
        let vps = state.vpses.get(name)?;
        vps.init_pid?;
        Some(Usage {
            memory_bytes: 16 << 20,
            memory_limit_bytes: vps.config.memory_bytes,
            oom_kills: 0,
            cpu_usage_ns: 0,
            processes: 1,
            disk_io: Some(croft_api::DiskIoCounts::default()),
        })
    }

    fn control_socket(&self, _name: &str) -> Option<String> {
        None
    }

    async fn console_log(&self, _name: &str, _max: usize) -> Vec<u8> {
        Vec::new()
    }

    async fn exec(
        &self,
        name: &str,
        start: croft_api::exec::ExecStart,
    ) -> Result<super::session::ExecSession> {
        if self.running(name).is_none() {
            return Err(BackendError::Unavailable {
                name: name.to_string(),
                detail: "it is not running".into(),
            });
        }
        let (session, ends) = super::session::channels();
        tokio::spawn(super::sim_exec::run(start, ends));
        Ok(session)
    }

    async fn console(&self, name: &str) -> Result<super::session::ExecSession> {
        if self.running(name).is_none() {
            return Err(BackendError::Unavailable {
                name: name.to_string(),
                detail: "it is not running".into(),
            });
        }
        let (session, ends) = super::session::channels();
        tokio::spawn(super::sim_exec::console(ends));
        Ok(session)
    }
}
