//! `/1.0/jobs`: long operations, their progress and outcome, and cancels.

use super::guard::Scope;
use super::routes::Routes;
use super::{ApiError, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{VpsChange, VpsRead};
use crate::auth::Caller;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use croft_api::Job;
use serde::Deserialize;
use std::time::Duration;

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/jobs", VpsRead, list)
        .get("/1.0/jobs/{id}", VpsRead, info)
        .get("/1.0/jobs/{id}/wait", VpsRead, wait)
        .delete("/1.0/jobs/{id}", VpsChange, cancel)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("job {id:?} not found"))
}

/// A job the caller may see: a tenant role sees its tenant's only (and
/// another's is "not found"); the admin sees every job by its id.
fn visible(job: Option<Job>, caller: &Caller, id: &str) -> ApiResult<Job> {
    match job {
        Some(job) if caller.tenant.as_ref().is_none_or(|t| *t == job.tenant) => Ok(job),
        _ => Err(not_found(id)),
    }
}

#[utoipa::path(
    get,
    path = "/1.0/jobs",
    tag = "jobs",
    responses((status = 200, description = "The latest jobs", body = Vec<croft_api::Job>))
)]
pub(super) async fn list(State(s): State<AppState>, caller: Caller, scope: Scope) -> ApiResult<Response> {
    Ok(Json(s.jobs.list(scope.listing(&caller)).await?).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/jobs/{id}",
    tag = "jobs",
    responses((status = 200, description = "The job", body = croft_api::Job))
)]
pub(super) async fn info(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let job = visible(s.jobs.get(&id).await?, &caller, &id)?;
    Ok(Json(job).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct WaitQuery {
    /// Seconds to wait at most (default 60, at most 3600).
    timeout: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/1.0/jobs/{id}/wait",
    tag = "jobs",
    params(WaitQuery),
    responses((status = 200, description = "The job once ended, or as it is at the timeout", body = croft_api::Job))
)]
pub(super) async fn wait(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<Response> {
    // Checked before waiting: another tenant's job is not waited on.
    visible(s.jobs.get(&id).await?, &caller, &id)?;
    let timeout = Duration::from_secs(q.timeout.unwrap_or(60).min(3600));
    let job = s.jobs.wait(&id, timeout).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(job).into_response())
}

/// Ask a running job to stop: 202 with the job as it is now; it ends
/// `cancelled` at its next step, with what it did undone (wait for it).
#[utoipa::path(
    delete,
    path = "/1.0/jobs/{id}",
    tag = "jobs",
    responses((status = 202, description = "The job as it is now; it ends cancelled at its next step", body = croft_api::Job))
)]
pub(super) async fn cancel(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    visible(s.jobs.get(&id).await?, &caller, &id)?;
    let job = s.jobs.cancel(&id).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}
