//! `/1.0/networks` and each VPS's port forwards and firewall.

use super::{parse_segment, ApiJson, ApiResult, AppState, Caller};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/1.0/instances/{name}/forwards",
            get(list_forwards).post(add_forward),
        )
        .route(
            "/1.0/instances/{name}/forwards/{protocol}/{port}",
            delete(remove_forward),
        )
        .route("/1.0/instances/{name}/firewall", get(firewall))
        .route("/1.0/instances/{name}/firewall/rules", post(add_rule))
        .route(
            "/1.0/instances/{name}/firewall/rules/{index}",
            delete(remove_rule),
        )
        .route("/1.0/networks", get(list_networks))
        .route("/1.0/networks/{name}", get(network_info))
}

async fn list_forwards(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.network.forwards(&name).await?).into_response())
}

async fn add_forward(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::PortForward>,
) -> ApiResult<Response> {
    Ok((
        StatusCode::CREATED,
        Json(s.network.add_forward(&name, req).await?),
    )
        .into_response())
}

async fn remove_forward(
    State(s): State<AppState>,
    _: Caller,
    Path((name, protocol, port)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let port: u16 = parse_segment(&port, "port")?;
    s.network.remove_forward(&name, &protocol, port).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn firewall(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.network.firewall(&name).await?).into_response())
}

async fn add_rule(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
    ApiJson(rule): ApiJson<croft_api::FirewallRule>,
) -> ApiResult<Response> {
    Ok((
        StatusCode::CREATED,
        Json(s.network.add_firewall_rule(&name, rule).await?),
    )
        .into_response())
}

async fn remove_rule(
    State(s): State<AppState>,
    _: Caller,
    Path((name, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    let index: usize = parse_segment(&index, "rule number")?;
    Ok(Json(s.network.remove_firewall_rule(&name, index).await?).into_response())
}

async fn list_networks(State(s): State<AppState>, _: Caller) -> ApiResult<Response> {
    Ok(Json(s.network.networks().await?).into_response())
}

async fn network_info(State(s): State<AppState>, _: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.network.network_info(&name).await?).into_response())
}
