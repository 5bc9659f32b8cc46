//! A VPS's further interfaces (`eth1`..), on other networks: added and
//! removed while it is stopped, made with the others at its next start.

use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use croft_api::{Instance, Status};
use tracing::info;

impl InstanceService {
    /// `croft nic add`.
    pub async fn add_nic(&self, vps: VpsName<'_>, req: croft_api::NicAdd) -> Result<Instance> {
        let (_guard, row) = self.locked(vps).await?;
        stopped(&row)?;
        let nic = self.network.add_nic(&row, &req).await?;
        let name = format!("eth{}", nic.index);
        info!(vps = %vps, tenant = vps.tenant, nic = %name, network = %nic.network, "interface added");
        self.emit(&row, "vps-nic-added", Some(name));
        self.brief(&row.key).await
    }

    /// `croft nic remove`.
    pub async fn remove_nic(&self, vps: VpsName<'_>, index: u32) -> Result<Instance> {
        let (_guard, row) = self.locked(vps).await?;
        stopped(&row)?;
        self.network.remove_nic(&row, index).await?;
        info!(vps = %vps, tenant = vps.tenant, nic = index, "interface removed");
        self.emit(&row, "vps-nic-removed", Some(format!("eth{index}")));
        self.brief(&row.key).await
    }
}

/// Interfaces are made at a start: one of a running VPS would not follow
/// until its next.
fn stopped(row: &crate::store::InstanceRecord) -> Result<()> {
    if row.status != Status::Stopped {
        return Err(ServiceError::Conflict(format!(
            "VPS {} is {}: stop it to add or remove an interface (interfaces are made at its start)",
            row.name,
            row.status.as_str()
        )));
    }
    Ok(())
}
