//! Snapshot export and import: a snapshot written to a file on the host
//! as a btrfs send stream, whole or with only what changed since an older
//! snapshot, and received back (here or on another host) as a snapshot.
//! A chain of them (export s1; export s2 since s1; import both, in order)
//! is how a VPS's disk moves between hosts with only the changes sent.

use super::InstanceService;
use crate::service::{Result, ServiceError};
use croft_api::{Snapshot, SnapshotExportRequest, SnapshotExportResult};
use croft_host::outfile::OutFile;
use croft_host::storage::send_stream::{self, StreamHead};
use croft_host::storage::StorageError;
use std::path::{Path, PathBuf};
use tracing::info;

/// Marks snapshots as being read by an export while it lives: a btrfs
/// send holds its subvolumes, so deleting one of them (or their VPS)
/// meanwhile is refused up front instead of failing half-way.
pub(super) struct Exporting<'a> {
    service: &'a InstanceService,
    keys: Vec<(String, String)>,
}

impl Drop for Exporting<'_> {
    fn drop(&mut self) {
        let mut busy = self.service.exporting.lock().expect("exporting poisoned");
        for key in &self.keys {
            if let Some(n) = busy.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    busy.remove(key);
                }
            }
        }
    }
}

impl InstanceService {
    /// Refuse (409) while an export reads snapshot `snap` of `name`, or any
    /// of its snapshots when `snap` is `None`. Called with the VPS's lock
    /// held, which an export takes to mark its snapshots.
    pub(super) fn refuse_while_exporting(&self, name: &str, snap: Option<&str>) -> Result<()> {
        let busy = self.exporting.lock().expect("exporting poisoned");
        if let Some((_, s)) = busy
            .keys()
            .find(|(vps, s)| vps == name && snap.is_none_or(|snap| snap == s))
        {
            return Err(ServiceError::Conflict(format!(
                "snapshot {s} of {name} is being exported; try again when the export is done"
            )));
        }
        Ok(())
    }

    pub async fn export_snapshot(
        &self,
        name: &str,
        snap: &str,
        req: SnapshotExportRequest,
    ) -> Result<SnapshotExportResult> {
        let out = crate::service::output_file(&req.path, req.overwrite)?;
        let _exporting = {
            let lock = self.lock_for(name);
            let _guard = lock.lock().await;
            self.require_snapshot(name, snap).await?;
            if let Some(since) = &req.since {
                if since == snap {
                    return Err(ServiceError::Invalid(format!(
                        "snapshot {snap} cannot be exported as the changes since itself"
                    )));
                }
                self.require_snapshot(name, since).await?;
            }
            let keys: Vec<(String, String)> = std::iter::once(snap)
                .chain(req.since.as_deref())
                .map(|s| (name.to_string(), s.to_string()))
                .collect();
            let mut busy = self.exporting.lock().expect("exporting poisoned");
            for key in &keys {
                *busy.entry(key.clone()).or_default() += 1;
            }
            Exporting { service: self, keys }
        };
        let pool = self.pool.clone();
        let (vps, s, since, path, target) = (
            name.to_string(),
            snap.to_string(),
            req.since.clone(),
            req.path.clone(),
            out.clone(),
        );
        // Each export writes a temporary file of its own (two exports to
        // one path never write the same file), renamed over `out` when whole.
        let size_bytes = crate::blocking(move || {
            let file = OutFile::create(&target, req.overwrite).map_err(crate::service::outfile_err)?;
            pool.send_snapshot(&vps, &s, since.as_deref(), file.file())
                .map_err(|e| send_err(e, &path))?;
            file.persist().map_err(crate::service::outfile_err)
        })
        .await??;
        info!(vps = name, snapshot = snap, since = ?req.since, path = %out.display(), size_bytes, "exported");
        Ok(SnapshotExportResult {
            path: out.display().to_string(),
            size_bytes,
            since: req.since,
        })
    }

    /// Receive the stream in file `from` as a snapshot of `name` (called
    /// with `name` and `snap` validated and the VPS's lock held).
    pub(super) async fn import_snapshot_locked(
        &self,
        name: &str,
        snap: Option<String>,
        from: &str,
    ) -> Result<Snapshot> {
        let path = PathBuf::from(from);
        if !path.is_absolute() {
            return Err(ServiceError::Invalid(format!("{from}: give an absolute path")));
        }
        let file = path.clone();
        let head = crate::blocking(move || read_head(&file)).await??;
        let snap = match snap {
            Some(snap) => snap,
            None => {
                croft_api::validate_name(&head.name).map_err(|_| {
                    ServiceError::Invalid(format!(
                        "the stream's snapshot is named {:?}, not a valid snapshot name; give it one (--name)",
                        head.name
                    ))
                })?;
                head.name.clone()
            }
        };
        // Recorded first, like a snapshot taken here: a crash before the
        // snapshot is whole leaves a record without a snapshot, which the
        // next start forgets, and the half-received stream with it.
        if !self.store.insert_snapshot(name, &snap).await? {
            return Err(ServiceError::Conflict(format!(
                "VPS {name} already has a snapshot {snap}"
            )));
        }
        crate::failpoint::crash_point("snapshot-import:recorded");
        let pool = self.pool.clone();
        let (vps, s, file) = (name.to_string(), snap.clone(), path.clone());
        let received = crate::blocking(move || pool.receive_snapshot(&vps, &file, &s)).await?;
        if let Err(e) = received {
            self.reclaimer.request();
            self.store.delete_snapshot(name, &snap).await?;
            return Err(receive_err(e, from, name));
        }
        info!(vps = name, snapshot = %snap, path = from, incremental = head.parent_uuid.is_some(), "imported");
        self.recorded_snapshot(name, snap).await
    }
}

fn read_head(path: &Path) -> Result<StreamHead> {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so a FIFO given as the file cannot hold the open (and
    // the VPS's lock) forever; it is refused as not a file just below.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| ServiceError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        return Err(ServiceError::Invalid(format!("{} is not a file", path.display())));
    }
    send_stream::read_head(&mut file).map_err(|e| ServiceError::Invalid(format!("{}: {e}", path.display())))
}

fn send_err(e: StorageError, path: &str) -> ServiceError {
    match &e {
        StorageError::Unsupported { .. } => ServiceError::invalid(&e),
        StorageError::NoSpace(_) => {
            ServiceError::Conflict(format!("no space left for {path} (nothing of it was kept)"))
        }
        _ => e.into(),
    }
}

/// A receive fails on what the stream holds far more often than on the
/// host, so its failures are the caller's to fix (4xx): the parent of an
/// incremental stream missing above all (found before the receive runs).
fn receive_err(e: StorageError, path: &str, vps: &str) -> ServiceError {
    match &e {
        StorageError::MissingParent(parent) => ServiceError::Conflict(format!(
            "{path} holds only the changes since a snapshot (UUID {parent}) that {vps} does not have; import that one into {vps} first"
        )),
        StorageError::NoSpace(_) => ServiceError::Conflict(format!(
            "the storage pool is full: cannot receive {path} (nothing of it was kept)"
        )),
        StorageError::Unsupported { .. } => ServiceError::invalid(&e),
        _ => ServiceError::Invalid(format!("cannot receive {path}: {}", crate::error_chain(&e))),
    }
}
