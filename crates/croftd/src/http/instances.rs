//! `/1.0/instances`: VPSes, their state, configuration, console and
//! copies; and `/1.0/storage-pools`.

use super::guard::Scope;
use super::routes::Routes;
use super::{ApiError, ApiJson, ApiQuery, ApiResult, AppState};
use crate::auth::Action::{HostRead, ImageChange, VpsChange, VpsHost, VpsRead};
use crate::auth::Caller;
use crate::service::VpsName;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use croft_api::{ConfigPatch, CopyRequest, LaunchRequest, StateAction, StateRequest};
use serde::Deserialize;

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/instances", VpsRead, list)
        .post("/1.0/instances", VpsChange, launch)
        .get("/1.0/instances/{name}", VpsRead, info)
        .delete("/1.0/instances/{name}", VpsChange, delete)
        .get("/1.0/instances/{name}/state", VpsRead, state)
        .post("/1.0/instances/{name}/state", VpsChange, change_state)
        .get("/1.0/instances/{name}/host", VpsHost, host_details)
        .patch("/1.0/instances/{name}/config", VpsChange, patch_config)
        .get("/1.0/instances/{name}/console", VpsRead, console_log)
        .post("/1.0/instances/{name}/copy", VpsChange, copy)
        .post("/1.0/instances/{name}/publish", ImageChange, publish)
        .post("/1.0/instances/{name}/rebuild", VpsChange, rebuild)
        .post("/1.0/instances/{name}/rename", VpsChange, rename)
        .post("/1.0/instances/{name}/password", VpsChange, set_password)
        .get("/1.0/instances/{name}/ssh-keys", VpsRead, list_ssh_keys)
        .post("/1.0/instances/{name}/ssh-keys", VpsChange, add_ssh_key)
        .delete(
            "/1.0/instances/{name}/ssh-keys/{index}",
            VpsChange,
            remove_ssh_key,
        )
        .get("/1.0/instances/{name}/traffic", VpsRead, traffic)
        .get("/1.0/instances/{name}/metrics", VpsRead, usage_history)
        .get("/1.0/storage-pools", HostRead, list_pools)
        .get("/1.0/storage-pools/{name}", HostRead, pool_info)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Every tenant's, for the admin.
    #[serde(default, rename = "all-tenants")]
    all_tenants: bool,
}

/// The VPSes of the request's tenant; of every tenant with
/// `?all-tenants=true` from a caller of no tenant (a tenant's users get
/// their own).
#[utoipa::path(
    get,
    path = "/1.0/instances",
    tag = "instances",
    params(ListQuery),
    responses((status = 200, description = "The VPSes", body = Vec<croft_api::Instance>))
)]
pub(super) async fn list(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let tenant = (!q.all_tenants || caller.tenant.is_some()).then_some(scope.tenant.as_str());
    Ok(Json(s.instances.list(tenant).await?).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/instances/{name}",
    tag = "instances",
    responses((status = 200, description = "The VPS", body = croft_api::Instance))
)]
pub(super) async fn info(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.instances.get(VpsName::new(&scope.tenant, &name)).await?).into_response())
}

/// The VPS without its disk usage (which costs a filesystem commit to
/// read): what `croft exec` and `croft console` ask before they connect.
#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/state",
    tag = "instances",
    responses((status = 200, description = "The VPS without its disk usage", body = croft_api::Instance))
)]
pub(super) async fn state(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.instances.get_brief(VpsName::new(&scope.tenant, &name)).await?).into_response())
}

/// How the VPS sits on the host (id range, init, control socket).
#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/host",
    tag = "instances",
    responses((status = 200, description = "How the VPS sits on the host", body = croft_api::HostDetails))
)]
pub(super) async fn host_details(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(
        s.instances
            .host_details(VpsName::new(&scope.tenant, &name))
            .await?,
    )
    .into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/instances",
    tag = "instances",
    request_body = croft_api::LaunchRequest,
    responses((status = 202, description = "The launch, a job", body = croft_api::Job))
)]
pub(super) async fn launch(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiJson(req): ApiJson<LaunchRequest>,
) -> ApiResult<Response> {
    crate::auth::refuse_admin_keys(&caller, req.config.keys())?;
    // A MAC of the tenant's choosing could be the gateway's or another's
    // on the link: the provider's to give (a failover address's).
    crate::auth::refuse_unless_admin(&caller, req.mac.is_some(), "choose a VPS's MAC")?;
    let job = s.instances.launch(&scope.tenant, req).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}",
    tag = "instances",
    params(DeleteQuery),
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn delete(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<Response> {
    s.instances
        .delete(VpsName::new(&scope.tenant, &name), q.force)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/state",
    tag = "instances",
    request_body = croft_api::StateRequest,
    responses((status = 200, description = "The VPS after the change", body = croft_api::Instance))
)]
pub(super) async fn change_state(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<StateRequest>,
) -> ApiResult<Response> {
    croft_api::validate_name(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(t) = req.timeout {
        if !(1..=3600).contains(&t) {
            return Err(ApiError::bad_request(
                "timeout must be between 1 and 3600 seconds",
            ));
        }
    }
    if (req.rescue || req.rescue_image.is_some()) && req.action == StateAction::Stop {
        return Err(ApiError::bad_request("rescue applies to start and restart only"));
    }
    if (req.wait || req.wait_timeout.is_some()) && req.action == StateAction::Stop {
        return Err(ApiError::bad_request("wait applies to start and restart only"));
    }
    if req.wait_timeout.is_some_and(|t| !(1..=3600).contains(&t)) {
        return Err(ApiError::bad_request(
            "wait_timeout must be between 1 and 3600 seconds",
        ));
    }
    if req.rescue_image.is_some() && !req.rescue {
        return Err(ApiError::bad_request("rescue_image needs rescue: true"));
    }
    let vps = match req.action {
        StateAction::Start => {
            let rescue = req.rescue.then_some(req.rescue_image.as_deref());
            s.instances
                .start(VpsName::new(&scope.tenant, &name), rescue)
                .await?
        }
        StateAction::Stop => {
            s.instances
                .stop(VpsName::new(&scope.tenant, &name), req.force, req.timeout)
                .await?
        }
        StateAction::Restart => {
            let rescue = req.rescue.then_some(req.rescue_image.as_deref());
            s.instances
                .restart(VpsName::new(&scope.tenant, &name), req.force, req.timeout, rescue)
                .await?
        }
    };
    if req.wait {
        let secs = req.wait_timeout.unwrap_or(croft_api::DEFAULT_BOOT_WAIT);
        s.instances
            .wait_booted(VpsName::new(&scope.tenant, &name), secs)
            .await?;
    }
    Ok(Json(vps).into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/rebuild",
    tag = "instances",
    request_body = croft_api::RebuildRequest,
    responses((status = 202, description = "The rebuild, a job", body = croft_api::Job))
)]
pub(super) async fn rebuild(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::RebuildRequest>,
) -> ApiResult<Response> {
    let job = s
        .instances
        .rebuild(VpsName::new(&scope.tenant, &name), req)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// Set root's password on the VPS's disk (given, or generated and
/// answered once).
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/password",
    tag = "instances",
    request_body = croft_api::PasswordSet,
    responses((status = 200, description = "The generated password, if one was", body = croft_api::PasswordSet))
)]
pub(super) async fn set_password(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::PasswordSet>,
) -> ApiResult<Response> {
    let generated = s
        .instances
        .set_password(VpsName::new(&scope.tenant, &name), req.password)
        .await?;
    Ok(Json(croft_api::PasswordSet { password: generated }).into_response())
}

/// The public keys root of the VPS accepts (as recorded), numbered from 1
/// in this order.
#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/ssh-keys",
    tag = "instances",
    responses((status = 200, description = "Its keys", body = Vec<String>))
)]
pub(super) async fn list_ssh_keys(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let keys = s.instances.ssh_keys(VpsName::new(&scope.tenant, &name)).await?;
    Ok(Json(keys).into_response())
}

/// Give root of the VPS one more public key, on its disk at once.
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/ssh-keys",
    tag = "instances",
    request_body = croft_api::SshKeyAdd,
    responses((status = 201, description = "Its keys", body = Vec<String>))
)]
pub(super) async fn add_ssh_key(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::SshKeyAdd>,
) -> ApiResult<Response> {
    let keys = s
        .instances
        .add_ssh_key(VpsName::new(&scope.tenant, &name), &req.key)
        .await?;
    Ok((StatusCode::CREATED, Json(keys)).into_response())
}

/// Take key number `index` (from 1) from root of the VPS.
#[utoipa::path(
    delete,
    path = "/1.0/instances/{name}/ssh-keys/{index}",
    tag = "instances",
    responses((status = 200, description = "Its keys", body = Vec<String>))
)]
pub(super) async fn remove_ssh_key(
    State(s): State<AppState>,
    scope: Scope,
    Path((name, index)): Path<(String, usize)>,
) -> ApiResult<Response> {
    let keys = s
        .instances
        .remove_ssh_key(VpsName::new(&scope.tenant, &name), index)
        .await?;
    Ok(Json(keys).into_response())
}

/// Rename a stopped VPS (its hostname changes at its next start).
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/rename",
    tag = "instances",
    request_body = croft_api::RenameRequest,
    responses((status = 200, description = "The VPS under its new name", body = croft_api::Instance))
)]
pub(super) async fn rename(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::RenameRequest>,
) -> ApiResult<Response> {
    let vps = s
        .instances
        .rename(VpsName::new(&scope.tenant, &name), &req.name)
        .await?;
    Ok(Json(vps).into_response())
}

#[utoipa::path(
    patch,
    path = "/1.0/instances/{name}/config",
    tag = "instances",
    request_body = croft_api::ConfigPatch,
    responses((status = 200, description = "The VPS with its new configuration", body = croft_api::Instance))
)]
pub(super) async fn patch_config(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(patch): ApiJson<ConfigPatch>,
) -> ApiResult<Response> {
    crate::auth::refuse_admin_keys(&caller, patch.set.keys())?;
    Ok(Json(
        s.instances
            .patch_config(VpsName::new(&scope.tenant, &name), patch)
            .await?,
    )
    .into_response())
}

#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/copy",
    tag = "instances",
    request_body = croft_api::CopyRequest,
    responses((status = 201, description = "The new, stopped VPS", body = croft_api::Instance))
)]
pub(super) async fn copy(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<CopyRequest>,
) -> ApiResult<Response> {
    let vps = s
        .instances
        .copy(VpsName::new(&scope.tenant, &name), &req.name, req.snapshot)
        .await?;
    Ok((StatusCode::CREATED, Json(vps)).into_response())
}

/// An image from the VPS's disk (stopped) or snapshot, identity cleared.
#[utoipa::path(
    post,
    path = "/1.0/instances/{name}/publish",
    tag = "instances",
    request_body = croft_api::PublishRequest,
    responses((status = 201, description = "The published image", body = croft_api::Image))
)]
pub(super) async fn publish(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<croft_api::PublishRequest>,
) -> ApiResult<Response> {
    let image = s
        .instances
        .publish(
            VpsName::new(&scope.tenant, &name),
            req.snapshot,
            &req.image,
            req.description,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(image)).into_response())
}

/// Console history returned at most (the supervisor keeps about 2 MiB).
const CONSOLE_LOG_MAX: usize = 1 << 20;

#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/console",
    tag = "instances",
    responses((status = 200, description = "What the console printed lately", body = croft_api::ConsoleLog))
)]
pub(super) async fn console_log(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let log = s
        .instances
        .console_log(VpsName::new(&scope.tenant, &name), CONSOLE_LOG_MAX)
        .await?;
    Ok(Json(croft_api::ConsoleLog { log }).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/storage-pools",
    tag = "host",
    responses((status = 200, description = "The storage pools", body = Vec<croft_api::StoragePool>))
)]
pub(super) async fn list_pools(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(Json(s.instances.pools()?).into_response())
}

#[utoipa::path(
    get,
    path = "/1.0/storage-pools/{name}",
    tag = "host",
    responses((status = 200, description = "The storage pool", body = croft_api::StoragePool))
)]
pub(super) async fn pool_info(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(s.instances.pool_info(&name)?).into_response())
}

/// What the VPS sent and received, per calendar month (UTC), newest first:
/// for billing.
#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/traffic",
    tag = "instances",
    responses((status = 200, description = "Its traffic per month", body = Vec<croft_api::Traffic>))
)]
pub(super) async fn traffic(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(s.instances.traffic(VpsName::new(&scope.tenant, &name)).await?).into_response())
}

/// `?range=` of the usage history.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeQuery {
    /// `hour` (the default), `day`, `week`, `month` or `year`.
    range: Option<String>,
}

/// The VPS's usage over the last hour, day, week, month or year, a point
/// per step (a minute up to a day, half an hour up to a month, six hours
/// for a year), each the average and the largest of its samples: what the
/// panel's graphs draw. Kept by croftd, without Prometheus.
#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/metrics",
    tag = "instances",
    params(RangeQuery),
    responses(
        (status = 200, description = "Its usage history", body = croft_api::UsageHistory),
        (status = 400, description = "An unknown range", body = croft_api::ErrorBody)
    )
)]
pub(super) async fn usage_history(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> ApiResult<Response> {
    let range = query.range.as_deref().unwrap_or("hour");
    Ok(Json(
        s.instances
            .usage_history(VpsName::new(&scope.tenant, &name), range)
            .await?,
    )
    .into_response())
}
