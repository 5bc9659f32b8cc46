//! The images croft builds itself, and their builds. On a btrfs pool an
//! image is a read-only subvolume built on first use (or by `croft image
//! build`); the `dir` driver keeps a plain directory under
//! `<state_dir>/images/<name>/rootfs`.

use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("unknown image {name:?} (available: {available})")]
    Unknown { name: String, available: String },
    #[error("cannot build image {name}: {detail}")]
    Missing { name: String, detail: String },
}

/// The image's directory name inside a pool: '/' is not allowed in a
/// path component, '_' is not allowed in image names, so this is 1:1.
pub fn pool_name(name: &str) -> String {
    name.replace('/', "_")
}

/// What croftd knows about an image it can build.
pub struct ImageKind {
    pub name: &'static str,
    pub description: &'static str,
    pub init: &'static [&'static str],
    pub stop_signal: &'static str,
}

pub const KINDS: &[ImageKind] = &[
    ImageKind {
        name: "busybox",
        description:
            "BusyBox userland from Debian's busybox-static, busybox init with a shell on the console",
        init: &["/sbin/init"],
        // busybox init powers off on SIGUSR2 (SIGTERM means reboot to it).
        stop_signal: "SIGUSR2",
    },
    ImageKind {
        name: "debian/bookworm",
        description: "Debian 12 with systemd, OpenSSH, iproute2 and apt (debootstrap)",
        init: &["/sbin/init"],
        stop_signal: "SIGRTMIN+3",
    },
    ImageKind {
        name: "debian/trixie",
        description: "Debian 13 with systemd, OpenSSH, iproute2 and apt (debootstrap)",
        init: &["/sbin/init"],
        stop_signal: "SIGRTMIN+3",
    },
];

#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
    busybox: PathBuf,
    debian_mirror: String,
    debian_security_mirror: String,
}

impl Catalog {
    pub fn new(
        dir: PathBuf,
        busybox: PathBuf,
        debian_mirror: String,
        debian_security_mirror: String,
    ) -> Catalog {
        Catalog {
            dir,
            busybox,
            debian_mirror,
            debian_security_mirror,
        }
    }

    /// Fill the empty directory `root` with image `name`. Blocking: a
    /// Debian build runs debootstrap (a minute or two).
    fn build_into(
        &self,
        name: &str,
        root: &std::path::Path,
        progress: &mut dyn FnMut(&str),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), String> {
        match name.strip_prefix("debian/") {
            Some(release) => {
                let mirrors = croft_host::rootfs::DebianMirrors {
                    archive: &self.debian_mirror,
                    security: &self.debian_security_mirror,
                };
                croft_host::rootfs::debootstrap(release, mirrors, root, progress, cancelled)
            }
            None => croft_host::rootfs::populate_busybox(&self.busybox, root),
        }
        .map_err(|e| crate::error_chain(&e))
    }

    pub fn kind(name: &str) -> Result<&'static ImageKind, ImageError> {
        KINDS
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| ImageError::Unknown {
                name: name.into(),
                available: KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
            })
    }

    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("rootfs")
    }

    fn check_tools(&self, name: &str) -> Result<(), ImageError> {
        if name.starts_with("debian/") {
            let found = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join("debootstrap").is_file()))
                .unwrap_or(false)
                || std::path::Path::new("/usr/sbin/debootstrap").is_file();
            if !found {
                return Err(ImageError::Missing {
                    name: name.into(),
                    detail: "debootstrap not found (install Debian's debootstrap)".into(),
                });
            }
            return Ok(());
        }
        if !self.busybox.is_file() {
            return Err(ImageError::Missing {
                name: name.into(),
                detail: format!(
                    "{} not found (install Debian's busybox-static)",
                    self.busybox.display()
                ),
            });
        }
        Ok(())
    }

    /// The built image `name` as a read-only volume of `pool` (for pools
    /// that snapshot), built on first use, or anew in the old one's place
    /// if `rebuild`. Blocking.
    /// `progress` hears the build's steps ("Retrieving libc6", ...).
    pub fn ensure_in_pool(
        &self,
        name: &str,
        pool: &dyn croft_host::storage::Pool,
        rebuild: bool,
        progress: &mut dyn FnMut(&str),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), ImageError> {
        Self::kind(name)?;
        if !rebuild && pool.image_exists(&pool_name(name)) {
            return Ok(());
        }
        self.check_tools(name)?;
        let build = &mut |dir: &Path| self.build_into(name, dir, progress, cancelled);
        if rebuild {
            pool.rebuild_image(&pool_name(name), build)
        } else {
            pool.ensure_image(&pool_name(name), build)
        }
        .map_err(|e| ImageError::Missing {
            name: name.into(),
            detail: e.to_string(),
        })?;
        Ok(())
    }

    /// Return the image's rootfs directory, building it first if needed.
    /// Blocking.
    pub fn ensure(&self, name: &str) -> Result<PathBuf, ImageError> {
        Self::kind(name)?;
        let rootfs = self.rootfs(name);
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
        self.check_tools(name)?;
        let parent = rootfs.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent).map_err(|e| ImageError::Missing {
            name: name.into(),
            detail: format!("create {}: {e}", parent.display()),
        })?;
        // Built beside its final name and renamed when complete.
        let tmp = rootfs.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let built = std::fs::create_dir_all(&tmp)
            .map_err(|e| e.to_string())
            .and_then(|_| self.build_into(name, &tmp, &mut |_| {}, &|| false))
            .and_then(|_| std::fs::rename(&tmp, &rootfs).map_err(|e| e.to_string()));
        if let Err(detail) = built {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ImageError::Missing {
                name: name.into(),
                detail,
            });
        }
        Ok(rootfs)
    }
}

/// Where a debootstrap step puts a build, in percent of the whole: its
/// "I: ..." lines name the stages in order.
pub fn build_percent(step: &str) -> u8 {
    const STAGES: &[(&str, u8)] = &[
        ("Base system installed", 95),
        ("Configuring", 80),
        ("Unpacking", 65),
        ("Installing", 55),
        ("Extracting", 45),
        ("Validating", 35),
        ("Retrieving", 10),
        ("Checking", 5),
    ];
    STAGES
        .iter()
        .find(|(word, _)| step.starts_with(word))
        .map(|(_, p)| *p)
        .unwrap_or(5)
}
