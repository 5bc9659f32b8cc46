//! `/1.0/networks` and each VPS's port forwards and firewall.

use super::guard::Scope;
use super::routes::Routes;
use super::{parse_segment, ApiJson, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{HostRead, NetworkManage, VpsChange, VpsRead};
use crate::auth::Caller;
use crate::service::VpsName;
use crate::store::RuleEdit;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/instances/{name}/forwards", VpsRead, list_forwards)
        .post("/1.0/instances/{name}/forwards", VpsChange, add_forward)
        .delete(
            "/1.0/instances/{name}/forwards/{protocol}/{port}",
            VpsChange,
            remove_forward,
        )
        .get("/1.0/instances/{name}/firewall", VpsRead, firewall)
        .post("/1.0/instances/{name}/firewall/rules", VpsChange, add_rule)
        .put(
            "/1.0/instances/{name}/firewall/rules/{index}",
            VpsChange,
            replace_rule,
        )
        .post(
            "/1.0/instances/{name}/firewall/rules/{index}/move",
            VpsChange,
            move_rule,
        )
        .delete(
            "/1.0/instances/{name}/firewall/rules/{index}",
            VpsChange,
            remove_rule,
        )
        .get("/1.0/networks", HostRead, list_networks)
        .post("/1.0/instances/{name}/addresses", VpsChange, add_address)
        .delete(
            "/1.0/instances/{name}/addresses/{address}",
            VpsChange,
            remove_address,
        )
        .post("/1.0/instances/{name}/nics", VpsChange, add_nic)
        .delete("/1.0/instances/{name}/nics/{index}", VpsChange, remove_nic)
        .post("/1.0/networks", NetworkManage, create_network)
        .get("/1.0/networks/{name}", HostRead, network_info)
        .delete("/1.0/networks/{name}", NetworkManage, delete_network)
}

#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/forwards",
    tag = "network",
    responses((status = 200, description = "The VPS's port forwards", body = Vec<croft_api::PortForward>))
)]
pub(super) async fn list_forwards(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.network.forwards(VpsName::new(&scope.tenant, &name)).await?).into_response())
}

/// Forward a host port, or a range (`host_port_end`), to the VPS. A
/// reserved port or one a host service listens on is refused; the admin
/// may take it with `?force=true`.
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/forwards",
    tag = "network",
    request_body = croft_api::PortForward,
    params(croft_api::ForwardForce),
    responses((status = 201, description = "The VPS's port forwards, the new one with them", body = Vec<croft_api::PortForward>))
)]
pub(super) async fn add_forward(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<croft_api::ForwardForce>,
    ApiJson(req): ApiJson<croft_api::PortForward>,
) -> ApiResult<Response> {
    crate::auth::refuse_unless_admin(&caller, q.force, "force a port forward")?;
    let forwards = s
        .network
        .add_forward(VpsName::new(&scope.tenant, &name), req, q.force)
        .await?;
    Ok((StatusCode::CREATED, Json(forwards)).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}/forwards/{protocol}/{port}",
    tag = "network",
    responses((status = 204, description = "Removed"))
)]
pub(super) async fn remove_forward(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, protocol, port)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let port: u16 = parse_segment(&port, "port")?;
    s.network
        .remove_forward(VpsName::new(&scope.tenant, &name), &protocol, port)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/firewall",
    tag = "network",
    responses((status = 200, description = "The VPS's firewall", body = croft_api::Firewall))
)]
pub(super) async fn firewall(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.network.firewall(VpsName::new(&scope.tenant, &name)).await?).into_response())
}

/// Add a rule: last, or at `?position=N` (before the rule that had
/// that number).
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/firewall/rules",
    tag = "network",
    request_body = croft_api::FirewallRule,
    params(croft_api::RulePosition),
    responses((status = 201, description = "The firewall with the new rule", body = croft_api::Firewall))
)]
pub(super) async fn add_rule(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiQuery(at): ApiQuery<croft_api::RulePosition>,
    ApiJson(rule): ApiJson<croft_api::FirewallRule>,
) -> ApiResult<Response> {
    let edit = RuleEdit::Insert {
        position: at.position,
        rule,
    };
    let firewall = s
        .network
        .edit_firewall(VpsName::new(&scope.tenant, &name), edit)
        .await?;
    Ok((StatusCode::CREATED, Json(firewall)).into_response())
}

/// Replace rule `index` with another, in its place.
#[utoipa::path(
    put,
    path = "/1.0/instances/{name}/firewall/rules/{index}",
    tag = "network",
    request_body = croft_api::FirewallRule,
    responses((status = 200, description = "The firewall with the rule replaced", body = croft_api::Firewall))
)]
pub(super) async fn replace_rule(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, String)>,
    ApiJson(rule): ApiJson<croft_api::FirewallRule>,
) -> ApiResult<Response> {
    let index: usize = parse_segment(&index, "rule number")?;
    let edit = RuleEdit::Replace { index, rule };
    Ok(Json(
        s.network
            .edit_firewall(VpsName::new(&scope.tenant, &name), edit)
            .await?,
    )
    .into_response())
}

/// Give rule `index` another number; the rules between shift.
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/firewall/rules/{index}/move",
    tag = "network",
    request_body = croft_api::RuleMove,
    responses((status = 200, description = "The firewall in its new order", body = croft_api::Firewall))
)]
pub(super) async fn move_rule(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, String)>,
    ApiJson(to): ApiJson<croft_api::RuleMove>,
) -> ApiResult<Response> {
    let index: usize = parse_segment(&index, "rule number")?;
    let edit = RuleEdit::Move { index, to: to.to };
    Ok(Json(
        s.network
            .edit_firewall(VpsName::new(&scope.tenant, &name), edit)
            .await?,
    )
    .into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}/firewall/rules/{index}",
    tag = "network",
    responses((status = 200, description = "The firewall without the rule", body = croft_api::Firewall))
)]
pub(super) async fn remove_rule(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    let index: usize = parse_segment(&index, "rule number")?;
    Ok(Json(
        s.network
            .edit_firewall(VpsName::new(&scope.tenant, &name), RuleEdit::Remove { index })
            .await?,
    )
    .into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/networks",
    tag = "network",
    responses((status = 200, description = "The networks", body = Vec<croft_api::Network>))
)]
pub(super) async fn list_networks(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.network.networks().await?).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/networks/{name}",
    tag = "network",
    responses((status = 200, description = "The network with its leases", body = croft_api::Network))
)]
pub(super) async fn network_info(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.network.network_info(&name).await?).into_response())
}

/// A network of its own beside the default one: a bridge with its
/// subnets, masqueraded out, kept apart from the other networks.
#[utoipa::path(
    post,
    path = "/1.0/networks",
    tag = "network",
    request_body = croft_api::NetworkCreate,
    responses((status = 201, description = "The new network", body = croft_api::Network))
)]
pub(super) async fn create_network(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<croft_api::NetworkCreate>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(s.network.create_network(req).await?)).into_response())
}

/// Delete a network no VPS is on (409 naming those that are), with its
/// bridge.
#[utoipa::path(
    delete,
    path = "/1.0/networks/{name}",
    tag = "network",
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn delete_network(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    s.network.delete_network(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Give the VPS another address of its network (`address`, or the next
/// free one of `family`), on its interface at once if it runs.
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/addresses",
    tag = "network",
    request_body = croft_api::AddressAdd,
    responses((status = 201, description = "The VPS with the address", body = croft_api::Instance))
)]
pub(super) async fn add_address(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::AddressAdd>,
) -> ApiResult<Response> {
    let vps = s
        .instances
        .add_address(VpsName::new(&scope.tenant, &name), req)
        .await?;
    Ok((StatusCode::CREATED, Json(vps)).into_response())
}

/// Give a stopped VPS another interface, on another network (made at its
/// next start as `eth1`..).
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/nics",
    tag = "network",
    request_body = croft_api::NicAdd,
    responses((status = 201, description = "The VPS with the interface", body = croft_api::Instance))
)]
pub(super) async fn add_nic(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::NicAdd>,
) -> ApiResult<Response> {
    crate::auth::refuse_unless_admin(&caller, req.mac.is_some(), "choose a VPS's MAC")?;
    let vps = s
        .instances
        .add_nic(VpsName::new(&scope.tenant, &name), req)
        .await?;
    Ok((StatusCode::CREATED, Json(vps)).into_response())
}

/// Take interface `index` (`eth1`..) off a stopped VPS.
#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}/nics/{index}",
    tag = "network",
    responses((status = 200, description = "The VPS without the interface", body = croft_api::Instance))
)]
pub(super) async fn remove_nic(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let vps = s
        .instances
        .remove_nic(VpsName::new(&scope.tenant, &name), index)
        .await?;
    Ok(Json(vps).into_response())
}

/// Take an address off the VPS, at once if it runs (its first of a family:
/// the additional one added first takes its place).
#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}/addresses/{address}",
    tag = "network",
    responses((status = 200, description = "The VPS without the address", body = croft_api::Instance))
)]
pub(super) async fn remove_address(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, address)): Path<(String, String)>,
) -> ApiResult<Response> {
    let vps = s
        .instances
        .remove_address(VpsName::new(&scope.tenant, &name), &address)
        .await?;
    Ok(Json(vps).into_response())
}
