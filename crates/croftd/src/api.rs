//! The REST API (`/1.0/...`): routing, request decoding and the mapping of
//! every error to a JSON body with a 4xx or 5xx status.

use crate::images::ImageError;
use crate::manager::{Manager, ManagerError};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use croft_api::{
    ConfigPatch, CopyRequest, ErrorBody, LaunchRequest, RestoreRequest, SnapshotRequest, StateAction,
    StateRequest,
};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted.
const BODY_LIMIT: usize = 1 << 20;

pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
                code: self.status.as_u16(),
            }),
        )
            .into_response()
    }
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> ApiError {
        let status = match &e {
            ManagerError::Invalid(_) => StatusCode::BAD_REQUEST,
            ManagerError::NotFound(_) => StatusCode::NOT_FOUND,
            ManagerError::Conflict(_) => StatusCode::CONFLICT,
            ManagerError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ManagerError::Image(ImageError::Unknown { .. }) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, crate::error_chain(&e))
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, crate::error_chain(&e))
    }
}

/// `Json` whose rejections (bad syntax, wrong types, unknown fields,
/// missing content type, oversized body) become our JSON errors.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let status = match rejection.status() {
                    s if s.is_client_error() => s,
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(ApiError::new(
                    status,
                    format!("invalid request body: {}", rejection.body_text()),
                ))
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;
type AppState = Arc<Manager>;

pub fn router(manager: Arc<Manager>) -> Router {
    Router::new()
        .route("/1.0", get(server_info))
        .route("/1.0/instances", get(list_instances).post(launch))
        .route("/1.0/instances/{name}", get(get_instance).delete(delete_instance))
        .route("/1.0/instances/{name}/state", get(get_state).post(change_state))
        .route("/1.0/instances/{name}/config", axum::routing::patch(patch_config))
        .route("/1.0/instances/{name}/console", get(console_log))
        .route("/1.0/instances/{name}/copy", post(copy_instance))
        .route("/1.0/instances/{name}/rebuild", post(rebuild_instance))
        .route(
            "/1.0/instances/{name}/snapshots",
            get(list_snapshots).post(create_snapshot),
        )
        .route(
            "/1.0/instances/{name}/snapshots/{snap}",
            axum::routing::delete(delete_snapshot),
        )
        .route(
            "/1.0/instances/{name}/snapshots/{snap}/restore",
            post(restore_snapshot),
        )
        .route(
            "/1.0/instances/{name}/snapshots/{snap}/export",
            post(export_snapshot),
        )
        .route(
            "/1.0/instances/{name}/forwards",
            get(list_forwards).post(add_forward),
        )
        .route(
            "/1.0/instances/{name}/forwards/{protocol}/{port}",
            axum::routing::delete(remove_forward),
        )
        .route("/1.0/instances/{name}/firewall", get(get_firewall))
        .route("/1.0/instances/{name}/firewall/rules", post(add_firewall_rule))
        .route(
            "/1.0/instances/{name}/firewall/rules/{index}",
            axum::routing::delete(remove_firewall_rule),
        )
        .route("/1.0/networks", get(list_networks))
        .route("/1.0/networks/{name}", get(get_network))
        .route("/1.0/images", get(list_images))
        .route("/1.0/images/import", post(import_image))
        .route("/1.0/images/build", post(build_image))
        .route("/1.0/images/{name}", get(get_image).delete(delete_image))
        .route("/1.0/images/{name}/export", post(export_image))
        .route("/1.0/storage-pools", get(list_pools))
        .route("/1.0/storage-pools/{name}", get(get_pool))
        .route("/1.0/jobs", get(list_jobs))
        .route("/1.0/jobs/{id}", get(get_job))
        .route("/1.0/jobs/{id}/wait", get(wait_job))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(manager)
}

/// Errors axum answers itself (a path or query that does not decode, such
/// as a name that is not UTF-8) come as plain text: wrap them in the same
/// JSON error body as ours, so every error a client sees has one shape.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), BODY_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    ApiError::new(status, message).into_response()
}

async fn server_info(State(m): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "api_version": "1.0",
        "server_version": env!("CARGO_PKG_VERSION"),
        "cgroup_version": m.cgroup_version(),
    }))
}

async fn list_instances(State(m): State<AppState>) -> ApiResult<Response> {
    Ok(Json(m.list().await?).into_response())
}

async fn get_instance(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.get(&name).await?).into_response())
}

/// The VPS without its disk usage (which costs a filesystem commit to
/// read): what `croft exec` and `croft console` ask before they connect.
async fn get_state(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.get_brief(&name).await?).into_response())
}

async fn launch(State(m): State<AppState>, ApiJson(req): ApiJson<LaunchRequest>) -> ApiResult<Response> {
    let job = m.launch(req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

async fn delete_instance(
    State(m): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    m.delete(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn change_state(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<StateRequest>,
) -> ApiResult<Response> {
    croft_api::validate_name(&name).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    if let Some(t) = req.timeout {
        if !(1..=3600).contains(&t) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "timeout must be between 1 and 3600 seconds",
            ));
        }
    }
    if (req.rescue || req.rescue_image.is_some()) && req.action != StateAction::Start {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "rescue applies to start only",
        ));
    }
    if req.rescue_image.is_some() && !req.rescue {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "rescue_image needs rescue: true",
        ));
    }
    let inst = match req.action {
        StateAction::Start => {
            let rescue = req.rescue.then_some(req.rescue_image.as_deref());
            m.start(&name, rescue).await?
        }
        StateAction::Stop => m.stop(&name, req.force, req.timeout).await?,
        StateAction::Restart => m.restart(&name, req.force, req.timeout).await?,
    };
    Ok(Json(inst).into_response())
}

async fn rebuild_instance(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::RebuildRequest>,
) -> ApiResult<Response> {
    let job = m.rebuild(&name, req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn patch_config(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<ConfigPatch>,
) -> ApiResult<Response> {
    Ok(Json(m.patch_config(&name, patch).await?).into_response())
}

async fn list_snapshots(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.snapshots(&name).await?).into_response())
}

async fn create_snapshot(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SnapshotRequest>,
) -> ApiResult<Response> {
    // Finished even if the client goes away: a dropped request must not
    // drop an import half-way (with the VPS's lock released under it).
    let snap = run_to_end(async move { m.create_snapshot(&name, req.name, req.from_file.as_deref()).await })
        .await??;
    Ok((StatusCode::CREATED, Json(snap)).into_response())
}

async fn delete_snapshot(
    State(m): State<AppState>,
    Path((name, snap)): Path<(String, String)>,
) -> ApiResult<Response> {
    m.delete_snapshot(&name, &snap).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn restore_snapshot(
    State(m): State<AppState>,
    Path((name, snap)): Path<(String, String)>,
    ApiJson(req): ApiJson<RestoreRequest>,
) -> ApiResult<Response> {
    Ok(Json(m.restore_snapshot(&name, &snap, req.stop).await?).into_response())
}

async fn export_snapshot(
    State(m): State<AppState>,
    Path((name, snap)): Path<(String, String)>,
    ApiJson(req): ApiJson<croft_api::SnapshotExportRequest>,
) -> ApiResult<Response> {
    let result = run_to_end(async move { m.export_snapshot(&name, &snap, req).await }).await??;
    Ok(Json(result).into_response())
}

/// Run `work` on its own task, so it runs to its end even if the client
/// disconnects (axum drops a handler's future then).
async fn run_to_end<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(work).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the operation failed: {e}"),
        )
    })
}

async fn copy_instance(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<CopyRequest>,
) -> ApiResult<Response> {
    let inst = m.copy(&name, &req.name, req.snapshot).await?;
    Ok((StatusCode::CREATED, Json(inst)).into_response())
}

/// Console history returned at most (the supervisor keeps about 2 MiB).
const CONSOLE_LOG_MAX: usize = 1 << 20;

async fn console_log(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    let log = m.console_log(&name, CONSOLE_LOG_MAX).await?;
    Ok(Json(serde_json::json!({ "log": log })).into_response())
}

async fn list_pools(State(m): State<AppState>) -> ApiResult<Response> {
    Ok(Json(m.pools()?).into_response())
}

async fn get_pool(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.pool_info(&name)?).into_response())
}

async fn list_forwards(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.forwards(&name).await?).into_response())
}

async fn add_forward(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::PortForward>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(m.add_forward(&name, req).await?)).into_response())
}

async fn remove_forward(
    State(m): State<AppState>,
    Path((name, protocol, port)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let port: u16 = port
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid port {port:?}")))?;
    m.remove_forward(&name, &protocol, port).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_firewall(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.firewall(&name).await?).into_response())
}

async fn add_firewall_rule(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(rule): ApiJson<croft_api::FirewallRule>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(m.add_firewall_rule(&name, rule).await?)).into_response())
}

async fn remove_firewall_rule(
    State(m): State<AppState>,
    Path((name, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    let index: usize = index
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid rule number {index:?}")))?;
    Ok(Json(m.remove_firewall_rule(&name, index).await?).into_response())
}

async fn list_networks(State(m): State<AppState>) -> ApiResult<Response> {
    Ok(Json(m.networks().await?).into_response())
}

async fn get_network(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.network_info(&name).await?).into_response())
}

async fn list_images(State(m): State<AppState>) -> ApiResult<Response> {
    Ok(Json(m.list_images().await?).into_response())
}

async fn get_image(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(m.image(&name).await?).into_response())
}

async fn build_image(
    State(m): State<AppState>,
    ApiJson(req): ApiJson<croft_api::BuildRequest>,
) -> ApiResult<Response> {
    let job = m.build_image(&req.name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn import_image(
    State(m): State<AppState>,
    ApiJson(req): ApiJson<croft_api::ImportRequest>,
) -> ApiResult<Response> {
    let job = m.import_image(req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

async fn export_image(
    State(m): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::ExportRequest>,
) -> ApiResult<Response> {
    Ok(Json(m.export_image(&name, &req.path, req.overwrite).await?).into_response())
}

async fn delete_image(State(m): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    m.delete_image(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_jobs(State(m): State<AppState>) -> ApiResult<Response> {
    Ok(Json(m.jobs.list().await?).into_response())
}

async fn get_job(State(m): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let job = m
        .jobs
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("job {id:?} not found")))?;
    Ok(Json(job).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    /// Seconds to wait at most (default 60, at most 3600).
    timeout: Option<u64>,
}

async fn wait_job(
    State(m): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let timeout = Duration::from_secs(q.timeout.unwrap_or(60).min(3600));
    let job = m
        .jobs
        .wait(&id, timeout)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("job {id:?} not found")))?;
    Ok(Json(job).into_response())
}
