//! `/metrics`: the last sample of what VPSes and the host use, in the
//! Prometheus text format.

use super::guard::Scope;
use super::routes::Routes;
use super::{ApiResult, AppState};
use crate::auth::Action::MetricsRead;
use crate::auth::Caller;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/metrics", MetricsRead, metrics)
}

/// Rendered from the background sampler's last sample, never collected
/// for the scrape: a tenant's caller gets its own VPSes' series, the
/// admin and a metrics caller every VPS's and the host's (the admin's
/// `?tenant=` narrows it).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    responses((status = 200, description = "Prometheus text format (version 0.0.4)", content_type = "text/plain", body = String))
)]
pub(super) async fn metrics(State(s): State<AppState>, scope: Scope, caller: Caller) -> ApiResult<Response> {
    let text = s.metrics.render(scope.listing(&caller));
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response())
}
