//! `/1.0/firewall-groups`: a tenant's security groups and their rules;
//! and `/1.0/instances/{name}/firewall/groups`: the groups attached to a
//! VPS.

use super::guard::Scope;
use super::routes::Routes;
use super::{parse_segment, ApiJson, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{VpsChange, VpsRead};
use crate::auth::Caller;
use crate::service::VpsName;
use crate::store::RuleEdit;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/firewall-groups", VpsRead, list)
        .post("/1.0/firewall-groups", VpsChange, create)
        .get("/1.0/firewall-groups/{name}", VpsRead, info)
        .delete("/1.0/firewall-groups/{name}", VpsChange, delete)
        .post("/1.0/firewall-groups/{name}/rules", VpsChange, add_rule)
        .put(
            "/1.0/firewall-groups/{name}/rules/{index}",
            VpsChange,
            replace_rule,
        )
        .post(
            "/1.0/firewall-groups/{name}/rules/{index}/move",
            VpsChange,
            move_rule,
        )
        .delete(
            "/1.0/firewall-groups/{name}/rules/{index}",
            VpsChange,
            remove_rule,
        )
        .post("/1.0/instances/{name}/firewall/groups", VpsChange, attach)
        .delete("/1.0/instances/{name}/firewall/groups/{group}", VpsChange, detach)
}

/// The request's tenant's groups; every tenant's for the admin naming
/// none.
#[utoipa::path(
    get,
    path = "/1.0/firewall-groups",
    tag = "security-groups",
    responses((status = 200, description = "The security groups", body = Vec<croft_api::FirewallGroup>))
)]
pub(super) async fn list(State(s): State<AppState>, caller: Caller, scope: Scope) -> ApiResult<Response> {
    Ok(Json(s.network.groups(scope.listing(&caller)).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/firewall-groups",
    tag = "security-groups",
    request_body = croft_api::FirewallGroupCreate,
    responses((status = 201, description = "The new, empty group", body = croft_api::FirewallGroup))
)]
pub(super) async fn create(
    State(s): State<AppState>,
    scope: Scope,
    ApiJson(req): ApiJson<croft_api::FirewallGroupCreate>,
) -> ApiResult<Response> {
    let group = s.network.create_group(&scope.tenant, req).await?;
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/firewall-groups/{name}",
    tag = "security-groups",
    responses((status = 200, description = "The group, its rules and members", body = croft_api::FirewallGroup))
)]
pub(super) async fn info(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.network.group(&scope.tenant, &name).await?).into_response())
}

/// Delete a group attached to no VPS (409 naming those it is attached to).
#[utoipa::path(
    delete,
    path = "/1.0/firewall-groups/{name}",
    tag = "security-groups",
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn delete(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    s.network.delete_group(&scope.tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Add a rule to a group: last, or at `?position=N`; in force on every
/// member at once.
#[utoipa::path(
    post,
    path = "/1.0/firewall-groups/{name}/rules",
    tag = "security-groups",
    request_body = croft_api::FirewallRule,
    params(croft_api::RulePosition),
    responses((status = 201, description = "The group with the new rule", body = croft_api::FirewallGroup))
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
    let group = s.network.edit_group(&scope.tenant, &name, edit).await?;
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

#[utoipa::path(
    put,
    path = "/1.0/firewall-groups/{name}/rules/{index}",
    tag = "security-groups",
    request_body = croft_api::FirewallRule,
    responses((status = 200, description = "The group with the rule replaced", body = croft_api::FirewallGroup))
)]
pub(super) async fn replace_rule(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, String)>,
    ApiJson(rule): ApiJson<croft_api::FirewallRule>,
) -> ApiResult<Response> {
    let index: usize = parse_segment(&index, "rule number")?;
    let edit = RuleEdit::Replace { index, rule };
    Ok(Json(s.network.edit_group(&scope.tenant, &name, edit).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/firewall-groups/{name}/rules/{index}/move",
    tag = "security-groups",
    request_body = croft_api::RuleMove,
    responses((status = 200, description = "The group in its new order", body = croft_api::FirewallGroup))
)]
pub(super) async fn move_rule(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, String)>,
    ApiJson(to): ApiJson<croft_api::RuleMove>,
) -> ApiResult<Response> {
    let index: usize = parse_segment(&index, "rule number")?;
    let edit = RuleEdit::Move { index, to: to.to };
    Ok(Json(s.network.edit_group(&scope.tenant, &name, edit).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/firewall-groups/{name}/rules/{index}",
    tag = "security-groups",
    responses((status = 200, description = "The group without the rule", body = croft_api::FirewallGroup))
)]
pub(super) async fn remove_rule(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    let index: usize = parse_segment(&index, "rule number")?;
    let edit = RuleEdit::Remove { index };
    Ok(Json(s.network.edit_group(&scope.tenant, &name, edit).await?).into_response())
}

/// Attach one of the tenant's groups to the VPS: its rules follow the
/// VPS's own, after the groups attached before.
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/firewall/groups",
    tag = "security-groups",
    request_body = croft_api::GroupAttach,
    responses((status = 200, description = "The VPS's firewall with the group", body = croft_api::Firewall))
)]
pub(super) async fn attach(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::GroupAttach>,
) -> ApiResult<Response> {
    let vps = VpsName::new(&scope.tenant, &name);
    Ok(Json(s.network.attach_group(vps, &req.group).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}/firewall/groups/{group}",
    tag = "security-groups",
    responses((status = 200, description = "The VPS's firewall without the group", body = croft_api::Firewall))
)]
pub(super) async fn detach(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, group)): Path<(String, String)>,
) -> ApiResult<Response> {
    let vps = VpsName::new(&scope.tenant, &name);
    Ok(Json(s.network.detach_group(vps, &group).await?).into_response())
}
