//! `/1.0/instances/{name}/snapshots`: snapshots, restores and exports.

use super::{download, is_stream, run_to_end, upload, ApiJson, ApiQuery, ApiResult, AppState, Caller};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use croft_api::{RestoreRequest, SnapshotExportQuery, SnapshotImportQuery, SnapshotRequest};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1.0/instances/{name}/snapshots", get(list).post(create))
        .route("/1.0/instances/{name}/snapshots/{snap}", delete(remove))
        .route("/1.0/instances/{name}/snapshots/{snap}/restore", post(restore))
        .route("/1.0/instances/{name}/snapshots/{snap}/export", get(export))
}

async fn list(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.instances.snapshots(&name).await?).into_response())
}

/// Take a snapshot (a JSON body), or import one from the send stream in
/// the body (a stream body, `?name=` to rename it).
async fn create(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<SnapshotImportQuery>,
    req: Request,
) -> ApiResult<Response> {
    let instances = s.instances.clone();
    // Finished even if the client goes away: a dropped request must not
    // drop an import half-way (with the VPS's lock released under it).
    let snap = if is_stream(req.headers()) {
        let body = upload(req.into_body());
        run_to_end(async move { instances.import_snapshot(&name, q.name, body).await }).await??
    } else {
        let ApiJson(take) = ApiJson::<SnapshotRequest>::from_request(req, &()).await?;
        run_to_end(async move { instances.create_snapshot(&name, take.name).await }).await??
    };
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

/// The snapshot as a btrfs send stream, whole or `?since=` an older one.
async fn export(
    State(s): State<AppState>,
    _: Caller,
    Path((name, snap)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SnapshotExportQuery>,
) -> ApiResult<Response> {
    Ok(download(
        s.instances.export_snapshot(&name, &snap, q.since).await?,
    ))
}
