//! `croft rename`: a stopped VPS's new name in its tenant, and its
//! hostname from its next start. Its key (and so its disk, run directory,
//! cgroup and interfaces) stays what it was made with.

use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use crate::store::StoreError;
use croft_api::{Instance, Status};
use tracing::info;

impl InstanceService {
    pub async fn rename(&self, vps: VpsName<'_>, new: &str) -> Result<Instance> {
        croft_api::validate_name(new).map_err(|e| ServiceError::invalid(&e))?;
        let (_guard, row) = self.locked(vps).await?;
        if row.status != Status::Stopped {
            return Err(ServiceError::Conflict(format!(
                "VPS {} is {}: stop it to rename it (its hostname changes at its next start)",
                row.name,
                row.status.as_str()
            )));
        }
        if row.name == new {
            return self.brief(&row.key).await;
        }
        self.store
            .rename_instance(&row.key, new)
            .await
            .map_err(|e| match e {
                StoreError::Taken(_) => ServiceError::Conflict(format!("VPS {new} already exists")),
                e => e.into(),
            })?;
        let (disk, hostname) = (self.disk(&row.key), new.to_string());
        // A system that boots from /etc/hostname (systemd does) takes it
        // from there; a disk without /etc has nothing to change.
        let written = crate::blocking(move || {
            let has_etc = std::fs::symlink_metadata(disk.join("etc")).is_ok_and(|m| m.is_dir());
            if has_etc {
                croft_host::rootfs::set_hostname(&disk, &hostname)
            } else {
                Ok(())
            }
        })
        .await;
        if let Err(e) = written
            .map_err(ServiceError::from)
            .and_then(|r| r.map_err(|e| ServiceError::host("write the VPS's hostname", e)))
        {
            let _ = self.store.rename_instance(&row.key, &row.name).await;
            return Err(e);
        }
        info!(vps = %vps, tenant = vps.tenant, new, "renamed");
        let mut renamed = row.clone();
        renamed.name = new.to_string();
        self.emit(&renamed, "vps-renamed", Some(format!("from {}", row.name)));
        self.brief(&row.key).await
    }
}
