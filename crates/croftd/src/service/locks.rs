//! One lock per VPS (and per image being built or imported): operations
//! on one VPS run one at a time, operations on different VPSes at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Locks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Locks {
    /// The lock of `key` (a VPS name, or `image:NAME`).
    pub fn of(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("lock map poisoned")
            .entry(key.to_string())
            .or_default()
            .clone()
    }
}
