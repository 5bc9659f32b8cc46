//! The VPS's mount table: built by a host-root helper in a mount namespace
//! of the host's user namespace ([`build_tree`]), then copied by the VPS's
//! init into a namespace of its own, which locks every mount, before it
//! pivots into its rootfs ([`enter_tree`]).
//!
//! Layout (as runc, crun and LXC converge on): private propagation, the
//! rootfs bound onto itself (`nodev`, as every disk a VPS writes), fresh
//! `proc`, read-only `sysfs`, a tmpfs `/dev` holding only bind-mounted safe
//! host devices and a private devpts, masked /proc and /sys entries that
//! leak host information, and a read-only /proc/sys (but for the VPS's own
//! network sysctls).

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MountError {
    /// A namespace could not be made (see [`super::namespace_error`]).
    #[error("{0}")]
    Namespace(String),
    #[error("the VPS's {path} is not a directory (a symlink?); boot its rescue system to repair it")]
    NotADirectory { path: PathBuf },
    #[error("{what} {target}: {source}")]
    Mount {
        what: &'static str,
        target: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Host devices every VPS gets, bind-mounted (a user namespace cannot mknod).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
/// /proc files that reveal or control the host: hidden behind /dev/null.
/// `cmdline` is the host kernel's (a VPS's systemd reads its own PID 1's
/// instead); `diskstats` the host's disks' traffic (lxcfs would show the
/// host's too: VPSes have no block device or blkio cgroup of their own).
const MASKED_FILES: &[&str] = &[
    "kcore",
    "keys",
    "timer_list",
    "sched_debug",
    "latency_stats",
    "kallsyms",
    "kmsg",
    "cmdline",
    "diskstats",
];
/// /proc and /sys directories hidden behind an empty read-only tmpfs.
/// `sys/fs/btrfs` lists every subvolume's quota group of the pool: every
/// VPS's disk usage and limit.
const MASKED_DIRS: &[&str] = &[
    "proc/acpi",
    "proc/scsi",
    "sys/firmware",
    "proc/asound",
    "sys/fs/btrfs",
];
/// /proc entries that stay visible but read-only.
const READ_ONLY: &[&str] = &[
    "proc/sys",
    "proc/sysrq-trigger",
    "proc/irq",
    "proc/bus",
    "proc/fs",
];
/// Below a read-only entry, what stays writable: the network sysctls are
/// the VPS's own network namespace's (forwarding for a VPN, a container
/// runtime's `ping_group_range`); the kernel shows a namespace other than
/// the host's only the tables that are its own. LXC's `proc:mixed` does
/// the same.
const WRITABLE: &[&str] = &["proc/sys/net"];

fn do_mount(
    what: &'static str,
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    mount(source, target, fstype, flags, data).map_err(|source| MountError::Mount {
        what,
        target: target.to_path_buf(),
        source,
    })
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> MountError + 'a {
    move |source| MountError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Bind `path` onto itself read-only, keeping the flags the kernel locks
/// on mounts inside a user namespace (nosuid, nodev, noexec).
fn bind_read_only(path: &Path) -> Result<(), MountError> {
    do_mount(
        "bind",
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    remount_adding(path, MsFlags::MS_RDONLY)
}

/// Remount the bind mount at `path` with `extra` flags, keeping those it
/// has (a remount that drops a flag the kernel locked fails).
fn remount_adding(path: &Path, extra: MsFlags) -> Result<(), MountError> {
    let kept = statvfs(path).map(|s| s.flags()).unwrap_or(FsFlags::empty());
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
    for (have, want) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if kept.contains(have) {
            flags |= want;
        }
    }
    do_mount("remount", None, path, None, flags, None)
}

/// Bind a VPS disk (files already in its id range) at `target`, `nodev`.
fn bind_disk(what: &'static str, source: &Path, target: &Path) -> Result<(), MountError> {
    do_mount(what, Some(source), target, None, MsFlags::MS_BIND, None)?;
    remount_adding(target, MsFlags::MS_NODEV)
}

fn ensure_file(path: &Path) -> Result<(), MountError> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map(drop)
        .map_err(io("create", path))
}

fn ensure_dir(path: &Path) -> Result<(), MountError> {
    fs::create_dir_all(path).map_err(io("create", path))
}

/// A top-level mount point on the VPS's disk (`/proc`, `/sys`, `/dev`,
/// `/run`), made if missing. It must be a directory itself: a symlink
/// there (VPS root can leave any) would put the mount, and every mask
/// and read-only bind beneath it, somewhere else.
fn mount_point(path: &Path) -> Result<(), MountError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(MountError::NotADirectory {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir(path).map_err(io("create", path))
        }
        Err(e) => Err(io("inspect", path)(e)),
    }
}

/// A second disk a VPS mounts (a rescue boot's view of its own disk).
pub enum Disk {
    /// A detached idmapped mount, like an idmapped rootfs.
    Idmapped(OwnedFd),
    /// A directory whose files are already owned by the VPS's id range.
    Shifted(PathBuf),
}

/// What [`build_tree`] mounts.
pub struct Tree<'a> {
    /// The VPS's disk, where its root is mounted.
    pub rootfs: &'a Path,
    /// The detached idmapped mount of the disk (see [`super::idmap`]);
    /// `None`: the disk's files are already in the VPS's id range and it
    /// is bound onto itself.
    pub idmapped: Option<OwnedFd>,
    /// Mounted at /mnt (see [`crate::spec::RESCUE_MOUNT`]).
    pub rescue_disk: Option<Disk>,
    /// The VPS's /sys/fs/cgroup: "v1" (the name=systemd hierarchy) or "v2".
    pub cgroup_mount: Option<&'a str>,
    pub lxcfs: Option<LxcfsFiles>,
    /// Sizes the tmpfs mounts (see [`RamSizes`]).
    pub memory_limit: Option<u64>,
    /// The host uid (and gid) of the VPS's root, owner of what is made.
    pub uid_base: u32,
    /// Host devices bound into its /dev beside the usual ones.
    pub devices: &'a [crate::spec::HostDevice],
    /// Containers inside: a fully visible procfs (see [`crate::spec::NESTING_PROC`]).
    pub nesting: bool,
}

/// Build the VPS's mount tree under `tree.rootfs`, as host root, in a mount
/// namespace of the host's user namespace that the caller made for it,
/// having joined the VPS's pid, network, IPC and cgroup namespaces (proc,
/// sysfs, mqueue and cgroupfs show the namespaces of who mounts them).
///
/// Made here rather than by the VPS's init, every mount is *locked* once
/// the init copies this namespace into one of its own user namespace
/// ([`enter_tree`]): VPS root cannot unmount a mask to read what it hides,
/// remount a read-only mount writable, or mount a fresh procfs or sysfs
/// (the kernel refuses one while the existing one is not fully visible).
///
/// After the disk is attached the helper `chroot`s into it, so a symlink
/// VPS root left on its disk resolves inside the disk, never on the host;
/// what the helper creates is owned by VPS root (its fsuid).
pub fn build_tree(tree: Tree) -> Result<(), MountError> {
    let sizes = RamSizes::for_limit(tree.memory_limit);
    let owner = format!("uid={0},gid={0}", tree.uid_base);
    let nodev_nosuid_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let rootfs = tree.rootfs;
    // pivot_root (in enter_tree) needs the new root to be a mount point.
    match tree.idmapped {
        Some(disk) => super::idmap::attach(&disk, rootfs).map_err(|source| MountError::Mount {
            what: "attach idmapped rootfs",
            target: rootfs.to_path_buf(),
            source,
        })?,
        None => bind_disk("bind rootfs", rootfs, rootfs)?,
    }
    // The host devices VPSes get, opened before the chroot hides them.
    let mut devices = Vec::with_capacity(DEVICES.len());
    for device in tree.devices {
        share_host_device(device.path())?;
    }
    let given = tree.devices.iter().map(|d| d.path());
    for name in DEVICES.iter().copied().chain(given) {
        let host = Path::new("/dev").join(name);
        let fd: OwnedFd = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(&host)
            .map_err(io("open", &host))?
            .into();
        devices.push((name, fd));
    }
    let rescue_disk = match tree.rescue_disk {
        Some(Disk::Shifted(path)) => {
            Some(
                super::idmap::detached_clone(&path).map_err(|source| MountError::Mount {
                    what: "clone the VPS disk",
                    target: path.clone(),
                    source,
                })?,
            )
        }
        Some(Disk::Idmapped(disk)) => Some(disk),
        None => None,
    };
    nix::unistd::chroot(rootfs).map_err(|source| MountError::Mount {
        what: "chroot",
        target: rootfs.to_path_buf(),
        source,
    })?;
    let root = Path::new("/");
    std::env::set_current_dir(root).map_err(io("chdir", root))?;
    // From here on, inside the disk, files are made (and paths searched)
    // as VPS root.
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(tree.uid_base));
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(tree.uid_base));
    if let Some(disk) = rescue_disk {
        let target = root.join(crate::spec::RESCUE_MOUNT);
        mount_point(&target)?;
        super::idmap::attach(&disk, &target).map_err(|source| MountError::Mount {
            what: "attach the VPS disk",
            target: target.clone(),
            source,
        })?;
        remount_adding(&target, MsFlags::MS_NODEV)?;
    }

    for dir in ["proc", "sys", "dev", "run"] {
        mount_point(&root.join(dir))?;
    }
    let proc_dir = root.join("proc");
    do_mount(
        "mount proc",
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        nodev_nosuid_noexec,
        None,
    )?;

    let sys_dir = root.join("sys");
    do_mount(
        "mount sysfs",
        Some(Path::new("sysfs")),
        &sys_dir,
        Some("sysfs"),
        nodev_nosuid_noexec | MsFlags::MS_RDONLY,
        None,
    )?;

    if let Some(version) = tree.cgroup_mount {
        setup_cgroupfs(&sys_dir.join("fs/cgroup"), version, &owner)?;
    }
    if let Some(lxcfs) = tree.lxcfs {
        lxcfs.attach(root)?;
    }
    setup_dev(&root.join("dev"), &sizes, &owner, tree.uid_base, devices)?;
    if tree.nesting {
        // The kernel lets a user namespace mount a new procfs (as podman's
        // and Docker's runtimes do for each container) only where one is
        // already fully visible to it: /proc has masks and lxcfs files
        // over it, so a second one without them is mounted here, as LXC
        // does at /dev/.lxc/proc. Mounted now, as host root, it is locked
        // like every other mount.
        let visible = root.join(crate::spec::NESTING_PROC);
        fs::create_dir_all(&visible).map_err(io("create", &visible))?;
        do_mount(
            "mount a visible proc",
            Some(Path::new("proc")),
            &visible,
            Some("proc"),
            nodev_nosuid_noexec,
            None,
        )?;
    }
    // /run is a tmpfs on every modern system (systemd mounts one where
    // there is none); made here, it has a size that fits the VPS.
    let run = root.join("run");
    do_mount(
        "mount /run",
        Some(Path::new("tmpfs")),
        &run,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("mode=755,{owner}{}", sizes.run)),
    )?;

    for file in MASKED_FILES {
        let target = proc_dir.join(file);
        if target.exists() {
            do_mount(
                "mask",
                Some(&root.join("dev/null")),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    for dir in MASKED_DIRS {
        let target = root.join(dir);
        if target.is_dir() {
            do_mount(
                "mask",
                Some(Path::new("tmpfs")),
                &target,
                Some("tmpfs"),
                nodev_nosuid_noexec | MsFlags::MS_RDONLY,
                Some("size=0,mode=555"),
            )?;
        }
    }
    for entry in READ_ONLY {
        let target = root.join(entry);
        if target.exists() {
            bind_read_only(&target)?;
        }
    }
    for entry in WRITABLE {
        let target = root.join(entry);
        if target.exists() {
            // A bind takes the flags of what it binds (read-only here):
            // remounted without MS_RDONLY, it is writable again.
            do_mount(
                "bind writable",
                Some(&target),
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
            do_mount(
                "remount writable",
                None,
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | nodev_nosuid_noexec,
                None,
            )?;
        }
    }
    Ok(())
}

/// Run by the VPS's init, in the mount namespace [`build_tree`] filled:
/// copy it into a namespace of the VPS's own (which locks every mount in
/// it, see there) and pivot into the rootfs.
pub fn enter_tree(rootfs: &Path) -> Result<(), MountError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
        MountError::Namespace(format!(
            "unshare the mount namespace: {}",
            super::namespace_error(e)
        ))
    })?;
    // pivot_root refuses a locked new root: a recursive bind of it is an
    // unlocked mount of the same tree, whose submounts stay locked.
    do_mount(
        "bind rootfs",
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    pivot(rootfs)
}

/// The /proc files lxcfs computes per cgroup, so `free`, `top`,
/// `uptime` and the like inside show the VPS's own limits and usage.
const LXCFS_FILES: &[&str] = &[
    "proc/cpuinfo",
    "proc/loadavg",
    "proc/meminfo",
    "proc/stat",
    "proc/swaps",
    "proc/uptime",
    "sys/devices/system/cpu/online",
];

/// lxcfs's view of each of [`LXCFS_FILES`] it offers, as detached mounts
/// made by the supervisor and attached over the VPS's own files (lxcfs answers according to the cgroup of the process that reads).
/// Looked up from the host: a first lookup from the VPS's new pid namespace
/// makes lxcfs fork to find that namespace's init (about 2 ms), which
/// would sit in the start path.
pub struct LxcfsFiles(Vec<(&'static str, OwnedFd)>);

impl LxcfsFiles {
    /// Clone the files of the lxcfs mounted at `lxcfs`. A file that cannot
    /// be cloned (this lxcfs does not offer it, or lxcfs died since croftd
    /// looked) is left out with a warning: the VPS then sees the host's
    /// own file there, as with lxcfs off, and still boots (a reboot from
    /// inside comes through here with no croftd to restart lxcfs).
    pub fn clone_from(lxcfs: &Path) -> LxcfsFiles {
        let mut files = Vec::with_capacity(LXCFS_FILES.len());
        for file in LXCFS_FILES {
            let source = lxcfs.join(file);
            // No stat first: each would be one more round trip to lxcfs.
            match super::idmap::detached_clone(&source) {
                Ok(tree) => files.push((*file, tree)),
                Err(Errno::ENOENT) => {}
                Err(e) => eprintln!("lxcfs file {} left out: {e}", source.display()),
            }
        }
        LxcfsFiles(files)
    }

    /// Attach each file over its namesake under `rootfs`, where it exists.
    fn attach(self, rootfs: &Path) -> Result<(), MountError> {
        for (file, tree) in self.0 {
            let target = rootfs.join(file);
            if target.exists() {
                super::idmap::attach(&tree, &target).map_err(|source| MountError::Mount {
                    what: "bind lxcfs",
                    target,
                    source,
                })?;
            }
        }
        Ok(())
    }
}

/// The VPS's own /sys/fs/cgroup. Its cgroup namespace roots every
/// hierarchy at the VPS's cgroup, so the init system sees only its subtree.
fn setup_cgroupfs(dir: &Path, version: &str, owner: &str) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if version == "v2" {
        return do_mount(
            "mount cgroup2",
            Some(Path::new("cgroup2")),
            dir,
            Some("cgroup2"),
            flags,
            None,
        );
    }
    do_mount(
        "mount /sys/fs/cgroup",
        Some(Path::new("tmpfs")),
        dir,
        Some("tmpfs"),
        flags,
        Some(&format!("mode=755,{owner}")),
    )?;
    let systemd = dir.join("systemd");
    ensure_dir(&systemd)?;
    do_mount(
        "mount name=systemd",
        Some(Path::new("cgroup")),
        &systemd,
        Some("cgroup"),
        flags,
        Some("none,name=systemd"),
    )
}

/// The size options of the VPS's RAM-backed mounts: what a machine with
/// the VPS's memory limit as its RAM has (the kernel's default for
/// /dev/shm, half the RAM; systemd's for /run, a fifth). Sized from the
/// host's RAM instead, filling them took more than the VPS's whole limit,
/// and the OOM killer then killed every process of the VPS, its init last.
struct RamSizes {
    shm: String,
    run: String,
}

impl RamSizes {
    fn for_limit(memory_limit: Option<u64>) -> RamSizes {
        match memory_limit {
            Some(limit) => RamSizes {
                shm: format!(",size={}k", (limit / 2 / 1024).max(1024)),
                run: format!(",size={}k", (limit / 5 / 1024).max(1024)),
            },
            // No limit: the kernel's default, half the host's RAM.
            None => RamSizes {
                shm: String::new(),
                run: String::new(),
            },
        }
    }
}

/// Make host device `/dev/<path>` openable by a VPS's root (not host root:
/// the node keeps its host owner), as udev's default rules make
/// /dev/net/tun and /dev/fuse on a standard host: mode 0666. Both hand
/// every opener an instance of its own, and the devices cgroup decides
/// which VPS may open them at all.
fn share_host_device(path: &str) -> Result<(), MountError> {
    let host = Path::new("/dev").join(path);
    let meta = fs::metadata(&host).map_err(|source| MountError::Io {
        what: "the host has no device node (is its module loaded?)",
        path: host.clone(),
        source,
    })?;
    if meta.permissions().mode() & 0o666 != 0o666 {
        fs::set_permissions(
            &host,
            fs::Permissions::from_mode((meta.permissions().mode() & 0o7777) | 0o666),
        )
        .map_err(io("chmod", &host))?;
    }
    Ok(())
}

/// The VPS's /dev: a tmpfs of its root's with the host `devices` (opened
/// `O_PATH`) bound in, its own devpts (ttys group `tty`, gid 5 inside),
/// /dev/shm and mqueue. `dev` is a checked [`mount_point`].
fn setup_dev(
    dev: &Path,
    sizes: &RamSizes,
    owner: &str,
    uid_base: u32,
    devices: Vec<(&str, OwnedFd)>,
) -> Result<(), MountError> {
    do_mount(
        "mount /dev",
        Some(Path::new("tmpfs")),
        dev,
        Some("tmpfs"),
        // The devices bound in below are mounts of their own, with the
        // host /dev's flags; nodev here covers what VPS root writes there.
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        Some(&format!("mode=755,size=65536k,{owner}")),
    )?;
    for (name, host) in devices {
        let target = dev.join(name);
        if let Some(parent) = target.parent().filter(|p| *p != dev) {
            ensure_dir(parent)?;
        }
        ensure_file(&target)?;
        let source = PathBuf::from(format!("/proc/self/fd/{}", host.as_raw_fd()));
        do_mount(
            "bind device",
            Some(&source),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
        )?;
    }
    let pts = dev.join("pts");
    ensure_dir(&pts)?;
    do_mount(
        "mount devpts",
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&format!(
            "newinstance,ptmxmode=0666,mode=0620,gid={}",
            uid_base + 5
        )),
    )?;
    let shm = dev.join("shm");
    ensure_dir(&shm)?;
    do_mount(
        "mount /dev/shm",
        Some(Path::new("shm")),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(&format!("mode=1777,{owner}{}", sizes.shm)),
    )?;
    let mqueue = dev.join("mqueue");
    ensure_dir(&mqueue)?;
    do_mount(
        "mount mqueue",
        Some(Path::new("mqueue")),
        &mqueue,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        std::os::unix::fs::symlink(target, &p).map_err(io("symlink", &p))?;
    }
    ensure_file(&dev.join("console"))?;
    Ok(())
}

/// `pivot_root(".", ".")` and lazily unmount the old root stacked beneath:
/// no directory for the old root is needed and nothing of the host stays
/// reachable.
fn pivot(rootfs: &Path) -> Result<(), MountError> {
    std::env::set_current_dir(rootfs).map_err(io("chdir", rootfs))?;
    nix::unistd::pivot_root(".", ".").map_err(|source| MountError::Mount {
        what: "pivot_root",
        target: rootfs.to_path_buf(),
        source,
    })?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|source| MountError::Mount {
        what: "detach old root",
        target: PathBuf::from("/"),
        source,
    })?;
    std::env::set_current_dir("/").map_err(io("chdir", Path::new("/")))
}

/// Both ends of a pty allocated from the VPS's own devpts.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open a new pty from `/dev/ptmx` as seen by the calling process.
pub fn open_pty() -> Result<Pty, MountError> {
    let path = Path::new("/dev/ptmx");
    let master: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io("open", path))?
        .into();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which is valid
    // for the duration of the call; `master` is an open pty master.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io("unlock pty", path)(std::io::Error::last_os_error()));
    }
    // TIOCGPTPEER opens the slave through the master itself, so no path in
    // a possibly hostile /dev/pts is followed.
    // SAFETY: the ioctl takes open flags by value and returns a new fd.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(io("open pty peer", path)(std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    Ok(Pty { master, slave })
}

/// Allocate the console pty and bind its slave over `/dev/console`.
pub fn open_console() -> Result<Pty, MountError> {
    let pty = open_pty()?;
    let source = PathBuf::from(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()));
    do_mount(
        "bind console",
        Some(&source),
        Path::new("/dev/console"),
        None,
        MsFlags::MS_BIND,
        None,
    )?;
    Ok(pty)
}

use std::os::unix::fs::OpenOptionsExt;
