//! `croft exec` and `croft console`: once croftd has confirmed the VPS
//! runs and named its supervisor's socket, the CLI talks to the
//! supervisor directly, handing it the pipes or the pty it owns.

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
    let conn = supervisor(client, name)?;
    let mut env = env;
    if tty {
        if let Ok(term) = std::env::var("TERM") {
            env.insert(0, format!("TERM={term}"));
        }
    }
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
