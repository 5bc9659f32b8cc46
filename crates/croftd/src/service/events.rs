//! The event stream: what happens to VPSes and operations, as it
//! happens, for `GET /1.0/events` and `croft monitor`. Events are not
//! stored: a subscriber sees what happens while it listens.

use croft_api::Event;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it misses
/// some (and is told so).
const BACKLOG: usize = 1024;

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    /// Tell every subscriber that `action` happened to `target` in
    /// `tenant`.
    pub fn emit(&self, tenant: &str, action: &str, target: &str, detail: Option<String>) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        // No subscriber is no error: nobody is listening.
        let _ = self.tx.send(Event {
            at,
            tenant: tenant.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
