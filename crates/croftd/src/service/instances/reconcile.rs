//! croftd (re)starts: the state brought in line with what the host has,
//! the VPSes of a host boot autostarted, and the host tidied at shutdown.

use super::InstanceService;
use crate::service::{Result, VpsName};
use croft_api::Status;
use std::sync::Arc;
use tracing::{info, warn};

impl InstanceService {
    /// Bring the store in line with reality after croftd (re)starts.
    pub async fn reconcile(self: &Arc<Self>) -> Result<()> {
        self.network.setup().await?;
        let interrupted = self.store.fail_interrupted_jobs().await?;
        if interrupted > 0 {
            warn!(
                interrupted,
                "jobs interrupted by a croftd restart were marked failed"
            );
        }
        for row in self.store.instances().await? {
            let name = &row.key;
            match row.status {
                Status::Creating => {
                    warn!(vps = %name, "removing a launch that croftd did not finish");
                    self.rollback_launch(name).await;
                    continue;
                }
                Status::Deleting => {
                    self.finish_delete(name).await?;
                    continue;
                }
                Status::Running | Status::Starting | Status::Stopping => self.reattach(&row).await?,
                Status::Stopped => {
                    // One VPS's trouble must not keep croftd from serving
                    // the others: log it and go on.
                    if let Err(e) = self.end_rescue(name).await {
                        warn!(vps = %name, "cannot end a rescue boot: {e}");
                    }
                    if let Err(e) = self.recover_replacement(&row).await {
                        warn!(vps = %name, "cannot recover from an interrupted disk swap: {e}");
                    }
                }
            }
            if let Err(e) = self.reconcile_snapshots(name).await {
                warn!(vps = %name, "cannot reconcile its snapshots: {e}");
            }
        }
        // What belongs to no VPS is a leftover of a crash between making
        // it and recording it.
        let known: Vec<(String, Status)> = self
            .store
            .instances()
            .await?
            .into_iter()
            .map(|r| (r.key, r.status))
            .collect();
        self.backend.tidy(&known).await;
        self.images.reconcile().await?;
        for orphan in self
            .pool
            .volumes()?
            .into_iter()
            .filter(|n| !known.iter().any(|(k, _)| k == n))
        {
            warn!(volume = %orphan, "removing the volume of an unknown VPS");
            let pool = self.pool.clone();
            if let Ok(Err(e)) = crate::blocking(move || pool.delete_volume(&orphan)).await {
                warn!("{}", crate::error_chain(&e));
            }
        }
        // What deletes before a restart left for the cleaner.
        self.reclaimer.request();
        Ok(())
    }

    /// croftd died while stopping a VPS (a stop, restart, rebuild or
    /// delete): its supervisor may already be shutting it down. Finish the
    /// stop, in the background, so the VPS ends up stopped as the user
    /// asked rather than running or half-way down.
    /// `name` is the VPS's key.
    pub(super) fn finish_interrupted_stop(self: &Arc<Self>, name: String) {
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

    /// On a clean daemon shutdown with no VPS running, leave the host as
    /// it was (croft's cgroup prefix removed).
    pub async fn tidy_on_shutdown(&self) {
        let any_running = self
            .store
            .instances()
            .await
            .map(|rows| rows.iter().any(|r| r.status != Status::Stopped))
            .unwrap_or(true);
        if !any_running {
            self.backend.shutdown().await;
        }
    }

    /// After a host boot (the run directory's marker is gone), start every
    /// VPS with `boot.autostart=true`.
    pub async fn autostart(self: &Arc<Self>) -> Result<()> {
        let marker = self.cfg.run_dir.join("booted");
        if marker.exists() {
            return Ok(());
        }
        for row in self.store.instances().await? {
            if row.settings.parsed.autostart && row.status == Status::Stopped {
                match self.start(VpsName::new(&row.tenant, &row.name), None).await {
                    Ok(_) => info!(vps = %row.name, tenant = %row.tenant, "autostarted"),
                    Err(e) => warn!(vps = %row.name, tenant = %row.tenant, "autostart failed: {e}"),
                }
            }
        }
        std::fs::write(&marker, b"").map_err(crate::service::error::host_err(format!(
            "write {}",
            marker.display()
        )))
    }
}
