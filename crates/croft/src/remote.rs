//! Remotes: other croftds this CLI talks to over TLS, each with the
//! certificate fingerprint pinned when it was added (SSH-style) and the
//! API token it presents, kept in the user's `remotes.toml` (mode 0600).
//! `croft --remote NAME …`, `NAME:vps` arguments and `croft remote
//! switch` pick one; `local` is always this host's socket.

use crate::{print_table, Format};
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use croft_client::Client;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The name of this host's croftd, reached through its socket.
pub const LOCAL: &str = "local";

#[derive(Subcommand)]
pub enum RemoteCommand {
    /// Add a remote croftd: with a trust token (`croft trust add` there
    /// prints one), which carries its address and certificate, enroll this
    /// machine's client certificate; or with its URL and an API token.
    Add {
        /// The remote.
        name: String,
        /// A trust token, or https://HOST[:PORT] (port 8443 if none).
        #[arg(value_name = "TOKEN|URL")]
        url: String,
        /// The API token to present (croft token create on the server).
        #[arg(long, env = "CROFT_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The server certificate's SHA-256 fingerprint, as `croft server
        /// info` shows it there; without it the fingerprint is shown and
        /// must be accepted.
        #[arg(long)]
        fingerprint: Option<String>,
        /// Trust the certificate the server shows without asking.
        #[arg(long)]
        accept_certificate: bool,
    },
    /// List the remotes.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Forget a remote.
    Remove {
        /// The remote.
        name: String,
    },
    /// Use a remote (or `local`) when none is named.
    Switch {
        /// The remote.
        name: String,
    },
}

/// One remote as kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    pub url: String,
    pub fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Whether this machine's client certificate is trusted there.
    #[serde(default)]
    pub certificate: bool,
}

/// The user's remotes file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Remotes {
    /// The remote used when none is named; `local` if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default)]
    pub remotes: BTreeMap<String, Remote>,
}

/// `$CROFT_CONFIG_DIR/remotes.toml`, else under `$XDG_CONFIG_HOME/croft`
/// or `~/.config/croft`; `None` without any of them.
fn path() -> Option<PathBuf> {
    let dir = match (
        std::env::var_os("CROFT_CONFIG_DIR"),
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    ) {
        (Some(dir), _, _) => PathBuf::from(dir),
        (None, Some(xdg), _) => PathBuf::from(xdg).join("croft"),
        (None, None, Some(home)) => PathBuf::from(home).join(".config/croft"),
        (None, None, None) => return None,
    };
    Some(dir.join("remotes.toml"))
}

impl Remotes {
    /// The user's remotes; none if there is no file (or no home for one).
    pub fn load() -> Result<Remotes> {
        let Some(path) = path() else {
            return Ok(Remotes::default());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Remotes::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Write the file whole (a temporary file renamed over it), readable
    /// by the user only: it holds tokens.
    fn save(&self) -> Result<()> {
        let path = path().ok_or_else(|| anyhow!("no HOME to keep remotes in (set CROFT_CONFIG_DIR)"))?;
        let dir = path.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let text = toml::to_string_pretty(self).context("cannot write the remotes")?;
        let tmp = dir.join(format!(".remotes.toml.{}", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.with_context(|| format!("cannot write {}", path.display()))
    }

    /// The client for remote `name` (`local`: the socket).
    pub fn client(&self, name: &str, socket: PathBuf) -> Result<Client> {
        if name == LOCAL {
            return Ok(Client::new(socket)?);
        }
        let remote = self
            .remotes
            .get(name)
            .ok_or_else(|| anyhow!("no remote {name} (croft remote list)"))?;
        let identity = match remote.certificate {
            true => Some(identity()?),
            false => None,
        };
        Ok(Client::remote_with(
            &remote.url,
            &remote.fingerprint,
            remote.token.clone(),
            identity.as_ref(),
        )?)
    }

    /// Whether `name` is a remote (or `local`).
    pub fn knows(&self, name: &str) -> bool {
        name == LOCAL || self.remotes.contains_key(name)
    }
}

/// This machine's client certificate (made on first use, its key 0600),
/// which remotes enrolled with a trust token know it by.
fn identity() -> Result<croft_client::tls::Identity> {
    let dir = path()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .ok_or_else(|| anyhow!("no HOME to keep the client certificate in (set CROFT_CONFIG_DIR)"))?;
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    if !cert.exists() && !key.exists() {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "croft".into());
        let made =
            rcgen::generate_simple_self_signed(vec![host]).context("cannot make a client certificate")?;
        let write = |path: &PathBuf, mode: u32, text: &str| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .with_context(|| format!("cannot write {}", path.display()))
        };
        write(&key, 0o600, &made.key_pair.serialize_pem())?;
        write(&cert, 0o644, &made.cert.pem())?;
    }
    let read =
        |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
    Ok(croft_client::tls::Identity {
        certificate_pem: read(&cert)?,
        key_pem: read(&key)?,
    })
}

/// Take `REMOTE:` off arguments that name a VPS on a remote
/// (`prod:web1`): the remote they name, if any. Only a prefix that is a
/// known remote counts, so `8080:80` and `key=a:b` are left alone; two
/// remotes in one command are refused.
pub fn take_remote_prefix(args: &mut [String], remotes: &Remotes) -> Result<Option<String>> {
    let mut chosen: Option<String> = None;
    for arg in args.iter_mut().skip(1) {
        let Some((remote, rest)) = arg.split_once(':') else {
            continue;
        };
        if arg.starts_with('-') || !remotes.knows(remote) || croft_api::validate_name(rest).is_err() {
            continue;
        }
        if chosen.as_deref().is_some_and(|c| c != remote) {
            bail!(
                "one command talks to one remote, not {} and {remote}",
                chosen.unwrap_or_default()
            );
        }
        chosen = Some(remote.to_string());
        *arg = rest.to_string();
    }
    Ok(chosen)
}

pub fn run(command: RemoteCommand) -> Result<()> {
    let mut remotes = Remotes::load()?;
    match command {
        RemoteCommand::Add {
            name,
            url,
            token,
            fingerprint,
            accept_certificate,
        } => {
            croft_api::validate_name(&name).map_err(|e| anyhow!("remote {e}"))?;
            if remotes.knows(&name) {
                bail!("remote {name} already exists (croft remote remove {name} first)");
            }
            if url.starts_with("croftjoin_") {
                let remote = join(&url)?;
                let shown = remote.url.clone();
                remotes.remotes.insert(name.clone(), remote);
                remotes.save()?;
                println!("Added remote {name} ({shown}): this machine's certificate is trusted there");
                return Ok(());
            }
            croft_client::parse_url(&url)?;
            let shown = Client::server_fingerprint(&url)?;
            match fingerprint {
                Some(want) if !want.eq_ignore_ascii_case(&shown) => bail!(
                    "{url} shows certificate {shown}, not {want}: not adding it (another server, or a changed certificate)"
                ),
                Some(_) => {}
                None if accept_certificate => {}
                None => confirm(&url, &shown)?,
            }
            let remote = Remote {
                url: url.clone(),
                fingerprint: shown,
                token,
                certificate: false,
            };
            // The token is tried before anything is kept.
            let client = Client::remote(&remote.url, &remote.fingerprint, remote.token.clone())?;
            let me = client.whoami()?;
            remotes.remotes.insert(name.clone(), remote);
            remotes.save()?;
            let tenant = me.tenant.map(|t| format!(" of tenant {t}")).unwrap_or_default();
            println!("Added remote {name} ({url}) as {}, {}{tenant}", me.name, me.role);
        }
        RemoteCommand::List { format } => {
            let default = remotes.default.clone().unwrap_or_else(|| LOCAL.into());
            if format == Format::Json {
                let shown: BTreeMap<&String, (&str, &str)> = remotes
                    .remotes
                    .iter()
                    .map(|(n, r)| (n, (r.url.as_str(), r.fingerprint.as_str())))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&(default, shown))?);
            } else {
                let mark = |n: &str| if n == default { "*" } else { "" }.to_string();
                let local = vec![mark(LOCAL), LOCAL.to_string(), "unix socket".into(), "-".into()];
                print_table(
                    &["", "NAME", "URL", "FINGERPRINT"],
                    std::iter::once(local).chain(remotes.remotes.iter().map(|(n, r)| {
                        vec![
                            mark(n),
                            n.clone(),
                            r.url.clone(),
                            r.fingerprint[..16.min(r.fingerprint.len())].to_string(),
                        ]
                    })),
                );
            }
        }
        RemoteCommand::Remove { name } => {
            if remotes.remotes.remove(&name).is_none() {
                bail!("no remote {name}");
            }
            if remotes.default.as_deref() == Some(name.as_str()) {
                remotes.default = None;
            }
            remotes.save()?;
            println!("Removed remote {name}");
        }
        RemoteCommand::Switch { name } => {
            if !remotes.knows(&name) {
                bail!("no remote {name} (croft remote list)");
            }
            remotes.default = (name != LOCAL).then(|| name.clone());
            remotes.save()?;
            println!("Using remote {name}");
        }
    }
    Ok(())
}

/// Use trust token `text`: find croftd at one of its addresses showing
/// the certificate the token names (nothing is sent to any other), and
/// enroll this machine's client certificate there.
fn join(text: &str) -> Result<Remote> {
    let token = croft_api::JoinToken::decode(text)?;
    let identity = identity()?;
    let mut tried = Vec::new();
    for address in &token.addresses {
        let url = format!("https://{address}");
        match Client::server_fingerprint(&url) {
            Ok(shown) if shown == token.fingerprint => {
                let client = Client::remote_with(&url, &token.fingerprint, None, Some(&identity))?;
                client.enroll(&token.secret)?;
                return Ok(Remote {
                    url,
                    fingerprint: token.fingerprint,
                    token: None,
                    certificate: true,
                });
            }
            Ok(other) => tried.push(format!("{address} shows another certificate ({other})")),
            Err(e) => tried.push(format!("{address}: {e}")),
        }
    }
    bail!(
        "no address in the trust token reaches its croftd: {}",
        tried.join("; ")
    )
}

/// Ask the user to trust a certificate seen for the first time; without
/// a terminal to ask on, refuse and say how to trust it.
fn confirm(url: &str, fingerprint: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "{url} shows certificate {fingerprint}; compare it with `croft server info` there and add --fingerprint {fingerprint} (or --accept-certificate)"
        );
    }
    eprint!("{url} shows certificate\n  {fingerprint}\nCompare it with `croft server info` there. Trust it? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("certificate not trusted; nothing added");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_remotes_are_taken_off_arguments() {
        let mut remotes = Remotes::default();
        remotes.remotes.insert(
            "prod".into(),
            Remote {
                url: "https://192.0.2.1".into(),
                fingerprint: "ab".into(),
                token: None,
                certificate: false,
            },
        );
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut args = strings(&["croft", "info", "prod:web1"]);
        assert_eq!(
            take_remote_prefix(&mut args, &remotes).unwrap().as_deref(),
            Some("prod")
        );
        assert_eq!(args, strings(&["croft", "info", "web1"]));
        let mut args = strings(&["croft", "port", "add", "web1", "tcp", "8080:80"]);
        assert_eq!(take_remote_prefix(&mut args, &remotes).unwrap(), None);
        assert_eq!(args[5], "8080:80");
        let mut args = strings(&["croft", "config", "set", "web1", "key=prod:x"]);
        assert_eq!(take_remote_prefix(&mut args, &remotes).unwrap(), None);
        let mut args = strings(&["croft", "copy", "prod:a", "local:b"]);
        assert!(take_remote_prefix(&mut args, &remotes).is_err());
        let mut args = strings(&["croft", "info", "staging:web1"]);
        assert_eq!(take_remote_prefix(&mut args, &remotes).unwrap(), None);
    }
}
