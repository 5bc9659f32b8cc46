//! Storage pools: where VPS root filesystems live.
//!
//! A pool is reached through the [`Pool`] trait so that the manager never
//! names btrfs: [`btrfs::BtrfsPool`] (the default: a loop-file or block
//! device btrfs with one subvolume per VPS and qgroup disk limits) and
//! [`dir::DirPool`] (plain directories, for hosts without btrfs; it refuses
//! a disk limit instead of silently ignoring it).
//!
//! Layout inside a pool's mount point: `containers/<name>/` is a directory
//! owned by the VPS's root (mode 0700, so no host user and no other VPS can
//! enter it) holding the volume `rootfs`, its `snapshots/`, and at times a
//! [`SideVolume`] beside the disk.

pub mod btrfs;
pub mod dir;
pub mod send_stream;

use crate::cmd::CommandError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {driver} storage driver cannot {what}")]
    Unsupported {
        driver: &'static str,
        what: &'static str,
    },
    #[error("disk limit {limit} bytes is below the {used} bytes the VPS already uses")]
    BelowUsage { limit: u64, used: u64 },
    #[error("unexpected output from `{command}`: {output}")]
    Parse { command: String, output: String },
    #[error("cannot build image {name}: {detail}")]
    ImageBuild { name: String, detail: String },
    #[error("unknown storage driver {0:?} (btrfs or dir)")]
    UnknownDriver(String),
    #[error("the stream holds only the changes since a snapshot (UUID {0}) this VPS does not have")]
    MissingParent(String),
    /// Where a subvolume should be, something else is (a symlink or a
    /// directory an imported stream made in its snapshots directory).
    #[error("{0} is not a subvolume")]
    NotASubvolume(PathBuf),
    /// A snapshot stream that is not one croft accepts.
    #[error("not a snapshot stream croft accepts")]
    Stream(#[source] send_stream::StreamError),
    /// The pool (or the VPS's disk limit) has no room left for what was
    /// being written; nothing of it is kept.
    #[error("the storage pool is full")]
    NoSpace(#[source] CommandError),
}

/// A failed btrfs command that ran out of room is [`StorageError::NoSpace`]
/// (the tool says so only on stderr; callers need not read it).
pub(crate) fn out_of_space(e: CommandError) -> StorageError {
    match &e {
        CommandError::Failed { stderr, .. }
            if stderr.contains("No space left on device") || stderr.contains("Disk quota exceeded") =>
        {
            StorageError::NoSpace(e)
        }
        _ => StorageError::Command(e),
    }
}

pub(crate) fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A volume a VPS may have for a while beside its disk, in its instance
/// dir. Both are made complete before they are used, so after a crash the
/// manager can tell what to do with one from whether the disk exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideVolume {
    /// The root of a rescue boot: a copy of the rescue image, with the
    /// VPS's own disk mounted at /mnt inside. Removed when the VPS stops.
    Rescue,
    /// A new disk (a rebuild from an image, a snapshot being restored),
    /// swapped in for the old one by [`Pool::commit_replacement`].
    Replacement,
    /// The old disk on its way out during a swap (drivers whose removal
    /// is not atomic move it aside first, then remove it).
    Retired,
}

impl SideVolume {
    pub fn file_name(self) -> &'static str {
        match self {
            SideVolume::Rescue => "rescue",
            SideVolume::Replacement => "rootfs.new",
            SideVolume::Retired => "rootfs.old",
        }
    }
}

/// Size and use of a pool, as `croft storage info` shows them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PoolInfo {
    pub name: String,
    pub driver: String,
    /// The loop file, block device or directory behind the pool.
    pub source: String,
    pub mount: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub volumes: usize,
}

/// How croftd wants its pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub name: String,
    pub driver: String,
    /// Where the pool is (or gets) mounted.
    pub mount: PathBuf,
    /// A block device or an existing btrfs directory to use instead of a
    /// loop file.
    pub source: Option<PathBuf>,
    /// The loop file created on first start when no source is given.
    pub loop_file: PathBuf,
    pub loop_size: u64,
}

/// One storage pool.
pub trait Pool: Send + Sync + std::fmt::Debug {
    fn driver(&self) -> &'static str;
    fn info(&self) -> Result<PoolInfo, StorageError>;
    /// The directory that holds everything of VPS `name`.
    fn instance_dir(&self, name: &str) -> PathBuf;
    /// Create the (empty) root volume of `name` inside its instance dir.
    fn create_volume(&self, name: &str) -> Result<PathBuf, StorageError>;
    /// Remove the VPS's volume and its instance dir; missing is fine.
    fn delete_volume(&self, name: &str) -> Result<(), StorageError>;
    /// Set (or with `None` lift) the hard disk limit of `name`'s volume.
    fn set_limit(&self, name: &str, bytes: Option<u64>) -> Result<(), StorageError>;
    /// Bytes used by `name`'s volume, when the driver can tell.
    fn usage(&self, name: &str) -> Result<Option<u64>, StorageError>;
    /// Bytes used by every VPS volume the driver can tell, by name, as of
    /// the filesystem's last commit (cheap: for lists, where [`usage`]'s
    /// exact figure would cost a commit per volume).
    ///
    /// [`usage`]: Pool::usage
    fn usages(&self) -> Result<std::collections::HashMap<String, u64>, StorageError> {
        Ok(std::collections::HashMap::new())
    }
    /// Where side volume `side` of `vps` is (whether or not it exists).
    fn side_volume(&self, vps: &str, side: SideVolume) -> PathBuf {
        self.instance_dir(vps).join(side.file_name())
    }
    /// Create side volume `side` of `vps`, replacing a leftover one: a
    /// writable snapshot of pool image `image` (pools with [`snapshots`]),
    /// or an empty volume to copy into.
    ///
    /// [`snapshots`]: Pool::snapshots
    fn create_side_volume(
        &self,
        vps: &str,
        side: SideVolume,
        image: Option<&str>,
    ) -> Result<PathBuf, StorageError>;
    /// Set (or with `None` lift) the disk limit of side volume `side`: a
    /// rescue system or a new disk gets the VPS's limit before it is used.
    fn limit_side_volume(&self, vps: &str, side: SideVolume, bytes: Option<u64>) -> Result<(), StorageError>;
    /// Remove side volume `side` of `vps`; missing is fine.
    fn delete_side_volume(&self, vps: &str, side: SideVolume) -> Result<(), StorageError>;
    /// Make the [`SideVolume::Replacement`] `vps`'s disk, removing the old
    /// disk (if still there). The replacement carries its disk limit
    /// before the old disk goes (btrfs: the old disk's limit, if the
    /// replacement has none), so no crash leaves the VPS unlimited.
    fn commit_replacement(&self, vps: &str) -> Result<(), StorageError>;
    /// Names of the VPS volumes present in the pool.
    fn volumes(&self) -> Result<Vec<String>, StorageError>;
    /// Wait until the space of what was deleted is free again, and drop
    /// what the deletions left (btrfs frees a deleted subvolume in the
    /// background). Blocking, for as long as that takes: call it off the
    /// path of any request.
    fn reclaim(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Whether VPS disks are copy-on-write snapshots of image volumes kept
    /// in the pool (the VPS then mounts its disk idmapped); otherwise the
    /// manager copies the image into an empty volume, shifting owners.
    fn snapshots(&self) -> bool {
        false
    }

    /// The read-only volume of image `name`, built by `build` into a fresh
    /// volume on first use (published only once complete).
    fn ensure_image(
        &self,
        name: &str,
        _build: &mut dyn FnMut(&Path) -> Result<(), String>,
    ) -> Result<PathBuf, StorageError> {
        Err(StorageError::ImageBuild {
            name: name.into(),
            detail: "this pool keeps no images".into(),
        })
    }

    /// Build image `name` anew by `build` into a fresh volume that then
    /// takes the old one's place in one step (built like
    /// [`Pool::ensure_image`] if there is none). VPS disks made from the
    /// old one share its blocks and keep them.
    fn rebuild_image(
        &self,
        _name: &str,
        _build: &mut dyn FnMut(&Path) -> Result<(), String>,
    ) -> Result<PathBuf, StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "keep images (use btrfs)",
        })
    }

    /// Make image `name` (which must not exist) a snapshot of `vps`'s disk
    /// or of its snapshot `snap`, changed by `prepare` before it is made
    /// read-only and published under its name.
    fn publish_image(
        &self,
        _name: &str,
        _vps: &str,
        _snap: Option<&str>,
        _prepare: &mut dyn FnMut(&Path) -> Result<(), String>,
    ) -> Result<PathBuf, StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "keep images (use btrfs)",
        })
    }

    /// The kernel's live figures of `vps`'s disk, for `statfs` inside it:
    /// `None` where the pool keeps none.
    fn disk_view(&self, _vps: &str) -> Option<crate::spec::DiskView> {
        None
    }

    /// Take a read-only snapshot `snap` of `vps`'s disk.
    fn create_snapshot(&self, vps: &str, _snap: &str) -> Result<(), StorageError> {
        let _ = vps;
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "take snapshots (use btrfs)",
        })
    }

    /// Delete snapshot `snap` of `vps`; missing is fine.
    fn delete_snapshot(&self, _vps: &str, _snap: &str) -> Result<(), StorageError> {
        Ok(())
    }

    /// Replace `vps`'s disk by a writable copy of its snapshot `snap`.
    fn restore_snapshot(&self, _vps: &str, _snap: &str) -> Result<(), StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "restore snapshots",
        })
    }

    /// Make `dst`'s disk a writable snapshot of `src`'s disk, or of its
    /// snapshot `snap`.
    fn copy_volume(&self, _src: &str, _snap: Option<&str>, _dst: &str) -> Result<PathBuf, StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "copy VPS disks (use btrfs)",
        })
    }

    /// Write snapshot `snap` of `vps` into the file `out` (fresh and
    /// empty) as a btrfs send stream: all of it, or only what changed since
    /// `parent` (another snapshot of `vps`) when given.
    fn send_snapshot(
        &self,
        _vps: &str,
        _snap: &str,
        _parent: Option<&str>,
        _out: &std::fs::File,
    ) -> Result<(), StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "export snapshots (use btrfs)",
        })
    }

    /// Receive the send stream read from `stream` as snapshot `snap` of
    /// `vps`. It arrives under a hidden name and becomes the snapshot only
    /// once whole; on failure nothing of it is left.
    fn receive_snapshot(
        &self,
        _vps: &str,
        _stream: &mut dyn std::io::Read,
        _snap: &str,
    ) -> Result<(), StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "import snapshots (use btrfs)",
        })
    }

    /// Remove what a receive croftd did not finish left of a snapshot.
    fn discard_incoming(&self, _vps: &str) -> Result<(), StorageError> {
        Ok(())
    }

    /// The snapshots of `vps` present in the pool.
    fn snapshot_names(&self, _vps: &str) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    /// Bytes snapshot `snap` holds alone (not shared with the live disk).
    fn snapshot_usage(&self, _vps: &str, _snap: &str) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }

    /// Whether image `name` is present in the pool.
    fn image_exists(&self, _name: &str) -> bool {
        false
    }

    /// The directory of image `name` in the pool.
    fn image_dir(&self, name: &str) -> PathBuf {
        PathBuf::from(name)
    }

    /// Delete image `name` (VPSes made from it keep their own disks).
    /// The image volumes in the pool (by pool name).
    fn images(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    /// Remove image volumes a crash left half-built; returns their names.
    fn remove_unfinished_images(&self) -> Result<Vec<String>, StorageError> {
        Ok(Vec::new())
    }

    /// Bytes image `name` holds, where the driver can tell.
    fn image_usage(&self, _name: &str) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }

    fn delete_image(&self, _name: &str) -> Result<(), StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "keep images",
        })
    }

    /// Make `vps`'s root volume a writable snapshot of image `image`.
    fn clone_image(&self, _image: &str, _vps: &str) -> Result<PathBuf, StorageError> {
        Err(StorageError::Unsupported {
            driver: self.driver(),
            what: "snapshot images",
        })
    }
}

/// The block device (`major`, `minor`) the filesystem holding `path` is
/// mounted from, per /proc/self/mountinfo (the longest mount point that
/// holds it); `None` when it is not a block device (tmpfs, overlay, NFS):
/// disk I/O limits apply to that device.
pub fn block_device_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = std::fs::canonicalize(path).ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let source = mount_source(&text, &path)?;
    let meta = std::fs::metadata(&source).ok()?;
    if !meta.file_type().is_block_device() {
        return None;
    }
    let rdev = meta.rdev();
    Some(whole_disk((libc::major(rdev), libc::minor(rdev))))
}

/// The disk a partition is on (cgroup I/O limits take whole disks only:
/// the kernel refuses a partition's numbers with ENODEV); any other device
/// as it is.
fn whole_disk(dev: (u32, u32)) -> (u32, u32) {
    let sys = std::path::PathBuf::from(format!("/sys/dev/block/{}:{}", dev.0, dev.1));
    if !sys.join("partition").exists() {
        return dev;
    }
    // /sys/dev/block/8:1 -> ../../devices/.../block/sda/sda1: its parent
    // directory is the disk's.
    let parent = std::fs::canonicalize(&sys)
        .ok()
        .and_then(|p| p.parent().map(|p| p.join("dev")))
        .and_then(|p| std::fs::read_to_string(p).ok());
    parent
        .and_then(|text| {
            let (major, minor) = text.trim().split_once(':')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        })
        .unwrap_or(dev)
}

/// The source of the mount in mountinfo `text` that holds `path`: the
/// last-mounted of the longest mount points above it.
fn mount_source(text: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().skip(6).position(|f| *f == "-").map(|p| p + 6) else {
            continue;
        };
        let (Some(point), Some(source)) = (fields.get(4), fields.get(sep + 2)) else {
            continue;
        };
        let point = crate::cgroup::mountinfo::unescape(point);
        if !path.starts_with(&point) {
            continue;
        }
        let depth = Path::new(&point).components().count();
        if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, crate::cgroup::mountinfo::unescape(source)));
        }
    }
    best.map(|(_, source)| source)
}

/// Attach (creating on first use) the pool described by `cfg`.
pub fn open(cfg: &PoolConfig) -> Result<Box<dyn Pool>, StorageError> {
    match cfg.driver.as_str() {
        "btrfs" => Ok(Box::new(btrfs::BtrfsPool::attach(cfg)?)),
        "dir" => Ok(Box::new(dir::DirPool::open(cfg)?)),
        other => Err(StorageError::UnknownDriver(other.into())),
    }
}

/// A pool's info from the filesystem at `mount`.
pub(crate) fn pool_info(
    name: &str,
    driver: &str,
    source: String,
    mount: &Path,
    volumes: usize,
) -> Result<PoolInfo, StorageError> {
    let (size_bytes, used_bytes, free_bytes) = fs_usage(mount)?;
    Ok(PoolInfo {
        name: name.into(),
        driver: driver.into(),
        source,
        mount: mount.display().to_string(),
        size_bytes,
        used_bytes,
        free_bytes,
        volumes,
    })
}

/// Total, used and free bytes of the filesystem holding `path`.
pub(crate) fn fs_usage(path: &Path) -> Result<(u64, u64, u64), StorageError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| StorageError::Io {
        what: "statvfs",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let frsize = st.fragment_size();
    let total = st.blocks() * frsize;
    let used = total.saturating_sub(st.blocks_free() * frsize);
    Ok((total, used, st.blocks_available() * frsize))
}

/// Create `path` (and its parents) and give it `mode`, closed to host
/// users: what a pool holds (VPS disks, imported images) may carry setuid
/// files of any owner, which no host user may reach to run. (`containers`
/// is 0711: a VPS's root, entering its mounts, passes through it into its
/// own instance directory, which is 0700 and its.)
pub(crate) fn private_dir(path: &Path, mode: u32) -> Result<(), StorageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(io("create", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

pub(crate) fn list_dirs(path: &Path) -> Result<Vec<String>, StorageError> {
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(io("read", path)(e)),
    };
    for e in entries {
        let e = e.map_err(io("read", path))?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            names.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod mount_tests {
    use super::*;

    #[test]
    fn the_deepest_last_mount_holding_a_path_is_its_source() {
        let text = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
40 22 0:35 / /var/lib/croft/storage-pools/default rw - btrfs /dev/loop3 rw
41 22 0:36 / /var/lib/croft/storage-pools/default rw - btrfs /dev/loop4 rw
42 22 0:37 / /mnt/my\\040pool rw - xfs /dev/sdb1 rw
";
        let pool = Path::new("/var/lib/croft/storage-pools/default/containers/web1");
        assert_eq!(mount_source(text, pool).as_deref(), Some("/dev/loop4"));
        assert_eq!(
            mount_source(text, Path::new("/srv")).as_deref(),
            Some("/dev/sda1")
        );
        assert_eq!(
            mount_source(text, Path::new("/mnt/my pool/x")).as_deref(),
            Some("/dev/sdb1")
        );
        // A prefix of a name is not a parent.
        assert_eq!(
            mount_source(text, Path::new("/var/lib/croft/storage-pools/default2")).as_deref(),
            Some("/dev/sda1")
        );
    }
}
