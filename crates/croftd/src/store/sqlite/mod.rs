//! The SQLite store (through sqlx): a file in croftd's state directory,
//! or a private in-memory database for tests and `croftd --simulate`.
//! The queries stay plain SQL so that a PostgreSQL store can share them.
//! `access.rs` holds the tenants' half.

mod access;
mod groups;
mod history;
mod quota;
mod trust;
mod users;

use super::{
    ForwardRecord, GroupRecord, ImageRecord, ImageUpdate, InstanceRecord, NetworkRecord, NewInstance,
    NicRecord, Result, RuleEdit, RuleRecord, Settings, SnapshotRecord, Store, StoreError, TrafficReading,
};
use async_trait::async_trait;
use croft_api::config::InstanceConfig;
use croft_api::{FirewallRule, Job, JobStatus, Status, Traffic};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::Database(Box::new(e))
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// `map_err` for an insert: a uniqueness refusal is [`StoreError::Taken`]
/// of `what`, anything else a database error.
fn taken(what: String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Taken(what)
        } else {
            e.into()
        }
    }
}

/// Migrations compiled into the binary, so a fresh host needs no files.
#[derive(Debug)]
struct Embedded;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../../migrations/0001_initial.sql")),
    (
        2,
        "snapshots",
        include_str!("../../../migrations/0002_snapshots.sql"),
    ),
    (3, "images", include_str!("../../../migrations/0003_images.sql")),
    (
        4,
        "image facts",
        include_str!("../../../migrations/0004_image_facts.sql"),
    ),
    (5, "network", include_str!("../../../migrations/0005_network.sql")),
    (
        6,
        "firewall",
        include_str!("../../../migrations/0006_firewall.sql"),
    ),
    (
        7,
        "ssh keys",
        include_str!("../../../migrations/0007_ssh_keys.sql"),
    ),
    (8, "rescue", include_str!("../../../migrations/0008_rescue.sql")),
    (9, "cgroup", include_str!("../../../migrations/0009_cgroup.sql")),
    (10, "uuid", include_str!("../../../migrations/0010_uuid.sql")),
    (
        11,
        "tenants",
        include_str!("../../../migrations/0011_tenants.sql"),
    ),
    (
        12,
        "api tokens",
        include_str!("../../../migrations/0012_api_tokens.sql"),
    ),
    (13, "quotas", include_str!("../../../migrations/0013_quotas.sql")),
    (14, "audit", include_str!("../../../migrations/0014_audit.sql")),
    (15, "trust", include_str!("../../../migrations/0015_trust.sql")),
    (
        16,
        "tenant images",
        include_str!("../../../migrations/0016_tenant_images.sql"),
    ),
    (
        17,
        "firewall order",
        include_str!("../../../migrations/0017_firewall_order.sql"),
    ),
    (
        18,
        "traffic",
        include_str!("../../../migrations/0018_traffic.sql"),
    ),
    (
        19,
        "firewall groups",
        include_str!("../../../migrations/0019_firewall_groups.sql"),
    ),
    (
        20,
        "forward ranges",
        include_str!("../../../migrations/0020_forward_ranges.sql"),
    ),
    (
        21,
        "networks",
        include_str!("../../../migrations/0021_networks.sql"),
    ),
    (
        22,
        "nic addresses",
        include_str!("../../../migrations/0022_nic_addresses.sql"),
    ),
    (
        23,
        "network uplink",
        include_str!("../../../migrations/0023_network_uplink.sql"),
    ),
    (
        24,
        "network pool",
        include_str!("../../../migrations/0024_network_pool.sql"),
    ),
    (
        25,
        "several nics",
        include_str!("../../../migrations/0025_several_nics.sql"),
    ),
    (
        26,
        "tenant features",
        include_str!("../../../migrations/0026_tenant_features.sql"),
    ),
    (
        27,
        "usage history",
        include_str!("../../../migrations/0027_usage_history.sql"),
    ),
    (
        28,
        "panel users",
        include_str!("../../../migrations/0028_panel_users.sql"),
    ),
];

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(*v, (*d).into(), MigrationType::Simple, (*sql).into(), false)
                })
                .collect())
        })
    }
}

/// The future type `MigrationSource::resolve` returns.
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Refuse `address` of `network` when a VPS holds it (as the first
/// address of one of its interfaces, or an additional one):
/// [`StoreError::Taken`], naming the holder to its own tenant only.
async fn refuse_held(
    conn: &mut sqlx::SqliteConnection,
    network: &str,
    address: &str,
    tenant: &str,
) -> Result<()> {
    let holder: Option<(String, String)> = sqlx::query_as(
        "SELECT tenant, name FROM instances WHERE key IN (
             SELECT instance FROM nics WHERE network = ?1 AND (ipv4 = ?2 OR ipv6 = ?2)
             UNION SELECT instance FROM nic_addresses WHERE network = ?1 AND address = ?2)",
    )
    .bind(network)
    .bind(address)
    .fetch_optional(&mut *conn)
    .await?;
    match holder {
        Some((t, name)) if t == tenant => Err(StoreError::Taken(format!("{address} (VPS {name} holds it)"))),
        Some(_) => Err(StoreError::Taken(format!(
            "{address} (a VPS of another tenant holds it)"
        ))),
        None => Ok(()),
    }
}

/// The tenant of VPS `key`.
async fn tenant_of(conn: &mut sqlx::SqliteConnection, key: &str) -> Result<String> {
    sqlx::query_scalar("SELECT tenant FROM instances WHERE key = ?")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Missing(format!("VPS {key}")))
}

/// [`StoreError::Missing`] unless tenant `tenant` (if one is named) is
/// there, as of `conn`'s transaction.
async fn require_tenant(conn: &mut sqlx::SqliteConnection, tenant: Option<&str>) -> Result<()> {
    let Some(tenant) = tenant else {
        return Ok(());
    };
    let exists = sqlx::query("SELECT 1 FROM tenants WHERE name = ?")
        .bind(tenant)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    match exists {
        true => Ok(()),
        false => Err(StoreError::Missing(format!("tenant {tenant}"))),
    }
}

fn corrupt(what: impl Into<String>, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

fn parse_status(s: &str) -> Result<Status> {
    Ok(match s {
        "creating" => Status::Creating,
        "stopped" => Status::Stopped,
        "starting" => Status::Starting,
        "running" => Status::Running,
        "stopping" => Status::Stopping,
        "deleting" => Status::Deleting,
        other => return Err(corrupt("instance status", other)),
    })
}

fn settings_json(settings: &BTreeMap<String, String>) -> String {
    serde_json::to_string(settings).expect("a string map serializes")
}

impl SqliteStore {
    /// The database at `path`, created and migrated as needed.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        Self::migrated(pool).await
    }

    /// A private database in memory, gone with the store: one connection
    /// that is never closed (each connection would have its own).
    pub async fn in_memory() -> Result<SqliteStore> {
        let opts = SqliteConnectOptions::new().in_memory(true).foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<SqliteStore> {
        Migrator::new(Embedded)
            .await
            .map_err(|e| StoreError::Migrate(Box::new(e)))?
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migrate(Box::new(e)))?;
        Ok(SqliteStore { pool })
    }

    fn row_to_instance(row: &sqlx::sqlite::SqliteRow) -> Result<InstanceRecord> {
        let name: String = row.try_get("key")?;
        let raw: String = row.try_get("config")?;
        let raw: BTreeMap<String, String> =
            serde_json::from_str(&raw).map_err(|e| corrupt(format!("the configuration of {name}"), e))?;
        let settings = Settings::parse(raw)
            .map_err(|e| corrupt(format!("the configuration of {name}"), crate::error_chain(&e)))?;
        let uid_base: i64 = row.try_get("uid_base")?;
        let uuid: Option<String> = row.try_get("uuid")?;
        Ok(InstanceRecord {
            uuid: uuid
                .as_deref()
                .unwrap_or_default()
                .parse()
                .map_err(|e| corrupt(format!("the uuid of {name}"), e))?,
            image: row.try_get("image")?,
            uid_base: u32::try_from(uid_base)
                .map_err(|_| corrupt(format!("uid_base of {name}"), uid_base))?,
            settings,
            status: parse_status(&row.try_get::<String, _>("status")?)?,
            init_pid: row.try_get("init_pid")?,
            last_exit: row.try_get("last_exit")?,
            created_at: row.try_get("created_at")?,
            rescue_image: row.try_get("rescue_image")?,
            tenant: row.try_get("tenant")?,
            name: row.try_get("name")?,
            key: name,
        })
    }

    fn row_to_nic(r: &sqlx::sqlite::SqliteRow) -> Result<NicRecord> {
        let index: i64 = r.try_get("idx")?;
        Ok(NicRecord {
            index: u32::try_from(index).map_err(|_| corrupt("a network interface's index", index))?,
            instance: r.try_get("instance")?,
            network: r.try_get("network")?,
            host_if: r.try_get("host_if")?,
            mac: r.try_get("mac")?,
            ipv4: r.try_get("ipv4")?,
            ipv6: r.try_get("ipv6")?,
            extra: Vec::new(),
        })
    }

    /// `nics` with their additional addresses.
    async fn with_extras(&self, mut nics: Vec<NicRecord>) -> Result<Vec<NicRecord>> {
        let rows = sqlx::query("SELECT instance, network, address FROM nic_addresses ORDER BY rowid")
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            let instance: String = r.try_get("instance")?;
            let network: String = r.try_get("network")?;
            if let Some(nic) = nics
                .iter_mut()
                .find(|n| n.instance == instance && n.network == network)
            {
                nic.extra.push(r.try_get("address")?);
            }
        }
        Ok(nics)
    }

    fn row_to_rule(r: &sqlx::sqlite::SqliteRow) -> Result<RuleRecord> {
        Ok(RuleRecord {
            id: r.try_get("id")?,
            instance: r.try_get("instance")?,
            rule: FirewallRule {
                direction: r.try_get("direction")?,
                destination: r.try_get("destination")?,
                action: r.try_get("action")?,
                protocol: r.try_get("protocol")?,
                port: r.try_get("port")?,
                source: r.try_get("source")?,
            },
        })
    }

    fn row_to_traffic(r: &sqlx::sqlite::SqliteRow) -> Result<Traffic> {
        Ok(Traffic {
            month: r.try_get("month")?,
            received_bytes: r.try_get::<i64, _>("received_bytes")? as u64,
            sent_bytes: r.try_get::<i64, _>("sent_bytes")? as u64,
            received_packets: r.try_get::<i64, _>("received_packets")? as u64,
            sent_packets: r.try_get::<i64, _>("sent_packets")? as u64,
        })
    }

    fn row_to_job(row: &sqlx::sqlite::SqliteRow) -> Result<Job> {
        let status: String = row.try_get("status")?;
        Ok(Job {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            tenant: row.try_get("tenant")?,
            target: row.try_get("target")?,
            status: match status.as_str() {
                "running" => JobStatus::Running,
                "success" => JobStatus::Success,
                "failure" => JobStatus::Failure,
                "cancelled" => JobStatus::Cancelled,
                other => return Err(corrupt("job status", other)),
            },
            progress: row.try_get::<i64, _>("progress")?.clamp(0, 100) as u8,
            message: row.try_get("message")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
        })
    }

    /// What a uniqueness refusal on creating `new` was about.
    fn taken_by(e: &sqlx::Error, new: &NewInstance) -> StoreError {
        let msg = match e {
            sqlx::Error::Database(d) => d.message().to_string(),
            _ => String::new(),
        };
        StoreError::Taken(
            if msg.contains("instances.name") || msg.contains("instances.key") {
                format!("the name {}", new.name)
            } else if msg.contains("instances.uid_base") {
                format!("id range {}", new.uid_base)
            } else if msg.contains("uuid") {
                format!("uuid {}", new.uuid)
            } else if msg.contains("nics.host_if") || msg.contains("nics.mac") {
                "the interface".to_string()
            } else {
                let nic = new.nic.as_ref();
                let addrs: Vec<&str> = [
                    nic.and_then(|n| n.ipv4.as_deref()),
                    nic.and_then(|n| n.ipv6.as_deref()),
                ]
                .into_iter()
                .flatten()
                .collect();
                format!("address {}", addrs.join(" or "))
            },
        )
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn instances(&self) -> Result<Vec<InstanceRecord>> {
        let rows = sqlx::query("SELECT * FROM instances ORDER BY tenant, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::row_to_instance).collect()
    }

    async fn instance(&self, key: &str) -> Result<Option<InstanceRecord>> {
        let row = sqlx::query("SELECT * FROM instances WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::row_to_instance).transpose()
    }

    async fn instance_named(&self, tenant: &str, name: &str) -> Result<Option<InstanceRecord>> {
        let row = sqlx::query("SELECT * FROM instances WHERE tenant = ? AND name = ?")
            .bind(tenant)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::row_to_instance).transpose()
    }

    async fn create_instance(&self, new: &NewInstance) -> Result<InstanceRecord> {
        // IMMEDIATE: take the write lock up front, so two creations wait
        // for each other instead of one failing with SQLITE_BUSY_SNAPSHOT.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let taken = |e: sqlx::Error| {
            if is_unique_violation(&e) {
                Self::taken_by(&e, new)
            } else {
                e.into()
            }
        };
        // The tenant's quota, checked against its usage in this
        // transaction: concurrent creations at the edge cannot both pass.
        let Some(quota) = quota::quota_of(&mut tx, &new.tenant).await? else {
            return Err(StoreError::Missing(format!("tenant {}", new.tenant)));
        };
        let cfg = InstanceConfig::parse(&new.settings).map_err(|e| {
            corrupt(
                format!("the configuration of new VPS {}", new.name),
                crate::error_chain(&e),
            )
        })?;
        crate::store::quota::require_limits(&new.tenant, &new.name, &quota, &cfg)?;
        let before = quota::usage_of(&mut tx, &new.tenant, None).await?;
        let has_ipv4 = new.nic.as_ref().is_some_and(|n| n.ipv4.is_some());
        let after = crate::store::quota::add(before, crate::store::quota::of_vps(&cfg, has_ipv4));
        crate::store::quota::check(&new.tenant, &quota, &before, &after)?;
        sqlx::query(
            "INSERT INTO instances (uuid, key, tenant, name, image, uid_base, config, status)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'creating')",
        )
        .bind(new.uuid.to_string())
        .bind(&new.key)
        .bind(&new.tenant)
        .bind(&new.name)
        .bind(&new.image)
        .bind(i64::from(new.uid_base))
        .bind(settings_json(&new.settings))
        .execute(&mut *tx)
        .await
        .map_err(taken)?;
        if let Some(nic) = &new.nic {
            // Another VPS's address (on any of its interfaces, or an
            // additional one) is taken, named.
            for address in nic.ipv4.iter().chain(&nic.ipv6) {
                refuse_held(&mut tx, &nic.network, address, &new.tenant).await?;
            }
            sqlx::query(
                "INSERT INTO nics (instance, network, host_if, mac, ipv4, ipv6) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&new.key)
            .bind(&nic.network)
            .bind(&nic.host_if)
            .bind(&nic.mac)
            .bind(&nic.ipv4)
            .bind(&nic.ipv6)
            .execute(&mut *tx)
            .await
            .map_err(taken)?;
        }
        for key in &new.ssh_keys {
            sqlx::query("INSERT OR IGNORE INTO ssh_keys (instance, key) VALUES (?, ?)")
                .bind(&new.key)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query("SELECT * FROM instances WHERE key = ?")
            .bind(&new.key)
            .fetch_one(&mut *tx)
            .await?;
        let record = Self::row_to_instance(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn delete_instance(&self, key: &str) -> Result<()> {
        // The other tables cascade from `instances`.
        sqlx::query("DELETE FROM instances WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_status(
        &self,
        name: &str,
        status: Status,
        init_pid: Option<i32>,
        last_exit: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE instances SET status = ?, init_pid = ?, last_exit = COALESCE(?, last_exit) WHERE key = ?",
        )
        .bind(status.as_str())
        .bind(init_pid)
        .bind(last_exit)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_rescue(&self, name: &str, image: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE instances SET rescue_image = ? WHERE key = ?")
            .bind(image)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_image(&self, name: &str, image: &str) -> Result<()> {
        sqlx::query("UPDATE instances SET image = ? WHERE key = ?")
            .bind(image)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn rename_instance(&self, key: &str, new: &str) -> Result<()> {
        let r = sqlx::query("UPDATE instances SET name = ? WHERE key = ?")
            .bind(new)
            .bind(key)
            .execute(&self.pool)
            .await;
        match r {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Taken(format!("the name {new}"))),
            Err(e) => Err(e.into()),
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::Missing(format!("VPS {key}"))),
            Ok(_) => Ok(()),
        }
    }

    async fn set_settings(&self, name: &str, settings: &BTreeMap<String, String>) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("SELECT tenant, name FROM instances WHERE key = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("VPS {name}")))?;
        let (tenant, vps): (String, String) = (row.try_get("tenant")?, row.try_get("name")?);
        let quota = quota::quota_of(&mut tx, &tenant).await?.unwrap_or_default();
        if quota != croft_api::Quota::default() {
            let cfg = InstanceConfig::parse(settings)
                .map_err(|e| corrupt(format!("the new configuration of {vps}"), crate::error_chain(&e)))?;
            crate::store::quota::require_limits(&tenant, &vps, &quota, &cfg)?;
            let before = quota::usage_of(&mut tx, &tenant, None).await?;
            let after = quota::usage_of(&mut tx, &tenant, Some((name, &cfg))).await?;
            crate::store::quota::check(&tenant, &quota, &before, &after)?;
        }
        sqlx::query("UPDATE instances SET config = ? WHERE key = ?")
            .bind(settings_json(settings))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn nics(&self) -> Result<Vec<NicRecord>> {
        let rows = sqlx::query("SELECT * FROM nics ORDER BY instance, idx")
            .fetch_all(&self.pool)
            .await?;
        let nics = rows.iter().map(Self::row_to_nic).collect::<Result<Vec<_>>>()?;
        self.with_extras(nics).await
    }

    async fn nics_of(&self, instance: &str) -> Result<Vec<NicRecord>> {
        let rows = sqlx::query("SELECT * FROM nics WHERE instance = ? ORDER BY idx")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        let nics = rows.iter().map(Self::row_to_nic).collect::<Result<Vec<_>>>()?;
        self.with_extras(nics).await
    }

    async fn add_nic(&self, nic: &NicRecord) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let tenant = tenant_of(&mut tx, &nic.instance).await?;
        for address in nic.ipv4.iter().chain(&nic.ipv6) {
            refuse_held(&mut tx, &nic.network, address, &tenant).await?;
        }
        if nic.ipv4.is_some() {
            let more = croft_api::QuotaUsage {
                ipv4_addresses: 1,
                ..Default::default()
            };
            quota::guard_addition(&mut tx, &nic.instance, more).await?;
        }
        let made = sqlx::query(
            "INSERT INTO nics (instance, idx, network, host_if, mac, ipv4, ipv6) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&nic.instance)
        .bind(i64::from(nic.index))
        .bind(&nic.network)
        .bind(&nic.host_if)
        .bind(&nic.mac)
        .bind(&nic.ipv4)
        .bind(&nic.ipv6)
        .execute(&mut *tx)
        .await;
        match made {
            Err(e) if is_unique_violation(&e) => {
                let msg = e.to_string();
                return Err(StoreError::Taken(
                    if msg.contains("nics.network") && msg.contains("nics.instance") {
                        format!("an interface on network {}", nic.network)
                    } else if msg.contains("nics.mac") {
                        format!("MAC {}", nic.mac)
                    } else {
                        format!("interface {}", nic.index)
                    },
                ));
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        tx.commit().await?;
        Ok(())
    }

    async fn remove_nic(&self, instance: &str, index: u32) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let network: Option<String> =
            sqlx::query_scalar("SELECT network FROM nics WHERE instance = ? AND idx = ? AND idx > 0")
                .bind(instance)
                .bind(i64::from(index))
                .fetch_optional(&mut *tx)
                .await?;
        let Some(network) = network else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM nic_addresses WHERE instance = ? AND network = ?")
            .bind(instance)
            .bind(&network)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM nics WHERE instance = ? AND idx = ?")
            .bind(instance)
            .bind(i64::from(index))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn nic(&self, instance: &str) -> Result<Option<NicRecord>> {
        let row = sqlx::query("SELECT * FROM nics WHERE instance = ? AND idx = 0")
            .bind(instance)
            .fetch_optional(&self.pool)
            .await?;
        let Some(nic) = row.as_ref().map(Self::row_to_nic).transpose()? else {
            return Ok(None);
        };
        Ok(self.with_extras(vec![nic]).await?.pop())
    }

    async fn forwards(&self) -> Result<Vec<ForwardRecord>> {
        let rows = sqlx::query("SELECT * FROM port_forwards ORDER BY instance, protocol, host_port")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let port = |column: &str| -> Result<u16> {
                    let v: i64 = r.try_get(column)?;
                    u16::try_from(v).map_err(|_| corrupt(format!("port forward {column}"), v))
                };
                let end: Option<i64> = r.try_get("host_port_end")?;
                Ok(ForwardRecord {
                    protocol: r.try_get("protocol")?,
                    host_port: port("host_port")?,
                    instance: r.try_get("instance")?,
                    vps_port: port("vps_port")?,
                    host_port_end: end
                        .map(|v| u16::try_from(v).map_err(|_| corrupt("port forward host_port_end", v)))
                        .transpose()?,
                })
            })
            .collect()
    }

    async fn insert_forward(&self, f: &ForwardRecord) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (first, last) = (f.host_port, f.host_port_end.unwrap_or(f.host_port));
        let more = croft_api::QuotaUsage {
            port_forwards: u64::from(last - first) + 1,
            ..Default::default()
        };
        quota::guard_addition(&mut tx, &f.instance, more).await?;
        let taken: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT host_port, host_port_end FROM port_forwards
             WHERE protocol = ? AND host_port <= ? AND COALESCE(host_port_end, host_port) >= ? LIMIT 1",
        )
        .bind(&f.protocol)
        .bind(i64::from(last))
        .bind(i64::from(first))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((at, end)) = taken {
            let what = match end {
                Some(end) => format!("host ports {at}-{end}/{}", f.protocol),
                None => format!("host port {at}/{}", f.protocol),
            };
            return Err(StoreError::Taken(what));
        }
        let r = sqlx::query(
            "INSERT INTO port_forwards (protocol, host_port, instance, vps_port, host_port_end) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&f.protocol)
        .bind(i64::from(f.host_port))
        .bind(&f.instance)
        .bind(i64::from(f.vps_port))
        .bind(f.host_port_end.map(i64::from))
        .execute(&mut *tx)
        .await;
        match r {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Taken(format!(
                "host port {}/{}",
                f.host_port, f.protocol
            ))),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(tx.commit().await?),
        }
    }

    async fn delete_forward(&self, instance: &str, protocol: &str, host_port: u16) -> Result<bool> {
        let r =
            sqlx::query("DELETE FROM port_forwards WHERE instance = ? AND protocol = ? AND host_port = ?")
                .bind(instance)
                .bind(protocol)
                .bind(i64::from(host_port))
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn firewall_rules(&self) -> Result<Vec<RuleRecord>> {
        let rows = sqlx::query("SELECT * FROM firewall_rules ORDER BY instance, position, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::row_to_rule).collect()
    }

    async fn edit_firewall_rules(&self, instance: &str, edit: &RuleEdit) -> Result<Vec<FirewallRule>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query("SELECT * FROM firewall_rules WHERE instance = ? ORDER BY position, id")
            .bind(instance)
            .fetch_all(&mut *tx)
            .await?;
        let before = rows
            .iter()
            .map(|r| Self::row_to_rule(r).map(|r| r.rule))
            .collect::<Result<Vec<_>>>()?;
        let mut after = before.clone();
        edit.apply(&mut after)?;
        if after.len() > before.len() {
            let more = croft_api::QuotaUsage {
                firewall_rules: (after.len() - before.len()) as u64,
                ..Default::default()
            };
            quota::guard_addition(&mut tx, instance, more).await?;
        }
        write_rules(&mut tx, instance, &after).await?;
        tx.commit().await?;
        Ok(before)
    }

    async fn set_firewall_rules(&self, instance: &str, rules: &[FirewallRule]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        write_rules(&mut tx, instance, rules).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_address(&self, instance: &str, address: &str) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let network: String = sqlx::query_scalar("SELECT network FROM nics WHERE instance = ? AND idx = 0")
            .bind(instance)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("the network interface of VPS {instance}")))?;
        let tenant = tenant_of(&mut tx, instance).await?;
        refuse_held(&mut tx, &network, address, &tenant).await?;
        if !address.contains(':') {
            let more = croft_api::QuotaUsage {
                ipv4_addresses: 1,
                ..Default::default()
            };
            quota::guard_addition(&mut tx, instance, more).await?;
        }
        sqlx::query("INSERT INTO nic_addresses (instance, network, address) VALUES (?, ?, ?)")
            .bind(instance)
            .bind(&network)
            .bind(address)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn promote_address(&self, instance: &str, address: &str) -> Result<String> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let column = if address.contains(':') { "ipv6" } else { "ipv4" };
        let row = sqlx::query(&format!(
            "SELECT network, {column} AS first FROM nics WHERE instance = ? AND idx = 0"
        ))
        .bind(instance)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Missing(format!("the network interface of VPS {instance}")))?;
        let network: String = row.try_get("network")?;
        let first: Option<String> = row.try_get("first")?;
        let first = first
            .ok_or_else(|| StoreError::Missing(format!("a first {column} address of VPS {instance}")))?;
        let gone =
            sqlx::query("DELETE FROM nic_addresses WHERE instance = ? AND network = ? AND address = ?")
                .bind(instance)
                .bind(&network)
                .bind(address)
                .execute(&mut *tx)
                .await?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::Missing(format!(
                "additional address {address} of VPS {instance}"
            )));
        }
        sqlx::query(&format!(
            "UPDATE nics SET {column} = ? WHERE instance = ? AND idx = 0"
        ))
        .bind(address)
        .bind(instance)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO nic_addresses (instance, network, address) VALUES (?, ?, ?)")
            .bind(instance)
            .bind(&network)
            .bind(&first)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(first)
    }

    async fn remove_address(&self, instance: &str, address: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM nic_addresses WHERE instance = ? AND address = ?")
            .bind(instance)
            .bind(address)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn networks(&self) -> Result<Vec<NetworkRecord>> {
        let rows = sqlx::query("SELECT * FROM networks ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NetworkRecord {
                    name: r.try_get("name")?,
                    kind: r.try_get("kind")?,
                    bridge: r.try_get("bridge")?,
                    ipv4: r.try_get("ipv4")?,
                    ipv6: r.try_get("ipv6")?,
                    nat: r.try_get("nat")?,
                    isolated: r.try_get("isolated")?,
                    uplink: r.try_get("uplink")?,
                    pool: r.try_get("pool")?,
                })
            })
            .collect()
    }

    async fn create_network(&self, n: &NetworkRecord) -> Result<()> {
        let made = sqlx::query(
            "INSERT INTO networks (name, kind, bridge, ipv4, ipv6, nat, isolated, uplink, pool) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&n.name)
        .bind(&n.kind)
        .bind(&n.bridge)
        .bind(&n.ipv4)
        .bind(&n.ipv6)
        .bind(n.nat)
        .bind(n.isolated)
        .bind(&n.uplink)
        .bind(&n.pool)
        .execute(&self.pool)
        .await;
        match made {
            Err(e) if is_unique_violation(&e) => {
                let what = if e.to_string().contains("bridge") {
                    format!("the bridge name {}", n.bridge)
                } else {
                    format!("the network name {}", n.name)
                };
                Err(StoreError::Taken(what))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    async fn delete_network(&self, name: &str) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let users: Vec<String> =
            sqlx::query_scalar("SELECT instance FROM nics WHERE network = ? ORDER BY instance")
                .bind(name)
                .fetch_all(&mut *tx)
                .await?;
        if !users.is_empty() {
            return Err(StoreError::InUse(format!(
                "network {name} is in use by {}",
                users.join(", ")
            )));
        }
        let r = sqlx::query("DELETE FROM networks WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Missing(format!("network {name}")));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn firewall_groups(&self, tenant: Option<&str>) -> Result<Vec<GroupRecord>> {
        self.group_records(tenant).await
    }

    async fn create_firewall_group(&self, tenant: &str, name: &str, description: &str) -> Result<()> {
        self.create_group(tenant, name, description).await
    }

    async fn delete_firewall_group(&self, tenant: &str, name: &str) -> Result<()> {
        self.delete_group(tenant, name).await
    }

    async fn edit_group_rules(&self, tenant: &str, name: &str, edit: &RuleEdit) -> Result<Vec<FirewallRule>> {
        self.edit_group(tenant, name, edit).await
    }

    async fn set_group_rules(&self, tenant: &str, name: &str, rules: &[FirewallRule]) -> Result<()> {
        self.set_group(tenant, name, rules).await
    }

    async fn attach_group(&self, instance: &str, name: &str) -> Result<()> {
        self.attach(instance, name).await
    }

    async fn detach_group(&self, instance: &str, name: &str) -> Result<bool> {
        self.detach(instance, name).await
    }

    async fn record_traffic(&self, instance: &str, month: &str, now: &TrafficReading) -> Result<Traffic> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let last = sqlx::query("SELECT * FROM traffic_cursor WHERE instance = ?")
            .bind(instance)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| -> Result<TrafficReading> {
                Ok(TrafficReading {
                    link_index: r.try_get::<i64, _>("link_index")? as u32,
                    received_bytes: r.try_get::<i64, _>("received_bytes")? as u64,
                    sent_bytes: r.try_get::<i64, _>("sent_bytes")? as u64,
                    received_packets: r.try_get::<i64, _>("received_packets")? as u64,
                    sent_packets: r.try_get::<i64, _>("sent_packets")? as u64,
                })
            })
            .transpose()?;
        let (delta, kept) = traffic_delta(last.as_ref(), now);
        sqlx::query(
            "INSERT INTO traffic (instance, month, received_bytes, sent_bytes, received_packets, sent_packets)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (instance, month) DO UPDATE SET
                 received_bytes = received_bytes + excluded.received_bytes,
                 sent_bytes = sent_bytes + excluded.sent_bytes,
                 received_packets = received_packets + excluded.received_packets,
                 sent_packets = sent_packets + excluded.sent_packets",
        )
        .bind(instance)
        .bind(month)
        .bind(delta.received_bytes as i64)
        .bind(delta.sent_bytes as i64)
        .bind(delta.received_packets as i64)
        .bind(delta.sent_packets as i64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO traffic_cursor
             (instance, link_index, received_bytes, sent_bytes, received_packets, sent_packets)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(instance)
        .bind(i64::from(kept.link_index))
        .bind(kept.received_bytes as i64)
        .bind(kept.sent_bytes as i64)
        .bind(kept.received_packets as i64)
        .bind(kept.sent_packets as i64)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM traffic WHERE instance = ? AND month = ?")
            .bind(instance)
            .bind(month)
            .fetch_one(&mut *tx)
            .await?;
        let totals = Self::row_to_traffic(&row)?;
        tx.commit().await?;
        Ok(totals)
    }

    async fn traffic(&self, instance: &str) -> Result<Vec<Traffic>> {
        let rows = sqlx::query("SELECT * FROM traffic WHERE instance = ? ORDER BY month DESC")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::row_to_traffic).collect()
    }

    async fn traffic_of_month(&self, month: &str) -> Result<HashMap<String, Traffic>> {
        let rows = sqlx::query("SELECT * FROM traffic WHERE month = ?")
            .bind(month)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("instance")?, Self::row_to_traffic(r)?)))
            .collect()
    }

    async fn record_history(&self, points: &[crate::store::history::MinutePoint]) -> Result<()> {
        self.write_history(points).await
    }

    async fn history(
        &self,
        instance: &str,
        archive: crate::store::history::Archive,
        since: i64,
    ) -> Result<Vec<crate::store::history::HistoryPoint>> {
        self.read_history(instance, archive, since).await
    }

    async fn ssh_keys(&self, instance: &str) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT key FROM ssh_keys WHERE instance = ? ORDER BY rowid")
                .bind(instance)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn add_ssh_key(&self, instance: &str, key: &str) -> Result<bool> {
        let r = sqlx::query("INSERT OR IGNORE INTO ssh_keys (instance, key) VALUES (?, ?)")
            .bind(instance)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn remove_ssh_key(&self, instance: &str, key: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM ssh_keys WHERE instance = ? AND key = ?")
            .bind(instance)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn all_ssh_keys(&self) -> Result<HashMap<String, Vec<String>>> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT instance, key FROM ssh_keys ORDER BY rowid")
            .fetch_all(&self.pool)
            .await?;
        let mut keys: HashMap<String, Vec<String>> = HashMap::new();
        for (instance, key) in rows {
            keys.entry(instance).or_default().push(key);
        }
        Ok(keys)
    }

    async fn snapshots(&self, instance: &str) -> Result<Vec<SnapshotRecord>> {
        let rows = sqlx::query("SELECT name, created_at FROM snapshots WHERE instance = ? ORDER BY rowid")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SnapshotRecord {
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn insert_snapshot(&self, instance: &str, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let more = croft_api::QuotaUsage {
            snapshots: 1,
            ..Default::default()
        };
        quota::guard_addition(&mut tx, instance, more).await?;
        let r = sqlx::query("INSERT OR IGNORE INTO snapshots (instance, name) VALUES (?, ?)")
            .bind(instance)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_snapshot(&self, instance: &str, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM snapshots WHERE instance = ? AND name = ?")
            .bind(instance)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn images(&self) -> Result<Vec<ImageRecord>> {
        let rows = sqlx::query("SELECT * FROM images ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ImageRecord {
                    name: r.try_get("name")?,
                    source: r.try_get("source")?,
                    description: r.try_get("description")?,
                    size_bytes: r
                        .try_get::<Option<i64>, _>("size_bytes")?
                        .map(|v| v.max(0) as u64),
                    sha256: r.try_get("sha256")?,
                    created_at: r.try_get("created_at")?,
                    distro: r.try_get("distro")?,
                    release: r.try_get("release")?,
                    arch: r.try_get("arch")?,
                })
            })
            .collect()
    }

    async fn upsert_image(&self, u: ImageUpdate<'_>) -> Result<()> {
        let facts = u.facts.unwrap_or_default();
        sqlx::query(
            "INSERT INTO images (name, source, description, size_bytes, sha256, distro, release, arch)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET size_bytes = COALESCE(excluded.size_bytes, size_bytes),
             sha256 = COALESCE(excluded.sha256, sha256), distro = COALESCE(excluded.distro, distro),
             release = COALESCE(excluded.release, release), arch = COALESCE(excluded.arch, arch)",
        )
        .bind(u.name)
        .bind(u.source)
        .bind(u.description)
        .bind(u.size_bytes.map(|v| v as i64))
        .bind(u.sha256)
        .bind(facts.distro)
        .bind(facts.release)
        .bind(facts.arch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_image(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM images WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_job(&self, id: &str, kind: &str, tenant: &str, target: &str) -> Result<()> {
        sqlx::query("INSERT INTO jobs (id, kind, tenant, target, status) VALUES (?, ?, ?, ?, 'running')")
            .bind(id)
            .bind(kind)
            .bind(tenant)
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn update_job(
        &self,
        id: &str,
        status: JobStatus,
        progress: u8,
        message: Option<&str>,
        error: Option<&str>,
    ) -> Result<()> {
        let status = match status {
            JobStatus::Running => "running",
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
            JobStatus::Cancelled => "cancelled",
        };
        sqlx::query(
            "UPDATE jobs SET status = ?, progress = ?, message = COALESCE(?, message), error = ?,
             updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
        )
        .bind(status)
        .bind(i64::from(progress))
        .bind(message)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fail_interrupted_jobs(&self) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE jobs SET status = 'failure', error = 'interrupted: croftd stopped while the job ran'
             WHERE status = 'running'",
        )
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn job(&self, id: &str) -> Result<Option<Job>> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::row_to_job).transpose()
    }

    async fn jobs(&self, tenant: Option<&str>) -> Result<Vec<Job>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE ?1 IS NULL OR tenant = ?1 ORDER BY created_at DESC, id LIMIT 200",
        )
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::row_to_job).collect()
    }
}

#[cfg(test)]
mod tests;

/// Make `instance`'s firewall rules `rules`, numbered in order.
async fn write_rules(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    instance: &str,
    rules: &[FirewallRule],
) -> Result<()> {
    sqlx::query("DELETE FROM firewall_rules WHERE instance = ?")
        .bind(instance)
        .execute(&mut **tx)
        .await?;
    for (position, rule) in rules.iter().enumerate() {
        sqlx::query(
            "INSERT INTO firewall_rules (instance, position, direction, action, protocol, port, source, destination)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(instance)
        .bind(position as i64)
        .bind(&rule.direction)
        .bind(&rule.action)
        .bind(&rule.protocol)
        .bind(&rule.port)
        .bind(&rule.source)
        .bind(&rule.destination)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What moved between two readings of a VPS's interfaces, and the reading
/// to keep as the last: the difference; for new interfaces (another
/// index) everything they counted; and nothing for a reading older than
/// the last, which stays the last. The same interfaces' counters never go
/// back (64 bits, and the kernel does not hand a deleted interface's index
/// to the next one), so lower counters mean a reading taken before the
/// last one was recorded: the sampler's, read before a stop recorded its
/// own.
fn traffic_delta(last: Option<&TrafficReading>, now: &TrafficReading) -> (TrafficReading, TrafficReading) {
    let Some(last) = last.filter(|l| l.link_index == now.link_index) else {
        return (*now, *now);
    };
    let newer = now.received_bytes >= last.received_bytes
        && now.sent_bytes >= last.sent_bytes
        && now.received_packets >= last.received_packets
        && now.sent_packets >= last.sent_packets;
    if !newer {
        let nothing = TrafficReading {
            link_index: now.link_index,
            received_bytes: 0,
            sent_bytes: 0,
            received_packets: 0,
            sent_packets: 0,
        };
        return (nothing, *last);
    }
    let delta = TrafficReading {
        link_index: now.link_index,
        received_bytes: now.received_bytes - last.received_bytes,
        sent_bytes: now.sent_bytes - last.sent_bytes,
        received_packets: now.received_packets - last.received_packets,
        sent_packets: now.sent_packets - last.sent_packets,
    };
    (delta, *now)
}
