//! The user's terminal: raw mode and the copy loop between it and a pty
//! master inside the VPS (exec -t and console), the signals forwarded to a
//! command, and what a VPS wrote made safe to show on it.

use anyhow::Result;
use croft_proto::{Conn, Reply};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Puts stdin in raw mode while alive.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, orig);
        }
    }
}

/// The size of the user's terminal, if stdout is one.
/// Ask on a terminal before a change that loses data: `what` happens
/// unless the user types `name` back. Off a terminal (a script) or with
/// `yes` it goes ahead.
pub fn confirm(what: &str, name: &str, yes: bool) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    eprint!("{what}. Type {name} to go on (or run it with --yes): ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != name {
        anyhow::bail!("not confirmed; nothing was changed");
    }
    Ok(())
}

/// Read a secret: on a terminal after `prompt`, with echo off (and back
/// on after, whatever happens), twice to be sure; otherwise one line of
/// stdin.
pub fn read_secret(prompt: &str) -> Result<String> {
    use std::io::{BufRead, Write};
    let stdin = std::io::stdin();
    let read_line = || -> Result<String> {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
        return read_line();
    };
    let mut quiet = saved.clone();
    quiet.local_flags.remove(termios::LocalFlags::ECHO);
    termios::tcsetattr(stdin.as_fd(), SetArg::TCSAFLUSH, &quiet)?;
    let ask = |text: &str| -> Result<String> {
        eprint!("{text}");
        std::io::stderr().flush()?;
        let line = read_line();
        eprintln!();
        line
    };
    let (first, again) = (ask(prompt), ask("Again: "));
    termios::tcsetattr(stdin.as_fd(), SetArg::TCSAFLUSH, &saved)?;
    let (first, again) = (first?, again?);
    if first != again {
        anyhow::bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

pub fn window_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize through a valid pointer.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

fn set_window(fd: RawFd) {
    if let Some((rows, cols)) = window_size() {
        croft_proto::set_window(fd, rows, cols);
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT, caught through a signalfd so they
/// can be forwarded to a command inside the VPS.
pub struct ForwardedSignals {
    fd: SignalFd,
}

impl ForwardedSignals {
    pub fn new() -> Result<ForwardedSignals> {
        let mut mask = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
            mask.add(s);
        }
        mask.thread_block()?;
        Ok(ForwardedSignals {
            fd: SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?,
        })
    }

    /// Wait until a signal is caught; false if waiting failed.
    pub fn wait(&self) -> bool {
        wait_readable(self.fd.as_fd())
    }

    /// The signals caught since the last call, by number.
    pub fn pending(&self) -> Vec<i32> {
        std::iter::from_fn(|| self.fd.read_signal().ok().flatten())
            .map(|info| info.ssi_signo as i32)
            .collect()
    }
}

impl AsFd for ForwardedSignals {
    /// Readable when a signal was caught.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Window size changes (SIGWINCH), caught through a signalfd.
pub struct WindowChanges {
    fd: SignalFd,
}

impl WindowChanges {
    /// Block SIGWINCH in this thread (and the threads it starts after)
    /// and catch it.
    pub fn new() -> Result<WindowChanges> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGWINCH);
        mask.thread_block()?;
        Ok(WindowChanges {
            fd: SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?,
        })
    }

    /// Wait for a change (several at once count as one); false if
    /// waiting failed.
    pub fn wait(&self) -> bool {
        let ok = wait_readable(self.fd.as_fd());
        while self.fd.read_signal().ok().flatten().is_some() {}
        ok
    }
}

/// Wait until `fd` is readable; false on an error other than EINTR.
fn wait_readable(fd: BorrowedFd<'_>) -> bool {
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return true,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Text a VPS wrote, made safe to print on the user's terminal: each
/// control character but newline, tab and the carriage return of a CRLF
/// shown as a visible `^X` (ESC as `^[`, DEL as `^?`), and each C1 control
/// (which terminals may obey like an ESC sequence) as `<U+009B>`; so no
/// escape sequence recorded from a VPS reaches the terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => out.push(c),
            '\x7f' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c if ('\u{80}'..='\u{9f}').contains(&c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// How an interactive session ended.
pub enum SessionEnd {
    /// The exec'd command exited with this code.
    Exited(i32),
    /// The user typed the detach sequence.
    Detached,
    /// The supervisor went away (the VPS stopped).
    Closed(String),
}

/// Copy between the user's terminal and `master` until the command exits
/// (its code arrives on `conn`) or, with `detach_key`, the user types
/// Ctrl+<key> followed by `q`.
pub fn session(master: &OwnedFd, conn: &Conn, detach_key: Option<u8>) -> Result<SessionEnd> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    mask.thread_block()?;
    let winch = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    set_window(master.as_raw_fd());
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = true;
    let mut prefix_seen = false;
    let mut buf = [0u8; 16384];
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(conn.as_fd(), PollFlags::POLLIN),
            PollFd::new(winch.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let Some(ready) = wait_ready(&mut fds)? else {
            continue;
        };
        drop(fds);
        if ready[0] {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    write_all(stdout.as_fd(), &buf[..n]);
                }
                // EIO: every slave handle closed; the exit code follows on
                // the connection. Stop polling the master by waiting there.
                _ => return finish(conn),
            }
        }
        if ready[1] {
            drain(master, stdout.as_fd(), &mut buf);
            return finish(conn);
        }
        if ready[2] {
            while winch.read_signal().ok().flatten().is_some() {}
            set_window(master.as_raw_fd());
        }
        if stdin_open && ready.get(3).copied().unwrap_or(false) {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let mut out = Vec::with_capacity(n);
                    for &b in &buf[..n] {
                        match detach_key {
                            Some(key) if prefix_seen => {
                                prefix_seen = false;
                                if b == b'q' {
                                    write_all(master.as_fd(), &out);
                                    return Ok(SessionEnd::Detached);
                                }
                                out.push(key);
                                if b != key {
                                    out.push(b);
                                }
                            }
                            Some(key) if b == key => prefix_seen = true,
                            _ => out.push(b),
                        }
                    }
                    write_all(master.as_fd(), &out);
                }
                _ => stdin_open = false,
            }
        }
    }
}

/// Copy what the pty still holds, without blocking.
fn drain(master: &OwnedFd, out: BorrowedFd<'_>, buf: &mut [u8]) {
    loop {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
        match nix::unistd::read(master.as_raw_fd(), buf) {
            Ok(n) if n > 0 => {
                write_all(out, &buf[..n]);
            }
            _ => return,
        }
    }
}

fn finish(conn: &Conn) -> Result<SessionEnd> {
    Ok(match conn.recv::<Reply>() {
        Ok((Reply::Exited { code }, _)) => SessionEnd::Exited(code),
        Ok((Reply::Error { message }, _)) => SessionEnd::Closed(message),
        Ok((Reply::Down { exit }, _)) => SessionEnd::Closed(format!("the VPS went down: {}", exit.reason)),
        Ok((other, _)) => SessionEnd::Closed(format!("unexpected message {other:?}")),
        Err(e) => SessionEnd::Closed(e.to_string()),
    })
}

/// Wait until one of `fds` is ready; which are, or `None` when a signal
/// interrupted the wait (the caller loops).
pub fn wait_ready(fds: &mut [PollFd]) -> Result<Option<Vec<bool>>> {
    match poll(fds, PollTimeout::NONE) {
        Err(nix::Error::EINTR) => Ok(None),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(Some(
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn printable_shows_controls_and_keeps_text_lines_and_tabs() {
        assert_eq!(printable("boot ok\r\nlogin:\tx\n"), "boot ok\r\nlogin:\tx\n");
        // A title change, a screen clear, a lone CR that would overwrite
        // the line, BEL, DEL and a C1 CSI: all visible, none obeyed.
        assert_eq!(
            printable("\x1b]0;pwned\x07\x1b[2Jover\rwrite\x7f\u{9b}31m"),
            "^[]0;pwned^G^[[2Jover^Mwrite^?<U+009B>31m"
        );
        assert_eq!(printable("é ✓"), "é ✓");
        assert!(!printable(&(0u8..=127).map(char::from).collect::<String>()).contains('\x1b'));
    }
}
