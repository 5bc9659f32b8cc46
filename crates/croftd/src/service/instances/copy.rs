//! Copies: a new VPS from another's disk (or its snapshot), with an
//! identity of its own.

use super::InstanceService;
use crate::backend::{DiskSource, Identity};
use crate::service::{Result, ServiceError};
use croft_api::{Instance, Status};
use std::sync::Arc;
use tracing::info;

impl InstanceService {
    /// A new VPS from `src`'s disk (or its snapshot) with its own identity:
    /// name and hostname, id range, machine-id and SSH host keys. Created
    /// stopped.
    pub async fn copy(self: &Arc<Self>, src: &str, dst: &str, snap: Option<String>) -> Result<Instance> {
        croft_api::validate_name(dst).map_err(|e| ServiceError::invalid(&e))?;
        if !self.pool.snapshots() {
            return Err(ServiceError::Invalid(
                "the dir storage driver cannot copy VPS disks; use a btrfs pool".into(),
            ));
        }
        let src_lock = self.lock_for(src);
        let _src_guard = src_lock.lock().await;
        let source = match &snap {
            Some(s) => {
                self.require_snapshot(src, s).await?;
                self.row(src).await?
            }
            None => self.row(src).await?,
        };
        let keys = self.store.ssh_keys(src).await?;
        let copy = self
            .create_record(
                dst,
                &source.image,
                source.settings.raw.clone(),
                Default::default(),
                keys,
            )
            .await?;
        let dst_lock = self.lock_for(dst);
        let _dst_guard = dst_lock.lock().await;
        let result = async {
            let source = DiskSource::Copy {
                vps: src,
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
                let (pool, to) = (self.pool.clone(), dst.to_string());
                crate::blocking(move || pool.set_limit(&to, Some(limit))).await??;
            }
            // Its rules are loaded when it first starts (a copy must stay
            // a snapshot's cost, and a stopped VPS sends nothing).
            self.store.set_status(dst, Status::Stopped, None, None).await?;
            Ok::<(), ServiceError>(())
        }
        .await;
        if let Err(e) = result {
            self.rollback_launch(dst).await;
            return Err(e);
        }
        info!(src, dst, "copied");
        self.get_brief(dst).await
    }
}
