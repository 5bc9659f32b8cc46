//! Parsing of `/proc/self/mountinfo` and `/proc/self/cgroup`, and locating the
//! daemon's own cgroup inside a mounted hierarchy.

use std::path::{Component, Path, PathBuf};

use super::{fs, CgroupError};

/// A cgroup (v1) or cgroup2 mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Mount {
    /// The cgroup shown at the mount point (4th field; `/` unless the mount
    /// exposes only a subtree, as inside a container).
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// `true` for cgroup2, `false` for a v1 hierarchy.
    pub v2: bool,
    /// Super options, such as `rw`, `memory`, `cpu`, `name=systemd`.
    pub options: Vec<String>,
}

impl Mount {
    /// Whether this v1 mount carries every controller (or `name=`) in `set`.
    pub fn carries_all(&self, set: &[String]) -> bool {
        !self.v2 && set.iter().all(|c| self.options.contains(c))
    }

    pub fn carries(&self, controller: &str) -> bool {
        !self.v2 && self.options.iter().any(|o| o == controller)
    }
}

/// One line of `/proc/self/cgroup`: `id:controllers:path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Membership {
    pub id: u32,
    /// Empty for the v2 line (`0::/path`).
    pub controllers: Vec<String>,
    pub path: String,
}

impl Membership {
    /// The v1 hierarchy line carrying `controller`.
    pub fn find<'a>(own: &'a [Membership], controller: &str) -> Option<&'a Membership> {
        own.iter()
            .find(|m| !m.controllers.is_empty() && m.controllers.iter().any(|c| c == controller))
    }
}

const MOUNTINFO: &str = "/proc/self/mountinfo";
const PROC_CGROUP: &str = "/proc/self/cgroup";

/// The cgroup and cgroup2 mounts listed in mountinfo, in order.
pub(super) fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, CgroupError> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let malformed = || CgroupError::MalformedLine {
            file: MOUNTINFO,
            line: line.to_owned(),
        };
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields
            .iter()
            .skip(6)
            .position(|f| *f == "-")
            .map(|p| p + 6)
            .ok_or_else(malformed)?;
        if fields.len() < sep + 4 {
            return Err(malformed());
        }
        let v2 = match fields[sep + 1] {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        mounts.push(Mount {
            root: PathBuf::from(unescape(fields[3])),
            mount_point: PathBuf::from(unescape(fields[4])),
            v2,
            options: fields[sep + 3].split(',').map(str::to_owned).collect(),
        });
    }
    Ok(mounts)
}

/// Undoes the octal escapes of mountinfo (`\040` for a space, etc.).
pub(crate) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of `/proc/self/cgroup`.
pub(super) fn parse_proc_cgroup(text: &str) -> Result<Vec<Membership>, CgroupError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let malformed = || CgroupError::MalformedLine {
                file: PROC_CGROUP,
                line: line.to_owned(),
            };
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(malformed());
            };
            if !path.starts_with('/') {
                return Err(malformed());
            }
            Ok(Membership {
                id: id.parse().map_err(|_| malformed())?,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// The daemon's own cgroup directory on the host filesystem, through the first
/// of `mounts` whose root contains `own`: `fs_root/<mount point>/<own path
/// relative to the mount root>`.
pub(super) fn own_dir<'a>(
    hierarchy: &str,
    own: &str,
    mounts: impl IntoIterator<Item = &'a Mount>,
    fs_root: &Path,
) -> Result<PathBuf, CgroupError> {
    let own_path = Path::new(own);
    let not_visible = |root: PathBuf| CgroupError::OwnCgroupNotVisible {
        hierarchy: hierarchy.to_owned(),
        own: own.to_owned(),
        root,
    };
    // `..` appears when the cgroup is outside our cgroup namespace.
    let plain = own_path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let mut first_root = None;
    for mount in mounts {
        first_root.get_or_insert_with(|| mount.root.clone());
        if !plain {
            break;
        }
        if let Ok(relative) = own_path.strip_prefix(&mount.root) {
            return Ok(fs::under(&fs::under(fs_root, &mount.mount_point), relative));
        }
    }
    Err(not_visible(first_root.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_cgroup_lines_only_with_escapes() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
25 24 0:22 /lxc/vps1 /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 master:2 - cgroup cgroup rw,cpu,cpuacct
26 24 0:23 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw,nsdelegate
";
        let mounts = parse_mountinfo(text).unwrap();
        assert_eq!(
            mounts,
            vec![
                Mount {
                    root: "/lxc/vps1".into(),
                    mount_point: "/sys/fs/cgroup/cpu,cpuacct".into(),
                    v2: false,
                    options: vec!["rw".into(), "cpu".into(), "cpuacct".into()],
                },
                Mount {
                    root: "/".into(),
                    mount_point: "/mnt/my cgroup".into(),
                    v2: true,
                    options: vec!["rw".into(), "nsdelegate".into()],
                },
            ]
        );
        assert!(mounts[0].carries("cpu") && mounts[0].carries("cpuacct"));
        assert!(!mounts[0].carries("cpuset"));
    }

    #[test]
    fn rejects_mountinfo_line_without_separator() {
        let err =
            parse_mountinfo("32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime cgroup cgroup rw,cpu").unwrap_err();
        assert!(
            matches!(err, CgroupError::MalformedLine { file: MOUNTINFO, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn parses_proc_self_cgroup() {
        let own = parse_proc_cgroup(
            "4:memory:/process_api/3e68\n2:cpu,cpuacct:/a:b\n1:name=systemd:/\n0::/user.slice\n",
        )
        .unwrap();
        assert_eq!(own.len(), 4);
        assert_eq!(own[0].path, "/process_api/3e68");
        assert_eq!(own[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(own[1].path, "/a:b");
        assert_eq!(Membership::find(&own, "cpuacct").unwrap().id, 2);
        assert_eq!(Membership::find(&own, "name=systemd").unwrap().path, "/");
        assert!(Membership::find(&own, "pids").is_none());
        assert_eq!(
            own[3],
            Membership {
                id: 0,
                controllers: vec![],
                path: "/user.slice".into()
            }
        );
        assert!(matches!(
            parse_proc_cgroup("4:memory").unwrap_err(),
            CgroupError::MalformedLine {
                file: PROC_CGROUP,
                ..
            }
        ));
        assert!(parse_proc_cgroup("x:memory:/").is_err());
    }

    #[test]
    fn own_dir_is_relative_to_the_mount_root() {
        let mount = |root: &str| Mount {
            root: root.into(),
            mount_point: "/sys/fs/cgroup/memory".into(),
            v2: false,
            options: vec!["rw".into(), "memory".into()],
        };
        let root = Path::new("/tmp/fake");
        assert_eq!(
            own_dir("memory", "/a/b", &[mount("/")], root).unwrap(),
            Path::new("/tmp/fake/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            own_dir("memory", "/lxc/vps1/init.scope", &[mount("/lxc/vps1")], root).unwrap(),
            Path::new("/tmp/fake/sys/fs/cgroup/memory/init.scope")
        );
        assert_eq!(
            own_dir("memory", "/lxc/vps1", &[mount("/lxc/vps1")], root).unwrap(),
            Path::new("/tmp/fake/sys/fs/cgroup/memory")
        );
        // A sibling with a common string prefix is not below the root.
        let err = own_dir("memory", "/lxc/vps10", &[mount("/lxc/vps1")], root).unwrap_err();
        assert!(
            matches!(&err, CgroupError::OwnCgroupNotVisible { own, root, .. } if own == "/lxc/vps10" && root == Path::new("/lxc/vps1")),
            "{err:?}"
        );
        assert!(own_dir("memory", "/../other", &[mount("/")], root).is_err());
    }
}
