//! `/1.0/auth/whoami`, `/1.0/tenants`, `/1.0/tokens` and `/1.0/plans`:
//! who the caller is, the tenants with their quotas and usage, their API
//! tokens, and plans; `/1.0/users`, the panel's users, with
//! `/1.0/auth/password` (a user's own) and `/1.0/tickets` (a panel
//! session's WebSocket tickets); and `/1.0/audit`, the audit log.

use super::guard::Peer;
use super::guard::Scope;
use super::routes::Routes;
use super::{ApiError, ApiJson, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{
    AuditRead, Connect, Enroll, PlanManage, PlanRead, TenantManage, TenantRead, TokenManage, UserManage,
};
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
        .put("/1.0/tenants/{name}/images", TenantManage, set_images)
        .put("/1.0/tenants/{name}/features", TenantManage, set_features)
        .get("/1.0/tenants/{name}/usage", TenantRead, usage)
        .get("/1.0/plans", PlanRead, list_plans)
        .post("/1.0/plans", PlanManage, create_plan)
        .get("/1.0/plans/{name}", PlanRead, plan_info)
        .delete("/1.0/plans/{name}", PlanManage, delete_plan)
        .get("/1.0/tokens", TokenManage, list_tokens)
        .post("/1.0/tokens", TokenManage, create_token)
        .delete("/1.0/tokens/{id}", TokenManage, revoke_token)
        .get("/1.0/users", UserManage, list_users)
        .post("/1.0/users", UserManage, create_user)
        .delete("/1.0/users/{name}", UserManage, delete_user)
        .put("/1.0/users/{name}/password", UserManage, reset_password)
        .put("/1.0/auth/password", Connect, change_own_password)
        .post("/1.0/tickets", Connect, create_ticket)
        .get("/1.0/audit", AuditRead, audit)
        .get("/1.0/trust", TokenManage, list_trust)
        .post("/1.0/trust/tokens", TokenManage, create_trust_token)
        .delete("/1.0/trust/{id}", TokenManage, untrust)
        .post("/1.0/trust/enroll", Enroll, enroll)
}

#[utoipa::path(
    get,
    path = "/1.0/auth/whoami",
    tag = "auth",
    responses((status = 200, description = "Who the caller is and what it may do", body = croft_api::WhoAmI))
)]
pub(super) async fn whoami(caller: Caller) -> Json<croft_api::WhoAmI> {
    let permitted = permitted(&caller).into_iter().map(|a| a.name()).collect();
    Json(croft_api::WhoAmI {
        credential: match caller.credential {
            Credential::LocalSocket => "local-socket".into(),
            Credential::Token { .. } => "token".into(),
            Credential::Certificate { .. } => "certificate".into(),
            Credential::Session { .. } => "session".into(),
        },
        name: caller.name,
        role: caller.role.as_str().into(),
        tenant: caller.tenant,
        permitted,
    })
}

#[utoipa::path(
    get,
    path = "/1.0/tenants",
    tag = "tenants",
    responses((status = 200, description = "The tenants", body = Vec<croft_api::Tenant>))
)]
pub(super) async fn list_tenants(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.tenants.list().await?).into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/tenants",
    tag = "tenants",
    request_body = croft_api::TenantCreate,
    responses((status = 201, description = "The new tenant", body = croft_api::Tenant))
)]
pub(super) async fn create_tenant(
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
#[utoipa::path(
    get,
    path = "/1.0/tenants/{name}",
    tag = "tenants",
    responses((status = 200, description = "The tenant", body = croft_api::Tenant))
)]
pub(super) async fn tenant_info(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    own_tenant(&caller, &name)?;
    Ok(Json(s.tenants.get(&name).await?).into_response())
}

/// What a tenant holds against its quota.
#[utoipa::path(
    get,
    path = "/1.0/tenants/{name}/usage",
    tag = "tenants",
    responses((status = 200, description = "What the tenant holds against each cap", body = croft_api::TenantUsage))
)]
pub(super) async fn usage(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    own_tenant(&caller, &name)?;
    Ok(Json(s.tenants.usage(&name).await?).into_response())
}

#[utoipa::path(
    put,
    path = "/1.0/tenants/{name}/quota",
    tag = "tenants",
    request_body = croft_api::Quota,
    responses((status = 200, description = "The tenant with its new quota", body = croft_api::Tenant))
)]
pub(super) async fn set_quota(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(quota): ApiJson<croft_api::Quota>,
) -> ApiResult<Response> {
    Ok(Json(s.tenants.set_quota(&name, quota).await?).into_response())
}

#[utoipa::path(
    put,
    path = "/1.0/tenants/{name}/images",
    tag = "tenants",
    request_body = croft_api::TenantImages,
    responses((status = 200, description = "The tenant with its new image list", body = croft_api::Tenant))
)]
pub(super) async fn set_images(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::TenantImages>,
) -> ApiResult<Response> {
    Ok(Json(s.tenants.set_images(&name, req.images).await?).into_response())
}

/// Set the features (`tun`, `fuse`) the tenant's VPSes may have on.
#[utoipa::path(
    put,
    path = "/1.0/tenants/{name}/features",
    tag = "tenants",
    request_body = croft_api::TenantFeatures,
    responses((status = 200, description = "The tenant with its new feature list", body = croft_api::Tenant))
)]
pub(super) async fn set_features(
    State(s): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::TenantFeatures>,
) -> ApiResult<Response> {
    Ok(Json(s.tenants.set_features(&name, req.features).await?).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/plans",
    tag = "tenants",
    responses((status = 200, description = "The plans", body = Vec<croft_api::Plan>))
)]
pub(super) async fn list_plans(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.tenants.plans().await?).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/plans/{name}",
    tag = "tenants",
    responses((status = 200, description = "The plan", body = croft_api::Plan))
)]
pub(super) async fn plan_info(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.tenants.plan(&name).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/plans",
    tag = "tenants",
    request_body = croft_api::PlanCreate,
    responses((status = 201, description = "The new plan", body = croft_api::Plan))
)]
pub(super) async fn create_plan(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<croft_api::PlanCreate>,
) -> ApiResult<Response> {
    Ok((StatusCode::CREATED, Json(s.tenants.create_plan(req).await?)).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/plans/{name}",
    tag = "tenants",
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn delete_plan(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    s.tenants.delete_plan(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/tenants/{name}",
    tag = "tenants",
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn delete_tenant(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    s.tenants.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The tokens of the request's tenant; every token for the admin who
/// names no tenant.
#[utoipa::path(
    get,
    path = "/1.0/tokens",
    tag = "auth",
    responses((status = 200, description = "The API tokens, never their secrets", body = Vec<croft_api::Token>))
)]
pub(super) async fn list_tokens(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
) -> ApiResult<Response> {
    Ok(Json(s.access.list_tokens(scope.listing(&caller)).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/tokens",
    tag = "auth",
    request_body = croft_api::TokenCreate,
    responses((status = 201, description = "The token, shown this once, and its record", body = croft_api::TokenCreated))
)]
pub(super) async fn create_token(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiJson(req): ApiJson<croft_api::TokenCreate>,
) -> ApiResult<Response> {
    let made = s.access.create_token(&caller, &scope.tenant, req).await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/tokens/{id}",
    tag = "auth",
    responses((status = 204, description = "Revoked: refused from the next request on"))
)]
pub(super) async fn revoke_token(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    s.access
        .revoke_token(&caller, caller.tenant.as_deref(), &id)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The panel users of the request's tenant; every user for the admin
/// naming no tenant.
#[utoipa::path(
    get,
    path = "/1.0/users",
    tag = "auth",
    responses((status = 200, description = "Panel users, by name", body = Vec<croft_api::User>))
)]
pub(super) async fn list_users(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
) -> ApiResult<Response> {
    Ok(Json(s.access.list_users(scope.listing(&caller)).await?).into_response())
}

/// A panel user: an owner or viewer of the request's tenant, or (by the
/// admin) an admin.
#[utoipa::path(
    post,
    path = "/1.0/users",
    tag = "auth",
    request_body = croft_api::UserCreate,
    responses((status = 201, description = "Made", body = croft_api::User))
)]
pub(super) async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiJson(req): ApiJson<croft_api::UserCreate>,
) -> ApiResult<Response> {
    let made = s.access.create_user(&caller, &scope.tenant, req).await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/users/{name}",
    tag = "auth",
    responses((status = 204, description = "Deleted, its sessions ended"))
)]
pub(super) async fn delete_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    s.access
        .delete_user(&caller, caller.tenant.as_deref(), &name)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Set a user's password (the admin, or its tenant's owner); its sessions
/// end.
#[utoipa::path(
    put,
    path = "/1.0/users/{name}/password",
    tag = "auth",
    request_body = croft_api::PasswordChange,
    responses((status = 204, description = "Set"))
)]
pub(super) async fn reset_password(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::PasswordChange>,
) -> ApiResult<Response> {
    s.access
        .set_password(&caller, caller.tenant.as_deref(), &name, req)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A panel user's own password, with the current one; its other sessions
/// end.
#[utoipa::path(
    put,
    path = "/1.0/auth/password",
    tag = "auth",
    request_body = croft_api::PasswordChange,
    responses((status = 204, description = "Changed"), (status = 400, description = "Not a panel session, or no current password", body = croft_api::ErrorBody))
)]
pub(super) async fn change_own_password(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<croft_api::PasswordChange>,
) -> ApiResult<Response> {
    let Credential::Session { user, .. } = &caller.credential else {
        return Err(ApiError::bad_request(
            "only a panel user has a password; this request is not from a panel session",
        ));
    };
    let user = user.clone();
    s.access.set_password(&caller, None, &user, req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A single-use ticket for the caller's panel session to open one
/// WebSocket, at the path given, within 30 seconds.
#[utoipa::path(
    post,
    path = "/1.0/tickets",
    tag = "auth",
    request_body = croft_api::TicketCreate,
    responses((status = 201, description = "The ticket", body = croft_api::Ticket))
)]
pub(super) async fn create_ticket(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<croft_api::TicketCreate>,
) -> ApiResult<Response> {
    let ticket = s.access.issue_ticket(&caller, &req.path)?;
    Ok((StatusCode::CREATED, Json(ticket)).into_response())
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    /// How many of the latest entries (default 100).
    limit: Option<u32>,
}

/// The audit log, newest first: one tenant's with `?tenant=`, else all.
#[utoipa::path(
    get,
    path = "/1.0/audit",
    tag = "auth",
    params(AuditQuery),
    responses((status = 200, description = "The audit log, newest first", body = Vec<croft_api::AuditEntry>))
)]
pub(super) async fn audit(
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

/// The certificates trusted and the trust tokens pending: the request's
/// tenant's, or all for the admin who names none.
#[utoipa::path(
    get,
    path = "/1.0/trust",
    tag = "auth",
    responses((status = 200, description = "Trusted certificates and pending trust tokens", body = croft_api::Trust))
)]
pub(super) async fn list_trust(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
) -> ApiResult<Response> {
    let (tokens, certificates) = s.access.trust(scope.listing(&caller)).await?;
    Ok(Json(croft_api::Trust { certificates, tokens }).into_response())
}

/// A trust token for a client certificate; it carries where croftd
/// listens and its certificate's fingerprint.
#[utoipa::path(
    post,
    path = "/1.0/trust/tokens",
    tag = "auth",
    request_body = croft_api::TrustTokenCreate,
    responses((status = 201, description = "The trust token, shown this once", body = croft_api::TrustTokenCreated))
)]
pub(super) async fn create_trust_token(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiJson(req): ApiJson<croft_api::TrustTokenCreate>,
) -> ApiResult<Response> {
    let Some(https) = &s.https else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "croftd does not listen for remote callers: set https_address in its configuration",
        ));
    };
    let made = s
        .access
        .create_trust_token(
            &caller,
            &scope.tenant,
            req,
            super::tls::reachable_addresses(https.bound),
            https.fingerprint.clone(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

#[utoipa::path(
    delete,
    path = "/1.0/trust/{id}",
    tag = "auth",
    responses((status = 204, description = "Removed: refused from the next request on"))
)]
pub(super) async fn untrust(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    s.access.untrust(&caller, caller.tenant.as_deref(), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Trust the client certificate this request came with, by a trust
/// token's secret.
#[utoipa::path(
    post,
    path = "/1.0/trust/enroll",
    tag = "auth",
    request_body = croft_api::Enroll,
    responses((status = 201, description = "The certificate this request came with, now trusted", body = croft_api::Certificate))
)]
pub(super) async fn enroll(
    State(s): State<AppState>,
    peer: Peer,
    ApiJson(req): ApiJson<croft_api::Enroll>,
) -> ApiResult<Response> {
    let Peer::Remote {
        addr,
        certificate: Some(fingerprint),
    } = peer
    else {
        return Err(ApiError::bad_request(
            "enrolling needs a client certificate, over the network (croft remote add NAME TOKEN)",
        ));
    };
    let cert = s.access.enroll(&req.secret, &fingerprint, addr.ip()).await?;
    Ok((StatusCode::CREATED, Json(cert)).into_response())
}
