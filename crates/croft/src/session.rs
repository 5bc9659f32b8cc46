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
    args: Vec<String>,
) -> Result<u8> {
    for e in &env {
        if !e.contains('=') || e.starts_with('=') {
            bail!("invalid --env {e:?}: expected NAME=value");
        }
    }
    let mut env = env;
    if tty {
        if let Ok(term) = std::env::var("TERM") {
            env.insert(0, format!("TERM={term}"));
        }
    }
    if client.is_remote() {
        return exec_remote(client, path_name(name)?, tty, env, cwd, args);
    }
    let conn = supervisor(client, name)?;
    let req = Request::Exec {
        args,
        env,
        cwd,
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
    args: Vec<String>,
) -> Result<u8> {
    use croft_api::exec::{ExecInput, ExecStart, STDOUT};
    use std::io::Write;
    let start = ExecStart {
        args,
        env,
        cwd,
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
