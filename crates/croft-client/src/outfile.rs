//! Local files a download is written to (image and snapshot exports):
//! written to an exclusive, randomly named temporary file beside the
//! target and renamed over it only when complete, so an export can never
//! write through a symlink or a device node, truncate a file it did not
//! create, or leave half a file under the asked-for name.
//!
//! The temporary file is made with `O_CREAT|O_EXCL` (which does not follow
//! a symlink in its place) and mode 0600; it is removed if dropped before
//! [`OutFile::persist`]. Without `overwrite` the final rename is
//! `RENAME_NOREPLACE`, so a file appearing meanwhile is kept, not replaced.

use std::fs::File;
use std::path::{Path, PathBuf};

/// Why an output file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutFileError {
    #[error("{0} exists (use --force to replace it)")]
    Exists(PathBuf),
    #[error("{0} is {1}, not a regular file; only a regular file is ever replaced")]
    NotRegular(PathBuf, &'static str),
    #[error("{0}: give an absolute path to a file in an existing directory")]
    BadPath(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A file being written for `target`; see the module doc.
#[derive(Debug)]
pub struct OutFile {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
    overwrite: bool,
}

/// Check that `target` may be written: absent, or (with `overwrite`) a
/// regular file. A symlink, directory, device, fifo or socket is refused
/// whatever `overwrite` says.
pub fn check_target(target: &Path, overwrite: bool) -> Result<(), OutFileError> {
    if !target.is_absolute() || target.file_name().is_none() {
        return Err(OutFileError::BadPath(target.to_path_buf()));
    }
    match std::fs::symlink_metadata(target) {
        Ok(m) if !m.file_type().is_file() => Err(OutFileError::NotRegular(
            target.to_path_buf(),
            kind_of(m.file_type()),
        )),
        Ok(_) if !overwrite => Err(OutFileError::Exists(target.to_path_buf())),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(OutFileError::Io {
            what: "stat",
            path: target.to_path_buf(),
            source,
        }),
    }
}

/// What a file that is not a regular one is, in words.
fn kind_of(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symlink"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else if kind.is_fifo() {
        "a fifo"
    } else {
        "a socket"
    }
}

impl OutFile {
    /// Start writing `target` (checked by [`check_target`]): a new hidden
    /// file `.<name>.<random>.partial` in the target's directory.
    pub fn create(target: &Path, overwrite: bool) -> Result<Self, OutFileError> {
        check_target(target, overwrite)?;
        let (dir, name) = match (target.parent(), target.file_name()) {
            (Some(dir), Some(name)) if dir.is_dir() => (dir, name),
            _ => return Err(OutFileError::BadPath(target.to_path_buf())),
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.to_string_lossy()))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|source| OutFileError::Io {
                what: "create a temporary file in",
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
            overwrite,
        })
    }

    /// The open temporary file, to write into (or hand to a tool as its
    /// stdout).
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Where the file will land.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flush the file to disk and move it to its target, checked again:
    /// a target made a symlink or device since [`OutFile::create`] is
    /// refused, and without `overwrite` any target that appeared is kept.
    pub fn persist(self) -> Result<u64, OutFileError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| OutFileError::Io { what, path, source }
        };
        let file = self.tmp.as_file();
        file.sync_all().map_err(io("sync", self.tmp.path()))?;
        let size = file.metadata().map_err(io("stat", self.tmp.path()))?.len();
        check_target(&self.target, self.overwrite)?;
        let persisted = if self.overwrite {
            self.tmp.persist(&self.target)
        } else {
            self.tmp.persist_noclobber(&self.target)
        };
        match persisted {
            Ok(_) => Ok(size),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(OutFileError::Exists(self.target))
            }
            Err(e) => Err(OutFileError::Io {
                what: "rename to",
                path: self.target,
                source: e.error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".partial"))
            .collect()
    }

    #[test]
    fn a_complete_file_lands_under_its_name_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let out = OutFile::create(&target, false).unwrap();
        out.file().write_all(b"hello").unwrap();
        assert_eq!(out.persist().unwrap(), 5);
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let out = OutFile::create(&target, false).unwrap();
        out.file().write_all(b"half").unwrap();
        drop(out);
        assert!(!target.exists());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn an_existing_file_is_kept_without_overwrite_and_replaced_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::write(&target, b"old").unwrap();
        assert!(matches!(
            OutFile::create(&target, false),
            Err(OutFileError::Exists(_))
        ));
        let out = OutFile::create(&target, true).unwrap();
        out.file().write_all(b"new").unwrap();
        out.persist().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn a_file_appearing_while_writing_is_kept_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let out = OutFile::create(&target, false).unwrap();
        std::fs::write(&target, b"theirs").unwrap();
        assert!(matches!(out.persist(), Err(OutFileError::Exists(_))));
        assert_eq!(std::fs::read(&target).unwrap(), b"theirs");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn symlinks_directories_and_fifos_are_never_replaced_or_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for (target, kind) in [(&link, "a symlink"), (&fifo, "a fifo"), (&sub, "a directory")] {
            for overwrite in [false, true] {
                let err = OutFile::create(target, overwrite).unwrap_err();
                assert!(
                    matches!(err, OutFileError::NotRegular(_, k) if k == kind),
                    "{target:?}: {err}"
                );
            }
        }
        // Made a symlink after the write began: still refused at the end.
        let late = dir.path().join("late");
        let out = OutFile::create(&late, true).unwrap();
        out.file().write_all(b"evil").unwrap();
        std::os::unix::fs::symlink(&victim, &late).unwrap();
        assert!(matches!(out.persist(), Err(OutFileError::NotRegular(..))));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&late).unwrap().file_type().is_symlink());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn relative_paths_and_missing_directories_are_refused() {
        assert!(matches!(
            OutFile::create(Path::new("out"), false),
            Err(OutFileError::BadPath(_))
        ));
        assert!(matches!(
            OutFile::create(Path::new("/nonexistent-croft-dir/out"), false),
            Err(OutFileError::BadPath(_))
        ));
    }
}
