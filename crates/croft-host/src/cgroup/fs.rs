//! Reading and writing cgroup files and directories, with errors naming the
//! path. Nothing here knows about controllers.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::CgroupError;

/// One value to write into a cgroup file, part of an ordered plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Write {
    pub file: &'static str,
    pub value: String,
    /// A missing file is an error only when the write is required (a limit is
    /// being set); removing a limit from a file that does not exist is a no-op.
    pub required: bool,
}

impl Write {
    pub fn new(file: &'static str, value: impl Into<String>, required: bool) -> Self {
        Self {
            file,
            value: value.into(),
            required,
        }
    }
}

/// Performs `writes` in order in `dir`.
pub(super) fn apply_writes(dir: &Path, writes: &[Write]) -> Result<(), CgroupError> {
    for write in writes {
        let path = dir.join(write.file);
        if write.required {
            write_file(&path, &write.value)?;
        } else {
            write_if_exists(&path, &write.value)?;
        }
    }
    Ok(())
}

/// Writes `value` to an existing cgroup file in one `write(2)`.
pub(super) fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    try_write(path, value).map_err(|source| write_error(path, value, source))
}

/// Like [`write_file`], but a missing file is not an error; returns whether
/// the file existed.
pub(super) fn write_if_exists(path: &Path, value: &str) -> Result<bool, CgroupError> {
    match try_write(path, value) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(write_error(path, value, source)),
    }
}

fn try_write(path: &Path, value: &str) -> io::Result<()> {
    // Never create: cgroup files exist or the controller is missing. Truncate
    // so that a fake tree (plain files) holds exactly the last value.
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(value.as_bytes())
}

fn write_error(path: &Path, value: &str, source: io::Error) -> CgroupError {
    CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    }
}

/// Reads a whole cgroup file.
pub(super) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads a cgroup file, `None` if it does not exist.
pub(super) fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(content) => Ok(Some(content)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses a file holding one unsigned number.
pub(super) fn parse_u64(path: &Path, content: &str) -> Result<u64, CgroupError> {
    content.trim().parse().map_err(|_| malformed(path, content))
}

/// Reads a file holding one unsigned number.
pub(super) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    parse_u64(path, &read(path)?)
}

/// The value of `key` in a flat-keyed file (`key value` per line, as
/// `memory.events`, `cpu.stat`, `memory.oom_control`); `Ok(None)` if absent.
pub(super) fn keyed_u64(path: &Path, content: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in content.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some(key) {
            return match (fields.next().map(str::parse::<u64>), fields.next()) {
                (Some(Ok(value)), None) => Ok(Some(value)),
                _ => Err(malformed(path, content)),
            };
        }
    }
    Ok(None)
}

pub(super) fn malformed(path: &Path, content: &str) -> CgroupError {
    CgroupError::Malformed {
        path: path.to_owned(),
        content: content.to_owned(),
    }
}

/// Creates one cgroup directory (its parent must exist: a missing parent means
/// a wrong path, which must not be papered over by creating it). Returns
/// whether it was created; an existing directory is fine.
pub(super) fn create_dir(path: &Path) -> Result<bool, CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            if path.is_dir() {
                Ok(false)
            } else {
                Err(CgroupError::NotADirectory {
                    path: path.to_owned(),
                })
            }
        }
        Err(source) => Err(CgroupError::Create {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Names of the subdirectories (child cgroups) of `dir`, sorted; empty if
/// `dir` does not exist.
pub(super) fn child_dirs(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let read_error = |source| CgroupError::Read {
        path: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(read_error(source)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        // `file_type` does not follow symlinks: only real child cgroups count.
        if entry.file_type().map_err(read_error)?.is_dir() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Removes one (empty) cgroup directory; a missing one is fine.
pub(super) fn remove_dir(path: &Path) -> Result<(), CgroupError> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EBUSY) => Err(CgroupError::Busy {
            path: path.to_owned(),
        }),
        Err(source) => Err(CgroupError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Removes a cgroup and all its descendants, deepest first.
pub(super) fn remove_tree(path: &Path) -> Result<(), CgroupError> {
    for child in child_dirs(path)? {
        remove_tree(&path.join(child))?;
    }
    remove_dir(path)
}

/// Adds the pids in `dir/cgroup.procs` and in all descendants to `pids`.
pub(super) fn collect_procs(dir: &Path, pids: &mut BTreeSet<i32>) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    let content = read(&path)?;
    for line in content.lines().filter(|line| !line.trim().is_empty()) {
        pids.insert(line.trim().parse().map_err(|_| malformed(&path, &content))?);
    }
    for child in child_dirs(dir)? {
        collect_procs(&dir.join(child), pids)?;
    }
    Ok(())
}

/// `root` joined with the components of the absolute or relative `path`
/// (`Path::join` would replace `root` by an absolute `path`).
pub(super) fn under(root: &Path, path: &Path) -> PathBuf {
    let mut joined = root.to_owned();
    for component in path.components() {
        if let std::path::Component::Normal(part) = component {
            joined.push(part);
        }
    }
    joined
}
