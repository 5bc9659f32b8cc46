//! `/1.0/images`: images croft builds and those imported, their builds,
//! imports and exports.

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
        .get("/1.0/images/{name}", ImageRead, info)
        .delete("/1.0/images/{name}", ImageChange, remove)
        .get("/1.0/images/{name}/export", ImageChange, export)
}

/// The images: for a tenant's caller, those its tenant may use.
async fn list(State(s): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let mut images = s.images.list().await?;
    if let Some(tenant) = &caller.tenant {
        if let Some(allowed) = s.tenants.allowed_images(tenant).await? {
            images.retain(|i| allowed.contains(&i.name));
        }
    }
    Ok(Json(images).into_response())
}

async fn info(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.images.get(&name).await?).into_response())
}

async fn build(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<croft_api::BuildRequest>,
) -> ApiResult<Response> {
    let job = s.images.build(&req.name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// A tarball streamed in the body becomes image `?name=`.
async fn import(
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
async fn export(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(download(s.images.export(&name).await?))
}

async fn remove(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    s.images.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
