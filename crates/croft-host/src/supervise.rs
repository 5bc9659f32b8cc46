//! Starting a VPS's supervisor: the one process croftd spawns per start.
//!
//! The supervisor gets the run directory's lock (held by the caller) as
//! descriptor [`LOCK_FD`], so the lock passes to it without a moment
//! unlocked, and answers on stdout with one verdict line once the VPS's
//! init runs (or could not be started). It then detaches and outlives
//! croftd.

use crate::spec::{SupervisorLock, LOCK_FD, LOCK_FD_ENV};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use thiserror::Error;

/// How a supervisor's start ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The VPS runs; its init's host pid.
    Ready(i32),
    /// The host lacks a resource for now (a namespace limit used up).
    Unavailable(String),
    /// It could not be started, and why.
    Failed(String),
}

#[derive(Debug, Error)]
#[error("cannot run {supervisor}")]
pub struct SpawnError {
    supervisor: String,
    #[source]
    source: std::io::Error,
}

/// Run `supervisor` for the VPS of `run_dir` (its spec written there) and
/// wait for its verdict. Blocking, for as long as the VPS takes to start.
pub fn start(supervisor: &Path, run_dir: &Path, lock: &SupervisorLock) -> Result<Verdict, SpawnError> {
    let mut command = Command::new(supervisor);
    command
        .arg(run_dir)
        .env(LOCK_FD_ENV, LOCK_FD.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let lock_fd = lock.fd();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls dup2 and fcntl, which are async-signal-safe. dup2 gives the
    // supervisor the locked descriptor at LOCK_FD without CLOEXEC (the
    // original stays CLOEXEC, so no other child inherits it); should the
    // lock already be LOCK_FD, dup2 does nothing and the CLOEXEC flag is
    // cleared instead.
    unsafe {
        command.pre_exec(move || {
            let rc = if lock_fd == LOCK_FD {
                libc::fcntl(lock_fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(lock_fd, LOCK_FD)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().map_err(|source| SpawnError {
        supervisor: supervisor.display().to_string(),
        source,
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(parse_verdict(
        stdout.trim(),
        String::from_utf8_lossy(&out.stderr).trim(),
    ))
}

/// The verdict line `ready PID`, `unavailable WHY` or `error WHY`; with
/// none, what the supervisor said on stderr.
fn parse_verdict(line: &str, stderr: &str) -> Verdict {
    if let Some(Ok(pid)) = line.strip_prefix("ready ").map(|p| p.trim().parse::<i32>()) {
        return Verdict::Ready(pid);
    }
    if let Some(why) = line.strip_prefix("unavailable ") {
        return Verdict::Unavailable(why.to_string());
    }
    let why = line.strip_prefix("error ").unwrap_or(line);
    Verdict::Failed(match (why.is_empty(), stderr) {
        (false, _) => why.to_string(),
        (true, "") => "the supervisor exited without a verdict".into(),
        (true, stderr) => stderr.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_the_line_or_stderr() {
        assert_eq!(parse_verdict("ready 42", ""), Verdict::Ready(42));
        assert_eq!(
            parse_verdict("unavailable no namespaces", ""),
            Verdict::Unavailable("no namespaces".into())
        );
        assert_eq!(
            parse_verdict("error no init", "x"),
            Verdict::Failed("no init".into())
        );
        assert_eq!(parse_verdict("", "panicked"), Verdict::Failed("panicked".into()));
        assert_eq!(
            parse_verdict("ready nonsense", ""),
            Verdict::Failed("ready nonsense".into())
        );
        assert_eq!(
            parse_verdict("", ""),
            Verdict::Failed("the supervisor exited without a verdict".into())
        );
    }
}
