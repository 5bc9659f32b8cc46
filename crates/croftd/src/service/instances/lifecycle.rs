//! Launch, start, stop, restart and delete, and following a running VPS.

use super::status::{plan, Action, Plan};
use super::{free_id_base, InstanceService};
use crate::backend::{BackendError, DiskSource, Found, Identity, StartSpec, VpsEvent};
use crate::service::images::catalog::Catalog;
use crate::service::jobs::JobHandle;
use crate::service::network::{AddressRequest, Leftovers};
use crate::service::{Result, ServiceError, VpsName};
use crate::store::{instance_key, InstanceRecord, NewInstance, Settings, StoreError};
use croft_api::{Instance, LaunchRequest, Status};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::{info, warn};

impl InstanceService {
    /// Check a launch request and record the VPS with its id range,
    /// addresses and keys; the rest happens in a job. Nothing is recorded
    /// if this fails.
    pub async fn launch(self: &Arc<Self>, tenant: &str, req: LaunchRequest) -> Result<croft_api::Job> {
        croft_api::validate_name(&req.name).map_err(|e| ServiceError::invalid(&e))?;
        self.images.require(&req.image).await?;
        crate::service::tenants::require_image(self.store.as_ref(), tenant, &req.image).await?;
        let mut config = match &req.plan {
            Some(plan) => {
                croft_api::validate_name(plan).map_err(|e| ServiceError::Invalid(format!("plan {e}")))?;
                self.store
                    .plan(plan)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound(format!("plan {plan}")))?
                    .config
            }
            None => BTreeMap::new(),
        };
        // What the request sets wins over the plan.
        config.extend(req.config.clone());
        let settings = Settings::parse(config).map_err(|e| ServiceError::invalid(&e))?;
        self.check_disk_limit(&settings.parsed)?;
        self.check_disk_io(&settings.parsed)?;
        self.check_nesting(&settings.parsed)?;
        self.check_cpu_limit(&settings.parsed)?;
        crate::service::tenants::require_features(self.store.as_ref(), tenant, &settings.parsed).await?;
        let network = req
            .network
            .as_deref()
            .unwrap_or(crate::service::network::ipam::DEFAULT_NETWORK);
        let addresses = self.network.check_address_request(
            network,
            req.ipv4.as_deref(),
            req.ipv6.as_deref(),
            req.mac.as_deref(),
        )?;
        for key in &req.ssh_keys {
            if croft_api::parse_ssh_keys(key)
                .map_err(|e| ServiceError::invalid(&e))?
                .len()
                != 1
            {
                return Err(ServiceError::Invalid(
                    "give one public key per ssh_keys entry".into(),
                ));
            }
        }
        if let Some(script) = &req.user_data {
            croft_api::validate_user_data(script).map_err(|e| ServiceError::invalid(&e))?;
        }
        let mut keys = self.cfg.default_ssh_keys().map_err(ServiceError::Invalid)?;
        keys.extend(req.ssh_keys.iter().map(|k| k.trim().to_string()));
        let vps = self
            .create_record(tenant, &req.name, &req.image, settings.raw, addresses, keys)
            .await?;
        let this = self.clone();
        Ok(self
            .jobs
            .submit("launch", tenant, &req.name.clone(), move |job| async move {
                let lock = this.lock_for(&vps.key);
                let _guard = lock.lock().await;
                let result = this.create_and_start(&req, &vps, &job).await;
                if result.is_err() {
                    this.rollback_launch(&vps.key).await;
                }
                result
            })
            .await?)
    }

    /// Record a new VPS `name` of `tenant` (status `creating`) with the
    /// next free id range, its interface and its keys, in one step.
    pub(super) async fn create_record(
        &self,
        tenant: &str,
        name: &str,
        image: &str,
        settings: BTreeMap<String, String>,
        addresses: AddressRequest,
        ssh_keys: Vec<String>,
    ) -> Result<InstanceRecord> {
        let _allocating = self.network.allocating().await;
        let exists = || ServiceError::Conflict(format!("VPS {name} already exists"));
        let vpses = self.store.instances().await?;
        if vpses.iter().any(|v| v.tenant == tenant && v.name == name) {
            return Err(exists());
        }
        let uid_base = free_id_base(
            vpses.iter().map(|v| v.uid_base).collect(),
            self.cfg.id_base,
            self.cfg.id_ranges,
        )
        .ok_or_else(|| {
            ServiceError::Conflict(format!(
                "all {} id ranges are in use (id_ranges in croftd's configuration)",
                self.cfg.id_ranges
            ))
        })?;
        let uuid = uuid::Uuid::new_v4();
        let mut key = instance_key(tenant, name, uuid);
        // A VPS renamed away from `name` keeps it as its key: this one
        // takes its UUID instead.
        if vpses.iter().any(|v| v.key == key) {
            key = uuid.to_string();
        }
        let nic = self.network.plan_nic(&key, uid_base, addresses).await?;
        let new = NewInstance {
            uuid,
            key,
            tenant: tenant.into(),
            name: name.into(),
            image: image.into(),
            uid_base,
            settings,
            nic,
            ssh_keys,
        };
        let created = self.store.create_instance(&new).await.map_err(|e| match e {
            StoreError::Taken(what) if what.starts_with("the name") => exists(),
            StoreError::Taken(what) => ServiceError::Conflict(format!("{what} is already in use")),
            StoreError::Missing(what) => ServiceError::NotFound(what),
            e => e.into(),
        })?;
        self.emit(&created, "vps-created", Some(image.to_string()));
        Ok(created)
    }

    async fn create_and_start(
        self: &Arc<Self>,
        req: &LaunchRequest,
        vps: &InstanceRecord,
        job: &JobHandle,
    ) -> Result<()> {
        // The VPS's anti-spoofing rules load while its disk is made (the
        // start would otherwise wait for them).
        let rules = (!req.no_start).then(|| {
            let network = self.network.clone();
            let key = vps.key.clone();
            tokio::spawn(async move { network.load_rules_for(&key).await })
        });
        let made = async {
            job.step(10, "preparing image").await?;
            self.images.prepare(&req.image, Some(job), (10, 75)).await?;
            if !self.pool.snapshots() {
                job.step(40, "copying the image into the VPS").await?;
            }
            let disk = self
                .backend
                .prepare_disk(vps, DiskSource::Image(&req.image), None)
                .await?;
            crate::failpoint::crash_point("launch:disk-made");
            job.step(76, "setting up the VPS").await?;
            let identity = Identity {
                hostname: req.name.clone(),
                ssh_keys: self.store.ssh_keys(&vps.key).await?,
                user_data: req.user_data.clone(),
            };
            self.backend.provision(disk, identity).await?;
            if let Some(limit) = vps.settings.parsed.disk_bytes {
                let (pool, key) = (self.pool.clone(), vps.key.clone());
                crate::blocking(move || pool.set_limit(&key, Some(limit))).await??;
            }
            Ok::<(), ServiceError>(())
        }
        .await;
        // The rule load is always waited for, even when making the disk
        // failed: a rollback must not race a load of the rules it removes.
        let loaded = match rules {
            Some(rules) => rules
                .await
                .map_err(|e| ServiceError::host("load the VPS's network rules", e)),
            None => Ok(Ok(())),
        };
        made?;
        loaded??;
        self.store
            .set_status(&vps.key, Status::Stopped, None, None)
            .await?;
        if !req.no_start {
            job.step(80, "starting").await?;
            let row = self.row(&vps.key).await?;
            self.start_locked(&row, None).await?;
        }
        Ok(())
    }

    /// Undo a launch (or copy) that failed or that a crash interrupted:
    /// whatever of it runs, its disk, its records and its network setup.
    /// `name` is the VPS's key.
    pub(super) async fn rollback_launch(&self, name: &str) {
        self.backend.kill(name).await;
        self.backend.release(name).await;
        if let Err(e) = self.backend.remove(name).await {
            warn!(
                vps = name,
                "rollback could not remove its runtime remains: {}",
                crate::error_chain(&e)
            );
        }
        let pool = self.pool.clone();
        let volume = name.to_string();
        match crate::blocking(move || pool.delete_volume(&volume)).await {
            Ok(Err(e)) => warn!(
                vps = name,
                "rollback could not remove the volume: {}",
                crate::error_chain(&e)
            ),
            Err(e) => warn!(vps = name, "rollback could not remove the volume: {e}"),
            Ok(Ok(())) => self.reclaimer.request(),
        }
        let host_ifs = self
            .store
            .nics_of(name)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|n| n.host_if)
            .collect();
        if let Err(e) = self.store.delete_instance(name).await {
            warn!(
                vps = name,
                "rollback of a failed launch could not delete the record: {e}"
            );
        }
        // A failed launch: whatever it loaded goes with a full reload.
        let left = Leftovers {
            host_ifs,
            rules: None,
            routes: Vec::new(),
        };
        if let Err(e) = self.network.release(left).await {
            warn!(vps = name, "rollback could not remove the network setup: {e}");
        }
    }

    /// Start a stopped VPS: from its own disk, or with `rescue` from a
    /// rescue system (the given image, else the configured one) with its
    /// disk at /mnt.
    pub async fn start(self: &Arc<Self>, vps: VpsName<'_>, rescue: Option<Option<&str>>) -> Result<Instance> {
        let rescue_image = rescue.map(|image| image.unwrap_or(&self.cfg.rescue_image).to_string());
        if let Some(image) = &rescue_image {
            self.images.require(image).await?;
            crate::service::tenants::require_image(self.store.as_ref(), vps.tenant, image).await?;
        }
        let (_guard, row) = self.locked(vps).await?;
        plan(&row.name, row.status, Action::Start)?;
        self.start_locked(&row, rescue_image.as_deref()).await?;
        self.brief(&row.key).await
    }

    /// Start a VPS whose lock the caller holds, from its own disk or from
    /// `rescue` image with its disk at /mnt.
    pub(super) async fn start_locked(
        self: &Arc<Self>,
        row: &InstanceRecord,
        rescue: Option<&str>,
    ) -> Result<i32> {
        let name = &row.key;
        let disk = self.disk(name);
        if !disk.is_dir() {
            return Err(BackendError::Start {
                name: row.name.clone(),
                detail: format!("{} is missing", disk.display()),
            }
            .into());
        }
        let (rootfs, rescue_disk) = match rescue {
            None => (disk, None),
            Some(image) => {
                let root = self
                    .disk_from_image(row, croft_host::storage::SideVolume::Rescue, image, None, None)
                    .await?;
                self.store.set_rescue(name, Some(image)).await?;
                (root, Some(disk))
            }
        };
        let result = self.start_from(row, rootfs, rescue_disk, rescue).await;
        if result.is_err() && rescue.is_some() {
            self.remove_side_volume(name, croft_host::storage::SideVolume::Rescue)
                .await;
            self.store.set_rescue(name, None).await?;
        }
        result
    }

    async fn start_from(
        self: &Arc<Self>,
        row: &InstanceRecord,
        rootfs: std::path::PathBuf,
        rescue_disk: Option<std::path::PathBuf>,
        rescue: Option<&str>,
    ) -> Result<i32> {
        let name = &row.key;
        // Imported images boot /sbin/init; the stop signal follows the init
        // found in the rootfs.
        let (init, default_stop_signal) = match Catalog::kind(rescue.unwrap_or(&row.image)) {
            Ok(kind) => (
                kind.init.iter().map(|s| s.to_string()).collect(),
                kind.stop_signal.to_string(),
            ),
            Err(_) => (vec!["/sbin/init".into()], "SIGTERM".into()),
        };
        let nic = self.network.nic_spec(row).await?;
        let extra_nics = self.network.extra_nic_specs(row).await?;
        if nic.is_some() {
            self.network.load_rules_for(name).await?;
        }
        let spec = StartSpec {
            rootfs,
            rescue_disk,
            init,
            default_stop_signal,
            nic,
            extra_nics,
            network_files: self.network.network_files(name).await?,
        };
        self.store.set_status(name, Status::Starting, None, None).await?;
        match self.backend.start(row, spec).await {
            Ok(pid) => {
                self.store
                    .set_status(name, Status::Running, Some(pid), None)
                    .await?;
                info!(vps = %row.name, tenant = %row.tenant, init_pid = pid, "started");
                self.emit(row, "vps-started", None);
                self.follow(name.clone(), pid);
                Ok(pid)
            }
            Err(e) => {
                // Refused before anything started (an old supervisor still
                // there): the VPS did not try to start.
                let last_exit = match e {
                    BackendError::Busy(_) => None,
                    _ => Some(format!("start failed: {e}")),
                };
                self.store
                    .set_status(name, Status::Stopped, None, last_exit.as_deref())
                    .await?;
                Err(e.into())
            }
        }
    }

    pub async fn stop(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        force: bool,
        timeout: Option<u64>,
    ) -> Result<Instance> {
        let (_guard, row) = self.locked(vps).await?;
        plan(&row.name, row.status, Action::Stop)?;
        self.stop_locked(&row, force, timeout).await?;
        self.brief(&row.key).await
    }

    /// Stop and start `vps`; with `rescue` into a rescue system (the given
    /// image, else the configured one), as [`Self::start`].
    pub async fn restart(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        force: bool,
        timeout: Option<u64>,
        rescue: Option<Option<&str>>,
    ) -> Result<Instance> {
        let rescue_image = rescue.map(|image| image.unwrap_or(&self.cfg.rescue_image).to_string());
        if let Some(image) = &rescue_image {
            self.images.require(image).await?;
            crate::service::tenants::require_image(self.store.as_ref(), vps.tenant, image).await?;
        }
        let (_guard, row) = self.locked(vps).await?;
        if plan(&row.name, row.status, Action::Restart)? == Plan::StopFirst {
            self.stop_locked(&row, force, timeout).await?;
        }
        let row = self.row(&row.key).await?;
        self.start_locked(&row, rescue_image.as_deref()).await?;
        self.brief(&row.key).await
    }

    /// Wait (at most `secs`) until running VPS `vps` has booted: its
    /// systemd reports `running` (`systemctl is-system-running --wait`);
    /// an init without systemd has booted once it runs. What it reports
    /// instead (`degraded`), or the time running out, is a 409.
    pub async fn wait_booted(&self, vps: VpsName<'_>, secs: u64) -> Result<()> {
        let row = self.running(vps).await?;
        let ran = self.run_inside(&row.key, BOOT_STATE, &[], secs).await?;
        let state = ran.stdout.trim();
        match ran.code {
            None => Err(ServiceError::Conflict(format!(
                "VPS {} started, but systemd did not report running within {secs}s",
                row.name
            ))),
            Some(_) if state == "running" => Ok(()),
            Some(_) => Err(ServiceError::Conflict(format!(
                "VPS {} started, but systemd reports {:?} (systemctl --failed inside says why)",
                row.name,
                if state.is_empty() { "nothing" } else { state }
            ))),
        }
    }

    /// Stop a VPS whose lock the caller holds.
    pub(super) async fn stop_locked(
        &self,
        row: &InstanceRecord,
        force: bool,
        timeout: Option<u64>,
    ) -> Result<()> {
        let timeout_secs = timeout.unwrap_or(row.settings.parsed.stop_timeout_secs.max(1));
        // Its interface goes with it: what it moved until now is counted.
        if let Err(e) = self.read_traffic(&row.key, &super::traffic::this_month()).await {
            warn!(vps = %row.key, "reading its traffic before the stop: {}", crate::error_chain(&e));
        }
        self.store
            .set_status(&row.key, Status::Stopping, row.init_pid, None)
            .await?;
        let reason = self.backend.stop(row, force, timeout_secs).await?;
        self.finish_stop(&row.key, &reason).await
    }

    /// Record a VPS (of key `name`) as stopped and release what it held
    /// while it ran.
    pub(super) async fn finish_stop(&self, name: &str, reason: &str) -> Result<()> {
        let row = self.row(name).await?;
        self.backend.release(name).await;
        self.network.after_stop(name).await;
        self.end_rescue(name).await?;
        self.store
            .set_status(name, Status::Stopped, None, Some(reason))
            .await?;
        info!(vps = name, reason, "stopped");
        self.emit(&row, "vps-stopped", Some(reason.to_string()));
        Ok(())
    }

    /// A rescue boot ends with the VPS: its rescue system goes.
    pub(super) async fn end_rescue(&self, name: &str) -> Result<()> {
        if self
            .pool
            .side_volume(name, croft_host::storage::SideVolume::Rescue)
            .exists()
        {
            self.remove_side_volume(name, croft_host::storage::SideVolume::Rescue)
                .await;
        }
        if self.row(name).await?.rescue_image.is_some() {
            self.store.set_rescue(name, None).await?;
        }
        Ok(())
    }

    pub async fn delete(self: &Arc<Self>, vps: VpsName<'_>, force: bool) -> Result<()> {
        let (_guard, row) = self.locked(vps).await?;
        self.refuse_while_exporting(&row, None)?;
        if plan(&row.name, row.status, Action::Delete { force })? == Plan::StopFirst {
            self.stop_locked(&row, true, Some(1)).await?;
        }
        self.finish_delete(&row.key).await
    }

    /// Delete a stopped VPS (of key `name`): its runtime remains, its disk, its records,
    /// its network setup. Resumed at the next start if croftd dies in it.
    pub(super) async fn finish_delete(&self, name: &str) -> Result<()> {
        let row = self.row(name).await?;
        self.store.set_status(name, Status::Deleting, None, None).await?;
        self.backend.remove(name).await?;
        let pool = self.pool.clone();
        let volume = name.to_string();
        crate::blocking(move || pool.delete_volume(&volume)).await??;
        self.reclaimer.request();
        crate::failpoint::crash_point("delete:volume-gone");
        let left = self.network.leftovers(name).await?;
        self.store.delete_instance(name).await?;
        self.network.release(left).await?;
        info!(vps = name, "deleted");
        self.emit(&row, "vps-deleted", None);
        Ok(())
    }

    /// Follow running VPS (of key) `name`: reboots update its init pid, the final
    /// exit marks it stopped, unless an operation (stop, restart) already
    /// took over: the watcher acts only while the store still names the
    /// init it follows.
    pub(super) fn follow(self: &Arc<Self>, name: String, init_pid: i32) {
        let mut events = self.backend.watch(&name);
        let this = self.clone();
        tokio::spawn(async move {
            let mut current = Some(init_pid);
            while let Some(event) = events.recv().await {
                let lock = this.lock_for(&name);
                let _guard = lock.lock().await;
                let Ok(Some(row)) = this.store.instance(&name).await else {
                    return;
                };
                let ours = row.status == Status::Running && row.init_pid == current;
                match event {
                    VpsEvent::Rebooted { init_pid, reason } => {
                        if ours {
                            let _ = this
                                .store
                                .set_status(&name, Status::Running, Some(init_pid), reason.as_deref())
                                .await;
                            match &reason {
                                Some(reason) => warn!(vps = %name, init_pid, "restarted: {reason}"),
                                None => info!(vps = %name, init_pid, "rebooted"),
                            }
                            this.emit(&row, "vps-rebooted", reason.clone());
                        }
                        current = Some(init_pid);
                    }
                    VpsEvent::Down { reason } => {
                        if ours {
                            if let Err(e) = this.finish_stop(&name, &reason).await {
                                warn!(vps = %name, "recording the exit failed: {e}");
                            }
                        }
                        return;
                    }
                }
            }
        });
    }

    /// Find a VPS recorded as running (or starting, or stopping) after
    /// croftd (re)started: follow it if it still runs, else record how it
    /// ended.
    pub(super) async fn reattach(self: &Arc<Self>, row: &InstanceRecord) -> Result<()> {
        let name = &row.key;
        match self.backend.reattach(name).await {
            Found::Running { init_pid } => {
                // A stop croftd was killed in the middle of is still one:
                // it shows, and gets finished.
                let status = match row.status {
                    Status::Stopping => Status::Stopping,
                    _ => Status::Running,
                };
                self.store.set_status(name, status, Some(init_pid), None).await?;
                info!(vps = %name, init_pid, "reattached");
                if let Err(e) = self.sync_addresses(row).await {
                    warn!(vps = %name, "making its addresses the database's: {}", crate::error_chain(&e));
                }
                self.follow(name.clone(), init_pid);
                if status == Status::Stopping {
                    self.finish_interrupted_stop(name.clone());
                }
                Ok(())
            }
            Found::Gone { reason } => self.finish_stop(name, &reason).await,
        }
    }
}

/// Prints what the VPS's boot has come to: systemd's state once it is
/// settled, `running` for an init without systemd. Right after the start
/// systemd may not take connections yet (nothing printed, or `offline`):
/// asked again until it does, the caller's timeout bounding the wait.
const BOOT_STATE: &str = "command -v systemctl >/dev/null 2>&1 || { echo running; exit 0; }; \
                          while :; do s=$(systemctl is-system-running --wait 2>/dev/null); \
                          case \"$s\" in ''|offline|unknown) sleep 0.2 ;; *) echo \"$s\"; exit 0 ;; esac; done";
