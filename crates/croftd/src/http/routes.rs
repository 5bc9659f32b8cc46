//! The route table: every endpoint is registered here with the
//! [`Action`] it performs, and gets the guard (`guard.rs`) that
//! authorizes that action before its handler runs. An endpoint cannot be
//! added without a rule, and the table is what the authorization matrix
//! test walks.

use super::guard::{guard, Guard};
use super::AppState;
use crate::auth::Action;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;

/// One endpoint: a method on a path, and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub method: Method,
    /// As axum routes it: `/1.0/instances/{name}`.
    pub path: &'static str,
    pub action: Action,
}

/// What the counting layer of one route knows.
#[derive(Clone)]
struct Counted {
    services: AppState,
    route: &'static str,
}

/// Count a request on its route, with its status and how long it took
/// (`GET /metrics`: `croft_api_requests_total`).
async fn count(
    axum::extract::State(c): axum::extract::State<Counted>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let start = std::time::Instant::now();
    let response = next.run(req).await;
    c.services.metrics.requests.record(
        method.as_str(),
        c.route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// The router being built, with its table.
pub(super) struct Routes {
    services: AppState,
    router: Router<AppState>,
    table: Vec<Endpoint>,
}

impl Routes {
    pub fn new(services: AppState) -> Routes {
        Routes {
            services,
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Route `method` on `path` to `handler`, guarded for `action`.
    pub fn add<H, T>(mut self, method: Method, path: &'static str, action: Action, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes");
        let guard_state = Guard {
            services: self.services.clone(),
            action,
        };
        // Counted outside the guard, so refusals count too.
        let counted = Counted {
            services: self.services.clone(),
            route: path,
        };
        let endpoint = on(filter, handler)
            .route_layer(axum::middleware::from_fn_with_state(guard_state, guard))
            .route_layer(axum::middleware::from_fn_with_state(counted, count));
        self.router = self.router.route(path, endpoint);
        self.table.push(Endpoint { method, path, action });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        action: Action,
        h: H,
    ) -> Routes {
        self.add(Method::GET, path, action, h)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        action: Action,
        h: H,
    ) -> Routes {
        self.add(Method::POST, path, action, h)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        action: Action,
        h: H,
    ) -> Routes {
        self.add(Method::PATCH, path, action, h)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        action: Action,
        h: H,
    ) -> Routes {
        self.add(Method::PUT, path, action, h)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        action: Action,
        h: H,
    ) -> Routes {
        self.add(Method::DELETE, path, action, h)
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Endpoint>) {
        (self.router, self.table)
    }
}
