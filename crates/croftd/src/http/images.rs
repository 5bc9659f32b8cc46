//! `/1.0/images`: images croft builds and those imported, their builds,
//! imports and exports.

use super::{ApiJson, ApiResult, AppState, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1.0/images", get(list))
        .route("/1.0/images/import", post(import))
        .route("/1.0/images/build", post(build))
        .route("/1.0/images/{name}", get(info).delete(remove))
        .route("/1.0/images/{name}/export", post(export))
}

async fn list(State(s): State<AppState>, _: Caller) -> ApiResult<Response> {
    Ok(Json(s.images.list().await?).into_response())
}

async fn info(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.images.get(&name).await?).into_response())
}

async fn build(
    State(s): State<AppState>,
    _: Caller,
    ApiJson(req): ApiJson<croft_api::BuildRequest>,
) -> ApiResult<Response> {
    let job = s.images.build(&req.name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn import(
    State(s): State<AppState>,
    _: Caller,
    ApiJson(req): ApiJson<croft_api::ImportRequest>,
) -> ApiResult<Response> {
    let job = s.images.import(req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn export(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::ExportRequest>,
) -> ApiResult<Response> {
    Ok(Json(s.images.export(&name, &req.path, req.overwrite).await?).into_response())
}

async fn remove(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    s.images.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
