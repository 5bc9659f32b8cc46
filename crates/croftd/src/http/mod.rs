//! The REST API (`/1.0/...`) and the web panel beside it (`/ui/`,
//! `panel/`): the route table (`routes.rs`), the guard
//! that authenticates and authorizes every request (`guard.rs`), request
//! decoding, and one file per resource. Handlers only decode, call a
//! service and encode; every error becomes a JSON body whose status
//! follows from its kind (`error.rs`).

mod access;
mod error;
mod events;
mod exec;
mod groups;
pub mod guard;
mod images;
mod instances;
mod jobs;
mod metrics;
mod network;
pub mod openapi;
mod panel;
pub mod routes;
mod session;
mod snapshots;
pub mod tls;

use crate::service::Services;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
pub use error::{status_of, ApiError, ApiResult};
pub use guard::{Peer, Scope};
pub use routes::Endpoint;

/// Largest request body accepted.
const BODY_LIMIT: usize = 1 << 20;

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

/// A query string decoded, or a 400 saying what is wrong with it.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// A request body as a blocking reader: an upload read as it arrives
/// (and never limited to [`BODY_LIMIT`]).
fn upload(body: axum::body::Body) -> crate::service::stream::Upload {
    use futures_util::TryStreamExt;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    Box::new(tokio_util::io::SyncIoBridge::new(
        tokio_util::io::StreamReader::new(stream),
    ))
}

/// A download as the response body: its chunks as they come; a failure
/// part-way aborts the response, so the client never takes it for whole.
fn download(download: crate::service::stream::Download) -> Response {
    let chunks = futures_util::stream::unfold(download, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    (
        [(axum::http::header::CONTENT_TYPE, croft_api::STREAM_TYPE)],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

/// Whether a request carries a stream ([`croft_api::STREAM_TYPE`]) rather
/// than JSON.
fn is_stream(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(croft_api::STREAM_TYPE.as_bytes()))
}

/// A path segment that must parse as `T` (a port, a rule number).
fn parse_segment<T: std::str::FromStr>(text: &str, what: &str) -> ApiResult<T> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid {what} {text:?}")))
}

type AppState = Services;

/// The API as served to remote callers, whose listener tells each
/// request's [`Peer`]; and its route table.
pub fn api(services: Services) -> (Router, Vec<Endpoint>) {
    let r = routes::Routes::new(services.clone()).get("/1.0", crate::auth::Action::Connect, server_info);
    let r = instances::routes(r);
    let r = snapshots::routes(r);
    let r = network::routes(r);
    let r = groups::routes(r);
    let r = images::routes(r);
    let r = jobs::routes(r);
    let r = exec::routes(r);
    let r = events::routes(r);
    let r = metrics::routes(r);
    let r = r.get(
        "/1.0/openapi.json",
        crate::auth::Action::Connect,
        openapi_document,
    );
    let (router, table) = access::routes(r).into_parts();
    let document = std::sync::Arc::new(openapi::document(&table));
    let router = router
        .layer(Extension(document))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(services.clone())
        // The panel's pages answer in HTML, errors too: merged after the
        // API's layers, which are the API's alone.
        .merge(panel::router().with_state(services));
    (router, table)
}

/// The API as served on the local socket: every request is host root's.
pub fn local(services: Services) -> Router {
    api(services).0.layer(Extension(Peer::Local))
}

/// Errors axum answers itself (a path that does not decode, such as a
/// name that is not UTF-8) come as plain text: wrap them in the same JSON
/// error body as ours, so every error a client sees has one shape.
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

/// The API's OpenAPI document (`openapi.rs`).
#[utoipa::path(
    get,
    path = "/1.0/openapi.json",
    tag = "server",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object))
)]
pub(super) async fn openapi_document(
    Extension(document): Extension<std::sync::Arc<serde_json::Value>>,
) -> Response {
    Json(document.as_ref().clone()).into_response()
}

#[utoipa::path(
    get,
    path = "/1.0",
    tag = "server",
    responses((status = 200, description = "croftd: version, backend, where it listens", body = croft_api::ServerInfo))
)]
pub(super) async fn server_info(State(s): State<AppState>) -> Json<croft_api::ServerInfo> {
    Json(croft_api::ServerInfo {
        api_version: "1.0".into(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        backend: s.backend_kind.into(),
        cgroup_version: s.cgroup_version.map(str::to_string),
        https_address: s.https.as_ref().map(|h| h.address.clone()),
        certificate_fingerprint: s.https.as_ref().map(|h| h.fingerprint.clone()),
    })
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
