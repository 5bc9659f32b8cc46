//! `/1.0/jobs`: long operations, their progress and outcome.

use super::{ApiError, ApiQuery, ApiResult, AppState, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::time::Duration;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1.0/jobs", get(list))
        .route("/1.0/jobs/{id}", get(info))
        .route("/1.0/jobs/{id}/wait", get(wait))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("job {id:?} not found"))
}

async fn list(State(s): State<AppState>, _: Caller) -> ApiResult<Response> {
    Ok(Json(s.jobs.list().await?).into_response())
}

async fn info(State(s): State<AppState>, _: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let job = s.jobs.get(&id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(job).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Seconds to wait at most (default 60, at most 3600).
    timeout: Option<u64>,
}

async fn wait(
    State(s): State<AppState>,
    _: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> ApiResult<Response> {
    let timeout = Duration::from_secs(q.timeout.unwrap_or(60).min(3600));
    let job = s.jobs.wait(&id, timeout).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(job).into_response())
}
