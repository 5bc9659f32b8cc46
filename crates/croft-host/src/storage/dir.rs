//! The `dir` driver: plain directories on whatever filesystem holds the
//! pool path. No copy-on-write, no disk limits (refused, not ignored).

use super::{io, list_dirs, pool_info, private_dir, Pool, PoolConfig, PoolInfo, SideVolume, StorageError};
use std::path::PathBuf;

#[derive(Debug)]
pub struct DirPool {
    name: String,
    root: PathBuf,
}

impl DirPool {
    pub fn open(cfg: &PoolConfig) -> Result<DirPool, StorageError> {
        let root = cfg.source.clone().unwrap_or_else(|| cfg.mount.clone());
        private_dir(&root.join("containers"), 0o711)?;
        Ok(DirPool {
            name: cfg.name.clone(),
            root,
        })
    }
}

impl Pool for DirPool {
    fn driver(&self) -> &'static str {
        "dir"
    }

    fn info(&self) -> Result<PoolInfo, StorageError> {
        pool_info(
            &self.name,
            "dir",
            self.root.display().to_string(),
            &self.root,
            self.volumes()?.len(),
        )
    }

    fn instance_dir(&self, name: &str) -> PathBuf {
        self.root.join("containers").join(name)
    }

    fn create_volume(&self, name: &str) -> Result<PathBuf, StorageError> {
        let path = self.instance_dir(name).join("rootfs");
        std::fs::create_dir(&path).map_err(io("create", &path))?;
        Ok(path)
    }

    fn delete_volume(&self, name: &str) -> Result<(), StorageError> {
        let dir = self.instance_dir(name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &dir)(e)),
            _ => Ok(()),
        }
    }

    fn set_limit(&self, _name: &str, bytes: Option<u64>) -> Result<(), StorageError> {
        match bytes {
            None => Ok(()),
            Some(_) => Err(StorageError::Unsupported {
                driver: "dir",
                what: "enforce a disk limit (use btrfs)",
            }),
        }
    }

    fn create_side_volume(
        &self,
        vps: &str,
        side: SideVolume,
        image: Option<&str>,
    ) -> Result<PathBuf, StorageError> {
        if image.is_some() {
            return Err(StorageError::Unsupported {
                driver: "dir",
                what: "snapshot images",
            });
        }
        self.delete_side_volume(vps, side)?;
        let path = self.side_volume(vps, side);
        std::fs::create_dir(&path).map_err(io("create", &path))?;
        Ok(path)
    }

    fn delete_side_volume(&self, vps: &str, side: SideVolume) -> Result<(), StorageError> {
        let path = self.side_volume(vps, side);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path)(e)),
            _ => Ok(()),
        }
    }

    fn limit_side_volume(
        &self,
        vps: &str,
        _side: SideVolume,
        bytes: Option<u64>,
    ) -> Result<(), StorageError> {
        // No limits here: refuses one, as for the disk itself.
        self.set_limit(vps, bytes)
    }

    fn commit_replacement(&self, vps: &str) -> Result<(), StorageError> {
        // Removing a directory tree is not atomic: move the old disk aside
        // first (renames are), so a crash leaves either the old disk or
        // the new one whole in place, and a `rootfs.old` to finish removing.
        let rootfs = self.instance_dir(vps).join("rootfs");
        let retired = self.side_volume(vps, SideVolume::Retired);
        self.delete_side_volume(vps, SideVolume::Retired)?;
        if rootfs.exists() {
            std::fs::rename(&rootfs, &retired).map_err(io("rename", &rootfs))?;
        }
        let replacement = self.side_volume(vps, SideVolume::Replacement);
        std::fs::rename(&replacement, &rootfs).map_err(io("rename", &replacement))?;
        self.delete_side_volume(vps, SideVolume::Retired)
    }

    fn usage(&self, _name: &str) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }

    fn volumes(&self) -> Result<Vec<String>, StorageError> {
        list_dirs(&self.root.join("containers"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_pool_refuses_a_disk_limit_and_manages_volumes() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = PoolConfig {
            name: "default".into(),
            driver: "dir".into(),
            mount: tmp.path().join("pool"),
            source: None,
            loop_file: tmp.path().join("unused.img"),
            loop_size: 0,
        };
        let pool = DirPool::open(&cfg).unwrap();
        std::fs::create_dir(pool.instance_dir("a")).unwrap();
        let rootfs = pool.create_volume("a").unwrap();
        assert!(rootfs.is_dir());
        assert_eq!(pool.volumes().unwrap(), vec!["a".to_string()]);
        assert!(matches!(
            pool.set_limit("a", Some(1 << 30)),
            Err(StorageError::Unsupported { .. })
        ));
        pool.set_limit("a", None).unwrap();
        let info = pool.info().unwrap();
        assert_eq!((info.driver.as_str(), info.volumes), ("dir", 1));
        assert!(info.size_bytes > 0 && info.free_bytes <= info.size_bytes);
        pool.delete_volume("a").unwrap();
        pool.delete_volume("a").unwrap();
        assert!(pool.volumes().unwrap().is_empty());
    }
}
