//! Snapshots of a VPS's disk: taken, listed, restored, deleted, and
//! brought in line with the pool after a crash.

use super::status::{plan, Action, Plan};
use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use crate::store::InstanceRecord;
use croft_api::{Instance, Snapshot};
use croft_host::storage::StorageError;
use std::sync::Arc;
use tracing::{info, warn};

impl InstanceService {
    pub async fn snapshots(&self, vps: VpsName<'_>) -> Result<Vec<Snapshot>> {
        let row = self.find(vps).await?;
        let name = row.key.as_str();
        let mut out = Vec::new();
        for record in self.store.snapshots(name).await? {
            let pool = self.pool.clone();
            let (vps, s) = (name.to_string(), record.name.clone());
            let size_bytes = crate::blocking(move || pool.snapshot_usage(&vps, &s))
                .await?
                .ok()
                .flatten();
            out.push(Snapshot {
                name: record.name,
                created_at: record.created_at,
                size_bytes,
            });
        }
        Ok(out)
    }

    /// Take a snapshot of `vps`'s disk.
    pub async fn create_snapshot(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        snap: Option<String>,
    ) -> Result<Snapshot> {
        croft_api::validate_name(vps.name).map_err(|e| ServiceError::invalid(&e))?;
        if let Some(s) = &snap {
            snapshot_name(s)?;
        }
        let (_guard, row) = self.locked(vps).await?;
        let name = row.key.as_str();
        let existing: Vec<String> = self
            .store
            .snapshots(name)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        let snap = snap.unwrap_or_else(|| {
            (0..)
                .map(|i| format!("snap{i}"))
                .find(|n| !existing.contains(n))
                .expect("a free name")
        });
        if !self.store.insert_snapshot(name, &snap).await? {
            return Err(ServiceError::Conflict(format!(
                "VPS {} already has a snapshot {snap}",
                row.name
            )));
        }
        let pool = self.pool.clone();
        let (key, s) = (name.to_string(), snap.clone());
        if let Err(e) = crate::blocking(move || pool.create_snapshot(&key, &s)).await? {
            self.store.delete_snapshot(name, &snap).await?;
            return Err(match e {
                StorageError::Unsupported { .. } => ServiceError::invalid(&e),
                e => e.into(),
            });
        }
        info!(vps = name, snapshot = %snap, "snapshot taken");
        // Its size is not measured here: that needs a btrfs commit (several
        // times the snapshot itself), and a new snapshot holds nothing of
        // its own yet. `croft snapshot list` measures.
        self.recorded_snapshot(name, snap).await
    }

    /// Snapshot `snap` of the VPS of key `name` as recorded, its size not
    /// measured.
    pub(super) async fn recorded_snapshot(&self, name: &str, snap: String) -> Result<Snapshot> {
        let created_at = self
            .store
            .snapshots(name)
            .await?
            .into_iter()
            .find(|s| s.name == snap)
            .map(|s| s.created_at)
            .ok_or_else(|| ServiceError::NotFound(format!("snapshot {snap}")))?;
        Ok(Snapshot {
            name: snap,
            created_at,
            size_bytes: None,
        })
    }

    /// Refuse a bad snapshot name (400) and one `vps` does not have (404).
    pub(super) async fn require_snapshot(&self, vps: &InstanceRecord, snap: &str) -> Result<()> {
        snapshot_name(snap)?;
        if !self
            .store
            .snapshots(&vps.key)
            .await?
            .iter()
            .any(|s| s.name == snap)
        {
            return Err(ServiceError::NotFound(format!("snapshot {snap} of {}", vps.name)));
        }
        Ok(())
    }

    pub async fn delete_snapshot(self: &Arc<Self>, vps: VpsName<'_>, snap: &str) -> Result<()> {
        let (_guard, row) = self.locked(vps).await?;
        let name = row.key.as_str();
        self.require_snapshot(&row, snap).await?;
        self.refuse_while_exporting(&row, Some(snap))?;
        let pool = self.pool.clone();
        let (vps, s) = (name.to_string(), snap.to_string());
        crate::blocking(move || pool.delete_snapshot(&vps, &s)).await??;
        self.reclaimer.request();
        self.store.delete_snapshot(name, snap).await?;
        Ok(())
    }

    /// Put a snapshot back as the VPS's disk. A running VPS is refused
    /// unless `stop`, then stopped cleanly and started again.
    pub async fn restore_snapshot(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        snap: &str,
        stop: bool,
    ) -> Result<Instance> {
        let (_guard, row) = self.locked(vps).await?;
        let name = row.key.as_str();
        self.require_snapshot(&row, snap).await?;
        let was_running = plan(&row.name, row.status, Action::Restore { stop })? == Plan::StopFirst;
        if was_running {
            self.stop_locked(&row, false, None).await?;
        }
        let pool = self.pool.clone();
        let (vps, s) = (name.to_string(), snap.to_string());
        crate::blocking(move || pool.restore_snapshot(&vps, &s)).await??;
        info!(vps = %row.name, tenant = %row.tenant, snapshot = snap, "restored");
        if was_running {
            let row = self.row(name).await?;
            self.start_locked(&row, None).await?;
        }
        self.brief(name).await
    }

    /// A snapshot is recorded before it is taken (or received) and removed
    /// before its record is: a crash in between leaves a record without a
    /// snapshot, which goes, with what a receive left of it. A snapshot
    /// without a record is not something a crash makes (a database older
    /// than the pool, say): it is reported, and kept. `name` is the VPS's
    /// key.
    pub(super) async fn reconcile_snapshots(&self, name: &str) -> Result<()> {
        let recorded: Vec<String> = self
            .store
            .snapshots(name)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        let pool = self.pool.clone();
        let vps = name.to_string();
        let present = crate::blocking(move || {
            // Left for the next start if it fails: the records still get
            // reconciled now.
            if let Err(e) = pool.discard_incoming(&vps) {
                warn!(vps = %vps, "cannot remove a half-received snapshot: {}", crate::error_chain(&e));
            }
            pool.snapshot_names(&vps)
        })
        .await??;
        for snap in recorded.iter().filter(|s| !present.contains(s)) {
            warn!(vps = name, snapshot = %snap, "forgetting a snapshot a crash left unmade");
            self.store.delete_snapshot(name, snap).await?;
        }
        for snap in present.into_iter().filter(|s| !recorded.contains(s)) {
            warn!(vps = name, snapshot = %snap, "a snapshot on disk has no record; kept, not listed");
        }
        Ok(())
    }
}

/// Refuse a snapshot name croft would not give (400), saying it is one.
pub(super) fn snapshot_name(snap: &str) -> Result<()> {
    croft_api::validate_name(snap)
        .map_err(|e| ServiceError::Invalid(format!("snapshot {}", crate::error_chain(&e))))
}
