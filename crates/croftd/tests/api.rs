//! Service and API tests (tier 2): the whole REST API on the simulated
//! backend, a dir pool in a temporary directory, the simulated host
//! network and an in-memory store. No root needed; every test builds its
//! own croftd (services behind the router) and talks HTTP to it.

mod sim;

use axum::http::StatusCode;
use croft_api::{Firewall, Instance, Job, JobStatus, Network, PortForward, Status};
use sim::Sim;
use std::time::Duration;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@croft";

#[tokio::test]
async fn a_vps_goes_through_its_whole_life() {
    let sim = Sim::new().await;
    let vps = sim.launch("web").await;
    assert_eq!(vps.status, Status::Running);
    let pid = sim.backend.running("web").expect("the backend runs it");
    let details = sim.details("web").await;
    assert_eq!((details.init_pid, details.backend.as_str()), (Some(pid), "sim"));
    assert_eq!(details.uuid, vps.uuid);
    assert_eq!(details.control_socket, None, "the simulator has none");
    let nic = vps.nic.expect("an interface");
    assert_eq!(nic.ipv4.as_deref(), Some("10.87.0.2"));
    assert!(
        sim.net.scripts().iter().any(|s| s.contains(&nic.host_interface)),
        "its rules were loaded"
    );

    let stopped = sim.state("web", r#"{"action":"stop"}"#).await;
    assert_eq!(stopped.status, Status::Stopped);
    assert_eq!(stopped.last_exit.as_deref(), Some("init exited with status 0"));
    assert_eq!(sim.backend.running("web"), None);
    sim.refused(
        "POST",
        "/1.0/instances/web/state",
        Some(r#"{"action":"stop"}"#),
        StatusCode::CONFLICT,
    )
    .await;

    assert_eq!(sim.details("web").await.init_pid, None);
    let started = sim.state("web", r#"{"action":"start"}"#).await;
    assert_eq!(started.status, Status::Running);
    let first = sim.details("web").await.init_pid;
    sim.state("web", r#"{"action":"restart"}"#).await;
    assert_ne!(sim.details("web").await.init_pid, first, "a new init");

    let err = sim
        .refused("DELETE", "/1.0/instances/web", None, StatusCode::CONFLICT)
        .await;
    assert!(err.contains("running"), "{err}");
    assert_eq!(
        sim.info("web").await.status,
        Status::Running,
        "a refused delete changes nothing"
    );
    let (status, _) = sim.send("DELETE", "/1.0/instances/web?force=true", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    sim.refused("GET", "/1.0/instances/web", None, StatusCode::NOT_FOUND)
        .await;
    assert_eq!(sim.backend.running("web"), None);
    assert!(
        sim.store.nics().await.unwrap().is_empty(),
        "its address is free again"
    );
    assert!(!sim
        .dir
        .path()
        .join("state/storage-pools/default/containers/web")
        .exists());
}

#[tokio::test]
async fn list_and_info_show_one_view() {
    let sim = Sim::new().await;
    sim.launch_with("a", &format!(r#","ssh_keys":["{KEY}"],"no_start":true"#))
        .await;
    sim.launch("b").await;
    sim.ok::<Firewall>(
        "POST",
        "/1.0/instances/a/firewall/rules",
        Some(r#"{"action":"allow","protocol":"tcp","port":"22","source":null}"#),
    )
    .await;
    let list: Vec<Instance> = sim.ok("GET", "/1.0/instances", None).await;
    assert_eq!(list.len(), 2);
    for listed in list {
        let mut info = sim.info(&listed.name).await;
        // Usage moves between two reads; everything else must agree.
        info.usage = listed.usage.clone();
        assert_eq!(listed, info, "list and info differ for {}", listed.name);
    }
    let a = sim.info("a").await;
    assert_eq!(a.ssh_keys, vec![KEY.to_string()]);
    assert_eq!(a.status, Status::Stopped);
    assert_eq!(a.firewall.map(|f| f.rules.len()), Some(1));
    let disk = sim
        .dir
        .path()
        .join("state/storage-pools/default/containers/a/rootfs");
    let identity = sim
        .backend
        .identity(&disk)
        .expect("the disk was given an identity");
    assert_eq!(
        (identity.hostname.as_str(), identity.ssh_keys),
        ("a", vec![KEY.to_string()])
    );
}

#[tokio::test]
async fn a_vps_that_dies_or_reboots_on_its_own_is_recorded() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    let new_pid = sim.backend.reboot("v").unwrap();
    for _ in 0..200 {
        if sim.details("v").await.init_pid == Some(new_pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        sim.details("v").await.init_pid,
        Some(new_pid),
        "the reboot is recorded"
    );
    assert_eq!(sim.info("v").await.status, Status::Running);
    sim.backend.crash("v", "init exited with status 3");
    let down = sim
        .wait_for("v", "the exit", |v| v.status == Status::Stopped)
        .await;
    assert_eq!(down.last_exit.as_deref(), Some("init exited with status 3"));
    assert_eq!(sim.details("v").await.init_pid, None);
}

#[tokio::test]
async fn a_launch_that_fails_to_start_leaves_nothing() {
    let sim = Sim::new().await;
    sim.backend.fail_next_start("no init in the image");
    let job = sim.launch_with("broken", "").await;
    assert_eq!(job.status, JobStatus::Failure);
    assert!(
        job.error.as_deref().unwrap().contains("no init in the image"),
        "{job:?}"
    );
    sim.refused("GET", "/1.0/instances/broken", None, StatusCode::NOT_FOUND)
        .await;
    assert!(sim.store.instances().await.unwrap().is_empty());
    assert!(sim.store.nics().await.unwrap().is_empty());
    assert!(sim.store.ssh_keys("broken").await.unwrap().is_empty());
    // The name and the address are free again.
    let again = sim.launch("broken").await;
    assert_eq!(again.nic.unwrap().ipv4.as_deref(), Some("10.87.0.2"));
}

#[tokio::test]
async fn a_failed_start_leaves_the_vps_stopped_with_the_reason() {
    let sim = Sim::new().await;
    sim.launch_with("v", r#","no_start":true"#).await;
    sim.backend.fail_next_start("exec /sbin/init: no such file");
    let err = sim
        .refused(
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"start"}"#),
            StatusCode::INTERNAL_SERVER_ERROR,
        )
        .await;
    assert!(err.contains("exec /sbin/init"), "{err}");
    let v = sim.info("v").await;
    assert_eq!(v.status, Status::Stopped);
    assert!(v.last_exit.unwrap().starts_with("start failed"));
}

#[tokio::test]
async fn limits_change_live_and_bad_ones_change_nothing() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    let v: Instance = sim
        .ok(
            "PATCH",
            "/1.0/instances/v/config",
            Some(r#"{"set":{"limits.memory":"256MiB","limits.cpu":"1.5"}}"#),
        )
        .await;
    assert_eq!(v.config["limits.memory"], "256MiB");
    let live = sim.backend.limits("v").unwrap();
    assert_eq!(
        (live.memory_bytes, live.cpu_millicores),
        (Some(256 << 20), Some(1500))
    );
    for (body, why) in [
        (r#"{"set":{"limits.memory":"lots"}}"#, "limits.memory"),
        (r#"{"set":{"limits.memory":"1KiB"}}"#, "out of range"),
        (r#"{"set":{"no.such.key":"1"}}"#, "unknown configuration key"),
        (r#"{"unset":["no.such.key"]}"#, "unknown configuration key"),
        (r#"{"set":{"limits.disk":"1GiB"}}"#, "dir storage driver"),
    ] {
        let err = sim
            .refused(
                "PATCH",
                "/1.0/instances/v/config",
                Some(body),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert!(err.contains(why), "{body}: {err}");
    }
    assert_eq!(
        sim.info("v").await.config,
        v.config,
        "refused changes are not stored"
    );
    assert_eq!(sim.backend.limits("v").unwrap().memory_bytes, Some(256 << 20));
}

/// Disk I/O limits: taken where the host enforces them, and `info` says
/// what it enforces; on a host that cannot, refused with its reason
/// (at a change and at a launch), nothing changed.
#[tokio::test]
async fn disk_io_limits_say_what_is_enforced_and_a_host_that_cannot_refuses_them() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    let v: Instance = sim
        .ok(
            "PATCH",
            "/1.0/instances/v/config",
            Some(r#"{"set":{"limits.disk.read":"100MB","limits.disk.write_iops":"500"}}"#),
        )
        .await;
    assert_eq!(
        v.disk_io_enforced.as_deref(),
        Some("simulated: nothing is throttled")
    );
    sim.backend.refuse_disk_io("no blkio cgroup hierarchy is mounted");
    let err = sim
        .refused(
            "PATCH",
            "/1.0/instances/v/config",
            Some(r#"{"set":{"limits.disk.write":"10MB"}}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        err.contains("this host cannot enforce disk I/O limits: no blkio cgroup hierarchy is mounted"),
        "{err}"
    );
    assert_eq!(
        sim.info("v").await.config,
        v.config,
        "a refused change was stored"
    );
    // What the VPS has is said plainly: nothing is enforced any more.
    assert_eq!(
        sim.info("v").await.disk_io_enforced.as_deref(),
        Some("nothing: no blkio cgroup hierarchy is mounted")
    );
    // Other changes still go through; a launch asking for one is refused.
    sim.ok::<Instance>(
        "PATCH",
        "/1.0/instances/v/config",
        Some(r#"{"set":{"limits.memory":"128MiB"}}"#),
    )
    .await;
    let err = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"w","image":"busybox","config":{"limits.disk.read":"1MB"}}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(err.contains("cannot enforce disk I/O limits"), "{err}");
    let (status, _) = sim.send("GET", "/1.0/instances/w", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a refused launch left a VPS");
}

#[tokio::test]
async fn forwards_and_firewalls_reach_the_rules() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    sim.launch("w").await;
    let fwd: Vec<PortForward> = sim
        .ok(
            "POST",
            "/1.0/instances/v/forwards",
            Some(r#"{"protocol":"tcp","host_port":8080,"vps_port":80}"#),
        )
        .await;
    assert_eq!(fwd.len(), 1);
    assert!(
        sim.net.scripts().last().unwrap().contains("8080"),
        "the forward is in the loaded rules"
    );
    let err = sim
        .refused(
            "POST",
            "/1.0/instances/w/forwards",
            Some(r#"{"protocol":"tcp","host_port":8080,"vps_port":80}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(err.contains("already forwarded"), "{err}");
    let err = sim
        .refused(
            "POST",
            "/1.0/instances/w/forwards",
            Some(r#"{"protocol":"tcp","host_port":22,"vps_port":22}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(err.contains("reserved"), "{err}");
    let (status, _) = sim
        .send("DELETE", "/1.0/instances/v/forwards/tcp/8080", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!sim.net.scripts().last().unwrap().contains("8080"));
    sim.refused(
        "DELETE",
        "/1.0/instances/v/forwards/tcp/8080",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;

    let fw: Firewall = sim
        .ok(
            "POST",
            "/1.0/instances/v/firewall/rules",
            Some(r#"{"action":"deny","protocol":"tcp","port":"25","source":"203.0.113.0/24"}"#),
        )
        .await;
    assert_eq!(fw.rules.len(), 1);
    assert!(sim.net.scripts().last().unwrap().contains("203.0.113.0/24"));
    let fw: Firewall = sim.ok("DELETE", "/1.0/instances/v/firewall/rules/1", None).await;
    assert!(fw.rules.is_empty());
    let nets: Vec<Network> = sim.ok("GET", "/1.0/networks", None).await;
    assert_eq!(nets[0].leases.len(), 2);
}

#[tokio::test]
async fn a_restarted_croftd_finds_what_the_simulator_lost() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    sim.launch_with("s", r#","no_start":true"#).await;
    // A new croftd on the same state: its simulator knows no running VPS.
    let Sim { dir, store, .. } = sim;
    let again = Sim::on(dir, store).await;
    let v = again.info("v").await;
    assert_eq!(v.status, Status::Stopped);
    assert_eq!(
        v.last_exit.as_deref(),
        Some("the simulator does not outlive croftd")
    );
    assert_eq!(again.info("s").await.status, Status::Stopped);
    assert_eq!(again.services.backend_kind, "sim");
}

/// Every endpoint's answers to bad input: the status and what the
/// message says, and nothing changed by any of them.
#[tokio::test]
async fn every_endpoint_refuses_bad_input_clearly() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    let before = sim.info("v").await;
    use StatusCode as S;
    let cases: &[(&str, &str, Option<&str>, StatusCode, &str)] = &[
        ("GET", "/1.0/nowhere", None, S::NOT_FOUND, "no such API endpoint"),
        (
            "PUT",
            "/1.0/instances",
            None,
            S::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
        ("GET", "/1.0/instances/UPPER", None, S::BAD_REQUEST, "name"),
        (
            "GET",
            "/1.0/instances/nope",
            None,
            S::NOT_FOUND,
            "VPS nope not found",
        ),
        ("GET", "/1.0/instances/%FF", None, S::BAD_REQUEST, ""),
        (
            "POST",
            "/1.0/instances",
            Some("{"),
            S::BAD_REQUEST,
            "invalid request body",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x"}"#),
            S::UNPROCESSABLE_ENTITY,
            "image",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","bogus":1}"#),
            S::UNPROCESSABLE_ENTITY,
            "bogus",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"-x","image":"busybox"}"#),
            S::BAD_REQUEST,
            "name",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"nosuch"}"#),
            S::NOT_FOUND,
            "unknown image",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"v","image":"busybox"}"#),
            S::CONFLICT,
            "already exists",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","config":{"limits.cpu":"0"}}"#),
            S::BAD_REQUEST,
            "limits.cpu",
        ),
        (
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"stop","wait":true}"#),
            S::BAD_REQUEST,
            "wait applies to start and restart only",
        ),
        (
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"start","wait":true,"wait_timeout":0}"#),
            S::BAD_REQUEST,
            "wait_timeout must be between 1 and 3600",
        ),
        // More CPUs than the host has: refused, not taken silently.
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","config":{"limits.cpu":"512"}}"#),
            S::BAD_REQUEST,
            "limits.cpu=512 is more than this host's",
        ),
        (
            "PATCH",
            "/1.0/instances/v/config",
            Some(r#"{"set":{"limits.cpu":"512"}}"#),
            S::BAD_REQUEST,
            "the admin may allow it: cpu_overcommit",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","ipv4":"10.87.0.2"}"#),
            S::CONFLICT,
            "already in use",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","ipv4":"192.0.2.7"}"#),
            S::BAD_REQUEST,
            "192.0.2.7",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","ipv6":"10.87.0.9"}"#),
            S::BAD_REQUEST,
            "not an IPv6 address",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","ssh_keys":["nonsense"]}"#),
            S::BAD_REQUEST,
            "OpenSSH public key",
        ),
        (
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"x","image":"busybox","user_data":"echo hi"}"#),
            S::BAD_REQUEST,
            "#!",
        ),
        (
            "DELETE",
            "/1.0/instances/v?force=maybe",
            None,
            S::BAD_REQUEST,
            "force",
        ),
        (
            "DELETE",
            "/1.0/instances/v?other=1",
            None,
            S::BAD_REQUEST,
            "other",
        ),
        (
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"fly"}"#),
            S::UNPROCESSABLE_ENTITY,
            "action",
        ),
        (
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"start"}"#),
            S::CONFLICT,
            "not stopped",
        ),
        (
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"stop","timeout":0}"#),
            S::BAD_REQUEST,
            "timeout",
        ),
        (
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"stop","rescue":true}"#),
            S::BAD_REQUEST,
            "rescue applies to start and restart only",
        ),
        (
            "POST",
            "/1.0/instances/v/state",
            Some(r#"{"action":"start","rescue_image":"busybox"}"#),
            S::BAD_REQUEST,
            "rescue_image needs rescue",
        ),
        (
            "POST",
            "/1.0/instances/v/rebuild",
            Some(r#"{"image":"nosuch"}"#),
            S::NOT_FOUND,
            "unknown image",
        ),
        (
            "POST",
            "/1.0/instances/nope/rebuild",
            Some(r#"{"image":"busybox"}"#),
            S::NOT_FOUND,
            "VPS nope",
        ),
        (
            "POST",
            "/1.0/instances/v/copy",
            Some(r#"{"name":"w"}"#),
            S::BAD_REQUEST,
            "dir storage driver",
        ),
        (
            "GET",
            "/1.0/instances/nope/console",
            None,
            S::NOT_FOUND,
            "VPS nope",
        ),
        (
            "GET",
            "/1.0/instances/nope/snapshots",
            None,
            S::NOT_FOUND,
            "VPS nope",
        ),
        (
            "POST",
            "/1.0/instances/v/snapshots",
            Some(r#"{"name":"..bad"}"#),
            S::BAD_REQUEST,
            "snapshot",
        ),
        (
            "POST",
            "/1.0/instances/v/snapshots",
            Some(r#"{"name":"s1"}"#),
            S::BAD_REQUEST,
            "dir storage driver cannot",
        ),
        (
            "DELETE",
            "/1.0/instances/v/snapshots/s1",
            None,
            S::NOT_FOUND,
            "snapshot s1 of v",
        ),
        (
            "POST",
            "/1.0/instances/v/snapshots/s1/restore",
            Some(r#"{"stop":false}"#),
            S::NOT_FOUND,
            "snapshot s1",
        ),
        (
            "GET",
            "/1.0/instances/v/snapshots/s1/export",
            None,
            S::NOT_FOUND,
            "snapshot s1 of v",
        ),
        (
            "GET",
            "/1.0/instances/v/snapshots/s1/export?to=/etc/passwd",
            None,
            S::BAD_REQUEST,
            "to",
        ),
        // No request names a file on croftd's host any more.
        (
            "POST",
            "/1.0/instances/v/snapshots/s1/export",
            Some(r#"{"path":"/tmp/x"}"#),
            S::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
        (
            "POST",
            "/1.0/instances/v/snapshots",
            Some(r#"{"from_file":"/etc/shadow"}"#),
            S::UNPROCESSABLE_ENTITY,
            "from_file",
        ),
        (
            "POST",
            "/1.0/instances/v/snapshots",
            Some("STREAM:not a send stream"),
            S::BAD_REQUEST,
            "dir storage driver cannot import snapshots",
        ),
        (
            "POST",
            "/1.0/instances/v/snapshots?name=../x",
            Some("STREAM:x"),
            S::BAD_REQUEST,
            "snapshot",
        ),
        (
            "POST",
            "/1.0/instances/nope/snapshots",
            Some("STREAM:x"),
            S::NOT_FOUND,
            "VPS nope",
        ),
        (
            "POST",
            "/1.0/images/import",
            Some(r#"{"name":"mine","path":"/x.tar"}"#),
            S::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
        (
            "POST",
            "/1.0/images?name=mine",
            Some(r#"{"path":"/x.tar"}"#),
            S::BAD_REQUEST,
            "send the tarball as the body",
        ),
        ("POST", "/1.0/images", Some("STREAM:x"), S::BAD_REQUEST, "name"),
        (
            "POST",
            "/1.0/images?name=a%20b",
            Some("STREAM:x"),
            S::BAD_REQUEST,
            "image name",
        ),
        (
            "POST",
            "/1.0/images?name=busybox",
            Some("STREAM:x"),
            S::CONFLICT,
            "already exists",
        ),
        (
            "POST",
            "/1.0/images?name=mine",
            Some("STREAM:x"),
            S::BAD_REQUEST,
            "dir storage driver",
        ),
        (
            "GET",
            "/1.0/images/busybox/export",
            None,
            S::NOT_FOUND,
            "launch it once",
        ),
        (
            "POST",
            "/1.0/images/busybox/export",
            Some(r#"{"path":"/tmp/x.tar"}"#),
            S::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
        (
            "POST",
            "/1.0/instances/v/forwards",
            Some(r#"{"protocol":"sctp","host_port":80,"vps_port":80}"#),
            S::BAD_REQUEST,
            "sctp",
        ),
        (
            "POST",
            "/1.0/instances/v/forwards",
            Some(r#"{"protocol":"tcp","host_port":0,"vps_port":80}"#),
            S::BAD_REQUEST,
            "port",
        ),
        (
            "DELETE",
            "/1.0/instances/v/forwards/tcp/http",
            None,
            S::BAD_REQUEST,
            "invalid port",
        ),
        (
            "POST",
            "/1.0/instances/v/firewall/rules",
            Some(r#"{"action":"maybe","protocol":"tcp"}"#),
            S::BAD_REQUEST,
            "maybe",
        ),
        (
            "POST",
            "/1.0/instances/v/firewall/rules",
            Some(r#"{"action":"allow","protocol":"tcp","source":"300.1.1.1/8"}"#),
            S::BAD_REQUEST,
            "300.1.1.1",
        ),
        (
            "DELETE",
            "/1.0/instances/v/firewall/rules/one",
            None,
            S::BAD_REQUEST,
            "invalid rule number",
        ),
        (
            "DELETE",
            "/1.0/instances/v/firewall/rules/7",
            None,
            S::NOT_FOUND,
            "firewall rule 7",
        ),
        ("GET", "/1.0/networks/nope", None, S::NOT_FOUND, "network nope"),
        ("GET", "/1.0/images/nosuch", None, S::NOT_FOUND, "image nosuch"),
        ("GET", "/1.0/images/a%20b", None, S::BAD_REQUEST, ""),
        (
            "POST",
            "/1.0/images/build",
            Some(r#"{"name":"nosuch"}"#),
            S::NOT_FOUND,
            "unknown image",
        ),
        (
            "POST",
            "/1.0/images/build",
            Some(r#"{"name":"busybox"}"#),
            S::BAD_REQUEST,
            "dir storage driver",
        ),
        (
            "PATCH",
            "/1.0/instances/v/config",
            Some(r#"{"set":{"features.nesting":"true"}}"#),
            S::BAD_REQUEST,
            "features.nesting cannot be switched on here: the simulated backend",
        ),
        (
            "POST",
            "/1.0/images/refresh",
            Some(r#"{"name":"nosuch"}"#),
            S::NOT_FOUND,
            "unknown image",
        ),
        (
            "POST",
            "/1.0/images/refresh",
            Some(r#"{"name":"debian/bookworm"}"#),
            S::BAD_REQUEST,
            "cannot refresh them; use btrfs",
        ),
        (
            "POST",
            "/1.0/instances/nope/publish",
            Some(r#"{"image":"mine"}"#),
            S::NOT_FOUND,
            "VPS nope",
        ),
        (
            "POST",
            "/1.0/instances/v/publish",
            Some(r#"{"image":"Not An Image"}"#),
            S::BAD_REQUEST,
            "invalid image name",
        ),
        (
            "POST",
            "/1.0/instances/v/publish",
            Some(r#"{"image":"mine","description":"two\nlines"}"#),
            S::BAD_REQUEST,
            "one line",
        ),
        (
            "POST",
            "/1.0/instances/v/publish",
            Some(r#"{"image":"mine","snapshot":"s1"}"#),
            S::NOT_FOUND,
            "snapshot s1 of v",
        ),
        (
            "POST",
            "/1.0/instances/v/publish",
            Some(r#"{"image":"mine"}"#),
            S::CONFLICT,
            "v is running: stop it first, or publish a snapshot of it",
        ),
        ("DELETE", "/1.0/images/nosuch", None, S::NOT_FOUND, "image nosuch"),
        (
            "GET",
            "/1.0/storage-pools/nope",
            None,
            S::NOT_FOUND,
            "storage pool nope",
        ),
        ("GET", "/1.0/jobs/nope", None, S::NOT_FOUND, "job \"nope\""),
        (
            "GET",
            "/1.0/jobs/nope/wait?timeout=x",
            None,
            S::BAD_REQUEST,
            "timeout",
        ),
    ];
    for (method, path, body, want, says) in cases {
        let err = sim.refused(method, path, *body, *want).await;
        assert!(
            err.contains(says),
            "{method} {path} {body:?}: {err:?} does not say {says:?}"
        );
    }
    let mut after = sim.info("v").await;
    after.usage = before.usage.clone();
    assert_eq!(after, before, "the VPS is as it was");
    let list: Vec<Instance> = sim.ok("GET", "/1.0/instances", None).await;
    assert_eq!(list.len(), 1, "nothing was created");
    assert_eq!(sim.store.nics().await.unwrap().len(), 1);
}

/// The disk directory of VPS `key` in the simulator's dir pool.
fn disk_dir(sim: &Sim, key: &str) -> std::path::PathBuf {
    sim.dir
        .path()
        .join("state/storage-pools/default/containers")
        .join(key)
}

#[tokio::test]
async fn a_cancelled_launch_stops_at_its_next_step_and_leaves_nothing() {
    let sim = Sim::new().await;
    let hold = sim.backend.hold_disks();
    let job: Job = sim
        .ok(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"slow","image":"busybox"}"#),
        )
        .await;
    hold.reached().await;
    // Asked while its disk is being made: the job answers as it is now.
    let (status, body) = sim.send("DELETE", &format!("/1.0/jobs/{}", job.id), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&body));
    let asked: Job = serde_json::from_slice(&body).unwrap();
    assert_eq!(asked.status, JobStatus::Running);
    hold.release();
    let ended = sim.wait_job(&job).await;
    assert_eq!(ended.status, JobStatus::Cancelled, "{ended:?}");
    assert!(ended.error.as_deref().unwrap().contains("undone"), "{ended:?}");
    // Nothing of it is left: no record, no address, no disk.
    sim.refused("GET", "/1.0/instances/slow", None, StatusCode::NOT_FOUND)
        .await;
    assert!(sim.store.instances().await.unwrap().is_empty());
    assert!(sim.store.nics().await.unwrap().is_empty());
    assert!(!disk_dir(&sim, "slow").exists());
    // An ended job cannot be cancelled again; an unknown one is not found.
    let msg = sim
        .refused(
            "DELETE",
            &format!("/1.0/jobs/{}", job.id),
            None,
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("has ended (cancelled)"), "{msg}");
    sim.refused("DELETE", "/1.0/jobs/nope", None, StatusCode::NOT_FOUND)
        .await;
    // The cancel is in the audit log; the name and address are free again.
    let audit: Vec<croft_api::AuditEntry> = sim.ok("GET", "/1.0/audit", None).await;
    assert!(
        audit
            .iter()
            .any(|e| e.method == "DELETE" && e.path == format!("/1.0/jobs/{}", job.id)),
        "{audit:?}"
    );
    let again = sim.launch("slow").await;
    assert_eq!(again.nic.unwrap().ipv4.as_deref(), Some("10.87.0.2"));
}

#[tokio::test]
async fn a_cancelled_rebuild_keeps_the_old_disk_and_runs_again() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    let marker = disk_dir(&sim, "v").join("rootfs/kept");
    std::fs::write(&marker, "the old disk").unwrap();
    let hold = sim.backend.hold_disks();
    let job: Job = sim
        .ok("POST", "/1.0/instances/v/rebuild", Some(r#"{"image":"busybox"}"#))
        .await;
    hold.reached().await;
    // Stopped for the rebuild while the new disk is made.
    assert_eq!(sim.info("v").await.status, Status::Stopped);
    let (status, _) = sim.send("DELETE", &format!("/1.0/jobs/{}", job.id), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    hold.release();
    let ended = sim.wait_job(&job).await;
    assert_eq!(ended.status, JobStatus::Cancelled, "{ended:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "the old disk");
    let vps = sim.info("v").await;
    assert_eq!(vps.status, Status::Running, "{vps:?}");
    // No half-made replacement disk is left beside it.
    let left: Vec<_> = std::fs::read_dir(disk_dir(&sim, "v"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["rootfs"], "{left:?}");
}

#[tokio::test]
async fn a_job_past_its_last_step_finishes_and_only_its_tenants_may_cancel() {
    let sim = Sim::new().await;
    let done = sim.launch_with("v", "").await;
    assert_eq!(done.status, JobStatus::Success);
    let msg = sim
        .refused(
            "DELETE",
            &format!("/1.0/jobs/{}", done.id),
            None,
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("has ended (succeeded)"), "{msg}");
    // Another tenant's running job is not found for a tenant's owner, and
    // a viewer of the job's own tenant may not cancel it.
    sim.ok::<serde_json::Value>("POST", "/1.0/tenants", Some(r#"{"name":"acme"}"#))
        .await;
    sim.ok::<serde_json::Value>("POST", "/1.0/tenants", Some(r#"{"name":"beta"}"#))
        .await;
    let token = |tenant: &'static str, scope: &'static str| {
        let sim = &sim;
        async move {
            let body = format!(r#"{{"scope":"{scope}"}}"#);
            let created: croft_api::TokenCreated = sim
                .ok("POST", &format!("/1.0/tokens?tenant={tenant}"), Some(&body))
                .await;
            created.token
        }
    };
    let beta_owner = token("beta", "read-write").await;
    let acme_viewer = token("acme", "read").await;
    let hold = sim.backend.hold_disks();
    let job: Job = sim
        .ok(
            "POST",
            "/1.0/instances?tenant=acme",
            Some(r#"{"name":"w","image":"busybox"}"#),
        )
        .await;
    hold.reached().await;
    let path = format!("/1.0/jobs/{}", job.id);
    let (status, _) = sim.send_as(Some(&beta_owner), "DELETE", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = sim.send_as(Some(&acme_viewer), "DELETE", &path, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    hold.release();
    // Neither stopped it.
    assert_eq!(sim.wait_job(&job).await.status, JobStatus::Success);
}

/// The OpenAPI document served is generated from the code and covers the
/// route table exactly, each operation with the action the guard checks;
/// `docs/openapi.json` is a copy of it, kept equal here
/// (`CROFT_WRITE_OPENAPI=1 cargo test -p croftd --test api openapi`
/// rewrites it after a change of the API).
#[tokio::test]
async fn the_openapi_document_covers_every_endpoint_and_matches_the_committed_copy() {
    let sim = Sim::new().await;
    let doc: serde_json::Value = sim.ok("GET", "/1.0/openapi.json", None).await;
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let routed: std::collections::BTreeSet<(String, String)> = sim
        .table
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes without a #[utoipa::path] in openapi.rs: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
    let mut ids = std::collections::BTreeSet::new();
    for endpoint in &sim.table {
        let operation = &doc["paths"][endpoint.path][endpoint.method.as_str().to_ascii_lowercase()];
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(ids.insert(id.to_string()), "operationId {id:?} twice");
        let what = format!("{} {}", endpoint.method, endpoint.path);
        assert_eq!(operation["x-croft-action"], endpoint.action.name(), "{what}");
        let roles: Vec<&str> = endpoint.action.roles().iter().map(|r| r.as_str()).collect();
        assert_eq!(operation["x-croft-roles"], serde_json::json!(roles), "{what}");
        // Every `{parameter}` of the path is described, and errors have
        // their body.
        for name in endpoint
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            assert!(
                operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path")),
                "{what}: no parameter {name}"
            );
        }
        assert_eq!(
            operation["responses"]["default"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{what}"
        );
    }
    // Every schema an operation refers to is in the document.
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(doc["components"]["schemas"][name].is_object(), "no schema {name}");
    }
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("CROFT_WRITE_OPENAPI").is_some() {
        std::fs::write(&committed, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&committed).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/openapi.json differs from the API in the code: rewrite it with \
         CROFT_WRITE_OPENAPI=1 cargo test -p croftd --test api openapi, and review the change"
    );
}

/// The rules `croft firewall list` shows, as `direction action port`.
async fn rules_of(sim: &Sim, name: &str) -> Vec<String> {
    let fw: Firewall = sim
        .ok("GET", &format!("/1.0/instances/{name}/firewall"), None)
        .await;
    fw.rules
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.direction,
                r.action,
                r.port.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

#[tokio::test]
async fn firewall_rules_go_both_ways_in_the_order_given_and_one_vps_change_loads_its_chains_only() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    sim.launch("w").await;
    let add = |body: &'static str, at: &'static str| {
        let sim = &sim;
        async move {
            let _: Firewall = sim
                .ok(
                    "POST",
                    &format!("/1.0/instances/v/firewall/rules{at}"),
                    Some(body),
                )
                .await;
        }
    };
    add(r#"{"action":"allow","protocol":"tcp","port":"80"}"#, "").await;
    add(
        r#"{"direction":"out","action":"deny","protocol":"tcp","port":"25","destination":"192.0.2.0/24"}"#,
        "",
    )
    .await;
    // A deny inserted before the allow: matched first.
    add(
        r#"{"action":"deny","protocol":"tcp","port":"80","source":"198.51.100.7"}"#,
        "?position=1",
    )
    .await;
    assert_eq!(
        rules_of(&sim, "v").await,
        ["in deny 80", "in allow 80", "out deny 25"]
    );
    // The change loaded v's two chains, nothing of w's, and no reload.
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(loaded.starts_with("flush chain inet croft in_crv0\n"), "{loaded}");
    assert!(
        loaded.contains("add rule inet croft in_crv0 ip saddr 198.51.100.7/32 tcp dport 80 drop\nadd rule inet croft in_crv0 tcp dport 80 accept"),
        "{loaded}"
    );
    assert!(
        loaded.contains("add rule inet croft out_crv0 ip daddr 192.0.2.0/24 tcp dport 25 drop"),
        "{loaded}"
    );
    assert!(!loaded.contains("crv1") && !loaded.contains("table"), "{loaded}");
    // Moved and replaced in place.
    let _: Firewall = sim
        .ok(
            "POST",
            "/1.0/instances/v/firewall/rules/3/move",
            Some(r#"{"to":1}"#),
        )
        .await;
    let _: Firewall = sim
        .ok(
            "PUT",
            "/1.0/instances/v/firewall/rules/2",
            Some(r#"{"action":"allow","protocol":"tcp","port":"443"}"#),
        )
        .await;
    assert_eq!(
        rules_of(&sim, "v").await,
        ["out deny 25", "in allow 443", "in allow 80"]
    );
    // Outbound default deny: on the outbound chain only.
    sim.ok::<Instance>(
        "PATCH",
        "/1.0/instances/v/config",
        Some(r#"{"set":{"firewall.default_out":"deny"}}"#),
    )
    .await;
    let loaded = sim.net.scripts().last().unwrap().clone();
    let out: Vec<&str> = loaded
        .lines()
        .filter_map(|l| l.strip_prefix("add rule inet croft out_crv0 "))
        .collect();
    assert_eq!(out.last(), Some(&"drop"), "{loaded}");
    let fw: Firewall = sim.ok("GET", "/1.0/instances/v/firewall", None).await;
    assert_eq!((fw.default.as_str(), fw.default_out.as_str()), ("allow", "deny"));
    assert_eq!(fw.provider_blocked, ["tcp/25"]);

    // Bad input: a clear 4xx and nothing changed.
    let before = rules_of(&sim, "v").await;
    let scripts = sim.net.scripts().len();
    for (path, method, body, want, says) in [
        (
            "/1.0/instances/v/firewall/rules/9/move",
            "POST",
            r#"{"to":1}"#,
            StatusCode::NOT_FOUND,
            "firewall rule 9 (there are 3)",
        ),
        (
            "/1.0/instances/v/firewall/rules/1/move",
            "POST",
            r#"{"to":0}"#,
            StatusCode::NOT_FOUND,
            "firewall rule 0",
        ),
        (
            "/1.0/instances/v/firewall/rules?position=5",
            "POST",
            r#"{"action":"allow","protocol":"tcp"}"#,
            StatusCode::NOT_FOUND,
            "firewall rule 5",
        ),
        (
            "/1.0/instances/v/firewall/rules/4",
            "PUT",
            r#"{"action":"allow","protocol":"tcp"}"#,
            StatusCode::NOT_FOUND,
            "firewall rule 4",
        ),
        (
            "/1.0/instances/v/firewall/rules",
            "POST",
            r#"{"direction":"sideways","action":"allow","protocol":"tcp"}"#,
            StatusCode::BAD_REQUEST,
            "unknown direction",
        ),
        (
            "/1.0/instances/v/firewall/rules",
            "POST",
            r#"{"direction":"out","action":"allow","protocol":"tcp","source":"192.0.2.1"}"#,
            StatusCode::BAD_REQUEST,
            "destination",
        ),
        (
            "/1.0/instances/v/firewall/rules",
            "POST",
            r#"{"action":"allow","protocol":"tcp","destination":"192.0.2.1"}"#,
            StatusCode::BAD_REQUEST,
            "source",
        ),
        (
            "/1.0/instances/v/firewall/rules/1",
            "PUT",
            r#"{"action":"maybe","protocol":"tcp"}"#,
            StatusCode::BAD_REQUEST,
            "unknown action",
        ),
        (
            "/1.0/instances/v/firewall/rules/x/move",
            "POST",
            r#"{"to":1}"#,
            StatusCode::BAD_REQUEST,
            "invalid rule number",
        ),
    ] {
        let msg = sim.refused(method, path, Some(body), want).await;
        assert!(msg.contains(says), "{method} {path}: {msg}");
    }
    assert_eq!(rules_of(&sim, "v").await, before);
    assert_eq!(sim.net.scripts().len(), scripts, "nothing was loaded");
    // Rules the host refuses to load are undone.
    sim.net.fail_next_apply("Error: Could not process rule");
    sim.refused(
        "POST",
        "/1.0/instances/v/firewall/rules",
        Some(r#"{"action":"deny","protocol":"udp"}"#),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert_eq!(rules_of(&sim, "v").await, before);
}

#[tokio::test]
async fn only_the_admin_exempts_a_vps_from_the_providers_rules() {
    let sim = Sim::new().await;
    sim.ok::<serde_json::Value>("POST", "/1.0/tenants", Some(r#"{"name":"acme"}"#))
        .await;
    let owner: croft_api::TokenCreated = sim
        .ok(
            "POST",
            "/1.0/tokens?tenant=acme",
            Some(r#"{"scope":"read-write"}"#),
        )
        .await;
    let owner = owner.token.as_str();
    let job: Job = sim
        .ok(
            "POST",
            "/1.0/instances?tenant=acme",
            Some(r#"{"name":"mail","image":"busybox"}"#),
        )
        .await;
    assert_eq!(sim.wait_job(&job).await.status, JobStatus::Success);
    let exempt = r#"{"set":{"firewall.provider_exempt":"true"}}"#;
    let (status, body) = sim
        .send_as(Some(owner), "PATCH", "/1.0/instances/mail/config", Some(exempt))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("needs the role admin"));
    let launch = r#"{"name":"mail2","image":"busybox","config":{"firewall.provider_exempt":"true"}}"#;
    let (status, _) = sim
        .send_as(Some(owner), "POST", "/1.0/instances", Some(launch))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nor a MAC of the owner's choosing (it could be the gateway's).
    let launch = r#"{"name":"mail2","image":"busybox","mac":"0e:cf:12:00:00:01"}"#;
    let (status, body) = sim
        .send_as(Some(owner), "POST", "/1.0/instances", Some(launch))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("may not choose a VPS's MAC"));
    let (status, _) = sim.send("GET", "/1.0/instances/mail2?tenant=acme", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let fw: Firewall = sim
        .ok("GET", "/1.0/instances/mail/firewall?tenant=acme", None)
        .await;
    assert_eq!(fw.provider_blocked, ["tcp/25"]);
    // The admin lifts it: the VPS's addresses join the exemption sets.
    sim.ok::<Instance>("PATCH", "/1.0/instances/mail/config?tenant=acme", Some(exempt))
        .await;
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(
        loaded.contains("set provider_exempt4 {\n    type ipv4_addr\n    elements = { 10.87.0.2 }"),
        "{loaded}"
    );
    let fw: Firewall = sim
        .ok("GET", "/1.0/instances/mail/firewall?tenant=acme", None)
        .await;
    assert!(fw.provider_blocked.is_empty());
    // A tenant may still take it away, and a copy does not inherit it.
    let (status, _) = sim
        .send_as(
            Some(owner),
            "PATCH",
            "/1.0/instances/mail/config",
            Some(r#"{"unset":["firewall.provider_exempt"]}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn traffic_is_counted_per_month_kept_across_a_restart_and_held_to_the_quota() {
    use croft_host::net::LinkCounters;
    let sim = Sim::new().await;
    let job = sim
        .launch_with(
            "v",
            r#","config":{"limits.transfer":"10MiB","limits.egress":"50Mbit"}"#,
        )
        .await;
    assert_eq!(job.status, JobStatus::Success, "{job:?}");
    let port = sim.info("v").await.nic.unwrap().host_interface;
    // This month (the views show it), and a later one.
    let now = croftd::service::instances::traffic::this_month();
    let later = "2999-01";
    const MIB: u64 = 1 << 20;
    // The host end receives what the VPS sends.
    let moved = |sent: u64, received: u64| LinkCounters {
        index: 7,
        rx_bytes: sent,
        tx_bytes: received,
        rx_packets: sent / 1000,
        tx_packets: received / 1000,
        ..Default::default()
    };
    sim.net.set_counters(&port, moved(3 * MIB, MIB));
    sim.services.instances.sample_traffic(&now).await.unwrap();
    let t = sim.info("v").await.traffic.unwrap();
    assert_eq!((t.month.sent_bytes, t.month.received_bytes), (3 * MIB, MIB));
    assert_eq!(
        (t.quota_bytes, t.over_quota, t.throttled),
        (Some(10 * MIB), false, false)
    );
    assert_eq!(sim.net.bandwidth(&port), Some((None, Some(50_000_000))));

    // Past the quota: throttled each way, the slower limit kept.
    sim.net.set_counters(&port, moved(8 * MIB, 3 * MIB));
    sim.services.instances.sample_traffic(&now).await.unwrap();
    let t = sim.info("v").await.traffic.unwrap();
    assert_eq!(
        (t.month.sent_bytes, t.over_quota, t.throttled),
        (8 * MIB, true, true)
    );
    assert_eq!(
        sim.net.bandwidth(&port),
        Some((Some(10_000_000), Some(10_000_000)))
    );
    // A faster limit set meanwhile does not lift the throttle.
    sim.ok::<Instance>(
        "PATCH",
        "/1.0/instances/v/config",
        Some(r#"{"set":{"limits.egress":"40Mbit"}}"#),
    )
    .await;
    assert_eq!(
        sim.net.bandwidth(&port),
        Some((Some(10_000_000), Some(10_000_000)))
    );
    sim.ok::<Instance>(
        "PATCH",
        "/1.0/instances/v/config",
        Some(r#"{"set":{"limits.egress":"50Mbit"}}"#),
    )
    .await;

    // croftd restarts (the simulator forgets the VPS ran; it starts again
    // on the same interface): only what moved since the last reading is
    // added.
    let Sim { dir, store, .. } = sim;
    let sim = Sim::on(dir, store).await;
    sim.state("v", r#"{"action":"start"}"#).await;
    sim.net.set_counters(&port, moved(9 * MIB, 3 * MIB));
    sim.services.instances.sample_traffic(&now).await.unwrap();
    let t = sim.info("v").await.traffic.unwrap();
    assert_eq!((t.month.sent_bytes, t.month.received_bytes), (9 * MIB, 3 * MIB));
    assert!(t.throttled);
    // A new month starts from zero, and sets it free.
    sim.net.set_counters(&port, moved(9 * MIB + MIB / 2, 3 * MIB));
    sim.services.instances.sample_traffic(later).await.unwrap();
    assert_eq!(sim.net.bandwidth(&port), Some((None, Some(50_000_000))));
    let months: Vec<croft_api::Traffic> = sim.ok("GET", "/1.0/instances/v/traffic", None).await;
    let sent: Vec<(&str, u64)> = months.iter().map(|t| (t.month.as_str(), t.sent_bytes)).collect();
    assert_eq!(sent, [(later, MIB / 2), (now.as_str(), 9 * MIB)]);

    // Report only: past the quota, nothing is throttled.
    sim.ok::<Instance>(
        "PATCH",
        "/1.0/instances/v/config",
        Some(r#"{"set":{"limits.transfer":"1MiB","limits.transfer.action":"report"}}"#),
    )
    .await;
    sim.net.set_counters(&port, moved(11 * MIB, 3 * MIB));
    sim.services.instances.sample_traffic(later).await.unwrap();
    assert_eq!(sim.net.bandwidth(&port), Some((None, Some(50_000_000))));
    for (body, says) in [
        (r#"{"set":{"limits.transfer":"1k"}}"#, "at least 1MiB"),
        (
            r#"{"set":{"limits.transfer.action":"maybe"}}"#,
            "throttle or report",
        ),
        (r#"{"set":{"limits.transfer.throttle":"1bit"}}"#, "between 64kbit"),
    ] {
        let msg = sim
            .refused(
                "PATCH",
                "/1.0/instances/v/config",
                Some(body),
                StatusCode::BAD_REQUEST,
            )
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
}

#[tokio::test]
async fn a_security_group_is_defined_once_attached_to_many_and_changes_load_its_members_only() {
    let sim = Sim::new().await;
    for vps in ["a", "b", "c"] {
        sim.launch(vps).await;
    }
    let g: croft_api::FirewallGroup = sim
        .ok(
            "POST",
            "/1.0/firewall-groups",
            Some(r#"{"name":"web","description":"the web"}"#),
        )
        .await;
    assert!(g.rules.is_empty() && g.members.is_empty());
    let _: croft_api::FirewallGroup = sim
        .ok(
            "POST",
            "/1.0/firewall-groups/web/rules",
            Some(r#"{"action":"allow","protocol":"tcp","port":"443"}"#),
        )
        .await;
    // Own rules first, then the group's.
    let _: Firewall = sim
        .ok(
            "POST",
            "/1.0/instances/a/firewall/rules",
            Some(r#"{"action":"deny","protocol":"tcp","port":"443","source":"203.0.113.9"}"#),
        )
        .await;
    for vps in ["a", "b"] {
        let fw: Firewall = sim
            .ok(
                "POST",
                &format!("/1.0/instances/{vps}/firewall/groups"),
                Some(r#"{"group":"web"}"#),
            )
            .await;
        assert_eq!(fw.groups, ["web"]);
    }
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(
        loaded.contains("add rule inet croft in_crv1 tcp dport 443 accept"),
        "{loaded}"
    );
    let fw: Firewall = sim.ok("GET", "/1.0/instances/a/firewall", None).await;
    assert_eq!(fw.groups, ["web"]);
    // A group change loads its two members' chains in one go, and nothing
    // of c's.
    let before = sim.net.scripts().len();
    let g: croft_api::FirewallGroup = sim
        .ok(
            "POST",
            "/1.0/firewall-groups/web/rules?position=1",
            Some(r#"{"action":"deny","protocol":"tcp","port":"443","source":"198.51.100.0/24"}"#),
        )
        .await;
    assert_eq!(g.members, ["a", "b"]);
    assert_eq!(sim.net.scripts().len(), before + 1);
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(
        loaded.contains(
            "add rule inet croft in_crv0 ip saddr 203.0.113.9/32 tcp dport 443 drop\n\
             add rule inet croft in_crv0 ip saddr 198.51.100.0/24 tcp dport 443 drop\n\
             add rule inet croft in_crv0 tcp dport 443 accept"
        ),
        "{loaded}"
    );
    assert!(loaded.contains("flush chain inet croft in_crv1"));
    assert!(!loaded.contains("crv2"), "{loaded}");

    // Bad input, and what is attached stays.
    let msg = sim
        .refused("DELETE", "/1.0/firewall-groups/web", None, StatusCode::CONFLICT)
        .await;
    assert!(msg.contains("attached to a, b"), "{msg}");
    let msg = sim
        .refused(
            "POST",
            "/1.0/firewall-groups",
            Some(r#"{"name":"web"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("already in use"), "{msg}");
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/a/firewall/groups",
            Some(r#"{"group":"web"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("attached already"), "{msg}");
    sim.refused(
        "POST",
        "/1.0/instances/c/firewall/groups",
        Some(r#"{"group":"nope"}"#),
        StatusCode::NOT_FOUND,
    )
    .await;
    sim.refused(
        "DELETE",
        "/1.0/firewall-groups/web/rules/9",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    sim.refused(
        "POST",
        "/1.0/firewall-groups",
        Some(r#"{"name":"../x"}"#),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Another tenant neither sees nor attaches it.
    sim.ok::<serde_json::Value>("POST", "/1.0/tenants", Some(r#"{"name":"acme"}"#))
        .await;
    let owner: croft_api::TokenCreated = sim
        .ok(
            "POST",
            "/1.0/tokens?tenant=acme",
            Some(r#"{"scope":"read-write"}"#),
        )
        .await;
    let (status, body) = sim
        .send_as(Some(&owner.token), "GET", "/1.0/firewall-groups", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8_lossy(&body), "[]");
    let (status, _) = sim
        .send_as(Some(&owner.token), "GET", "/1.0/firewall-groups/web", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Detached from both, it can go.
    for vps in ["a", "b"] {
        let fw: Firewall = sim
            .ok(
                "DELETE",
                &format!("/1.0/instances/{vps}/firewall/groups/web"),
                None,
            )
            .await;
        assert!(fw.groups.is_empty());
    }
    let (status, _) = sim.send("DELETE", "/1.0/firewall-groups/web", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_groups_rules_count_once_against_the_tenants_firewall_rule_quota() {
    let sim = Sim::new().await;
    sim.ok::<serde_json::Value>("POST", "/1.0/tenants", Some(r#"{"name":"acme"}"#))
        .await;
    sim.ok::<serde_json::Value>("PUT", "/1.0/tenants/acme/quota", Some(r#"{"firewall_rules":2}"#))
        .await;
    let _: croft_api::FirewallGroup = sim
        .ok(
            "POST",
            "/1.0/firewall-groups?tenant=acme",
            Some(r#"{"name":"g"}"#),
        )
        .await;
    let rule = r#"{"action":"allow","protocol":"tcp","port":"80"}"#;
    for _ in 0..2 {
        let _: croft_api::FirewallGroup = sim
            .ok("POST", "/1.0/firewall-groups/g/rules?tenant=acme", Some(rule))
            .await;
    }
    let msg = sim
        .refused(
            "POST",
            "/1.0/firewall-groups/g/rules?tenant=acme",
            Some(rule),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("quota"), "{msg}");
    let usage: croft_api::TenantUsage = sim.ok("GET", "/1.0/tenants/acme/usage", None).await;
    assert_eq!(usage.used.firewall_rules, 2);
}

#[tokio::test]
async fn forwards_take_port_ranges_that_never_overlap_and_only_the_admin_forces_a_reserved_port() {
    let sim = Sim::new().await;
    sim.launch("v").await;
    sim.launch("w").await;
    let fwd: Vec<PortForward> = sim
        .ok(
            "POST",
            "/1.0/instances/v/forwards",
            Some(r#"{"protocol":"udp","host_port":6000,"vps_port":6000,"host_port_end":6100}"#),
        )
        .await;
    assert_eq!(fwd[0].host_ports(), (6000, 6100));
    assert!(sim
        .net
        .scripts()
        .last()
        .unwrap()
        .contains("udp dport 6000-6100 dnat ip to 10.87.0.2\n"));
    // Overlaps, either way, are refused with what holds the port.
    for body in [
        r#"{"protocol":"udp","host_port":6100,"vps_port":6100}"#,
        r#"{"protocol":"udp","host_port":5990,"vps_port":5990,"host_port_end":6000}"#,
    ] {
        let msg = sim
            .refused(
                "POST",
                "/1.0/instances/w/forwards",
                Some(body),
                StatusCode::CONFLICT,
            )
            .await;
        assert!(
            msg.contains("host ports 6000-6100/udp is already forwarded"),
            "{msg}"
        );
    }
    // Another protocol's ports are its own.
    let _: Vec<PortForward> = sim
        .ok(
            "POST",
            "/1.0/instances/w/forwards",
            Some(r#"{"protocol":"tcp","host_port":6050,"vps_port":80}"#),
        )
        .await;
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/w/forwards",
            Some(r#"{"protocol":"tcp","host_port":20,"vps_port":20,"host_port_end":30}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("host port 22 is reserved"), "{msg}");
    // A tenant may not force; the admin may.
    sim.ok::<serde_json::Value>("POST", "/1.0/tenants", Some(r#"{"name":"acme"}"#))
        .await;
    let owner: croft_api::TokenCreated = sim
        .ok(
            "POST",
            "/1.0/tokens?tenant=acme",
            Some(r#"{"scope":"read-write"}"#),
        )
        .await;
    let job: Job = sim
        .ok(
            "POST",
            "/1.0/instances?tenant=acme",
            Some(r#"{"name":"t","image":"busybox"}"#),
        )
        .await;
    sim.wait_job(&job).await;
    let ssh = r#"{"protocol":"tcp","host_port":22,"vps_port":22}"#;
    let (status, body) = sim
        .send_as(
            Some(&owner.token),
            "POST",
            "/1.0/instances/t/forwards?force=true",
            Some(ssh),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let forced: Vec<PortForward> = sim
        .ok(
            "POST",
            "/1.0/instances/t/forwards?tenant=acme&force=true",
            Some(ssh),
        )
        .await;
    assert_eq!(forced[0].host_port, 22);
    // A range counts each of its ports against the quota; this one port.
    let usage: croft_api::TenantUsage = sim.ok("GET", "/1.0/tenants/acme/usage", None).await;
    assert_eq!(usage.used.port_forwards, 1);
}

#[tokio::test]
async fn networks_of_their_own_get_addresses_rules_and_clear_errors() {
    let sim = Sim::new().await;
    let made: Network = sim
        .ok(
            "POST",
            "/1.0/networks",
            Some(r#"{"name":"lan2","ipv4":"10.88.0.1/24","ipv6":"fd00:88::1/64"}"#),
        )
        .await;
    assert_eq!((made.kind.as_str(), made.bridge.as_str()), ("nat", "croftbr1"));
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(
        loaded.contains("oifname != \"croftbr1\" ip saddr 10.88.0.0/24 ip daddr != 10.88.0.0/24 masquerade"),
        "{loaded}"
    );
    assert!(
        loaded.contains("iifname \"croftbr1\" oifname { \"croftbr0\" } drop"),
        "{loaded}"
    );
    let job = sim.launch_with("v2", r#","network":"lan2""#).await;
    assert_eq!(job.status, JobStatus::Success, "{job:?}");
    let nic = sim.info("v2").await.nic.unwrap();
    assert_eq!(
        (nic.network.as_str(), nic.ipv4.as_deref(), nic.ipv6.as_deref()),
        ("lan2", Some("10.88.0.2"), Some("fd00:88::2"))
    );
    // The default network's addresses are its own.
    assert_eq!(
        sim.launch("v1").await.nic.unwrap().ipv4.as_deref(),
        Some("10.87.0.2")
    );

    // Bad input: a clear 4xx, nothing made.
    let before = sim.net.scripts().len();
    for (body, want, says) in [
        (
            r#"{"name":"lan3","ipv4":"10.87.0.129/25"}"#,
            StatusCode::CONFLICT,
            "overlaps network default's 10.87.0.0/24",
        ),
        (
            r#"{"name":"lan3","ipv4":"10.88.0.1/16"}"#,
            StatusCode::CONFLICT,
            "overlaps network lan2's",
        ),
        (
            r#"{"name":"lan2","ipv4":"10.89.0.1/24"}"#,
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            r#"{"name":"default","ipv4":"10.89.0.1/24"}"#,
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            r#"{"name":"lan3","ipv4":"10.89.0.1/24","bridge":"croftbr1"}"#,
            StatusCode::CONFLICT,
            "network lan2's",
        ),
        (
            r#"{"name":"lan3","ipv4":"10.89.0.0/24"}"#,
            StatusCode::BAD_REQUEST,
            "the gateway's address",
        ),
        (
            r#"{"name":"lan3","ipv4":"not-an-address"}"#,
            StatusCode::BAD_REQUEST,
            "ipv4",
        ),
        (
            r#"{"name":"lan3","ipv4":"fd00::1/64"}"#,
            StatusCode::BAD_REQUEST,
            "not an IPv4 address",
        ),
        (
            r#"{"name":"lan3"}"#,
            StatusCode::BAD_REQUEST,
            "needs an IPv4 or an IPv6 subnet",
        ),
        (
            r#"{"name":"lan3","kind":"vxlan","ipv4":"10.89.0.1/24"}"#,
            StatusCode::BAD_REQUEST,
            "use nat, routed or bridged",
        ),
        (
            r#"{"name":"../x","ipv4":"10.89.0.1/24"}"#,
            StatusCode::BAD_REQUEST,
            "must contain only",
        ),
        (
            r#"{"name":"lan3","ipv4":"10.89.0.1/24","bridge":"a bridge"}"#,
            StatusCode::BAD_REQUEST,
            "bridge",
        ),
    ] {
        let msg = sim.refused("POST", "/1.0/networks", Some(body), want).await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    assert_eq!(sim.net.scripts().len(), before, "nothing was loaded");
    let nets: Vec<Network> = sim.ok("GET", "/1.0/networks", None).await;
    assert_eq!(nets.len(), 2);
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"v3","image":"busybox","network":"nope"}"#),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(msg.contains("network nope"), "{msg}");
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"v3","image":"busybox","network":"lan2","ipv4":"10.87.0.9"}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("10.88.0.0/24"), "{msg}");
    let msg = sim
        .refused("DELETE", "/1.0/networks/lan2", None, StatusCode::CONFLICT)
        .await;
    assert!(msg.contains("in use by v2"), "{msg}");
    sim.refused("DELETE", "/1.0/networks/default", None, StatusCode::BAD_REQUEST)
        .await;
    sim.refused("DELETE", "/1.0/networks/nope", None, StatusCode::NOT_FOUND)
        .await;

    // A restarted croftd has it, and its VPS on it.
    let Sim { dir, store, .. } = sim;
    let sim = Sim::on(dir, store).await;
    let info: Network = sim.ok("GET", "/1.0/networks/lan2", None).await;
    assert_eq!(info.leases.len(), 1);
    let (status, _) = sim.send("DELETE", "/1.0/instances/v2?force=true", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = sim.send("DELETE", "/1.0/networks/lan2", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(!loaded.contains("croftbr1"), "{loaded}");
}

#[tokio::test]
async fn a_routed_network_gives_public_addresses_from_its_pools_without_nat() {
    let sim = Sim::new().await;
    let made: Network = sim
        .ok(
            "POST",
            "/1.0/networks",
            Some(r#"{"name":"pub","kind":"routed","ipv4":"198.51.100.16/28","ipv6":"2001:db8:100::/64"}"#),
        )
        .await;
    assert_eq!((made.kind.as_str(), made.nat), ("routed", false));
    assert_eq!(made.ipv4.as_deref(), Some("198.51.100.16/28"));
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(
        !loaded.contains("ip saddr 198.51.100.16/28 ip daddr != 198.51.100.16/28 masquerade"),
        "{loaded}"
    );
    let job = sim.launch_with("r1", r#","network":"pub""#).await;
    assert_eq!(job.status, JobStatus::Success, "{job:?}");
    let nic = sim.info("r1").await.nic.unwrap();
    assert_eq!(
        (nic.ipv4.as_deref(), nic.ipv6.as_deref()),
        (Some("198.51.100.17"), Some("2001:db8:100::1"))
    );
    for (body, says) in [
        (
            r#"{"name":"p2","kind":"routed","ipv4":"198.51.100.17/28"}"#,
            "give the pool's network address, 198.51.100.16/28",
        ),
        (
            r#"{"name":"p2","kind":"routed","ipv4":"198.51.100.0/31"}"#,
            "use /20 to /30",
        ),
        (
            r#"{"name":"p2","kind":"routed","ipv6":"2001:db8::/32"}"#,
            "use /48 to /124",
        ),
    ] {
        let msg = sim
            .refused("POST", "/1.0/networks", Some(body), StatusCode::BAD_REQUEST)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let msg = sim
        .refused(
            "POST",
            "/1.0/networks",
            Some(r#"{"name":"p2","kind":"routed","ipv4":"198.51.100.0/24"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("overlaps network pub's 198.51.100.16/28"), "{msg}");
    // An address of the pool is never given twice, and one outside it is
    // refused.
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"r2","image":"busybox","network":"pub","ipv4":"198.51.100.77"}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("outside"), "{msg}");
}

#[tokio::test]
async fn additional_addresses_are_added_and_removed_live_and_never_held_twice() {
    let sim = Sim::new().await;
    sim.launch("a").await;
    sim.launch("b").await;
    let a: Instance = sim
        .ok(
            "POST",
            "/1.0/instances/a/addresses",
            Some(r#"{"address":"10.87.0.50"}"#),
        )
        .await;
    assert_eq!(a.nic.unwrap().extra, ["10.87.0.50"]);
    assert_eq!(sim.backend.live_addresses("a"), ["10.87.0.50/24"]);
    // Only a's port rules were loaded, with the new address let through.
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(
        loaded.contains("ip saddr != { 0.0.0.0, 10.87.0.2, 10.87.0.50 } drop"),
        "{loaded}"
    );
    assert!(!loaded.contains("crv1") && !loaded.contains("table"), "{loaded}");
    // The next free one, of either family.
    let a: Instance = sim
        .ok("POST", "/1.0/instances/a/addresses", Some(r#"{"family":"ipv6"}"#))
        .await;
    let six = a.nic.unwrap().extra[1].clone();
    assert_eq!(six, "fd63:726f:6674::4", "the lowest free one");
    // Never twice, and never another VPS's: the error names the holder.
    let before = sim.net.scripts().len();
    for (vps, body, want, says) in [
        (
            "b",
            r#"{"address":"10.87.0.50"}"#,
            StatusCode::CONFLICT,
            "VPS a holds it",
        ),
        (
            "a",
            r#"{"address":"10.87.0.3"}"#,
            StatusCode::CONFLICT,
            "VPS b holds it",
        ),
        (
            "a",
            r#"{"address":"10.87.0.1"}"#,
            StatusCode::BAD_REQUEST,
            "gateway",
        ),
        (
            "a",
            r#"{"address":"192.0.2.9"}"#,
            StatusCode::BAD_REQUEST,
            "outside",
        ),
        (
            "a",
            r#"{"address":"nope"}"#,
            StatusCode::BAD_REQUEST,
            "not an IP address",
        ),
        (
            "a",
            r#"{"family":"ipx"}"#,
            StatusCode::BAD_REQUEST,
            "unknown address family",
        ),
    ] {
        let msg = sim
            .refused(
                "POST",
                &format!("/1.0/instances/{vps}/addresses"),
                Some(body),
                want,
            )
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    assert_eq!(sim.net.scripts().len(), before, "nothing was loaded");
    // A new launch never gets an additional address as its first.
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"c","image":"busybox","ipv4":"10.87.0.50"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("VPS a holds it"), "{msg}");
    sim.refused("GET", "/1.0/instances/c", None, StatusCode::NOT_FOUND)
        .await;
    // Removed: off the interface, out of the rules, free again.
    let a: Instance = sim
        .ok("DELETE", "/1.0/instances/a/addresses/10.87.0.50", None)
        .await;
    assert_eq!(a.nic.unwrap().extra, std::slice::from_ref(&six));
    assert_eq!(sim.backend.live_addresses("a"), [format!("{six}/64")]);
    sim.refused(
        "DELETE",
        "/1.0/instances/a/addresses/10.87.0.50",
        None,
        StatusCode::NOT_FOUND,
    )
    .await;
    let b: Instance = sim
        .ok(
            "POST",
            "/1.0/instances/b/addresses",
            Some(r#"{"address":"10.87.0.50"}"#),
        )
        .await;
    assert_eq!(b.nic.unwrap().extra, ["10.87.0.50"]);
    // A stopped VPS takes it at its next start (recorded only).
    sim.state("b", r#"{"action":"stop"}"#).await;
    let b: Instance = sim
        .ok(
            "POST",
            "/1.0/instances/b/addresses",
            Some(r#"{"address":"10.87.0.51"}"#),
        )
        .await;
    assert_eq!(b.nic.unwrap().extra, ["10.87.0.50", "10.87.0.51"]);
    // A refused rule load leaves nothing recorded.
    sim.net.fail_next_apply("Error: Could not process rule");
    sim.refused(
        "POST",
        "/1.0/instances/a/addresses",
        Some(r#"{"address":"10.87.0.60"}"#),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert_eq!(sim.info("a").await.nic.unwrap().extra, std::slice::from_ref(&six));
    // A first address changes by adding its successor and removing it: the
    // additional one takes its place, live, in the rules too.
    let msg = sim
        .refused(
            "DELETE",
            "/1.0/instances/a/addresses/10.87.0.2",
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(
        msg.contains("10.87.0.2 is VPS a's only IPv4 address: add the one to take its place first"),
        "{msg}"
    );
    let _: Instance = sim
        .ok(
            "POST",
            "/1.0/instances/a/addresses",
            Some(r#"{"address":"10.87.0.70"}"#),
        )
        .await;
    let a: Instance = sim
        .ok("DELETE", "/1.0/instances/a/addresses/10.87.0.2", None)
        .await;
    let nic = a.nic.unwrap();
    assert_eq!(nic.ipv4.as_deref(), Some("10.87.0.70"));
    assert_eq!(nic.extra, [six]);
    assert!(!sim
        .backend
        .live_addresses("a")
        .contains(&"10.87.0.2/24".to_string()));
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(
        loaded.contains("ip saddr != { 0.0.0.0, 10.87.0.70 } drop"),
        "{loaded}"
    );
    // Its old first address is free for another.
    let c = sim.launch_with("c", r#","ipv4":"10.87.0.2""#).await;
    assert_eq!(c.status, JobStatus::Success, "{c:?}");
}

#[tokio::test]
async fn additional_ipv4_addresses_count_against_the_tenants_quota() {
    let sim = Sim::new().await;
    sim.ok::<serde_json::Value>("POST", "/1.0/tenants", Some(r#"{"name":"acme"}"#))
        .await;
    sim.ok::<serde_json::Value>("PUT", "/1.0/tenants/acme/quota", Some(r#"{"ipv4_addresses":2}"#))
        .await;
    let job: Job = sim
        .ok(
            "POST",
            "/1.0/instances?tenant=acme",
            Some(r#"{"name":"w","image":"busybox"}"#),
        )
        .await;
    assert_eq!(sim.wait_job(&job).await.status, JobStatus::Success);
    let _: Instance = sim
        .ok("POST", "/1.0/instances/w/addresses?tenant=acme", Some(r#"{}"#))
        .await;
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/w/addresses?tenant=acme",
            Some(r#"{}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("quota"), "{msg}");
    // IPv6 is not capped.
    let _: Instance = sim
        .ok(
            "POST",
            "/1.0/instances/w/addresses?tenant=acme",
            Some(r#"{"family":"ipv6"}"#),
        )
        .await;
}

#[tokio::test]
async fn a_prefix_is_delegated_from_a_routed_pool_and_routed_through_the_vps() {
    let sim = Sim::new().await;
    let _: Network = sim
        .ok(
            "POST",
            "/1.0/networks",
            Some(r#"{"name":"pub","kind":"routed","ipv4":"198.51.100.16/28","ipv6":"2001:db8:100::/56"}"#),
        )
        .await;
    let job = sim.launch_with("r1", r#","network":"pub""#).await;
    assert_eq!(job.status, JobStatus::Success, "{job:?}");
    let r1: Instance = sim
        .ok("POST", "/1.0/instances/r1/addresses", Some(r#"{"prefix":64}"#))
        .await;
    assert_eq!(r1.nic.unwrap().extra, ["2001:db8:100:1::/64"]);
    assert_eq!(
        sim.net.routes(),
        ["2001:db8:100:1::/64 via 2001:db8:100::1 dev croftbr1"]
    );
    assert!(
        sim.backend.live_addresses("r1").is_empty(),
        "a prefix is routed, not put on eth0"
    );
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(loaded.contains("2001:db8:100:1::/64 } drop"), "{loaded}");
    let r1: Instance = sim
        .ok("POST", "/1.0/instances/r1/addresses", Some(r#"{"prefix":64}"#))
        .await;
    assert_eq!(r1.nic.unwrap().extra[1], "2001:db8:100:2::/64");
    for (body, want, says) in [
        (
            r#"{"address":"2001:db8:100:1::/64","prefix":64}"#,
            StatusCode::CONFLICT,
            "overlaps what VPS",
        ),
        (
            r#"{"address":"2001:db8:100:1::5/64","prefix":64}"#,
            StatusCode::BAD_REQUEST,
            "is not a /64 of the pool",
        ),
        (
            r#"{"address":"2001:db8:200::/64","prefix":64}"#,
            StatusCode::BAD_REQUEST,
            "is not a /64 of the pool",
        ),
        (r#"{"prefix":48}"#, StatusCode::BAD_REQUEST, "must be /57 to /124"),
    ] {
        let msg = sim
            .refused("POST", "/1.0/instances/r1/addresses", Some(body), want)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    sim.launch("n1").await;
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/n1/addresses",
            Some(r#"{"prefix":64}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("no routed IPv6 pool"), "{msg}");
    // Removed: the route goes with it.
    let _: Instance = sim
        .ok(
            "DELETE",
            "/1.0/instances/r1/addresses/2001:db8:100:1::%2F64",
            None,
        )
        .await;
    assert_eq!(
        sim.net.routes(),
        ["2001:db8:100:2::/64 via 2001:db8:100::1 dev croftbr1"]
    );
    // A restarted croftd routes what is delegated again.
    let Sim { dir, store, .. } = sim;
    let sim = Sim::on(dir, store).await;
    assert_eq!(
        sim.net.routes(),
        ["2001:db8:100:2::/64 via 2001:db8:100::1 dev croftbr1"]
    );
    // No address inside a delegated prefix, nor a prefix over the single
    // addresses' block.
    for (body, want, says) in [
        (
            r#"{"address":"2001:db8:100:2::7"}"#,
            StatusCode::CONFLICT,
            "in a prefix delegated to VPS r1",
        ),
        (
            r#"{"address":"2001:db8:100::/64","prefix":64}"#,
            StatusCode::BAD_REQUEST,
            "is not a /64 of the pool",
        ),
    ] {
        let msg = sim
            .refused("POST", "/1.0/instances/r1/addresses", Some(body), want)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"r2","image":"busybox","network":"pub","ipv6":"2001:db8:100:2::8"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("in a prefix delegated to VPS r1"), "{msg}");
    // Its routes go with the VPS.
    let (status, _) = sim.send("DELETE", "/1.0/instances/r1?force=true", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(sim.net.routes().is_empty(), "{:?}", sim.net.routes());
}

#[tokio::test]
async fn a_bridged_network_joins_the_admins_bridge_with_addresses_from_its_pool_and_fixed_macs() {
    let sim = Sim::new().await;
    sim.net.add_bridge("br-up");
    sim.net.add_link("eth7");
    let base = r#""name":"b","kind":"bridged","ipv4":"198.51.100.65/26""#;
    for (extra, says) in [
        (r#","pool":["198.51.100.70"]"#, "needs a bridge"),
        (
            r#","bridge":"br-nope","pool":["198.51.100.70"]"#,
            "no bridge br-nope",
        ),
        (
            r#","bridge":"eth7","pool":["198.51.100.70"]"#,
            "eth7, which is not a bridge",
        ),
        (
            r#","bridge":"crv9","pool":["198.51.100.70"]"#,
            "croft's VPS links",
        ),
        (
            r#","bridge":"br-up""#,
            "hands out only its pool: give the IPv4 addresses",
        ),
        (
            r#","bridge":"br-up","ipv6":"2001:db8:5::1/64","pool":["198.51.100.70"]"#,
            "give the IPv6 addresses",
        ),
        (
            r#","bridge":"br-up","pool":["198.51.100.200-198.51.100.210"]"#,
            "outside the network's subnet",
        ),
        (
            r#","bridge":"br-up","pool":["198.51.100.80-198.51.100.70"]"#,
            "from low to high",
        ),
        (
            r#","bridge":"br-up","pool":["198.51.100.70-198.51.100.75","198.51.100.74"]"#,
            "overlaps 198.51.100.70-198.51.100.75",
        ),
        (r#","bridge":"br-up","pool":["198.51.100.65"]"#, "gateway"),
        (
            r#","bridge":"br-up","pool":["2001:db8::5"]"#,
            "no subnet of its family",
        ),
        (
            r#","bridge":"br-up","uplink":"eth7","pool":["198.51.100.70"]"#,
            "only a routed network",
        ),
    ] {
        let body = format!("{{{base}{extra}}}");
        let msg = sim
            .refused("POST", "/1.0/networks", Some(&body), StatusCode::BAD_REQUEST)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    // Nothing of the refused networks is left.
    let networks: Vec<Network> = sim.ok("GET", "/1.0/networks", None).await;
    assert_eq!(networks.len(), 1, "{networks:?}");
    let made: Network = sim
        .ok(
            "POST",
            "/1.0/networks",
            Some(
                r#"{"name":"pub","kind":"bridged","bridge":"br-up","ipv4":"198.51.100.65/26","ipv6":"2001:db8:5::1/64","pool":["198.51.100.70-198.51.100.71","2001:db8:5::100-2001:db8:5::1ff"]}"#,
            ),
        )
        .await;
    assert_eq!((made.kind.as_str(), made.nat), ("bridged", false));
    assert_eq!(
        made.pool,
        ["198.51.100.70-198.51.100.71", "2001:db8:5::100-2001:db8:5::1ff"]
    );
    // The admin's bridge carries the host's own traffic: the rules never
    // name it, and nothing is masqueraded.
    let loaded = sim.net.scripts().last().unwrap().clone();
    assert!(!loaded.contains("br-up"), "{loaded}");
    // What its VPSes send is guarded by the mark, also on its way back
    // from the provider's router.
    assert!(
        loaded.contains("meta mark & 0x100000 == 0x100000 fib daddr type local jump from_vpses"),
        "{loaded}"
    );
    // A fixed MAC, as a provider's failover address needs.
    let job = sim
        .launch_with("b1", r#","network":"pub","mac":"0E:CF:00:00:00:01""#)
        .await;
    assert_eq!(job.status, JobStatus::Success, "{job:?}");
    let nic = sim.info("b1").await.nic.unwrap();
    assert_eq!(nic.mac, "0e:cf:00:00:00:01");
    // From the pool only (the IPv6 one does not end like the IPv4 one:
    // that is outside the pool).
    assert_eq!(
        (nic.ipv4.as_deref(), nic.ipv6.as_deref()),
        (Some("198.51.100.70"), Some("2001:db8:5::100"))
    );
    for (extra, status, says) in [
        (
            r#","network":"pub","mac":"0e:cf:00:00:00:01""#,
            StatusCode::CONFLICT,
            "MAC 0e:cf:00:00:00:01 is in use: VPS b1 has it",
        ),
        (
            r#","network":"pub","mac":"01:00:5e:00:00:01""#,
            StatusCode::BAD_REQUEST,
            "not a unicast MAC address",
        ),
        (
            r#","network":"pub","mac":"0e:cf:00""#,
            StatusCode::BAD_REQUEST,
            "not a MAC address",
        ),
        (
            r#","network":"pub","mac":"e:cf:0:0:0:1""#,
            StatusCode::CONFLICT,
            "MAC 0e:cf:00:00:00:01 is in use",
        ),
        (
            r#","network":"pub","mac":"0e:cf:ff:00:00:07""#,
            StatusCode::BAD_REQUEST,
            "the MACs of croft's bridges",
        ),
        (
            r#","network":"pub","ipv4":"198.51.100.80""#,
            StatusCode::BAD_REQUEST,
            "198.51.100.80 is outside network pub's pool 198.51.100.70-198.51.100.71",
        ),
    ] {
        let body = format!(r#"{{"name":"b2","image":"busybox"{extra}}}"#);
        let msg = sim.refused("POST", "/1.0/instances", Some(&body), status).await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    // Reached at its own address on the link: no port of the host's.
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/b1/forwards",
            Some(r#"{"protocol":"tcp","host_port":8080,"vps_port":80}"#),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("on bridged network pub"), "{msg}");
    sim.launch_with("b2", r#","network":"pub""#).await;
    assert_eq!(
        sim.info("b2").await.nic.unwrap().ipv4.as_deref(),
        Some("198.51.100.71")
    );
    // The pool is used up: a clear refusal, and no VPS b3.
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"b3","image":"busybox","network":"pub"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        msg.contains("no free IPv4 address left in network pub's pool 198.51.100.70-198.51.100.71"),
        "{msg}"
    );
    let (status, _) = sim.send("GET", "/1.0/instances/b3", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let msg = sim
        .refused("DELETE", "/1.0/networks/pub", None, StatusCode::CONFLICT)
        .await;
    assert!(msg.contains("in use by b1, b2"), "{msg}");
    for vps in ["b1", "b2"] {
        let (status, _) = sim
            .send("DELETE", &format!("/1.0/instances/{vps}?force=true"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, _) = sim.send("DELETE", "/1.0/networks/pub", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_stopped_vps_gets_further_interfaces_on_other_networks_counted_and_limited_together() {
    let sim = Sim::new().await;
    let _: Network = sim
        .ok(
            "POST",
            "/1.0/networks",
            Some(r#"{"name":"lan2","ipv4":"10.88.0.1/24","pool":["10.88.0.10-10.88.0.20"]}"#),
        )
        .await;
    sim.launch("a").await;
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/a/nics",
            Some(r#"{"network":"lan2"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        msg.contains("VPS a is running: stop it to add or remove an interface"),
        "{msg}"
    );
    sim.state("a", r#"{"action":"stop"}"#).await;
    let a: Instance = sim
        .ok("POST", "/1.0/instances/a/nics", Some(r#"{"network":"lan2"}"#))
        .await;
    let names: Vec<(&str, &str)> = a
        .nics
        .iter()
        .map(|n| (n.name.as_str(), n.network.as_str()))
        .collect();
    assert_eq!(names, [("eth0", "default"), ("eth1", "lan2")]);
    let eth0 = a.nic.clone().unwrap();
    let eth1 = a.nics[1].clone();
    assert_eq!(eth1.ipv4.as_deref(), Some("10.88.0.10"), "from lan2's pool");
    assert_eq!(eth1.host_interface, format!("{}n1", eth0.host_interface));
    for (body, status, says) in [
        (
            r#"{"network":"lan2"}"#,
            StatusCode::CONFLICT,
            "has an interface on network lan2 already (eth1)",
        ),
        (
            r#"{"network":"default"}"#,
            StatusCode::CONFLICT,
            "on network default already (eth0)",
        ),
        (r#"{"network":"nope"}"#, StatusCode::NOT_FOUND, "network nope"),
        (
            r#"{"network":"lan2","ipv4":"10.88.0.50"}"#,
            StatusCode::BAD_REQUEST,
            "outside network lan2's pool",
        ),
        (
            r#"{"network":"lan2","bogus":1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bogus",
        ),
    ] {
        let msg = sim
            .refused("POST", "/1.0/instances/a/nics", Some(body), status)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    // An address of lan2 held by a's eth1 is not given again.
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances",
            Some(r#"{"name":"b","image":"busybox","network":"lan2","ipv4":"10.88.0.10"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("10.88.0.10 (VPS a holds it)"), "{msg}");
    // At the start both are made, with rules for each port; a limit
    // changed live holds on each.
    sim.state("a", r#"{"action":"start"}"#).await;
    sim.ok::<Instance>(
        "PATCH",
        "/1.0/instances/a/config",
        Some(r#"{"set":{"limits.ingress":"30Mbit"}}"#),
    )
    .await;
    let loaded = sim.net.scripts().join("\n");
    for port in [&eth0.host_interface, &eth1.host_interface] {
        assert!(
            loaded.contains(&format!("add chain bridge croft from_{port}\n")),
            "{port}: {loaded}"
        );
        assert_eq!(sim.net.bandwidth(port), Some((Some(30_000_000), None)), "{port}");
    }
    // Traffic is both interfaces' together.
    let month = croftd::service::instances::traffic::this_month();
    for (port, index) in [(&eth0.host_interface, 3), (&eth1.host_interface, 4)] {
        sim.net.set_counters(
            port,
            croft_host::net::LinkCounters {
                index,
                rx_bytes: 1000,
                tx_bytes: 500,
                rx_packets: 10,
                tx_packets: 5,
                ..Default::default()
            },
        );
    }
    sim.services.instances.sample_traffic(&month).await.unwrap();
    let t = sim.info("a").await.traffic.unwrap();
    assert_eq!((t.month.sent_bytes, t.month.received_bytes), (2000, 1000));
    sim.state("a", r#"{"action":"stop"}"#).await;
    for (path, status, says) in [
        (
            "/1.0/instances/a/nics/0",
            StatusCode::BAD_REQUEST,
            "eth0 is VPS a's first interface",
        ),
        (
            "/1.0/instances/a/nics/5",
            StatusCode::NOT_FOUND,
            "interface eth5 of VPS a",
        ),
    ] {
        let msg = sim.refused("DELETE", path, None, status).await;
        assert!(msg.contains(says), "{path}: {msg}");
    }
    let a: Instance = sim.ok("DELETE", "/1.0/instances/a/nics/1", None).await;
    assert_eq!(a.nics.len(), 1);
    assert!(sim
        .net
        .scripts()
        .last()
        .unwrap()
        .contains(&format!("delete chain bridge croft from_{}", eth1.host_interface)));
    // Its address is free again.
    let job = sim
        .launch_with("b", r#","network":"lan2","ipv4":"10.88.0.10""#)
        .await;
    assert_eq!(job.status, JobStatus::Success, "{job:?}");
}

#[tokio::test]
async fn a_routed_networks_uplink_proxies_exactly_its_vpses_addresses() {
    let sim = Sim::new().await;
    sim.net.add_link("uplink0");
    for (body, says) in [
        (
            r#"{"name":"p","kind":"routed","ipv4":"198.51.100.16/28","uplink":"eth9"}"#,
            "no interface eth9",
        ),
        (
            r#"{"name":"p","ipv4":"10.99.0.1/24","uplink":"uplink0"}"#,
            "only a routed network",
        ),
    ] {
        let msg = sim
            .refused("POST", "/1.0/networks", Some(body), StatusCode::BAD_REQUEST)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let made: Network = sim
        .ok(
            "POST",
            "/1.0/networks",
            Some(r#"{"name":"pub","kind":"routed","ipv4":"198.51.100.16/28","ipv6":"2001:db8:100::/64","uplink":"uplink0"}"#),
        )
        .await;
    assert_eq!(made.uplink.as_deref(), Some("uplink0"));
    assert_eq!(sim.net.proxies("uplink0"), Some(vec![]));
    let job = sim.launch_with("r1", r#","network":"pub""#).await;
    assert_eq!(job.status, JobStatus::Success, "{job:?}");
    let one: std::net::Ipv6Addr = "2001:db8:100::1".parse().unwrap();
    assert_eq!(sim.net.proxies("uplink0"), Some(vec![one]));
    let _: Instance = sim
        .ok(
            "POST",
            "/1.0/instances/r1/addresses",
            Some(r#"{"address":"2001:db8:100::9"}"#),
        )
        .await;
    let nine: std::net::Ipv6Addr = "2001:db8:100::9".parse().unwrap();
    assert_eq!(sim.net.proxies("uplink0"), Some(vec![one, nine]));
    let _: Instance = sim
        .ok("DELETE", "/1.0/instances/r1/addresses/2001:db8:100::9", None)
        .await;
    assert_eq!(sim.net.proxies("uplink0"), Some(vec![one]));
    let (status, _) = sim.send("DELETE", "/1.0/instances/r1?force=true", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sim.net.proxies("uplink0"), Some(vec![]));
}

#[tokio::test]
async fn a_stopped_vps_is_renamed_keeping_everything_else() {
    let sim = Sim::new().await;
    let a = sim.launch("a").await;
    sim.launch("b").await;
    let msg = sim
        .refused(
            "POST",
            "/1.0/instances/a/rename",
            Some(r#"{"name":"c"}"#),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains("VPS a is running: stop it to rename it"), "{msg}");
    sim.state("a", r#"{"action":"stop"}"#).await;
    for (body, status, says) in [
        (r#"{"name":"b"}"#, StatusCode::CONFLICT, "VPS b already exists"),
        (r#"{"name":"no way"}"#, StatusCode::BAD_REQUEST, "name"),
    ] {
        let msg = sim
            .refused("POST", "/1.0/instances/a/rename", Some(body), status)
            .await;
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let c: Instance = sim
        .ok("POST", "/1.0/instances/a/rename", Some(r#"{"name":"c"}"#))
        .await;
    assert_eq!(c.name, "c");
    assert_eq!(c.uuid, a.uuid);
    assert_eq!(c.nic, a.nic, "its addresses and interface stay");
    sim.refused("GET", "/1.0/instances/a", None, StatusCode::NOT_FOUND)
        .await;
    // Its old name is free again; it starts under its new one.
    sim.launch("a").await;
    assert_eq!(
        sim.state("c", r#"{"action":"start"}"#).await.status,
        croft_api::Status::Running
    );
}
