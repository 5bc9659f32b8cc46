//! The SQLite store's side of quotas: a tenant's quota and usage read
//! inside the transaction of the change they are checked for.

use super::corrupt;
use crate::store::quota::{add, check, of_vps};
use crate::store::{Result, StoreError};
use croft_api::config::InstanceConfig;
use croft_api::{Quota, QuotaUsage as Usage};
use sqlx::{Row, SqliteConnection};
use std::collections::BTreeMap;

/// A stored quota.
pub(super) fn parse_quota(tenant: &str, text: &str) -> Result<Quota> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("the quota of tenant {tenant}"), e))
}

/// `tenant`'s quota; `None` if there is no such tenant.
pub(super) async fn quota_of(conn: &mut SqliteConnection, tenant: &str) -> Result<Option<Quota>> {
    let text: Option<String> = sqlx::query_scalar("SELECT quota FROM tenants WHERE name = ?")
        .bind(tenant)
        .fetch_optional(&mut *conn)
        .await?;
    text.map(|t| parse_quota(tenant, &t)).transpose()
}

/// A stored VPS configuration, parsed.
pub(super) fn parse_config(vps: &str, text: &str) -> Result<InstanceConfig> {
    let raw: BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| corrupt(format!("the configuration of {vps}"), e))?;
    InstanceConfig::parse(&raw)
        .map_err(|e| corrupt(format!("the configuration of {vps}"), crate::error_chain(&e)))
}

/// What `tenant` holds, with VPS `replaced`'s configuration taken as the
/// one given (a change being checked).
pub(super) async fn usage_of(
    conn: &mut SqliteConnection,
    tenant: &str,
    replaced: Option<(&str, &InstanceConfig)>,
) -> Result<Usage> {
    let rows = sqlx::query(
        "SELECT i.key, i.config, n.ipv4 IS NOT NULL AS has_ipv4
         FROM instances i LEFT JOIN nics n ON n.instance = i.key AND n.idx = 0 WHERE i.tenant = ?",
    )
    .bind(tenant)
    .fetch_all(&mut *conn)
    .await?;
    let mut usage = Usage::default();
    for row in &rows {
        let key: String = row.try_get("key")?;
        let has_ipv4: bool = row.try_get("has_ipv4")?;
        let vps = match replaced {
            Some((k, cfg)) if k == key => of_vps(cfg, has_ipv4),
            _ => of_vps(
                &parse_config(&key, &row.try_get::<String, _>("config")?)?,
                has_ipv4,
            ),
        };
        usage = add(usage, vps);
    }
    let count = |table: &'static str| {
        format!("SELECT count(*) FROM {table} t JOIN instances i ON t.instance = i.key WHERE i.tenant = ?")
    };
    // A forward of a range counts each of its ports.
    let forwarded: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(COALESCE(t.host_port_end, t.host_port) - t.host_port + 1), 0)
         FROM port_forwards t JOIN instances i ON t.instance = i.key WHERE i.tenant = ?",
    )
    .bind(tenant)
    .fetch_one(&mut *conn)
    .await?;
    usage.port_forwards = u64::try_from(forwarded).unwrap_or(0);
    for (table, field) in [
        ("snapshots", &mut usage.snapshots),
        ("firewall_rules", &mut usage.firewall_rules),
    ] {
        let n: i64 = sqlx::query_scalar(&count(table))
            .bind(tenant)
            .fetch_one(&mut *conn)
            .await?;
        *field = u64::try_from(n).unwrap_or(0);
    }
    // Additional IPv4 addresses, and those of further interfaces, count
    // like a VPS's first.
    let extra4: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM nic_addresses a JOIN instances i ON a.instance = i.key
                 WHERE i.tenant = ?1 AND a.address NOT LIKE '%:%')
              + (SELECT count(*) FROM nics n JOIN instances i ON n.instance = i.key
                 WHERE i.tenant = ?1 AND n.idx > 0 AND n.ipv4 IS NOT NULL)",
    )
    .bind(tenant)
    .fetch_one(&mut *conn)
    .await?;
    usage.ipv4_addresses += u64::try_from(extra4).unwrap_or(0);
    // A security group's rules count once, wherever it is attached.
    let in_groups: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM firewall_group_rules r JOIN firewall_groups g ON r.group_id = g.id
         WHERE g.tenant = ?",
    )
    .bind(tenant)
    .fetch_one(&mut *conn)
    .await?;
    usage.firewall_rules += u64::try_from(in_groups).unwrap_or(0);
    Ok(usage)
}

/// Check that adding `more` (a snapshot, a forward, a rule) to the tenant
/// of VPS `key` keeps it within its quota.
pub(super) async fn guard_addition(conn: &mut SqliteConnection, key: &str, more: Usage) -> Result<()> {
    let tenant: Option<String> = sqlx::query_scalar("SELECT tenant FROM instances WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(tenant) = tenant else {
        return Err(StoreError::Missing(format!("VPS {key}")));
    };
    guard_tenant_addition(conn, &tenant, more).await
}

/// Check that adding `more` to `tenant` keeps it within its quota.
pub(super) async fn guard_tenant_addition(
    conn: &mut SqliteConnection,
    tenant: &str,
    more: Usage,
) -> Result<()> {
    let tenant = tenant.to_string();
    let quota = quota_of(conn, &tenant).await?.unwrap_or_default();
    if quota == Quota::default() {
        return Ok(());
    }
    let before = usage_of(conn, &tenant, None).await?;
    check(&tenant, &quota, &before, &add(before, more))
}
