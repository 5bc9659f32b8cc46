//! Running a command inside a running VPS (`croft exec`).
//!
//! The supervisor forks a helper that joins the VPS cgroups and namespaces
//! (user last, while it still has host privileges for the others) and forks
//! again so the command is born inside the VPS pid namespace. The helper
//! waits for it and exits with its status (128 + signal for a signal), so
//! the supervisor only ever waits for its own direct children.
//!
//! The command's process is visible to VPS root from its birth (it is in
//! the VPS's pid namespace) and VPS root holds CAP_SYS_PTRACE there, so
//! it must never be worth catching (runc's CVE-2016-9962): the helper is
//! non-dumpable (inherited from the supervisor: neither ptrace nor
//! /proc/PID/fd reach it), keeps only the descriptors it needs, and
//! takes the VPS's ids, bounding set and seccomp filter *before* it forks
//! the command, which is born with them and drops everything but its
//! stdio before exec.

use super::{cstrings, mounts, security, CgroupJoin, RuntimeError, SeccompProgram};
use crate::proto::{Conn, Reply};
use croft_proto::set_window;
use nix::sched::{setns, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, fork, setgroups, setresgid, setresuid, setsid, ForkResult, Gid, Pid, Uid};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// The environment every command inside a VPS starts from.
pub const BASE_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LOGNAME=root",
    "container=croft",
];

const NOT_FOUND: &str = "command not found";

/// Namespaces joined, in order; `user` last (see module docs).
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("user", CloneFlags::CLONE_NEWUSER),
];

/// What to run.
pub struct ExecRequest<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: Option<&'a str>,
    /// A user of the VPS to run it as (a name or a uid); `None`: root.
    pub user: Option<&'a str>,
    /// Caller's stdin, stdout, stderr; `None` allocates a pty inside the
    /// VPS and sends its master to the caller over `conn`.
    pub stdio: Option<[OwnedFd; 3]>,
    pub window: Option<(u16, u16)>,
}

/// Fork the exec helper. Returns its pid; its exit status is the
/// command's.
pub fn spawn(
    init_pid: i32,
    cgroup_dirs: &[PathBuf],
    req: ExecRequest<'_>,
    conn: &Conn,
    seccomp: &SeccompProgram,
) -> Result<Pid, RuntimeError> {
    if req.args.is_empty() {
        return Err(RuntimeError::BadArgument("empty command".into()));
    }
    let args = cstrings(req.args)?;
    let mut env: Vec<String> = BASE_ENV.iter().map(|s| s.to_string()).collect();
    for e in req.env {
        if !e.contains('=') {
            return Err(RuntimeError::BadArgument(format!(
                "environment entry {e:?} is not NAME=value"
            )));
        }
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|old| old.split('=').next() != Some(key));
        env.push(e.clone());
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/bin:/bin")
        .to_string();
    let env = cstrings(&env)?;
    let cwd = req.cwd.map(str::to_string);
    let user = req.user.map(str::to_string);
    let mut ns_files = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = PathBuf::from(format!("/proc/{init_pid}/ns/{name}"));
        let f = File::open(&path).map_err(|source| RuntimeError::Namespace { path, source })?;
        ns_files.push((f, *flag));
    }

    // SAFETY: the supervisor is single-threaded, so the child may run any
    // code, including allocation.
    match unsafe { fork() }.map_err(RuntimeError::Fork)? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let code = helper(
                cgroup_dirs,
                &ns_files,
                req.stdio,
                req.window,
                conn,
                &args,
                &env,
                &path_var,
                cwd.as_deref(),
                user.as_deref(),
                seccomp,
            );
            // SAFETY: _exit skips atexit handlers and buffered-stdio
            // flushing that belong to the supervisor, not to this fork.
            unsafe { libc::_exit(code) }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn helper(
    cgroup_dirs: &[PathBuf],
    ns_files: &[(File, CloneFlags)],
    stdio: Option<[OwnedFd; 3]>,
    window: Option<(u16, u16)>,
    conn: &Conn,
    args: &[CString],
    env: &[CString],
    path_var: &str,
    cwd: Option<&str>,
    user: Option<&str>,
    seccomp: &SeccompProgram,
) -> i32 {
    // Errors go to the caller's stderr (or the supervisor's log, until
    // the pty is fd 2).
    let err_fd = stdio.as_ref().map(|s| s[2].as_raw_fd()).unwrap_or(2);
    let report = |what: &str, err: &dyn std::fmt::Display| {
        let msg = format!("croft: exec: {what}: {err}\n");
        // SAFETY: writing a valid buffer to a descriptor we hold open.
        unsafe { libc::write(err_fd, msg.as_ptr().cast(), msg.len()) };
        126
    };
    // Non-dumpable already (the supervisor is); made sure of here, since
    // everything below relies on it.
    if let Err(e) = security::make_non_dumpable() {
        return report("make non-dumpable", &e);
    }
    // Everything of the supervisor's (its control socket, the console,
    // the liveness lock, logs, other clients) goes before the VPS is
    // joined: the helper keeps the namespaces to join, the caller's stdio
    // and its connection.
    let mut keep: Vec<RawFd> = ns_files.iter().map(|(f, _)| f.as_raw_fd()).collect();
    keep.push(conn.as_raw_fd());
    keep.extend(stdio.iter().flatten().map(|fd| fd.as_raw_fd()));
    keep.extend(seccomp.needs_fd());
    if let Err(e) = crate::fds::close_all_except(&keep) {
        return report("close the supervisor's descriptors", &e);
    }
    if let Err(e) = CgroupJoin::open(cgroup_dirs).and_then(|c| c.join()) {
        return report("join cgroups", &e);
    }
    for (file, flag) in ns_files {
        if let Err(e) = setns(file, *flag) {
            return report("join namespaces", &e);
        }
    }
    // From here on the helper is confined as the command will be: root of
    // the VPS (its uid_base on the host), the VPS's bounding set and
    // seccomp filter. The command, forked below, is born that way.
    if let Err(e) = become_root() {
        return report("become root of the VPS", &e);
    }
    if let Err(e) = security::lock_down(seccomp) {
        return report("capabilities and seccomp", &e);
    }
    // SAFETY: still single-threaded (a fork of the supervisor).
    match unsafe { fork() } {
        Err(e) => report("fork", &e),
        Ok(ForkResult::Parent { child }) => {
            drop(stdio);
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => return code,
                    Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
                    Ok(_) => continue,
                    Err(nix::Error::EINTR) => continue,
                    Err(e) => return report("wait", &e),
                }
            }
        }
        Ok(ForkResult::Child) => {
            let err = run_command(stdio, window, conn, args, env, path_var, cwd, user);
            // Once run_command has set up stdio, fd 2 is the caller's (or
            // the pty); before, it is the supervisor's log.
            let msg = format!("croft: exec: {}: {err}\n", args[0].to_string_lossy());
            // SAFETY: writing a valid buffer to fd 2.
            unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
            // Shell conventions: 127 for a command not found, 126 otherwise.
            let code = if err == NOT_FOUND { 127 } else { 126 };
            // SAFETY: see `spawn`.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Take root's ids in the VPS's user namespace (joined just before).
fn become_root() -> Result<(), nix::Error> {
    let root = Uid::from_raw(0);
    let root_gid = Gid::from_raw(0);
    setresgid(root_gid, root_gid, root_gid)
        .and_then(|_| setresuid(root, root, root))
        .and_then(|_| setgroups(&[]))
}

/// Inside the VPS, already confined: wire up stdio, drop every other
/// descriptor, become `user` if one is asked, exec. Only returns on
/// failure, with the reason.
#[allow(clippy::too_many_arguments)]
fn run_command(
    stdio: Option<[OwnedFd; 3]>,
    window: Option<(u16, u16)>,
    conn: &Conn,
    args: &[CString],
    env: &[CString],
    path_var: &str,
    cwd: Option<&str>,
    user: Option<&str>,
) -> String {
    if let Err(e) = super::reset_signals() {
        return format!("reset signal mask: {e}");
    }
    match &stdio {
        Some(fds) => {
            for (i, fd) in fds.iter().enumerate() {
                if let Err(e) = dup2(fd.as_raw_fd(), i as RawFd) {
                    return format!("stdio: {e}");
                }
            }
        }
        None => {
            let pty = match mounts::open_pty() {
                Ok(p) => p,
                Err(e) => return format!("pty: {e}"),
            };
            if let Some((rows, cols)) = window {
                set_window(pty.master.as_raw_fd(), rows, cols);
            }
            if let Err(e) = conn.send(&Reply::Pty, &[pty.master.as_raw_fd()]) {
                return format!("hand over pty: {e}");
            }
            drop(pty.master);
            if let Err(e) = make_controlling_tty(pty.slave) {
                return format!("pty as controlling terminal: {e}");
            }
        }
    }
    // Only stdio crosses into the command. (The originals above, the
    // connection and the namespace files are closed by number: this
    // process never returns, so nothing drops them a second time.)
    std::mem::forget(stdio);
    if let Err(e) = crate::fds::close_all_except(&[]) {
        return format!("close descriptors: {e}");
    }
    let mut env = env.to_vec();
    let mut home = None;
    if let Some(user) = user {
        match become_user(user) {
            Ok(account) => {
                // Its identity (what the caller set for these is replaced).
                for (key, value) in [
                    ("HOME", &account.home),
                    ("USER", &account.name),
                    ("LOGNAME", &account.name),
                ] {
                    let prefix = format!("{key}=");
                    env.retain(|e| !e.to_bytes().starts_with(prefix.as_bytes()));
                    if let Ok(entry) = CString::new(format!("{key}={value}")) {
                        env.push(entry);
                    }
                }
                home = Some(account.home);
            }
            Err(e) => return e,
        }
    }
    // A home that is not there (nobody's /nonexistent) starts in /.
    let home = home.filter(|h| std::path::Path::new(h).is_dir());
    let cwd = cwd.or(home.as_deref()).unwrap_or("/");
    if let Err(e) = std::env::set_current_dir(cwd) {
        return format!("chdir {cwd}: {e}");
    }
    let program = match resolve(&args[0], path_var) {
        Some(p) => p,
        None => return NOT_FOUND.to_string(),
    };
    let err = nix::unistd::execve(&program, args, &env).unwrap_err();
    err.desc().to_string()
}

/// One of the VPS's account files, as VPS root keeps it: a regular file
/// (a FIFO would hang the exec), read to at most 4 MiB.
fn read_account_file(path: &str) -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    else {
        return String::new();
    };
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return String::new();
    }
    let mut text = String::new();
    let _ = file.take(4 << 20).read_to_string(&mut text);
    text
}

/// A user of the VPS as its /etc/passwd has it.
struct Account {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// Become `user` of the VPS (a name, or a uid) with its primary and
/// supplementary groups, as its /etc/passwd and /etc/group say (the VPS's
/// own files: the mount namespace is the VPS's). A uid without an entry
/// runs with that uid as its group and / as its home.
fn become_user(user: &str) -> Result<Account, String> {
    let passwd = read_account_file("/etc/passwd");
    let by_uid = user.parse::<u32>().ok();
    let found = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (name, uid, gid, home) = (
            f.first()?,
            f.get(2)?.parse().ok()?,
            f.get(3)?.parse().ok()?,
            f.get(5)?,
        );
        (*name == user || by_uid == Some(uid)).then(|| Account {
            name: name.to_string(),
            uid,
            gid,
            home: home.to_string(),
        })
    });
    let account = match (found, by_uid) {
        (Some(a), _) => a,
        (None, Some(uid)) => Account {
            name: uid.to_string(),
            uid,
            gid: uid,
            home: "/".into(),
        },
        (None, None) => return Err(format!("no user {user} in the VPS's /etc/passwd")),
    };
    let groups: Vec<Gid> = read_account_file("/etc/group")
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let gid: u32 = f.get(2)?.parse().ok()?;
            f.get(3)?
                .split(',')
                .any(|m| m == account.name)
                .then_some(Gid::from_raw(gid))
        })
        .chain(std::iter::once(Gid::from_raw(account.gid)))
        .collect();
    let (uid, gid) = (Uid::from_raw(account.uid), Gid::from_raw(account.gid));
    setgroups(&groups)
        .and_then(|_| setresgid(gid, gid, gid))
        .and_then(|_| setresuid(uid, uid, uid))
        .map_err(|e| format!("become user {user}: {e}"))?;
    Ok(account)
}

/// Find `name` in `path_var` as execvp would, but with the VPS's PATH
/// rather than the supervisor's.
fn resolve(name: &CString, path_var: &str) -> Option<CString> {
    let bytes = name.as_bytes();
    if bytes.contains(&b'/') {
        return Some(name.clone());
    }
    path_var.split(':').filter(|d| !d.is_empty()).find_map(|dir| {
        let candidate = format!("{dir}/{}", name.to_string_lossy());
        nix::unistd::access(candidate.as_str(), nix::unistd::AccessFlags::X_OK)
            .ok()
            .and_then(|_| CString::new(candidate).ok())
    })
}

/// Start a new session with `slave` as controlling terminal and as
/// stdin/stdout/stderr.
pub fn make_controlling_tty(slave: OwnedFd) -> Result<(), nix::Error> {
    setsid()?;
    // SAFETY: TIOCSCTTY takes an int argument by value; `slave` is an open
    // terminal and we are a session leader without a controlling tty.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(nix::Error::last());
    }
    for fd in 0..3 {
        dup2(slave.as_raw_fd(), fd)?;
    }
    Ok(())
}
