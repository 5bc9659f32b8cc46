//! Copies: a new VPS from another's disk (or its snapshot), with an
//! identity of its own.

use super::InstanceService;
use crate::backend::{DiskSource, Identity};
use crate::service::{Result, ServiceError, VpsName};
use croft_api::{Instance, Status};
use std::sync::Arc;
use tracing::info;

impl InstanceService {
    /// A new VPS `dst` (of `src`'s tenant) from `src`'s disk (or its
    /// snapshot) with its own identity: name and hostname, id range,
    /// machine-id and SSH host keys. Created stopped.
    pub async fn copy(
        self: &Arc<Self>,
        src: VpsName<'_>,
        dst: &str,
        snap: Option<String>,
    ) -> Result<Instance> {
        croft_api::validate_name(dst).map_err(|e| ServiceError::invalid(&e))?;
        if !self.pool.snapshots() {
            return Err(ServiceError::Invalid(
                "the dir storage driver cannot copy VPS disks; use a btrfs pool".into(),
            ));
        }
        let (_src_guard, source) = self.locked(src).await?;
        if let Some(s) = &snap {
            self.require_snapshot(&source, s).await?;
        }
        let keys = self.store.ssh_keys(&source.key).await?;
        // What the admin granted the source alone is not inherited: a
        // tenant could otherwise copy an exemption to any number of VPSes.
        let mut settings = source.settings.raw.clone();
        settings.retain(|key, _| !croft_api::config::ADMIN_KEYS.contains(&key.as_str()));
        // On the source's network.
        let addresses = crate::service::network::AddressRequest {
            network: self
                .store
                .nic(&source.key)
                .await?
                .map(|n| n.network)
                .unwrap_or_default(),
            ..Default::default()
        };
        let copy = self
            .create_record(src.tenant, dst, &source.image, settings, addresses, keys)
            .await?;
        let dst_lock = self.lock_for(&copy.key);
        let _dst_guard = dst_lock.lock().await;
        let result = async {
            let source = DiskSource::Copy {
                vps: &source.key,
                snapshot: snap.as_deref(),
            };
            let rootfs = self.backend.prepare_disk(&copy, source, None).await?;
            crate::failpoint::crash_point("copy:volume-made");
            // Its keys came with the disk; it needs a name and host keys.
            let identity = Identity {
                hostname: dst.to_string(),
                ..Default::default()
            };
            self.backend.provision(rootfs, identity).await?;
            if let Some(limit) = copy.settings.parsed.disk_bytes {
                let (pool, to) = (self.pool.clone(), copy.key.clone());
                crate::blocking(move || pool.set_limit(&to, Some(limit))).await??;
            }
            // Its rules are loaded when it first starts (a copy must stay
            // a snapshot's cost, and a stopped VPS sends nothing).
            self.store
                .set_status(&copy.key, Status::Stopped, None, None)
                .await?;
            Ok::<(), ServiceError>(())
        }
        .await;
        if let Err(e) = result {
            self.rollback_launch(&copy.key).await;
            return Err(e);
        }
        info!(src = %source.name, dst, tenant = %source.tenant, "copied");
        self.brief(&copy.key).await
    }
}
