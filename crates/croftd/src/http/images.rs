//! `/1.0/images`: images croft builds and those imported or published,
//! their builds, refreshes, imports and exports.

use super::routes::Routes;
use super::{download, is_stream, run_to_end, upload, ApiError, ApiJson, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{ImageChange, ImageRead};
use crate::auth::Caller;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/images", ImageRead, list)
        .post("/1.0/images", ImageChange, import)
        .post("/1.0/images/build", ImageChange, build)
        .post("/1.0/images/refresh", ImageChange, refresh)
        .get("/1.0/images/{name}", ImageRead, info)
        .delete("/1.0/images/{name}", ImageChange, remove)
        .get("/1.0/images/{name}/export", ImageChange, export)
}

/// The images: for a tenant's caller, those its tenant may use.
#[utoipa::path(
    get,
    path = "/1.0/images",
    tag = "images",
    responses((status = 200, description = "The images (a tenant's users: those it may use)", body = Vec<croft_api::Image>))
)]
pub(super) async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let mut images = s.images.list().await?;
    if let Some(tenant) = &caller.tenant {
        if let Some(allowed) = s.tenants.allowed_images(tenant).await? {
            images.retain(|i| allowed.contains(&i.name));
        }
    }
    Ok(Json(images).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/images/{name}",
    tag = "images",
    responses((status = 200, description = "The image", body = croft_api::Image))
)]
pub(super) async fn info(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.images.get(&name).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/images/build",
    tag = "images",
    request_body = croft_api::BuildRequest,
    responses((status = 202, description = "The build, a job", body = croft_api::Job))
)]
pub(super) async fn build(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<croft_api::BuildRequest>,
) -> ApiResult<Response> {
    let job = s.images.build(&req.name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// Build a croft-built image anew from the mirror, in the old one's place.
#[utoipa::path(
    post,
    path = "/1.0/images/refresh",
    tag = "images",
    request_body = croft_api::BuildRequest,
    responses((status = 202, description = "The rebuild, a job", body = croft_api::Job))
)]
pub(super) async fn refresh(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<croft_api::BuildRequest>,
) -> ApiResult<Response> {
    let job = s.images.refresh(&req.name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A tarball streamed in the body becomes image `?name=`.
#[utoipa::path(
    post,
    path = "/1.0/images",
    tag = "images",
    request_body(content((Vec<u8> = "application/octet-stream"))),
    params(croft_api::ImageImportQuery),
    responses((status = 201, description = "The imported image", body = croft_api::Image))
)]
pub(super) async fn import(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<croft_api::ImageImportQuery>,
    req: Request,
) -> ApiResult<Response> {
    if !is_stream(req.headers()) {
        return Err(ApiError::bad_request(format!(
            "send the tarball as the body, with content type {}",
            croft_api::STREAM_TYPE
        )));
    }
    let body = upload(req.into_body());
    // Finished even if the client goes away: an import is undone whole,
    // never dropped half-way.
    let image = run_to_end(async move { s.images.import(&q.name, body).await }).await??;
    Ok((StatusCode::CREATED, Json(image)).into_response())
}

/// The image as a gzip-compressed tarball.
#[utoipa::path(
    get,
    path = "/1.0/images/{name}/export",
    tag = "images",
    responses((status = 200, description = "The image as a .tar.gz", content_type = "application/octet-stream", body = Vec<u8>))
)]
pub(super) async fn export(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(download(s.images.export(&name).await?))
}

#[utoipa::path(
    delete,
    path = "/1.0/images/{name}",
    tag = "images",
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn remove(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    s.images.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
