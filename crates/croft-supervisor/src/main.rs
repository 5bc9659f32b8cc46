//! croft-supervisor: one per running VPS.
//!
//! Started by croftd as `croft-supervisor RUN_DIR`, it detaches (double
//! fork, new session), starts the VPS from `RUN_DIR/spec.json`, reports
//! `ready <init-pid>` or `error <message>` on stdout to the daemon, and then
//! lives as long as the VPS: it holds the console pty, serves exec, console,
//! stop and watch requests on its control socket, turns a reboot from inside
//! into a fresh boot, and records how the VPS ended in `exit.json`.
//!
//! It is deliberately small and single-threaded (a poll loop, no async
//! runtime), so that it costs little memory per VPS and so that forking
//! children from it is safe. It never depends on croftd being alive.

mod event_loop;

use croft_host::runtime::{RuntimeError, SeccompProgram};
use croft_host::spec::{RunDir, VpsSpec};
use nix::unistd::{fork, setsid, ForkResult};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything else, and before any process of ours joins a VPS:
    // non-dumpable (so VPS root can never ptrace us or our helpers, or
    // open our descriptors through /proc) and holding no descriptor croftd
    // did not mean to give us (a pipe or terminal croftd itself inherited).
    if let Err(e) = croft_host::runtime::security::make_non_dumpable() {
        println!("error make non-dumpable: {e}");
        return ExitCode::FAILURE;
    }
    let lock: &[i32] = if std::env::var_os(croft_host::spec::LOCK_FD_ENV).is_some() {
        &[croft_host::spec::LOCK_FD]
    } else {
        &[]
    };
    if let Err(e) = croft_host::fds::close_all_except(lock) {
        println!("error close inherited descriptors: {e}");
        return ExitCode::FAILURE;
    }
    keep_lock_from_children();
    let Some(run_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: croft-supervisor RUN_DIR");
        return ExitCode::from(2);
    };
    let spec: VpsSpec = match std::fs::read(RunDir(&run_dir).spec())
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            println!("error cannot read {}: {e}", RunDir(&run_dir).spec().display());
            return ExitCode::FAILURE;
        }
    };

    // The verdict goes straight from the supervisor proper to croftd, on a
    // copy of our stdout (close-on-exec, so the VPS never holds it): croftd
    // reads to end-of-file, which comes once the verdict is written and
    // this first process is gone.
    let ready = match nix::fcntl::fcntl(1, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)) {
        // SAFETY: fcntl just returned this descriptor; we own it.
        Ok(fd) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
        Err(e) => {
            println!("error dup stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: nothing has started a thread yet; the child continues as a
    // normal single-threaded process.
    match unsafe { fork() } {
        Err(e) => {
            println!("error fork: {e}");
            ExitCode::FAILURE
        }
        // The supervisor proper is reparented and outlives croftd.
        Ok(ForkResult::Parent { .. }) => ExitCode::SUCCESS,
        Ok(ForkResult::Child) => supervise(spec, std::fs::File::from(ready)),
    }
}

fn supervise(spec: VpsSpec, mut ready: std::fs::File) -> ExitCode {
    let _ = setsid();
    redirect_stdio(&RunDir(&spec.run_dir).log());
    let seccomp = match SeccompProgram::new().and_then(|p| with_disk_view(p, &spec)) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(ready, "error {}", error_chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let mut sup = match event_loop::Supervisor::new(spec, seccomp) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(ready, "error {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = sup.boot() {
        sup.cleanup();
        // A host limit is no fault of the request: croftd answers 503.
        let verdict = match e {
            RuntimeError::NamespaceLimit => "unavailable",
            _ => "error",
        };
        let _ = writeln!(ready, "{verdict} {}", error_chain(&e));
        return ExitCode::FAILURE;
    }
    let _ = writeln!(ready, "ready {}", sup.init_pid());
    drop(ready);
    sup.run();
    ExitCode::SUCCESS
}

/// With a disk view (not in a rescue boot, whose root is another disk),
/// `statfs` inside the VPS goes to a disk view server, forked now while
/// this process is single-threaded.
fn with_disk_view(seccomp: SeccompProgram, spec: &VpsSpec) -> Result<SeccompProgram, RuntimeError> {
    match (&spec.disk_view, &spec.rescue_disk) {
        (Some(view), None) => {
            let server =
                croft_host::runtime::disk_view::spawn_server(view, &spec.rootfs, &spec.cpu_cgroup_dirs)?;
            seccomp.with_disk_view(server)
        }
        _ => Ok(seccomp),
    }
}

/// croftd hands over the run dir's lock (see `SupervisorLock`) at a fixed
/// descriptor, to be held for the supervisor's whole life, never closed.
/// Nothing the supervisor starts may keep it: a VPS process holding it
/// would make croftd believe the supervisor alive after it has gone. So it
/// is close-on-exec (the VPS init and exec'd commands lose it), and the
/// exec helper, which does not exec itself, closes it (runtime/exec.rs).
fn keep_lock_from_children() {
    if std::env::var_os(croft_host::spec::LOCK_FD_ENV).is_some() {
        let _ = nix::fcntl::fcntl(
            croft_host::spec::LOCK_FD,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
}

/// The supervisor's own output goes to its log file, never to the pipe
/// croftd reads (which would then never see end-of-file).
fn redirect_stdio(log: &std::path::Path) {
    let devnull = std::fs::File::open("/dev/null").map(OwnedFd::from);
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map(OwnedFd::from);
    if let (Ok(null), Ok(logf)) = (devnull, logf) {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 0);
        let _ = nix::unistd::dup2(logf.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(logf.as_raw_fd(), 2);
    }
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
