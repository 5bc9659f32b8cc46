//! The web panel under `/ui/`: pages rendered here (askama templates in
//! `ui/templates/`, escaped as HTML), with small scripts (`ui/static/`)
//! for what a page does in place: power buttons, graphs, the console and
//! live updates. Those scripts change things only through the REST API,
//! with the same session cookie, so the panel has no second way to act:
//! every change passes the API's guard, its policy and its audit log.
//!
//! Here: the routes, logging in and out (the session cookie,
//! `http/session.rs`), the extractor that turns a page request's cookie
//! into its [`Caller`] (or sends the browser to the login page), errors as
//! pages, and the headers every panel answer carries (a strict Content
//! Security Policy: scripts only from croftd itself, so a name or a
//! description can never run as script). `pages.rs` renders a tenant's
//! pages, `admin.rs` the provider's; `assets.rs` serves the browser files.

mod admin;
mod assets;
mod pages;

use super::guard::Peer;
use super::session;
use super::AppState;
use crate::auth::Caller;
use crate::service::ServiceError;
use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use std::net::{IpAddr, Ipv4Addr};

/// The panel's routes, to merge into the API's router.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::dashboard))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/instances/{name}", get(pages::instance))
        .route("/ui/instances/{name}/card", get(pages::card))
        .route("/ui/instances/{name}/console", get(pages::console))
        .route("/ui/account", get(pages::account))
        .route("/ui/admin/tenants", get(admin::tenants))
        .route("/ui/admin/users", get(admin::users))
        .route("/ui/admin/plans", get(admin::plans))
        .route("/ui/admin/images", get(admin::images))
        .route("/ui/admin/access", get(admin::access))
        .route("/ui/admin/host", get(admin::host))
        .route("/ui/admin/audit", get(admin::audit))
        .route("/ui/static/{file}", get(assets::serve))
        .layer(axum::extract::DefaultBodyLimit::max(super::BODY_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
}

/// What every panel answer carries: scripts, styles, images and
/// connections only from croftd itself (styles may also be set inline,
/// which xterm.js and uPlot do; no inline script ever runs), no framing,
/// no referrer to other sites, no type sniffing.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not no-referrer: under it a form's POST carries `Origin: null`,
    // which the same-origin rule must refuse, and logging in could not
    // work. same-origin keeps the referrer from every other site.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The address a request came from (loopback for the local socket).
fn peer_ip(peer: Option<&Peer>) -> IpAddr {
    match peer {
        Some(Peer::Remote { addr, .. }) => addr.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// The caller a page request's session cookie proves. Without a valid
/// session, the browser is sent to the login page.
pub(super) struct PanelCaller(pub Caller);

impl FromRequestParts<AppState> for PanelCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        // htmx's requests are XHRs, which follow a 303 themselves and
        // would swap the login page into a card: they are told in
        // `HX-Redirect` instead, which htmx follows as a whole page.
        let from_htmx = parts.headers.contains_key("hx-request");
        let to_login = || match from_htmx {
            true => (StatusCode::NO_CONTENT, [("hx-redirect", "/ui/login")]).into_response(),
            false => (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/login")]).into_response(),
        };
        let Some(secret) = session::secret(&parts.headers) else {
            return Err(to_login());
        };
        match s
            .access
            .authenticate_session(&secret, peer_ip(parts.extensions.get::<Peer>()))
            .await
        {
            Ok(caller) => Ok(PanelCaller(caller)),
            Err(ServiceError::Unauthenticated(_)) => Err(to_login()),
            Err(e) => Err(PanelError(e).into_response()),
        }
    }
}

/// A service error as a page: its status, and what it says.
pub(super) struct PanelError(pub ServiceError);

impl From<ServiceError> for PanelError {
    fn from(e: ServiceError) -> PanelError {
        PanelError(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    message: String,
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let status = super::status_of(self.0.kind());
        let page = ErrorPage {
            status: status.as_u16(),
            message: crate::error_chain(&self.0),
        };
        (status, render(&page)).into_response()
    }
}

/// A template rendered, or a plain 500 if it cannot be.
pub(super) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the page: {e}"),
        )
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    name: String,
}

async fn login_page() -> Response {
    render(&LoginPage {
        error: None,
        name: String::new(),
    })
}

#[derive(serde::Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

/// `POST /ui/login`: a session cookie and the dashboard, or the form again
/// saying why not. From the panel's own login page only (its Origin), so
/// no other site can log a browser in to an account of its choosing.
async fn login(
    State(s): State<AppState>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let again = |status: StatusCode, error: String, name: String| {
        (
            status,
            render(&LoginPage {
                error: Some(error),
                name,
            }),
        )
            .into_response()
    };
    if !session::same_origin(&headers) {
        return again(
            StatusCode::FORBIDDEN,
            "cross-origin login refused: log in from this panel's own page".into(),
            String::new(),
        );
    }
    let from = peer_ip(peer.as_ref().map(|p| &p.0));
    match s.access.login(&form.name, &form.password, from).await {
        Ok(logged_in) => {
            let caller = &logged_in.caller;
            let tenant = caller.tenant.clone().unwrap_or_default();
            audit_login(
                &s,
                &caller.name,
                caller.role.as_str(),
                tenant,
                StatusCode::SEE_OTHER,
                from,
            )
            .await;
            let cookie = session::set(
                &logged_in.secret,
                crate::service::access::users::SESSION_LIFETIME.as_secs(),
            );
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, HeaderValue::from_static("/ui/")),
                    (header::SET_COOKIE, cookie),
                ],
            )
                .into_response()
        }
        Err(e) => {
            let status = super::status_of(e.kind());
            // Who tried, as typed (cut short): the log's readers escape it.
            // Not the refusals of a throttled address, which cost it
            // nothing and would let it fill the log.
            if !matches!(e, ServiceError::TooManyAttempts(_)) {
                let tried: String = form.name.chars().take(64).collect();
                let caller = format!("login as {tried:?}");
                audit_login(&s, &caller, "none", String::new(), status, from).await;
            }
            again(status, crate::error_chain(&e), form.name)
        }
    }
}

/// A login, succeeded or refused, in the audit log.
async fn audit_login(
    s: &AppState,
    caller: &str,
    role: &str,
    tenant: String,
    status: StatusCode,
    from: IpAddr,
) {
    let entry = croft_api::AuditEntry {
        id: 0,
        at: String::new(),
        caller: caller.to_string(),
        role: role.to_string(),
        tenant,
        method: "POST".into(),
        path: "/ui/login".into(),
        action: "login".into(),
        status: status.as_u16(),
        remote: Some(from.to_string()),
    };
    if let Err(e) = s.access.record_audit(&entry).await {
        tracing::error!("cannot write the audit log: {}", crate::error_chain(&e));
    }
}

/// `POST /ui/logout`: the session ends, and the cookie goes. From the
/// panel's own pages only.
async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !session::same_origin(&headers) {
        return PanelError(ServiceError::Forbidden("cross-origin logout refused".into())).into_response();
    }
    if let Some(secret) = session::secret(&headers) {
        if let Err(e) = s.access.logout(&secret).await {
            return PanelError(e).into_response();
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/ui/login")),
            (header::SET_COOKIE, session::clear()),
        ],
    )
        .into_response()
}
