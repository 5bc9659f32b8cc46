//! Capabilities and seccomp for everything that runs inside a VPS.
//!
//! Root inside a VPS is root of its own user namespace: the kernel already
//! refuses it anything that would touch host-owned resources. These two
//! layers are defence in depth against kernel bugs in rarely needed
//! interfaces, and keep root able to do root things in its own VPS (apt,
//! setuid binaries, mounting tmpfs and proc), so `no_new_privs` is NOT set.

use caps::{CapSet, Capability};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// Capabilities removed from the bounding set (the set Incus and LXC drop).
pub const DROPPED_CAPS: &[Capability] = &[
    Capability::CAP_SYS_MODULE,
    Capability::CAP_SYS_RAWIO,
    Capability::CAP_SYS_TIME,
    Capability::CAP_MAC_ADMIN,
    Capability::CAP_MAC_OVERRIDE,
    Capability::CAP_AUDIT_CONTROL,
    Capability::CAP_SYSLOG,
    Capability::CAP_WAKE_ALARM,
    Capability::CAP_BLOCK_SUSPEND,
];

/// System calls that fail with EPERM inside a VPS: kernel modules, kexec,
/// file handles ("shocker"), port I/O,
/// swap, process accounting, the system clock, perf and the kernel log
/// (host-wide, and readable without privilege wherever the host leaves
/// `kernel.dmesg_restrict` at 0); and, as Docker's and Podman's default
/// profiles do, io_uring (a large kernel attack surface behind most of
/// its recent privilege escalations; programs fall back to plain system
/// calls) and userfaultfd (stalls kernel copies at will, the building
/// block of many kernel race exploits).
pub const DENIED_SYSCALLS: &[i64] = &[
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_open_by_handle_at,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_perf_event_open,
    libc::SYS_lookup_dcookie,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_userfaultfd,
];

/// System calls of the kernel keyring (not namespaced), which fail with
/// ENOSYS inside a VPS, as under LXC's default policy: "not there" lets a
/// container runtime inside (crun, runc) go on without a session keyring,
/// where EPERM would stop it.
pub const KEYRING_SYSCALLS: &[i64] = &[libc::SYS_keyctl, libc::SYS_add_key, libc::SYS_request_key];

/// ioctl requests that fail with EPERM inside a VPS: creating btrfs
/// subvolumes and snapshots. A new subvolume gets a qgroup of its own,
/// outside the VPS's disk limit, so a tenant could write past
/// `limits.disk` into one and fill the pool. (systemd and other tools
/// fall back to a plain directory on EPERM.) `_IOW(0x94, nr, 4096)`.
const DENIED_IOCTLS: &[u32] = &[
    0x5000_9401, // BTRFS_IOC_SNAP_CREATE
    0x5000_940e, // BTRFS_IOC_SUBVOL_CREATE
    0x5000_9417, // BTRFS_IOC_SNAP_CREATE_V2
    0x5000_9418, // BTRFS_IOC_SUBVOL_CREATE_V2
];

/// System calls answered by the disk view ([`super::disk_view`]) when a
/// VPS has one: `statfs` and `fstatfs` (what `df` and `statvfs` make).
pub const STATFS_SYSCALLS: &[i64] = &[libc::SYS_statfs, libc::SYS_fstatfs];

/// The compiled BPF filters, built once in the supervisor and installed in
/// every process it starts inside the VPS.
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    program: BpfProgram,
    /// [`KEYRING_SYSCALLS`] refused with ENOSYS.
    keyring: BpfProgram,
    /// With a disk view: the filter that sends [`STATFS_SYSCALLS`] to a
    /// listener, and the socket its listener is handed over on.
    statfs: Option<(BpfProgram, Arc<OwnedFd>)>,
}

fn target_arch() -> Result<TargetArch, super::RuntimeError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err(super::RuntimeError::Seccomp("unsupported architecture".into()))
    }
}

/// A filter that sends [`STATFS_SYSCALLS`] to its listener and allows the
/// rest. seccompiler has no user-notification action: the filter is
/// compiled with `Trap` on a match, and that one return value is then
/// changed into `SECCOMP_RET_USER_NOTIF` (nothing else returns it).
fn statfs_notify_program() -> Result<BpfProgram, super::RuntimeError> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        STATFS_SYSCALLS.iter().map(|nr| (*nr, Vec::new())).collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trap, target_arch()?)
        .map_err(|e| super::RuntimeError::Seccomp(e.to_string()))?;
    let mut program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| super::RuntimeError::Seccomp(e.to_string()))?;
    const BPF_RET_K: u16 = 0x06;
    let mut notifies = 0;
    for insn in program.iter_mut() {
        if insn.code == BPF_RET_K && insn.k == libc::SECCOMP_RET_TRAP {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
            notifies += 1;
        }
    }
    if notifies == 0 {
        return Err(super::RuntimeError::Seccomp(
            "the statfs filter has no match to notify on".into(),
        ));
    }
    Ok(program)
}

/// Refuse (EPERM) every x32 system call: on x86_64 they arrive with the
/// native architecture and the number | 0x40000000, so a filter that
/// matches numbers alone (as seccompiler's does) would let `init_module`
/// or `keyctl` through under their x32 numbers on a kernel with x32
/// enabled. Three instructions put before the filter: load the number,
/// and return EPERM at or above the x32 bit. seccompiler's jumps are
/// relative, so they stay right.
fn refuse_x32(program: &mut BpfProgram) {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JGE_K: u16 = 0x35;
    const BPF_RET_K: u16 = 0x06;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let guard = [
        // seccomp_data.nr, at offset 0.
        seccompiler::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        seccompiler::sock_filter {
            code: BPF_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        seccompiler::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
    ];
    program.splice(0..0, guard);
}

impl SeccompProgram {
    pub fn new() -> Result<SeccompProgram, super::RuntimeError> {
        let arch = target_arch()?;
        let mut rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
            DENIED_SYSCALLS.iter().map(|nr| (*nr, Vec::new())).collect();
        let ioctl_rules = DENIED_IOCTLS
            .iter()
            .map(|request| {
                // The kernel reads the request as a 32-bit int: compare the
                // low 32 bits only, so set high bits cannot slip past.
                let cond = seccompiler::SeccompCondition::new(
                    1,
                    seccompiler::SeccompCmpArgLen::Dword,
                    seccompiler::SeccompCmpOp::Eq,
                    u64::from(*request),
                )?;
                seccompiler::SeccompRule::new(vec![cond])
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| super::RuntimeError::Seccomp(e.to_string()))?;
        rules.insert(libc::SYS_ioctl, ioctl_rules);
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )
        .map_err(|e| super::RuntimeError::Seccomp(e.to_string()))?;
        let mut program: BpfProgram = filter
            .try_into()
            .map_err(|e: seccompiler::BackendError| super::RuntimeError::Seccomp(e.to_string()))?;
        refuse_x32(&mut program);
        let keyring = SeccompFilter::new(
            KEYRING_SYSCALLS.iter().map(|nr| (*nr, Vec::new())).collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
        .map_err(|e| super::RuntimeError::Seccomp(e.to_string()))?
        .try_into()
        .map_err(|e: seccompiler::BackendError| super::RuntimeError::Seccomp(e.to_string()))?;
        Ok(SeccompProgram {
            program,
            keyring,
            statfs: None,
        })
    }

    /// The descriptor [`lock_down`] needs open (the disk view server's
    /// socket), for code that closes the others first.
    pub fn needs_fd(&self) -> Option<RawFd> {
        self.statfs.as_ref().map(|(_, server)| server.as_raw_fd())
    }

    /// Also send `statfs` and `fstatfs` to the disk view server at the
    /// other end of `server` (see [`super::disk_view`]).
    pub fn with_disk_view(mut self, server: OwnedFd) -> Result<SeccompProgram, super::RuntimeError> {
        self.statfs = Some((statfs_notify_program()?, Arc::new(server)));
        Ok(self)
    }
}

/// Install `program` in the calling thread with `flags`; returns what the
/// kernel returns (a listener descriptor with `NEW_LISTENER`).
fn install(program: &BpfProgram, flags: libc::c_ulong) -> Result<libc::c_long, String> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        // seccompiler's sock_filter is #[repr(C)] with the kernel's layout
        // {u16 code, u8 jt, u8 jf, u32 k}, identical to libc's.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at a live, correctly laid out BPF program for
    // the duration of the call; the kernel copies it. Installing a filter
    // without no_new_privs is allowed because we hold CAP_SYS_ADMIN in our
    // user namespace.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(format!(
            "install seccomp filter: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(rc)
}

/// Make the calling process non-dumpable. VPS root holds CAP_SYS_PTRACE
/// in its own user namespace; a non-dumpable process is reachable only
/// with that capability in the namespace its memory was created in (the
/// host's), so VPS root can neither ptrace it nor open its /proc/PID
/// files (fd, mem, environ, cwd), even once it has joined the VPS. Kept
/// across fork and clone and by every change of ids; only an execve makes
/// a process dumpable again, and nothing croft starts in a VPS execs
/// before it is confined (the VPS's ids, bounding set, seccomp, no host
/// descriptor).
pub fn make_non_dumpable() -> Result<(), nix::Error> {
    nix::sys::prctl::set_dumpable(false)
}

/// Drop [`DROPPED_CAPS`] from the bounding set and install the filters;
/// with a disk view, hand the statfs filter's listener to its server.
/// Called last before exec, as root of the VPS's user namespace.
pub fn lock_down(program: &SeccompProgram) -> Result<(), String> {
    for cap in DROPPED_CAPS {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|e| format!("drop {cap}: {e}"))?;
    }
    install(&program.program, 0)?;
    install(&program.keyring, 0)?;
    if let Some((statfs, server)) = &program.statfs {
        let fd = install(statfs, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
        // SAFETY: the kernel just returned this descriptor; nothing else
        // owns it.
        let listener = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        super::disk_view::hand_over(server, listener)
            .map_err(|e| format!("hand the statfs listener to the disk view: {e}"))?;
    }
    Ok(())
}

/// Run `clone` (which creates the VPS's user namespace) with the effective
/// uid `owner`, the host uid VPS root maps to, keeping every capability.
///
/// The kernel charges every namespace and inotify instance or watch made
/// inside a user namespace, at the host level, to the uid that *owns*
/// that namespace, against the host's `user.max_*` sysctls. Owned by host
/// root (uid 0), all VPSes would draw on one budget shared with host root
/// itself: one VPS holding ~96k user namespaces made every launch on the
/// host fail. Owned by its own uid base, each VPS has a budget of its own.
///
/// `SECBIT_NO_SETUID_FIXUP` keeps the effective capabilities across the
/// uid change (the clone needs them); the caller's securebits and uid are
/// restored before returning, and the cloned child must call
/// [`clear_securebits`] before anything else. Should restoring fail after
/// a clone that worked, the error is returned all the same: the caller
/// drops its end of the sync socket and the waiting child exits.
pub fn as_namespace_owner<T>(owner: u32, clone: impl FnOnce() -> T) -> Result<T, nix::Error> {
    // SAFETY: PR_GET_SECUREBITS takes no pointer and returns the bits.
    let saved = unsafe { libc::prctl(libc::PR_GET_SECUREBITS) };
    if saved < 0 {
        return Err(nix::Error::last());
    }
    set_securebits(saved as libc::c_ulong | SECBIT_NO_SETUID_FIXUP)?;
    let keep = nix::unistd::Uid::from_raw(u32::MAX); // -1: leave unchanged
    let switched = nix::unistd::setresuid(keep, nix::unistd::Uid::from_raw(owner), keep);
    let result = switched.map(|()| clone());
    // The real and saved uid stayed 0, so taking euid 0 back is allowed.
    let restored = nix::unistd::setresuid(keep, nix::unistd::Uid::from_raw(0), keep)
        .and_then(|()| set_securebits(saved as libc::c_ulong));
    match (result, restored) {
        (Ok(value), Ok(())) => Ok(value),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

/// Clear every securebit: the VPS's own uid changes (login dropping to a
/// user) must drop capabilities as they do on any Linux system.
pub fn clear_securebits() -> Result<(), nix::Error> {
    set_securebits(0)
}

const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;

fn set_securebits(bits: libc::c_ulong) -> Result<(), nix::Error> {
    // SAFETY: PR_SET_SECUREBITS takes the bits by value; no pointers.
    if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_compiles_with_every_denied_syscall() {
        let p = SeccompProgram::new().unwrap();
        // One comparison per denied syscall plus the arch check and the
        // default action: a filter that silently lost its rules would be
        // much shorter.
        assert!(
            p.program.len() > DENIED_SYSCALLS.len(),
            "{} instructions",
            p.program.len()
        );
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x32_system_calls_are_refused_before_anything_else() {
        let p = SeccompProgram::new().unwrap();
        let head: Vec<(u16, u32)> = p.program.iter().take(3).map(|i| (i.code, i.k)).collect();
        assert_eq!(
            head,
            [
                (0x20, 0),
                (0x35, 0x4000_0000),
                (0x06, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32)
            ]
        );
    }

    #[test]
    fn the_statfs_filter_notifies_on_statfs_alone() {
        let program = statfs_notify_program().unwrap();
        let returns: Vec<u32> = program.iter().filter(|i| i.code == 0x06).map(|i| i.k).collect();
        assert!(returns.contains(&libc::SECCOMP_RET_USER_NOTIF), "{returns:x?}");
        assert!(returns.contains(&libc::SECCOMP_RET_ALLOW), "{returns:x?}");
        assert!(!returns.contains(&libc::SECCOMP_RET_TRAP), "{returns:x?}");
    }
}
