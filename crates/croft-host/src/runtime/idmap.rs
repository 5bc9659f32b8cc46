//! Idmapped mounts (Linux 5.12+): the VPS sees its rootfs through a mount
//! that maps on-disk ids 0..65536 to its own id range, so an image snapshot
//! never needs a chown and stays shared with the image on disk.
//!
//! The supervisor (host root) clones the rootfs into a detached mount and
//! marks it idmapped with the VPS's user namespace; the VPS's init, inside
//! its own mount namespace, attaches it over the rootfs path. libc has the
//! syscall numbers but not these constants and the struct, so they are
//! spelled out here from <linux/mount.h>.
//!
//! The same detached clones, without an idmap, carry lxcfs's files into
//! the VPS (see [`super::mounts::LxcfsFiles`]).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// `struct mount_attr`, version 0.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cpath(path: &Path) -> Result<CString, nix::Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| nix::Error::EINVAL)
}

/// A detached copy of the mount at `path` (a bind mount of `path` that
/// exists nowhere yet), for [`attach`].
pub fn detached_clone(path: &Path) -> Result<OwnedFd, nix::Error> {
    let c = cpath(path)?;
    // SAFETY: open_tree reads a NUL-terminated path and returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: the kernel just returned this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A detached copy of the mount at `path`, idmapped through `userns` and
/// `nodev`: it is a VPS's disk, which VPS root writes, and a device node
/// that reaches it by any way must not open.
pub fn idmapped_clone(path: &Path, userns: &impl AsRawFd) -> Result<OwnedFd, nix::Error> {
    let tree = detached_clone(path)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: mount_setattr reads `attr` (valid for its full size) and the
    // empty path; it changes only the detached mount we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(nix::Error::last());
    }
    Ok(tree)
}

/// Attach a detached mount at `target` in the caller's mount namespace.
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<(), nix::Error> {
    let c = cpath(target)?;
    // SAFETY: move_mount reads two NUL-terminated paths; `tree` is a
    // detached mount we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}
