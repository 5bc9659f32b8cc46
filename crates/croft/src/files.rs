//! `croft file push|pull`: files into and out of a running VPS, streamed
//! through `croft exec` (so through the API, locally or to a remote). The
//! copy is made inside the VPS by its root: a symlink in the path leads
//! only to the VPS's own files, never to the host's.

use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Subcommand)]
pub enum FileCommand {
    /// Copy a local file into a VPS: `croft file push app.tar web1:/srv/app.tar`
    /// (written whole or not at all; its mode kept unless --mode).
    Push {
        /// The local file.
        local: PathBuf,
        /// VPS:/PATH, an absolute path inside the VPS.
        target: String,
        /// Its mode inside, in octal (default: the local file's).
        #[arg(long, value_parser = parse_mode)]
        mode: Option<u32>,
        /// Its owner inside (uid; default root).
        #[arg(long, default_value_t = 0)]
        uid: u32,
        /// Its group inside (gid; default root's).
        #[arg(long, default_value_t = 0)]
        gid: u32,
    },
    /// Copy a file out of a VPS: `croft file pull web1:/etc/hosts hosts`
    /// (its mode kept).
    Pull {
        /// VPS:/PATH, an absolute path inside the VPS.
        source: String,
        /// The local file to write.
        local: PathBuf,
    },
}

/// Writes stdin to "$1" through a temporary file beside it, then its
/// mode ("$2") and owner ("$3:$4"); nothing is left on failure.
const PUSH: &str = "t=\"$1.croft-push.$$\"; \
                    if cat > \"$t\" && chmod \"$2\" \"$t\" && chown \"$3:$4\" \"$t\" && mv -f \"$t\" \"$1\"; \
                    then exit 0; else rm -f \"$t\"; exit 1; fi";

/// How this CLI reaches the VPS: itself, as `croft exec`, with the same
/// croftd (socket or remote) and tenant.
pub struct Via {
    pub socket: PathBuf,
    pub remote: String,
    pub tenant: Option<String>,
}

impl Via {
    fn exec(&self, name: &str, args: &[&str]) -> Result<Command> {
        let exe = std::env::current_exe().context("cannot find the croft binary")?;
        let mut command = Command::new(exe);
        command
            .arg("--socket")
            .arg(&self.socket)
            .args(["--remote", &self.remote]);
        if let Some(tenant) = &self.tenant {
            command.args(["--tenant", tenant]);
        }
        command.args(["exec", name, "--"]).args(args);
        Ok(command)
    }
}

/// `VPS:/PATH` into its VPS and absolute path.
fn split_target(text: &str) -> Result<(&str, &str)> {
    let (name, path) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("{text:?}: give VPS:/PATH"))?;
    croft_api::validate_name(name)?;
    if !path.starts_with('/') {
        bail!("{text:?}: give an absolute path inside the VPS");
    }
    Ok((name, path))
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{text:?} is not an octal mode such as 0644"))
}

/// The last line a failed `croft exec` wrote to stderr: its reason.
fn reason(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("the command failed")
        .trim_start_matches("croft: error: ")
        .to_string()
}

pub fn run(via: &Via, command: FileCommand) -> Result<()> {
    match command {
        FileCommand::Push {
            local,
            target,
            mode,
            uid,
            gid,
        } => {
            let (name, path) = split_target(&target)?;
            let file =
                std::fs::File::open(&local).with_context(|| format!("cannot read {}", local.display()))?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                bail!("{} is not a regular file", local.display());
            }
            let mode = mode.unwrap_or(meta.permissions().mode() & 0o7777);
            let out = via
                .exec(
                    name,
                    &[
                        "sh",
                        "-c",
                        PUSH,
                        "sh",
                        path,
                        &format!("{mode:o}"),
                        &uid.to_string(),
                        &gid.to_string(),
                    ],
                )?
                .stdin(file)
                .output()?;
            if !out.status.success() {
                bail!("cannot write {path} in {name}: {}", reason(&out.stderr));
            }
            println!("Pushed {} to {name}:{path}", local.display());
        }
        FileCommand::Pull { source, local } => {
            let (name, path) = split_target(&source)?;
            let stat = via.exec(name, &["stat", "-L", "-c", "%a %F", path])?.output()?;
            let said = String::from_utf8_lossy(&stat.stdout).trim().to_string();
            if !stat.status.success() {
                bail!("cannot read {path} in {name}: {}", reason(&stat.stderr));
            }
            let (mode, kind) = said.split_once(' ').unwrap_or((&said, ""));
            if kind != "regular file" && kind != "regular empty file" {
                bail!("{path} in {name} is not a regular file ({kind})");
            }
            let mode = u32::from_str_radix(mode, 8).unwrap_or(0o600);
            let partial = partial_path(&local);
            let written = std::fs::File::create(&partial)
                .with_context(|| format!("cannot write {}", partial.display()))?;
            let out = via
                .exec(name, &["cat", path])?
                .stdin(Stdio::null())
                .stdout(written)
                .stderr(Stdio::piped())
                .output()?;
            if !out.status.success() {
                let _ = std::fs::remove_file(&partial);
                bail!("cannot read {path} in {name}: {}", reason(&out.stderr));
            }
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(mode))?;
            std::fs::rename(&partial, &local).with_context(|| format!("cannot write {}", local.display()))?;
            println!("Pulled {name}:{path} to {}", local.display());
        }
    }
    Ok(())
}

/// Where a pull writes before the file is whole: beside the target.
fn partial_path(local: &Path) -> PathBuf {
    let mut name = local.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".croft-pull.{}", std::process::id()));
    local.with_file_name(name)
}
