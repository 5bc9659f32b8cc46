//! Exec and console for the API: croftd asks the VPS's supervisor to run
//! the command, handing it pipes (or taking the pty it makes), or for the
//! console's pty, and pumps them to and from the session's channels on
//! threads of their own. What a process
//! the command left behind writes after the command's exit is not sent
//! (as `croft exec` on the host does): the output ends with the exit.

use super::ContainerBackend;
use crate::backend::session::{channels, ExecControl, ExecEnds, ExecSession};
use crate::backend::{BackendError, Result};
use bytes::Bytes;
use croft_api::exec::{ExecStart, STDERR, STDOUT};
use croft_proto::{Conn, Reply, Request};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

/// SIGHUP: what a command whose client went away gets, as on a closed
/// terminal.
const HANGUP: i32 = 1;

/// A command the supervisor took: its connection, and its ends.
enum Started {
    Pipes {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Pty {
        master: OwnedFd,
    },
    /// It ended before a pty was handed over.
    Done(i32),
}

impl ContainerBackend {
    pub(super) async fn exec_supervised(&self, key: &str, start: ExecStart) -> Result<ExecSession> {
        let socket = croft_host::spec::RunDir(&self.run_dir(key)).socket();
        let tty = start.tty;
        let (conn, started) = crate::blocking(move || begin(socket, start))
            .await?
            .map_err(|detail| BackendError::Unavailable {
                name: key.to_string(),
                detail,
            })?;
        let (session, ends) = channels();
        std::thread::spawn(move || pump(Arc::new(conn), started, tty, Ending::HangUp, ends));
        Ok(session)
    }

    pub(super) async fn console_supervised(&self, key: &str) -> Result<ExecSession> {
        let socket = croft_host::spec::RunDir(&self.run_dir(key)).socket();
        let (conn, master) = crate::blocking(move || attach_console(socket))
            .await?
            .map_err(|detail| BackendError::Unavailable {
                name: key.to_string(),
                detail,
            })?;
        let (session, ends) = channels();
        let started = Started::Pty { master };
        std::thread::spawn(move || pump(Arc::new(conn), started, true, Ending::Detach, ends));
        Ok(session)
    }
}

/// What ends a session whose client is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// An exec: the command is hung up, as on a closed terminal.
    HangUp,
    /// The console: the connection that holds it is closed, and the VPS
    /// runs on.
    Detach,
}

/// Connect to the supervisor at `socket` and take the console's pty.
fn attach_console(socket: PathBuf) -> std::result::Result<(Conn, OwnedFd), String> {
    let conn = Conn::connect(&socket).map_err(|e| format!("cannot reach its supervisor: {e}"))?;
    conn.send(&Request::Console, &[])
        .map_err(|e| format!("the supervisor did not hand over the console: {e}"))?;
    match conn.recv::<Reply>() {
        Ok((Reply::Console, mut fds)) if fds.len() == 1 => Ok((conn, fds.remove(0))),
        Ok((Reply::Error { message }, _)) => Err(message),
        Ok((other, _)) => Err(format!("unexpected answer from the supervisor: {other:?}")),
        Err(e) => Err(format!("the supervisor did not hand over the console: {e}")),
    }
}

/// Connect to the supervisor at `socket` and hand it the command.
fn begin(socket: PathBuf, start: ExecStart) -> std::result::Result<(Conn, Started), String> {
    let conn = Conn::connect(&socket).map_err(|e| format!("cannot reach its supervisor: {e}"))?;
    let req = Request::Exec {
        args: start.args,
        env: start.env,
        cwd: start.cwd,
        user: start.user,
        tty: start.tty,
        window: start.window,
    };
    let failed = |e: &dyn std::fmt::Display| format!("the supervisor did not take the command: {e}");
    if !start.tty {
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(&e));
        let ((stdin_r, stdin_w), (stdout_r, stdout_w), (stderr_r, stderr_w)) = (pipe()?, pipe()?, pipe()?);
        conn.send(
            &req,
            &[stdin_r.as_raw_fd(), stdout_w.as_raw_fd(), stderr_w.as_raw_fd()],
        )
        .map_err(|e| failed(&e))?;
        // Only the VPS's copies of its ends remain: EOF on stdout and
        // stderr then means the command closed them.
        drop((stdin_r, stdout_w, stderr_w));
        let started = Started::Pipes {
            stdin: stdin_w,
            stdout: stdout_r,
            stderr: stderr_r,
        };
        return Ok((conn, started));
    }
    conn.send(&req, &[]).map_err(|e| failed(&e))?;
    let started = match conn.recv::<Reply>().map_err(|e| failed(&e))? {
        (Reply::Pty, mut fds) if fds.len() == 1 => Started::Pty {
            master: fds.remove(0),
        },
        (Reply::Exited { code }, _) => Started::Done(code),
        (Reply::Error { message }, _) => return Err(message),
        (other, _) => return Err(format!("unexpected answer from the supervisor: {other:?}")),
    };
    Ok((conn, started))
}

/// Run the session to its end: stdin and control on threads of their
/// own, output and the exit here.
fn pump(conn: Arc<Conn>, started: Started, tty: bool, ending: Ending, ends: ExecEnds) {
    let ExecEnds {
        stdin,
        output,
        control,
        exit,
    } = ends;
    let (outputs, input, master) = match started {
        Started::Done(code) => {
            let _ = exit.send(Ok(code));
            return;
        }
        Started::Pipes {
            stdin,
            stdout,
            stderr,
        } => (vec![(STDOUT, stdout), (STDERR, stderr)], stdin, None),
        Started::Pty { master } => match master.try_clone() {
            Ok(input) => {
                let window = master.try_clone().ok();
                (vec![(STDOUT, master)], input, window)
            }
            Err(e) => {
                let _ = exit.send(Err(format!("cannot use the command's terminal: {e}")));
                return;
            }
        },
    };
    std::thread::spawn(move || feed(stdin, input));
    let signals = conn.clone();
    std::thread::spawn(move || steer(control, &signals, master, tty, ending));
    let outcome = relay_output(&conn, outputs, &output);
    let _ = exit.send(match (ending, outcome) {
        (Ending::Detach, Err(_)) => Err("the console closed: the VPS stopped".into()),
        (_, outcome) => outcome,
    });
}

/// Write what arrives for stdin into the command's; drop it (end of
/// input) when the session's sender is gone.
fn feed(mut from: tokio::sync::mpsc::Receiver<Bytes>, to: OwnedFd) {
    let mut to = std::fs::File::from(to);
    while let Some(bytes) = from.blocking_recv() {
        if to.write_all(&bytes).is_err() {
            return;
        }
    }
}

/// Deliver signals and window sizes; when the session is dropped, end
/// it as `ending` says.
fn steer(
    mut control: tokio::sync::mpsc::UnboundedReceiver<ExecControl>,
    conn: &Conn,
    master: Option<OwnedFd>,
    tty: bool,
    ending: Ending,
) {
    while let Some(c) = control.blocking_recv() {
        match c {
            ExecControl::Signal(signal) => {
                if ending == Ending::HangUp {
                    let _ = conn.send(&Request::Signal { signal }, &[]);
                }
            }
            ExecControl::Resize { rows, cols } => {
                if let (true, Some(m)) = (tty, &master) {
                    croft_proto::set_window(m.as_raw_fd(), rows, cols);
                }
            }
        }
    }
    // The session was dropped: by a client that went away, or after the
    // exit (when the supervisor no longer listens for this).
    match ending {
        Ending::HangUp => {
            let _ = conn.send(&Request::Signal { signal: HANGUP }, &[]);
        }
        // The output relay then sees the connection end and returns,
        // which drops the connection: the supervisor takes the console
        // back.
        Ending::Detach => {
            let _ = nix::sys::socket::shutdown(conn.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
    }
}

/// Copy the command's output into `to` until its exit arrives on `conn`;
/// then what it wrote before is drained, and its exit code returned.
fn relay_output(
    conn: &Conn,
    mut outputs: Vec<(u8, OwnedFd)>,
    to: &tokio::sync::mpsc::Sender<(u8, Bytes)>,
) -> std::result::Result<i32, String> {
    loop {
        let mut fds = vec![PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            outputs
                .iter()
                .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
            Ok(_) => {}
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        // Outputs at their end (EOF, or EIO of a pty whose every slave
        // closed) stop being watched; the exit comes on the connection.
        let mut done = Vec::new();
        for (i, (stream, fd)) in outputs.iter().enumerate() {
            if ready[i + 1] && !copy_once(*stream, fd, to) {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            outputs.remove(i);
        }
        if ready[0] {
            let reply = conn.recv::<Reply>();
            for (stream, fd) in &outputs {
                for _ in 0..16 {
                    if !readable_now(fd) || !copy_once(*stream, fd, to) {
                        break;
                    }
                }
            }
            return match reply {
                Ok((Reply::Exited { code }, _)) => Ok(code),
                Ok((Reply::Error { message }, _)) => Err(message),
                Ok((other, _)) => Err(format!("unexpected answer from the supervisor: {other:?}")),
                Err(e) => Err(format!("the supervisor went away: {e}")),
            };
        }
    }
}

/// Read once from `fd` and send it as `stream`; false at its end, or when
/// nobody takes the output any more.
fn copy_once(stream: u8, fd: &OwnedFd, to: &tokio::sync::mpsc::Sender<(u8, Bytes)>) -> bool {
    let mut buf = vec![0u8; 65536];
    match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            buf.truncate(n);
            to.blocking_send((stream, Bytes::from(buf))).is_ok()
        }
        Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => true,
        Err(_) => false,
    }
}

/// Whether `fd` has data (or its end) to read right now.
fn readable_now(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}
