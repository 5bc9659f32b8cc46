//! `/1.0/instances`: VPSes, their state, configuration, console and
//! copies; and `/1.0/storage-pools`.

use super::{ApiError, ApiJson, ApiQuery, ApiResult, AppState, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use croft_api::{ConfigPatch, CopyRequest, LaunchRequest, StateAction, StateRequest};
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1.0/instances", get(list).post(launch))
        .route("/1.0/instances/{name}", get(info).delete(delete))
        .route("/1.0/instances/{name}/state", get(state).post(change_state))
        .route("/1.0/instances/{name}/host", get(host_details))
        .route("/1.0/instances/{name}/config", patch(patch_config))
        .route("/1.0/instances/{name}/console", get(console_log))
        .route("/1.0/instances/{name}/copy", post(copy))
        .route("/1.0/instances/{name}/rebuild", post(rebuild))
        .route("/1.0/storage-pools", get(list_pools))
        .route("/1.0/storage-pools/{name}", get(pool_info))
}

async fn list(State(s): State<AppState>, _: Caller) -> ApiResult<Response> {
    Ok(Json(s.instances.list().await?).into_response())
}

async fn info(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.instances.get(&name).await?).into_response())
}

/// The VPS without its disk usage (which costs a filesystem commit to
/// read): what `croft exec` and `croft console` ask before they connect.
async fn state(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.instances.get_brief(&name).await?).into_response())
}

/// How the VPS sits on the host (id range, init, control socket).
async fn host_details(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.instances.host_details(&name).await?).into_response())
}

async fn launch(
    State(s): State<AppState>,
    _: Caller,
    ApiJson(req): ApiJson<LaunchRequest>,
) -> ApiResult<Response> {
    let job = s.instances.launch(req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<Response> {
    s.instances.delete(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_state(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<StateRequest>,
) -> ApiResult<Response> {
    croft_api::validate_name(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(t) = req.timeout {
        if !(1..=3600).contains(&t) {
            return Err(ApiError::bad_request(
                "timeout must be between 1 and 3600 seconds",
            ));
        }
    }
    if (req.rescue || req.rescue_image.is_some()) && req.action != StateAction::Start {
        return Err(ApiError::bad_request("rescue applies to start only"));
    }
    if req.rescue_image.is_some() && !req.rescue {
        return Err(ApiError::bad_request("rescue_image needs rescue: true"));
    }
    let vps = match req.action {
        StateAction::Start => {
            let rescue = req.rescue.then_some(req.rescue_image.as_deref());
            s.instances.start(&name, rescue).await?
        }
        StateAction::Stop => s.instances.stop(&name, req.force, req.timeout).await?,
        StateAction::Restart => s.instances.restart(&name, req.force, req.timeout).await?,
    };
    Ok(Json(vps).into_response())
}

async fn rebuild(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::RebuildRequest>,
) -> ApiResult<Response> {
    let job = s.instances.rebuild(&name, req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn patch_config(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<ConfigPatch>,
) -> ApiResult<Response> {
    Ok(Json(s.instances.patch_config(&name, patch).await?).into_response())
}

async fn copy(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<CopyRequest>,
) -> ApiResult<Response> {
    let vps = s.instances.copy(&name, &req.name, req.snapshot).await?;
    Ok((StatusCode::CREATED, Json(vps)).into_response())
}

/// Console history returned at most (the supervisor keeps about 2 MiB).
const CONSOLE_LOG_MAX: usize = 1 << 20;

async fn console_log(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    let log = s.instances.console_log(&name, CONSOLE_LOG_MAX).await?;
    Ok(Json(croft_api::ConsoleLog { log }).into_response())
}

async fn list_pools(State(s): State<AppState>, _: Caller) -> ApiResult<Response> {
    Ok(Json(s.instances.pools()?).into_response())
}

async fn pool_info(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.instances.pool_info(&name)?).into_response())
}
