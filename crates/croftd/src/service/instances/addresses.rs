//! A VPS's additional addresses, added and removed live: recorded and let
//! through its anti-spoofing rules by the network service, put on (or
//! taken off) its interface by its supervisor while it runs. Each change
//! is undone if a later step fails.

use super::InstanceService;
use crate::service::{Result, VpsName};
use croft_api::{Instance, Status};
use tracing::info;

impl InstanceService {
    /// `croft address add`.
    pub async fn add_address(&self, vps: VpsName<'_>, req: croft_api::AddressAdd) -> Result<Instance> {
        let (_guard, row) = self.locked(vps).await?;
        let (address, cidr) = self.network.add_address(&row, &req).await?;
        crate::failpoint::crash_point("address-add:recorded");
        // A delegated prefix is routed to the VPS, not put on its interface.
        if let (Status::Running, Some(cidr)) = (row.status, &cidr) {
            if let Err(e) = self.backend.set_address(&row.key, cidr, false).await {
                let _ = self.network.remove_address(&row, &address).await;
                return Err(e.into());
            }
        }
        info!(vps = %vps, tenant = vps.tenant, address = %address, "address added");
        self.emit(&row, "vps-address-added", Some(address));
        self.brief(&row.key).await
    }

    /// `croft address remove`.
    pub async fn remove_address(&self, vps: VpsName<'_>, address: &str) -> Result<Instance> {
        let (_guard, row) = self.locked(vps).await?;
        let cidr = self.network.address_cidr(&row, address).await?;
        let live = cidr.filter(|_| row.status == Status::Running);
        if let Some(cidr) = &live {
            self.backend.set_address(&row.key, cidr, true).await?;
        }
        crate::failpoint::crash_point("address-remove:taken-off");
        if let Err(e) = self.network.remove_address(&row, address).await {
            if let Some(cidr) = &live {
                let _ = self.backend.set_address(&row.key, cidr, false).await;
            }
            return Err(e);
        }
        info!(vps = %vps, tenant = vps.tenant, address, "address removed");
        self.emit(&row, "vps-address-removed", Some(address.to_string()));
        self.brief(&row.key).await
    }

    /// Make running VPS `row`'s interface carry the addresses the
    /// database gives it, at croftd's start: a change croftd was killed in
    /// the middle of is finished where it was recorded and undone where it
    /// was not. Additional addresses are put on again whatever its spec
    /// says (the spec is written after the interface changes).
    pub(super) async fn sync_addresses(&self, row: &crate::store::InstanceRecord) -> Result<()> {
        let Some(nic) = self.network.nic_spec(row).await? else {
            return Ok(());
        };
        let had = self.backend.addresses(&row.key).await?;
        // The first addresses come before the additional ones, one per
        // gateway.
        let first = nic.gateways.len();
        for (i, cidr) in nic.addresses.iter().enumerate() {
            if i >= first || !had.contains(cidr) {
                self.backend.set_address(&row.key, cidr, false).await?;
            }
        }
        for cidr in had.iter().filter(|a| !nic.addresses.contains(a)) {
            info!(vps = %row.key, address = %cidr, "taking off an address the database does not give");
            self.backend.set_address(&row.key, cidr, true).await?;
        }
        Ok(())
    }
}
