//! lxcfs computes /proc files (meminfo, cpuinfo, stat, uptime, loadavg,
//! ...) for the cgroup of whoever reads them; bound over a VPS's own, they
//! make `free`, `top`, `uptime` and `nproc`-style tools inside show the
//! VPS's limits and usage instead of the host's.
//!
//! croftd makes sure one lxcfs runs, mounted at `<run_dir>/lxcfs`. Like the
//! supervisors it outlives croftd (VPSes hold bind mounts into it), so a
//! croftd start reuses a live one and replaces only a dead one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The mount to hand VPSes, starting lxcfs if it is not running.
pub fn ensure(run_dir: &Path) -> Result<PathBuf, String> {
    let mnt = run_dir.join("lxcfs");
    let alive = |m: &Path| std::fs::metadata(m.join("proc/meminfo")).is_ok();
    if crate::storage::btrfs::is_mount_point(&mnt) {
        // Asked at every VPS start: the pid file answers without a round
        // trip through FUSE to lxcfs (about 2 ms here).
        if running(run_dir) || alive(&mnt) {
            return Ok(mnt);
        }
        // Its lxcfs died: the mount only answers ENOTCONN. Replace it.
        let _ = nix::mount::umount2(&mnt, nix::mount::MntFlags::MNT_DETACH);
    }
    std::fs::create_dir_all(&mnt).map_err(|e| format!("create {}: {e}", mnt.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run_dir.join("lxcfs.log"))
        .map_err(|e| format!("open lxcfs.log: {e}"))?;
    // Detached from croftd (setsid -f forks it into a session of its own,
    // reparented to init), as it must outlive croftd.
    let status = Command::new("setsid")
        .args(["-f", "lxcfs", "--foreground"])
        .arg("--enable-cfs")
        .arg("--enable-loadavg")
        .arg("--pidfile")
        .arg(run_dir.join("lxcfs.pid"))
        .arg(&mnt)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .status()
        .map_err(|e| format!("run lxcfs (install Debian's lxcfs): {e}"))?;
    if !status.success() {
        return Err(format!(
            "lxcfs exited with {status} (see {})",
            run_dir.join("lxcfs.log").display()
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !alive(&mnt) {
        if Instant::now() > deadline {
            return Err(format!("lxcfs did not come up at {}", mnt.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(mnt)
}

/// Whether the lxcfs of `run_dir`'s pid file still runs.
fn running(run_dir: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(run_dir.join("lxcfs.pid")) else {
        return false;
    };
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "lxcfs")
}
