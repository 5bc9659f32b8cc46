//! What croftd hands a supervisor: everything needed to (re)start one VPS.
//!
//! The daemon writes it to `<run_dir>/spec.json`; the supervisor reads it at
//! start and again on every reboot of the VPS, so a reboot from inside needs
//! no daemon.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The number of user and group ids each VPS owns (root inside is
/// `uid_base` outside, uid 65535 inside is `uid_base + 65535`).
pub const ID_RANGE: u32 = 65536;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VpsSpec {
    pub name: String,
    pub hostname: String,
    /// Host path of the VPS's root filesystem, owned by its id range.
    pub rootfs: PathBuf,
    pub uid_base: u32,
    pub id_count: u32,
    /// argv of the VPS init.
    pub init: Vec<String>,
    pub env: Vec<String>,
    /// Signal that asks init to power off: "SIGRTMIN+3" for systemd, else
    /// usually "SIGTERM" (or what the image declares).
    pub stop_signal: String,
    /// The VPS's cgroup directories, one per hierarchy; init is attached to
    /// each before it unshares its cgroup namespace.
    pub cgroup_dirs: Vec<PathBuf>,
    /// Where the supervisor keeps its socket, pid file, console log and the
    /// record of the last exit.
    pub run_dir: PathBuf,
    /// The rootfs keeps the image's ids (0..65536) on disk and is mounted
    /// idmapped to the VPS's range; otherwise it was chowned at creation.
    #[serde(default)]
    pub idmap_rootfs: bool,
    /// How to give the VPS its own /sys/fs/cgroup for its init system:
    /// "v1" (a tmpfs holding the delegated name=systemd hierarchy) or "v2"
    /// (cgroup2, rooted at the VPS's cgroup by its cgroup namespace).
    #[serde(default)]
    pub cgroup_mount: Option<String>,
    /// The VPS's network interface, made before init runs; none: the VPS
    /// has only loopback.
    #[serde(default)]
    pub nic: Option<crate::net::NicSpec>,
    /// Its further interfaces (`eth1`..), made after `nic`.
    #[serde(default)]
    pub extra_nics: Vec<crate::net::NicSpec>,
    /// An lxcfs mount whose /proc files replace the VPS's own, so they show
    /// its limits and usage; none: the host's.
    #[serde(default)]
    pub lxcfs: Option<PathBuf>,
    /// A rescue boot: `rootfs` is a rescue system and this, the VPS's own
    /// disk, is mounted at `/mnt` inside it (idmapped like the rootfs).
    #[serde(default)]
    pub rescue_disk: Option<PathBuf>,
    /// The VPS's memory limit, which sizes its `/dev/shm` and `/run` as a
    /// machine with that much RAM has them; none: the kernel's default
    /// (half the host's RAM), as the VPS may then use all of it anyway.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// Host devices it was given beyond the usual ones (its features):
    /// bound into its /dev at every boot; its devices cgroup allows them.
    #[serde(default)]
    pub devices: Vec<HostDevice>,
    /// Where its disk's usage and limit are read, for `statfs` inside to
    /// report them (`df`); `None` leaves `statfs` to the kernel.
    #[serde(default)]
    pub disk_view: Option<DiskView>,
    /// Containers inside (`features.nesting`): a fully visible procfs at
    /// [`NESTING_PROC`] lets their runtimes mount proc of their own.
    #[serde(default)]
    pub nesting: bool,
    /// Cgroup directories the disk view server joins so its CPU time is
    /// the VPS's ([`crate::cgroup::Cgroup::cpu_dirs`]).
    #[serde(default)]
    pub cpu_cgroup_dirs: Vec<PathBuf>,
}

/// Where a VPS with `features.nesting` has a procfs with nothing masked or
/// mounted over (see `runtime/mounts.rs`).
pub const NESTING_PROC: &str = "dev/.croft/proc";

/// The files (btrfs sysfs, `qgroups/0_<subvolume id>/`) holding the bytes
/// a VPS's disk holds and the most it may hold (0: no limit), read at
/// every `statfs` inside it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskView {
    pub used: PathBuf,
    pub limit: PathBuf,
}

/// A host device a VPS may be given beyond the usual ones. Both are safe
/// to share: every open makes an instance of its own (a TUN interface in
/// the opener's network namespace, a FUSE connection its mount owns).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HostDevice {
    /// /dev/net/tun: OpenVPN, WireGuard in userspace, tailscale.
    Tun,
    /// /dev/fuse: sshfs, rclone mount.
    Fuse,
}

impl HostDevice {
    /// Its path under /dev.
    pub fn path(self) -> &'static str {
        match self {
            HostDevice::Tun => "net/tun",
            HostDevice::Fuse => "fuse",
        }
    }

    /// Its devices-cgroup rule.
    pub fn rule(self) -> &'static str {
        match self {
            HostDevice::Tun => "c 10:200 rwm",
            HostDevice::Fuse => "c 10:229 rwm",
        }
    }
}

/// Where a rescue boot mounts the VPS's own disk.
pub const RESCUE_MOUNT: &str = "mnt";

/// The files of a supervisor's run directory.
pub struct RunDir<'a>(pub &'a Path);

impl RunDir<'_> {
    pub fn spec(&self) -> PathBuf {
        self.0.join("spec.json")
    }
    pub fn socket(&self) -> PathBuf {
        self.0.join("supervisor.sock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.0.join("supervisor.pid")
    }
    pub fn console_log(&self) -> PathBuf {
        self.0.join("console.log")
    }
    pub fn exit_record(&self) -> PathBuf {
        self.0.join("exit.json")
    }
    pub fn log(&self) -> PathBuf {
        self.0.join("supervisor.log")
    }
    /// Where the VPS's cgroup is ([`crate::cgroup::CgroupLocation`] as
    /// JSON), written before it starts: a croftd started later in another
    /// cgroup of its own still finds it.
    pub fn cgroup(&self) -> PathBuf {
        self.0.join("cgroup.json")
    }
    /// Locked (flock) for as long as a supervisor for this run dir lives,
    /// from before it starts until it has exited: see [`SupervisorLock`].
    pub fn lock(&self) -> PathBuf {
        self.0.join("supervisor.lock")
    }
}

/// The fd number a supervisor finds its lock on, and the variable that
/// says so.
pub const LOCK_FD: i32 = 3;
pub const LOCK_FD_ENV: &str = "CROFT_SUPERVISOR_LOCK_FD";

/// Whether a supervisor of a run dir is alive, told without a race: croftd
/// takes an exclusive flock on `supervisor.lock` *before* it spawns the
/// supervisor and hands it the locked descriptor. A flock belongs to the
/// open file description, which croftd and the supervisor then share, so
/// the lock stays held while either lives and is released by the kernel
/// only when the supervisor (and croftd's copy) are gone, whatever killed
/// them. A croftd restarting mid-start can thus tell "still starting" from
/// "gone" without guessing from sockets and pid files.
pub struct SupervisorLock(std::fs::File);

impl SupervisorLock {
    /// Take the lock of `run_dir`; `Ok(None)` if a supervisor holds it.
    pub fn acquire(run_dir: &Path) -> std::io::Result<Option<SupervisorLock>> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(RunDir(run_dir).lock())?;
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(SupervisorLock(file)));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(err)
        }
    }

    /// Whether a supervisor of `run_dir` is alive (holds the lock).
    pub fn held(run_dir: &Path) -> bool {
        RunDir(run_dir).lock().exists() && matches!(Self::acquire(run_dir), Ok(None))
    }

    /// The descriptor to hand to the supervisor. Dropping the lock closes
    /// croftd's copy without unlocking (an explicit unlock would release
    /// the supervisor's lock too).
    pub fn fd(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }
}

/// Parse a signal name as written in specs and image metadata:
/// `SIGTERM`, `TERM`, `SIGRTMIN+3`, or a number.
pub fn parse_signal(name: &str) -> Option<i32> {
    let n = name.trim();
    if let Ok(num) = n.parse::<i32>() {
        return (1..=libc::SIGRTMAX()).contains(&num).then_some(num);
    }
    let n = n.strip_prefix("SIG").unwrap_or(n);
    if let Some(off) = n.strip_prefix("RTMIN+") {
        let off: i32 = off.parse().ok()?;
        let sig = libc::SIGRTMIN() + off;
        return (sig <= libc::SIGRTMAX()).then_some(sig);
    }
    Some(match n {
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PWR" => libc::SIGPWR,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("USR2"), Some(libc::SIGUSR2));
        assert_eq!(parse_signal("SIGRTMIN+3"), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("SIGRTMIN+99"), None);
    }
}
