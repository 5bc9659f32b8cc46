//! `croft ssh-key`: the public keys root of a VPS accepts, after launch:
//! recorded with the VPS (a rebuild or a copy puts them in place again)
//! and put in root's authorized_keys at once: from inside while it runs,
//! on its disk while it is stopped (see [`super::inside`]). Keys put there
//! by hand inside stay as they are.

use super::inside::{failed, where_to_change, Where};
use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use tracing::info;

/// Appends the key on stdin to root's authorized_keys, unless there.
const ADD: &str = "umask 077; k=$(cat); mkdir -p /root/.ssh && touch /root/.ssh/authorized_keys && \
                   { grep -qxF \"$k\" /root/.ssh/authorized_keys || printf '%s\\n' \"$k\" >> /root/.ssh/authorized_keys; }";
/// Takes the key on stdin out of root's authorized_keys (the file itself,
/// its owner and mode, stay).
const REMOVE: &str = "k=$(cat); f=/root/.ssh/authorized_keys; [ -f \"$f\" ] || exit 0; \
                      { grep -vxF \"$k\" \"$f\" || true; } > \"$f.croft\" && cat \"$f.croft\" > \"$f\"; rm -f \"$f.croft\"";

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
        let written = match where_to_change(&row, "root's keys") {
            Ok(Where::Inside) => match self.run_inside(&row.key, ADD, key.as_bytes(), 30).await {
                Ok(ran) if ran.code == Some(0) => Ok(()),
                Ok(ran) => Err(failed(&ran, "adding the key")),
                Err(e) => Err(e),
            },
            Ok(Where::OnDisk) => {
                let (disk, written) = (self.disk(&row.key), vec![key.clone()]);
                let result =
                    crate::blocking(move || croft_host::rootfs::add_authorized_keys(&disk, &written)).await;
                flatten(result, "write root's authorized_keys")
            }
            Err(e) => Err(e),
        };
        if let Err(e) = written {
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
        match where_to_change(&row, "root's keys")? {
            Where::Inside => {
                let ran = self.run_inside(&row.key, REMOVE, key.as_bytes(), 30).await?;
                if ran.code != Some(0) {
                    return Err(failed(&ran, "removing the key"));
                }
            }
            Where::OnDisk => {
                let (disk, taken) = (self.disk(&row.key), key.clone());
                let result =
                    crate::blocking(move || croft_host::rootfs::remove_authorized_key(&disk, &taken)).await;
                flatten(result, "rewrite root's authorized_keys")?;
            }
        }
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
