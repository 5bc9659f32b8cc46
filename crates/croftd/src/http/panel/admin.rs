//! The provider's pages: tenants with their quotas and usage, the panel's
//! users, plans, images, API tokens and the trust store, the host's
//! capacity (CPU, memory, the disk pool, addresses: allocated, used, free)
//! and the audit log. Each is
//! authorized with the action of the API route that shows the same
//! things; their forms call that API (`panel.js`'s `data-api` forms).

use super::pages::Nav;
use super::{render, PanelCaller, PanelError};
use crate::auth::{authorize, Action, Caller};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use croft_api::{format_size, InstanceConfig};

use super::super::AppState;

/// The admin's pages ask the policy for `action` (in no tenant).
fn admin_only(caller: &Caller, action: Action) -> Result<(), PanelError> {
    authorize(caller, action, None)?;
    Ok(())
}

/// A quantity against a cap: `used` of `cap`, or `used` alone.
fn of(used: String, cap: Option<String>) -> String {
    match cap {
        Some(cap) => format!("{used} of {cap}"),
        None => used,
    }
}

/// A tenant's row.
pub(super) struct TenantRow {
    name: String,
    description: String,
    vpses: String,
    cpu: String,
    memory: String,
    disk: String,
    snapshots: String,
    addresses: String,
    /// Its quota as the quota form's fields (JSON), for the form to show.
    quota: String,
}

/// `bytes` exactly, in the largest binary unit that divides it (`8GiB`).
fn exact_size(bytes: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// A quota as the quota form's fields: what each shows, absent if no cap.
fn quota_fields(q: &croft_api::Quota) -> String {
    let mut fields = serde_json::Map::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            fields.insert(name.into(), v.into());
        }
    };
    put("vpses", q.vpses.map(|v| v.to_string()));
    put(
        "cpu_millicores",
        q.cpu_millicores.map(|m| format!("{}", m as f64 / 1000.0)),
    );
    put("memory_bytes", q.memory_bytes.map(exact_size));
    put("disk_bytes", q.disk_bytes.map(exact_size));
    put("processes_per_vps", q.processes_per_vps.map(|v| v.to_string()));
    put("snapshots", q.snapshots.map(|v| v.to_string()));
    put("ipv4_addresses", q.ipv4_addresses.map(|v| v.to_string()));
    put("port_forwards", q.port_forwards.map(|v| v.to_string()));
    put("firewall_rules", q.firewall_rules.map(|v| v.to_string()));
    serde_json::Value::Object(fields).to_string()
}

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct TenantsPage {
    nav: Nav,
    tenants: Vec<TenantRow>,
    plans: Vec<String>,
}

/// `GET /ui/admin/tenants`.
pub(super) async fn tenants(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
) -> Result<Response, PanelError> {
    admin_only(&caller, Action::TenantManage)?;
    let mut rows = Vec::new();
    for t in s.tenants.list().await? {
        let usage = s.tenants.usage(&t.name).await?;
        let (u, q) = (usage.used, usage.quota);
        let count = |used: u64, cap: Option<u64>| of(used.to_string(), cap.map(|c| c.to_string()));
        let size = |used: u64, cap: Option<u64>| of(format_size(used), cap.map(format_size));
        let cpu = |m: u64| format!("{}", m as f64 / 1000.0);
        rows.push(TenantRow {
            quota: quota_fields(&q),
            vpses: count(u.vpses, q.vpses),
            cpu: of(cpu(u.cpu_millicores), q.cpu_millicores.map(cpu)),
            memory: size(u.memory_bytes, q.memory_bytes),
            disk: size(u.disk_bytes, q.disk_bytes),
            snapshots: count(u.snapshots, q.snapshots),
            addresses: count(u.ipv4_addresses, q.ipv4_addresses),
            description: t.description,
            name: t.name,
        });
    }
    let plans = s.tenants.plans().await?.into_iter().map(|p| p.name).collect();
    Ok(render(&TenantsPage {
        nav: Nav::of(&caller),
        tenants: rows,
        plans,
    }))
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<croft_api::User>,
    tenants: Vec<String>,
}

/// `GET /ui/admin/users`: every panel user.
pub(super) async fn users(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
) -> Result<Response, PanelError> {
    admin_only(&caller, Action::TenantManage)?;
    let users = s.access.list_users(None).await?;
    let tenants = s.tenants.list().await?.into_iter().map(|t| t.name).collect();
    Ok(render(&UsersPage {
        nav: Nav::of(&caller),
        users,
        tenants,
    }))
}

/// A plan's row: name, description, its limits.
type PlanRow = (String, String, Vec<(String, String)>);

#[derive(Template)]
#[template(path = "admin/plans.html")]
struct PlansPage {
    nav: Nav,
    plans: Vec<PlanRow>,
}

/// `GET /ui/admin/plans`.
pub(super) async fn plans(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
) -> Result<Response, PanelError> {
    admin_only(&caller, Action::PlanManage)?;
    let plans = s
        .tenants
        .plans()
        .await?
        .into_iter()
        .map(|p| (p.name, p.description, p.config.into_iter().collect()))
        .collect();
    Ok(render(&PlansPage {
        nav: Nav::of(&caller),
        plans,
    }))
}

#[derive(Template)]
#[template(path = "admin/images.html")]
struct ImagesPage {
    nav: Nav,
    images: Vec<(croft_api::Image, String)>,
}

/// `GET /ui/admin/images`.
pub(super) async fn images(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
) -> Result<Response, PanelError> {
    admin_only(&caller, Action::ImageChange)?;
    let images = s
        .images
        .list()
        .await?
        .into_iter()
        .map(|i| {
            let size = i.size_bytes.map(format_size).unwrap_or_else(|| "-".into());
            (i, size)
        })
        .collect();
    Ok(render(&ImagesPage {
        nav: Nav::of(&caller),
        images,
    }))
}

#[derive(Template)]
#[template(path = "admin/access.html")]
struct AccessPage {
    nav: Nav,
    tokens: Vec<croft_api::Token>,
    trust: croft_api::Trust,
    tenants: Vec<String>,
}

/// `GET /ui/admin/access`: every API token, the trusted client
/// certificates and the trust tokens not yet used, with the forms that
/// make and revoke them.
pub(super) async fn access(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
) -> Result<Response, PanelError> {
    // Every tenant's tokens and certificates: the admin's alone (a
    // tenant's owner manages its own tokens on the account page).
    admin_only(&caller, Action::TenantManage)?;
    let tokens = s.access.list_tokens(None).await?;
    let (pending, certificates) = s.access.trust(None).await?;
    let tenants = s.tenants.list().await?.into_iter().map(|t| t.name).collect();
    Ok(render(&AccessPage {
        nav: Nav::of(&caller),
        tokens,
        trust: croft_api::Trust {
            certificates,
            tokens: pending,
        },
        tenants,
    }))
}

/// One resource of the host: what it has, what VPSes were promised, what
/// they use.
pub(super) struct Capacity {
    what: &'static str,
    total: String,
    allocated: String,
    used: String,
    free: String,
}

#[derive(Template)]
#[template(path = "admin/host.html")]
struct HostPage {
    nav: Nav,
    capacity: Vec<Capacity>,
}

/// Total and available memory of the host, from /proc/meminfo.
fn host_memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

/// How many IPv4 addresses a network can hand out: its pool's IPv4
/// ranges (`a-b`, or `a` alone), or else its IPv4 subnet less the
/// addresses VPSes never get (network, gateway, broadcast; a routed
/// network's gateway is its network address).
fn ipv4_capacity(network: &croft_api::Network) -> Option<u64> {
    use std::net::Ipv4Addr;
    let ranges: Vec<(Ipv4Addr, Ipv4Addr)> = network
        .pool
        .iter()
        .filter_map(|range| match range.split_once('-') {
            Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
            None => range.trim().parse().ok().map(|a| (a, a)),
        })
        .collect();
    if !ranges.is_empty() {
        return Some(
            ranges
                .iter()
                .map(|(a, b)| u64::from(u32::from(*b)).saturating_sub(u64::from(u32::from(*a))) + 1)
                .sum(),
        );
    }
    let prefix: u32 = network.ipv4.as_ref()?.split_once('/')?.1.parse().ok()?;
    let unusable = if network.kind == "routed" { 2 } else { 3 };
    Some((1u64 << (32 - prefix.min(32))).saturating_sub(unusable))
}

/// IPv4 addresses a network's VPSes hold: first addresses and extra ones.
fn ipv4_held(network: &croft_api::Network) -> u64 {
    network
        .leases
        .iter()
        .map(|l| {
            u64::from(l.ipv4.is_some())
                + l.extra
                    .iter()
                    .filter(|a| {
                        a.split('/')
                            .next()
                            .is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
                    })
                    .count() as u64
        })
        .sum()
}

/// `GET /ui/admin/host`: the host's capacity.
pub(super) async fn host(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
) -> Result<Response, PanelError> {
    admin_only(&caller, Action::HostRead)?;
    let vpses = s.instances.list(None).await?;
    let (mut cpu, mut memory, mut disk, mut memory_used, mut running) = (0u64, 0u64, 0u64, 0u64, 0usize);
    for vps in &vpses {
        if let Ok(cfg) = InstanceConfig::parse(&vps.config) {
            cpu += cfg.cpu_millicores.unwrap_or(0);
            memory += cfg.memory_bytes.unwrap_or(0);
            disk += cfg.disk_bytes.unwrap_or(0);
        }
        if let Some(u) = &vps.usage {
            memory_used += u.memory_bytes;
            running += 1;
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut capacity = vec![
        Capacity {
            what: "CPU",
            total: format!("{cpus} CPUs"),
            allocated: format!("{} CPUs", cpu as f64 / 1000.0),
            used: format!("{running} VPSes running of {}", vpses.len()),
            free: format!(
                "{} CPUs unpromised",
                (cpus * 1000).saturating_sub(cpu) as f64 / 1000.0
            ),
        },
        match host_memory() {
            Some((total, available)) => Capacity {
                what: "Memory",
                total: format_size(total),
                allocated: format_size(memory),
                used: format!(
                    "{} by VPSes, {} by the host in all",
                    format_size(memory_used),
                    format_size(total - available)
                ),
                free: format_size(available),
            },
            None => Capacity {
                what: "Memory",
                total: "-".into(),
                allocated: format_size(memory),
                used: format_size(memory_used),
                free: "-".into(),
            },
        },
    ];
    for pool in s.instances.pools()? {
        capacity.push(Capacity {
            what: "Disk pool",
            total: format!(
                "{} ({}, {})",
                format_size(pool.size_bytes),
                pool.name,
                pool.driver
            ),
            allocated: format_size(disk),
            used: format_size(pool.used_bytes),
            free: format_size(pool.free_bytes),
        });
    }
    for network in s.network.networks().await? {
        let leased = ipv4_held(&network);
        let total = ipv4_capacity(&network);
        capacity.push(Capacity {
            what: "IPv4 addresses",
            total: format!(
                "{} ({})",
                total.map_or("-".into(), |t| t.to_string()),
                network.name
            ),
            allocated: leased.to_string(),
            used: leased.to_string(),
            free: total.map_or("-".into(), |t| t.saturating_sub(leased).to_string()),
        });
    }
    Ok(render(&HostPage {
        nav: Nav::of(&caller),
        capacity,
    }))
}

#[derive(serde::Deserialize)]
pub(super) struct AuditQuery {
    tenant: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Nav,
    entries: Vec<croft_api::AuditEntry>,
    tenant: String,
}

/// `GET /ui/admin/audit`: the latest 200 entries (of one tenant with
/// `?tenant=`).
pub(super) async fn audit(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PanelError> {
    admin_only(&caller, Action::AuditRead)?;
    let tenant = query.tenant.filter(|t| !t.is_empty());
    let entries = s.access.audit(tenant.as_deref(), 200).await?;
    Ok(render(&AuditPage {
        nav: Nav::of(&caller),
        entries,
        tenant: tenant.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(ipv4: &str, pool: &[&str]) -> croft_api::Network {
        serde_json::from_value(serde_json::json!({
            "name": "n", "kind": "nat", "bridge": "b", "ipv4": ipv4, "ipv6": null, "nat": true,
            "isolated": false, "uplink": null, "pool": pool, "dns": [], "leases": []
        }))
        .unwrap()
    }

    #[test]
    fn a_networks_capacity_is_its_pool_or_its_subnet() {
        assert_eq!(ipv4_capacity(&network("10.0.0.1/24", &[])), Some(253));
        assert_eq!(
            ipv4_capacity(&network(
                "192.0.2.1/24",
                &["192.0.2.10-192.0.2.19", "192.0.2.100-192.0.2.100"]
            )),
            Some(11)
        );
    }
}
