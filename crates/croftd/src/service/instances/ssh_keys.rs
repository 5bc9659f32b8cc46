//! `croft ssh-key`: the public keys root of a VPS accepts, after launch:
//! recorded with the VPS (a rebuild or a copy puts them in place again)
//! and written to root's authorized_keys on its disk at once, running or
//! not. Keys put there by hand inside stay as they are.

use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use tracing::info;

impl InstanceService {
    /// Its recorded keys, in the order given (numbered from 1 in the CLI).
    pub async fn ssh_keys(&self, vps: VpsName<'_>) -> Result<Vec<String>> {
        let row = self.find(vps).await?;
        Ok(self.store.ssh_keys(&row.key).await?)
    }

    /// Give root of `vps` one more public key (OpenSSH format, one key).
    pub async fn add_ssh_key(&self, vps: VpsName<'_>, text: &str) -> Result<Vec<String>> {
        let keys = croft_api::parse_ssh_keys(text).map_err(|e| ServiceError::invalid(&e))?;
        let [key] = keys.as_slice() else {
            return Err(ServiceError::Invalid(format!(
                "give one public key, not {}",
                keys.len()
            )));
        };
        let (_guard, row) = self.locked(vps).await?;
        if !self.store.add_ssh_key(&row.key, key).await? {
            return Err(ServiceError::Conflict(format!(
                "VPS {} has that key already",
                row.name
            )));
        }
        let (disk, written) = (self.disk(&row.key), vec![key.clone()]);
        let result = crate::blocking(move || croft_host::rootfs::add_authorized_keys(&disk, &written)).await;
        if let Err(e) = flatten(result, "write root's authorized_keys") {
            let _ = self.store.remove_ssh_key(&row.key, key).await;
            return Err(e);
        }
        info!(vps = %vps, tenant = vps.tenant, "ssh key added");
        self.emit(&row, "vps-ssh-key-added", None);
        Ok(self.store.ssh_keys(&row.key).await?)
    }

    /// Take key number `number` (from 1, as listed) from root of `vps`.
    pub async fn remove_ssh_key(&self, vps: VpsName<'_>, number: usize) -> Result<Vec<String>> {
        let (_guard, row) = self.locked(vps).await?;
        let keys = self.store.ssh_keys(&row.key).await?;
        let key = number
            .checked_sub(1)
            .and_then(|i| keys.get(i))
            .ok_or_else(|| ServiceError::NotFound(format!("SSH key {number} of VPS {}", row.name)))?
            .clone();
        let (disk, taken) = (self.disk(&row.key), key.clone());
        let result = crate::blocking(move || croft_host::rootfs::remove_authorized_key(&disk, &taken)).await;
        flatten(result, "rewrite root's authorized_keys")?;
        self.store.remove_ssh_key(&row.key, &key).await?;
        info!(vps = %vps, tenant = vps.tenant, "ssh key removed");
        self.emit(&row, "vps-ssh-key-removed", None);
        Ok(self.store.ssh_keys(&row.key).await?)
    }
}

/// A blocking file change's outcome as a service result.
fn flatten(
    result: std::result::Result<std::result::Result<(), croft_host::rootfs::RootfsError>, crate::TaskFailed>,
    what: &'static str,
) -> Result<()> {
    result
        .map_err(ServiceError::from)?
        .map_err(|e| ServiceError::host(what, e))
}
