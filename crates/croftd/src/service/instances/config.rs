//! Configuration changes: checked whole, applied live to a running VPS,
//! stored only once everything took.

use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use crate::store::Settings;
use croft_api::{ConfigPatch, Instance, Status};
use croft_host::storage::StorageError;
use std::sync::Arc;

impl InstanceService {
    /// Change configuration; limits apply live to a running VPS. Nothing is
    /// stored unless every value is valid and applied.
    pub async fn patch_config(self: &Arc<Self>, vps: VpsName<'_>, patch: ConfigPatch) -> Result<Instance> {
        let (_guard, row) = self.locked(vps).await?;
        let name = row.key.as_str();
        let mut raw = row.settings.raw.clone();
        for key in &patch.unset {
            if !croft_api::config::KEYS.iter().any(|(k, _)| k == key) {
                return Err(ServiceError::Invalid(format!(
                    "unknown configuration key {key:?}"
                )));
            }
            raw.remove(key);
        }
        for (k, v) in &patch.set {
            raw.insert(k.clone(), v.clone());
        }
        let new = Settings::parse(raw).map_err(|e| ServiceError::invalid(&e))?;
        let (parsed, old) = (&new.parsed, &row.settings.parsed);
        self.check_disk_limit(parsed)?;
        if parsed.disk_io != old.disk_io {
            self.check_disk_io(parsed)?;
        }
        if parsed.nesting != old.nesting {
            self.check_nesting(parsed)?;
        }
        // Only a new CPU limit is checked: one taken before (or under
        // overcommit since turned off) does not block other changes.
        if parsed.cpu_millicores != old.cpu_millicores {
            self.check_cpu_limit(parsed)?;
        }
        crate::service::tenants::require_features(self.store.as_ref(), &row.tenant, parsed).await?;
        if (parsed.firewall_deny && !old.firewall_deny)
            || (parsed.firewall_deny_out && !old.firewall_deny_out)
        {
            self.network.require_firewall()?;
        }
        let disk_changed = parsed.disk_bytes != old.disk_bytes;
        if disk_changed {
            let (pool, volume, limit) = (self.pool.clone(), name.to_string(), parsed.disk_bytes);
            crate::blocking(move || pool.set_limit(&volume, limit))
                .await?
                .map_err(|e| match e {
                    StorageError::BelowUsage { limit, used } => ServiceError::Invalid(format!(
                        "limits.disk={} is below the {} the VPS already uses",
                        croft_api::format_size(limit),
                        croft_api::format_size(used)
                    )),
                    e => ServiceError::Storage(e),
                })?;
        }
        // Put back what was changed on the host; the user's change did
        // not take.
        let undo = |bandwidth: bool| async move {
            if disk_changed {
                let _ = self.pool.set_limit(name, old.disk_bytes);
            }
            if bandwidth {
                let (ingress, egress) = self.bandwidth_of(name, old);
                let _ = self.apply_bandwidth(name, ingress, egress).await;
            }
        };
        let running = row.status == Status::Running;
        let bandwidth_changed = (parsed.ingress_bps, parsed.egress_bps) != (old.ingress_bps, old.egress_bps);
        if running && bandwidth_changed {
            // A VPS past its transfer quota stays held to the throttle.
            let (ingress, egress) = self.bandwidth_of(name, parsed);
            if let Err(e) = self.apply_bandwidth(name, ingress, egress).await {
                undo(true).await;
                return Err(e);
            }
        }
        if running {
            if let Err(e) = self.backend.apply_limits(name, parsed, old).await {
                undo(bandwidth_changed).await;
                // Said of the VPS by its name: "nu1 uses 612 MiB, more
                // than 4 MiB".
                if let crate::backend::BackendError::Cgroup(
                    used @ croft_host::cgroup::CgroupError::MemoryInUse { .. },
                ) = &e
                {
                    return Err(ServiceError::Conflict(format!("{} {used}", row.name)));
                }
                return Err(e.into());
            }
        }
        self.store.set_settings(name, &new.raw).await?;
        let firewall_changed =
            (parsed.firewall_deny, parsed.firewall_deny_out) != (old.firewall_deny, old.firewall_deny_out);
        if parsed.provider_exempt != old.provider_exempt {
            if let Err(e) = self.network.apply_rules().await {
                self.store.set_settings(name, &row.settings.raw).await?;
                return Err(e);
            }
        } else if firewall_changed {
            if let Err(e) = self.network.reload_firewall(name).await {
                self.store.set_settings(name, &row.settings.raw).await?;
                return Err(e);
            }
        }
        self.brief(name).await
    }

    /// Change the bandwidth limits of a running VPS (of key `name`) now, and where a
    /// reboot from inside (which makes a new interface) finds them.
    pub(super) async fn apply_bandwidth(
        &self,
        name: &str,
        ingress: Option<u64>,
        egress: Option<u64>,
    ) -> Result<()> {
        self.network.apply_bandwidth(name, ingress, egress).await?;
        Ok(self.backend.record_bandwidth(name, ingress, egress).await?)
    }
}
