//! The croft daemon as a library. `main.rs` wires it together:
//!
//! - [`http`]: the REST API, one file per resource, one error→status map;
//! - [`auth`]: who calls, and the one policy table of what each may do;
//! - [`service`]: what croftd does — VPS lifecycle and operations, images,
//!   network, jobs — over the seams below;
//! - [`backend`]: what runs a VPS (containers under supervisors, or the
//!   in-memory simulator);
//! - [`store`]: croftd's state as typed records (SQLite).
//!
//! See ARCHITECTURE.md.

pub mod auth;
pub mod backend;
pub mod config;
mod failpoint;
pub mod host_limits;
pub mod http;
pub mod service;
pub mod store;

use thiserror::Error;

/// An error and its sources as one line: `what: why: deeper why`, each
/// source once (a source whose text its parent already carries is left
/// out).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let next = c.to_string();
        if !s.contains(&next) {
            s.push_str(": ");
            s.push_str(&next);
        }
        cur = c.source();
    }
    s
}

/// A blocking task died (it panicked) before it answered.
#[derive(Debug, Error)]
#[error("a background task failed")]
pub struct TaskFailed(#[source] tokio::task::JoinError);

/// Run blocking work `f` (files, tools, the kernel) off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, TaskFailed> {
    tokio::task::spawn_blocking(f).await.map_err(TaskFailed)
}
