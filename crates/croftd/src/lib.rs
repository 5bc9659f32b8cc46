//! The croft daemon as a library: the REST API ([`api`]), the state
//! database ([`db`]), VPS lifecycle and operations ([`manager`]), images,
//! jobs, networking and the host-wide settings croftd keeps. `main.rs`
//! wires them together. See ARCHITECTURE.md.

pub mod api;
pub mod config;
pub mod db;
mod failpoint;
pub mod host_limits;
mod images;
mod jobs;
mod lxcfs;
pub mod manager;
mod network;

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
