//! Short scripts croftd runs in a running VPS as its root: what changes a
//! running VPS's files (root's keys and password) is done from inside,
//! where VPS root's symlinks can only lead to its own files, never by host
//! root through a path VPS root can change under it.

use super::InstanceService;
use crate::backend::session::{ExecControl, ExecSession};
use crate::service::{Result, ServiceError};
use croft_api::exec::{ExecStart, STDERR, STDOUT};

/// Where a change of a VPS's files is made: by a script inside while it
/// runs, on its disk by croftd while it is stopped (nothing inside can
/// race the write then).
pub(super) enum Where {
    Inside,
    OnDisk,
}

/// [`Where`] a change of `row`'s files is made; a rescue boot, or a VPS
/// between states, is a 409.
pub(super) fn where_to_change(row: &crate::store::InstanceRecord, what: &str) -> Result<Where> {
    match row.status {
        croft_api::Status::Running if row.rescue_image.is_none() => Ok(Where::Inside),
        croft_api::Status::Running => Err(ServiceError::Conflict(format!(
            "VPS {} is in rescue mode: start it normally to change {what}",
            row.name
        ))),
        croft_api::Status::Stopped => Ok(Where::OnDisk),
        other => Err(ServiceError::Conflict(format!(
            "VPS {} is {}: try again once it runs or is stopped",
            row.name,
            other.as_str()
        ))),
    }
}

/// A script's failure as a service error.
pub(super) fn failed(ran: &Ran, what: &str) -> ServiceError {
    match ran.code {
        None => ServiceError::Conflict(format!("{what} inside the VPS did not finish in time")),
        Some(code) => ServiceError::Conflict(format!(
            "{what} inside the VPS failed ({code}): {}",
            ran.stderr.trim()
        )),
    }
}

/// What a script printed and how it ended.
pub(super) struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl InstanceService {
    /// Run `sh -c script` in running VPS `key` as root, `input` on its
    /// stdin; killed after `secs` (then `code` is `None`).
    pub(super) async fn run_inside(&self, key: &str, script: &str, input: &[u8], secs: u64) -> Result<Ran> {
        let start = ExecStart {
            args: vec!["sh".into(), "-c".into(), script.into()],
            ..Default::default()
        };
        let ExecSession {
            stdin,
            mut output,
            control,
            exit,
        } = self.backend.exec(key, start).await?;
        if !input.is_empty() {
            stdin
                .send(bytes::Bytes::copy_from_slice(input))
                .await
                .map_err(|_| ServiceError::Conflict("the VPS's command ended before its input".into()))?;
        }
        drop(stdin);
        let read = async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some((stream, bytes)) = output.recv().await {
                match stream {
                    STDOUT => out.extend_from_slice(&bytes),
                    STDERR => err.extend_from_slice(&bytes),
                    _ => {}
                }
            }
            let code = exit.await.ok().and_then(|r| r.ok());
            (code, out, err)
        };
        match tokio::time::timeout(std::time::Duration::from_secs(secs), read).await {
            Ok((code, out, err)) => Ok(Ran {
                code,
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
            }),
            Err(_) => {
                let _ = control.send(ExecControl::Signal(nix::sys::signal::Signal::SIGKILL as i32));
                Ok(Ran {
                    code: None,
                    stdout: String::new(),
                    stderr: String::new(),
                })
            }
        }
    }
}
