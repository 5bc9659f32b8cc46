//! Tier 2: tenants, API tokens and authorization, on the simulator. Remote
//! callers are driven through the API as the network listener serves it
//! (their bearer token in the header, their address on the request), the
//! admin through the local socket's API.

mod sim;

use axum::http::StatusCode;
use croft_api::{Instance, Job, Token, TokenCreated, WhoAmI};
use croftd::auth::{Action, Role};
use sim::Sim;

/// Make tenant `name`.
async fn tenant(sim: &Sim, name: &str) {
    let _: croft_api::Tenant = sim
        .ok("POST", "/1.0/tenants", Some(&format!(r#"{{"name":"{name}"}}"#)))
        .await;
}

/// Launch busybox VPS `name` in `tenant` as the admin.
async fn launch_in(sim: &Sim, tenant: &str, name: &str) -> Instance {
    let body = format!(r#"{{"name":"{name}","image":"busybox","no_start":true}}"#);
    let job: Job = sim
        .ok("POST", &format!("/1.0/instances?tenant={tenant}"), Some(&body))
        .await;
    let job = sim.wait_job(&job).await;
    assert_eq!(job.status, croft_api::JobStatus::Success, "{job:?}");
    sim.ok("GET", &format!("/1.0/instances/{name}?tenant={tenant}"), None)
        .await
}

/// Start VPS `name` of `tenant` as the admin.
async fn start_in(sim: &Sim, tenant: &str, name: &str) {
    let path = format!("/1.0/instances/{name}/state?tenant={tenant}");
    let _: Instance = sim.ok("POST", &path, Some(r#"{"action":"start"}"#)).await;
}

/// A token made by the admin: `body` as `POST /1.0/tokens` takes it.
async fn token(sim: &Sim, tenant: Option<&str>, body: &str) -> TokenCreated {
    let path = match tenant {
        Some(t) => format!("/1.0/tokens?tenant={t}"),
        None => "/1.0/tokens".into(),
    };
    sim.ok("POST", &path, Some(body)).await
}

/// Send as the holder of `token`; the status and the error message, if any.
async fn as_token(
    sim: &Sim,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (StatusCode, String) {
    let (status, bytes) = sim.send_as(Some(token), method, path, body).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let message = serde_json::from_slice::<croft_api::ErrorBody>(&bytes)
        .map(|e| e.error)
        .unwrap_or(text);
    (status, message)
}

#[tokio::test]
async fn tenants_keep_their_vpses_apart() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    tenant(&sim, "beta").await;
    let ours = launch_in(&sim, "default", "web").await;
    let acme = launch_in(&sim, "acme", "web").await;
    let beta = launch_in(&sim, "beta", "web").await;
    assert_eq!((ours.tenant.as_str(), acme.tenant.as_str()), ("default", "acme"));
    assert_ne!(acme.uuid, beta.uuid);
    // One name once per tenant.
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances?tenant=acme",
            Some(r#"{"name":"web","image":"busybox"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("web already exists"), "{msg}");
    // Each list holds its tenant's VPSes only; acme's web stops alone.
    let list: Vec<Instance> = sim.ok("GET", "/1.0/instances?tenant=acme", None).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].uuid, acme.uuid);
    let details: croft_api::HostDetails = sim.ok("GET", "/1.0/instances/web/host?tenant=beta", None).await;
    assert_eq!(
        details.key, beta.uuid,
        "another tenant's VPS is keyed by its uuid on the host"
    );
    assert_eq!(sim.details("web").await.key, "web");
    sim.ok::<Instance>(
        "POST",
        "/1.0/instances/web/state?tenant=acme",
        Some(r#"{"action":"start"}"#),
    )
    .await;
    assert_eq!(sim.info("web").await.status, croft_api::Status::Stopped);
    let acme_web: Instance = sim.ok("GET", "/1.0/instances/web?tenant=acme", None).await;
    assert_eq!(acme_web.status, croft_api::Status::Running);
    // A tenant with VPSes stays; the default one always does.
    let msg = sim
        .refused("DELETE", "/1.0/tenants/beta", None, StatusCode::CONFLICT)
        .await;
    assert!(msg.contains("1 VPS"), "{msg}");
    sim.refused("DELETE", "/1.0/tenants/default", None, StatusCode::BAD_REQUEST)
        .await;
    sim.refused("GET", "/1.0/instances?tenant=nobody", None, StatusCode::NOT_FOUND)
        .await;
    sim.refused(
        "GET",
        "/1.0/instances?tenant=Bad%20Name",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let (status, _) = sim.send("DELETE", "/1.0/instances/web?tenant=beta", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = sim.send("DELETE", "/1.0/tenants/beta", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // The admin lists every tenant's at once; a tenant's user only its own.
    let all: Vec<Instance> = sim.ok("GET", "/1.0/instances?all-tenants=true", None).await;
    assert_eq!(all.len(), 2);
    let viewer = token(&sim, Some("acme"), r#"{"scope":"read"}"#).await;
    let (status, body) = sim
        .send_as(
            Some(&viewer.token),
            "GET",
            "/1.0/instances?all-tenants=true",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let theirs: Vec<Instance> = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        theirs.iter().map(|i| i.tenant.as_str()).collect::<Vec<_>>(),
        ["acme"]
    );
    let tenants: Vec<croft_api::Tenant> = sim.ok("GET", "/1.0/tenants", None).await;
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["acme", "default"]);
    assert_eq!(tenants[0].vpses, 1);
}

#[tokio::test]
async fn tokens_prove_a_role_in_one_tenant_and_revocation_is_immediate() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    tenant(&sim, "beta").await;
    launch_in(&sim, "acme", "web").await;
    launch_in(&sim, "beta", "db").await;
    let owner = token(
        &sim,
        Some("acme"),
        r#"{"description":"billing","scope":"read-write"}"#,
    )
    .await;
    let viewer = token(&sim, Some("acme"), r#"{"scope":"read"}"#).await;
    assert_eq!(
        (owner.info.role.as_str(), viewer.info.role.as_str()),
        ("owner", "viewer")
    );
    assert!(owner.info.expires_at.is_some(), "tokens expire by default");

    // The owner sees and changes acme's VPSes and nothing of beta's: a
    // VPS of beta is "not found", by name or by naming beta.
    let (status, _) = as_token(&sim, &owner.token, "GET", "/1.0/instances/web", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, msg) = as_token(&sim, &owner.token, "GET", "/1.0/instances/db", None).await;
    assert_eq!(
        (status, msg.as_str()),
        (StatusCode::NOT_FOUND, "VPS db not found")
    );
    let (status, msg) = as_token(&sim, &owner.token, "GET", "/1.0/instances/db?tenant=beta", None).await;
    assert_eq!(
        (status, msg.as_str()),
        (StatusCode::NOT_FOUND, "tenant beta not found")
    );
    let (status, _) = as_token(
        &sim,
        &owner.token,
        "POST",
        "/1.0/instances/web/state",
        Some(r#"{"action":"start"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The viewer reads, and is told plainly why it may not change.
    let (status, msg) = as_token(
        &sim,
        &viewer.token,
        "POST",
        "/1.0/instances/web/state",
        Some(r#"{"action":"stop"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(msg.contains("viewer role") && msg.contains("owner"), "{msg}");
    let web: Instance = sim.ok("GET", "/1.0/instances/web?tenant=acme", None).await;
    assert_eq!(
        web.status,
        croft_api::Status::Running,
        "the refused stop changed nothing"
    );
    // Tenants cannot touch the host's things.
    let (status, _) = as_token(&sim, &owner.token, "GET", "/1.0/storage-pools", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = as_token(&sim, &owner.token, "GET", "/1.0/tenants", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A token list never holds a secret; an owner lists its tenant's.
    let (status, listed) = sim.send_as(Some(&owner.token), "GET", "/1.0/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<Token> = serde_json::from_slice(&listed).unwrap();
    assert_eq!(listed.len(), 2);
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(&owner.token[20..]), "no secret in the list");
    let used = listed.iter().find(|t| t.id == owner.info.id).unwrap();
    assert_eq!(used.last_used_from.as_deref(), Some("192.0.2.10"));

    // Revoked: refused on the very next request.
    let (status, _) = as_token(
        &sim,
        &owner.token,
        "DELETE",
        &format!("/1.0/tokens/{}", viewer.info.id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, msg) = as_token(&sim, &viewer.token, "GET", "/1.0/instances", None).await;
    assert_eq!(
        (status, msg.as_str()),
        (StatusCode::UNAUTHORIZED, "unknown or revoked API token")
    );
}

#[tokio::test]
async fn bad_credentials_are_refused_and_an_address_that_keeps_failing_waits() {
    let sim = Sim::new().await;
    let good = token(&sim, None, r#"{"role":"admin","expires":"1h"}"#).await;
    let (status, msg) = as_token(&sim, "", "GET", "/1.0/instances", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(msg.contains("Authorization: Bearer"), "{msg}");
    // A wrong secret for a real id reads like an unknown token.
    let forged = format!("{}{}", &good.token[..good.token.len() - 4], "0000");
    let forged = if forged == good.token {
        good.token.replace('a', "b")
    } else {
        forged
    };
    for bad in ["nonsense", forged.as_str()] {
        let (status, msg) = as_token(&sim, bad, "GET", "/1.0/instances", None).await;
        assert_eq!(
            (status, msg.as_str()),
            (StatusCode::UNAUTHORIZED, "unknown or revoked API token")
        );
    }
    // Expired (made in the store with no time left) and wrong network.
    let made = croftd::auth::token::generate();
    sim.store
        .create_token(&croftd::store::NewTokenRecord {
            id: &made.id,
            hash: &made.hash,
            description: "",
            role: Role::Admin,
            tenant: None,
            from_cidr: None,
            lifetime_secs: Some(0),
        })
        .await
        .unwrap();
    let (status, msg) = as_token(&sim, &made.token, "GET", "/1.0/instances", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(msg.contains("expired"), "{msg}");
    let fenced = token(&sim, None, r#"{"role":"admin","from":"198.51.100.0/24"}"#).await;
    let (status, msg) = as_token(&sim, &fenced.token, "GET", "/1.0/instances", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(msg.contains("not accepted from 192.0.2.10"), "{msg}");
    let (status, _) = sim
        .send_from(
            Some((&fenced.token, "198.51.100.9:5000")),
            "GET",
            "/1.0/instances",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Bad requests to make a token change nothing.
    for body in [
        r#"{"scope":"write"}"#,
        r#"{"role":"owner"}"#,
        r#"{"role":"admin","scope":"read"}"#,
        r#"{"expires":"forever"}"#,
        r#"{"from":"not-a-net"}"#,
    ] {
        sim.refused("POST", "/1.0/tokens", Some(body), StatusCode::BAD_REQUEST)
            .await;
    }
    sim.refused(
        "POST",
        "/1.0/tokens?tenant=nobody",
        Some("{}"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let all: Vec<Token> = sim.ok("GET", "/1.0/tokens", None).await;
    assert_eq!(all.len(), 3, "{all:?}");

    // Ten failures from one address: it waits, with its good token too;
    // another address is not held up.
    let attacker = "203.0.113.5:1000";
    for _ in 0..10 {
        let (status, _) = sim
            .send_from(Some(("croft_nope", attacker)), "GET", "/1.0/instances", None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = sim
        .send_from(Some((&good.token, attacker)), "GET", "/1.0/instances", None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = as_token(&sim, &good.token, "GET", "/1.0/instances", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn whoami_says_who_and_exactly_what() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    let me: WhoAmI = sim.ok("GET", "/1.0/auth/whoami", None).await;
    assert_eq!(
        (me.name.as_str(), me.role.as_str(), me.credential.as_str()),
        ("root@host", "admin", "local-socket")
    );
    assert!(me.permitted.contains(&"tenant-manage".to_string()), "{me:?}");
    let viewer = token(&sim, Some("acme"), r#"{"scope":"read"}"#).await;
    let (status, body) = sim
        .send_as(Some(&viewer.token), "GET", "/1.0/auth/whoami", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let me: WhoAmI = serde_json::from_slice(&body).unwrap();
    assert_eq!(me.name, format!("token {}", viewer.info.id));
    assert_eq!((me.role.as_str(), me.tenant.as_deref()), ("viewer", Some("acme")));
    assert_eq!(
        me.permitted,
        [
            "connect",
            "vps-read",
            "image-read",
            "tenant-read",
            "plan-read",
            "metrics-read"
        ],
        "{me:?}"
    );
}

/// Which roles may do `action`: the policy, stated again here by hand, so
/// a change to the policy table must be made twice on purpose. The match
/// has no wildcard: a new action does not compile until it has a line.
fn expected_roles(action: Action) -> &'static [Role] {
    use Role::*;
    match action {
        Action::Connect => &[Admin, Owner, Viewer, Metrics],
        Action::VpsRead | Action::ImageRead | Action::TenantRead => &[Admin, Owner, Viewer],
        Action::VpsChange | Action::TokenManage | Action::UserManage => &[Admin, Owner],
        Action::VpsHost | Action::ImageChange | Action::TenantManage | Action::AuditRead => &[Admin],
        Action::HostRead => &[Admin, Metrics],
        Action::MetricsRead => &[Admin, Owner, Viewer, Metrics],
        Action::PlanRead => &[Admin, Owner, Viewer],
        Action::PlanManage => &[Admin],
        Action::NetworkManage => &[Admin],
        Action::Enroll => &[Admin, Owner, Viewer, Metrics],
    }
}

/// Every endpoint of the route table × every role × its own or another
/// tenant: allowed, refused (403), or, for another tenant's things, not
/// found. The targets named do not exist, so an allowed request ends in
/// its handler (a 400 or a 404 of its own) and changes nothing.
#[tokio::test]
async fn the_authorization_matrix_holds_for_every_endpoint() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    tenant(&sim, "beta").await;
    let admin = token(&sim, None, r#"{"role":"admin"}"#).await.token;
    let metrics = token(&sim, None, r#"{"role":"metrics"}"#).await.token;
    let owner = token(&sim, Some("acme"), r#"{"scope":"read-write"}"#).await.token;
    let viewer = token(&sim, Some("acme"), r#"{"scope":"read"}"#).await.token;
    let callers = [
        (Role::Admin, admin.as_str()),
        (Role::Metrics, metrics.as_str()),
        (Role::Owner, owner.as_str()),
        (Role::Viewer, viewer.as_str()),
    ];
    assert!(
        sim.table.len() >= 40,
        "the table has every endpoint: {}",
        sim.table.len()
    );
    let mut checked = 0;
    for endpoint in &sim.table {
        let path = endpoint
            .path
            .replace("{name}", "ghost")
            .replace("{snap}", "s1")
            .replace("{id}", "ghost")
            .replace("{protocol}", "tcp")
            .replace("{port}", "8080")
            .replace("{index}", "1")
            .replace("{group}", "g1")
            .replace("{address}", "10.87.0.99");
        let body = matches!(endpoint.method.as_str(), "POST" | "PATCH" | "PUT").then_some("{}");
        let method = endpoint.method.as_str();
        for (role, token) in callers {
            let allowed = expected_roles(endpoint.action).contains(&role);
            let (status, msg) = as_token(&sim, token, method, &path, body).await;
            let what = format!("{method} {} as {role:?}: {status} {msg}", endpoint.path);
            if allowed {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "allowed, yet refused: {what}"
                );
                assert!(
                    msg != "tenant acme not found" && msg != "tenant default not found",
                    "{what}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
            }
            // A tenant role naming another tenant finds nothing there.
            if role.is_tenant_role() && endpoint.action.tenant_scoped() {
                let sep = if path.contains('?') { '&' } else { '?' };
                let other = format!("{path}{sep}tenant=beta");
                let (status, msg) = as_token(&sim, token, method, &other, body).await;
                assert_eq!(
                    (status, msg.as_str()),
                    (StatusCode::NOT_FOUND, "tenant beta not found"),
                    "{method} {other} as {role:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, sim.table.len() * callers.len());
    // Nothing was made by all that, but the tokens it was made with.
    assert!(sim.store.instances().await.unwrap().is_empty());
    let tenants: Vec<croft_api::Tenant> = sim.ok("GET", "/1.0/tenants", None).await;
    assert_eq!(tenants.len(), 3);
}

#[tokio::test]
async fn every_change_is_audited_with_who_and_what_and_never_a_secret() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    let owner = token(&sim, Some("acme"), r#"{"scope":"read-write"}"#).await;
    let viewer = token(&sim, Some("acme"), r#"{"scope":"read"}"#).await;
    let body = r#"{"name":"web","image":"busybox","no_start":true}"#;
    let (status, _) = as_token(&sim, &owner.token, "POST", "/1.0/instances", Some(body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = as_token(&sim, &viewer.token, "DELETE", "/1.0/instances/web", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = as_token(&sim, &owner.token, "GET", "/1.0/instances", None).await;
    assert_eq!(status, StatusCode::OK);

    let log: Vec<croft_api::AuditEntry> = sim.ok("GET", "/1.0/audit", None).await;
    let seen: Vec<(String, String, String, u16)> = log
        .iter()
        .map(|e| (e.caller.clone(), e.method.clone(), e.path.clone(), e.status))
        .collect();
    let by = |t: &TokenCreated| format!("token {}", t.info.id);
    assert_eq!(
        seen,
        [
            (by(&viewer), "DELETE".into(), "/1.0/instances/web".into(), 403),
            (by(&owner), "POST".into(), "/1.0/instances".into(), 202),
            ("root@host".into(), "POST".into(), "/1.0/tokens".into(), 201),
            ("root@host".into(), "POST".into(), "/1.0/tokens".into(), 201),
            ("root@host".into(), "POST".into(), "/1.0/tenants".into(), 201),
        ],
        "every change, newest first; reads are not changes"
    );
    assert_eq!(log[1].tenant, "acme");
    assert_eq!(
        (log[1].role.as_str(), log[1].action.as_str()),
        ("owner", "vps-change")
    );
    assert_eq!(log[1].remote.as_deref(), Some(sim::REMOTE));
    assert_eq!(log[2].remote, None, "the local socket");
    let text = serde_json::to_string(&log).unwrap();
    for t in [&owner, &viewer] {
        let secret = t.token.rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "a token's secret in the audit log");
    }
    let acme: Vec<croft_api::AuditEntry> = sim.ok("GET", "/1.0/audit?tenant=acme&limit=1", None).await;
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].method, "DELETE");
    let (status, _) = as_token(&sim, &owner.token, "GET", "/1.0/audit", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the audit log is the admin's");
}

#[tokio::test]
async fn a_trust_token_enrolls_one_certificate_once_with_its_role() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    launch_in(&sim, "acme", "web").await;
    let (alice, mallory) = ("aa".repeat(32), "ee".repeat(32));
    // Not trusted yet: 401, saying how to be.
    let (status, msg) = sim
        .send_with_certificate(&alice, "GET", "/1.0/instances", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        msg.contains("not trusted") && msg.contains("croft remote add"),
        "{msg}"
    );

    let made: croft_api::TrustTokenCreated = sim
        .ok(
            "POST",
            "/1.0/trust/tokens?tenant=acme",
            Some(r#"{"name":"alice","role":"viewer"}"#),
        )
        .await;
    let join = croft_api::JoinToken::decode(&made.token).unwrap();
    assert_eq!(
        join.fingerprint,
        "ab".repeat(32),
        "the server's certificate, to pin"
    );
    assert_eq!(join.addresses, ["127.0.0.1:8443"]);
    assert_eq!(
        (made.info.role.as_str(), made.info.tenant.as_deref()),
        ("viewer", Some("acme"))
    );
    let enroll = format!(r#"{{"secret":"{}"}}"#, join.secret);
    // A wrong secret, and no certificate at all, enroll nothing.
    // (Its last character changed: to 1 where it was 0.)
    let (head, last) = join.secret.split_at(join.secret.len() - 1);
    let other = if last == "0" { "1" } else { "0" };
    let forged = format!(r#"{{"secret":"{head}{other}"}}"#);
    let (status, _) = sim
        .send_with_certificate(&mallory, "POST", "/1.0/trust/enroll", Some(&forged))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, msg) = sim
        .send_as(Some("x"), "POST", "/1.0/trust/enroll", Some(&enroll))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&msg)
    );

    let (status, msg) = sim
        .send_with_certificate(&alice, "POST", "/1.0/trust/enroll", Some(&enroll))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    // Used: a second certificate cannot enroll with it.
    let (status, msg) = sim
        .send_with_certificate(&mallory, "POST", "/1.0/trust/enroll", Some(&enroll))
        .await;
    assert_eq!(
        (status, msg.as_str()),
        (StatusCode::UNAUTHORIZED, "unknown or used trust token")
    );

    // Alice is a viewer of acme: she sees its VPS, changes nothing, and
    // finds no other tenant.
    let (status, body) = sim
        .send_with_certificate(&alice, "GET", "/1.0/auth/whoami", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let me: WhoAmI = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            me.name.as_str(),
            me.role.as_str(),
            me.tenant.as_deref(),
            me.credential.as_str()
        ),
        ("certificate alice", "viewer", Some("acme"), "certificate")
    );
    let (status, _) = sim
        .send_with_certificate(&alice, "GET", "/1.0/instances/web", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = sim
        .send_with_certificate(&alice, "DELETE", "/1.0/instances/web", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = sim
        .send_with_certificate(&alice, "GET", "/1.0/instances?tenant=default", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Listed; removed at once.
    let trust: croft_api::Trust = sim.ok("GET", "/1.0/trust", None).await;
    assert_eq!(trust.certificates.len(), 1);
    assert!(trust.tokens.is_empty(), "a used token is gone");
    let (status, _) = sim.send("DELETE", &format!("/1.0/trust/{alice}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = sim
        .send_with_certificate(&alice, "GET", "/1.0/instances", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Only an admin grants roles of no tenant; tokens expire.
    let owner = token(&sim, Some("acme"), r#"{"scope":"read-write"}"#).await;
    let (status, _) = as_token(
        &sim,
        &owner.token,
        "POST",
        "/1.0/trust/tokens",
        Some(r#"{"name":"evil","role":"admin"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    sim.refused(
        "POST",
        "/1.0/trust/tokens",
        Some(r#"{"name":"x","expires":"never"}"#),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let log: Vec<croft_api::AuditEntry> = sim.ok("GET", "/1.0/audit", None).await;
    assert!(log
        .iter()
        .any(|e| e.path == "/1.0/trust/enroll" && e.status == 201 && e.caller.contains(&alice)));
}

/// What one tenant owns and another names by its id (a job, an API
/// token, a trusted certificate, a pending trust token) is not found by
/// the other's token, and stays as it was.
#[tokio::test]
async fn another_tenants_objects_are_not_found_by_their_ids() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    tenant(&sim, "beta").await;
    let body = r#"{"name":"web","image":"busybox","no_start":true}"#;
    let acme_job: Job = sim.ok("POST", "/1.0/instances?tenant=acme", Some(body)).await;
    sim.wait_job(&acme_job).await;
    let acme_token = token(&sim, Some("acme"), r#"{"scope":"read-write"}"#).await;
    let acme_cert = "cc".repeat(32);
    let join: croft_api::TrustTokenCreated = sim
        .ok(
            "POST",
            "/1.0/trust/tokens?tenant=acme",
            Some(r#"{"name":"laptop"}"#),
        )
        .await;
    let secret = croft_api::JoinToken::decode(&join.token).unwrap().secret;
    let (status, _) = sim
        .send_with_certificate(
            &acme_cert,
            "POST",
            "/1.0/trust/enroll",
            Some(&format!(r#"{{"secret":"{secret}"}}"#)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let pending: croft_api::TrustTokenCreated = sim
        .ok(
            "POST",
            "/1.0/trust/tokens?tenant=acme",
            Some(r#"{"name":"phone"}"#),
        )
        .await;

    let beta = token(&sim, Some("beta"), r#"{"scope":"read-write"}"#).await.token;
    let not_found = [
        ("GET", format!("/1.0/jobs/{}", acme_job.id)),
        ("GET", format!("/1.0/jobs/{}/wait?timeout=1", acme_job.id)),
        ("DELETE", format!("/1.0/tokens/{}", acme_token.info.id)),
        ("DELETE", format!("/1.0/trust/{acme_cert}")),
        ("DELETE", format!("/1.0/trust/{}", pending.info.id)),
        ("GET", "/1.0/instances/web".to_string()),
        ("DELETE", "/1.0/instances/web".to_string()),
        ("GET", "/1.0/tenants/acme/usage".to_string()),
    ];
    for (method, path) in &not_found {
        let (status, msg) = as_token(&sim, &beta, method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {msg}");
    }
    // Beta's lists hold nothing of acme's.
    for path in ["/1.0/jobs", "/1.0/tokens", "/1.0/instances"] {
        let (status, body) = sim.send_as(Some(&beta), "GET", path, None).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("acme"), "{path}: {text}");
    }
    let (status, body) = sim.send_as(Some(&beta), "GET", "/1.0/trust", None).await;
    assert_eq!(status, StatusCode::OK);
    let trust: croft_api::Trust = serde_json::from_slice(&body).unwrap();
    assert!(
        trust.certificates.is_empty() && trust.tokens.is_empty(),
        "{trust:?}"
    );
    // All of acme's still there, working.
    let (status, _) = as_token(&sim, &acme_token.token, "GET", "/1.0/instances/web", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = sim
        .send_with_certificate(&acme_cert, "GET", "/1.0/instances/web", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let all: croft_api::Trust = sim.ok("GET", "/1.0/trust?tenant=acme", None).await;
    assert_eq!((all.certificates.len(), all.tokens.len()), (1, 1));
}

/// What this stop added for a VPS's owner (interfaces, root's keys and
/// password, rename, addresses) is not reachable through another tenant's
/// token: the VPS is not found, and nothing of it changes.
#[tokio::test]
async fn another_tenants_owner_cannot_reach_a_vps_by_its_name() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    tenant(&sim, "beta").await;
    let before = launch_in(&sim, "acme", "only-acme").await;
    let beta = token(&sim, Some("beta"), r#"{"scope":"read-write"}"#).await.token;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl beta";
    for (method, path, body) in [
        (
            "POST",
            "/1.0/instances/only-acme/nics",
            r#"{"network":"default"}"#.to_string(),
        ),
        ("DELETE", "/1.0/instances/only-acme/nics/1", String::new()),
        (
            "POST",
            "/1.0/instances/only-acme/password",
            r#"{"password":"stolen-password"}"#.into(),
        ),
        (
            "POST",
            "/1.0/instances/only-acme/ssh-keys",
            format!(r#"{{"key":"{key}"}}"#),
        ),
        ("GET", "/1.0/instances/only-acme/ssh-keys", String::new()),
        ("DELETE", "/1.0/instances/only-acme/ssh-keys/1", String::new()),
        (
            "POST",
            "/1.0/instances/only-acme/rename",
            r#"{"name":"taken"}"#.into(),
        ),
        (
            "POST",
            "/1.0/instances/only-acme/addresses",
            r#"{"address":"10.87.0.77"}"#.into(),
        ),
    ] {
        let body = (!body.is_empty()).then_some(body.as_str());
        let (status, msg) = as_token(&sim, &beta, method, path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {msg}");
    }
    let after: Instance = sim.ok("GET", "/1.0/instances/only-acme?tenant=acme", None).await;
    assert_eq!((after.name.as_str(), after.nics.len()), ("only-acme", 1));
    assert_eq!(after.nic, before.nic);
    let keys: Vec<String> = sim
        .ok("GET", "/1.0/instances/only-acme/ssh-keys?tenant=acme", None)
        .await;
    assert!(keys.is_empty(), "{keys:?}");
}

/// `GET /metrics`: the background sample rendered in the Prometheus text
/// format, as the Prometheus client's own parser reads it. A tenant's
/// token gets its own VPSes' series and no host figures; a metrics token
/// and the admin every VPS's; no token nothing. A scrape reads the last
/// sample, not the cgroups.
#[tokio::test]
async fn metrics_show_each_caller_only_what_it_may_see() {
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    tenant(&sim, "beta").await;
    launch_in(&sim, "acme", "web1").await;
    launch_in(&sim, "beta", "db1").await;
    start_in(&sim, "acme", "web1").await;
    let owner = token(&sim, Some("acme"), r#"{"scope":"read-write"}"#).await.token;
    let viewer = token(&sim, Some("acme"), r#"{"scope":"read"}"#).await.token;
    let metrics = token(&sim, None, r#"{"role":"metrics"}"#).await.token;
    let scrape = |token: Option<String>| {
        let sim = &sim;
        async move {
            let (status, body) = sim.send_as(token.as_deref(), "GET", "/metrics", None).await;
            (status, String::from_utf8(body).unwrap())
        }
    };
    // Before the first sample: nothing to show but the families.
    let (status, text) = scrape(Some(metrics.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text.contains("vps=\""), "{text}");
    sim.services.metrics.sample().await.unwrap();
    let (_, all) = scrape(Some(metrics.clone())).await;
    // Every line the parser's: each sample in a family of the right type.
    let parsed = sim::prometheus::parse_prometheus(&all);
    let samples: usize = parsed.values().map(|f| f.samples.len()).sum();
    assert_eq!(
        samples,
        all.lines().filter(|l| !l.starts_with('#')).count(),
        "{all}"
    );
    let value = |family: &str, vps: &str| -> Option<f64> {
        parsed[family]
            .samples
            .iter()
            .find(|(_, labels, _)| labels.get("vps").map(String::as_str) == Some(vps))
            .and_then(|s| s.2)
    };
    assert_eq!(value("croft_vps_running", "web1"), Some(1.0));
    assert_eq!(value("croft_vps_running", "db1"), Some(0.0));
    assert_eq!(value("croft_vps_memory_bytes", "web1"), Some((16 << 20) as f64));
    assert_eq!(
        value("croft_vps_memory_bytes", "db1"),
        None,
        "a stopped VPS has no usage"
    );
    for (family, kind) in [
        ("croft_vps_running", "gauge"),
        ("croft_vps_cpu_seconds", "counter"),
        ("croft_vps_disk_written_bytes", "counter"),
        ("croft_vps_network_receive_drops", "counter"),
        ("croft_tenant_quota", "gauge"),
        ("croft_pool_size_bytes", "gauge"),
        ("croft_metrics_sample_timestamp_seconds", "gauge"),
        ("croft_api_requests", "counter"),
        ("croft_api_request_duration_seconds", "summary"),
    ] {
        assert_eq!(
            parsed.get(family).map(|f| f.kind.as_str()),
            Some(kind),
            "{family}: {all}"
        );
    }
    assert_eq!(value("croft_vps_disk_written_bytes", "web1"), Some(0.0));
    let owner_again = owner.clone();
    for token in [owner, viewer] {
        let (status, text) = scrape(Some(token)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("vps=\"web1\""), "{text}");
        assert!(!text.contains("beta") && !text.contains("db1"), "{text}");
        assert!(!text.contains("croft_pool_"), "{text}");
    }
    // The admin may narrow it to a tenant.
    let (status, body) = sim.send("GET", "/metrics?tenant=beta", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("vps=\"db1\"") && !text.contains("web1"), "{text}");
    // No token: refused, nothing shown.
    let (status, _) = scrape(Some(String::new())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // croftd's own requests, counted as served (refusals too), by route
    // as registered; the latency as a summary's sum and count.
    let (_, all) = scrape(Some(metrics)).await;
    for series in [
        "croft_api_requests_total{method=\"GET\",route=\"/metrics\",code=\"401\"} 1",
        "croft_api_requests_total{method=\"POST\",route=\"/1.0/tenants\",code=\"201\"} 2",
    ] {
        assert!(all.lines().any(|l| l == series), "{series} not in {all}");
    }
    let count = all
        .lines()
        .find_map(|l| {
            l.strip_prefix("croft_api_request_duration_seconds_count{method=\"GET\",route=\"/metrics\"} ")
        })
        .unwrap_or_else(|| panic!("no latency of GET /metrics in {all}"));
    assert!(count.parse::<u64>().unwrap() >= 6, "{count}");
    // Not a tenant's to see.
    let (_, text) = scrape(Some(owner_again)).await;
    assert!(!text.contains("croft_api_"), "{text}");
}

/// VPS web1's usage history over `range`, as `token`'s caller reads it.
async fn history_of(sim: &Sim, token: String, range: &str) -> croft_api::UsageHistory {
    let path = format!("/1.0/instances/web1/metrics?range={range}");
    let (status, body) = sim.send_as(Some(&token), "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The usage history: the sampler's figures kept a point per minute (and
/// merged into the longer archives), read back a point per step, kept
/// across a croftd restart, and shown to the VPS's own tenant only.
#[tokio::test]
async fn usage_history_is_kept_across_a_restart_and_shown_to_its_tenant_only() {
    use croft_api::UsageHistory;
    let sim = Sim::new().await;
    tenant(&sim, "acme").await;
    tenant(&sim, "beta").await;
    launch_in(&sim, "acme", "web1").await;
    start_in(&sim, "acme", "web1").await;
    let owner = token(&sim, Some("acme"), r#"{"scope":"read-write"}"#).await.token;
    let viewer = token(&sim, Some("acme"), r#"{"scope":"read"}"#).await.token;
    let stranger = token(&sim, Some("beta"), r#"{"scope":"read-write"}"#).await.token;
    // Three minutes ago: samples within a minute, and one of the next
    // minute, which finishes it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let minute = now / 60 * 60 - 180;
    for at in [1, 11, 21, 61] {
        sim.services
            .metrics
            .sample_at((minute + at) as f64)
            .await
            .unwrap();
    }
    // The simulator's VPS: 16 MiB, one process, no CPU time, no disk I/O.
    let value = |h: &UsageHistory, series: &str, at: i64| {
        let i = h.at.iter().position(|t| *t == at).expect("a point per step");
        let s = h.series.iter().find(|s| s.name == series).unwrap();
        (s.avg[i], s.max[i])
    };
    let hour = history_of(&sim, viewer.clone(), "hour").await;
    assert_eq!(
        (hour.range.as_str(), hour.step_seconds, hour.at.len()),
        ("hour", 60, 60)
    );
    assert_eq!(
        value(&hour, "memory_bytes", minute),
        (Some(16.0 * 1048576.0), Some(16.0 * 1048576.0))
    );
    assert_eq!(value(&hour, "processes", minute), (Some(1.0), Some(1.0)));
    assert_eq!(value(&hour, "cpu_percent", minute), (Some(0.0), Some(0.0)));
    assert_eq!(
        value(&hour, "disk_read_bytes_per_second", minute),
        (Some(0.0), Some(0.0))
    );
    // The minute still gathering is not written yet.
    assert_eq!(value(&hour, "memory_bytes", minute + 60), (None, None));
    let points = |h: &UsageHistory| h.series[1].avg.iter().filter(|v| v.is_some()).count();
    assert_eq!(points(&hour), 1);

    // croftd restarts: what was written is still there, in every archive.
    let Sim { dir, store, .. } = sim;
    let sim = Sim::on(dir, store).await;
    for range in ["day", "week", "month", "year"] {
        let h = history_of(&sim, owner.clone(), range).await;
        assert_eq!(points(&h), 1, "{range}: {h:?}");
        let step = h.step_seconds as i64;
        assert_eq!(
            value(&h, "processes", minute / step * step),
            (Some(1.0), Some(1.0)),
            "{range}"
        );
    }

    // Another tenant's caller finds no such VPS; a range croft does not
    // keep is a 400 naming the ones it does.
    let (status, body) = sim
        .send_as(Some(&stranger), "GET", "/1.0/instances/web1/metrics", None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, body) = sim
        .send_as(
            Some(&owner),
            "GET",
            "/1.0/instances/web1/metrics?range=decade",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("hour, day, week, month or year"), "{body}");
}
