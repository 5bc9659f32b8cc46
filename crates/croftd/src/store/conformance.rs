//! The conformance suite every [`Store`] must pass: what services rely on,
//! stated as tests. A store's own tests instantiate it with
//! `store_conformance!(expression making a fresh, empty store)`.

use super::{
    CertificateRecord, ForwardRecord, ImageUpdate, NewInstance, NewTokenRecord, NicRecord, Store, StoreError,
    TrustTokenRecord, DEFAULT_TENANT,
};
use crate::auth::Role;
use croft_api::{FirewallRule, JobStatus, Status};
use std::collections::BTreeMap;

/// A new VPS `name` of the default tenant at id range `uid_base`,
/// without an interface.
pub fn new_instance(name: &str, uid_base: u32) -> NewInstance {
    new_instance_of(DEFAULT_TENANT, name, uid_base)
}

/// A new VPS `name` of `tenant`, keyed as croftd keys it.
pub fn new_instance_of(tenant: &str, name: &str, uid_base: u32) -> NewInstance {
    let uuid = uuid::Uuid::new_v4();
    NewInstance {
        uuid,
        key: super::instance_key(tenant, name, uuid),
        tenant: tenant.into(),
        name: name.into(),
        image: "busybox".into(),
        uid_base,
        settings: BTreeMap::from([("limits.memory".to_string(), "64MiB".to_string())]),
        nic: None,
        ssh_keys: vec!["ssh-ed25519 AAAA one".into(), "ssh-ed25519 AAAA two".into()],
    }
}

fn nic(name: &str, ipv4: &str) -> NicRecord {
    NicRecord {
        instance: name.into(),
        index: 0,
        network: "croft0".into(),
        host_if: format!("cr-{name}"),
        mac: format!("02:00:00:00:00:{:02x}", name.len()),
        ipv4: Some(ipv4.into()),
        ipv6: None,
        extra: Vec::new(),
    }
}

fn rule(port: &str) -> FirewallRule {
    FirewallRule {
        direction: "in".into(),
        destination: None,
        action: "allow".into(),
        protocol: "tcp".into(),
        port: Some(port.into()),
        source: None,
    }
}

/// Generates one `#[tokio::test]` per conformance check, each on a fresh
/// store made by `$make`.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@tests $make;
            created_vps_reads_back_whole,
            creating_is_all_or_nothing,
            names_uuids_and_id_ranges_are_unique,
            delete_forgets_everything_recorded_with_a_vps,
            status_changes_keep_the_last_exit_unless_given,
            settings_rescue_and_image_change,
            forwards_are_unique_per_host_port,
            firewall_rules_keep_their_order_and_come_back,
            traffic_adds_what_moved_since_the_last_reading_per_month,
            usage_history_keeps_rings_and_merges_minutes_into_longer_periods,
            an_address_is_held_once_in_its_network,
            snapshots_are_unique_per_vps,
            images_upsert_keeps_what_is_not_given,
            jobs_run_and_interrupted_ones_fail,
            names_are_unique_within_a_tenant,
            a_tenant_goes_only_when_it_has_no_vps,
            tokens_are_kept_hashed_expire_and_go_with_their_tenant,
            every_addition_is_held_to_the_tenants_quota,
            the_audit_log_keeps_entries_newest_first,
            a_trust_token_enrolls_one_certificate_once,
            users_and_their_sessions,
            a_vps_activity_is_its_paths_done_entries,
        );
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = $make;
                $crate::store::conformance::$check(&store).await;
            }
        )*
    };
}

pub async fn created_vps_reads_back_whole(store: &dyn Store) {
    let mut new = new_instance("web", 1_000_000);
    new.nic = Some(nic("web", "10.0.0.2"));
    let created = store.create_instance(&new).await.unwrap();
    assert_eq!(created.uuid, new.uuid);
    assert_eq!(created.status, Status::Creating);
    assert_eq!(created.settings.raw, new.settings);
    assert_eq!(created.settings.parsed.memory_bytes, Some(64 << 20));
    assert_eq!(store.instance("web").await.unwrap(), Some(created.clone()));
    assert_eq!(store.instances().await.unwrap(), vec![created]);
    assert_eq!(store.nic("web").await.unwrap(), new.nic);
    assert_eq!(store.ssh_keys("web").await.unwrap(), new.ssh_keys);
    assert_eq!(store.all_ssh_keys().await.unwrap()["web"], new.ssh_keys);
    assert_eq!(store.instance("other").await.unwrap(), None);
}

pub async fn creating_is_all_or_nothing(store: &dyn Store) {
    let mut first = new_instance("a", 1_000_000);
    first.nic = Some(nic("a", "10.0.0.2"));
    store.create_instance(&first).await.unwrap();
    // The second's address is taken: neither it nor its keys are kept.
    let mut second = new_instance("b", 1_065_536);
    second.nic = Some(nic("b", "10.0.0.2"));
    let err = store.create_instance(&second).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Taken(what) if what.contains("10.0.0.2")),
        "{err:?}"
    );
    assert_eq!(store.instance("b").await.unwrap(), None);
    assert!(store.ssh_keys("b").await.unwrap().is_empty());
    assert_eq!(store.nics().await.unwrap().len(), 1);
}

pub async fn names_uuids_and_id_ranges_are_unique(store: &dyn Store) {
    let first = new_instance("a", 1_000_000);
    store.create_instance(&first).await.unwrap();
    let same_name = new_instance("a", 1_065_536);
    assert!(matches!(
        store.create_instance(&same_name).await,
        Err(StoreError::Taken(what)) if what.contains("name")
    ));
    let same_range = new_instance("b", 1_000_000);
    assert!(matches!(
        store.create_instance(&same_range).await,
        Err(StoreError::Taken(what)) if what.contains("id range")
    ));
    let mut same_uuid = new_instance("c", 1_131_072);
    same_uuid.uuid = first.uuid;
    assert!(matches!(
        store.create_instance(&same_uuid).await,
        Err(StoreError::Taken(what)) if what.contains("uuid")
    ));
    assert_eq!(store.instances().await.unwrap().len(), 1);
}

pub async fn delete_forgets_everything_recorded_with_a_vps(store: &dyn Store) {
    let mut new = new_instance("gone", 1_000_000);
    new.nic = Some(nic("gone", "10.0.0.9"));
    store.create_instance(&new).await.unwrap();
    store
        .create_instance(&new_instance("kept", 1_065_536))
        .await
        .unwrap();
    let forward = ForwardRecord {
        protocol: "tcp".into(),
        host_port: 2222,
        instance: "gone".into(),
        vps_port: 22,
        host_port_end: None,
    };
    store.insert_forward(&forward).await.unwrap();
    store
        .edit_firewall_rules(
            "gone",
            &super::RuleEdit::Insert {
                position: None,
                rule: rule("22"),
            },
        )
        .await
        .unwrap();
    store
        .edit_firewall_rules(
            "kept",
            &super::RuleEdit::Insert {
                position: None,
                rule: rule("80"),
            },
        )
        .await
        .unwrap();
    assert!(store.insert_snapshot("gone", "s1").await.unwrap());
    store.delete_instance("gone").await.unwrap();
    store.delete_instance("never-was").await.unwrap();
    assert_eq!(store.instance("gone").await.unwrap(), None);
    assert!(store.nics().await.unwrap().is_empty());
    assert!(store.forwards().await.unwrap().is_empty());
    assert!(store.ssh_keys("gone").await.unwrap().is_empty());
    assert!(store.snapshots("gone").await.unwrap().is_empty());
    let rules = store.firewall_rules().await.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].instance, "kept");
    // Its name, range and address are free again.
    let mut again = new_instance("gone", 1_000_000);
    again.nic = Some(nic("gone", "10.0.0.9"));
    store.create_instance(&again).await.unwrap();
    assert!(store.snapshots("gone").await.unwrap().is_empty());
}

pub async fn status_changes_keep_the_last_exit_unless_given(store: &dyn Store) {
    store
        .create_instance(&new_instance("v", 1_000_000))
        .await
        .unwrap();
    store
        .set_status("v", Status::Running, Some(42), None)
        .await
        .unwrap();
    let r = store.instance("v").await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.init_pid, r.last_exit),
        (Status::Running, Some(42), None)
    );
    store
        .set_status("v", Status::Stopped, None, Some("init exited with status 0"))
        .await
        .unwrap();
    store.set_status("v", Status::Starting, None, None).await.unwrap();
    let r = store.instance("v").await.unwrap().unwrap();
    assert_eq!(r.status, Status::Starting);
    assert_eq!(r.init_pid, None);
    assert_eq!(r.last_exit.as_deref(), Some("init exited with status 0"));
}

pub async fn settings_rescue_and_image_change(store: &dyn Store) {
    store
        .create_instance(&new_instance("v", 1_000_000))
        .await
        .unwrap();
    let settings = BTreeMap::from([("limits.cpu".to_string(), "1.5".to_string())]);
    store.set_settings("v", &settings).await.unwrap();
    store.set_rescue("v", Some("debian-12")).await.unwrap();
    store.set_image("v", "debian-13").await.unwrap();
    let r = store.instance("v").await.unwrap().unwrap();
    assert_eq!(r.settings.raw, settings);
    assert_eq!(r.settings.parsed.cpu_millicores, Some(1500));
    assert_eq!(r.settings.parsed.memory_bytes, None);
    assert_eq!(r.rescue_image.as_deref(), Some("debian-12"));
    assert_eq!(r.image, "debian-13");
    store.set_rescue("v", None).await.unwrap();
    assert_eq!(store.instance("v").await.unwrap().unwrap().rescue_image, None);
}

pub async fn forwards_are_unique_per_host_port(store: &dyn Store) {
    store
        .create_instance(&new_instance("a", 1_000_000))
        .await
        .unwrap();
    store
        .create_instance(&new_instance("b", 1_065_536))
        .await
        .unwrap();
    let f = |instance: &str, protocol: &str| ForwardRecord {
        protocol: protocol.into(),
        host_port: 8080,
        instance: instance.into(),
        vps_port: 80,
        host_port_end: None,
    };
    store.insert_forward(&f("a", "tcp")).await.unwrap();
    assert!(matches!(
        store.insert_forward(&f("b", "tcp")).await,
        Err(StoreError::Taken(what)) if what.contains("8080/tcp")
    ));
    store.insert_forward(&f("b", "udp")).await.unwrap();
    assert_eq!(
        store.forwards().await.unwrap(),
        vec![f("a", "tcp"), f("b", "udp")]
    );
    assert!(!store.delete_forward("b", "tcp", 8080).await.unwrap());
    assert!(store.delete_forward("a", "tcp", 8080).await.unwrap());
    assert_eq!(store.forwards().await.unwrap(), vec![f("b", "udp")]);
}

pub async fn firewall_rules_keep_their_order_and_come_back(store: &dyn Store) {
    use super::RuleEdit;
    store
        .create_instance(&new_instance("v", 1_000_000))
        .await
        .unwrap();
    for port in ["22", "80", "443"] {
        let edit = RuleEdit::Insert {
            position: None,
            rule: rule(port),
        };
        store.edit_firewall_rules("v", &edit).await.unwrap();
    }
    let ports = |rules: Vec<super::RuleRecord>| -> Vec<String> {
        rules.into_iter().filter_map(|r| r.rule.port).collect()
    };
    assert_eq!(ports(store.firewall_rules().await.unwrap()), ["22", "80", "443"]);
    // Inserted first, moved, replaced, removed: the order follows.
    let first = RuleEdit::Insert {
        position: Some(1),
        rule: rule("25"),
    };
    store.edit_firewall_rules("v", &first).await.unwrap();
    let moved = RuleEdit::Move { index: 1, to: 3 };
    store.edit_firewall_rules("v", &moved).await.unwrap();
    assert_eq!(
        ports(store.firewall_rules().await.unwrap()),
        ["22", "80", "25", "443"]
    );
    let replaced = RuleEdit::Replace {
        index: 4,
        rule: rule("8443"),
    };
    let before = store.edit_firewall_rules("v", &replaced).await.unwrap();
    assert_eq!(before.len(), 4);
    store
        .edit_firewall_rules("v", &RuleEdit::Remove { index: 2 })
        .await
        .unwrap();
    assert_eq!(ports(store.firewall_rules().await.unwrap()), ["22", "25", "8443"]);
    // A number that names no rule changes nothing.
    for bad in [
        RuleEdit::Remove { index: 0 },
        RuleEdit::Remove { index: 4 },
        RuleEdit::Move { index: 1, to: 9 },
        RuleEdit::Insert {
            position: Some(5),
            rule: rule("1"),
        },
    ] {
        let err = store.edit_firewall_rules("v", &bad).await.unwrap_err();
        assert!(matches!(err, StoreError::Missing(_)), "{bad:?}: {err}");
    }
    assert_eq!(ports(store.firewall_rules().await.unwrap()), ["22", "25", "8443"]);
    // A rollback puts back what an edit found.
    store.set_firewall_rules("v", &before).await.unwrap();
    assert_eq!(
        ports(store.firewall_rules().await.unwrap()),
        ["22", "80", "25", "443"]
    );
}

/// A minute point with CPU at `cpu` (its max 5 above), memory at
/// `cpu` MiB, and no disk figures.
#[cfg(test)]
pub fn minute_point(instance: &str, minute: i64, cpu: f64) -> super::history::MinutePoint {
    use super::history::Stat;
    let stat = |avg: f64, max: f64| Some(Stat { avg, max });
    super::history::MinutePoint {
        instance: instance.into(),
        minute,
        values: [
            stat(cpu, cpu + 5.0),
            stat(cpu * 1048576.0, cpu * 1048576.0),
            None,
            None,
            stat(1000.0, 2000.0),
            stat(10.0, 20.0),
            stat(7.5, 9.0),
        ],
    }
}

pub async fn usage_history_keeps_rings_and_merges_minutes_into_longer_periods(store: &dyn Store) {
    use super::history::{HALF_HOURS, MINUTES, QUARTER_DAYS};
    store
        .create_instance(&new_instance("v", 1_000_000))
        .await
        .unwrap();
    // A start of six hours, so that all three minutes share each
    // archive's period.
    let t = 1_800_000_000 / 21600 * 21600;
    let points: Vec<_> = [10.0, 20.0, 30.0]
        .iter()
        .enumerate()
        .map(|(i, cpu)| minute_point("v", t + 60 * i as i64, *cpu))
        .chain([minute_point("gone", t, 1.0)])
        .collect();
    // One of a VPS deleted since the sample is dropped, not an error.
    store.record_history(&points).await.unwrap();
    let minutes = store.history("v", MINUTES, t).await.unwrap();
    assert_eq!(
        minutes.iter().map(|p| p.at).collect::<Vec<_>>(),
        [t, t + 60, t + 120]
    );
    let cpu = minutes[1].values[0].unwrap();
    assert_eq!((cpu.avg, cpu.max), (20.0, 25.0));
    assert_eq!(minutes[1].values[1].unwrap().avg, 20.0 * 1048576.0);
    assert_eq!(minutes[1].values[2], None, "a series not measured stays unknown");
    assert_eq!(minutes[1].values[6].unwrap().avg, 7.5);
    for archive in [HALF_HOURS, QUARTER_DAYS] {
        let merged = store.history("v", archive, t).await.unwrap();
        assert_eq!(merged.len(), 1, "{archive:?}");
        assert_eq!(merged[0].at, t);
        let cpu = merged[0].values[0].unwrap();
        assert_eq!((cpu.avg, cpu.max), (20.0, 35.0), "the minutes' average and max");
        assert_eq!(merged[0].values[3], None);
    }
    // A day later the minute ring takes the first minute's slot; the
    // half hours keep both days.
    store
        .record_history(&[minute_point("v", t + 86_400, 50.0)])
        .await
        .unwrap();
    let minutes = store.history("v", MINUTES, 0).await.unwrap();
    assert_eq!(
        minutes.iter().map(|p| p.at).collect::<Vec<_>>(),
        [t + 60, t + 120, t + 86_400]
    );
    assert_eq!(store.history("v", HALF_HOURS, 0).await.unwrap().len(), 2);
    assert_eq!(
        store.history("v", MINUTES, t + 100).await.unwrap().len(),
        2,
        "since"
    );
    // An average that does not divide evenly is rounded, not truncated;
    // a series measured in fewer minutes is weighted by those alone.
    let u = t + 2 * 86_400;
    let mut first = minute_point("v", u, 0.01);
    first.values[0] = None;
    let points = [
        first,
        minute_point("v", u + 60, 0.02),
        minute_point("v", u + 120, 0.03),
    ];
    store.record_history(&points).await.unwrap();
    let merged = store.history("v", QUARTER_DAYS, u).await.unwrap();
    assert_eq!(
        merged[0].values[0].unwrap().avg,
        0.03,
        "(0.02 + 0.03) / 2, rounded up"
    );
    assert_eq!(merged[0].values[6].unwrap().avg, 7.5, "every minute");
    // A clock that went back does not write an old period over a newer
    // one in its slot.
    store
        .record_history(&[minute_point("v", u - 1440 * 60, 99.0)])
        .await
        .unwrap();
    assert_eq!(store.history("v", MINUTES, u).await.unwrap()[0].at, u);
    // The VPS's history goes with it.
    store.delete_instance("v").await.unwrap();
    assert!(store.history("v", QUARTER_DAYS, 0).await.unwrap().is_empty());
}

pub async fn traffic_adds_what_moved_since_the_last_reading_per_month(store: &dyn Store) {
    use super::TrafficReading;
    store
        .create_instance(&new_instance("v", 1_000_000))
        .await
        .unwrap();
    let read = |index: u32, bytes: u64| TrafficReading {
        link_index: index,
        received_bytes: bytes,
        sent_bytes: bytes * 2,
        received_packets: bytes / 100,
        sent_packets: bytes / 50,
    };
    // The first reading counts what the interface moved so far.
    let t = store
        .record_traffic("v", "2026-11", &read(7, 1000))
        .await
        .unwrap();
    assert_eq!((t.received_bytes, t.sent_bytes, t.sent_packets), (1000, 2000, 20));
    let t = store
        .record_traffic("v", "2026-11", &read(7, 1500))
        .await
        .unwrap();
    assert_eq!((t.received_bytes, t.sent_bytes), (1500, 3000));
    // A new month starts from what moved since.
    let t = store
        .record_traffic("v", "2026-12", &read(7, 1600))
        .await
        .unwrap();
    assert_eq!((t.month.as_str(), t.received_bytes), ("2026-12", 100));
    // A new interface (the VPS restarted) counts from its own zero.
    let t = store.record_traffic("v", "2026-12", &read(9, 300)).await.unwrap();
    assert_eq!(t.received_bytes, 400);
    // A reading older than the last (the sampler's, recorded after a
    // stop recorded a fresher one) adds nothing, and the last stays: what
    // moved since is counted once.
    let t = store.record_traffic("v", "2026-12", &read(9, 50)).await.unwrap();
    assert_eq!(t.received_bytes, 400);
    let t = store.record_traffic("v", "2026-12", &read(9, 350)).await.unwrap();
    assert_eq!(t.received_bytes, 450);
    let months: Vec<(String, u64)> = store
        .traffic("v")
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.month, t.received_bytes))
        .collect();
    assert_eq!(
        months,
        [("2026-12".to_string(), 450), ("2026-11".to_string(), 1500)]
    );
    let december = store.traffic_of_month("2026-12").await.unwrap();
    assert_eq!(december["v"].sent_bytes, 900);
    // Gone with its VPS.
    store.delete_instance("v").await.unwrap();
    assert!(store.traffic("v").await.unwrap().is_empty());
}

pub async fn an_address_is_held_once_in_its_network(store: &dyn Store) {
    let mut a = new_instance("a", 1_000_000);
    a.nic = Some(nic("a", "10.0.0.2"));
    store.create_instance(&a).await.unwrap();
    let mut b = new_instance("bb", 1_065_536);
    b.nic = Some(nic("bb", "10.0.0.3"));
    store.create_instance(&b).await.unwrap();
    store.add_address("a", "10.0.0.9").await.unwrap();
    store.add_address("a", "fd00::9").await.unwrap();
    // Held already: by a's additional address, or b's first one.
    for (who, address, holder) in [("bb", "10.0.0.9", "a"), ("a", "10.0.0.3", "bb")] {
        let err = store.add_address(who, address).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Taken(what) if what.contains(&format!("VPS {holder}"))),
            "{err}"
        );
    }
    let nic = store.nic("a").await.unwrap().unwrap();
    assert_eq!(nic.extra, ["10.0.0.9", "fd00::9"]);
    assert!(store.remove_address("a", "10.0.0.9").await.unwrap());
    assert!(!store.remove_address("a", "10.0.0.9").await.unwrap());
    store.add_address("bb", "10.0.0.9").await.unwrap();
    assert_eq!(store.nics().await.unwrap()[1].extra, ["10.0.0.9"]);
    assert!(matches!(
        store.add_address("nope", "10.0.0.20").await.unwrap_err(),
        StoreError::Missing(_)
    ));
}

pub async fn snapshots_are_unique_per_vps(store: &dyn Store) {
    store
        .create_instance(&new_instance("a", 1_000_000))
        .await
        .unwrap();
    store
        .create_instance(&new_instance("b", 1_065_536))
        .await
        .unwrap();
    assert!(store.insert_snapshot("a", "s1").await.unwrap());
    assert!(!store.insert_snapshot("a", "s1").await.unwrap());
    assert!(store.insert_snapshot("b", "s1").await.unwrap());
    assert!(store.insert_snapshot("a", "s0").await.unwrap());
    let names: Vec<String> = store
        .snapshots("a")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["s1", "s0"], "oldest first");
    store.delete_snapshot("a", "s1").await.unwrap();
    assert_eq!(store.snapshots("a").await.unwrap().len(), 1);
    assert_eq!(store.snapshots("b").await.unwrap().len(), 1);
}

pub async fn images_upsert_keeps_what_is_not_given(store: &dyn Store) {
    store
        .upsert_image(ImageUpdate {
            name: "mine",
            source: "imported",
            description: "imported from a file",
            size_bytes: Some(100),
            sha256: Some("abc"),
            facts: None,
        })
        .await
        .unwrap();
    store
        .upsert_image(ImageUpdate {
            name: "mine",
            source: "imported",
            sha256: Some("def"),
            ..Default::default()
        })
        .await
        .unwrap();
    let images = store.images().await.unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].size_bytes, Some(100));
    assert_eq!(images[0].sha256.as_deref(), Some("def"));
    assert_eq!(images[0].description, "imported from a file");
    store.delete_image("mine").await.unwrap();
    assert!(store.images().await.unwrap().is_empty());
}

pub async fn jobs_run_and_interrupted_ones_fail(store: &dyn Store) {
    store.create_tenant("acme", "").await.unwrap();
    store
        .insert_job("j1", "launch", DEFAULT_TENANT, "web")
        .await
        .unwrap();
    store.insert_job("j2", "launch", "acme", "db").await.unwrap();
    store
        .update_job("j1", JobStatus::Running, 40, Some("copying"), None)
        .await
        .unwrap();
    store
        .update_job("j1", JobStatus::Success, 100, None, None)
        .await
        .unwrap();
    let j1 = store.job("j1").await.unwrap().unwrap();
    assert_eq!((j1.status, j1.progress), (JobStatus::Success, 100));
    assert_eq!(j1.message.as_deref(), Some("copying"), "kept when not given");
    assert_eq!(store.fail_interrupted_jobs().await.unwrap(), 1);
    let j2 = store.job("j2").await.unwrap().unwrap();
    assert_eq!(j2.status, JobStatus::Failure);
    assert!(j2.error.unwrap().contains("interrupted"));
    assert_eq!(store.jobs(None).await.unwrap().len(), 2);
    let acme = store.jobs(Some("acme")).await.unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!((acme[0].id.as_str(), acme[0].tenant.as_str()), ("j2", "acme"));
    assert_eq!(store.job("nope").await.unwrap(), None);
}

pub async fn names_are_unique_within_a_tenant(store: &dyn Store) {
    store.create_tenant("acme", "a customer").await.unwrap();
    let ours = store
        .create_instance(&new_instance("web", 1_000_000))
        .await
        .unwrap();
    let theirs = store
        .create_instance(&new_instance_of("acme", "web", 1_065_536))
        .await
        .unwrap();
    assert_eq!((ours.key.as_str(), ours.tenant.as_str()), ("web", DEFAULT_TENANT));
    assert_eq!(theirs.key, theirs.uuid.to_string(), "keyed by its uuid");
    assert_eq!(theirs.name, "web");
    assert_eq!(
        store.instance_named("acme", "web").await.unwrap().map(|i| i.uuid),
        Some(theirs.uuid)
    );
    assert_eq!(store.instance_named("other", "web").await.unwrap(), None);
    assert!(matches!(
        store.create_instance(&new_instance_of("acme", "web", 1_131_072)).await,
        Err(StoreError::Taken(what)) if what.contains("name")
    ));
    assert!(matches!(
        store.create_instance(&new_instance_of("nobody", "web", 1_131_072)).await,
        Err(StoreError::Missing(what)) if what.contains("nobody")
    ));
    assert_eq!(store.instances().await.unwrap().len(), 2);
}

pub async fn a_tenant_goes_only_when_it_has_no_vps(store: &dyn Store) {
    let made = store.create_tenant("acme", "a customer").await.unwrap();
    assert_eq!(made.description, "a customer");
    assert!(matches!(
        store.create_tenant("acme", "").await,
        Err(StoreError::Taken(_))
    ));
    let names: Vec<String> = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["acme", DEFAULT_TENANT]);
    let vps = store
        .create_instance(&new_instance_of("acme", "web", 1_000_000))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_tenant("acme").await,
        Err(StoreError::InUse(_))
    ));
    assert!(store.tenant("acme").await.unwrap().is_some());
    store.delete_instance(&vps.key).await.unwrap();
    assert!(store.delete_tenant("acme").await.unwrap());
    assert!(!store.delete_tenant("acme").await.unwrap());
    assert_eq!(store.tenant("acme").await.unwrap(), None);
}

pub async fn tokens_are_kept_hashed_expire_and_go_with_their_tenant(store: &dyn Store) {
    store.create_tenant("acme", "").await.unwrap();
    let token = |id: &'static str, tenant: Option<&'static str>, lifetime_secs| NewTokenRecord {
        id,
        hash: "h",
        description: "billing",
        role: if tenant.is_some() {
            Role::Owner
        } else {
            Role::Admin
        },
        tenant,
        from_cidr: Some("192.0.2.0/24"),
        lifetime_secs,
    };
    let made = store
        .create_token(&token("t1", Some("acme"), Some(3600)))
        .await
        .unwrap();
    assert_eq!((made.role, made.tenant.as_deref()), (Role::Owner, Some("acme")));
    assert!(made.expires_at.is_some() && !made.expired);
    assert_eq!(made.from_cidr.as_deref(), Some("192.0.2.0/24"));
    let expired = store
        .create_token(&token("t2", Some("acme"), Some(0)))
        .await
        .unwrap();
    assert!(expired.expired, "a lifetime of 0 has passed at once");
    let admin = store.create_token(&token("t3", None, None)).await.unwrap();
    assert!(admin.expires_at.is_none() && !admin.expired);
    assert!(matches!(
        store.create_token(&token("t4", Some("nobody"), None)).await,
        Err(StoreError::Missing(_))
    ));
    assert!(matches!(
        store.create_token(&token("t1", None, None)).await,
        Err(StoreError::Taken(_))
    ));
    assert_eq!(store.tokens(None).await.unwrap().len(), 3);
    assert_eq!(store.tokens(Some(Some("acme"))).await.unwrap().len(), 2);
    let tenantless = store.tokens(Some(None)).await.unwrap();
    assert_eq!(
        tenantless.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        ["t3"]
    );
    store.touch_token("t1", "192.0.2.7").await.unwrap();
    let used = store.token("t1").await.unwrap().unwrap();
    assert!(used.last_used_at.is_some());
    assert_eq!(used.last_used_from.as_deref(), Some("192.0.2.7"));
    assert!(store.delete_token("t3").await.unwrap());
    assert!(!store.delete_token("t3").await.unwrap());
    assert_eq!(store.token("t3").await.unwrap(), None);
    // A tenant's tokens go with it.
    assert!(store.delete_tenant("acme").await.unwrap());
    assert!(store.tokens(None).await.unwrap().is_empty());
}

pub async fn every_addition_is_held_to_the_tenants_quota(store: &dyn Store) {
    store.create_tenant("acme", "").await.unwrap();
    let quota = croft_api::Quota {
        vpses: Some(2),
        memory_bytes: Some(128 << 20),
        snapshots: Some(1),
        ipv4_addresses: Some(1),
        port_forwards: Some(1),
        firewall_rules: Some(1),
        ..Default::default()
    };
    store.set_quota("acme", &quota).await.unwrap();
    let mut a = new_instance_of("acme", "a", 1_000_000);
    a.nic = Some(nic(&a.key.clone(), "10.0.0.2"));
    let a = store.create_instance(&a).await.unwrap();
    // A second address is one too many; the VPS is not recorded.
    let mut b = new_instance_of("acme", "b", 1_065_536);
    b.nic = Some(nic(&b.key.clone(), "10.0.0.3"));
    assert!(matches!(store.create_instance(&b).await, Err(StoreError::Quota(m)) if m.contains("IPv4")));
    // 64MiB more fits; 128MiB more does not, in a new VPS or a raise.
    let b = store
        .create_instance(&new_instance_of("acme", "b", 1_065_536))
        .await
        .unwrap();
    let big = BTreeMap::from([("limits.memory".to_string(), "128MiB".to_string())]);
    assert!(matches!(
        store.set_settings(&b.key, &big).await,
        Err(StoreError::Quota(_))
    ));
    assert_eq!(
        store.instance(&b.key).await.unwrap().unwrap().settings.raw["limits.memory"],
        "64MiB"
    );
    let none = BTreeMap::new();
    assert!(matches!(
        store.set_settings(&b.key, &none).await,
        Err(StoreError::LimitRequired(_))
    ));
    assert!(matches!(
        store.create_instance(&new_instance_of("acme", "c", 1_131_072)).await,
        Err(StoreError::Quota(m)) if m.contains("VPSes")
    ));
    // One of each child record.
    assert!(store.insert_snapshot(&a.key, "s1").await.unwrap());
    assert!(matches!(
        store.insert_snapshot(&b.key, "s1").await,
        Err(StoreError::Quota(_))
    ));
    let forward = |port| ForwardRecord {
        protocol: "tcp".into(),
        host_port: port,
        instance: a.key.clone(),
        vps_port: 80,
        host_port_end: None,
    };
    store.insert_forward(&forward(8080)).await.unwrap();
    assert!(matches!(
        store.insert_forward(&forward(8081)).await,
        Err(StoreError::Quota(_))
    ));
    store
        .edit_firewall_rules(
            &a.key,
            &super::RuleEdit::Insert {
                position: None,
                rule: rule("22"),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .edit_firewall_rules(
                &b.key,
                &super::RuleEdit::Insert {
                    position: None,
                    rule: rule("80")
                }
            )
            .await,
        Err(StoreError::Quota(_))
    ));
    let used = store.tenant_usage("acme").await.unwrap();
    assert_eq!(
        (
            used.vpses,
            used.memory_bytes,
            used.snapshots,
            used.ipv4_addresses,
            used.port_forwards,
            used.firewall_rules
        ),
        (2, 128 << 20, 1, 1, 1, 1)
    );
    // The default tenant has no quota.
    for i in 0..3 {
        store
            .create_instance(&new_instance(&format!("d{i}"), 2_000_000 + i * 65_536))
            .await
            .unwrap();
    }
    // A quota below what is held, or capping a limit a VPS lacks, is
    // refused and changes nothing.
    let lower = croft_api::Quota {
        vpses: Some(1),
        ..quota
    };
    assert!(matches!(
        store.set_quota("acme", &lower).await,
        Err(StoreError::Quota(_))
    ));
    let cpu = croft_api::Quota {
        cpu_millicores: Some(1000),
        ..quota
    };
    assert!(matches!(
        store.set_quota("acme", &cpu).await,
        Err(StoreError::LimitRequired(_))
    ));
    assert_eq!(store.tenant("acme").await.unwrap().unwrap().quota, quota);
    assert!(matches!(
        store.set_quota("nobody", &quota).await,
        Err(StoreError::Missing(_))
    ));
}

pub async fn the_audit_log_keeps_entries_newest_first(store: &dyn Store) {
    let entry = |tenant: &str, path: &str| croft_api::AuditEntry {
        id: 0,
        at: String::new(),
        caller: "token abc".into(),
        role: "owner".into(),
        tenant: tenant.into(),
        method: "POST".into(),
        path: path.into(),
        action: "vps-change".into(),
        status: 202,
        remote: Some("192.0.2.1:4000".into()),
    };
    store
        .record_audit(&entry("acme", "/1.0/instances"))
        .await
        .unwrap();
    store
        .record_audit(&entry("default", "/1.0/tenants"))
        .await
        .unwrap();
    store
        .record_audit(&entry("acme", "/1.0/instances/web/state"))
        .await
        .unwrap();
    let all = store.audit(None, 10).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].path, "/1.0/instances/web/state", "newest first");
    assert!(all[0].id > all[1].id && !all[0].at.is_empty());
    assert_eq!(
        (all[0].status, all[0].remote.as_deref()),
        (202, Some("192.0.2.1:4000"))
    );
    let acme = store.audit(Some("acme"), 1).await.unwrap();
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0].tenant, "acme");
}

pub async fn a_trust_token_enrolls_one_certificate_once(store: &dyn Store) {
    store.create_tenant("acme", "").await.unwrap();
    let token = |id: &str, tenant: Option<&str>| TrustTokenRecord {
        id: id.into(),
        hash: "h".into(),
        name: "laptop".into(),
        role: if tenant.is_some() {
            Role::Viewer
        } else {
            Role::Admin
        },
        tenant: tenant.map(str::to_string),
        created_at: String::new(),
        expires_at: String::new(),
        expired: false,
    };
    let made = store
        .create_trust_token(&token("t1", Some("acme")), 3600)
        .await
        .unwrap();
    assert!(!made.expired && !made.expires_at.is_empty());
    assert!(
        store
            .create_trust_token(&token("t0", Some("acme")), 0)
            .await
            .unwrap()
            .expired
    );
    assert!(matches!(
        store.create_trust_token(&token("t2", Some("nobody")), 60).await,
        Err(StoreError::Missing(_))
    ));
    store.create_trust_token(&token("t3", None), 60).await.unwrap();
    assert_eq!(store.trust_tokens(Some("acme")).await.unwrap().len(), 2);
    assert_eq!(store.trust_tokens(None).await.unwrap().len(), 3);
    let cert = |fingerprint: &str, tenant: Option<&str>| CertificateRecord {
        fingerprint: fingerprint.into(),
        name: "laptop".into(),
        role: Role::Viewer,
        tenant: tenant.map(str::to_string),
        created_at: String::new(),
    };
    assert!(store.enroll("t1", &cert("aa", Some("acme"))).await.unwrap());
    assert!(
        !store.enroll("t1", &cert("bb", Some("acme"))).await.unwrap(),
        "used up"
    );
    assert_eq!(store.certificate("bb").await.unwrap(), None);
    // A fingerprint already trusted: refused, and the token kept.
    assert!(matches!(
        store.enroll("t3", &cert("aa", None)).await,
        Err(StoreError::Taken(_))
    ));
    assert!(store.trust_token("t3").await.unwrap().is_some());
    let trusted = store.certificate("aa").await.unwrap().unwrap();
    assert_eq!(
        (trusted.role, trusted.tenant.as_deref()),
        (Role::Viewer, Some("acme"))
    );
    assert_eq!(store.certificates(Some("acme")).await.unwrap().len(), 1);
    assert!(store.delete_trust_token("t3").await.unwrap());
    assert!(!store.delete_trust_token("t3").await.unwrap());
    // A tenant's certificates and tokens go with it.
    assert!(store.delete_tenant("acme").await.unwrap());
    assert!(store.certificates(None).await.unwrap().is_empty());
    assert!(store.trust_tokens(None).await.unwrap().is_empty());
    assert!(!store.delete_certificate("aa").await.unwrap());
}

pub async fn users_and_their_sessions(store: &dyn Store) {
    use super::{SessionRecord, UserRecord};
    store.create_tenant("acme", "").await.unwrap();
    let user = |name: &str, tenant: Option<&str>, role: Role| UserRecord {
        name: name.into(),
        tenant: tenant.map(str::to_string),
        role,
        password_hash: format!("$argon2id$hash-of-{name}"),
        created_at: String::new(),
        last_login_at: None,
    };
    let alice = store
        .create_user(&user("alice", Some("acme"), Role::Owner))
        .await
        .unwrap();
    assert_eq!((alice.role, alice.tenant.as_deref()), (Role::Owner, Some("acme")));
    assert!(!alice.created_at.is_empty());
    store.create_user(&user("root", None, Role::Admin)).await.unwrap();
    let err = store
        .create_user(&user("alice", None, Role::Admin))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Taken(_)), "{err:?}");
    let err = store
        .create_user(&user("bob", Some("nope"), Role::Viewer))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Missing(_)), "{err:?}");
    let names = |users: Vec<UserRecord>| users.into_iter().map(|u| u.name).collect::<Vec<_>>();
    assert_eq!(names(store.users(Some(Some("acme"))).await.unwrap()), ["alice"]);
    assert_eq!(names(store.users(Some(None)).await.unwrap()), ["root"]);
    assert_eq!(names(store.users(None).await.unwrap()), ["alice", "root"]);

    let session = |hash: &str, expires_at: i64| SessionRecord {
        hash: hash.into(),
        user: "alice".into(),
        created_at: 100,
        expires_at,
        seen_at: 100,
    };
    let hash = "$argon2id$hash-of-alice";
    for (id, expires) in [("h1", 1000), ("h2", 1000), ("old", 150)] {
        assert!(store.create_session(&session(id, expires), hash).await.unwrap());
    }
    // A login that checked a password changed since makes no session.
    assert!(!store
        .create_session(&session("stale", 1000), "$argon2id$before")
        .await
        .unwrap());
    assert!(store.session("stale").await.unwrap().is_none());
    let (s, u) = store.session("h1").await.unwrap().unwrap();
    assert_eq!(
        (s.user.as_str(), s.expires_at, u.role),
        ("alice", 1000, Role::Owner)
    );
    assert!(u.last_login_at.is_some(), "a login is recorded");
    store.touch_session("h1", 200).await.unwrap();
    assert_eq!(store.session("h1").await.unwrap().unwrap().0.seen_at, 200);
    assert_eq!(store.delete_expired_sessions(200).await.unwrap(), 1);
    assert!(store.session("old").await.unwrap().is_none());
    // A new password ends every other session of the user.
    assert!(store
        .set_password("alice", "$argon2id$new", Some("h1"))
        .await
        .unwrap());
    assert!(store.session("h2").await.unwrap().is_none());
    assert_eq!(
        store.session("h1").await.unwrap().unwrap().1.password_hash,
        "$argon2id$new"
    );
    assert!(!store.set_password("nobody", "x", None).await.unwrap());
    assert!(store.delete_session("h1").await.unwrap());
    assert!(!store.delete_session("h1").await.unwrap());
    // A user's sessions go with it, and a tenant's users with the tenant.
    assert!(store
        .create_session(&session("h3", 1000), "$argon2id$new")
        .await
        .unwrap());
    assert!(store.delete_tenant("acme").await.unwrap());
    assert!(store.user("alice").await.unwrap().is_none());
    assert!(store.session("h3").await.unwrap().is_none());
    assert!(store.delete_user("root").await.unwrap());
    assert!(!store.delete_user("root").await.unwrap());
}

pub async fn a_vps_activity_is_its_paths_done_entries(store: &dyn Store) {
    let entry = |tenant: &str, path: &str, status: u16| croft_api::AuditEntry {
        id: 0,
        at: String::new(),
        caller: "user a".into(),
        role: "owner".into(),
        tenant: tenant.into(),
        method: "POST".into(),
        path: path.into(),
        action: "vps-change".into(),
        status,
        remote: None,
    };
    for (tenant, path, status) in [
        ("acme", "/1.0/instances/web", 202),
        ("acme", "/1.0/instances/web/state", 200),
        ("acme", "/1.0/instances/web/state", 404),
        ("acme", "/1.0/instances/web2/state", 200),
        ("acme", "/1.0/instances/we_/state", 200),
        ("beta", "/1.0/instances/web/state", 200),
    ] {
        store.record_audit(&entry(tenant, path, status)).await.unwrap();
    }
    let paths: Vec<String> = store
        .audit_of_path("acme", "/1.0/instances/web", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        paths,
        ["/1.0/instances/web/state", "/1.0/instances/web"],
        "newest first, done only"
    );
    assert_eq!(
        store
            .audit_of_path("acme", "/1.0/instances/we_", 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .audit_of_path("acme", "/1.0/instances/web", 1)
            .await
            .unwrap()
            .len(),
        1
    );
}
