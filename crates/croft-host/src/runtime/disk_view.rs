//! `df` inside a VPS shows its disk: `statfs` and `fstatfs` on its root
//! filesystem answer with its disk limit as the size, its usage as used,
//! and what it may still write as free, as on a VM or OpenVZ's ploop,
//! instead of the whole pool that every tenant shares.
//!
//! Every process in the VPS carries a seccomp filter that sends those two
//! system calls to a listener (`SECCOMP_RET_USER_NOTIF`, see
//! [`super::security`]); the listener goes to this module's server, a
//! process the supervisor forks before anything else (so the supervisor
//! stays single-threaded and is never held up by it). For each call the
//! server finds the file asked about *without* calling into any
//! filesystem the tenant controls (a FUSE server could hang it): an fd's
//! file by its `/proc` magic link opened `O_PATH`, a path resolved from
//! the caller's root (or working directory) that may not cross a mount
//! point (`RESOLVE_IN_ROOT`, `RESOLVE_NO_XDEV`), and `statx` with
//! `AT_STATX_DONT_SYNC` to tell its device. Only a file on the VPS's own
//! disk is answered here: the kernel's figures, with the size, free and
//! available blocks taken from the disk's btrfs qgroup (its limit and
//! usage, as sysfs shows them live). Anything else (another filesystem, no
//! limit, an error) is left to the kernel
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`), which answers as it always does.
//!
//! The caller's memory is read and written through `/proc/PID/mem`,
//! opened before the notification is checked still valid, so a pid reused
//! meanwhile is never written to.

use crate::spec::DiskView;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::RuntimeError;

/// The longest path read from a caller (the kernel's `PATH_MAX`).
const PATH_MAX: usize = 4096;

/// Hand a statfs filter's `listener` to the server at the other end of
/// `server` (called by the process that installed the filter).
pub(super) fn hand_over(server: &OwnedFd, listener: OwnedFd) -> std::io::Result<()> {
    let fds = [listener.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    socket::sendmsg::<()>(
        server.as_raw_fd(),
        &[IoSlice::new(b"L")],
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Fork the disk view server of the VPS whose disk is `rootfs` (on the
/// host) with its figures in `view`. Returns the socket listeners are
/// handed over on ([`super::SeccompProgram::with_disk_view`]); the server
/// ends when every copy of it is closed (the supervisor and what it
/// forked are gone). Call it while the process is single-threaded.
pub fn spawn_server(
    view: &DiskView,
    rootfs: &Path,
    cpu_cgroups: &[PathBuf],
) -> Result<OwnedFd, RuntimeError> {
    let meta = std::fs::metadata(rootfs)
        .map_err(|e| RuntimeError::Child(format!("disk view: stat {}: {e}", rootfs.display())))?;
    let dev = std::os::unix::fs::MetadataExt::dev(&meta);
    let disk = (libc::major(dev), libc::minor(dev));
    let (ours, theirs) = socket::socketpair(
        socket::AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RuntimeError::Child(format!("disk view: socketpair: {e}")))?;
    // SAFETY: the caller is single-threaded, so the child may run any code;
    // it never returns (it exits).
    match unsafe { nix::unistd::fork() }.map_err(RuntimeError::Fork)? {
        nix::unistd::ForkResult::Parent { .. } => Ok(theirs),
        nix::unistd::ForkResult::Child => {
            drop(theirs);
            let opened = prepare_server(&ours).and_then(|()| {
                let open = |p: &Path| File::open(p).map_err(|e| format!("open {}: {e}", p.display()));
                Ok(Disk {
                    dev: disk,
                    used: open(&view.used)?,
                    limit: open(&view.limit)?,
                })
            });
            let code = match opened {
                Ok(disk) => {
                    serve(&ours, &disk, cpu_cgroups.to_vec());
                    0
                }
                Err(e) => {
                    eprintln!("croft disk view: {e}");
                    1
                }
            };
            // SAFETY: _exit ends the server without running the
            // supervisor's destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// The server keeps nothing of the supervisor's but stdio (its log) and
/// its socket, dies with the supervisor and with nothing else (the signals
/// a host shutdown sends everyone are blocked: the VPS still needs its
/// answers while it powers off), and cannot be ptraced from the VPS.
fn prepare_server(socket: &OwnedFd) -> Result<(), String> {
    crate::fds::close_all_except(&[socket.as_raw_fd()]).map_err(|e| format!("close descriptors: {e}"))?;
    super::security::make_non_dumpable().map_err(|e| format!("non-dumpable: {e}"))?;
    nix::sys::signal::SigSet::all()
        .thread_block()
        .map_err(|e| format!("block signals: {e}"))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("death signal: {e}"))
}

/// Spend the VPS's CPU time, not the host's: join `cpu_cgroups` (never
/// the VPS's memory or pids cgroups, where the VPS's own load could kill
/// the server). Done at the first call answered, not at the VPS's start:
/// a v1 cgroup move waits for an RCU grace period and holds off every fork
/// meanwhile, milliseconds a start would otherwise pay. A failed join
/// leaves the server where it was; the answers are the same.
fn join_cpu_cgroups(cpu_cgroups: &mut Vec<PathBuf>) {
    for dir in cpu_cgroups.drain(..) {
        let procs = dir.join("cgroup.procs");
        if let Err(e) = std::fs::write(&procs, std::process::id().to_string()) {
            eprintln!("croft disk view: join {}: {e}", procs.display());
        }
    }
}

/// The VPS's disk: its device (major, minor) as `stat` shows its files,
/// and the files of its figures, kept open.
struct Disk {
    dev: (u32, u32),
    used: File,
    limit: File,
}

/// Serve notifications from every listener handed over on `control` until
/// the supervisor's side is gone, in the VPS's `cpu_cgroups` from the
/// first one on.
fn serve(control: &OwnedFd, disk: &Disk, mut cpu_cgroups: Vec<PathBuf>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut listeners: Vec<OwnedFd> = Vec::new();
    loop {
        let mut fds = vec![PollFd::new(control.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            listeners
                .iter()
                .map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => return,
        }
        let events: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        let mut gone = Vec::new();
        for (i, revents) in events.iter().enumerate().skip(1) {
            let listener = listeners[i - 1].as_fd();
            if revents.contains(PollFlags::POLLIN) {
                join_cpu_cgroups(&mut cpu_cgroups);
                answer_one(listener, disk);
            } else if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                // Every process using its filter has exited.
                gone.push(i - 1);
            }
        }
        for i in gone.into_iter().rev() {
            listeners.remove(i);
        }
        if events[0].contains(PollFlags::POLLIN) {
            match receive_listener(control) {
                Some(Some(listener)) => {
                    wake_on_the_same_cpu(listener.as_fd());
                    listeners.push(listener);
                }
                Some(None) => {}
                None => return,
            }
        } else if events[0].intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            return;
        }
    }
}

/// Ask the kernel to hand a notification from the caller to this server,
/// and the answer back, on the caller's CPU (Linux 6.6+): the round trip
/// then costs no cross-CPU wakeup, which in a VM is an exit to the
/// hypervisor. Where the kernel lacks it, wakeups stay as they are.
fn wake_on_the_same_cpu(listener: BorrowedFd) {
    /// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` from <linux/seccomp.h>.
    const SYNC_WAKE_UP: u64 = 1;
    // SAFETY: NOTIF_SET_FLAGS takes the flags as its argument's value; no
    // memory is passed.
    unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            SYNC_WAKE_UP,
        )
    };
}

/// A listener sent on `control`: `None` when the other side is gone,
/// `Some(None)` for a message without one.
fn receive_listener(control: &OwnedFd) -> Option<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = socket::recvmsg::<()>(
        control.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ok()?;
    if msg.bytes == 0 {
        return None;
    }
    let mut received = None;
    // Truncated control data (no descriptor slot left): the message
    // carried nothing usable, but the supervisor is still there.
    let Ok(cmsgs) = msg.cmsgs() else {
        return Some(None);
    };
    for cmsg in cmsgs {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel just installed this descriptor in this
                // process for us; nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(fd);
            }
        }
    }
    Some(received)
}

/// How a notified call is answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// The figures were written to the caller: the call returns 0.
    Done,
    /// The call fails with this errno.
    Fail(i32),
    /// The kernel performs the call itself.
    Kernel,
}

/// Take one notification off `listener` and answer it.
fn answer_one(listener: BorrowedFd, disk: &Disk) {
    // SAFETY: seccomp_notif is plain data; all zeroes is what the kernel
    // wants to be handed.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV writes a seccomp_notif through a valid pointer.
    if unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
        // The caller went away (ENOENT) or was interrupted.
        return;
    }
    let answer = answer(listener, &req, disk).unwrap_or(Answer::Kernel);
    // SAFETY: seccomp_notif_resp is plain data.
    let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    resp.id = req.id;
    match answer {
        Answer::Done => {}
        Answer::Fail(errno) => resp.error = -errno,
        Answer::Kernel => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    }
    // SAFETY: NOTIF_SEND reads a seccomp_notif_resp through a valid
    // pointer. A caller killed meanwhile makes it fail (ENOENT): nothing
    // to do.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
}

/// Whether notification `id` still waits for an answer (its caller alive
/// and in the call).
fn still_waiting(listener: BorrowedFd, id: u64) -> bool {
    // SAFETY: NOTIF_ID_VALID reads a u64 through a valid pointer.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// The answer to `req`; `None` (on any error) leaves the call to the
/// kernel.
fn answer(listener: BorrowedFd, req: &libc::seccomp_notif, disk: &Disk) -> Option<Answer> {
    // No limit: the pool's figures are the honest ones.
    let limit = read_number(&disk.limit)?;
    if limit == 0 {
        return None;
    }
    let pid = req.pid;
    let args = req.data.args;
    let file = match i64::from(req.data.nr) {
        libc::SYS_statfs => {
            let path = read_path(&Caller(pid as i32), args[0])?;
            // What was read is the caller's only if it still waits (its
            // pid not reused since the notification).
            if !still_waiting(listener, req.id) || path.is_empty() {
                return None;
            }
            // Absolute: from the caller's root; relative: from its working
            // directory, for a caller whose root is the VPS's (a relative
            // `..` is stopped only by the mount's top, not by a chroot).
            // Either on the VPS's disk, or left to the kernel.
            let absolute = path.starts_with(b"/");
            let root = open_path(Path::new(&format!("/proc/{pid}/root")))?;
            let Identity {
                dev: root_dev,
                ino: root_ino,
                uid: root_owner,
            } = identity(root.as_fd())?;
            if root_dev != disk.dev || (!absolute && root_ino != SUBVOLUME_TOP) {
                return None;
            }
            let start = if absolute {
                root
            } else {
                open_path(Path::new(&format!("/proc/{pid}/cwd")))?
            };
            if identity(start.as_fd())?.dev != disk.dev {
                return None;
            }
            // Resolved with the caller's ids and groups, so a directory it
            // may not search stays closed (as root, an answer would tell it
            // what exists there).
            let creds = Credentials::of(pid)?;
            // The VPS's root, with its file capabilities (most callers):
            // root's own resolution gives the same answer, without a
            // change of credentials.
            let as_root = creds.uid == root_owner && creds.file_caps;
            let _as_caller = if as_root { None } else { Some(creds.assume()?) };
            resolve_on_mount(start.as_fd(), &path, absolute)?
        }
        libc::SYS_fstatfs => open_path(Path::new(&format!("/proc/{pid}/fd/{}", args[0] as i32)))?,
        _ => return None,
    };
    if identity(file.as_fd())?.dev != disk.dev {
        return None;
    }
    let used = read_number(&disk.used)?;
    // SAFETY: statfs is plain data, filled in by fstatfs below.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes a struct statfs through a valid pointer; the
    // descriptor is open. The file is on the VPS's btrfs disk, so this
    // never waits on a tenant's filesystem.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } < 0 {
        return None;
    }
    shape(&mut st, limit, used);
    // SAFETY: viewing a plain-data struct as its bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&st as *const libc::statfs).cast::<u8>(),
            std::mem::size_of::<libc::statfs>(),
        )
    };
    // Written through its mem file, opened before the check that the
    // caller still waits: the write then reaches the caller, never a
    // process that took its pid.
    let mem = File::options()
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .ok()?;
    if !still_waiting(listener, req.id) {
        return None;
    }
    match mem.write_at(bytes, args[1]) {
        Ok(n) if n == bytes.len() => Some(Answer::Done),
        _ => Some(Answer::Fail(libc::EFAULT)),
    }
}

/// Memory that can be read at an address: a caller's (or, in tests, a
/// file's).
trait Memory {
    fn read_at(&self, buf: &mut [u8], addr: u64) -> std::io::Result<usize>;
}

/// A caller's memory, read with `process_vm_readv` (no descriptor to open).
struct Caller(i32);

impl Memory for Caller {
    fn read_at(&self, buf: &mut [u8], addr: u64) -> std::io::Result<usize> {
        use nix::sys::uio::{process_vm_readv, RemoteIoVec};
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: buf.len(),
        }];
        let local = &mut [IoSliceMut::new(buf)];
        process_vm_readv(nix::unistd::Pid::from_raw(self.0), local, &remote).map_err(std::io::Error::from)
    }
}

impl Memory for File {
    fn read_at(&self, buf: &mut [u8], addr: u64) -> std::io::Result<usize> {
        FileExt::read_at(self, buf, addr)
    }
}

/// The kernel's figures of the pool made the disk's: `limit` bytes in all,
/// `used` of them used, free and available no more than the limit leaves
/// (nor than the pool has).
fn shape(st: &mut libc::statfs, limit: u64, used: u64) {
    let block = u64::try_from(st.f_bsize).ok().filter(|b| *b > 0).unwrap_or(4096);
    let total = limit / block;
    let left = total.saturating_sub(used.div_ceil(block));
    st.f_blocks = total;
    st.f_bfree = st.f_bfree.min(left);
    st.f_bavail = st.f_bavail.min(left);
}

/// A NUL-terminated path at `addr` in the caller's memory, read a page at
/// a time (the string may end just before an unmapped page).
fn read_path(mem: &dyn Memory, addr: u64) -> Option<Vec<u8>> {
    let mut path = Vec::new();
    let mut at = addr;
    while path.len() < PATH_MAX {
        let to_page_end = 4096 - (at % 4096) as usize;
        let mut chunk = vec![0u8; to_page_end.min(PATH_MAX - path.len())];
        let n = mem.read_at(&mut chunk, at).ok()?;
        if n == 0 {
            return None;
        }
        if let Some(end) = chunk[..n].iter().position(|b| *b == 0) {
            path.extend_from_slice(&chunk[..end]);
            return Some(path);
        }
        path.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    None
}

/// `path` opened `O_PATH` (a `/proc` magic link followed without calling
/// into the filesystem it leads to).
fn open_path(path: &Path) -> Option<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .ok()
        .map(OwnedFd::from)
}

/// `path` as the caller gave it resolved from `start` (its root for an
/// absolute path, its working directory for a relative one) without
/// leaving `start`'s mount: crossing into any other mount (one a tenant's
/// FUSE server answers, /proc, a tmpfs, and for a relative path also `..`
/// above the VPS's root or a link to an absolute path) fails at once,
/// before that filesystem is asked anything. An absolute path resolves
/// inside the caller's root (`RESOLVE_IN_ROOT`): `..` and links stop there.
fn resolve_on_mount(start: BorrowedFd, path: &[u8], absolute: bool) -> Option<OwnedFd> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::unix::ffi::OsStrExt;
    let mut resolve = ResolveFlag::RESOLVE_NO_XDEV | ResolveFlag::RESOLVE_NO_MAGICLINKS;
    if absolute {
        resolve |= ResolveFlag::RESOLVE_IN_ROOT;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(resolve);
    let fd = openat2(start.as_raw_fd(), std::ffi::OsStr::from_bytes(path), how).ok()?;
    // SAFETY: openat2 just returned this descriptor; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The inode number of a btrfs subvolume's top directory: a VPS's `/`.
const SUBVOLUME_TOP: u64 = 256;

/// What [`identity`] tells of a file.
struct Identity {
    /// Its device (major, minor).
    dev: (u32, u32),
    ino: u64,
    /// Its owner, a host uid.
    uid: u32,
}

/// The device, inode and owner of the file `fd` is open on, from cached
/// attributes only (`AT_STATX_DONT_SYNC`: a FUSE server is not asked).
fn identity(fd: BorrowedFd) -> Option<Identity> {
    // SAFETY: statx is plain data, filled in below.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx reads the empty C string and writes a struct statx
    // through valid pointers; the descriptor is open.
    let rc = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_DONT_SYNC,
            libc::STATX_INO | libc::STATX_UID,
            &mut stx,
        )
    };
    (rc == 0).then_some(Identity {
        dev: (stx.stx_dev_major, stx.stx_dev_minor),
        ino: stx.stx_ino,
        uid: stx.stx_uid,
    })
}

/// The filesystem ids and groups of a caller (as the host sees them, from
/// its /proc status), and whether it may ignore file permissions
/// (`CAP_DAC_OVERRIDE` and `CAP_DAC_READ_SEARCH` in effect).
struct Credentials {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    file_caps: bool,
}

impl Credentials {
    fn of(pid: u32) -> Option<Credentials> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).map(|rest| {
                rest.split_whitespace()
                    .filter_map(|v| v.parse::<u32>().ok())
                    .collect::<Vec<_>>()
            })
        };
        // Uid/Gid: real, effective, saved, filesystem.
        const DAC_CAPS: u64 = (1 << 1) | (1 << 2);
        let caps = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())?;
        Some(Credentials {
            uid: *field("Uid:")?.get(3)?,
            gid: *field("Gid:")?.get(3)?,
            groups: field("Groups:")?,
            file_caps: caps & DAC_CAPS == DAC_CAPS,
        })
    }

    /// Take these ids for file access until the guard is dropped. A
    /// filesystem uid other than 0 also clears root's file capabilities
    /// (the kernel's rule), so permissions are checked as the caller's.
    fn assume(&self) -> Option<AsCaller> {
        use nix::unistd::{setfsgid, setfsuid, setgroups, Gid, Uid};
        let groups: Vec<Gid> = self.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&groups).ok()?;
        let guard = AsCaller;
        setfsgid(Gid::from_raw(self.gid));
        setfsuid(Uid::from_raw(self.uid));
        // setfsuid reports no error: read back that it took.
        (setfsuid(Uid::from_raw(self.uid)) == Uid::from_raw(self.uid)).then_some(guard)
    }
}

/// Back to the server's own ids (root's) when dropped.
struct AsCaller;

impl Drop for AsCaller {
    fn drop(&mut self) {
        use nix::unistd::{setfsgid, setfsuid, setgroups, Gid, Uid};
        setfsuid(Uid::from_raw(0));
        setfsgid(Gid::from_raw(0));
        let _ = setgroups(&[]);
    }
}

/// The decimal number in a sysfs file kept open (read anew from its
/// start: sysfs makes the text at each read).
fn read_number(file: &File) -> Option<u64> {
    let mut buf = [0u8; 32];
    let n = FileExt::read_at(file, &mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(blocks: u64, free: u64) -> libc::statfs {
        // SAFETY: statfs is plain data.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        st.f_bsize = 4096;
        st.f_blocks = blocks;
        st.f_bfree = free;
        st.f_bavail = free;
        st
    }

    #[test]
    fn the_pool_is_shown_as_the_disk_its_limit_allows() {
        // A 100 GiB pool with 60 GiB free; a 10 GiB disk using 3 GiB.
        let mut st = pool(100 << 18, 60 << 18);
        shape(&mut st, 10 << 30, 3 << 30);
        assert_eq!(st.f_blocks, 10 << 18);
        assert_eq!(st.f_bfree, 7 << 18);
        assert_eq!(st.f_bavail, 7 << 18);
        // The pool nearly full: free is what the pool has, not the limit.
        let mut st = pool(100 << 18, 1 << 18);
        shape(&mut st, 10 << 30, 3 << 30);
        assert_eq!((st.f_blocks, st.f_bavail), (10 << 18, 1 << 18));
        // Past its limit (qgroups are counted at commit): nothing free.
        let mut st = pool(100 << 18, 60 << 18);
        shape(&mut st, 1 << 30, (1 << 30) + 5);
        assert_eq!((st.f_bfree, st.f_bavail), (0, 0));
    }

    #[test]
    fn a_path_is_read_across_pages_and_must_end() {
        let mut f = tempfile::tempfile().unwrap();
        use std::io::Write;
        let mut data = vec![b'a'; 8192];
        data[4090..4096].copy_from_slice(b"/roo/x");
        data[4096..4100].copy_from_slice(b"t/y\0");
        f.write_all(&data).unwrap();
        assert_eq!(read_path(&f, 4090).unwrap(), b"/roo/xt/y");
        // No NUL within PATH_MAX: refused (left to the kernel).
        assert_eq!(read_path(&f, 0), None);
    }
}
