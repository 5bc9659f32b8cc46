//! `/1.0/instances/{name}/snapshots`: snapshots, restores and exports.

use super::guard::Scope;
use super::routes::Routes;
use super::{download, is_stream, run_to_end, upload, ApiJson, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{VpsChange, VpsRead};
use crate::service::VpsName;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use croft_api::{RestoreRequest, SnapshotExportQuery, SnapshotImportQuery, SnapshotRequest};

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/instances/{name}/snapshots", VpsRead, list)
        .post("/1.0/instances/{name}/snapshots", VpsChange, create)
        .delete("/1.0/instances/{name}/snapshots/{snap}", VpsChange, remove)
        .post(
            "/1.0/instances/{name}/snapshots/{snap}/restore",
            VpsChange,
            restore,
        )
        .get("/1.0/instances/{name}/snapshots/{snap}/export", VpsRead, export)
}

#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/snapshots",
    tag = "snapshots",
    responses((status = 200, description = "The VPS's snapshots", body = Vec<croft_api::Snapshot>))
)]
pub(super) async fn list(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.instances.snapshots(VpsName::new(&scope.tenant, &name)).await?).into_response())
}

/// Take a snapshot (a JSON body), or import one from the send stream in
/// the body (a stream body, `?name=` to rename it).
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/snapshots",
    tag = "snapshots",
    request_body(content((croft_api::SnapshotRequest = "application/json"), (Vec<u8> = "application/octet-stream"))),
    params(croft_api::SnapshotImportQuery),
    responses((status = 201, description = "The snapshot taken or imported", body = croft_api::Snapshot))
)]
pub(super) async fn create(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<SnapshotImportQuery>,
    req: Request,
) -> ApiResult<Response> {
    let instances = s.instances.clone();
    let tenant = scope.tenant;
    // Finished even if the client goes away: a dropped request must not
    // drop an import half-way (with the VPS's lock released under it).
    let snap = if is_stream(req.headers()) {
        let body = upload(req.into_body());
        run_to_end(async move {
            instances
                .import_snapshot(VpsName::new(&tenant, &name), q.name, body)
                .await
        })
        .await??
    } else {
        let ApiJson(take) = ApiJson::<SnapshotRequest>::from_request(req, &()).await?;
        run_to_end(async move {
            instances
                .create_snapshot(VpsName::new(&tenant, &name), take.name)
                .await
        })
        .await??
    };
    Ok((StatusCode::CREATED, Json(snap)).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}/snapshots/{snap}",
    tag = "snapshots",
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn remove(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, snap)): Path<(String, String)>,
) -> ApiResult<Response> {
    s.instances
        .delete_snapshot(VpsName::new(&scope.tenant, &name), &snap)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/snapshots/{snap}/restore",
    tag = "snapshots",
    request_body = croft_api::RestoreRequest,
    responses((status = 200, description = "The VPS with the snapshot's disk", body = croft_api::Instance))
)]
pub(super) async fn restore(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, snap)): Path<(String, String)>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> ApiResult<Response> {
    Ok(Json(
        s.instances
            .restore_snapshot(VpsName::new(&scope.tenant, &name), &snap, req.stop)
            .await?,
    )
    .into_response())
}

/// The snapshot as a btrfs send stream, whole or `?since=` an older one.
#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/snapshots/{snap}/export",
    tag = "snapshots",
    params(croft_api::SnapshotExportQuery),
    responses((status = 200, description = "A btrfs send stream", content_type = "application/octet-stream", body = Vec<u8>))
)]
pub(super) async fn export(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, snap)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<SnapshotExportQuery>,
) -> ApiResult<Response> {
    Ok(download(
        s.instances
            .export_snapshot(VpsName::new(&scope.tenant, &name), &snap, q.since)
            .await?,
    ))
}
