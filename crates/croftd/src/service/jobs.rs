//! Long-running operations: each gets an id, a row in the database with
//! progress and outcome, can be waited for by clients and cancelled.
//!
//! Cancelling is cooperative: a job's body stops at its next
//! [`JobHandle::step`] (or where it polls [`JobHandle::is_cancelled`]) with
//! [`ServiceError::Cancelled`], and undoes what it did as it does for any
//! failure. A step is placed only where stopping leaves nothing half done,
//! so a job past its last step finishes even when asked to stop.

use super::ServiceError;
use crate::store::{Store, StoreError};
use croft_api::{Job, JobStatus};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::{info, warn};

#[derive(Clone)]
pub struct Jobs {
    db: Arc<dyn Store>,
    events: super::events::Events,
    /// Woken whenever any job ends, for `wait`.
    changed: Arc<Notify>,
    /// The cancel flag of each job this croftd runs, by id.
    running: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
}

/// Given to a job's body to report progress and hear a cancel.
#[derive(Clone)]
pub struct JobHandle {
    db: Arc<dyn Store>,
    id: String,
    cancel: Arc<AtomicBool>,
}

impl JobHandle {
    /// A point where the job may stop: fails with
    /// [`ServiceError::Cancelled`] once a cancel was asked for, and records
    /// the progress otherwise.
    pub async fn step(&self, percent: u8, message: &str) -> Result<(), ServiceError> {
        if self.is_cancelled() {
            return Err(ServiceError::Cancelled);
        }
        self.progress(percent, message).await;
        Ok(())
    }

    /// Whether a cancel was asked for: for a step that polls (a build's
    /// output lines) rather than waiting for [`JobHandle::step`].
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Record progress where the job may not stop.
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
    /// How many operations this croftd runs now.
    pub fn in_flight(&self) -> usize {
        self.running().len()
    }

    pub fn new(db: Arc<dyn Store>, events: super::events::Events) -> Jobs {
        Jobs {
            db,
            events,
            changed: Arc::new(Notify::new()),
            running: Arc::default(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
        self.running.lock().expect("jobs map poisoned")
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
        let cancel = Arc::new(AtomicBool::new(false));
        self.running().insert(id.clone(), cancel.clone());
        let handle = JobHandle {
            db: self.db.clone(),
            id: id.clone(),
            cancel: cancel.clone(),
        };
        let running = self.running.clone();
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
            // A body that ends in an error after a cancel stopped for it
            // (the error of a step, or of what the cancel cut short).
            let cancelled = outcome.is_err() && cancel.load(Ordering::Relaxed);
            match &outcome {
                Err(_) if cancelled => events.emit(
                    &tenant,
                    "operation-cancelled",
                    &target,
                    Some(format!("{kind} {job_id}")),
                ),
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
                Err(_) if cancelled => {
                    db.update_job(
                        &job_id,
                        JobStatus::Cancelled,
                        100,
                        Some("cancelled"),
                        Some("cancelled; what it had done is undone"),
                    )
                    .await
                }
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
            running.lock().expect("jobs map poisoned").remove(&job_id);
            changed.notify_waiters();
        });
        Ok(self.db.job(&id).await?.expect("job row just inserted"))
    }

    /// Ask running job `id` to stop at its next step; the job as it is
    /// now. A job that has ended is a conflict.
    pub async fn cancel(&self, id: &str) -> Result<Job, ServiceError> {
        let job = self
            .db
            .job(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("job {id:?}")))?;
        let flag = self.running().get(id).cloned();
        match flag {
            Some(flag) if job.status == JobStatus::Running => {
                flag.store(true, Ordering::Relaxed);
                info!(job = id, kind = %job.kind, target = %job.target, "cancel asked for");
                Ok(job)
            }
            _ => Err(ServiceError::Conflict(format!(
                "job {id} has ended ({}); only a running job can be cancelled",
                job.status.word()
            ))),
        }
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
