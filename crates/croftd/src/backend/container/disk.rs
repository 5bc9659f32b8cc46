//! A VPS's disks: made from an image volume (a snapshot of it, in O(1),
//! on pools that snapshot) or copied from the image tree with owners
//! shifted into the VPS's id range, then given the VPS's identity.

use super::ContainerBackend;
use crate::backend::{BackendError, DiskSource, Identity, Result};
use crate::service::images::catalog::pool_name;
use crate::store::InstanceRecord;
use croft_host::storage::SideVolume;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

impl ContainerBackend {
    /// The disk `side` (or the VPS's own) of `vps`, made from `source`.
    pub(super) async fn make_disk(
        &self,
        vps: &InstanceRecord,
        source: DiskSource<'_>,
        side: Option<SideVolume>,
    ) -> Result<PathBuf> {
        if side.is_none() {
            self.make_instance_dir(vps)?;
        }
        let (pool, name) = (self.pool.clone(), vps.key.clone());
        let image = match source {
            DiskSource::Image(image) => image,
            DiskSource::Copy { vps: from, snapshot } => {
                let (from, snapshot) = (from.to_string(), snapshot.map(str::to_string));
                return Ok(
                    crate::blocking(move || pool.copy_volume(&from, snapshot.as_deref(), &name)).await??,
                );
            }
        };
        if self.pool.snapshots() {
            // Copy-on-write: a snapshot of the image volume whatever the
            // image's size; ids stay as in the image and the VPS mounts its
            // disk idmapped.
            let image = pool_name(image);
            return Ok(crate::blocking(move || match side {
                None => pool.clone_image(&image, &name),
                Some(side) => pool.create_side_volume(&name, side, Some(&image)),
            })
            .await??);
        }
        let (catalog, image, uid_base) = (self.catalog.clone(), image.to_string(), vps.uid_base);
        let src = crate::blocking(move || catalog.ensure(&image)).await??;
        let dst = crate::blocking(move || match side {
            None => pool.create_volume(&name),
            Some(side) => pool.create_side_volume(&name, side, None),
        })
        .await??;
        let to = dst.clone();
        crate::blocking(move || croft_host::rootfs::copy_shifted(&src, &to, uid_base))
            .await?
            .map_err(|e| BackendError::host("copy the image", e))?;
        Ok(dst)
    }

    /// The VPS's directory belongs to its root and nobody else may enter:
    /// its files stay readable only through its own id range.
    fn make_instance_dir(&self, vps: &InstanceRecord) -> Result<PathBuf> {
        let dir = self.pool.instance_dir(&vps.key);
        let io = |what: &str| {
            let what = format!("{what} {}", dir.display());
            move |e| BackendError::host(what, e)
        };
        std::fs::create_dir_all(&dir).map_err(io("create"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io("chmod"))?;
        std::os::unix::fs::chown(&dir, Some(vps.uid_base), Some(vps.uid_base)).map_err(io("chown"))?;
        Ok(dir)
    }
}

/// Give a fresh disk at `root` the identity of its VPS (hostname,
/// machine-id, SSH host keys), root's authorized keys and, if given, a
/// first-boot script.
pub(super) async fn provision(root: PathBuf, identity: Identity) -> Result<()> {
    crate::blocking(move || {
        croft_host::rootfs::new_identity(&root, &identity.hostname)?;
        croft_host::rootfs::add_authorized_keys(&root, &identity.ssh_keys)?;
        if let Some(script) = identity.user_data {
            croft_host::rootfs::install_user_data(&root, script.as_bytes())?;
        }
        Ok::<(), croft_host::rootfs::RootfsError>(())
    })
    .await?
    .map_err(|e| BackendError::host("give the disk the VPS's identity", e))
}
