//! `croft exec` and `croft console`: on this host, once croftd has
//! confirmed the VPS runs and named its supervisor's socket, the CLI talks
//! to the supervisor directly, handing it the pipes or the pty it owns; on
//! a remote croftd, `exec` goes through the API's WebSocket.

use crate::{path_name, relay, terminal};
use anyhow::{anyhow, bail, Result};
use croft_api::Status;
use croft_client::Client;
use croft_proto::{Conn, Reply, Request};

/// Ask croftd where the VPS's supervisor listens.
fn supervisor(client: &Client, name: &str) -> Result<Conn> {
    // One round trip on the way in (the socket is named only while the
    // VPS runs); a second only to say why not.
    let Some(socket) = client.host_details(path_name(name)?)?.control_socket else {
        let i = client.instance_state(name)?;
        if i.status != Status::Running {
            bail!("VPS {name} is {}, not running", i.status);
        }
        return Err(anyhow!("croftd did not name the supervisor of {name}"));
    };
    Ok(Conn::connect(std::path::Path::new(&socket))?)
}

pub fn exec(
    client: &Client,
    name: &str,
    tty: bool,
    env: Vec<String>,
    cwd: Option<String>,
    user: Option<String>,
    args: Vec<String>,
) -> Result<u8> {
    for e in &env {
        if !e.contains('=') || e.starts_with('=') {
            bail!("invalid --env {e:?}: expected NAME=value");
        }
    }
    // What croftd checks of a remote exec, checked here for a local one.
    croft_api::exec::validate_exec(&croft_api::exec::ExecStart {
        args: args.clone(),
        user: user.clone(),
        ..Default::default()
    })?;
    let mut env = env;
    if tty {
        if let Ok(term) = std::env::var("TERM") {
            env.insert(0, format!("TERM={term}"));
        }
    }
    if client.is_remote() {
        return exec_remote(client, path_name(name)?, tty, env, cwd, user, args);
    }
    let conn = supervisor(client, name)?;
    let req = Request::Exec {
        args,
        env,
        cwd,
        user,
        tty,
        window: if tty { terminal::window_size() } else { None },
    };
    if !tty {
        // Signals meant for the command (Ctrl+C, kill of this CLI) are
        // forwarded to it rather than ending only the CLI.
        let forward = terminal::ForwardedSignals::new()?;
        return match relay::exec(&conn, &req, &forward)? {
            Reply::Exited { code } => Ok(code.clamp(0, 255) as u8),
            Reply::Error { message } => bail!("{message}"),
            other => bail!("unexpected answer from the supervisor: {other:?}"),
        };
    }
    conn.send(&req, &[])?;
    let master = match conn.recv::<Reply>()? {
        (Reply::Pty, mut fds) if fds.len() == 1 => fds.remove(0),
        (Reply::Exited { code }, _) => return Ok(code.clamp(0, 255) as u8),
        (Reply::Error { message }, _) => bail!("{message}"),
        (other, _) => bail!("unexpected answer from the supervisor: {other:?}"),
    };
    let raw = terminal::RawMode::enter();
    let end = terminal::session(&master, &conn, None)?;
    drop(raw);
    match end {
        terminal::SessionEnd::Exited(code) => Ok(code.clamp(0, 255) as u8),
        terminal::SessionEnd::Detached => Ok(0),
        terminal::SessionEnd::Closed(why) => bail!("{why}"),
    }
}

/// `croft exec` on a remote croftd, through the API: the same exit code,
/// signals (Ctrl+C without a terminal), terminal and window size as on
/// the host.
fn exec_remote(
    client: &Client,
    name: &str,
    tty: bool,
    env: Vec<String>,
    cwd: Option<String>,
    user: Option<String>,
    args: Vec<String>,
) -> Result<u8> {
    use croft_api::exec::{ExecInput, ExecStart, STDOUT};
    use std::io::Write;
    let start = ExecStart {
        args,
        env,
        cwd,
        user,
        tty,
        window: if tty { terminal::window_size() } else { None },
    };
    let (controls, caught) = std::sync::mpsc::channel();
    let code = if tty {
        // Window changes become resizes; keys (Ctrl+C too) go to the
        // command's terminal as they are.
        let winch = terminal::WindowChanges::new()?;
        std::thread::spawn(move || {
            while winch.wait() {
                if let Some((rows, cols)) = terminal::window_size() {
                    if controls.send(ExecInput::Resize { rows, cols }).is_err() {
                        return;
                    }
                }
            }
        });
        let raw = terminal::RawMode::enter();
        let io = croft_client::ExecIo {
            stdin: Box::new(std::io::stdin()),
            output: Box::new(|_, bytes| {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes).and_then(|()| out.flush());
            }),
            controls: caught,
        };
        let code = client.exec(name, &start, io);
        drop(raw);
        code?
    } else {
        // Signals meant for the command are forwarded to it.
        let forward = terminal::ForwardedSignals::new()?;
        std::thread::spawn(move || {
            while forward.wait() {
                for signal in forward.pending() {
                    if controls.send(ExecInput::Signal { signal }).is_err() {
                        return;
                    }
                }
            }
        });
        let io = croft_client::ExecIo {
            stdin: Box::new(std::io::stdin()),
            output: Box::new(|stream, bytes| {
                // A closed stdout ends the CLI by SIGPIPE, as in a pipeline.
                let _ = if stream == STDOUT {
                    let mut out = std::io::stdout().lock();
                    out.write_all(bytes).and_then(|()| out.flush())
                } else {
                    std::io::stderr().lock().write_all(bytes)
                };
            }),
            controls: caught,
        };
        client.exec(name, &start, io)?
    };
    Ok(code.clamp(0, 255) as u8)
}

/// Ctrl+a, as in screen and incus.
const DETACH_PREFIX: u8 = 0x01;

pub fn console(client: &Client, name: &str) -> Result<()> {
    if client.is_remote() {
        return console_remote(client, path_name(name)?);
    }
    let conn = supervisor(client, name)?;
    conn.send(&Request::Console, &[])?;
    let master = match conn.recv::<Reply>()? {
        (Reply::Console, mut fds) if fds.len() == 1 => fds.remove(0),
        (Reply::Error { message }, _) => bail!("{message}"),
        (other, _) => bail!("unexpected answer from the supervisor: {other:?}"),
    };
    eprintln!("Connected to the console of {name}. Detach with Ctrl+a q.\r");
    let raw = terminal::RawMode::enter();
    let end = terminal::session(&master, &conn, Some(DETACH_PREFIX))?;
    drop(raw);
    match end {
        terminal::SessionEnd::Closed(why) => eprintln!("\r\nConsole closed: {why}"),
        _ => eprintln!("\r\nDetached from {name}."),
    }
    Ok(())
}

/// `croft console` on a remote croftd, through the API: keys as typed
/// (Ctrl+a q detaches), window sizes followed.
fn console_remote(client: &Client, name: &str) -> Result<()> {
    use croft_api::exec::ExecInput;
    use std::io::Write;
    let (controls, caught) = std::sync::mpsc::channel();
    if let Some((rows, cols)) = terminal::window_size() {
        let _ = controls.send(ExecInput::Resize { rows, cols });
    }
    let winch = terminal::WindowChanges::new()?;
    std::thread::spawn(move || {
        while winch.wait() {
            if let Some((rows, cols)) = terminal::window_size() {
                if controls.send(ExecInput::Resize { rows, cols }).is_err() {
                    return;
                }
            }
        }
    });
    eprintln!("Connected to the console of {name}. Detach with Ctrl+a q.\r");
    let raw = terminal::RawMode::enter();
    let io = croft_client::ExecIo {
        stdin: Box::new(DetachKeys::new(std::io::stdin(), DETACH_PREFIX)),
        output: Box::new(|_, bytes| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(bytes).and_then(|()| out.flush());
        }),
        controls: caught,
    };
    let end = client.console(name, io);
    drop(raw);
    match end {
        Ok(_) => eprintln!("\r\nDetached from {name}."),
        Err(e) => eprintln!("\r\nConsole closed: {e}"),
    }
    Ok(())
}

/// Keys read through, until `prefix` then `q` (detach) ends them; the
/// prefix twice sends it once.
struct DetachKeys<R> {
    inner: R,
    prefix: u8,
    prefix_seen: bool,
    detached: bool,
}

impl<R> DetachKeys<R> {
    fn new(inner: R, prefix: u8) -> Self {
        DetachKeys {
            inner,
            prefix,
            prefix_seen: false,
            detached: false,
        }
    }
}

impl<R: std::io::Read> std::io::Read for DetachKeys<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.detached || buf.len() < 2 {
                return Ok(0);
            }
            let mut raw = vec![0u8; buf.len() / 2];
            let n = self.inner.read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            let mut out = 0;
            for &b in &raw[..n] {
                if self.prefix_seen {
                    self.prefix_seen = false;
                    if b == b'q' {
                        self.detached = true;
                        break;
                    }
                    buf[out] = self.prefix;
                    out += 1;
                    if b != self.prefix {
                        buf[out] = b;
                        out += 1;
                    }
                } else if b == self.prefix {
                    self.prefix_seen = true;
                } else {
                    buf[out] = b;
                    out += 1;
                }
            }
            if out > 0 || self.detached {
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DetachKeys;
    use std::io::Read;

    #[test]
    fn ctrl_a_q_detaches_and_ctrl_a_twice_sends_one() {
        let mut keys = DetachKeys::new(&b"ls\x01\x01x\x01yz\x01qafter"[..], 0x01);
        let mut got = Vec::new();
        keys.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ls\x01x\x01yz");
    }
}
