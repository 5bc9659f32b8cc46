//! The supervisor control protocol (its own crate, so clients such as the
//! CLI speak it without linking croft-host).
//!
//! Each supervisor listens on a root-only `SOCK_SEQPACKET` unix socket in
//! its run directory. A message is one JSON document in one packet, and may
//! carry file descriptors (`SCM_RIGHTS`): `croft exec` hands its own
//! stdin/stdout/stderr to the supervisor, so the command inside the VPS
//! writes straight to the user's terminal with no copying process in
//! between; `croft console` receives the console pty master. Seqpacket keeps
//! message boundaries, so descriptors always arrive with their message.

use nix::cmsg_space;
use nix::sys::socket::{
    self, recvmsg, sendmsg, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest message accepted (requests carry an argv and an environment).
pub const MAX_MESSAGE: usize = 256 * 1024;
/// Most descriptors one message may carry.
pub const MAX_FDS: usize = 4;

#[derive(Debug, Error)]
pub enum ProtoError {
    #[error("cannot connect to supervisor socket {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("supervisor socket i/o failed")]
    Io(#[source] nix::Error),
    #[error("supervisor closed the connection")]
    Closed,
    #[error("malformed supervisor message")]
    Malformed(#[source] serde_json::Error),
    #[error("supervisor message too large")]
    TooLarge,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Is the VPS up, and what is its init?
    Status,
    /// Run a command inside the VPS. Without `tty` the message carries the
    /// caller's stdin, stdout and stderr.
    Exec {
        args: Vec<String>,
        #[serde(default)]
        env: Vec<String>,
        #[serde(default)]
        cwd: Option<String>,
        /// A user of the VPS to run it as (default root).
        #[serde(default)]
        user: Option<String>,
        #[serde(default)]
        tty: bool,
        #[serde(default)]
        window: Option<(u16, u16)>,
    },
    /// Hand over the console pty master until this connection closes.
    Console,
    /// Ask init to power off (or kill it with `force`), killing after
    /// `timeout_secs`. Answered when the VPS is down.
    Stop { force: bool, timeout_secs: u64 },
    /// Keep the connection open and receive an `Event` for every reboot and
    /// the final exit.
    Watch,
    /// On an exec connection, after `Exec`: deliver this signal to the
    /// command (the CLI forwards Ctrl+C, SIGTERM and SIGHUP this way).
    Signal { signal: i32 },
    /// Add (or with `remove`, take away) an address with prefix,
    /// `198.51.100.20/32`, on the VPS's `eth0`, live. Answered with `Done`.
    Address {
        cidr: String,
        #[serde(default)]
        remove: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Status {
        init_pid: i32,
        supervisor_pid: i32,
        started_at: u64,
        boots: u32,
    },
    /// The pty of a `tty` exec; the message carries its master.
    Pty,
    /// The command of an exec ended: its exit code, or 128 + signal.
    Exited {
        code: i32,
    },
    /// The console master comes with this message.
    Console,
    /// The VPS is down (answer to `Stop`, and the last `Watch` event).
    Down {
        exit: ExitRecord,
    },
    /// The VPS rebooted and runs with a new init.
    Rebooted {
        init_pid: i32,
        /// Why, when it was not the VPS's own reboot (its init was killed
        /// by the OOM killer).
        #[serde(default)]
        reason: Option<String>,
    },
    Error {
        message: String,
    },
    /// A change (`Address`) is made.
    Done,
}

/// How a VPS's init ended; kept in `exit.json` so that a daemon that was
/// down at the time learns it later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitRecord {
    pub reason: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Seconds since the epoch.
    pub at: u64,
    /// The stop was asked for (croft stop, poweroff inside), not a crash.
    pub clean: bool,
}

/// A connected seqpacket socket.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
}

impl Conn {
    /// Connect to a supervisor's control socket.
    pub fn connect(path: &Path) -> Result<Conn, ProtoError> {
        let err = |source| ProtoError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(err)?;
        let addr = UnixAddr::new(path).map_err(err)?;
        socket::connect(fd.as_raw_fd(), &addr).map_err(err)?;
        Ok(Conn { fd })
    }

    pub fn from_fd(fd: OwnedFd) -> Conn {
        Conn { fd }
    }

    /// Make `recv` answer `EAGAIN` instead of waiting (for a caller that
    /// polls the socket itself).
    pub fn set_nonblocking(&self) -> Result<(), ProtoError> {
        let flags =
            nix::fcntl::fcntl(self.fd.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).map_err(ProtoError::Io)?;
        let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(self.fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(ProtoError::Io)?;
        Ok(())
    }

    pub fn send<T: Serialize>(&self, msg: &T, fds: &[RawFd]) -> Result<(), ProtoError> {
        let body = serde_json::to_vec(msg).map_err(ProtoError::Malformed)?;
        if body.len() > MAX_MESSAGE {
            return Err(ProtoError::TooLarge);
        }
        let iov = [IoSlice::new(&body)];
        let cmsgs = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => return Err(ProtoError::Closed),
                Err(e) => return Err(ProtoError::Io(e)),
            }
        }
    }

    /// Receive one message and the descriptors that came with it.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<(T, Vec<OwnedFd>), ProtoError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut cmsg = cmsg_space!([RawFd; MAX_FDS]);
        let (len, fds, truncated) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    for c in msg.cmsgs().map_err(ProtoError::Io)? {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            // SAFETY: the kernel just installed these descriptors in our
                            // table for this message; nothing else owns them.
                            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                    break (msg.bytes, fds, msg.flags.contains(MsgFlags::MSG_TRUNC));
                }
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ECONNRESET) => return Err(ProtoError::Closed),
                Err(e) => return Err(ProtoError::Io(e)),
            }
        };
        if truncated {
            return Err(ProtoError::TooLarge);
        }
        if len == 0 {
            return Err(ProtoError::Closed);
        }
        let msg = serde_json::from_slice(&buf[..len]).map_err(ProtoError::Malformed)?;
        Ok((msg, fds))
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Conn {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }
}

/// A connected pair, for a parent and the child it forks.
pub fn pair() -> Result<(Conn, Conn), ProtoError> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(ProtoError::Io)?;
    Ok((Conn { fd: a }, Conn { fd: b }))
}

/// Set the size of the terminal `fd` (a pty master or slave): what both
/// ends of a console or `exec -t` session do when a window changes.
pub fn set_window(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize through a valid pointer; a bad
    // descriptor makes the ioctl fail, nothing more.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn messages_carry_descriptors() {
        let (a, b) = pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"through the socket").unwrap();
        a.send(
            &Request::Exec {
                args: vec!["true".into()],
                env: vec![],
                cwd: None,
                user: None,
                tty: false,
                window: None,
            },
            &[file.as_raw_fd()],
        )
        .unwrap();
        let (req, fds): (Request, _) = b.recv().unwrap();
        assert!(matches!(req, Request::Exec { ref args, .. } if args == &["true"]));
        assert_eq!(fds.len(), 1);
        let mut got = std::fs::File::from(fds.into_iter().next().unwrap());
        got.rewind().unwrap();
        let mut s = String::new();
        got.read_to_string(&mut s).unwrap();
        assert_eq!(s, "through the socket");
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = pair().unwrap();
        drop(a);
        assert!(matches!(b.recv::<Reply>(), Err(ProtoError::Closed)));
    }
}
