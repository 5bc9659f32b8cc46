//! Tier 2: tenants' quotas and plans, on the simulator: caps checked in
//! the store transaction of each change, under concurrency too.

mod sim;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use croft_api::{Instance, Job, JobStatus, TenantUsage};
use sim::Sim;
use tower::ServiceExt;

async fn tenant_with_quota(sim: &Sim, name: &str, quota: &str) {
    let _: croft_api::Tenant = sim
        .ok("POST", "/1.0/tenants", Some(&format!(r#"{{"name":"{name}"}}"#)))
        .await;
    let _: croft_api::Tenant = sim
        .ok("PUT", &format!("/1.0/tenants/{name}/quota"), Some(quota))
        .await;
}

/// Launch `name` in `tenant` with `extra` request fields; the job's end,
/// or the refusal's status and message.
async fn launch(sim: &Sim, tenant: &str, name: &str, extra: &str) -> Result<Job, (StatusCode, String)> {
    let body = format!(r#"{{"name":"{name}","image":"busybox","no_start":true{extra}}}"#);
    let path = format!("/1.0/instances?tenant={tenant}");
    let (status, bytes) = sim.send("POST", &path, Some(&body)).await;
    if status != StatusCode::ACCEPTED {
        let err: croft_api::ErrorBody = serde_json::from_slice(&bytes).unwrap();
        return Err((status, err.error));
    }
    let job: Job = serde_json::from_slice(&bytes).unwrap();
    Ok(sim.wait_job(&job).await)
}

async fn usage(sim: &Sim, tenant: &str) -> TenantUsage {
    sim.ok("GET", &format!("/1.0/tenants/{tenant}/usage"), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_launches_at_a_quota_edge_leave_exactly_the_quota() {
    let sim = Sim::new().await;
    tenant_with_quota(&sim, "acme", r#"{"vpses":5}"#).await;
    for name in ["a", "b"] {
        assert_eq!(
            launch(&sim, "acme", name, "").await.unwrap().status,
            JobStatus::Success
        );
    }
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let router = sim.router.clone();
            let body = format!(r#"{{"name":"c{i}","image":"busybox","no_start":true}}"#);
            tokio::spawn(async move {
                let req = Request::post("/1.0/instances?tenant=acme")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap();
                let resp = router.oneshot(req).await.unwrap();
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
                (status, bytes)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for task in tasks {
        let (status, bytes) = task.await.unwrap();
        match status {
            StatusCode::ACCEPTED => accepted.push(serde_json::from_slice::<Job>(&bytes).unwrap()),
            StatusCode::CONFLICT => {
                let err: croft_api::ErrorBody = serde_json::from_slice(&bytes).unwrap();
                assert!(err.error.contains("quota of 5 VPSes"), "{}", err.error);
            }
            other => panic!("{other}: {}", String::from_utf8_lossy(&bytes)),
        }
    }
    assert_eq!(accepted.len(), 3, "exactly the three left under the quota");
    for job in &accepted {
        assert_eq!(sim.wait_job(job).await.status, JobStatus::Success);
    }
    let list: Vec<Instance> = sim.ok("GET", "/1.0/instances?tenant=acme", None).await;
    assert_eq!(list.len(), 5);
    assert_eq!(usage(&sim, "acme").await.used.vpses, 5);
    // Another tenant is not held to acme's quota.
    assert!(launch(&sim, "default", "ours", "").await.is_ok());
}

#[tokio::test]
async fn capped_limits_must_be_set_and_are_summed_across_the_tenant() {
    let sim = Sim::new().await;
    tenant_with_quota(&sim, "acme", r#"{"memory_bytes":1073741824,"port_forwards":1}"#).await;
    // Without a memory limit a VPS would escape the cap.
    let (status, msg) = launch(&sim, "acme", "web", "").await.unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(msg.contains("limits.memory"), "{msg}");
    let half = r#","config":{"limits.memory":"512MiB"}"#;
    launch(&sim, "acme", "web", half).await.unwrap();
    launch(&sim, "acme", "db", half).await.unwrap();
    let (status, msg) = launch(&sim, "acme", "cache", half).await.unwrap_err();
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        msg,
        "tenant acme's quota of 1GiB memory would be exceeded: 1GiB in use, 1.5GiB asked for"
    );
    // Raising a limit past the cap changes nothing; lowering one works.
    let msg = sim
        .refused(
            "PATCH",
            "/1.0/instances/web/config?tenant=acme",
            Some(r#"{"set":{"limits.memory":"768MiB"}}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("quota of 1GiB memory"), "{msg}");
    let web: Instance = sim.ok("GET", "/1.0/instances/web?tenant=acme", None).await;
    assert_eq!(web.config["limits.memory"], "512MiB");
    let _: Instance = sim
        .ok(
            "PATCH",
            "/1.0/instances/web/config?tenant=acme",
            Some(r#"{"set":{"limits.memory":"256MiB"}}"#),
        )
        .await;
    sim.refused(
        "PATCH",
        "/1.0/instances/web/config?tenant=acme",
        Some(r#"{"unset":["limits.memory"]}"#),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // One forward (snapshots, which the simulator's dir pool cannot
    // take, are held to theirs in the store's conformance suite).
    let forward = |port: u16| format!(r#"{{"protocol":"tcp","host_port":{port},"vps_port":80}}"#);
    let _: Vec<croft_api::PortForward> = sim
        .ok(
            "POST",
            "/1.0/instances/web/forwards?tenant=acme",
            Some(&forward(8080)),
        )
        .await;
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/db/forwards?tenant=acme",
            Some(&forward(8081)),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("port forwards"), "{msg}");
    let used = usage(&sim, "acme").await.used;
    assert_eq!(
        (used.vpses, used.memory_bytes, used.port_forwards),
        (2, 768 << 20, 1)
    );
    // A quota below what the tenant holds is refused, and one that
    // caps a limit a VPS lacks.
    let msg = sim
        .refused(
            "PUT",
            "/1.0/tenants/acme/quota",
            Some(r#"{"vpses":1}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("already holds 2 VPSes"), "{msg}");
    let msg = sim
        .refused(
            "PUT",
            "/1.0/tenants/acme/quota",
            Some(r#"{"cpu_millicores":4000}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("limits.cpu"), "{msg}");
    let tenant: croft_api::Tenant = sim.ok("GET", "/1.0/tenants/acme", None).await;
    assert_eq!(
        tenant.quota.port_forwards,
        Some(1),
        "the refused quotas changed nothing"
    );
    assert_eq!(tenant.quota.vpses, None);
}

#[tokio::test]
async fn plans_size_vpses_and_what_the_request_sets_wins() {
    let sim = Sim::new().await;
    let plan = r#"{"name":"small","description":"1 CPU, 256MiB","config":{"limits.cpu":"1","limits.memory":"256MiB"}}"#;
    let made: croft_api::Plan = sim.ok("POST", "/1.0/plans", Some(plan)).await;
    assert_eq!(made.config.len(), 2);
    sim.refused("POST", "/1.0/plans", Some(plan), StatusCode::CONFLICT)
        .await;
    for bad in [
        r#"{"name":"x","config":{"boot.autostart":"true"}}"#,
        r#"{"name":"x","config":{"limits.memory":"lots"}}"#,
        r#"{"name":"x","config":{}}"#,
        r#"{"name":"Bad Name","config":{"limits.cpu":"1"}}"#,
    ] {
        sim.refused("POST", "/1.0/plans", Some(bad), StatusCode::BAD_REQUEST)
            .await;
    }
    launch(
        &sim,
        "default",
        "web",
        r#","plan":"small","config":{"limits.cpu":"2"}"#,
    )
    .await
    .unwrap();
    let web = sim.info("web").await;
    assert_eq!(web.config["limits.memory"], "256MiB", "from the plan");
    assert_eq!(web.config["limits.cpu"], "2", "the request wins");
    let (status, msg) = launch(&sim, "default", "db", r#","plan":"large""#)
        .await
        .unwrap_err();
    assert_eq!(
        (status, msg.as_str()),
        (StatusCode::NOT_FOUND, "plan large not found")
    );
    let plans: Vec<croft_api::Plan> = sim.ok("GET", "/1.0/plans", None).await;
    assert_eq!(plans.len(), 1);
    let (status, _) = sim.send("DELETE", "/1.0/plans/small", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    sim.refused("DELETE", "/1.0/plans/small", None, StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test]
async fn a_tenant_uses_only_the_images_it_is_allowed() {
    let sim = Sim::new().await;
    tenant_with_quota(&sim, "acme", "{}").await;
    sim.launch("ours").await;
    let t: croft_api::Tenant = sim
        .ok(
            "PUT",
            "/1.0/tenants/acme/images",
            Some(r#"{"images":["debian-12"]}"#),
        )
        .await;
    assert_eq!(t.images.as_deref(), Some(&["debian-12".to_string()][..]));
    let (status, msg) = launch(&sim, "acme", "web", "").await.unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        msg,
        "tenant acme may not use image busybox; it may use: debian-12"
    );
    // The default tenant is not held to acme's list; lifting it lets
    // acme launch; a rescue or rebuild from a refused image is refused.
    let _: croft_api::Tenant = sim
        .ok("PUT", "/1.0/tenants/acme/images", Some(r#"{"images":null}"#))
        .await;
    launch(&sim, "acme", "web", "").await.unwrap();
    let _: croft_api::Tenant = sim
        .ok("PUT", "/1.0/tenants/acme/images", Some(r#"{"images":[]}"#))
        .await;
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/web/rebuild?tenant=acme",
            Some(r#"{"image":"busybox"}"#),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(msg.contains("may use: none"), "{msg}");
    sim.refused(
        "POST",
        "/1.0/instances/web/state?tenant=acme",
        Some(r#"{"action":"start","rescue":true}"#),
        StatusCode::FORBIDDEN,
    )
    .await;
    let web: Instance = sim.ok("GET", "/1.0/instances/web?tenant=acme", None).await;
    assert_eq!(
        web.status,
        croft_api::Status::Stopped,
        "the refused rescue changed nothing"
    );
    sim.refused(
        "PUT",
        "/1.0/tenants/acme/images",
        Some(r#"{"images":["../etc"]}"#),
        StatusCode::BAD_REQUEST,
    )
    .await; // Its users see only the images it may use.
    let owner: croft_api::TokenCreated = sim
        .ok("POST", "/1.0/tokens?tenant=acme", Some(r#"{"scope":"read"}"#))
        .await;
    let (status, body) = sim.send_as(Some(&owner.token), "GET", "/1.0/images", None).await;
    assert_eq!(status, StatusCode::OK);
    let images: Vec<croft_api::Image> = serde_json::from_slice(&body).unwrap();
    assert!(images.is_empty(), "{images:?}");
    let all: Vec<croft_api::Image> = sim.ok("GET", "/1.0/images", None).await;
    assert!(all.iter().any(|i| i.name == "busybox"), "the admin sees them all");
}

#[tokio::test]
async fn a_tenants_vpses_have_only_the_features_the_admin_allows_it() {
    let sim = Sim::new().await;
    tenant_with_quota(&sim, "acme", "{}").await;
    let tun = r#","config":{"features.tun":"true"}"#;
    let (status, msg) = launch(&sim, "acme", "t1", tun).await.unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        msg.contains("tenant acme may not switch features.tun on; the admin allows it (croft tenant features acme tun)"),
        "{msg}"
    );
    let (status, _) = sim.send("GET", "/1.0/instances/t1?tenant=acme", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a refused launch left a VPS");
    for (body, status, says) in [
        (
            r#"{"features":["tun","gpu"]}"#,
            StatusCode::BAD_REQUEST,
            "unknown feature \"gpu\"",
        ),
        (
            r#"{"features":"tun"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features",
        ),
    ] {
        let msg = sim
            .refused("PUT", "/1.0/tenants/acme/features", Some(body), status)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let t: croft_api::Tenant = sim
        .ok(
            "PUT",
            "/1.0/tenants/acme/features",
            Some(r#"{"features":["tun"]}"#),
        )
        .await;
    assert_eq!(t.features, ["tun"]);
    assert_eq!(
        launch(&sim, "acme", "t1", tun).await.unwrap().status,
        JobStatus::Success
    );
    // FUSE is still not the tenant's, at launch or later.
    let msg = sim
        .refused(
            "PATCH",
            "/1.0/instances/t1/config?tenant=acme",
            Some(r#"{"set":{"features.fuse":"true"}}"#),
            StatusCode::FORBIDDEN,
        )
        .await;
    assert!(msg.contains("features.fuse"), "{msg}");
    // Taken back only once no VPS of it has it on.
    let msg = sim
        .refused(
            "PUT",
            "/1.0/tenants/acme/features",
            Some(r#"{"features":[]}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("VPS t1 of tenant acme has features.tun on"), "{msg}");
    // The admin's own VPSes may have any.
    let job: Job = sim
        .ok(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"own","image":"busybox","no_start":true,"config":{"features.fuse":"true","features.tun":"true"}}"#),
        )
        .await;
    assert_eq!(sim.wait_job(&job).await.status, JobStatus::Success);
    let _: Instance = sim.info("own").await;
}

#[tokio::test]
async fn an_address_held_in_another_tenant_is_refused_without_naming_its_vps() {
    let sim = Sim::new().await;
    tenant_with_quota(&sim, "acme", "{}").await;
    sim.launch("admins-secret-box").await;
    let (status, msg) = launch(&sim, "acme", "t1", r#","ipv4":"10.87.0.2""#)
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        msg.contains("10.87.0.2 (a VPS of another tenant holds it)"),
        "{msg}"
    );
    assert!(!msg.contains("admins-secret-box"), "{msg}");
}
