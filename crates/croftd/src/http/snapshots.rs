//! `/1.0/instances/{name}/snapshots`: snapshots, restores and exports.

use super::{run_to_end, ApiJson, ApiResult, AppState, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use croft_api::{RestoreRequest, SnapshotRequest};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1.0/instances/{name}/snapshots", get(list).post(create))
        .route("/1.0/instances/{name}/snapshots/{snap}", delete(remove))
        .route("/1.0/instances/{name}/snapshots/{snap}/restore", post(restore))
        .route("/1.0/instances/{name}/snapshots/{snap}/export", post(export))
}

async fn list(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.instances.snapshots(&name).await?).into_response())
}

async fn create(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SnapshotRequest>,
) -> ApiResult<Response> {
    // Finished even if the client goes away: a dropped request must not
    // drop an import half-way (with the VPS's lock released under it).
    let instances = s.instances.clone();
    let snap = run_to_end(async move {
        instances
            .create_snapshot(&name, req.name, req.from_file.as_deref())
            .await
    })
    .await??;
    Ok((StatusCode::CREATED, Json(snap)).into_response())
}

async fn remove(
    State(s): State<AppState>,
    _: Caller,
    Path((name, snap)): Path<(String, String)>,
) -> ApiResult<Response> {
    s.instances.delete_snapshot(&name, &snap).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn restore(
    State(s): State<AppState>,
    _: Caller,
    Path((name, snap)): Path<(String, String)>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> ApiResult<Response> {
    Ok(Json(s.instances.restore_snapshot(&name, &snap, req.stop).await?).into_response())
}

async fn export(
    State(s): State<AppState>,
    _: Caller,
    Path((name, snap)): Path<(String, String)>,
    ApiJson(req): ApiJson<croft_api::SnapshotExportRequest>,
) -> ApiResult<Response> {
    let instances = s.instances.clone();
    let result = run_to_end(async move { instances.export_snapshot(&name, &snap, req).await }).await??;
    Ok(Json(result).into_response())
}
