//! Long-running operations: each gets an id, a row in the database with
//! progress and outcome, and can be waited for by clients.

use crate::store::{Store, StoreError};
use croft_api::{Job, JobStatus};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::warn;

#[derive(Clone)]
pub struct Jobs {
    db: Arc<dyn Store>,
    events: super::events::Events,
    /// Woken whenever any job ends, for `wait`.
    changed: Arc<Notify>,
}

/// Given to a job's body to report progress.
#[derive(Clone)]
pub struct JobHandle {
    db: Arc<dyn Store>,
    id: String,
}

impl JobHandle {
    pub async fn progress(&self, percent: u8, message: &str) {
        if let Err(e) = self
            .db
            .update_job(&self.id, JobStatus::Running, percent, Some(message), None)
            .await
        {
            warn!(job = %self.id, "progress update failed: {e}");
        }
    }
}

fn new_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            format!(
                "{:x}",
                std::time::SystemTime::now()
                    .elapsed()
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            )
        })
}

impl Jobs {
    pub fn new(db: Arc<dyn Store>, events: super::events::Events) -> Jobs {
        Jobs {
            db,
            events,
            changed: Arc::new(Notify::new()),
        }
    }

    /// Record a job on `target` (a VPS or image name) of `tenant` and run
    /// `body` in the background.
    pub async fn submit<F, Fut, E>(
        &self,
        kind: &str,
        tenant: &str,
        target: &str,
        body: F,
    ) -> Result<Job, StoreError>
    where
        F: FnOnce(JobHandle) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::error::Error + Send + 'static,
    {
        let id = new_id();
        self.db.insert_job(&id, kind, tenant, target).await?;
        let handle = JobHandle {
            db: self.db.clone(),
            id: id.clone(),
        };
        let db = self.db.clone();
        let changed = self.changed.clone();
        let job_id = id.clone();
        let events = self.events.clone();
        let (tenant, target) = (tenant.to_string(), target.to_string());
        events.emit(
            &tenant,
            "operation-started",
            &target,
            Some(format!("{kind} {id}")),
        );
        let kind = kind.to_string();
        tokio::spawn(async move {
            let outcome = body(handle).await;
            match &outcome {
                Ok(()) => events.emit(
                    &tenant,
                    "operation-succeeded",
                    &target,
                    Some(format!("{kind} {job_id}")),
                ),
                Err(e) => events.emit(
                    &tenant,
                    "operation-failed",
                    &target,
                    Some(format!("{kind} {job_id}: {}", crate::error_chain(e))),
                ),
            }
            let update = match &outcome {
                Ok(()) => {
                    db.update_job(&job_id, JobStatus::Success, 100, Some("done"), None)
                        .await
                }
                Err(e) => {
                    let msg = crate::error_chain(e);
                    db.update_job(&job_id, JobStatus::Failure, 100, None, Some(&msg))
                        .await
                }
            };
            if let Err(e) = update {
                warn!(job = %job_id, "recording the outcome failed: {e}");
            }
            changed.notify_waiters();
        });
        Ok(self.db.job(&id).await?.expect("job row just inserted"))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.db.job(id).await
    }

    /// The latest jobs of `tenant`, or of all tenants.
    pub async fn list(&self, tenant: Option<&str>) -> Result<Vec<Job>, StoreError> {
        self.db.jobs(tenant).await
    }

    /// Wait until the job has ended or `timeout` passed; returns its state.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<Job>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let job = self.db.job(id).await?;
            match &job {
                Some(j) if j.status == JobStatus::Running => {}
                _ => return Ok(job),
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(job);
            }
        }
    }
}
