//! The instance service: every VPS's lifecycle and the operations on its
//! disk, each serialized per VPS by its lock.
//!
//! - `lifecycle.rs`: launch, start, stop, restart, delete, and following
//!   a running VPS; which may run when is `status.rs`'s table;
//! - `config.rs`: configuration changes, applied live;
//! - `addresses.rs`: additional addresses, added and removed live;
//! - `disks.rs`: disks made from images (rescue systems, rebuilds);
//! - `copy.rs`, `snapshots.rs`, `transfer.rs`: copies, snapshots, and
//!   snapshots moved as streams;
//! - `publish.rs`: images made from a VPS's disk or snapshot;
//! - `reconcile.rs`: the state brought in line with the host when croftd
//!   starts, and autostart;
//! - `traffic.rs`: what each VPS sends and receives, per month, against
//!   its transfer quota.

mod addresses;
mod config;
mod copy;
mod disks;
mod inside;
mod lifecycle;
mod nics;
mod password;
mod publish;
mod reconcile;
mod rename;
mod snapshots;
mod ssh_keys;
pub mod status;
pub mod traffic;
mod transfer;

use super::images::ImageService;
use super::jobs::Jobs;
use super::locks::Locks;
use super::network::NetworkService;
use super::reclaim::Reclaimer;
use super::{Result, ServiceError, VpsName};
use crate::backend::Backend;
use crate::config::DaemonConfig;
use crate::store::{ForwardRecord, InstanceRecord, NicRecord, Store};
use croft_api::config::InstanceConfig;
use croft_api::{Instance, Status};
use croft_host::storage::Pool;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing::warn;

pub struct InstanceService {
    cfg: Arc<DaemonConfig>,
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    pool: Arc<dyn Pool>,
    images: Arc<ImageService>,
    network: Arc<NetworkService>,
    jobs: Jobs,
    events: super::events::Events,
    locks: Arc<Locks>,
    reclaimer: Arc<Reclaimer>,
    /// Snapshots (VPS, snapshot) an export is reading, with how many.
    exporting: Mutex<HashMap<(String, String), usize>>,
    /// The VPSes held to their transfer throttle (keys); `None` until the
    /// first reading after croftd starts.
    throttled: Mutex<Option<std::collections::HashSet<String>>>,
}

/// What the instance service works with.
pub struct Deps {
    pub cfg: Arc<DaemonConfig>,
    pub store: Arc<dyn Store>,
    pub backend: Arc<dyn Backend>,
    pub pool: Arc<dyn Pool>,
    pub images: Arc<ImageService>,
    pub network: Arc<NetworkService>,
    pub jobs: Jobs,
    pub events: super::events::Events,
    pub locks: Arc<Locks>,
    pub reclaimer: Arc<Reclaimer>,
}

impl InstanceService {
    pub fn new(deps: Deps) -> InstanceService {
        InstanceService {
            cfg: deps.cfg,
            store: deps.store,
            backend: deps.backend,
            pool: deps.pool,
            images: deps.images,
            network: deps.network,
            jobs: deps.jobs,
            events: deps.events,
            locks: deps.locks,
            reclaimer: deps.reclaimer,
            exporting: Mutex::new(HashMap::new()),
            throttled: Mutex::new(None),
        }
    }

    /// The lock of the VPS of key `key`.
    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.of(key)
    }

    /// The record of the VPS of key `key`.
    async fn row(&self, key: &str) -> Result<InstanceRecord> {
        super::by_key(self.store.as_ref(), key).await
    }

    /// The record of `vps` (400 for a bad name, 404 for one not in its tenant).
    async fn find(&self, vps: VpsName<'_>) -> Result<InstanceRecord> {
        super::find(self.store.as_ref(), vps).await
    }

    /// `vps` with its lock held, and its record as read under the lock
    /// (not the one found first: that VPS may have been deleted, and
    /// another made with its name, while the lock was awaited).
    async fn locked(&self, vps: VpsName<'_>) -> Result<(tokio::sync::OwnedMutexGuard<()>, InstanceRecord)> {
        let found = self.find(vps).await?;
        let guard = self.lock_for(&found.key).lock_owned().await;
        match self.store.instance(&found.key).await? {
            // Renamed while the lock was awaited: not the VPS asked for.
            Some(row) if row.name == vps.name => Ok((guard, row)),
            _ => Err(ServiceError::NotFound(format!("VPS {}", vps.name))),
        }
    }

    /// Tell the event stream that `action` happened to `vps`.
    fn emit(&self, vps: &InstanceRecord, action: &str, detail: Option<String>) {
        self.events.emit(&vps.tenant, action, &vps.name, detail);
    }

    /// The disk of the VPS of key `key`.
    fn disk(&self, key: &str) -> PathBuf {
        self.pool.instance_dir(key).join("rootfs")
    }

    /// Refuse a CPU limit above the CPUs this host gives croftd (its
    /// cpuset), unless the admin allows overcommit: `limits.cpu=8` on a
    /// 2-CPU host was taken silently and could never be reached.
    fn check_cpu_limit(&self, cfg: &InstanceConfig) -> Result<()> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        match cfg.cpu_millicores {
            Some(milli) if milli > cpus * 1000 && !self.cfg.cpu_overcommit => Err(ServiceError::Invalid(format!(
                "limits.cpu={} is more than this host's {cpus} CPUs (the admin may allow it: cpu_overcommit in croftd's configuration)",
                milli as f64 / 1000.0
            ))),
            _ => Ok(()),
        }
    }

    /// Refuse a disk limit the pool cannot enforce, before anything changes.
    fn check_disk_limit(&self, cfg: &InstanceConfig) -> Result<()> {
        if cfg.disk_bytes.is_some() && self.pool.driver() == "dir" {
            return Err(ServiceError::Invalid(
                "the dir storage driver cannot enforce limits.disk; use a btrfs pool".into(),
            ));
        }
        Ok(())
    }

    /// Refuse containers inside (`features.nesting`) on a host that
    /// cannot give them, saying exactly why.
    fn check_nesting(&self, cfg: &InstanceConfig) -> Result<()> {
        if !cfg.nesting {
            return Ok(());
        }
        self.backend.nesting().map_err(|why| {
            ServiceError::Invalid(format!("features.nesting cannot be switched on here: {why}"))
        })
    }

    /// Refuse disk I/O limits this host cannot enforce, saying why.
    fn check_disk_io(&self, cfg: &InstanceConfig) -> Result<()> {
        if cfg.disk_io.is_unlimited() {
            return Ok(());
        }
        self.backend
            .disk_io()
            .map(|_| ())
            .map_err(|why| ServiceError::Invalid(format!("this host cannot enforce disk I/O limits: {why}")))
    }

    fn view(&self, row: InstanceRecord, nics: &[NicRecord], forwards: &[ForwardRecord]) -> Instance {
        let running = row.status == Status::Running;
        let usage = running.then(|| self.backend.usage(&row.key)).flatten();
        Instance {
            nic: NetworkService::nic_view(nics.iter().find(|n| n.instance == row.key && n.index == 0)),
            nics: nics
                .iter()
                .filter(|n| n.instance == row.key)
                .filter_map(|n| NetworkService::nic_view(Some(n)))
                .collect(),
            forwards: NetworkService::forwards_view(forwards, &row.key),
            name: row.name,
            tenant: row.tenant,
            uuid: row.uuid.to_string(),
            image: row.image,
            status: row.status,
            config: row.settings.raw,
            created_at: row.created_at,
            last_exit: row.last_exit,
            usage,
            disk_bytes: None,
            firewall: None,
            ssh_keys: Vec::new(),
            user_data: None,
            disk_io_enforced: (!row.settings.parsed.disk_io.is_unlimited()).then(|| {
                match self.backend.disk_io() {
                    Ok(enforced) => enforced.to_string(),
                    Err(why) => format!("nothing: {why}"),
                }
            }),
            rescue: row.rescue_image,
            traffic: None,
        }
    }

    /// Every VPS of `tenant` (of all tenants if `None`), as [`Self::get`]
    /// shows each, but with its disk usage as of the pool's last commit
    /// (exact figures would cost one per VPS).
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<Instance>> {
        let (nics, forwards) = (self.store.nics().await?, self.store.forwards().await?);
        let mut keys = self.store.all_ssh_keys().await?;
        let rules = self.store.firewall_rules().await?;
        let groups = self.store.firewall_groups(tenant).await?;
        let pool = self.pool.clone();
        let usages = match crate::blocking(move || pool.usages()).await? {
            Ok(usages) => usages,
            Err(e) => {
                warn!("disk usage for the list: {}", crate::error_chain(&e));
                Default::default()
            }
        };
        let mut rows = self.store.instances().await?;
        rows.retain(|r| tenant.is_none_or(|t| r.tenant == t));
        let disks: Vec<PathBuf> = rows.iter().map(|r| self.disk(&r.key)).collect();
        let user_data = crate::blocking(move || {
            disks
                .iter()
                .map(|d| croft_host::rootfs::user_data_status(d))
                .collect::<Vec<_>>()
        })
        .await?;
        let mut traffic = self.store.traffic_of_month(&traffic::this_month()).await?;
        let mut views = Vec::with_capacity(rows.len());
        for (row, user_data) in rows.into_iter().zip(user_data) {
            let key = row.key.clone();
            let firewall = self.network.firewall_view(&row, &rules, &groups);
            let traffic = self.traffic_status(&row, traffic.remove(&key));
            let mut view = self.view(row, &nics, &forwards);
            view.firewall = view.nic.is_some().then_some(firewall);
            view.ssh_keys = keys.remove(&key).unwrap_or_default();
            view.user_data = user_data;
            view.disk_bytes = usages.get(&key).copied();
            view.traffic = Some(traffic);
            views.push(view);
        }
        Ok(views)
    }

    /// One VPS as `croft info` shows it, with its disk usage (which costs
    /// a btrfs commit to read exactly).
    pub async fn get(&self, vps: VpsName<'_>) -> Result<Instance> {
        let key = self.find(vps).await?.key;
        let mut view = self.brief(&key).await?;
        let pool = self.pool.clone();
        view.disk_bytes = crate::blocking(move || pool.usage(&key)).await?.ok().flatten();
        Ok(view)
    }

    /// One VPS without its disk usage: the answer to a state change, which
    /// should not wait for a filesystem commit.
    pub async fn get_brief(&self, vps: VpsName<'_>) -> Result<Instance> {
        self.brief(&self.find(vps).await?.key).await
    }

    /// [`Self::get_brief`] of the VPS of key `key`.
    async fn brief(&self, key: &str) -> Result<Instance> {
        let row = self.row(key).await?;
        let (nics, forwards) = (self.store.nics().await?, self.store.forwards().await?);
        let (rules, groups) = (
            self.store.firewall_rules().await?,
            self.store.firewall_groups(Some(&row.tenant)).await?,
        );
        let firewall = self.network.firewall_view(&row, &rules, &groups);
        let month = traffic::this_month();
        let totals = self
            .store
            .traffic(key)
            .await?
            .into_iter()
            .find(|t| t.month == month);
        let traffic = self.traffic_status(&row, totals);
        let mut view = self.view(row, &nics, &forwards);
        view.traffic = Some(traffic);
        view.firewall = view.nic.is_some().then_some(firewall);
        view.ssh_keys = self.store.ssh_keys(key).await?;
        let rootfs = self.disk(key);
        view.user_data = crate::blocking(move || croft_host::rootfs::user_data_status(&rootfs)).await?;
        Ok(view)
    }

    /// How VPS `name` sits on this host: its id range, its init, the
    /// socket local clients attach through.
    pub async fn host_details(&self, vps: VpsName<'_>) -> Result<croft_api::HostDetails> {
        let row = self.find(vps).await?;
        let running = row.status == Status::Running;
        Ok(croft_api::HostDetails {
            control_socket: running.then(|| self.backend.control_socket(&row.key)).flatten(),
            init_pid: if running { row.init_pid } else { None },
            name: row.name,
            tenant: row.tenant,
            key: row.key,
            uuid: row.uuid.to_string(),
            backend: self.backend.kind().into(),
            uid_base: row.uid_base,
            id_count: croft_host::spec::ID_RANGE,
        })
    }

    /// The VPS's recent console output (kept while no console client is
    /// attached), newest last, at most `max` bytes.
    pub async fn console_log(&self, vps: VpsName<'_>, max: usize) -> Result<String> {
        let row = self.find(vps).await?;
        let bytes = self.backend.console_log(&row.key, max).await;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Run a command in running VPS `vps`: its session, for the API to
    /// relay. A bad command is refused (400), a VPS that does not run
    /// too (409).
    pub async fn exec(
        &self,
        vps: VpsName<'_>,
        start: croft_api::exec::ExecStart,
    ) -> Result<crate::backend::session::ExecSession> {
        croft_api::exec::validate_exec(&start).map_err(|e| ServiceError::invalid(&e))?;
        let row = self.running(vps).await?;
        Ok(self.backend.exec(&row.key, start).await?)
    }

    /// Attach to running VPS `vps`'s console: a session for the API to
    /// relay; dropping it detaches.
    pub async fn console(&self, vps: VpsName<'_>) -> Result<crate::backend::session::ExecSession> {
        let row = self.running(vps).await?;
        Ok(self.backend.console(&row.key).await?)
    }

    /// The record of `vps` if it runs: 404 if there is none, 409 if it is
    /// not running.
    pub async fn running(&self, vps: VpsName<'_>) -> Result<InstanceRecord> {
        let row = self.find(vps).await?;
        if row.status != Status::Running {
            return Err(ServiceError::Conflict(format!(
                "VPS {} is {}, not running",
                row.name, row.status
            )));
        }
        Ok(row)
    }

    /// The storage pools (one, for now).
    pub fn pools(&self) -> Result<Vec<croft_api::StoragePool>> {
        let p = self.pool.info()?;
        Ok(vec![croft_api::StoragePool {
            name: p.name,
            driver: p.driver,
            source: p.source,
            mount: p.mount,
            size_bytes: p.size_bytes,
            used_bytes: p.used_bytes,
            free_bytes: p.free_bytes,
            volumes: p.volumes,
        }])
    }

    pub fn pool_info(&self, name: &str) -> Result<croft_api::StoragePool> {
        self.pools()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("storage pool {name}")))
    }
}

/// The first id range at or above `id_base` that no VPS in `used` has,
/// among `ranges` ranges.
fn free_id_base(mut used: Vec<u32>, id_base: u32, ranges: u32) -> Option<u32> {
    used.sort_unstable();
    let range = croft_host::spec::ID_RANGE;
    let mut candidate = u64::from(id_base);
    for u in used.into_iter().map(u64::from) {
        if u == candidate {
            candidate += u64::from(range);
        } else if u > candidate {
            break;
        }
    }
    let last = u64::from(id_base) + u64::from(range) * u64::from(ranges.max(1) - 1);
    (candidate <= last && candidate + u64::from(range) <= u64::from(u32::MAX))
        .then(|| u32::try_from(candidate).expect("checked above"))
}

#[cfg(test)]
mod tests {
    use super::free_id_base;

    #[test]
    fn id_ranges_fill_gaps_and_run_out() {
        const R: u32 = croft_host::spec::ID_RANGE;
        let base = 1_000_000;
        assert_eq!(free_id_base(vec![], base, 3), Some(base));
        assert_eq!(free_id_base(vec![base + R, base], base, 3), Some(base + 2 * R));
        assert_eq!(free_id_base(vec![base, base + 2 * R], base, 3), Some(base + R));
        assert_eq!(free_id_base(vec![base, base + R, base + 2 * R], base, 3), None);
        assert_eq!(
            free_id_base(vec![], u32::MAX - R + 1, 2),
            None,
            "past the top of the id space"
        );
    }
}
