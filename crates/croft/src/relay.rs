//! `croft exec` without a tty: the command's stdin, stdout and stderr are
//! pipes this CLI owns, copied to and from its own. The CLI's descriptors
//! (often the admin's terminal) never enter the VPS, so nothing left
//! running there after the command exits can read what the admin types
//! next or write to their terminal: the CLI stops copying when the
//! command's exit arrives.

use crate::terminal::ForwardedSignals;
use anyhow::Result;
use croft_proto::{Conn, Reply, Request};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Send `req` (an Exec without a tty) with pipe ends as the command's
/// stdio, copy between them and this process's stdio, forward caught
/// signals, and return the supervisor's reply once the command is done.
pub fn exec(conn: &Conn, req: &Request, signals: &ForwardedSignals) -> Result<Reply> {
    let (stdin_r, stdin_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stdout_r, stdout_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (stderr_r, stderr_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    conn.send(
        req,
        &[stdin_r.as_raw_fd(), stdout_w.as_raw_fd(), stderr_w.as_raw_fd()],
    )?;
    // Only the VPS's copies of these ends remain: EOF on stdout and
    // stderr then means the command (and all it started) closed them.
    drop((stdin_r, stdout_w, stderr_w));
    // A thread feeds stdin (a blocking read of the CLI's stdin cannot sit
    // in the poll below without stalling output when the command does not
    // read); it ends with the process. It inherits the signal mask, so
    // signals still arrive at the signalfd.
    std::thread::spawn(move || feed_stdin(stdin_w));

    let mut outputs = [Some(stdout_r), Some(stderr_r)];
    loop {
        let mut fds = vec![
            PollFd::new(conn.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        let watched: Vec<usize> = (0..2).filter(|&i| outputs[i].is_some()).collect();
        for &i in &watched {
            fds.push(PollFd::new(
                outputs[i].as_ref().expect("watched").as_fd(),
                PollFlags::POLLIN,
            ));
        }
        let Some(ready) = crate::terminal::wait_ready(&mut fds)? else {
            continue;
        };
        drop(fds);
        for (slot, &i) in watched.iter().enumerate() {
            if ready[2 + slot] && !copy_once(&mut outputs[i], i) {
                outputs[i] = None;
            }
        }
        if ready[1] {
            for signal in signals.pending() {
                // A failed send means the supervisor is gone: its reply
                // (or the closed connection) is read next.
                let _ = conn.send(&Request::Signal { signal }, &[]);
            }
        }
        if ready[0] {
            let (reply, _) = conn.recv::<Reply>()?;
            // What the command wrote before it exited is in the pipes (at
            // most a pipe's capacity, 1 MiB at the most by default); copy
            // that, and not what a process it left behind writes later.
            for (i, output) in outputs.iter_mut().enumerate() {
                for _ in 0..=DRAIN_READS {
                    if !output.as_ref().is_some_and(readable_now) || !copy_once(output, i) {
                        break;
                    }
                }
            }
            return Ok(reply);
        }
    }
}

/// Reads of 64 KiB that empty the largest pipe an unprivileged process
/// may make (`fs.pipe-max-size`, 1 MiB by default).
const DRAIN_READS: usize = 16;

/// Copy the CLI's stdin into the command's until either ends.
fn feed_stdin(to: OwnedFd) {
    // The CLI dies of SIGPIPE on a closed stdout, as tools in a pipeline
    // do; a command that closed its stdin must not end it that way (the
    // signal goes to the writing thread, so blocking it here suffices).
    let mut pipe = nix::sys::signal::SigSet::empty();
    pipe.add(nix::sys::signal::Signal::SIGPIPE);
    let _ = pipe.thread_block();
    let mut to = std::fs::File::from(to);
    let mut buf = [0u8; 16384];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// Read once from `pipe` and write it to stdout (`which` 0) or stderr
/// (1); false at EOF or on an error, when the pipe is done.
fn copy_once(pipe: &mut Option<OwnedFd>, which: usize) -> bool {
    let Some(fd) = pipe else { return false };
    let mut buf = [0u8; 65536];
    match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            // A closed stdout (`croft exec ... | head`) ends the CLI by
            // SIGPIPE, as it ends any tool in a pipeline.
            let _ = if which == 0 {
                std::io::stdout()
                    .lock()
                    .write_all(&buf[..n])
                    .and_then(|()| std::io::stdout().flush())
            } else {
                std::io::stderr().lock().write_all(&buf[..n])
            };
            true
        }
        Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => true,
        Err(_) => false,
    }
}

/// Whether `fd` has data (or EOF) to read right now.
fn readable_now(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}
