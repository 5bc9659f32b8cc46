//! Tier 2: the web panel's sessions, on the simulator: logging in and
//! out, what a session may do through the API (its role, its tenant, its
//! origin), WebSocket tickets, passwords, and the pages' refusals. The
//! browser itself is driven by `ui/tests/` (Chromium).

mod sim;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use croft_api::{Instance, Job};
use sim::Sim;

const ORIGIN: &str = "https://panel.example:8443";
const HOST: &str = "panel.example:8443";
const PASSWORD: &str = "correct horse battery";

/// A request to the network listener: from the panel's own origin when
/// `origin` says so, with `cookie` (a session secret) if given.
fn request(
    method: &str,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    body: Option<&str>,
) -> Request<Body> {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST);
    if let Some(secret) = cookie {
        req = req.header(
            header::COOKIE,
            format!("theme=dark; __Host-croft_session={secret}"),
        );
    }
    if let Some(origin) = origin {
        req = req.header(header::ORIGIN, origin);
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
        .unwrap()
}

async fn text(response: axum::response::Response) -> (StatusCode, String) {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Log `name` in through the login form: the session secret from its
/// cookie.
async fn login(sim: &Sim, name: &str, password: &str) -> String {
    let (status, set_cookie, body) = try_login(sim, name, password, Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let set_cookie = set_cookie.expect("a session cookie");
    for part in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{part} in {set_cookie}");
    }
    set_cookie
        .strip_prefix("__Host-croft_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("the session cookie")
        .to_string()
}

async fn try_login(
    sim: &Sim,
    name: &str,
    password: &str,
    origin: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let form = format!("name={}&password={}", urlencode(name), urlencode(password));
    let mut req = Request::builder()
        .method("POST")
        .uri("/ui/login")
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        req = req.header(header::ORIGIN, origin);
    }
    let response = sim.send_remote(req.body(Body::from(form)).unwrap()).await;
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string());
    let (status, body) = text(response).await;
    (status, cookie, body)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn tenant_with_vps(sim: &Sim, tenant: &str, vps: &str) {
    let _: croft_api::Tenant = sim
        .ok("POST", "/1.0/tenants", Some(&format!(r#"{{"name":"{tenant}"}}"#)))
        .await;
    let body = format!(r#"{{"name":"{vps}","image":"busybox","no_start":true}}"#);
    let job: Job = sim
        .ok("POST", &format!("/1.0/instances?tenant={tenant}"), Some(&body))
        .await;
    assert_eq!(sim.wait_job(&job).await.status, croft_api::JobStatus::Success);
}

async fn user(sim: &Sim, tenant: &str, name: &str, role: &str) {
    let body = format!(r#"{{"name":"{name}","role":"{role}","password":"{PASSWORD}"}}"#);
    let _: croft_api::User = sim
        .ok("POST", &format!("/1.0/users?tenant={tenant}"), Some(&body))
        .await;
}

async fn status_of(sim: &Sim, tenant: &str, vps: &str) -> croft_api::Status {
    let vps: Instance = sim
        .ok("GET", &format!("/1.0/instances/{vps}?tenant={tenant}"), None)
        .await;
    vps.status
}

/// A session acts through the API as its user's role in its tenant, from
/// the panel's own origin only; the pages show its tenant's VPSes and
/// another tenant's are "not found"; after logout nothing works.
#[tokio::test]
async fn a_session_acts_as_its_user_from_the_panels_origin_only() {
    let sim = Sim::new().await;
    tenant_with_vps(&sim, "acme", "web1").await;
    tenant_with_vps(&sim, "beta", "db1").await;
    user(&sim, "acme", "alice", "owner").await;
    user(&sim, "acme", "vic", "viewer").await;
    let alice = login(&sim, "alice", PASSWORD).await;

    // The API with the cookie: acme's VPSes only.
    let (status, body) = text(
        sim.send_remote(request("GET", "/1.0/instances", Some(&alice), None, None))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"web1\"") && !body.contains("db1"), "{body}");

    // A change from another origin, or with no origin, is refused and
    // changes nothing; from the panel's own it is done.
    let start = r#"{"action":"start"}"#;
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let req = request(
            "POST",
            "/1.0/instances/web1/state",
            Some(&alice),
            origin,
            Some(start),
        );
        let (status, body) = text(sim.send_remote(req).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin:?}: {body}");
        assert!(body.contains("cross-origin"), "{body}");
        assert_eq!(status_of(&sim, "acme", "web1").await, croft_api::Status::Stopped);
    }
    let req = request(
        "POST",
        "/1.0/instances/web1/state",
        Some(&alice),
        Some(ORIGIN),
        Some(start),
    );
    let (status, body) = text(sim.send_remote(req).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(status_of(&sim, "acme", "web1").await, croft_api::Status::Running);

    // A GET of an action that changes things (a link's download sends no
    // Origin) passes when the browser marks it a navigation from the same
    // origin, and only then; a POST so marked still needs the Origin.
    let marked = |method: &str, path: &str, site: Option<&str>, body: Option<&str>| {
        let mut req = request(method, path, Some(&alice), None, body);
        if let Some(site) = site {
            req.headers_mut().insert("sec-fetch-site", site.parse().unwrap());
            req.headers_mut()
                .insert("sec-fetch-mode", "navigate".parse().unwrap());
        }
        req
    };
    for site in [None, Some("cross-site"), Some("same-site")] {
        let (status, body) = text(sim.send_remote(marked("GET", "/1.0/tokens", site, None)).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{site:?}: {body}");
    }
    let mut fetched = marked("GET", "/1.0/tokens", Some("same-origin"), None);
    fetched
        .headers_mut()
        .insert("sec-fetch-mode", "cors".parse().unwrap());
    assert_eq!(
        sim.send_remote(fetched).await.status(),
        StatusCode::FORBIDDEN,
        "a script's fetch is no navigation"
    );
    let (status, body) = text(
        sim.send_remote(marked("GET", "/1.0/tokens", Some("same-origin"), None))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stop = r#"{"action":"stop"}"#;
    let req = marked(
        "POST",
        "/1.0/instances/web1/state",
        Some("same-origin"),
        Some(stop),
    );
    let (status, body) = text(sim.send_remote(req).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(status_of(&sim, "acme", "web1").await, croft_api::Status::Running);

    // Another site's page gets nothing with any credential a browser may
    // carry: a token too (a client certificate goes the same way).
    let token: croft_api::TokenCreated = sim
        .ok(
            "POST",
            "/1.0/tokens?tenant=acme",
            Some(r#"{"scope":"read-write"}"#),
        )
        .await;
    let mut req = request("GET", "/1.0/instances", None, Some("https://evil.example"), None);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {}", token.token).parse().unwrap(),
    );
    let (status, body) = text(sim.send_remote(req).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let mut req = request("GET", "/1.0/instances", None, None, None);
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {}", token.token).parse().unwrap(),
    );
    assert_eq!(
        sim.send_remote(req).await.status(),
        StatusCode::OK,
        "without an Origin, as croft's clients"
    );

    // A viewer's power button is refused by the policy, and nothing
    // changes.
    let vic = login(&sim, "vic", PASSWORD).await;
    let stop = r#"{"action":"stop","force":true}"#;
    let req = request(
        "POST",
        "/1.0/instances/web1/state",
        Some(&vic),
        Some(ORIGIN),
        Some(stop),
    );
    let (status, body) = text(sim.send_remote(req).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(status_of(&sim, "acme", "web1").await, croft_api::Status::Running);

    // The pages: the dashboard shows acme's VPS and not beta's; beta's VPS
    // by URL is not found, by name or with beta named.
    let (status, page) = text(
        sim.send_remote(request("GET", "/ui/", Some(&alice), None, None))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("web1") && !page.contains("db1"), "{page}");
    for path in [
        "/ui/instances/db1",
        "/ui/instances/db1?tenant=beta",
        "/ui/instances/nope?tenant=beta",
        "/ui/instances/nope?tenant=nosuch",
        "/ui/instances/web1/card?tenant=beta",
        "/ui/instances/db1/console",
        "/ui/instances/db1/console?tenant=beta",
    ] {
        let response = sim
            .send_remote(request("GET", path, Some(&alice), None, None))
            .await;
        let csp = response.headers().get(header::CONTENT_SECURITY_POLICY).cloned();
        let (status, page) = text(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {page}");
        assert!(csp.is_some_and(|v| v.to_str().unwrap().contains("script-src 'self'")));
    }
    let (status, page) = text(
        sim.send_remote(request("GET", "/ui/instances/web1", Some(&alice), None, None))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-api=\"/1.0/instances/web1/metrics\""),
        "{page}"
    );
    // Its activity names alice, who started it, and from where; a viewer
    // is not shown it (the API's audit log is the admin's).
    assert!(
        page.contains("data-testid=\"activity\"") && page.contains("user alice"),
        "{page}"
    );
    let (status, page) = text(
        sim.send_remote(request("GET", "/ui/instances/web1", Some(&vic), None, None))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("data-testid=\"no-activity\"") && !page.contains("user alice"),
        "{page}"
    );
    // The provider's pages: refused to a tenant's owner and viewer alike.
    for who in [&alice, &vic] {
        for page in ["tenants", "users", "plans", "images", "access", "host", "audit"] {
            let path = format!("/ui/admin/{page}");
            let (status, body) = text(
                sim.send_remote(request("GET", &path, Some(who), None, None))
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        }
    }

    // Logged out: the session is gone for pages and API alike.
    let (status, _) = text(
        sim.send_remote(request(
            "POST",
            "/ui/logout",
            Some(&alice),
            Some("https://evil.example"),
            None,
        ))
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a cross-origin logout is refused");
    let response = sim
        .send_remote(request("POST", "/ui/logout", Some(&alice), Some(ORIGIN), None))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let response = sim
        .send_remote(request("GET", "/ui/", Some(&alice), None, None))
        .await;
    assert_eq!(
        (
            response.status(),
            response.headers()[header::LOCATION].to_str().unwrap()
        ),
        (StatusCode::SEE_OTHER, "/ui/login")
    );
    let (status, _) = text(
        sim.send_remote(request("GET", "/1.0/instances", Some(&alice), None, None))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A wrong password and an unknown name get the same answer (no
/// enumeration); a name is shown back escaped; a login from another
/// origin is refused; an address failing too often is refused for a
/// while, even with the right password.
#[tokio::test]
async fn bad_logins_are_refused_alike_and_then_throttled() {
    let sim = Sim::new().await;
    tenant_with_vps(&sim, "acme", "web1").await;
    user(&sim, "acme", "alice", "owner").await;
    let (wrong, cookie, wrong_page) = try_login(&sim, "alice", "not the password", Some(ORIGIN)).await;
    let (unknown, _, unknown_page) = try_login(&sim, "mallory", "not the password", Some(ORIGIN)).await;
    assert_eq!(
        (wrong, unknown),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert!(cookie.is_none());
    let message = "wrong user name or password";
    assert!(
        wrong_page.contains(message) && unknown_page.contains(message),
        "{wrong_page}"
    );
    let (_, _, page) = try_login(&sim, "<img src=x onerror=alert(1)>", "x", Some(ORIGIN)).await;
    assert!(!page.contains("<img"), "{page}");
    assert!(page.contains("&#60;img") || page.contains("&lt;img"), "{page}");
    let (status, cookie, _) = try_login(&sim, "alice", PASSWORD, Some("https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(cookie.is_none());
    // Ten failures from one address in a minute (three above): refused,
    // the right password too.
    for _ in 0..7 {
        try_login(&sim, "alice", "still not it", Some(ORIGIN)).await;
    }
    let (status, cookie, page) = try_login(&sim, "alice", PASSWORD, Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
    assert!(cookie.is_none());
}

/// A WebSocket of a session needs a ticket its session asked for, for
/// that path, used once, from the panel's origin.
#[tokio::test]
async fn a_sessions_websocket_needs_a_single_use_ticket_from_its_origin() {
    let sim = Sim::new().await;
    tenant_with_vps(&sim, "acme", "web1").await;
    user(&sim, "acme", "alice", "owner").await;
    user(&sim, "acme", "bob", "owner").await;
    let alice = login(&sim, "alice", PASSWORD).await;
    let bob = login(&sim, "bob", PASSWORD).await;
    let ticket = |session: String, path: &'static str| {
        let sim = &sim;
        async move {
            let body = format!(r#"{{"path":"{path}"}}"#);
            let req = request("POST", "/1.0/tickets", Some(&session), Some(ORIGIN), Some(&body));
            let (status, body) = text(sim.send_remote(req).await).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            serde_json::from_str::<croft_api::Ticket>(&body).unwrap().ticket
        }
    };
    let upgrade = |session: String, path: String, origin: &'static str| {
        let sim = &sim;
        async move {
            let mut req = request("GET", &path, Some(&session), Some(origin), None);
            for (k, v) in [
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ] {
                req.headers_mut().insert(k, v.parse().unwrap());
            }
            text(sim.send_remote(req).await).await
        }
    };
    // Past the guard (the test's request cannot really upgrade, so the
    // handler answers it otherwise: anything but the guard's 403).
    let t = ticket(alice.clone(), "/1.0/events").await;
    let (status, body) = upgrade(alice.clone(), format!("/1.0/events?ticket={t}"), ORIGIN).await;
    assert_ne!(status, StatusCode::FORBIDDEN, "{body}");
    // Used once.
    let (status, body) = upgrade(alice.clone(), format!("/1.0/events?ticket={t}"), ORIGIN).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("ticket"), "{body}");
    // Not without one, not another session's, not for another path, not
    // from another origin.
    let (status, _) = upgrade(alice.clone(), "/1.0/events".into(), ORIGIN).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let t = ticket(alice.clone(), "/1.0/events").await;
    let (status, _) = upgrade(bob.clone(), format!("/1.0/events?ticket={t}"), ORIGIN).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let t = ticket(alice.clone(), "/1.0/instances/web1/console/attach").await;
    let (status, _) = upgrade(alice.clone(), format!("/1.0/events?ticket={t}"), ORIGIN).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let t = ticket(alice.clone(), "/1.0/events").await;
    let (status, body) = upgrade(
        alice.clone(),
        format!("/1.0/events?ticket={t}"),
        "https://evil.example",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("cross-origin"), "{body}");
    // A token needs no ticket, and gets none.
    let (status, body) = sim
        .send("POST", "/1.0/tickets", Some(r#"{"path":"/1.0/events"}"#))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// A user changes its own password with the current one; its other
/// sessions end, this one stays; an idle session ends.
#[tokio::test]
async fn a_new_password_ends_the_other_sessions() {
    let sim = Sim::new().await;
    tenant_with_vps(&sim, "acme", "web1").await;
    user(&sim, "acme", "alice", "viewer").await;
    let here = login(&sim, "alice", PASSWORD).await;
    let elsewhere = login(&sim, "alice", PASSWORD).await;
    let change = |body: &'static str| {
        let (sim, here) = (&sim, here.clone());
        async move {
            let req = request("PUT", "/1.0/auth/password", Some(&here), Some(ORIGIN), Some(body));
            text(sim.send_remote(req).await).await
        }
    };
    let (status, body) = change(r#"{"password":"a new long password"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = change(r#"{"password":"a new long password","current":"wrong one!"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = change(r#"{"password":"short","current":"correct horse battery"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) =
        change(r#"{"password":"a new long password","current":"correct horse battery"}"#).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let api = |secret: String| {
        let sim = &sim;
        async move {
            text(
                sim.send_remote(request("GET", "/1.0/instances", Some(&secret), None, None))
                    .await,
            )
            .await
            .0
        }
    };
    assert_eq!(api(here.clone()).await, StatusCode::OK);
    assert_eq!(api(elsewhere).await, StatusCode::UNAUTHORIZED);
    let (status, _, _) = try_login(&sim, "alice", PASSWORD, Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    login(&sim, "alice", "a new long password").await;
    // Two idle hours later the session ends.
    let hash = croftd::auth::token::hash(&here);
    sim.store.touch_session(&hash, 0).await.unwrap();
    assert_eq!(api(here).await, StatusCode::UNAUTHORIZED);
    assert!(
        sim.store.session(&hash).await.unwrap().is_none(),
        "and is forgotten"
    );
}

/// A tenant's owner manages its own tenant's users only: another
/// tenant's user is "not found" to it (delete, new password), and it may
/// not make an admin; nothing changes for the other tenant's user.
#[tokio::test]
async fn an_owner_cannot_reach_another_tenants_users() {
    let sim = Sim::new().await;
    tenant_with_vps(&sim, "acme", "web1").await;
    tenant_with_vps(&sim, "beta", "db1").await;
    user(&sim, "acme", "alice", "owner").await;
    user(&sim, "beta", "bob", "owner").await;
    let bob = login(&sim, "bob", PASSWORD).await;
    let as_bob = |method: &'static str, path: &'static str, body: Option<&'static str>| {
        let (sim, bob) = (&sim, bob.clone());
        async move {
            text(
                sim.send_remote(request(method, path, Some(&bob), Some(ORIGIN), body))
                    .await,
            )
            .await
        }
    };
    let (status, body) = as_bob("DELETE", "/1.0/users/alice", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = as_bob(
        "PUT",
        "/1.0/users/alice/password",
        Some(r#"{"password":"taken over by bob"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = as_bob("GET", "/1.0/users?tenant=acme", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = as_bob("GET", "/1.0/users", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("bob") && !body.contains("alice"), "{body}");
    let (status, body) = as_bob(
        "POST",
        "/1.0/users",
        Some(r#"{"name":"boss","role":"admin","password":"a long enough password"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Alice is as she was: there, and her password unchanged.
    login(&sim, "alice", PASSWORD).await;
    let users: Vec<croft_api::User> = sim.ok("GET", "/1.0/users", None).await;
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
}
