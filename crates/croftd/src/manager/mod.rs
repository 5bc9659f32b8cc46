//! The VPS manager: every lifecycle operation, serialized per VPS.
//!
//! croftd never forks a VPS itself: `start` writes the spec and launches a
//! supervisor (`croft-supervisor`), which detaches and owns the VPS from
//! then on. The manager talks to supervisors over their control sockets,
//! keeps one `watch` connection per running VPS to learn of exits and
//! reboots, and on start-up reconciles the database with the supervisors
//! that are still alive.

use crate::config::DaemonConfig;
use crate::db::{Db, DbError, ForwardRow, ImageUpdate, InstanceRow, NicRow};
use crate::images::{ImageError, ImageStore};
use crate::jobs::{JobHandle, Jobs};
use croft_api::config::InstanceConfig;
use croft_api::{ConfigPatch, Instance, LaunchRequest, Status, Usage};
use croft_host::cgroup::{Cgroup, CgroupError, CgroupManager, Limits};
use croft_host::proto::{Conn, ExitRecord, ProtoError, Reply, Request};
use croft_host::spec::{RunDir, SupervisorLock, VpsSpec, ID_RANGE};
use croft_host::storage::{Pool, PoolInfo, SideVolume, StorageError};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};

mod networking;
mod transfer;

#[derive(Debug, Error)]
pub enum ManagerError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot start VPS {name}: {detail}")]
    Start { name: String, detail: String },
    /// The host lacks a resource for now (HTTP 503); nothing changed.
    #[error("cannot start VPS {name} now: {detail}")]
    Unavailable { name: String, detail: String },
    #[error("{what}: {detail}")]
    Host { what: String, detail: String },
}

type Result<T, E = ManagerError> = std::result::Result<T, E>;

/// How long a stop waits for a VPS's killed processes to leave its cgroup.
const CGROUP_DRAIN: Duration = Duration::from_secs(5);

fn host_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ManagerError {
    let what = what.into();
    move |e| ManagerError::Host {
        what,
        detail: e.to_string(),
    }
}

pub struct Manager {
    cfg: DaemonConfig,
    db: Db,
    cgroups: CgroupManager,
    images: ImageStore,
    pool: Arc<dyn Pool>,
    pub jobs: Jobs,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The network VPSes join; `None` when networking is off.
    network: Option<crate::network::Network>,
    /// Held while addresses are chosen and recorded.
    ipam: tokio::sync::Mutex<()>,
    /// VPSes whose rules are in the loaded nftables ruleset; held while
    /// rules are rebuilt, so two rebuilds never interleave.
    rules_loaded: tokio::sync::Mutex<std::collections::HashSet<String>>,
    /// Rules of new VPS ports waiting to be added (port, `nft` input):
    /// whoever holds `rules_loaded` next adds all of them in one `nft`
    /// run, so concurrent launches share one.
    rules_queue: Mutex<Vec<(String, String)>>,
    /// Bridged traffic passes the IP hooks (br_netfilter), so per-VPS
    /// firewalls can be enforced.
    firewall_capable: std::sync::atomic::AtomicBool,
    /// Snapshots (VPS, snapshot) an export is reading, with how many.
    exporting: Mutex<HashMap<(String, String), usize>>,
}

fn limits(cfg: &InstanceConfig) -> Limits {
    Limits {
        memory_bytes: cfg.memory_bytes,
        cpu_millicores: cfg.cpu_millicores,
        cpu_weight: cfg.cpu_weight,
        pids_max: cfg.processes,
    }
}

/// CPUs a quota of `millicores` is pinned to: ceil(quota), at least one.
fn cpus_for_quota(millicores: u64) -> usize {
    millicores.div_ceil(1000).max(1) as usize
}

/// Create a directory croft owns with the given mode (0711 on the path to
/// VPS root filesystems, so VPS root can traverse into its own rootfs).
fn make_dir(path: &Path, mode: u32) -> Result<()> {
    std::fs::create_dir_all(path).map_err(host_err(format!("create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(host_err(format!("chmod {}", path.display())))
}

impl Manager {
    pub async fn new(cfg: DaemonConfig, db: Db) -> anyhow::Result<Arc<Manager>> {
        make_dir(&cfg.state_dir, 0o711)?;
        make_dir(&cfg.images_dir(), 0o711)?;
        make_dir(&cfg.run_dir, 0o711)?;
        make_dir(&cfg.vps_run_dir(), 0o700)?;
        let cgroups = CgroupManager::detect(&cfg.cgroup_prefix)?;
        cgroups.prepare()?;
        let images = ImageStore::new(
            cfg.images_dir(),
            cfg.busybox.clone(),
            cfg.debian_mirror.clone(),
            cfg.debian_security_mirror.clone(),
        );
        let pool: Arc<dyn Pool> = Arc::from(
            croft_host::storage::open(&cfg.pool())
                .map_err(|e| anyhow::anyhow!("storage pool: {}", crate::error_chain(&e)))?,
        );
        let jobs = Jobs::new(db.clone());
        let network = if cfg.network.enabled {
            Some(
                crate::network::Network::from_config(&cfg.network)
                    .map_err(|e| anyhow::anyhow!("[network] {e}"))?,
            )
        } else {
            None
        };
        Ok(Arc::new(Manager {
            cfg,
            db,
            cgroups,
            images,
            pool,
            jobs,
            locks: Mutex::new(HashMap::new()),
            network,
            ipam: tokio::sync::Mutex::new(()),
            rules_loaded: tokio::sync::Mutex::new(Default::default()),
            rules_queue: Mutex::new(Vec::new()),
            firewall_capable: std::sync::atomic::AtomicBool::new(false),
            exporting: Mutex::new(HashMap::new()),
        }))
    }

    pub fn cgroup_version(&self) -> &'static str {
        match self.cgroups.version() {
            croft_host::cgroup::Version::V1 => "v1",
            croft_host::cgroup::Version::V2 => "v2",
        }
    }

    fn lock_for(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("lock map poisoned")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    fn run_dir(&self, name: &str) -> PathBuf {
        self.cfg.vps_run_dir().join(name)
    }

    fn instance_dir(&self, name: &str) -> PathBuf {
        self.pool.instance_dir(name)
    }

    /// The VPS's directory belongs to its root and nobody else may enter:
    /// its files stay readable only through its own id range.
    fn make_instance_dir(&self, name: &str, uid_base: u32) -> Result<PathBuf> {
        let dir = self.instance_dir(name);
        make_dir(&dir, 0o700)?;
        let id = Some(uid_base);
        nix::unistd::chown(
            &dir,
            id.map(nix::unistd::Uid::from_raw),
            id.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| ManagerError::Host {
            what: format!("chown {}", dir.display()),
            detail: e.to_string(),
        })?;
        Ok(dir)
    }

    pub fn pools(&self) -> Result<Vec<PoolInfo>> {
        Ok(vec![self.pool.info()?])
    }

    pub fn pool_info(&self, name: &str) -> Result<PoolInfo> {
        let info = self.pool.info()?;
        if info.name != name {
            return Err(ManagerError::NotFound(format!("storage pool {name}")));
        }
        Ok(info)
    }

    /// Refuse a disk limit the pool cannot enforce, before anything changes.
    fn check_disk_limit(&self, cfg: &InstanceConfig) -> Result<()> {
        if cfg.disk_bytes.is_some() && self.pool.driver() == "dir" {
            return Err(ManagerError::Invalid(
                "the dir storage driver cannot enforce limits.disk; use a btrfs pool".into(),
            ));
        }
        Ok(())
    }

    async fn row(&self, name: &str) -> Result<InstanceRow> {
        self.db
            .instance(name)
            .await?
            .ok_or_else(|| ManagerError::NotFound(format!("VPS {name}")))
    }

    fn view(&self, row: InstanceRow, nics: &[NicRow], forwards: &[ForwardRow]) -> Instance {
        let running = row.status == Status::Running;
        let usage = running
            .then(|| self.cgroup_of(&row).ok()?.stats().ok())
            .flatten()
            .map(|s| Usage {
                memory_bytes: s.memory_bytes,
                memory_limit_bytes: s.memory_limit_bytes,
                oom_kills: s.oom_kills,
                cpu_usage_ns: s.cpu_usage_ns,
                processes: s.pids_current,
            });
        let socket = running.then(|| RunDir(&self.run_dir(&row.name)).socket().display().to_string());
        let row_name = row.name.clone();
        Instance {
            name: row.name,
            image: row.image,
            status: row.status,
            config: row.config,
            uid_base: row.uid_base,
            created_at: row.created_at,
            init_pid: if running { row.init_pid } else { None },
            last_exit: row.last_exit,
            usage,
            disk_bytes: None,
            supervisor_socket: socket,
            nic: Self::nic_view(nics.iter().find(|n| n.instance == row_name)),
            forwards: Self::forwards_view(forwards, &row_name),
            firewall: None,
            ssh_keys: Vec::new(),
            user_data: None,
            rescue: row.rescue_image,
        }
    }

    /// Every VPS, as [`Self::get`] shows each, but with its disk usage as
    /// of the pool's last commit (exact figures would cost one per VPS).
    pub async fn list(&self) -> Result<Vec<Instance>> {
        let (nics, forwards) = (self.db.nics().await?, self.db.forwards().await?);
        let mut keys = self.db.all_ssh_keys().await?;
        let rules = self.db.firewall_rules().await?;
        let pool = self.pool.clone();
        let usages = match blocking(move || pool.usages()).await? {
            Ok(usages) => usages,
            Err(e) => {
                warn!("disk usage for the list: {}", crate::error_chain(&e));
                Default::default()
            }
        };
        let rows = self.db.instances().await?;
        let disks: Vec<PathBuf> = rows
            .iter()
            .map(|r| self.instance_dir(&r.name).join("rootfs"))
            .collect();
        let user_data = blocking(move || {
            disks
                .iter()
                .map(|d| croft_host::rootfs::user_data_status(d))
                .collect::<Vec<_>>()
        })
        .await?;
        let mut views = Vec::with_capacity(rows.len());
        for (row, user_data) in rows.into_iter().zip(user_data) {
            let name = row.name.clone();
            let firewall = Self::firewall_view(&row, &rules);
            let mut view = self.view(row, &nics, &forwards);
            view.firewall = view.nic.is_some().then_some(firewall);
            view.ssh_keys = keys.remove(&name).unwrap_or_default();
            view.user_data = user_data;
            view.disk_bytes = usages.get(&name).copied();
            views.push(view);
        }
        Ok(views)
    }

    /// One VPS as `croft info` shows it, with its disk usage (which costs
    /// a btrfs commit to read exactly).
    pub async fn get(&self, name: &str) -> Result<Instance> {
        let mut view = self.get_brief(name).await?;
        let pool = self.pool.clone();
        let volume = name.to_string();
        view.disk_bytes = blocking(move || pool.usage(&volume)).await?.ok().flatten();
        Ok(view)
    }

    /// One VPS without its disk usage: the answer to a state change, which
    /// should not wait for a filesystem commit.
    pub async fn get_brief(&self, name: &str) -> Result<Instance> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        let (nics, forwards) = (self.db.nics().await?, self.db.forwards().await?);
        let mut view = self.view(self.row(name).await?, &nics, &forwards);
        if view.nic.is_some() {
            view.firewall = Some(self.firewall(name).await?);
        }
        view.ssh_keys = self.db.ssh_keys(name).await?;
        let rootfs = self.instance_dir(name).join("rootfs");
        view.user_data = blocking(move || croft_host::rootfs::user_data_status(&rootfs)).await?;
        Ok(view)
    }

    /// Check a launch request and reserve the name and an id range; the
    /// rest happens in a job. Nothing is created if this fails.
    pub async fn launch(self: &Arc<Self>, req: LaunchRequest) -> Result<croft_api::Job> {
        croft_api::validate_name(&req.name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.require_image(&req.image).await?;
        let cfg =
            InstanceConfig::parse(&req.config).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.check_disk_limit(&cfg)?;
        let addresses = self.check_address_request(req.ipv4.as_deref(), req.ipv6.as_deref())?;
        for key in &req.ssh_keys {
            if croft_api::parse_ssh_keys(key)
                .map_err(ManagerError::Invalid)?
                .len()
                != 1
            {
                return Err(ManagerError::Invalid(
                    "give one public key per ssh_keys entry".into(),
                ));
            }
        }
        if let Some(script) = &req.user_data {
            croft_api::validate_user_data(script).map_err(ManagerError::Invalid)?;
        }
        let uid_base = self
            .db
            .insert_instance(
                &req.name,
                &req.image,
                &req.config,
                self.cfg.id_base,
                self.cfg.id_ranges,
            )
            .await?
            .ok_or_else(|| ManagerError::Conflict(format!("VPS {} already exists", req.name)))?;
        if let Err(e) = self.allocate_nic(&req.name, uid_base, addresses).await {
            self.db.delete_instance(&req.name).await?;
            return Err(e);
        }
        let mut keys = self.cfg.default_ssh_keys().map_err(ManagerError::Invalid)?;
        keys.extend(req.ssh_keys.iter().map(|k| k.trim().to_string()));
        self.db.add_ssh_keys(&req.name, &keys).await?;
        let this = self.clone();
        let name = req.name.clone();
        let target = req.name.clone();
        self.jobs
            .submit("launch", &target, move |job| async move {
                let lock = this.lock_for(&name);
                let _guard = lock.lock().await;
                let result = this.create_and_start(&req, uid_base, &job).await;
                if result.is_err() {
                    this.rollback_launch(&name).await;
                }
                result
            })
            .await
            .map_err(ManagerError::from)
    }

    async fn create_and_start(
        self: &Arc<Self>,
        req: &LaunchRequest,
        uid_base: u32,
        job: &JobHandle,
    ) -> Result<()> {
        let dir = self.make_instance_dir(&req.name, uid_base)?;
        // The VPS's anti-spoofing rules load while its disk is made (the
        // start would otherwise wait for them).
        let rules = (!req.no_start).then(|| {
            let this = self.clone();
            let name = req.name.clone();
            tokio::spawn(async move {
                match this.db.nic(&name).await? {
                    Some(nic) => this.load_rules_for(&name, &nic.host_if).await,
                    None => Ok(()),
                }
            })
        });
        let made = async {
            job.progress(10, "preparing image").await;
            let images = self.images.clone();
            let image = req.image.clone();
            let pool = self.pool.clone();
            let name = req.name.clone();
            if self.pool.snapshots() {
                // Copy-on-write: the disk is a snapshot of the image volume, in
                // O(1) whatever the image's size; ids stay as in the image and
                // the VPS mounts its disk idmapped.
                if ImageStore::kind(&req.image).is_ok() {
                    self.ensure_built(&req.image, Some(job), (10, 75)).await?;
                }
                blocking(move || pool.clone_image(&crate::images::pool_name(&image), &name)).await??;
                crate::failpoint::crash_point("launch:disk-made");
            } else {
                let src = blocking(move || images.ensure(&image)).await??;
                job.progress(40, "copying the image into the VPS").await;
                let dst = blocking(move || pool.create_volume(&name)).await??;
                copy_image_shifted(src, dst, uid_base).await?;
            }
            self.identify(dir.join("rootfs"), &req.name, req.user_data.clone())
                .await?;
            let cfg = InstanceConfig::parse(&req.config)
                .map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
            if cfg.disk_bytes.is_some() {
                let pool = self.pool.clone();
                let name = req.name.clone();
                blocking(move || pool.set_limit(&name, cfg.disk_bytes)).await??;
            }
            Ok::<(), ManagerError>(())
        }
        .await;
        // The rule load is always waited for, even when making the disk
        // failed: a rollback must not race a load of the rules it removes.
        let loaded = match rules {
            Some(rules) => rules.await.map_err(|e| ManagerError::Host {
                what: "load the VPS's network rules".into(),
                detail: e.to_string(),
            }),
            None => Ok(Ok(())),
        };
        made?;
        loaded??;
        self.db.set_status(&req.name, Status::Stopped, None, None).await?;
        if !req.no_start {
            job.progress(80, "starting").await;
            let row = self.row(&req.name).await?;
            self.start_locked(&row, None).await?;
        }
        Ok(())
    }

    async fn rollback_launch(&self, name: &str) {
        self.kill_cgroup(name).await;
        let _ = self.remove_cgroup(name).await;
        let _ = std::fs::remove_dir_all(self.run_dir(name));
        let pool = self.pool.clone();
        let volume = name.to_string();
        match blocking(move || pool.delete_volume(&volume)).await {
            Ok(Err(e)) => warn!(
                vps = name,
                "rollback could not remove the volume: {}",
                crate::error_chain(&e)
            ),
            Err(e) => warn!(vps = name, "rollback could not remove the volume: {e}"),
            Ok(Ok(())) => {}
        }
        let host_if = self.db.nic(name).await.ok().flatten().map(|n| n.host_if);
        if let Err(e) = self.db.delete_instance(name).await {
            warn!(
                vps = name,
                "rollback of a failed launch could not delete the row: {e}"
            );
        }
        // A failed launch: whatever it loaded goes with a full reload.
        if let Err(e) = self.release_nic(host_if, true).await {
            warn!(vps = name, "rollback could not remove the network setup: {e}");
        }
    }

    /// Start a stopped VPS: from its own disk, or with `rescue` from a
    /// rescue system (the given image, else the configured one) with its
    /// disk at /mnt.
    pub async fn start(self: &Arc<Self>, name: &str, rescue: Option<Option<&str>>) -> Result<Instance> {
        let rescue_image = rescue.map(|image| image.unwrap_or(&self.cfg.rescue_image).to_string());
        if let Some(image) = &rescue_image {
            self.require_image(image).await?;
        }
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let row = self.row(name).await?;
        match row.status {
            Status::Stopped | Status::Error => {}
            s => return Err(ManagerError::Conflict(format!("VPS {name} is {s}, not stopped"))),
        }
        self.start_locked(&row, rescue_image.as_deref()).await?;
        self.get_brief(name).await
    }

    /// Make `name`'s side volume `side` a fresh copy of `image` (building
    /// it first if croft builds it) and give it the VPS's identity, SSH keys
    /// and `user_data`. Removed again if any step fails.
    async fn disk_from_image(
        self: &Arc<Self>,
        row: &InstanceRow,
        side: SideVolume,
        image: &str,
        user_data: Option<String>,
        job: Option<&JobHandle>,
    ) -> Result<PathBuf> {
        let result = async {
            let pool = self.pool.clone();
            let name = row.name.clone();
            let path = if self.pool.snapshots() {
                if ImageStore::kind(image).is_ok() {
                    self.ensure_built(image, job, (10, 70)).await?;
                }
                let image = crate::images::pool_name(image);
                blocking(move || pool.create_side_volume(&name, side, Some(&image))).await??
            } else {
                let (images, image, uid_base) = (self.images.clone(), image.to_string(), row.uid_base);
                let src = blocking(move || images.ensure(&image)).await??;
                let dst = blocking(move || pool.create_side_volume(&name, side, None)).await??;
                copy_image_shifted(src, dst.clone(), uid_base).await?;
                dst
            };
            // A rescue system or a new disk is the tenant's to write from
            // the first boot: it gets the VPS's disk limit before that.
            let limit = InstanceConfig::parse(&row.config).unwrap_or_default().disk_bytes;
            if limit.is_some() {
                let (pool, name) = (self.pool.clone(), row.name.clone());
                blocking(move || pool.limit_side_volume(&name, side, limit)).await??;
            }
            self.identify(path.clone(), &row.name, user_data).await?;
            Ok(path)
        }
        .await;
        if result.is_err() {
            self.remove_side_volume(&row.name, side).await;
        }
        result
    }

    /// Give a fresh disk at `root` the identity of VPS `name` (hostname,
    /// machine-id, SSH host keys), root's authorized keys and, if given, a
    /// first-boot script: what every disk made from an image gets.
    async fn identify(&self, root: PathBuf, name: &str, user_data: Option<String>) -> Result<()> {
        let keys = self.db.ssh_keys(name).await?;
        let name = name.to_string();
        blocking(move || {
            croft_host::rootfs::new_identity(&root, &name)?;
            croft_host::rootfs::add_authorized_keys(&root, &keys)?;
            if let Some(script) = user_data {
                croft_host::rootfs::install_user_data(&root, script.as_bytes())?;
            }
            Ok::<(), croft_host::rootfs::RootfsError>(())
        })
        .await?
        .map_err(|e| ManagerError::Host {
            what: "give the disk the VPS's identity".into(),
            detail: crate::error_chain(&e),
        })
    }

    /// Remove a side volume, logging (not failing) if it cannot be.
    async fn remove_side_volume(&self, name: &str, side: SideVolume) {
        let pool = self.pool.clone();
        let vps = name.to_string();
        match blocking(move || pool.delete_side_volume(&vps, side)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(
                vps = name,
                "cannot remove {}: {}",
                side.file_name(),
                crate::error_chain(&e)
            ),
            Err(e) => warn!(vps = name, "cannot remove {}: {e}", side.file_name()),
        }
    }

    /// The lxcfs mount for a starting VPS, starting lxcfs again if it died;
    /// `None` (the host's /proc files) if lxcfs is off or cannot run.
    async fn lxcfs_mount(&self) -> Option<PathBuf> {
        if !self.cfg.lxcfs {
            return None;
        }
        let run_dir = self.cfg.run_dir.clone();
        match blocking(move || crate::lxcfs::ensure(&run_dir)).await {
            Ok(Ok(mnt)) => Some(mnt),
            Ok(Err(e)) => {
                warn!("lxcfs unavailable, VPSes see the host's /proc files: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// The cgroup of VPS `row`: where it was recorded when the VPS
    /// started (this croftd may since run in another cgroup, see
    /// `CgroupLocation`), else where this croftd makes it.
    fn cgroup_of(&self, row: &InstanceRow) -> Result<Cgroup> {
        Ok(match &row.cgroup {
            Some(location) => self.cgroups.adopt(&row.name, location)?,
            None => self.cgroups.open(&row.name)?,
        })
    }

    /// [`Self::cgroup_of`] VPS `name`, looked up; `None` for a bad name.
    async fn cgroup_named(&self, name: &str) -> Option<Cgroup> {
        match self.db.instance(name).await {
            Ok(Some(row)) => self.cgroup_of(&row).ok(),
            _ => self.cgroups.open(name).ok(),
        }
    }

    /// The cgroups of the running VPSes other than `name`.
    async fn other_cgroups(&self, name: &str) -> Result<Vec<Cgroup>> {
        Ok(self
            .db
            .instances()
            .await?
            .iter()
            .filter(|r| r.name != name && matches!(r.status, Status::Running | Status::Starting))
            .filter_map(|r| self.cgroup_of(r).ok())
            .collect())
    }

    /// Pin a VPS with a CPU quota to ceil(quota) of the CPUs the fewest
    /// other VPSes are pinned to (so `nproc` and /proc/cpuinfo inside show
    /// the CPUs it has, and its threads stay on them); let one without a
    /// quota, or with a quota of every CPU, run anywhere. A running VPS
    /// whose quota still needs as many CPUs keeps the ones it has.
    /// `others`: the cgroups of the other running VPSes.
    fn pin_cpus(&self, cgroup: &Cgroup, others: &[Cgroup], cfg: &InstanceConfig) -> Result<()> {
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

    /// Start a VPS whose lock the caller holds, from its own disk or from
    /// `rescue` image with its disk at /mnt.
    async fn start_locked(self: &Arc<Self>, row: &InstanceRow, rescue: Option<&str>) -> Result<i32> {
        let name = &row.name;
        let cfg =
            InstanceConfig::parse(&row.config).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        let disk = self.instance_dir(name).join("rootfs");
        if !disk.is_dir() {
            return Err(ManagerError::Start {
                name: name.clone(),
                detail: format!("{} is missing", disk.display()),
            });
        }
        let (rootfs, rescue_disk) = match rescue {
            None => (disk, None),
            Some(image) => {
                let root = self
                    .disk_from_image(row, SideVolume::Rescue, image, None, None)
                    .await?;
                self.db.set_rescue(name, Some(image)).await?;
                (root, Some(disk))
            }
        };
        let result = self.start_from(row, &cfg, rootfs, rescue_disk, rescue).await;
        if result.is_err() && rescue.is_some() {
            self.remove_side_volume(name, SideVolume::Rescue).await;
            self.db.set_rescue(name, None).await?;
        }
        result
    }

    async fn start_from(
        self: &Arc<Self>,
        row: &InstanceRow,
        cfg: &InstanceConfig,
        rootfs: PathBuf,
        rescue_disk: Option<PathBuf>,
        rescue: Option<&str>,
    ) -> Result<i32> {
        let name = &row.name;
        // Imported images boot /sbin/init; the stop signal follows the init
        // found in the rootfs.
        let (init, default_stop): (Vec<String>, &str) = match ImageStore::kind(rescue.unwrap_or(&row.image)) {
            Ok(kind) => (
                kind.init.iter().map(|s| s.to_string()).collect(),
                kind.stop_signal,
            ),
            Err(_) => (vec!["/sbin/init".into()], "SIGTERM"),
        };
        let nic = self.nic_spec(name, cfg).await?;
        if let Some(n) = &nic {
            self.load_rules_for(name, &n.host_if).await?;
        }
        self.write_network_files(name, &rootfs).await?;
        // The lock first: while an old supervisor of this VPS still lives,
        // nothing of its (cgroup, spec) may be touched.
        let run_dir = self.run_dir(name);
        make_dir(&run_dir, 0o700)?;
        let lock = SupervisorLock::acquire(&run_dir)
            .map_err(host_err(format!("lock {}", RunDir(&run_dir).lock().display())))?
            .ok_or_else(|| {
                ManagerError::Conflict(format!(
                    "a supervisor of VPS {name} is still running; try again when it has exited"
                ))
            })?;
        let cgroup = self.cgroups.create(name)?;
        let result = async {
            self.db.set_cgroup(name, Some(&cgroup.location())).await?;
            cgroup.apply(&limits(cfg))?;
            let others = self.other_cgroups(name).await?;
            self.pin_cpus(&cgroup, &others, cfg)?;
            cgroup.delegate(row.uid_base)?;
            let lxcfs = self.lxcfs_mount().await;
            let spec = VpsSpec {
                name: name.clone(),
                hostname: name.clone(),
                stop_signal: croft_host::rootfs::stop_signal_for(&rootfs, default_stop),
                rootfs,
                uid_base: row.uid_base,
                id_count: ID_RANGE,
                init,
                env: vec!["container=croft".into(), "TERM=linux".into()],
                cgroup_dirs: cgroup.dirs(),
                run_dir: run_dir.clone(),
                idmap_rootfs: self.pool.snapshots(),
                cgroup_mount: cgroup.systemd_dir().map(|_| self.cgroup_version().to_string()),
                nic,
                lxcfs,
                rescue_disk,
                memory_limit: cfg.memory_bytes,
            };
            let json = serde_json::to_vec_pretty(&spec).expect("spec serializes");
            std::fs::write(RunDir(&run_dir).spec(), json).map_err(host_err("write spec"))?;
            self.db.set_status(name, Status::Starting, None, None).await?;
            let mut command = tokio::process::Command::new(self.cfg.supervisor_path());
            command
                .arg(&run_dir)
                .env(
                    croft_host::spec::LOCK_FD_ENV,
                    croft_host::spec::LOCK_FD.to_string(),
                )
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let lock_fd = lock.fd();
            // SAFETY: the closure runs in the forked child before exec and
            // only calls dup2 and fcntl, which are async-signal-safe. dup2
            // gives the supervisor the locked descriptor at LOCK_FD without
            // CLOEXEC (the original stays CLOEXEC, so no other child
            // inherits it); should the lock already be LOCK_FD, dup2 does
            // nothing and the CLOEXEC flag is cleared instead.
            unsafe {
                command.pre_exec(move || {
                    let rc = if lock_fd == croft_host::spec::LOCK_FD {
                        libc::fcntl(lock_fd, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(lock_fd, croft_host::spec::LOCK_FD)
                    };
                    if rc < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let out = command
                .output()
                .await
                .map_err(host_err(format!("run {}", self.cfg.supervisor_path().display())))?;
            drop(lock);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let verdict = stdout.trim();
            match verdict.strip_prefix("ready ").map(|p| p.trim().parse::<i32>()) {
                Some(Ok(pid)) => Ok(pid),
                _ if verdict.starts_with("unavailable ") => Err(ManagerError::Unavailable {
                    name: name.clone(),
                    detail: verdict["unavailable ".len()..].to_string(),
                }),
                _ => {
                    let detail = verdict.strip_prefix("error ").unwrap_or(verdict);
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let detail = match (detail.is_empty(), stderr.trim()) {
                        (false, _) => detail,
                        (true, "") => "the supervisor exited without a verdict",
                        (true, stderr) => stderr,
                    };
                    Err(ManagerError::Start {
                        name: name.clone(),
                        detail: detail.to_string(),
                    })
                }
            }
        }
        .await;
        match result {
            Ok(pid) => {
                self.db.set_status(name, Status::Running, Some(pid), None).await?;
                info!(vps = %name, init_pid = pid, "started");
                self.watch(name.clone(), pid);
                Ok(pid)
            }
            Err(e) => {
                if cgroup.remove().is_ok() {
                    let _ = self.db.set_cgroup(name, None).await;
                }
                let _ = std::fs::remove_file(RunDir(&self.run_dir(name)).spec());
                self.db
                    .set_status(name, Status::Stopped, None, Some(&format!("start failed: {e}")))
                    .await?;
                Err(e)
            }
        }
    }

    pub async fn stop(self: &Arc<Self>, name: &str, force: bool, timeout: Option<u64>) -> Result<Instance> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let row = self.row(name).await?;
        if row.status != Status::Running {
            return Err(ManagerError::Conflict(format!(
                "VPS {name} is {}, not running",
                row.status
            )));
        }
        self.stop_locked(&row, force, timeout).await?;
        self.get_brief(name).await
    }

    pub async fn restart(
        self: &Arc<Self>,
        name: &str,
        force: bool,
        timeout: Option<u64>,
    ) -> Result<Instance> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let row = self.row(name).await?;
        match row.status {
            Status::Running => self.stop_locked(&row, force, timeout).await?,
            Status::Stopped | Status::Error => {}
            s => return Err(ManagerError::Conflict(format!("VPS {name} is {s}"))),
        }
        let row = self.row(name).await?;
        self.start_locked(&row, None).await?;
        self.get_brief(name).await
    }

    async fn stop_locked(&self, row: &InstanceRow, force: bool, timeout: Option<u64>) -> Result<()> {
        let name = row.name.clone();
        let cfg = InstanceConfig::parse(&row.config).unwrap_or_default();
        let timeout_secs = timeout.unwrap_or(cfg.stop_timeout_secs.max(1));
        self.db
            .set_status(&name, Status::Stopping, row.init_pid, None)
            .await?;
        let socket = RunDir(&self.run_dir(&name)).socket();
        let reply = blocking(move || -> Result<ExitRecord, ProtoError> {
            let conn = Conn::connect(&socket)?;
            conn.send(&Request::Stop { force, timeout_secs }, &[])?;
            loop {
                if let (Reply::Down { exit }, _) = conn.recv::<Reply>()? {
                    return Ok(exit);
                }
            }
        })
        .await?;
        let reason = match reply {
            Ok(exit) => exit.reason,
            Err(e) => {
                // The supervisor is gone: end whatever it left in the cgroup.
                warn!(vps = %name, "supervisor unreachable during stop ({e}); killing the VPS cgroup");
                self.kill_cgroup(&name).await;
                read_exit_record(&self.run_dir(&name))
                    .map(|r| r.reason)
                    .unwrap_or_else(|| "killed".into())
            }
        };
        self.finish_stop(&name, &reason).await
    }

    /// Remove VPS `name`'s cgroup once its processes are gone, and forget
    /// where it was. Processes killed a moment ago (exec helpers outside
    /// the pid namespace, an init still tearing down its mount namespaces
    /// on a busy host) may take a while to leave: up to [`CGROUP_DRAIN`].
    async fn remove_cgroup(&self, name: &str) -> Result<()> {
        let Some(cg) = self.cgroup_named(name).await else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + CGROUP_DRAIN;
        loop {
            match cg.remove() {
                Ok(()) => return Ok(self.db.set_cgroup(name, None).await?),
                Err(e) if std::time::Instant::now() >= deadline => {
                    // Kept on record: the next stop or croftd start tries
                    // again where it is.
                    warn!(vps = name, "cgroup not removed: {e}");
                    return Ok(());
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Record a VPS as stopped and release its cgroup.
    async fn finish_stop(&self, name: &str, reason: &str) -> Result<()> {
        self.remove_cgroup(name).await?;
        let _ = std::fs::remove_file(RunDir(&self.run_dir(name)).spec());
        self.after_stop_network(name).await;
        self.end_rescue(name).await?;
        self.db
            .set_status(name, Status::Stopped, None, Some(reason))
            .await?;
        info!(vps = name, reason, "stopped");
        Ok(())
    }

    /// A rescue boot ends with the VPS: its rescue system goes.
    async fn end_rescue(&self, name: &str) -> Result<()> {
        if self.pool.side_volume(name, SideVolume::Rescue).exists() {
            self.remove_side_volume(name, SideVolume::Rescue).await;
        }
        if self.row(name).await?.rescue_image.is_some() {
            self.db.set_rescue(name, None).await?;
        }
        Ok(())
    }

    /// A new disk a crash left beside a stopped VPS's disk: one that was
    /// already swapped halfway in (the old disk gone) is finished, any
    /// other is dropped, so the VPS has exactly one whole disk.
    async fn recover_replacement(&self, row: &InstanceRow) -> Result<()> {
        let name = &row.name;
        let has = |side| self.pool.side_volume(name, side).exists();
        let disk = self.instance_dir(name).join("rootfs").exists();
        if has(SideVolume::Replacement) {
            if disk {
                warn!(vps = %name, "removing a new disk a crash left unfinished");
                self.remove_side_volume(name, SideVolume::Replacement).await;
            } else {
                // Complete (it is made whole before the swap starts) and
                // carrying the disk limit: finish putting it in place.
                warn!(vps = %name, "finishing the swap of a new disk a crash interrupted");
                let pool = self.pool.clone();
                let vps = name.clone();
                blocking(move || pool.commit_replacement(&vps)).await??;
            }
        }
        if has(SideVolume::Retired) {
            warn!(vps = %name, "removing an old disk a crash left on its way out");
            self.remove_side_volume(name, SideVolume::Retired).await;
        }
        Ok(())
    }

    async fn kill_cgroup(&self, name: &str) {
        let Some(cg) = self.cgroup_named(name).await else {
            return;
        };
        for _ in 0..50 {
            let procs = cg.procs().unwrap_or_default();
            if procs.is_empty() {
                return;
            }
            for pid in procs {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn delete(self: &Arc<Self>, name: &str, force: bool) -> Result<()> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let row = self.row(name).await?;
        self.refuse_while_exporting(name, None)?;
        match row.status {
            Status::Running if !force => {
                return Err(ManagerError::Conflict(format!(
                    "VPS {name} is running; stop it first or force the delete"
                )))
            }
            Status::Running | Status::Stopping | Status::Starting => {
                self.stop_locked(&row, true, Some(1)).await?
            }
            _ => {}
        }
        self.finish_delete(name).await
    }

    async fn finish_delete(&self, name: &str) -> Result<()> {
        self.db.set_status(name, Status::Deleting, None, None).await?;
        if let Some(cg) = self.cgroup_named(name).await {
            cg.remove()?;
        }
        let _ = std::fs::remove_dir_all(self.run_dir(name));
        let pool = self.pool.clone();
        let volume = name.to_string();
        blocking(move || pool.delete_volume(&volume)).await??;
        crate::failpoint::crash_point("delete:volume-gone");
        let host_if = self.db.nic(name).await?.map(|n| n.host_if);
        let more_rules = self.has_more_rules(name).await?;
        self.db.delete_instance(name).await?;
        self.release_nic(host_if, more_rules).await?;
        info!(vps = name, "deleted");
        Ok(())
    }

    /// The VPS's recent console output (kept by its supervisor while no
    /// console client is attached), newest last, at most `max` bytes.
    pub async fn console_log(&self, name: &str, max: usize) -> Result<String> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.row(name).await?;
        let path = RunDir(&self.run_dir(name)).console_log();
        let mut bytes = std::fs::read(path.with_extension("log.1")).unwrap_or_default();
        bytes.extend(std::fs::read(&path).unwrap_or_default());
        let start = bytes.len().saturating_sub(max);
        Ok(String::from_utf8_lossy(&bytes[start..]).into_owned())
    }

    pub async fn snapshots(&self, name: &str) -> Result<Vec<croft_api::Snapshot>> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.row(name).await?;
        let mut out = Vec::new();
        for (snap, created_at) in self.db.snapshots(name).await? {
            let pool = self.pool.clone();
            let (vps, s) = (name.to_string(), snap.clone());
            let size_bytes = blocking(move || pool.snapshot_usage(&vps, &s))
                .await?
                .ok()
                .flatten();
            out.push(croft_api::Snapshot {
                name: snap,
                created_at,
                size_bytes,
            });
        }
        Ok(out)
    }

    /// Take a snapshot of `name`'s disk, or import one from the stream in
    /// file `from`.
    pub async fn create_snapshot(
        self: &Arc<Self>,
        name: &str,
        snap: Option<String>,
        from: Option<&str>,
    ) -> Result<croft_api::Snapshot> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        if let Some(s) = &snap {
            croft_api::validate_name(s)
                .map_err(|e| ManagerError::Invalid(format!("snapshot {}", crate::error_chain(&e))))?;
        }
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        self.row(name).await?;
        if let Some(from) = from {
            return self.import_snapshot_locked(name, snap, from).await;
        }
        let existing = self.db.snapshot_names(name).await?;
        let snap = snap.unwrap_or_else(|| {
            (0..)
                .map(|i| format!("snap{i}"))
                .find(|n| !existing.contains(n))
                .expect("a free name")
        });
        if !self.db.insert_snapshot(name, &snap).await? {
            return Err(ManagerError::Conflict(format!(
                "VPS {name} already has a snapshot {snap}"
            )));
        }
        let pool = self.pool.clone();
        let (vps, s) = (name.to_string(), snap.clone());
        if let Err(e) = blocking(move || pool.create_snapshot(&vps, &s)).await? {
            self.db.delete_snapshot(name, &snap).await?;
            return Err(match e {
                StorageError::Unsupported { .. } => ManagerError::Invalid(crate::error_chain(&e)),
                e => e.into(),
            });
        }
        info!(vps = name, snapshot = %snap, "snapshot taken");
        // Its size is not measured here: that needs a btrfs commit (several
        // times the snapshot itself), and a new snapshot holds nothing of
        // its own yet. `croft snapshot list` measures.
        self.recorded_snapshot(name, snap).await
    }

    /// Snapshot `snap` of `name` as recorded, its size not measured.
    async fn recorded_snapshot(&self, name: &str, snap: String) -> Result<croft_api::Snapshot> {
        let created_at = self
            .db
            .snapshots(name)
            .await?
            .into_iter()
            .find(|(n, _)| *n == snap)
            .map(|(_, c)| c)
            .ok_or_else(|| ManagerError::NotFound(format!("snapshot {snap}")))?;
        Ok(croft_api::Snapshot {
            name: snap,
            created_at,
            size_bytes: None,
        })
    }

    async fn require_snapshot(&self, name: &str, snap: &str) -> Result<()> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        croft_api::validate_name(snap)
            .map_err(|e| ManagerError::Invalid(format!("snapshot {}", crate::error_chain(&e))))?;
        self.row(name).await?;
        if !self.db.snapshots(name).await?.iter().any(|(n, _)| n == snap) {
            return Err(ManagerError::NotFound(format!("snapshot {snap} of {name}")));
        }
        Ok(())
    }

    pub async fn delete_snapshot(self: &Arc<Self>, name: &str, snap: &str) -> Result<()> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        self.require_snapshot(name, snap).await?;
        self.refuse_while_exporting(name, Some(snap))?;
        let pool = self.pool.clone();
        let (vps, s) = (name.to_string(), snap.to_string());
        blocking(move || pool.delete_snapshot(&vps, &s)).await??;
        self.db.delete_snapshot(name, snap).await?;
        Ok(())
    }

    /// Put a snapshot back as the VPS's disk. A running VPS is refused
    /// unless `stop`, then stopped cleanly and started again.
    pub async fn restore_snapshot(self: &Arc<Self>, name: &str, snap: &str, stop: bool) -> Result<Instance> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        self.require_snapshot(name, snap).await?;
        let row = self.row(name).await?;
        let was_running = match row.status {
            Status::Running if !stop => {
                return Err(ManagerError::Conflict(format!(
                "VPS {name} is running; stop it first or restore with stop (croft snapshot restore --stop)"
            )))
            }
            Status::Running => {
                self.stop_locked(&row, false, None).await?;
                true
            }
            Status::Stopped | Status::Error => false,
            s => return Err(ManagerError::Conflict(format!("VPS {name} is {s}"))),
        };
        let pool = self.pool.clone();
        let (vps, s) = (name.to_string(), snap.to_string());
        blocking(move || pool.restore_snapshot(&vps, &s)).await??;
        info!(vps = name, snapshot = snap, "restored");
        if was_running {
            let row = self.row(name).await?;
            self.start_locked(&row, None).await?;
        }
        self.get_brief(name).await
    }

    /// Reinstall `name`'s disk from `req.image`, keeping its name, id
    /// range, addresses, port forwards, firewall, limits, SSH keys and
    /// snapshots. A running VPS is stopped first and started again after.
    /// The new disk is made beside the old one and swapped in only once
    /// complete: if anything fails the VPS keeps its old disk (and runs
    /// again if it ran).
    pub async fn rebuild(
        self: &Arc<Self>,
        name: &str,
        req: croft_api::RebuildRequest,
    ) -> Result<croft_api::Job> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.require_image(&req.image).await?;
        if let Some(script) = &req.user_data {
            croft_api::validate_user_data(script).map_err(ManagerError::Invalid)?;
        }
        let row = self.row(name).await?;
        if !matches!(row.status, Status::Stopped | Status::Error | Status::Running) {
            return Err(ManagerError::Conflict(format!("VPS {name} is {}", row.status)));
        }
        let this = self.clone();
        let name = name.to_string();
        self.jobs
            .submit("rebuild", &name.clone(), move |job| async move {
                let lock = this.lock_for(&name);
                let _guard = lock.lock().await;
                this.rebuild_locked(&name, &req, &job).await
            })
            .await
            .map_err(ManagerError::from)
    }

    async fn rebuild_locked(
        self: &Arc<Self>,
        name: &str,
        req: &croft_api::RebuildRequest,
        job: &JobHandle,
    ) -> Result<()> {
        let row = self.row(name).await?;
        let was_running = match row.status {
            Status::Running => {
                job.progress(5, "stopping").await;
                self.stop_locked(&row, false, None).await?;
                true
            }
            Status::Stopped | Status::Error => false,
            s => return Err(ManagerError::Conflict(format!("VPS {name} is {s}"))),
        };
        let row = self.row(name).await?;
        job.progress(10, "preparing the new disk").await;
        let made = async {
            self.disk_from_image(
                &row,
                SideVolume::Replacement,
                &req.image,
                req.user_data.clone(),
                Some(job),
            )
            .await?;
            crate::failpoint::crash_point("rebuild:disk-made");
            job.progress(80, "swapping the disk").await;
            // The image is recorded first: a crash during the swap is
            // finished at the next start, and the record must then match.
            self.db.set_image(name, &req.image).await?;
            let pool = self.pool.clone();
            let vps = name.to_string();
            if let Err(e) = blocking(move || pool.commit_replacement(&vps)).await? {
                self.db.set_image(name, &row.image).await?;
                return Err(e.into());
            }
            Ok::<(), ManagerError>(())
        }
        .await;
        if let Err(e) = made {
            self.remove_side_volume(name, SideVolume::Replacement).await;
            if was_running {
                if let Err(start) = self.start_locked(&row, None).await {
                    warn!(
                        vps = name,
                        "could not start the VPS again after a failed rebuild: {start}"
                    );
                }
            }
            return Err(e);
        }
        info!(vps = name, image = %req.image, "rebuilt");
        if was_running {
            job.progress(90, "starting").await;
            let row = self.row(name).await?;
            self.start_locked(&row, None).await?;
        }
        Ok(())
    }

    /// A new VPS from `src`'s disk (or its snapshot) with its own identity:
    /// name and hostname, id range, machine-id and SSH host keys. Created
    /// stopped.
    pub async fn copy(self: &Arc<Self>, src: &str, dst: &str, snap: Option<String>) -> Result<Instance> {
        croft_api::validate_name(dst).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        if !self.pool.snapshots() {
            return Err(ManagerError::Invalid(
                "the dir storage driver cannot copy VPS disks; use a btrfs pool".into(),
            ));
        }
        let src_lock = self.lock_for(src);
        let _src_guard = src_lock.lock().await;
        let source = match &snap {
            Some(s) => {
                self.require_snapshot(src, s).await?;
                self.row(src).await?
            }
            None => {
                croft_api::validate_name(src).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
                self.row(src).await?
            }
        };
        let uid_base = self
            .db
            .insert_instance(
                dst,
                &source.image,
                &source.config,
                self.cfg.id_base,
                self.cfg.id_ranges,
            )
            .await?
            .ok_or_else(|| ManagerError::Conflict(format!("VPS {dst} already exists")))?;
        if let Err(e) = self.allocate_nic(dst, uid_base, Default::default()).await {
            self.db.delete_instance(dst).await?;
            return Err(e);
        }
        self.db.add_ssh_keys(dst, &self.db.ssh_keys(src).await?).await?;
        let dst_lock = self.lock_for(dst);
        let _dst_guard = dst_lock.lock().await;
        let result = async {
            self.make_instance_dir(dst, uid_base)?;
            let pool = self.pool.clone();
            let (from, to, s) = (src.to_string(), dst.to_string(), snap.clone());
            let rootfs = blocking(move || pool.copy_volume(&from, s.as_deref(), &to)).await??;
            crate::failpoint::crash_point("copy:volume-made");
            let name = dst.to_string();
            blocking(move || croft_host::rootfs::new_identity(&rootfs, &name))
                .await?
                .map_err(|e| ManagerError::Host {
                    what: "give the copy its own identity".into(),
                    detail: crate::error_chain(&e),
                })?;
            let cfg = InstanceConfig::parse(&source.config).unwrap_or_default();
            if cfg.disk_bytes.is_some() {
                let pool = self.pool.clone();
                let to = dst.to_string();
                blocking(move || pool.set_limit(&to, cfg.disk_bytes)).await??;
            }
            // Its rules are loaded when it first starts (a copy must stay
            // a snapshot's cost, and a stopped VPS sends nothing).
            self.db.set_status(dst, Status::Stopped, None, None).await?;
            Ok::<(), ManagerError>(())
        }
        .await;
        if let Err(e) = result {
            self.rollback_launch(dst).await;
            return Err(e);
        }
        info!(src, dst, "copied");
        self.get_brief(dst).await
    }

    /// Make sure image `name` (one croft builds) is in the pool, building it
    /// if it is not, and record what it is. Build steps are reported on
    /// `job`, scaled into the `span` of its percent.
    async fn ensure_built(
        self: &Arc<Self>,
        name: &str,
        job: Option<&JobHandle>,
        span: (u8, u8),
    ) -> Result<()> {
        let kind = ImageStore::kind(name)?;
        let lock = self.lock_for(&format!("image:{name}"));
        let _guard = lock.lock().await;
        let dir_name = crate::images::pool_name(name);
        if self.pool.image_exists(&dir_name) {
            return Ok(());
        }
        if let Some(job) = job {
            job.progress(span.0, &format!("building image {name}")).await;
        }
        let (images, pool, image, job2) = (
            self.images.clone(),
            self.pool.clone(),
            name.to_string(),
            job.cloned(),
        );
        let runtime = tokio::runtime::Handle::current();
        blocking(move || {
            let mut last_report: Option<std::time::Instant> = None;
            images.ensure_in_pool(&image, pool.as_ref(), &mut |step| {
                let Some(job2) = &job2 else { return };
                // A build prints a line per package: report a few a second.
                if last_report.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
                    return;
                }
                last_report = Some(std::time::Instant::now());
                let pct = span.0
                    + (u32::from(span.1 - span.0) * u32::from(crate::images::build_percent(step)) / 100)
                        as u8;
                runtime.block_on(job2.progress(pct, &format!("building image {image}: {step}")));
            })
        })
        .await??;
        let pool = self.pool.clone();
        let (facts, size) = blocking(move || {
            let mut facts = croft_host::rootfs::describe(&pool.image_dir(&dir_name));
            // The busybox image has no os-release.
            facts.distro.get_or_insert_with(|| "busybox".into());
            (facts, pool.image_usage(&dir_name).ok().flatten())
        })
        .await?;
        self.db
            .upsert_image(ImageUpdate {
                name,
                source: "built",
                description: kind.description,
                size_bytes: size,
                facts: Some(facts),
                ..Default::default()
            })
            .await?;
        info!(image = %name, "built");
        Ok(())
    }

    /// `croft image build`: a job that builds the image unless it is built.
    pub async fn build_image(self: &Arc<Self>, name: &str) -> Result<croft_api::Job> {
        croft_api::validate_image_name(name).map_err(ManagerError::Invalid)?;
        if ImageStore::kind(name).is_err() {
            let imported = self.db.images().await?.iter().any(|i| i.name == name);
            return Err(if imported {
                ManagerError::Invalid(format!("image {name} is imported; croft cannot build it"))
            } else {
                ManagerError::Image(ImageStore::kind(name).err().expect("checked above"))
            });
        }
        if !self.pool.snapshots() {
            return Err(ManagerError::Invalid(
                "the dir storage driver builds images on first launch only; use btrfs".into(),
            ));
        }
        let this = self.clone();
        let image = name.to_string();
        self.jobs
            .submit("image-build", name, move |job| async move {
                this.ensure_built(&image, Some(&job), (0, 100)).await
            })
            .await
            .map_err(ManagerError::from)
    }

    /// One image, as `croft image info` shows it.
    pub async fn image(&self, name: &str) -> Result<croft_api::Image> {
        croft_api::validate_image_name(name).map_err(ManagerError::Invalid)?;
        self.list_images()
            .await?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| ManagerError::NotFound(format!("image {name}")))
    }

    /// A known image: one croft builds, or one imported into the pool.
    async fn require_image(&self, name: &str) -> Result<()> {
        croft_api::validate_image_name(name).map_err(ManagerError::Invalid)?;
        let rows = self.db.images().await?;
        if let Some(arch) = rows
            .iter()
            .find(|i| i.name == name)
            .and_then(|i| i.arch.as_deref())
        {
            let host = croft_host::rootfs::host_arch();
            if arch != host {
                return Err(ManagerError::Invalid(format!(
                    "image {name} is built for {arch}; this host runs {host}"
                )));
            }
        }
        if ImageStore::kind(name).is_ok() {
            return Ok(());
        }
        if self
            .db
            .images()
            .await?
            .iter()
            .any(|i| i.name == name && i.source == "imported")
        {
            return Ok(());
        }
        let mut known: Vec<String> = crate::images::KINDS.iter().map(|k| k.name.to_string()).collect();
        known.extend(
            self.db
                .images()
                .await?
                .into_iter()
                .filter(|i| i.source == "imported")
                .map(|i| i.name),
        );
        Err(ManagerError::Image(ImageError::Unknown {
            name: name.into(),
            available: known.join(", "),
        }))
    }

    pub async fn list_images(&self) -> Result<Vec<croft_api::Image>> {
        let rows = self.db.images().await?;
        let mut out = Vec::new();
        for kind in crate::images::KINDS {
            let row = rows.iter().find(|r| r.name == kind.name);
            out.push(croft_api::Image {
                name: kind.name.into(),
                description: kind.description.into(),
                source: "built".into(),
                available: self.pool.image_exists(&crate::images::pool_name(kind.name)),
                size_bytes: row.and_then(|r| r.size_bytes),
                sha256: row.and_then(|r| r.sha256.clone()),
                created_at: row.map(|r| r.created_at.clone()),
                distro: row.and_then(|r| r.distro.clone()),
                release: row.and_then(|r| r.release.clone()),
                arch: row.and_then(|r| r.arch.clone()),
            });
        }
        for r in rows.into_iter().filter(|r| r.source == "imported") {
            out.push(croft_api::Image {
                available: self.pool.image_exists(&crate::images::pool_name(&r.name)),
                name: r.name,
                description: r.description,
                source: r.source,
                size_bytes: r.size_bytes,
                sha256: r.sha256,
                created_at: Some(r.created_at),
                distro: r.distro,
                release: r.release,
                arch: r.arch,
            });
        }
        Ok(out)
    }

    /// Import a tarball on this host as image `name` (a job): unpacked into
    /// a fresh volume with every entry checked, published only when whole.
    pub async fn import_image(self: &Arc<Self>, req: croft_api::ImportRequest) -> Result<croft_api::Job> {
        croft_api::validate_image_name(&req.name).map_err(ManagerError::Invalid)?;
        if ImageStore::kind(&req.name).is_ok() || self.db.images().await?.iter().any(|i| i.name == req.name) {
            return Err(ManagerError::Conflict(format!(
                "image {} already exists",
                req.name
            )));
        }
        if !self.pool.snapshots() {
            return Err(ManagerError::Invalid(
                "the dir storage driver cannot keep imported images; use btrfs".into(),
            ));
        }
        let path = PathBuf::from(&req.path);
        if !path.is_absolute() || !path.is_file() {
            return Err(ManagerError::Invalid(format!(
                "{} is not a file on croftd's host (give an absolute path)",
                req.path
            )));
        }
        let this = self.clone();
        let lock_name = format!("image:{}", req.name);
        self.jobs
            .submit("image-import", &req.name.clone(), move |job| async move {
                let lock = this.lock_for(&lock_name);
                let _guard = lock.lock().await;
                job.progress(10, "unpacking").await;
                let pool = this.pool.clone();
                let (name, file) = (req.name.clone(), path.clone());
                let (bytes, digest, facts) = blocking(move || -> Result<_> {
                    let digest = sha256_file(&file)?;
                    let mut unpacked = None;
                    pool.ensure_image(&crate::images::pool_name(&name), &mut |dir| {
                        let u =
                            croft_host::archive::unpack(&file, dir).map_err(|e| crate::error_chain(&e))?;
                        unpacked = Some((u.bytes, croft_host::rootfs::describe(dir)));
                        Ok(())
                    })?;
                    let (bytes, facts) = unpacked.unwrap_or_default();
                    Ok((bytes, digest, facts))
                })
                .await??;
                this.db
                    .upsert_image(ImageUpdate {
                        name: &req.name,
                        source: "imported",
                        description: &format!("imported from {}", req.path),
                        size_bytes: Some(bytes),
                        sha256: Some(&digest),
                        facts: Some(facts),
                    })
                    .await?;
                info!(image = %req.name, "imported");
                Ok::<(), ManagerError>(())
            })
            .await
            .map_err(ManagerError::from)
    }

    pub async fn export_image(
        &self,
        name: &str,
        path: &str,
        overwrite: bool,
    ) -> Result<croft_api::ExportResult> {
        croft_api::validate_image_name(name).map_err(ManagerError::Invalid)?;
        let dir_name = crate::images::pool_name(name);
        if !self.pool.image_exists(&dir_name) {
            return Err(ManagerError::NotFound(format!(
                "image {name} (launch it once to build it)"
            )));
        }
        let out = output_file(path, overwrite)?;
        let src = self.pool.image_dir(&dir_name);
        let (sha256, size_bytes) = blocking(move || {
            let file = croft_host::outfile::OutFile::create(&out, overwrite).map_err(outfile_err)?;
            let packed = croft_host::archive::pack(&src, file.file()).map_err(|e| ManagerError::Host {
                what: "export".into(),
                detail: crate::error_chain(&e),
            })?;
            file.persist().map_err(outfile_err)?;
            Ok::<_, ManagerError>(packed)
        })
        .await??;
        let source = if ImageStore::kind(name).is_ok() {
            "built"
        } else {
            "imported"
        };
        self.db
            .upsert_image(ImageUpdate {
                name,
                source,
                sha256: Some(&sha256),
                ..Default::default()
            })
            .await?;
        Ok(croft_api::ExportResult {
            path: path.into(),
            sha256,
            size_bytes,
        })
    }

    /// Delete an image; VPSes launched from it keep their own disks. A
    /// built image is rebuilt on its next launch.
    pub async fn delete_image(&self, name: &str) -> Result<()> {
        croft_api::validate_image_name(name).map_err(ManagerError::Invalid)?;
        let known = ImageStore::kind(name).is_ok() || self.db.images().await?.iter().any(|i| i.name == name);
        if !known {
            return Err(ManagerError::NotFound(format!("image {name}")));
        }
        let pool = self.pool.clone();
        let dir_name = crate::images::pool_name(name);
        blocking(move || pool.delete_image(&dir_name)).await??;
        self.db.delete_image(name).await?;
        Ok(())
    }

    /// Change configuration; limits apply live to a running VPS. Nothing is
    /// stored unless every value is valid and applied.
    pub async fn patch_config(self: &Arc<Self>, name: &str, patch: ConfigPatch) -> Result<Instance> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let row = self.row(name).await?;
        let mut config: BTreeMap<String, String> = row.config.clone();
        for key in &patch.unset {
            if !croft_api::config::KEYS.iter().any(|(k, _)| k == key) {
                return Err(ManagerError::Invalid(format!(
                    "unknown configuration key {key:?}"
                )));
            }
            config.remove(key);
        }
        for (k, v) in &patch.set {
            config.insert(k.clone(), v.clone());
        }
        let parsed =
            InstanceConfig::parse(&config).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.check_disk_limit(&parsed)?;
        let old = InstanceConfig::parse(&row.config).unwrap_or_default();
        if parsed.firewall_deny && !old.firewall_deny {
            self.require_firewall()?;
        }
        if parsed.disk_bytes != old.disk_bytes {
            let pool = self.pool.clone();
            let volume = name.to_string();
            let limit = parsed.disk_bytes;
            blocking(move || pool.set_limit(&volume, limit))
                .await?
                .map_err(|e| match e {
                    StorageError::BelowUsage { limit, used } => ManagerError::Invalid(format!(
                        "limits.disk={} is below the {} the VPS already uses",
                        croft_api::format_size(limit),
                        croft_api::format_size(used)
                    )),
                    e => ManagerError::Storage(e),
                })?;
        }
        if row.status == Status::Running
            && (parsed.ingress_bps, parsed.egress_bps) != (old.ingress_bps, old.egress_bps)
        {
            if let Err(e) = self
                .apply_bandwidth(name, parsed.ingress_bps, parsed.egress_bps)
                .await
            {
                if parsed.disk_bytes != old.disk_bytes {
                    let _ = self.pool.set_limit(name, old.disk_bytes);
                }
                let _ = self.apply_bandwidth(name, old.ingress_bps, old.egress_bps).await;
                return Err(e);
            }
        }
        if row.status == Status::Running {
            let cg = self.cgroup_of(&row)?;
            let others = self.other_cgroups(name).await?;
            if let Err(e) = cg
                .apply(&limits(&parsed))
                .map_err(ManagerError::from)
                .and_then(|()| self.pin_cpus(&cg, &others, &parsed))
            {
                // Put back what was there; the user's change did not take.
                let _ = cg.apply(&limits(&old));
                let _ = self.pin_cpus(&cg, &others, &old);
                if parsed.disk_bytes != old.disk_bytes {
                    let _ = self.pool.set_limit(name, old.disk_bytes);
                }
                let _ = self.apply_bandwidth(name, old.ingress_bps, old.egress_bps).await;
                return Err(ManagerError::Conflict(format!(
                    "cannot apply the new limits: {}",
                    crate::error_chain(&e)
                )));
            }
        }
        self.db.set_config(name, &config).await?;
        if parsed.firewall_deny != old.firewall_deny {
            if let Err(e) = self.apply_rules().await {
                self.db.set_config(name, &row.config).await?;
                return Err(e);
            }
        }
        self.get_brief(name).await
    }

    /// Follow a running VPS's supervisor: reboots update the init pid, the
    /// final exit marks the VPS stopped, unless an operation (stop,
    /// restart) already took over: the watcher only acts while the
    /// database still names the init it follows.
    fn watch(self: &Arc<Self>, name: String, init_pid: i32) {
        let socket = RunDir(&self.run_dir(&name)).socket();
        let this = self.clone();
        tokio::spawn(async move {
            let mut current = init_pid;
            let mut conn = None;
            let end = loop {
                match watch_next(&socket, &mut conn).await {
                    WatchEvent::Rebooted(pid, reason) => {
                        let lock = this.lock_for(&name);
                        let _guard = lock.lock().await;
                        if let Ok(Some(row)) = this.db.instance(&name).await {
                            if row.status == Status::Running && row.init_pid == Some(current) {
                                let _ = this
                                    .db
                                    .set_status(&name, Status::Running, Some(pid), reason.as_deref())
                                    .await;
                                match &reason {
                                    Some(reason) => warn!(vps = %name, init_pid = pid, "restarted: {reason}"),
                                    None => info!(vps = %name, init_pid = pid, "rebooted"),
                                }
                            }
                        }
                        current = pid;
                    }
                    other => break other,
                }
            };
            let lock = this.lock_for(&name);
            let _guard = lock.lock().await;
            let Ok(Some(row)) = this.db.instance(&name).await else {
                return;
            };
            if row.status != Status::Running || row.init_pid != Some(current) {
                return;
            }
            let reason = match end {
                WatchEvent::Down(exit) => exit.reason,
                WatchEvent::Lost(e) => read_exit_record(&this.run_dir(&name))
                    .map(|r| r.reason)
                    .unwrap_or(format!("supervisor lost: {e}")),
                WatchEvent::Rebooted(..) => unreachable!("handled in the loop"),
            };
            if let Err(e) = this.finish_stop(&name, &reason).await {
                warn!(vps = %name, "recording the exit failed: {e}");
            }
        });
    }

    /// Bring the database in line with reality after croftd (re)starts.
    pub async fn reconcile(self: &Arc<Self>) -> Result<()> {
        self.setup_network().await?;
        let interrupted = self.db.fail_interrupted_jobs().await?;
        if interrupted > 0 {
            warn!(
                interrupted,
                "jobs interrupted by a croftd restart were marked failed"
            );
        }
        let rows = self.db.instances().await?;
        for row in &rows {
            let name = &row.name;
            match row.status {
                Status::Creating => {
                    warn!(vps = %name, "removing a launch that croftd did not finish");
                    self.rollback_launch(name).await;
                }
                Status::Deleting => self.finish_delete(name).await?,
                Status::Running | Status::Starting | Status::Stopping => {
                    let run_dir = self.run_dir(name);
                    match blocking(move || wait_for_supervisor(&run_dir)).await? {
                        Ok(init_pid) => {
                            // A stop croftd was killed in the middle of is
                            // still one: it shows, and gets finished.
                            let status = match row.status {
                                Status::Stopping => Status::Stopping,
                                _ => Status::Running,
                            };
                            self.db.set_status(name, status, Some(init_pid), None).await?;
                            info!(vps = %name, init_pid, "reattached");
                            self.watch(name.clone(), init_pid);
                            if status == Status::Stopping {
                                self.finish_interrupted_stop(name.clone());
                            }
                        }
                        Err(_) => {
                            let reason = read_exit_record(&self.run_dir(name))
                                .map(|r| r.reason)
                                .unwrap_or_else(|| "stopped while croftd was down".into());
                            self.kill_cgroup(name).await;
                            self.finish_stop(name, &reason).await?;
                        }
                    }
                }
                Status::Stopped | Status::Error => {
                    if let Ok(cg) = self.cgroup_of(row) {
                        if cg.exists()
                            && cg.procs().map(|p| p.is_empty()).unwrap_or(false)
                            && cg.remove().is_ok()
                        {
                            self.db.set_cgroup(name, None).await?;
                        }
                    }
                    // One VPS's trouble must not keep croftd from serving
                    // the others: log it and go on.
                    if let Err(e) = self.end_rescue(name).await {
                        warn!(vps = %name, "cannot end a rescue boot: {e}");
                    }
                    if let Err(e) = self.recover_replacement(row).await {
                        warn!(vps = %name, "cannot recover from an interrupted disk swap: {e}");
                    }
                }
            }
            if row.status != Status::Creating && row.status != Status::Deleting {
                if let Err(e) = self.reconcile_snapshots(name).await {
                    warn!(vps = %name, "cannot reconcile its snapshots: {e}");
                }
            }
        }
        // Cgroups and directories that belong to no VPS are leftovers of a
        // crash between creating them and recording them.
        let known: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        for orphan in self
            .cgroups
            .list()?
            .into_iter()
            .filter(|n| !known.contains(&n.as_str()))
        {
            if let Ok(cg) = self.cgroups.open(&orphan) {
                if cg.procs().map(|p| p.is_empty()).unwrap_or(false) {
                    warn!(cgroup = %orphan, "removing an orphaned cgroup");
                    let _ = cg.remove();
                }
            }
        }
        self.reconcile_images().await?;
        for orphan in self
            .pool
            .volumes()?
            .into_iter()
            .filter(|n| !known.contains(&n.as_str()))
        {
            warn!(volume = %orphan, "removing the volume of an unknown VPS");
            let pool = self.pool.clone();
            if let Ok(Err(e)) = blocking(move || pool.delete_volume(&orphan)).await {
                warn!("{}", crate::error_chain(&e));
            }
        }
        Ok(())
    }

    /// croftd died while stopping a VPS (a stop, restart, rebuild or
    /// delete): its supervisor may already be shutting it down. Finish the
    /// stop, in the background, so the VPS ends up stopped as the user
    /// asked rather than running or half-way down.
    fn finish_interrupted_stop(self: &Arc<Self>, name: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let lock = this.lock_for(&name);
            let _guard = lock.lock().await;
            let Ok(row) = this.row(&name).await else { return };
            if row.status != Status::Stopping {
                return;
            }
            warn!(vps = %name, "finishing a stop croftd was killed in the middle of");
            if let Err(e) = this.stop_locked(&row, false, None).await {
                warn!(vps = %name, "could not finish the interrupted stop: {e}");
            }
        });
    }

    /// A snapshot is recorded before it is taken (or received) and removed
    /// before its record is: a crash in between leaves a record without a
    /// snapshot, which goes, with what a receive left of it. A snapshot without a record is not something a crash
    /// makes (a database older than the pool, say): it is reported, and
    /// kept.
    async fn reconcile_snapshots(&self, name: &str) -> Result<()> {
        let recorded = self.db.snapshot_names(name).await?;
        let pool = self.pool.clone();
        let vps = name.to_string();
        let present = blocking(move || {
            // Left for the next start if it fails: the records still get
            // reconciled now.
            if let Err(e) = pool.discard_incoming(&vps) {
                warn!(vps = %vps, "cannot remove a half-received snapshot: {}", crate::error_chain(&e));
            }
            pool.snapshot_names(&vps)
        })
        .await??;
        for snap in recorded.iter().filter(|s| !present.contains(s)) {
            warn!(vps = name, snapshot = %snap, "forgetting a snapshot a crash left unmade");
            self.db.delete_snapshot(name, snap).await?;
        }
        for snap in present.into_iter().filter(|s| !recorded.contains(s)) {
            warn!(vps = name, snapshot = %snap, "a snapshot on disk has no record; kept, not listed");
        }
        Ok(())
    }

    /// Image volumes a crash left behind: half-built ones, and imports
    /// that were unpacked but never recorded.
    async fn reconcile_images(&self) -> Result<()> {
        let pool = self.pool.clone();
        for name in blocking(move || pool.remove_unfinished_images()).await?? {
            warn!(volume = %name, "removed an image volume a crash left half-built");
        }
        let recorded: Vec<String> = self
            .db
            .images()
            .await?
            .into_iter()
            .map(|i| crate::images::pool_name(&i.name))
            .chain(
                crate::images::KINDS
                    .iter()
                    .map(|k| crate::images::pool_name(k.name)),
            )
            .collect();
        let pool = self.pool.clone();
        for orphan in pool.images()?.into_iter().filter(|n| !recorded.contains(n)) {
            warn!(volume = %orphan, "removing an image volume no image record names");
            let pool = self.pool.clone();
            if let Ok(Err(e)) = blocking(move || pool.delete_image(&orphan)).await {
                warn!("{}", crate::error_chain(&e));
            }
        }
        Ok(())
    }

    /// On a clean daemon shutdown with no VPS running, remove croft's
    /// (then empty) cgroup prefix, leaving the host as it was.
    pub async fn tidy_on_shutdown(&self) {
        let any_running = self
            .db
            .instances()
            .await
            .map(|rows| rows.iter().any(|r| r.status != Status::Stopped))
            .unwrap_or(true);
        if !any_running {
            if let Err(e) = self.cgroups.remove_prefix() {
                warn!("leaving croft's cgroup prefix in place: {e}");
            }
        }
    }

    /// After a host boot (the run directory's marker is gone), start every
    /// VPS with `boot.autostart=true`.
    pub async fn autostart(self: &Arc<Self>) -> Result<()> {
        let marker = self.cfg.run_dir.join("booted");
        if marker.exists() {
            return Ok(());
        }
        for row in self.db.instances().await? {
            let cfg = InstanceConfig::parse(&row.config).unwrap_or_default();
            if cfg.autostart && matches!(row.status, Status::Stopped | Status::Error) {
                match self.start(&row.name, None).await {
                    Ok(_) => info!(vps = %row.name, "autostarted"),
                    Err(e) => warn!(vps = %row.name, "autostart failed: {e}"),
                }
            }
        }
        std::fs::write(&marker, b"").map_err(host_err(format!("write {}", marker.display())))
    }
}

enum WatchEvent {
    /// The new init's pid, and why when the VPS did not reboot itself.
    Rebooted(i32, Option<String>),
    Down(ExitRecord),
    Lost(String),
}

type WatchConn = AsyncFd<Conn>;

/// The next event on a supervisor's `watch` connection, opening it on the
/// first call. No thread is held: the socket is polled by tokio.
async fn watch_next(socket: &Path, conn: &mut Option<WatchConn>) -> WatchEvent {
    if conn.is_none() {
        match open_watch(socket) {
            Ok(c) => *conn = Some(c),
            Err(e) => return WatchEvent::Lost(e),
        }
    }
    let afd = conn.as_ref().expect("opened above");
    loop {
        let mut guard = match afd.readable().await {
            Ok(g) => g,
            Err(e) => return WatchEvent::Lost(e.to_string()),
        };
        let res = guard.try_io(|inner| match inner.get_ref().recv::<Reply>() {
            Err(ProtoError::Io(nix::Error::EAGAIN)) => Err(std::io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        });
        match res {
            Err(_would_block) => continue,
            Ok(Ok(Ok((Reply::Down { exit }, _)))) => return WatchEvent::Down(exit),
            Ok(Ok(Ok((Reply::Rebooted { init_pid, reason }, _)))) => {
                return WatchEvent::Rebooted(init_pid, reason)
            }
            Ok(Ok(Ok(_))) => continue,
            Ok(Ok(Err(e))) => return WatchEvent::Lost(e.to_string()),
            Ok(Err(e)) => return WatchEvent::Lost(e.to_string()),
        }
    }
}

fn open_watch(socket: &Path) -> Result<WatchConn, String> {
    let conn = Conn::connect(socket).map_err(|e| e.to_string())?;
    conn.send(&Request::Watch, &[]).map_err(|e| e.to_string())?;
    nix::fcntl::fcntl(
        std::os::fd::AsRawFd::as_raw_fd(&conn),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| e.to_string())?;
    // SAFETY: `Conn` owns its descriptor (an OwnedFd) and always returns
    // that same descriptor from as_raw_fd; the AsyncFd owns the Conn, so
    // the descriptor stays open for as long as it is registered.
    unsafe { AsyncFd::register(conn) }.map_err(|e| e.to_string())
}

/// The init pid of the VPS a supervisor of `run_dir` runs. A supervisor
/// that still holds its lock but does not answer yet is starting (or
/// ending): wait for it to answer or to exit, up to a minute.
fn wait_for_supervisor(run_dir: &Path) -> Result<i32, ProtoError> {
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

fn read_exit_record(run_dir: &Path) -> Option<ExitRecord> {
    serde_json::from_slice(&std::fs::read(RunDir(run_dir).exit_record()).ok()?).ok()
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).map_err(host_err(format!("open {}", path.display())))?;
    let mut hash = sha2::Sha256::new();
    std::io::copy(&mut f, &mut hash).map_err(host_err(format!("read {}", path.display())))?;
    Ok(format!("{:x}", hash.finalize()))
}

/// Check `path` as the file an export writes: absolute, in an existing
/// directory, and new unless `overwrite` (and never a directory).
fn output_file(path: &str, overwrite: bool) -> Result<PathBuf> {
    let out = PathBuf::from(path);
    if path.ends_with('/') {
        return Err(ManagerError::Invalid(format!(
            "{path} names a directory, not a file"
        )));
    }
    if !out.is_absolute() || out.parent().map(|p| !p.is_dir()).unwrap_or(true) {
        return Err(ManagerError::Invalid(format!(
            "{path}: give an absolute path in an existing directory"
        )));
    }
    croft_host::outfile::check_target(&out, overwrite).map_err(outfile_err)?;
    Ok(out)
}

/// An output file's refusal is the caller's to fix: a target that exists
/// is a 409, one that is not a regular file (or a bad path) a 400.
fn outfile_err(e: croft_host::outfile::OutFileError) -> ManagerError {
    use croft_host::outfile::OutFileError;
    match e {
        OutFileError::Exists(_) => ManagerError::Conflict(e.to_string()),
        OutFileError::NotRegular(..) | OutFileError::BadPath(_) => ManagerError::Invalid(e.to_string()),
        OutFileError::Io { .. } => ManagerError::Host {
            what: "write the output file".into(),
            detail: crate::error_chain(&e),
        },
    }
}

/// Copy image tree `src` into the empty volume `dst`, shifting owners to
/// the VPS's id range (pools without snapshots).
async fn copy_image_shifted(src: PathBuf, dst: PathBuf, uid_base: u32) -> Result<()> {
    blocking(move || croft_host::rootfs::copy_shifted(&src, &dst, uid_base))
        .await?
        .map_err(|e| ManagerError::Host {
            what: "copy the image".into(),
            detail: crate::error_chain(&e),
        })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ManagerError::Host {
            what: "background task".into(),
            detail: e.to_string(),
        })
}
