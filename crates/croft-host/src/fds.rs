//! Descriptors that must not cross from the host into a VPS.
//!
//! Whatever a process holds open when it forks or execs, its child holds
//! too unless the descriptor is close-on-exec, and croft cannot vouch for
//! what it inherited: croftd may have been started with a host pipe or
//! terminal open (a shell, a service manager, a test harness). So croftd
//! marks everything it inherited close-on-exec at start, the supervisor
//! closes everything it did not ask for, and every process that enters a
//! VPS keeps only the descriptors it needs for its next step.

use std::os::fd::RawFd;

/// Close every descriptor from 3 up except those in `keep`.
///
/// Only for a process about to exec or to exit without unwinding: an
/// `OwnedFd` elsewhere in the process whose number is closed here would
/// close whatever later reuses that number when it is dropped.
pub fn close_all_except(keep: &[RawFd]) -> std::io::Result<()> {
    // No allocation: this runs in forked children.
    let mut first: RawFd = 3;
    while let Some(next_kept) = keep.iter().copied().filter(|fd| *fd >= first).min() {
        if next_kept > first {
            close_range(first, next_kept - 1, 0)?;
        }
        first = next_kept + 1;
    }
    close_range(first, RawFd::MAX, 0)
}

/// Mark every descriptor from `first` up close-on-exec, leaving it open.
pub fn cloexec_from(first: RawFd) -> std::io::Result<()> {
    close_range(first, RawFd::MAX, libc::CLOSE_RANGE_CLOEXEC)
}

fn close_range(first: RawFd, last: RawFd, flags: libc::c_uint) -> std::io::Result<()> {
    // SAFETY: close_range takes two descriptor numbers and flags by value
    // and touches no memory of ours; closing is safe under the contract
    // of the callers above (see `close_all_except`).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            flags,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only queries the descriptor table.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    #[test]
    fn closes_everything_but_what_is_kept_in_a_child() {
        let kept = std::fs::File::open("/dev/null").unwrap();
        let dropped = std::fs::File::open("/dev/null").unwrap();
        let also_dropped = std::fs::File::open("/dev/null").unwrap();
        // In a forked child: the test harness's own descriptors must not
        // be closed under it.
        // SAFETY: the child only makes system calls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = close_all_except(&[kept.as_raw_fd(), 1, 2]).is_ok()
                    && is_open(kept.as_raw_fd())
                    && !is_open(dropped.as_raw_fd())
                    && !is_open(also_dropped.as_raw_fd())
                    && is_open(1);
                // SAFETY: leaves the forked child without unwinding.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }

    #[test]
    fn cloexec_leaves_descriptors_open_but_marked() {
        let f = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: clears FD_CLOEXEC on a descriptor we own.
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFD, 0) };
        // In a forked child, so no other test's descriptors are marked.
        // SAFETY: the child only makes system calls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = cloexec_from(f.as_raw_fd()).is_ok() && is_open(f.as_raw_fd()) && {
                    // SAFETY: F_GETFD only queries the descriptor table.
                    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFD) };
                    flags & libc::FD_CLOEXEC == libc::FD_CLOEXEC
                };
                // SAFETY: leaves the forked child without unwinding.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
