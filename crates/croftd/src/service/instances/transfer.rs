//! Snapshot export and import: a snapshot sent to the client as a btrfs
//! send stream, whole or with only what changed since an older snapshot,
//! and received back from a client (here or on another host) as a
//! snapshot. A chain of them (export s1; export s2 since s1; import both,
//! in order) is how a VPS's disk moves between hosts with only the changes
//! sent. Both directions stream: nothing is held whole.

use super::InstanceService;
use crate::service::stream::{Download, DownloadWriter, Upload};
use crate::service::{Result, ServiceError, VpsName};
use crate::store::InstanceRecord;
use croft_api::Snapshot;
use croft_host::storage::send_stream;
use croft_host::storage::{Pool, StorageError};
use std::io::Read;
use std::sync::Arc;
use tracing::{info, warn};

/// Marks snapshots as being read by an export while it lives: a btrfs
/// send holds its subvolumes, so deleting one of them (or their VPS)
/// meanwhile is refused up front instead of failing half-way.
pub(super) struct Exporting {
    service: Arc<InstanceService>,
    keys: Vec<(String, String)>,
}

impl Drop for Exporting {
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
    pub(super) fn refuse_while_exporting(&self, vps: &InstanceRecord, snap: Option<&str>) -> Result<()> {
        let busy = self.exporting.lock().expect("exporting poisoned");
        if let Some((_, s)) = busy
            .keys()
            .find(|(key, s)| *key == vps.key && snap.is_none_or(|snap| snap == s))
        {
            return Err(ServiceError::Conflict(format!(
                "snapshot {s} of {} is being exported; try again when the export is done",
                vps.name
            )));
        }
        Ok(())
    }

    /// Snapshot `snap` of `vps` as a send stream made as the client takes
    /// it: whole, or only what changed since snapshot `since`.
    pub async fn export_snapshot(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        snap: &str,
        since: Option<String>,
    ) -> Result<Download> {
        let (guard, row) = self.locked(vps).await?;
        let name = row.key.as_str();
        let exporting = {
            self.require_snapshot(&row, snap).await?;
            if let Some(since) = &since {
                if since == snap {
                    return Err(ServiceError::Invalid(format!(
                        "snapshot {snap} cannot be exported as the changes since itself"
                    )));
                }
                self.require_snapshot(&row, since).await?;
            }
            if !self.pool.snapshots() {
                return Err(ServiceError::Invalid(
                    "the dir storage driver cannot export snapshots (use btrfs)".into(),
                ));
            }
            let keys: Vec<(String, String)> = std::iter::once(snap)
                .chain(since.as_deref())
                .map(|s| (name.to_string(), s.to_string()))
                .collect();
            let mut busy = self.exporting.lock().expect("exporting poisoned");
            for key in &keys {
                *busy.entry(key.clone()).or_default() += 1;
            }
            Exporting {
                service: self.clone(),
                keys,
            }
        };
        drop(guard);
        let (mut out, download) = DownloadWriter::new();
        let (pool, vps, s) = (self.pool.clone(), name.to_string(), snap.to_string());
        tokio::task::spawn_blocking(move || {
            // Held until the stream ends, whether it is taken whole or not.
            let _exporting = exporting;
            match send_through_pipe(pool.as_ref(), &vps, &s, since.as_deref(), &mut out) {
                Ok(size_bytes) => info!(vps = %vps, snapshot = %s, since = ?since, size_bytes, "exported"),
                Err(why) => {
                    warn!(vps = %vps, snapshot = %s, "export failed: {why}");
                    out.fail(why);
                }
            }
        });
        Ok(download)
    }

    /// Receive the send stream `upload` as a snapshot of `vps`: named
    /// `snap`, else as the stream names it.
    pub async fn import_snapshot(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        snap: Option<String>,
        upload: Upload,
    ) -> Result<Snapshot> {
        croft_api::validate_name(vps.name).map_err(|e| ServiceError::invalid(&e))?;
        if let Some(s) = &snap {
            super::snapshots::snapshot_name(s)?;
        }
        let (_guard, row) = self.locked(vps).await?;
        let name = row.key.as_str();
        if !self.pool.snapshots() {
            return Err(ServiceError::Invalid(
                "the dir storage driver cannot import snapshots (use btrfs)".into(),
            ));
        }
        let (head, head_bytes, rest) = crate::blocking(move || {
            let mut upload = upload;
            send_stream::read_head_bytes(&mut upload).map(|(head, bytes)| (head, bytes, upload))
        })
        .await?
        .map_err(|e| ServiceError::Invalid(format!("not a snapshot stream croft accepts: {e}")))?;
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
                "VPS {} already has a snapshot {snap}",
                row.name
            )));
        }
        crate::failpoint::crash_point("snapshot-import:recorded");
        let (pool, vps, s) = (self.pool.clone(), name.to_string(), snap.clone());
        let received = crate::blocking(move || {
            let mut stream = std::io::Cursor::new(head_bytes).chain(rest);
            let received = pool.receive_snapshot(&vps, &mut stream, &s);
            // The stream's own end comes before the upload's (the body's
            // last frame): read it, so the answer does not close the
            // connection on a client still sending it. A little only: more
            // after a whole stream is not a snapshot's.
            if received.is_ok() {
                let _ = std::io::copy(&mut stream.take(1 << 20), &mut std::io::sink());
            }
            received
        })
        .await?;
        if let Err(e) = received {
            self.reclaimer.request();
            self.store.delete_snapshot(name, &snap).await?;
            return Err(receive_err(e, &row.name));
        }
        info!(vps = name, snapshot = %snap, incremental = head.parent_uuid.is_some(), "imported");
        self.recorded_snapshot(name, snap).await
    }
}

/// Run `btrfs send` into a pipe and copy the pipe into `out`; the bytes
/// sent, or why it failed.
fn send_through_pipe(
    pool: &dyn Pool,
    vps: &str,
    snap: &str,
    since: Option<&str>,
    out: &mut DownloadWriter,
) -> Result<u64, String> {
    let (reader, writer) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("cannot make a pipe: {e}"))?;
    std::thread::scope(|scope| {
        let sender = scope.spawn(move || {
            // Dropped when btrfs is done, so the reader sees the end.
            let writer = std::fs::File::from(writer);
            pool.send_snapshot(vps, snap, since, &writer)
        });
        let mut reader = std::fs::File::from(reader);
        let copied = out.copy_from(&mut reader);
        // A client gone: btrfs send finds the pipe closed and ends.
        drop(reader);
        let sent = sender
            .join()
            .map_err(|_| "the send thread panicked".to_string())?;
        match (sent, copied) {
            (Err(StorageError::NoSpace(_)), _) => Err("no space left to send the snapshot".into()),
            (Err(e), _) => Err(format!("cannot send the snapshot: {}", crate::error_chain(&e))),
            (Ok(()), Err(e)) => Err(format!("the stream was not taken whole: {e}")),
            (Ok(()), Ok(n)) => Ok(n),
        }
    })
}

/// A receive fails on what the stream holds far more often than on the
/// host, so its failures are the caller's to fix (4xx): the parent of an
/// incremental stream missing above all (found before the receive runs).
fn receive_err(e: StorageError, vps: &str) -> ServiceError {
    match &e {
        StorageError::MissingParent(parent) => ServiceError::Conflict(format!(
            "the stream holds only the changes since a snapshot (UUID {parent}) that {vps} does not have; import that one into {vps} first"
        )),
        StorageError::NoSpace(_) => ServiceError::Conflict(
            "the storage pool is full: cannot receive the snapshot (nothing of it was kept)".into(),
        ),
        StorageError::Unsupported { .. } => ServiceError::invalid(&e),
        _ => ServiceError::Invalid(format!("cannot receive the snapshot: {}", crate::error_chain(&e))),
    }
}
