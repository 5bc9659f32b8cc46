//! The API fuzzer (`fuzz/`) on the simulated backend (tier 2, no root):
//! hostile requests at every endpoint of a simulated croftd served on a
//! real unix socket, so hyper parses every request line and header as it
//! does for the CLI. Every answer must be a clean refusal or a harmless
//! success, and the VPS there throughout must be unchanged at the end.
//! `CROFT_FUZZ_SEED=N` replays a run, `CROFT_FUZZ_ROUNDS=N` makes it
//! longer.

mod fuzz;
mod sim;

use croft_api::{Image, Instance, Snapshot};
use sim::Sim;
use std::future::IntoFuture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_a_4xx_json_error_never_a_5xx_a_hang_or_a_panic() {
    let sim = Sim::new().await;
    let before = sim.launch("keep1").await;
    let pid_before = sim.details("keep1").await.init_pid;
    let images_before: Vec<Image> = sim.ok("GET", "/1.0/images", None).await;

    let socket = sim.dir.path().join("croftd.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(axum::serve(listener, sim.router.clone()).into_future());
    let seed = fuzz::seed_from_env("CROFT_FUZZ_SEED");
    let rounds = fuzz::count_from_env("CROFT_FUZZ_ROUNDS", 40);
    let fuzzing = tokio::task::spawn_blocking(move || fuzz::run(&socket, seed, rounds));
    let sent = fuzzing.await.unwrap_or_else(|e| {
        // The fuzzer's own assertion, with the seed to replay it.
        std::panic::resume_unwind(e.into_panic())
    });
    assert!(sent >= rounds * 30, "only {sent} requests sent");
    assert!(!server.is_finished(), "the server stopped: {server:?}");
    server.abort();

    let after = sim.info("keep1").await;
    assert_eq!(after.status, before.status, "keep1's status changed");
    assert_eq!(after.config, before.config, "keep1's config changed");
    assert_eq!(
        sim.details("keep1").await.init_pid,
        pid_before,
        "keep1's init changed"
    );
    assert_eq!(after.nic, before.nic, "keep1's nic changed");
    assert_eq!(after.forwards, before.forwards, "keep1's forwards changed");
    assert_eq!(after.firewall, before.firewall, "keep1's firewall changed");
    assert_eq!(after.ssh_keys, before.ssh_keys, "keep1's ssh_keys changed");
    let all: Vec<Instance> = sim.ok("GET", "/1.0/instances", None).await;
    let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["keep1"], "requests created or deleted VPSes");
    let images_after: Vec<Image> = sim.ok("GET", "/1.0/images", None).await;
    assert_eq!(images_after, images_before, "requests changed the images");
    let snaps: Vec<Snapshot> = sim.ok("GET", "/1.0/instances/keep1/snapshots", None).await;
    assert!(snaps.is_empty(), "requests took snapshots: {snaps:?}");
}
