//! Tenants' quotas, as the store enforces them: every change that adds to
//! what a tenant holds (a VPS made or copied, its limits raised, a
//! snapshot, a port forward, a firewall rule) is checked here, inside the
//! store transaction that makes it, against the usage read in that same
//! transaction. No caller can skip it, and concurrent changes at the edge
//! of a quota cannot both pass.

use super::{Result, StoreError};
use croft_api::config::InstanceConfig;
use croft_api::{format_size, Quota, QuotaUsage as Usage};

/// What one VPS adds to its tenant's usage.
pub fn of_vps(cfg: &InstanceConfig, has_ipv4: bool) -> Usage {
    Usage {
        vpses: 1,
        cpu_millicores: cfg.cpu_millicores.unwrap_or(0),
        memory_bytes: cfg.memory_bytes.unwrap_or(0),
        disk_bytes: cfg.disk_bytes.unwrap_or(0),
        processes_per_vps: cfg.processes.unwrap_or(0),
        ipv4_addresses: u64::from(has_ipv4),
        ..Usage::default()
    }
}

/// `a` and `b` together.
pub fn add(a: Usage, b: Usage) -> Usage {
    Usage {
        vpses: a.vpses + b.vpses,
        cpu_millicores: a.cpu_millicores + b.cpu_millicores,
        memory_bytes: a.memory_bytes + b.memory_bytes,
        disk_bytes: a.disk_bytes + b.disk_bytes,
        processes_per_vps: a.processes_per_vps.max(b.processes_per_vps),
        snapshots: a.snapshots + b.snapshots,
        ipv4_addresses: a.ipv4_addresses + b.ipv4_addresses,
        port_forwards: a.port_forwards + b.port_forwards,
        firewall_rules: a.firewall_rules + b.firewall_rules,
    }
}

/// One quantity: its name for messages, how to show a value, its cap and
/// usage.
struct Quantity {
    what: &'static str,
    show: fn(u64) -> String,
    cap: Option<u64>,
    before: u64,
    after: u64,
}

fn count(n: u64) -> String {
    n.to_string()
}

fn cpus(millicores: u64) -> String {
    let text = format!("{}.{:03}", millicores / 1000, millicores % 1000);
    format!("{} CPUs", text.trim_end_matches('0').trim_end_matches('.'))
}

fn quantities(quota: &Quota, before: &Usage, after: &Usage) -> [Quantity; 9] {
    let q = |what, show, cap, before, after| Quantity {
        what,
        show,
        cap,
        before,
        after,
    };
    [
        q("VPSes", count, quota.vpses, before.vpses, after.vpses),
        q(
            "CPU",
            cpus,
            quota.cpu_millicores,
            before.cpu_millicores,
            after.cpu_millicores,
        ),
        q(
            "memory",
            format_size,
            quota.memory_bytes,
            before.memory_bytes,
            after.memory_bytes,
        ),
        q(
            "disk",
            format_size,
            quota.disk_bytes,
            before.disk_bytes,
            after.disk_bytes,
        ),
        q(
            "processes per VPS",
            count,
            quota.processes_per_vps,
            before.processes_per_vps,
            after.processes_per_vps,
        ),
        q(
            "snapshots",
            count,
            quota.snapshots,
            before.snapshots,
            after.snapshots,
        ),
        q(
            "IPv4 addresses",
            count,
            quota.ipv4_addresses,
            before.ipv4_addresses,
            after.ipv4_addresses,
        ),
        q(
            "port forwards",
            count,
            quota.port_forwards,
            before.port_forwards,
            after.port_forwards,
        ),
        q(
            "firewall rules",
            count,
            quota.firewall_rules,
            before.firewall_rules,
            after.firewall_rules,
        ),
    ]
}

/// Refuse a change of `tenant`'s usage from `before` to `after` that
/// raises a quantity beyond its cap. A change that lowers or keeps a
/// quantity passes even where usage is above the cap.
pub fn check(tenant: &str, quota: &Quota, before: &Usage, after: &Usage) -> Result<()> {
    for q in quantities(quota, before, after) {
        if let Some(cap) = q.cap {
            if q.after > cap && q.after > q.before {
                return Err(StoreError::Quota(format!(
                    "tenant {tenant}'s quota of {} {} would be exceeded: {} in use, {} asked for",
                    (q.show)(cap),
                    q.what,
                    (q.show)(q.before),
                    (q.show)(q.after)
                )));
            }
        }
    }
    Ok(())
}

/// Refuse a quota below what `tenant` already holds.
pub fn fits(tenant: &str, quota: &Quota, usage: &Usage) -> Result<()> {
    for q in quantities(quota, usage, usage) {
        if let Some(cap) = q.cap.filter(|cap| q.before > *cap) {
            return Err(StoreError::Quota(format!(
                "tenant {tenant} already holds {} {}, more than a quota of {}",
                (q.show)(q.before),
                q.what,
                (q.show)(cap)
            )));
        }
    }
    Ok(())
}

/// Refuse a VPS of `tenant` without a limit its quota caps (it would hold
/// an unbounded share of the capped total).
pub fn require_limits(tenant: &str, vps: &str, quota: &Quota, cfg: &InstanceConfig) -> Result<()> {
    let missing = [
        (
            quota.cpu_millicores.is_some() && cfg.cpu_millicores.is_none(),
            "limits.cpu",
        ),
        (
            quota.memory_bytes.is_some() && cfg.memory_bytes.is_none(),
            "limits.memory",
        ),
        (
            quota.disk_bytes.is_some() && cfg.disk_bytes.is_none(),
            "limits.disk",
        ),
        (
            quota.processes_per_vps.is_some() && cfg.processes.is_none(),
            "limits.processes",
        ),
    ];
    match missing.iter().find(|(missing, _)| *missing) {
        Some((_, key)) => Err(StoreError::LimitRequired(format!(
            "tenant {tenant} has a quota on {key}: VPS {vps} needs {key} set (or a plan)"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raising_a_capped_quantity_past_its_cap_is_refused() {
        let quota = Quota {
            vpses: Some(2),
            memory_bytes: Some(2 << 30),
            ..Quota::default()
        };
        let before = Usage {
            vpses: 1,
            memory_bytes: 1 << 30,
            ..Usage::default()
        };
        let one = |mem| {
            of_vps(
                &InstanceConfig {
                    memory_bytes: Some(mem),
                    ..Default::default()
                },
                false,
            )
        };
        check("acme", &quota, &before, &add(before, one(1 << 30))).unwrap();
        let err = check("acme", &quota, &before, &add(before, one(2 << 30))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tenant acme's quota of 2GiB memory would be exceeded: 1GiB in use, 3GiB asked for"
        );
        // Above the cap already (a quota set before): a change that does
        // not raise it passes.
        let over = Usage { vpses: 3, ..before };
        check("acme", &quota, &over, &Usage { snapshots: 1, ..over }).unwrap();
        assert!(fits("acme", &quota, &over).is_err());
        fits("acme", &quota, &before).unwrap();
    }

    #[test]
    fn a_capped_limit_must_be_set() {
        let quota = Quota {
            cpu_millicores: Some(4000),
            ..Quota::default()
        };
        let err = require_limits("acme", "web", &quota, &InstanceConfig::default()).unwrap_err();
        assert!(err.to_string().contains("limits.cpu"), "{err}");
        let cfg = InstanceConfig {
            cpu_millicores: Some(500),
            ..Default::default()
        };
        require_limits("acme", "web", &quota, &cfg).unwrap();
        assert_eq!(cpus(2500), "2.5 CPUs");
        assert_eq!(cpus(4000), "4 CPUs");
    }
}
