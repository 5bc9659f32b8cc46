//! Disks made from images beside a VPS's own: a rescue system to boot, or
//! a new disk a rebuild swaps in once it is whole.

use super::status::{plan, Action, Plan};
use super::InstanceService;
use crate::backend::{DiskSource, Identity};
use crate::service::jobs::JobHandle;
use crate::service::{Result, ServiceError, VpsName};
use crate::store::InstanceRecord;
use croft_host::storage::SideVolume;
use std::path::PathBuf;
use std::sync::Arc;
use tracing::{info, warn};

impl InstanceService {
    /// Make `row`'s side volume `side` a fresh copy of `image` (building
    /// it first if croft builds it) and give it the VPS's identity, SSH keys
    /// and `user_data`. Removed again if any step fails.
    pub(super) async fn disk_from_image(
        &self,
        row: &InstanceRecord,
        side: SideVolume,
        image: &str,
        user_data: Option<String>,
        job: Option<&JobHandle>,
    ) -> Result<PathBuf> {
        let result = async {
            self.images.prepare(image, job, (10, 70)).await?;
            let path = self
                .backend
                .prepare_disk(row, DiskSource::Image(image), Some(side))
                .await?;
            // A rescue system or a new disk is the tenant's to write from
            // the first boot: it gets the VPS's disk limit before that.
            let limit = row.settings.parsed.disk_bytes;
            if limit.is_some() {
                let (pool, key) = (self.pool.clone(), row.key.clone());
                crate::blocking(move || pool.limit_side_volume(&key, side, limit)).await??;
            }
            let identity = Identity {
                hostname: row.name.clone(),
                ssh_keys: self.store.ssh_keys(&row.key).await?,
                user_data,
            };
            self.backend.provision(path.clone(), identity).await?;
            Ok(path)
        }
        .await;
        if result.is_err() {
            self.remove_side_volume(&row.key, side).await;
        }
        result
    }

    /// Remove a side volume of the VPS of key `name`, logging (not failing) if it cannot be.
    pub(super) async fn remove_side_volume(&self, name: &str, side: SideVolume) {
        let pool = self.pool.clone();
        let vps = name.to_string();
        match crate::blocking(move || pool.delete_side_volume(&vps, side)).await {
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

    /// A new disk a crash left beside a stopped VPS's disk: one that was
    /// already swapped halfway in (the old disk gone) is finished, any
    /// other is dropped, so the VPS has exactly one whole disk.
    pub(super) async fn recover_replacement(&self, row: &InstanceRecord) -> Result<()> {
        let name = &row.key;
        let has = |side| self.pool.side_volume(name, side).exists();
        let disk = self.disk(name).exists();
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
                crate::blocking(move || pool.commit_replacement(&vps)).await??;
            }
        }
        if has(SideVolume::Retired) {
            warn!(vps = %name, "removing an old disk a crash left on its way out");
            self.remove_side_volume(name, SideVolume::Retired).await;
        }
        Ok(())
    }

    /// Reinstall `vps`'s disk from `req.image`, keeping its name, id
    /// range, addresses, port forwards, firewall, limits, SSH keys and
    /// snapshots. A running VPS is stopped first and started again after.
    /// The new disk is made beside the old one and swapped in only once
    /// complete: if anything fails the VPS keeps its old disk (and runs
    /// again if it ran).
    pub async fn rebuild(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        req: croft_api::RebuildRequest,
    ) -> Result<croft_api::Job> {
        croft_api::validate_name(vps.name).map_err(|e| ServiceError::invalid(&e))?;
        self.images.require(&req.image).await?;
        crate::service::tenants::require_image(self.store.as_ref(), vps.tenant, &req.image).await?;
        if let Some(script) = &req.user_data {
            croft_api::validate_user_data(script).map_err(|e| ServiceError::invalid(&e))?;
        }
        let row = self.find(vps).await?;
        plan(&row.name, row.status, Action::Rebuild)?;
        let this = self.clone();
        let key = row.key;
        Ok(self
            .jobs
            .submit("rebuild", vps.tenant, vps.name, move |job| async move {
                let lock = this.lock_for(&key);
                let _guard = lock.lock().await;
                this.rebuild_locked(&key, &req, &job).await
            })
            .await?)
    }

    /// Rebuild the VPS of key `name`, its lock held.
    async fn rebuild_locked(
        self: &Arc<Self>,
        name: &str,
        req: &croft_api::RebuildRequest,
        job: &JobHandle,
    ) -> Result<()> {
        let row = self.row(name).await?;
        let was_running = plan(&row.name, row.status, Action::Rebuild)? == Plan::StopFirst;
        if was_running {
            job.step(5, "stopping").await?;
            self.stop_locked(&row, false, None).await?;
        }
        let row = self.row(name).await?;
        // From here on a failure or a cancel gives the VPS its old disk
        // back and starts it again if it ran.
        let made = async {
            job.step(10, "preparing the new disk").await?;
            self.disk_from_image(
                &row,
                SideVolume::Replacement,
                &req.image,
                req.user_data.clone(),
                Some(job),
            )
            .await?;
            crate::failpoint::crash_point("rebuild:disk-made");
            job.step(80, "swapping the disk").await?;
            // The image is recorded first: a crash during the swap is
            // finished at the next start, and the record must then match.
            self.store.set_image(name, &req.image).await?;
            let pool = self.pool.clone();
            let vps = name.to_string();
            if let Err(e) = crate::blocking(move || pool.commit_replacement(&vps)).await? {
                self.store.set_image(name, &row.image).await?;
                return Err(e.into());
            }
            Ok::<(), ServiceError>(())
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
}
