//! Space given back in the background: a deleted VPS, snapshot or image
//! answers at once, and the pool frees what it held afterwards (btrfs's
//! cleaner), one reclaim at a time for any number of deletes.

use croft_host::storage::Pool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{debug, warn};

/// Deletes come in runs (a cleanup script, a tenant going away): the
/// reclaim waits until none came for this long, so it never competes with
/// the run for the filesystem (a reclaim commits a btrfs transaction).
const QUIET: Duration = Duration::from_secs(1);

pub struct Reclaimer {
    pool: Arc<dyn Pool>,
    wanted: Arc<Notify>,
    worker: OnceLock<()>,
}

impl Reclaimer {
    pub fn new(pool: Arc<dyn Pool>) -> Reclaimer {
        Reclaimer {
            pool,
            wanted: Arc::new(Notify::new()),
            worker: OnceLock::new(),
        }
    }

    /// Something was deleted: reclaim its space soon, once deletes have
    /// paused for [`QUIET`]. Requests made while a reclaim runs are served
    /// by one more after it.
    pub fn request(&self) {
        self.worker.get_or_init(|| {
            let (pool, wanted) = (self.pool.clone(), self.wanted.clone());
            tokio::spawn(async move {
                loop {
                    wanted.notified().await;
                    while tokio::time::timeout(QUIET, wanted.notified()).await.is_ok() {}
                    let pool = pool.clone();
                    match crate::blocking(move || pool.reclaim()).await {
                        Ok(Ok(())) => debug!("deleted space reclaimed"),
                        Ok(Err(e)) => warn!("reclaiming deleted space: {}", crate::error_chain(&e)),
                        Err(e) => warn!("reclaiming deleted space: {e}"),
                    }
                }
            });
        });
        self.wanted.notify_one();
    }
}
