//! `/1.0/auth/whoami`, `/1.0/tenants`, `/1.0/tokens` and `/1.0/plans`:
//! who the caller is, the tenants with their quotas and usage, their API
//! tokens, and plans; and `/1.0/audit`, the audit log.

use super::guard::Scope;
use super::routes::Routes;
use super::{ApiError, ApiJson, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{AuditRead, Connect, PlanManage, PlanRead, TenantManage, TenantRead, TokenManage};
use crate::auth::{permitted, Caller, Credential};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/auth/whoami", Connect, whoami)
        .get("/1.0/tenants", TenantManage, list_tenants)
        .post("/1.0/tenants", TenantManage, create_tenant)
        .get("/1.0/tenants/{name}", TenantRead, tenant_info)
        .delete("/1.0/tenants/{name}", TenantManage, delete_tenant)
        .put("/1.0/tenants/{name}/quota", TenantManage, set_quota)
        .get("/1.0/tenants/{name}/usage", TenantRead, usage)
        .get("/1.0/plans", PlanRead, list_plans)
        .post("/1.0/plans", PlanManage, create_plan)
        .get("/1.0/plans/{name}", PlanRead, plan_info)
        .delete("/1.0/plans/{name}", PlanManage, delete_plan)
        .get("/1.0/tokens", TokenManage, list_tokens)
        .post("/1.0/tokens", TokenManage, create_token)
        .delete("/1.0/tokens/{id}", TokenManage, revoke_token)
        .get("/1.0/audit", AuditRead, audit)
}

async fn whoami(caller: Caller) -> Json<croft_api::WhoAmI> {
    let permitted = permitted(&caller).into_iter().map(|a| a.name()).collect();
    Json(croft_api::WhoAmI {
        credential: match caller.credential {
            Credential::LocalSocket => "local-socket".into(),
            Credential::Token { .. } => "token".into(),
        },
        name: caller.name,
        role: caller.role.as_str().into(),
        tenant: caller.tenant,
        permitted,
    })
}

async fn list_tenants(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.tenants.list().await?).into_response())
}

async fn create_tenant(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<croft_api::TenantCreate>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(s.tenants.create(req).await?)).into_response())
}

/// Refuse (404) a tenant role asking about another tenant.
fn own_tenant(caller: &Caller, name: &str) -> ApiResult<()> {
    if caller.tenant.as_ref().is_some_and(|own| own != name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("tenant {name} not found"),
        ));
    }
    Ok(())
}

/// A tenant: its own users see theirs, and no other.
async fn tenant_info(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    own_tenant(&caller, &name)?;
    Ok(Json(s.tenants.get(&name).await?).into_response())
}

/// What a tenant holds against its quota.
async fn usage(State(s): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    own_tenant(&caller, &name)?;
    Ok(Json(s.tenants.usage(&name).await?).into_response())
}

async fn set_quota(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(quota): ApiJson<croft_api::Quota>,
) -> ApiResult<Response> {
    Ok(Json(s.tenants.set_quota(&name, quota).await?).into_response())
}

async fn list_plans(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.tenants.plans().await?).into_response())
}

async fn plan_info(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.tenants.plan(&name).await?).into_response())
}

async fn create_plan(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<croft_api::PlanCreate>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(s.tenants.create_plan(req).await?)).into_response())
}

async fn delete_plan(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    s.tenants.delete_plan(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_tenant(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    s.tenants.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The tokens of the request's tenant; every token for the admin who
/// names no tenant.
async fn list_tokens(State(s): State<AppState>, caller: Caller, scope: Scope) -> ApiResult<Response> {
    Ok(Json(s.access.list_tokens(scope.listing(&caller)).await?).into_response())
}

async fn create_token(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiJson(req): ApiJson<croft_api::TokenCreate>,
) -> ApiResult<Response> {
    let made = s.access.create_token(&caller, &scope.tenant, req).await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

async fn revoke_token(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    s.access
        .revoke_token(&caller, caller.tenant.as_deref(), &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// How many of the latest entries (default 100).
    limit: Option<u32>,
}

/// The audit log, newest first: one tenant's with `?tenant=`, else all.
async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let entries = s
        .access
        .audit(scope.listing(&caller), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(entries).into_response())
}
