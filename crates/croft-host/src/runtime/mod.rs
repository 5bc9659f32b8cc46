//! The VPS runtime: turning a [`VpsSpec`] into a running, isolated init,
//! and entering a running VPS to execute a command.
//!
//! Both run inside the supervisor process, never inside croftd. The start
//! sequence is short and in one place ([`start`]); each step is a function
//! in a sibling module:
//!
//! 1. the supervisor opens the VPS cgroups' attach files and forks the
//!    mount helper, which unshares a mount namespace of the host's user
//!    namespace and `clone`s the VPS init into it with new user, pid, uts,
//!    ipc and net namespaces, the user namespace owned by the VPS's uid
//!    base (its own budget of the host's namespace counts); the init joins
//!    the cgroups itself through those files at once;
//! 2. the supervisor writes the init's uid/gid maps (`0 <uid_base>
//!    65536`) and lets it go: it becomes root of its user namespace,
//!    unshares its cgroup namespace (now rooted at the VPS cgroup) and sets
//!    the hostname;
//! 3. a process of the helper's, joined to the VPS's pid, net, ipc and
//!    cgroup namespaces, builds the VPS's mounts as host root
//!    ([`mounts::build_tree`]) while the supervisor builds its network;
//!    the helper exits and the init is handed to the supervisor, a
//!    subreaper;
//! 4. the init copies that mount namespace into one of its own user
//!    namespace, which locks every mount, and `pivot_root`s into the rootfs
//!    ([`mounts::enter_tree`]); it opens the console pty inside its devpts
//!    and passes the master to the supervisor;
//! 5. once the supervisor says the network is ready, it drops the dangerous
//!    capabilities from its bounding set, installs the seccomp filters
//!    ([`security`]; with a disk view the statfs listener goes to its
//!    server, [`disk_view`]) and execs init. An exec failure is reported back over
//!    the sync socket; success closes it (CLOEXEC).

pub mod disk_view;
pub mod exec;
pub mod idmap;
pub mod mounts;
pub mod security;

use crate::proto::{self, Conn, ProtoError};
use crate::spec::VpsSpec;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{setgroups, sethostname, setresgid, setresuid, Gid, Pid, Uid};
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use thiserror::Error;

pub use security::SeccompProgram;

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("clone of the VPS init failed")]
    Clone(#[source] nix::Error),
    /// A `user.max_*_namespaces` count of the host is used up (ENOSPC).
    #[error("the host's limit on namespaces is reached (see /proc/sys/user); try again once VPSes holding many have stopped")]
    NamespaceLimit,
    #[error("cannot join cgroup {dir}")]
    Cgroup {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the id map of pid {pid}")]
    IdMap {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("sync with the VPS init failed")]
    Sync(#[source] ProtoError),
    #[error("VPS setup failed: {0}")]
    Child(String),
    #[error("the VPS init did not hand over its console")]
    NoConsole,
    #[error("cannot set up the VPS network")]
    Network(#[source] crate::net::NetError),
    #[error("invalid argument for the VPS: {0}")]
    BadArgument(String),
    #[error("cannot open namespace {path}")]
    Namespace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fork failed")]
    Fork(#[source] nix::Error),
    #[error("seccomp filter: {0}")]
    Seccomp(String),
}

/// Messages between the supervisor, the mount helper and the init being
/// set up.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
enum ChildMsg {
    /// Helper: the init is cloned, with this pid.
    Cloned { pid: i32 },
    /// Helper: the clone of the init failed with this errno.
    CloneFailed { errno: i32 },
    /// To the init: the parent wrote the id maps.
    Go,
    /// Init: its cgroup namespace and hostname are set.
    NamespacesReady,
    /// To the helper: build the mounts; the idmapped trees come with it.
    Mount,
    /// Helper: the mounts are built.
    Mounted,
    /// To the init: enter the mounts.
    MountsReady,
    /// The parent finished the VPS's network: init may run.
    NetworkReady,
    /// Carries the console pty master and a second handle on its slave.
    Console,
    /// Setup failed at `step`.
    Failed { step: String, error: String },
}

/// A freshly started VPS.
#[derive(Debug)]
pub struct Started {
    pub init_pid: Pid,
    /// The master side of `/dev/console` inside the VPS.
    pub console: OwnedFd,
    /// A handle on the console's slave side. Holding it keeps the master
    /// from reporting hangup (and spinning a poll loop) while no process
    /// inside has the console open, e.g. between init's respawns.
    pub console_slave: OwnedFd,
}

/// The files through which a process joins the VPS cgroups, opened by the
/// supervisor (host root) so a process that is no longer host root (the
/// init, just cloned into its user namespace) can still use them.
pub struct CgroupJoin {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl CgroupJoin {
    /// On cgroup v1 each directory's `tasks` file, else (v2) `cgroup.procs`.
    pub fn open(dirs: &[PathBuf]) -> Result<CgroupJoin, RuntimeError> {
        let mut files = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let tasks = dir.join("tasks");
            let path = if tasks.exists() {
                tasks
            } else {
                dir.join("cgroup.procs")
            };
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|source| RuntimeError::Cgroup {
                    dir: dir.clone(),
                    source,
                })?;
            files.push((dir.clone(), file));
        }
        Ok(CgroupJoin { files })
    }

    /// Move the calling process, which must be single-threaded, into every
    /// cgroup. It writes "0" (itself): on v1, to `tasks`, which moves one
    /// thread and so skips the global threadgroup lock whose writer waits
    /// an RCU grace period (5-13 ms here, per start and per exec, while
    /// writing a pid to `cgroup.procs` always takes it). On v2 the write to
    /// `cgroup.procs` still takes that lock (`clone3` with
    /// CLONE_INTO_CGROUP would avoid it); there it only overlaps the
    /// parent's work.
    pub fn join(&self) -> Result<(), RuntimeError> {
        use std::io::Write;
        for (dir, file) in &self.files {
            let mut file: &std::fs::File = file;
            file.write_all(b"0").map_err(|source| RuntimeError::Cgroup {
                dir: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

fn cstrings(items: &[String]) -> Result<Vec<CString>, RuntimeError> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_str())
                .map_err(|_| RuntimeError::BadArgument(format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

/// Start the VPS described by `spec`; returns once its init is exec'd.
/// On any error the half-started child is killed and reaped.
pub fn start(spec: &VpsSpec, seccomp: &SeccompProgram) -> Result<Started, RuntimeError> {
    if spec.init.is_empty() {
        return Err(RuntimeError::BadArgument("empty init command".into()));
    }
    let init = cstrings(&spec.init)?;
    let env = cstrings(&spec.env)?;
    let cgroups = CgroupJoin::open(&spec.cgroup_dirs)?;
    let lxcfs = spec.lxcfs.as_deref().map(mounts::LxcfsFiles::clone_from);
    let (parent, child) = proto::pair().map_err(RuntimeError::Sync)?;
    let (helper_parent, helper_child) = proto::pair().map_err(RuntimeError::Sync)?;
    // The init is cloned by the mount helper, which then exits: the init
    // is handed to the nearest subreaper, this process.
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an int flag; no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) } < 0 {
        return Err(RuntimeError::Fork(nix::Error::last()));
    }
    let supervisor_ends = [parent.as_raw_fd(), helper_parent.as_raw_fd()];
    // SAFETY: the supervisor is single-threaded; the helper runs our own
    // code and leaves with _exit.
    let helper = match unsafe { nix::unistd::fork() }.map_err(RuntimeError::Fork)? {
        nix::unistd::ForkResult::Child => {
            let code = helper_main(
                spec,
                HelperWork {
                    cgroups: &cgroups,
                    lxcfs,
                    init_sync: child,
                    sync: &helper_child,
                    supervisor_ends,
                    init: &init,
                    env: &env,
                    seccomp,
                },
            );
            // SAFETY: _exit ends the helper without running the
            // supervisor's destructors or atexit handlers.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop((child, helper_child, cgroups, lxcfs));

    // Every failure: the helper is killed and reaped first (so the init,
    // then handed to us, can be reaped too and reading cannot block), then
    // the init; a reason either sent before dying wins over the
    // supervisor's own view of the failure.
    // Once reaped, the helper's pid may be anyone's: it is not killed.
    let helper_reaped = std::cell::Cell::new(false);
    let reap_helper = || {
        if !helper_reaped.replace(true) {
            let _ = waitpid(helper, None);
        }
    };
    let kill_all = |init_pid: Option<Pid>, e: RuntimeError| {
        if !helper_reaped.get() {
            let _ = kill(helper, Signal::SIGKILL);
            reap_helper();
        }
        if let Some(pid) = init_pid {
            let _ = kill(pid, Signal::SIGKILL);
            reap_until(pid);
        }
        match queued_failure(&helper_parent).or_else(|| queued_failure(&parent)) {
            Some(reason) => RuntimeError::Child(reason),
            None => e,
        }
    };
    let pid = match helper_parent.recv::<ChildMsg>() {
        Ok((ChildMsg::Cloned { pid }, _)) => Pid::from_raw(pid),
        Ok((ChildMsg::CloneFailed { errno }, _)) => {
            reap_helper();
            return Err(match nix::Error::from_raw(errno) {
                nix::Error::ENOSPC => RuntimeError::NamespaceLimit,
                e => RuntimeError::Clone(e),
            });
        }
        Ok(_) | Err(ProtoError::Closed) => {
            return Err(kill_all(
                None,
                RuntimeError::Child("the mount helper ended".into()),
            ))
        }
        Err(e) => return Err(kill_all(None, RuntimeError::Sync(e))),
    };
    let fail = |e: RuntimeError| kill_all(Some(pid), e);
    write_id_maps(pid.as_raw(), spec.uid_base, spec.id_count).map_err(fail)?;
    // An idmapped rootfs (and a rescue boot's disk) is made here, as host
    // root, with the child's new user namespace, and handed to the helper.
    let trees = if spec.idmap_rootfs {
        let userns = std::fs::File::open(format!("/proc/{pid}/ns/user")).map_err(|source| {
            fail(RuntimeError::Namespace {
                path: format!("/proc/{pid}/ns/user").into(),
                source,
            })
        })?;
        let mut trees = Vec::new();
        for path in std::iter::once(&spec.rootfs).chain(spec.rescue_disk.as_ref()) {
            trees.push(idmap::idmapped_clone(path, &userns).map_err(|e| {
                fail(RuntimeError::Child(format!(
                    "idmapped mount of {}: {e}",
                    path.display()
                )))
            })?);
        }
        trees
    } else {
        Vec::new()
    };
    parent
        .send(&ChildMsg::Go, &[])
        .map_err(|e| fail(RuntimeError::Sync(e)))?;
    // The init made its cgroup namespace: the helper may mount.
    expect(
        &parent,
        |m| matches!(m, ChildMsg::NamespacesReady),
        "the VPS init",
    )
    .map_err(fail)?;
    let tree_fds: Vec<i32> = trees.iter().map(|t| t.as_raw_fd()).collect();
    helper_parent
        .send(&ChildMsg::Mount, &tree_fds)
        .map_err(|e| fail(RuntimeError::Sync(e)))?;
    drop(trees);
    // The network is built while the helper builds the mounts.
    for nic in spec.nic.iter().chain(&spec.extra_nics) {
        crate::net::attach(pid.as_raw(), nic).map_err(|e| fail(RuntimeError::Network(e)))?;
    }
    expect(
        &helper_parent,
        |m| matches!(m, ChildMsg::Mounted),
        "the mount helper",
    )
    .map_err(fail)?;
    // The helper exits after saying so; reaped, the init is ours.
    reap_helper();
    for msg in [ChildMsg::MountsReady, ChildMsg::NetworkReady] {
        parent.send(&msg, &[]).map_err(|e| fail(RuntimeError::Sync(e)))?;
    }

    let (console, console_slave) = match parent.recv::<ChildMsg>() {
        Ok((ChildMsg::Console, mut fds)) if fds.len() == 2 => {
            let slave = fds.pop().expect("two fds");
            (fds.pop().expect("two fds"), slave)
        }
        Ok((ChildMsg::Failed { step, error }, _)) => {
            return Err(fail(RuntimeError::Child(format!("{step}: {error}"))))
        }
        Ok(_) | Err(ProtoError::Closed) => return Err(fail(RuntimeError::NoConsole)),
        Err(e) => return Err(fail(RuntimeError::Sync(e))),
    };
    // The sync socket closes on a successful exec (CLOEXEC); a message
    // instead means exec failed.
    match parent.recv::<ChildMsg>() {
        Err(ProtoError::Closed) => Ok(Started {
            init_pid: pid,
            console,
            console_slave,
        }),
        Ok((ChildMsg::Failed { step, error }, _)) => {
            Err(fail(RuntimeError::Child(format!("{step}: {error}"))))
        }
        Ok(_) => Err(fail(RuntimeError::Child(
            "unexpected message from the VPS init".into(),
        ))),
        Err(e) => Err(fail(RuntimeError::Sync(e))),
    }
}

/// Wait for the message `want` accepts from `who` on `conn`: a failure it
/// reported, its end, or anything else is the error.
fn expect(conn: &Conn, want: fn(&ChildMsg) -> bool, who: &str) -> Result<(), RuntimeError> {
    match conn.recv::<ChildMsg>() {
        Ok((msg, _)) if want(&msg) => Ok(()),
        Ok((ChildMsg::Failed { step, error }, _)) => Err(RuntimeError::Child(format!("{step}: {error}"))),
        Ok(_) | Err(ProtoError::Closed) => Err(RuntimeError::Child(format!("{who} ended"))),
        Err(e) => Err(RuntimeError::Sync(e)),
    }
}

/// What the mount helper is handed.
struct HelperWork<'a> {
    cgroups: &'a CgroupJoin,
    lxcfs: Option<mounts::LxcfsFiles>,
    /// The init's end of its sync socket.
    init_sync: Conn,
    /// The helper's own end of its socket to the supervisor.
    sync: &'a Conn,
    /// The supervisor's ends of both sockets, closed at once.
    supervisor_ends: [i32; 2],
    init: &'a [CString],
    env: &'a [CString],
    seccomp: &'a SeccompProgram,
}

/// The mount helper, forked by the supervisor: in a mount namespace of its
/// own (of the host's user namespace) it clones the VPS init with the
/// VPS's other namespaces, reports its pid, and once the supervisor says
/// so builds the VPS's mounts there (see [`mounts::build_tree`]) from a
/// process of its own in the VPS's pid namespace. It then exits, and the
/// init is handed to the supervisor, its subreaper.
fn helper_main(spec: &VpsSpec, work: HelperWork) -> i32 {
    for fd in work.supervisor_ends {
        let _ = nix::unistd::close(fd);
    }
    let sync = work.sync;
    let fail = |step: &str, error: String| -> i32 {
        let _ = sync.send(
            &ChildMsg::Failed {
                step: step.into(),
                error,
            },
            &[],
        );
        1
    };
    if let Err(e) = security::make_non_dumpable() {
        return fail("non-dumpable", e.to_string());
    }
    // Nothing mounted here may propagate back to the host, and host
    // mounts appearing later must not show up inside.
    let private = nix::sched::unshare(CloneFlags::CLONE_NEWNS).and_then(|()| {
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
    });
    if let Err(e) = private {
        return fail("mount namespace", namespace_error(e));
    }
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    let mut stack = vec![0u8; 256 * 1024];
    let init_sync = &work.init_sync;
    let helper_end = sync.as_raw_fd();
    let (cgroups, init, env, seccomp) = (work.cgroups, work.init, work.env, work.seccomp);
    let cb = Box::new(move || {
        // The helper's socket is not the init's; with it closed, only the
        // supervisor holds the init's other end.
        let _ = nix::unistd::close(helper_end);
        // Non-dumpable as the supervisor is (see exec.rs): nothing inside
        // the VPS could reach this child before init runs, but a reboot
        // from inside must not change that.
        if security::make_non_dumpable().is_err() || security::clear_securebits().is_err() {
            return 1;
        }
        child_main(spec, cgroups, init_sync, init, env, seccomp)
    });
    // The VPS's user namespace is owned by its uid base, so what is made
    // inside is counted against a budget of its own (see the function).
    let cloned = security::as_namespace_owner(spec.uid_base, || {
        // SAFETY: the helper is single-threaded, so the child (a copy of
        // this process without CLONE_VM) can allocate and run arbitrary
        // code; `stack` outlives the call in the parent and is the
        // child's own copy.
        unsafe { nix::sched::clone(cb, &mut stack, flags, Some(libc::SIGCHLD)) }
    })
    .and_then(|cloned| cloned);
    let pid = match cloned {
        Ok(pid) => pid,
        Err(e) => {
            let _ = sync.send(&ChildMsg::CloneFailed { errno: e as i32 }, &[]);
            return 1;
        }
    };
    drop(work.init_sync);
    if sync.send(&ChildMsg::Cloned { pid: pid.as_raw() }, &[]).is_err() {
        return 1;
    }
    let trees = match sync.recv::<ChildMsg>() {
        Ok((ChildMsg::Mount, fds)) => fds,
        _ => return 1, // the supervisor gave up; it kills us
    };
    let mut trees = trees.into_iter();
    let (idmapped_root, idmapped_disk) = (trees.next(), trees.next());
    let rescue_disk = spec.rescue_disk.as_ref().map(|path| match idmapped_disk {
        Some(tree) => mounts::Disk::Idmapped(tree),
        None => mounts::Disk::Shifted(path.clone()),
    });
    // proc shows the pid namespace of who mounts it: the mounting process
    // is forked into the VPS's, after joining its network (sysfs), IPC
    // (mqueue) and cgroup (cgroupfs) namespaces.
    let join = |kind: &str, flag: CloneFlags| -> Result<(), String> {
        let path = format!("/proc/{pid}/ns/{kind}");
        let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        nix::sched::setns(ns, flag).map_err(|e| format!("join {path}: {e}"))
    };
    if let Err(e) = join("pid", CloneFlags::CLONE_NEWPID) {
        return fail("mount helper", e);
    }
    // SAFETY: single-threaded; the child runs our code and leaves with _exit.
    match unsafe { nix::unistd::fork() } {
        Err(e) => fail("mount helper", format!("fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            let joined = join("net", CloneFlags::CLONE_NEWNET)
                .and_then(|()| join("ipc", CloneFlags::CLONE_NEWIPC))
                .and_then(|()| join("cgroup", CloneFlags::CLONE_NEWCGROUP));
            let code = match joined {
                Err(e) => fail("mount helper", e),
                Ok(()) => match mounts::build_tree(mounts::Tree {
                    rootfs: &spec.rootfs,
                    idmapped: idmapped_root,
                    rescue_disk,
                    cgroup_mount: spec.cgroup_mount.as_deref(),
                    lxcfs: work.lxcfs,
                    memory_limit: spec.memory_limit,
                    uid_base: spec.uid_base,
                    devices: &spec.devices,
                    nesting: spec.nesting,
                }) {
                    Ok(()) => match sync.send(&ChildMsg::Mounted, &[]) {
                        Ok(()) => 0,
                        Err(_) => 1,
                    },
                    Err(e) => fail("mount setup", e.to_string()),
                },
            };
            // SAFETY: _exit ends the mounting process at once.
            unsafe { libc::_exit(code) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => 0,
            _ => 1,
        },
    }
}

/// Wait for `pid` to end, reaping every other child that ends meanwhile.
/// A VPS's init that dies waits, in the kernel, until every process of its
/// pid namespace is reaped; the ones it leaves are handed to this process
/// (the subreaper) as they die. Waiting for the init alone would wait for
/// ever: it for them, this process for it.
fn reap_until(pid: Pid) {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(status) if status.pid() == Some(pid) => return,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            // No child left (ECHILD): it was reaped already.
            Err(_) => return,
        }
    }
}

/// The reason a dead child sent, if one is queued on `parent`. A child
/// that exits with a message of ours unread makes the first read fail
/// (ECONNRESET); the read after it returns what is queued.
fn queued_failure(parent: &Conn) -> Option<String> {
    for _ in 0..3 {
        match parent.recv::<ChildMsg>() {
            Ok((ChildMsg::Failed { step, error }, _)) => return Some(format!("{step}: {error}")),
            Ok(_) | Err(ProtoError::Closed) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// Map root inside to `base` outside, for `count` ids. Written by host
/// root, so `setgroups` stays allowed inside (apt and login need it).
fn write_id_maps(pid: i32, base: u32, count: u32) -> Result<(), RuntimeError> {
    let map = format!("0 {base} {count}\n");
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{pid}/{file}"), &map)
            .map_err(|source| RuntimeError::IdMap { pid, source })?;
    }
    Ok(())
}

/// The supervisor blocks the signals it reads through a signalfd; a
/// blocked mask survives fork and exec, so everything started inside the
/// VPS must get a clean one (else `timeout`, `kill` and init's own
/// shutdown handling would silently stop working), and every signal its
/// default action.
pub(crate) fn reset_signals() -> Result<(), nix::Error> {
    // Ignored signals stay ignored across exec: the Rust runtime ignores
    // SIGPIPE, and whoever started croftd may have ignored others (SIGQUIT,
    // the real-time signals glibc reserves). Everything goes back to the
    // default, through the raw syscall because glibc refuses its reserved
    // signals.
    let default_action = [0u64; 4]; // SIG_DFL, no flags, no restorer, empty mask
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a kernel sigaction from a valid, zeroed
        // buffer (SIG_DFL installs no handler) and writes nothing (null old
        // action); 8 is the kernel's sigset size.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<u8>(),
                8usize,
            )
        };
    }
    nix::sys::signal::SigSet::empty().thread_set_mask()
}

/// Give init the console as stdin, stdout and stderr in a new session but
/// NOT as its controlling terminal, as the kernel does for a real init
/// (/dev/console never becomes a controlling tty on open). A getty or shell
/// that init later starts on the console can then take it over, with job
/// control, and Ctrl+C reaches that shell instead of init.
fn console_as_stdio(slave: OwnedFd) -> Result<(), nix::Error> {
    nix::unistd::setsid()?;
    for fd in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), fd)?;
    }
    Ok(())
}

/// Bring up `lo` in the VPS's fresh network namespace (it starts down);
/// everything else on the network is set up from the host.
fn loopback_up() -> Result<(), nix::Error> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is a plain C struct for which all-zero bytes are valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write an ifreq through a
    // valid pointer; the union member used is ifru_flags.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(nix::Error::last());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(nix::Error::last());
        }
    }
    Ok(())
}

/// Runs in the cloned child: PID 1 of the new pid namespace.
fn child_main(
    spec: &VpsSpec,
    cgroups: &CgroupJoin,
    sync: &Conn,
    init: &[CString],
    env: &[CString],
    seccomp: &SeccompProgram,
) -> isize {
    let fail = |step: &str, error: String| -> isize {
        let _ = sync.send(
            &ChildMsg::Failed {
                step: step.into(),
                error,
            },
            &[],
        );
        1
    };
    // Joined first, while the parent writes the id maps; a failure is
    // reported once the parent listens (after "go").
    let joined = cgroups.join();
    match sync.recv::<ChildMsg>() {
        Ok((ChildMsg::Go, _)) => {}
        _ => return 1, // the parent gave up; it kills us
    }
    if let Err(e) = joined {
        return fail("join the VPS cgroups", e.to_string());
    }
    if let Err(e) = reset_signals() {
        return fail("reset signal mask", e.to_string());
    }
    let root = Uid::from_raw(0);
    let root_gid = Gid::from_raw(0);
    if let Err(e) = setresgid(root_gid, root_gid, root_gid)
        .and_then(|_| setresuid(root, root, root))
        .and_then(|_| setgroups(&[]))
    {
        return fail("become root of the user namespace", e.to_string());
    }
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP) {
        return fail("unshare cgroup namespace", namespace_error(e));
    }
    if let Err(e) = sethostname(&spec.hostname) {
        return fail("set hostname", e.to_string());
    }
    if sync.send(&ChildMsg::NamespacesReady, &[]).is_err() {
        return 1;
    }
    match sync.recv::<ChildMsg>() {
        Ok((ChildMsg::MountsReady, _)) => {}
        _ => return 1, // the parent gave up; it kills us
    }
    if let Err(e) = mounts::enter_tree(&spec.rootfs) {
        return fail("mount setup", e.to_string());
    }
    let console = match mounts::open_console() {
        Ok(c) => c,
        Err(e) => return fail("console", e.to_string()),
    };
    if let Err(e) = sync.send(
        &ChildMsg::Console,
        &[console.master.as_raw_fd(), console.slave.as_raw_fd()],
    ) {
        return fail("hand over console", e.to_string());
    }
    drop(console.master);
    if let Err(e) = console_as_stdio(console.slave) {
        return fail("console as stdio", e.to_string());
    }
    if let Err(e) = loopback_up() {
        return fail("bring up loopback", e.to_string());
    }
    match sync.recv::<ChildMsg>() {
        Ok((ChildMsg::NetworkReady, _)) => {}
        _ => return 1, // the parent gave up; it kills us
    }
    if let Err(e) = security::lock_down(seccomp) {
        return fail("capabilities and seccomp", e.to_string());
    }
    // Only the console (fds 0-2) crosses into init; the sync socket stays
    // open until the exec succeeds, so it reports a failed one.
    if let Err(e) = crate::fds::cloexec_from(3) {
        return fail("close descriptors", e.to_string());
    }
    let err = nix::unistd::execve(&init[0], init, env).unwrap_err();
    fail("exec init", format!("{}: {err}", init[0].to_string_lossy()))
}

/// Why a namespace could not be made, as its reader should take it: the
/// kernel says ENOSPC ("No space left on device", read as a full disk)
/// when a `user.max_*_namespaces` count is used up.
pub(crate) fn namespace_error(e: nix::Error) -> String {
    if e == nix::Error::ENOSPC {
        "the host's limit on namespaces is reached (user.max_*_namespaces, see /proc/sys/user), \
         not a full disk; try again once VPSes holding many have stopped"
            .into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_used_up_namespace_count_is_not_said_as_a_full_disk() {
        let said = super::namespace_error(nix::Error::ENOSPC);
        assert!(said.contains("limit on namespaces"), "{said}");
        assert!(!said.contains("No space left on device"), "{said}");
        assert_eq!(
            super::namespace_error(nix::Error::EPERM),
            nix::Error::EPERM.to_string()
        );
    }
}
