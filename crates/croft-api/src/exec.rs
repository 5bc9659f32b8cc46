//! `croft exec` over the API: one WebSocket per command,
//! `GET /1.0/instances/{name}/exec`. The client's first frame is an
//! [`ExecStart`] (text); then binary frames are the command's stdin and
//! text frames [`ExecInput`] (end of stdin, a signal, a window size). The
//! server sends binary frames whose first byte says the stream
//! ([`STDOUT`], [`STDERR`]; a terminal's output is all stdout) and, last,
//! one text frame [`ExecOutput`]: the exit code or why it failed.

use serde::{Deserialize, Serialize};

/// The first byte of an output frame holding stdout.
pub const STDOUT: u8 = 1;
/// The first byte of an output frame holding stderr.
pub const STDERR: u8 = 2;

/// What to run.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExecStart {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// Run it as this user of the VPS (a name in its /etc/passwd, or a
    /// uid), with that user's groups and home (its working directory
    /// unless `cwd`); default root.
    #[serde(default)]
    pub user: Option<String>,
    /// Run it on a terminal (its output all on stdout).
    #[serde(default)]
    pub tty: bool,
    /// The terminal's rows and columns.
    #[serde(default)]
    pub window: Option<(u16, u16)>,
}

/// A client's text frame after the start.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecInput {
    /// No more stdin.
    Eof,
    /// Deliver this signal to the command (Ctrl+C is 2).
    Signal { signal: i32 },
    /// The terminal's new size.
    Resize { rows: u16, cols: u16 },
}

/// The server's last frame.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecOutput {
    /// The command ended: its exit code, or 128 + the signal that ended it.
    Exit { code: i32 },
    /// It could not run, or the session broke.
    Error { message: String },
}

/// Check a start: a command, and environment entries of `NAME=value`.
pub fn validate_exec(start: &ExecStart) -> Result<(), crate::ValueError> {
    if start.args.is_empty() || start.args[0].is_empty() {
        return Err(crate::ValueError("give a command to run".into()));
    }
    if start.args.iter().chain(&start.env).any(|a| a.contains('\0')) {
        return Err(crate::ValueError(
            "a command or environment entry holds a NUL byte".into(),
        ));
    }
    if let Some(bad) = start.env.iter().find(|e| !e.contains('=') || e.starts_with('=')) {
        return Err(crate::ValueError(format!(
            "invalid environment entry {bad:?}: expected NAME=value"
        )));
    }
    if let Some(user) = &start.user {
        let name_like = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if user.is_empty() || user.len() > 32 || !user.chars().all(name_like) {
            return Err(crate::ValueError(format!(
                "invalid user {user:?}: a user name of the VPS (a-z, 0-9, _ . -) or a uid"
            )));
        }
    }
    Ok(())
}
