//! The API fuzzer (`croftd/tests/fuzz`) on real VPSes: hostile requests
//! at every endpoint reach the container backend, the btrfs pool and the
//! host's firewall, and must get a 4xx JSON error (or a harmless success),
//! never a 5xx, a hang or a panic; the VPS that runs throughout is
//! unchanged at the end. Tier 2 runs the same fuzzer on the simulator.
//! `CROFT_FUZZ_SEED=N` replays a run. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use croft_api::Instance;

#[test]
fn hostile_requests_get_a_4xx_json_error_never_a_5xx_a_hang_or_a_panic() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "keep1", "--memory", "64MiB"]);
    let before = host.info("keep1");
    let pid_before = host.details("keep1").init_pid;
    let images_before = host.ok(&["image", "list", "--format", "json"]);
    let seed = common::fuzz::seed_from_env("CROFT_FUZZ_SEED");
    let rounds = common::fuzz::count_from_env("CROFT_FUZZ_ROUNDS", 40);
    common::fuzz::run(&host.socket, seed, rounds);
    assert!(
        !host.daemon_log().contains("panicked"),
        "croftd panicked:\n{}",
        host.daemon_log()
    );
    // Still serving, and nothing changed.
    let after = host.info("keep1");
    assert_eq!(after.status, before.status, "keep1's status changed");
    assert_eq!(after.config, before.config, "keep1's config changed");
    assert_eq!(
        host.details("keep1").init_pid,
        pid_before,
        "keep1's init_pid changed"
    );
    assert_eq!(after.nic, before.nic, "keep1's nic changed");
    assert_eq!(after.forwards, before.forwards, "keep1's forwards changed");
    assert_eq!(after.firewall, before.firewall, "keep1's firewall changed");
    assert_eq!(after.ssh_keys, before.ssh_keys, "keep1's ssh_keys changed");
    let names: Vec<String> = host
        .ok_json::<Vec<Instance>>(&["list", "--format", "json"])
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["keep1"], "requests created VPSes");
    let images_after = host.ok(&["image", "list", "--format", "json"]);
    assert_eq!(images_after, images_before, "requests changed the images");
    let snaps = host.ok(&["snapshot", "list", "keep1"]);
    assert!(!snaps.contains("bad"), "{snaps}");
}
