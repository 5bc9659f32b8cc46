//! The guard every route passes first: who the caller is (the local
//! socket's root, or a remote caller's trusted client certificate, bearer
//! token or panel session), which tenant the request acts in, and whether
//! [`authorize`] lets the caller do the route's action there; and, for a
//! change, its entry in the audit log (who, which tenant, what, the
//! answer's status). Handlers get the outcome as the [`Caller`], [`Scope`]
//! and [`Peer`] extractors.

use super::{ApiError, ApiResult, AppState};
use crate::auth::{authorize, Action, Caller};
use crate::store::DEFAULT_TENANT;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// How a request reached croftd: put on every request by the listener
/// that accepted it. A request without one is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// The local socket (mode 0600): root on this host.
    Local,
    /// The network, from `addr`, with the fingerprint of the client
    /// certificate it showed, if any.
    Remote {
        addr: SocketAddr,
        certificate: Option<String>,
    },
}

/// The tenant a request acts in: a tenant role's own; the admin's
/// `?tenant=`, or the default tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub tenant: String,
    /// Whether the request named it (`?tenant=`), rather than taking the
    /// caller's or the default one.
    pub explicit: bool,
}

impl Scope {
    /// The tenant to list things of: the named or own one, or every
    /// tenant for the admin that named none.
    pub fn listing(&self, caller: &Caller) -> Option<&str> {
        (self.explicit || caller.tenant.is_some()).then_some(self.tenant.as_str())
    }
}

/// What the guard of one route knows: the services, and the route's action.
#[derive(Clone)]
pub(super) struct Guard {
    pub services: AppState,
    pub action: Action,
}

/// The guard itself (an axum middleware on each route).
pub(super) async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> ApiResult<Response> {
    let peer = req
        .extensions()
        .get::<Peer>()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "a request from no listener"))?;
    if g.action == Action::Enroll {
        return Ok(enroll(&g, &peer, req, next).await);
    }
    // A browser sends Origin; croft's own clients never do. A request of
    // another site's page is refused whatever credential the browser
    // brought along (a session cookie, or a client certificate it holds).
    if req.headers().contains_key(header::ORIGIN) && !super::session::same_origin(req.headers()) {
        return Err(cross_origin());
    }
    let caller = match &peer {
        Peer::Local => Caller::host_root(),
        Peer::Remote { addr, certificate } => {
            let cookie = super::session::secret(req.headers());
            match (req.headers().contains_key(header::AUTHORIZATION), certificate, cookie) {
                (false, Some(fingerprint), _) => g
                    .services
                    .access
                    .authenticate_certificate(fingerprint)
                    .await?
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            format!(
                                "client certificate {fingerprint} is not trusted: enroll it with a trust token (croft remote add NAME TOKEN)"
                            ),
                        )
                    })?,
                (false, None, Some(secret)) => {
                    let caller = g.services.access.authenticate_session(&secret, addr.ip()).await?;
                    admit_session(&g, &caller, &mut req)?;
                    caller
                }
                _ => {
                    let token = bearer(req.headers())?;
                    g.services.access.authenticate(token, addr.ip()).await?
                }
            }
        }
    };
    let asked = take_tenant(req.uri_mut())?;
    let scope = match (&asked, &caller.tenant) {
        (Some(asked), _) => Scope {
            tenant: asked.clone(),
            explicit: true,
        },
        (None, Some(own)) => Scope {
            tenant: own.clone(),
            explicit: false,
        },
        (None, None) => Scope {
            tenant: DEFAULT_TENANT.into(),
            explicit: false,
        },
    };
    let mutating =
        g.action.changes() || !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let audit = mutating.then(|| croft_api::AuditEntry {
        id: 0,
        at: String::new(),
        caller: caller.name.clone(),
        role: caller.role.as_str().into(),
        tenant: scope.tenant.clone(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        action: g.action.name(),
        status: 0,
        remote: remote_of(&peer),
    });
    let response = match authorize(&caller, g.action, Some(&scope.tenant)) {
        Ok(()) => serve(&g, caller, scope, req, next).await,
        Err(refused) => ApiError::from(refused).into_response(),
    };
    if let Some(mut entry) = audit {
        entry.status = response.status().as_u16();
        if let Err(e) = g.services.access.record_audit(&entry).await {
            tracing::error!("cannot write the audit log: {}", crate::error_chain(&e));
        }
    }
    Ok(response)
}

/// The rules a request proven by a panel session passes besides the
/// policy: one that changes something (by its method or its action) or
/// opens a WebSocket comes from the panel's own pages (its `Origin`; for a
/// GET, which a link sends without one, the browser's `Sec-Fetch-Site`:
/// `session::from_own_pages`), not merely from no other, and a WebSocket also brings a
/// single-use ticket its session asked for, for this very path
/// (`POST /1.0/tickets`), taken out of the query here.
fn admit_session(g: &Guard, caller: &Caller, req: &mut Request) -> ApiResult<()> {
    use super::session;
    let changes = g.action.changes() || session::needs_same_origin(req.method(), req.headers());
    if changes && !session::from_own_pages(req.method(), req.headers()) {
        return Err(cross_origin());
    }
    if session::is_upgrade(req.headers()) {
        let crate::auth::Credential::Session { session: id, .. } = &caller.credential else {
            return Ok(());
        };
        let ticket = take_param(req.uri_mut(), "ticket")?;
        let path = req.uri().path().to_string();
        let admitted = ticket.is_some_and(|t| g.services.access.redeem_ticket(&t, id, &path));
        if !admitted {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a WebSocket of a panel session needs a ticket for it, used once (POST /1.0/tickets)",
            ));
        }
    }
    Ok(())
}

fn cross_origin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross-origin request refused: the panel's session works only from the panel's own pages",
    )
}

/// Where a request came from, for the audit log.
fn remote_of(peer: &Peer) -> Option<String> {
    match peer {
        Peer::Local => None,
        Peer::Remote { addr, .. } => Some(addr.to_string()),
    }
}

/// An enrollment: the one request a caller makes before it is trusted
/// (the trust token it carries is its proof), audited all the same.
async fn enroll(g: &Guard, peer: &Peer, mut req: Request, next: Next) -> Response {
    let entry = croft_api::AuditEntry {
        id: 0,
        at: String::new(),
        caller: match peer {
            Peer::Remote {
                certificate: Some(fingerprint),
                ..
            } => format!("certificate {fingerprint}"),
            _ => "untrusted".into(),
        },
        role: "none".into(),
        tenant: String::new(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        action: g.action.name(),
        status: 0,
        remote: remote_of(peer),
    };
    req.extensions_mut().insert(peer.clone());
    let response = next.run(req).await;
    let entry = croft_api::AuditEntry {
        status: response.status().as_u16(),
        ..entry
    };
    if let Err(e) = g.services.access.record_audit(&entry).await {
        tracing::error!("cannot write the audit log: {}", crate::error_chain(&e));
    }
    response
}

/// The rest of an authorized request: the tenant it names checked, then
/// its handler.
async fn serve(g: &Guard, caller: Caller, scope: Scope, mut req: Request, next: Next) -> Response {
    if scope.explicit && g.action.tenant_scoped() {
        match g.services.tenants.exists(&scope.tenant).await {
            Ok(true) => {}
            Ok(false) => {
                return ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("tenant {} not found", scope.tenant),
                )
                .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    req.extensions_mut().insert(caller);
    req.extensions_mut().insert(scope);
    next.run(req).await
}

/// The bearer token of a remote request: 401 without one.
fn bearer(headers: &axum::http::HeaderMap) -> ApiResult<&str> {
    let missing = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication required: a trusted client certificate, or an API token as Authorization: Bearer <token>",
        )
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(missing()),
    }
}

/// Take `tenant=` out of the query (it is the guard's, not the
/// handler's, whose query types refuse fields they do not know): the
/// tenant named, checked, if any.
fn take_tenant(uri: &mut Uri) -> ApiResult<Option<String>> {
    let tenant = take_param(uri, "tenant")?;
    if let Some(value) = &tenant {
        croft_api::validate_name(value).map_err(|e| ApiError::bad_request(format!("tenant {e}")))?;
    }
    Ok(tenant)
}

/// Take `name=` out of the query: its value, if given (once).
fn take_param(uri: &mut Uri, name: &str) -> ApiResult<Option<String>> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let prefix = format!("{name}=");
    let mut found = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix(&prefix) {
            Some(value) => {
                if found.is_some() {
                    return Err(ApiError::bad_request(format!("give {name}= once")));
                }
                found = Some(value.to_string());
            }
            None => rest.push(pair),
        }
    }
    if found.is_some() {
        let path = uri.path();
        let rebuilt = if rest.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", rest.join("&"))
        };
        *uri = rebuilt
            .parse()
            .map_err(|_| ApiError::bad_request("invalid request target"))?;
    }
    Ok(found)
}

/// A value the guard put on the request, for a handler.
fn from_guard<T: Clone + Send + Sync + 'static>(parts: &Parts) -> ApiResult<T> {
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "a route without its guard"))
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        from_guard(parts)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        from_guard(parts)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        from_guard(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_leaves_the_query() {
        let mut uri: Uri = "/1.0/instances/web?tenant=acme&force=true".parse().unwrap();
        assert_eq!(take_tenant(&mut uri).unwrap().as_deref(), Some("acme"));
        assert_eq!(uri, "/1.0/instances/web?force=true");
        let mut uri: Uri = "/1.0/instances?tenant=acme".parse().unwrap();
        assert_eq!(take_tenant(&mut uri).unwrap().as_deref(), Some("acme"));
        assert_eq!(uri.query(), None);
        let mut uri: Uri = "/1.0/instances?force=1".parse().unwrap();
        assert_eq!(take_tenant(&mut uri).unwrap(), None);
        for bad in [
            "/x?tenant=",
            "/x?tenant=A%20B",
            "/x?tenant=a&tenant=b",
            "/x?tenant=../etc",
        ] {
            let mut uri: Uri = bad.parse().unwrap();
            assert!(take_tenant(&mut uri).is_err(), "{bad}");
        }
    }
}
