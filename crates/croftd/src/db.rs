//! The state database (SQLite through sqlx; the same queries are meant to
//! run on PostgreSQL for clusters later, so they stay plain SQL).

use croft_api::{Job, JobStatus, Status};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("database error")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row for {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// A UNIQUE constraint refused the row: the value is taken.
    #[error("{0} is already in use")]
    Taken(String),
}

/// A VPS's interface on a croft network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicRow {
    pub instance: String,
    pub network: String,
    pub host_if: String,
    pub mac: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

/// A host port forwarded to a VPS port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRow {
    pub protocol: String,
    pub host_port: u16,
    pub instance: String,
    pub vps_port: u16,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Migrations compiled into the binary, so a fresh host needs no files.
#[derive(Debug)]
struct Embedded;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "snapshots", include_str!("../migrations/0002_snapshots.sql")),
    (3, "images", include_str!("../migrations/0003_images.sql")),
    (
        4,
        "image facts",
        include_str!("../migrations/0004_image_facts.sql"),
    ),
    (5, "network", include_str!("../migrations/0005_network.sql")),
    (6, "firewall", include_str!("../migrations/0006_firewall.sql")),
    (7, "ssh keys", include_str!("../migrations/0007_ssh_keys.sql")),
    (8, "rescue", include_str!("../migrations/0008_rescue.sql")),
    (9, "cgroup", include_str!("../migrations/0009_cgroup.sql")),
];

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
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

/// An image row.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub name: String,
    pub source: String,
    pub description: String,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub created_at: String,
    pub distro: Option<String>,
    pub release: Option<String>,
    pub arch: Option<String>,
}

/// What to record about an image; `None` keeps what is already stored.
#[derive(Debug, Clone, Default)]
pub struct ImageUpdate<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub description: &'a str,
    pub size_bytes: Option<u64>,
    pub sha256: Option<&'a str>,
    pub facts: Option<croft_host::rootfs::OsFacts>,
}

/// A VPS row.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub name: String,
    pub image: String,
    pub uid_base: u32,
    pub config: BTreeMap<String, String>,
    pub status: Status,
    pub init_pid: Option<i32>,
    pub last_exit: Option<String>,
    pub created_at: String,
    /// The rescue image it runs from while in rescue mode.
    pub rescue_image: Option<String>,
    /// Where its cgroup is while it runs.
    pub cgroup: Option<croft_host::cgroup::CgroupLocation>,
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: SqlitePool,
}

pub fn status_str(s: Status) -> &'static str {
    s.as_str()
}

fn parse_status(s: &str) -> Result<Status, DbError> {
    Ok(match s {
        "creating" => Status::Creating,
        "stopped" => Status::Stopped,
        "starting" => Status::Starting,
        "running" => Status::Running,
        "stopping" => Status::Stopping,
        "deleting" => Status::Deleting,
        "error" => Status::Error,
        other => {
            return Err(DbError::Corrupt {
                what: "instance status".into(),
                detail: other.into(),
            })
        }
    })
}

impl Db {
    pub async fn open(path: &Path) -> Result<Db, DbError> {
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
        Migrator::new(Embedded).await?.run(&pool).await?;
        Ok(Db { pool })
    }

    fn row_to_instance(row: &sqlx::sqlite::SqliteRow) -> Result<InstanceRow, DbError> {
        let name: String = row.try_get("name")?;
        let config: String = row.try_get("config")?;
        let config = serde_json::from_str(&config).map_err(|e| DbError::Corrupt {
            what: format!("config of {name}"),
            detail: e.to_string(),
        })?;
        let uid_base: i64 = row.try_get("uid_base")?;
        Ok(InstanceRow {
            image: row.try_get("image")?,
            uid_base: u32::try_from(uid_base).map_err(|_| DbError::Corrupt {
                what: format!("uid_base of {name}"),
                detail: uid_base.to_string(),
            })?,
            config,
            status: parse_status(&row.try_get::<String, _>("status")?)?,
            init_pid: row.try_get("init_pid")?,
            last_exit: row.try_get("last_exit")?,
            created_at: row.try_get("created_at")?,
            rescue_image: row.try_get("rescue_image")?,
            cgroup: row
                .try_get::<Option<String>, _>("cgroup")?
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(|e| DbError::Corrupt {
                    what: format!("cgroup of {name}"),
                    detail: e.to_string(),
                })?,
            name,
        })
    }

    pub async fn instances(&self) -> Result<Vec<InstanceRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM instances ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::row_to_instance).collect()
    }

    pub async fn instance(&self, name: &str) -> Result<Option<InstanceRow>, DbError> {
        let row = sqlx::query("SELECT * FROM instances WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::row_to_instance).transpose()
    }

    /// Insert a new VPS in state `creating` with the lowest free id range.
    /// Returns `None` if the name is taken; errors if no range is free.
    pub async fn insert_instance(
        &self,
        name: &str,
        image: &str,
        config: &BTreeMap<String, String>,
        id_base: u32,
        id_ranges: u32,
    ) -> Result<Option<u32>, DbError> {
        // IMMEDIATE: take the write lock up front. A deferred transaction
        // that reads and then writes fails at once with SQLITE_BUSY_SNAPSHOT
        // when another launch commits in between (WAL), instead of waiting.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let exists = sqlx::query("SELECT 1 FROM instances WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Ok(None);
        }
        let used: Vec<i64> = sqlx::query_scalar("SELECT uid_base FROM instances ORDER BY uid_base")
            .fetch_all(&mut *tx)
            .await?;
        let range = croft_host::spec::ID_RANGE as i64;
        let mut candidate = id_base as i64;
        for u in used {
            if u == candidate {
                candidate += range;
            } else if u > candidate {
                break;
            }
        }
        let last = id_base as i64 + range * (id_ranges as i64 - 1);
        if candidate > last || candidate + range > u32::MAX as i64 {
            return Err(DbError::Corrupt {
                what: "id ranges".into(),
                detail: "all id ranges are in use".into(),
            });
        }
        sqlx::query(
            "INSERT INTO instances (name, image, uid_base, config, status) VALUES (?, ?, ?, ?, 'creating')",
        )
        .bind(name)
        .bind(image)
        .bind(candidate)
        .bind(serde_json::to_string(config).expect("string map serializes"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(candidate as u32))
    }

    pub async fn set_status(
        &self,
        name: &str,
        status: Status,
        init_pid: Option<i32>,
        last_exit: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE instances SET status = ?, init_pid = ?, last_exit = COALESCE(?, last_exit) WHERE name = ?",
        )
        .bind(status_str(status))
        .bind(init_pid)
        .bind(last_exit)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Record where a VPS's cgroup is (`None`: it has none, not running).
    pub async fn set_cgroup(
        &self,
        name: &str,
        location: Option<&croft_host::cgroup::CgroupLocation>,
    ) -> Result<(), DbError> {
        let json = location
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| DbError::Corrupt {
                what: format!("cgroup of {name}"),
                detail: e.to_string(),
            })?;
        sqlx::query("UPDATE instances SET cgroup = ? WHERE name = ?")
            .bind(json)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record the rescue image a VPS boots from (`None`: its own disk).
    pub async fn set_rescue(&self, name: &str, image: Option<&str>) -> Result<(), DbError> {
        sqlx::query("UPDATE instances SET rescue_image = ? WHERE name = ?")
            .bind(image)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record the image a VPS's disk was (re)built from.
    pub async fn set_image(&self, name: &str, image: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE instances SET image = ? WHERE name = ?")
            .bind(image)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_config(&self, name: &str, config: &BTreeMap<String, String>) -> Result<(), DbError> {
        sqlx::query("UPDATE instances SET config = ? WHERE name = ?")
            .bind(serde_json::to_string(config).expect("string map serializes"))
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn row_to_nic(r: &sqlx::sqlite::SqliteRow) -> Result<NicRow, DbError> {
        Ok(NicRow {
            instance: r.try_get("instance")?,
            network: r.try_get("network")?,
            host_if: r.try_get("host_if")?,
            mac: r.try_get("mac")?,
            ipv4: r.try_get("ipv4")?,
            ipv6: r.try_get("ipv6")?,
        })
    }

    pub async fn nics(&self) -> Result<Vec<NicRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM nics ORDER BY instance")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::row_to_nic).collect()
    }

    pub async fn nic(&self, instance: &str) -> Result<Option<NicRow>, DbError> {
        let row = sqlx::query("SELECT * FROM nics WHERE instance = ?")
            .bind(instance)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::row_to_nic).transpose()
    }

    /// Record a VPS's interface; an address or MAC already given to another
    /// VPS is refused as [`DbError::Taken`].
    pub async fn insert_nic(&self, nic: &NicRow) -> Result<(), DbError> {
        let r = sqlx::query(
            "INSERT INTO nics (instance, network, host_if, mac, ipv4, ipv6) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&nic.instance)
        .bind(&nic.network)
        .bind(&nic.host_if)
        .bind(&nic.mac)
        .bind(&nic.ipv4)
        .bind(&nic.ipv6)
        .execute(&self.pool)
        .await;
        match r {
            Err(e) if is_unique_violation(&e) => Err(DbError::Taken(
                [nic.ipv4.as_deref(), nic.ipv6.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" or "),
            )),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    pub async fn forwards(&self) -> Result<Vec<ForwardRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM port_forwards ORDER BY instance, protocol, host_port")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ForwardRow {
                    protocol: r.try_get("protocol")?,
                    host_port: r.try_get::<i64, _>("host_port")? as u16,
                    instance: r.try_get("instance")?,
                    vps_port: r.try_get::<i64, _>("vps_port")? as u16,
                })
            })
            .collect()
    }

    /// Forward a host port; one already forwarded is [`DbError::Taken`].
    pub async fn insert_forward(&self, f: &ForwardRow) -> Result<(), DbError> {
        let r = sqlx::query(
            "INSERT INTO port_forwards (protocol, host_port, instance, vps_port) VALUES (?, ?, ?, ?)",
        )
        .bind(&f.protocol)
        .bind(i64::from(f.host_port))
        .bind(&f.instance)
        .bind(i64::from(f.vps_port))
        .execute(&self.pool)
        .await;
        match r {
            Err(e) if is_unique_violation(&e) => Err(DbError::Taken(format!(
                "host port {}/{}",
                f.host_port, f.protocol
            ))),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Remove a forward of `instance`; false if there was none.
    pub async fn delete_forward(
        &self,
        instance: &str,
        protocol: &str,
        host_port: u16,
    ) -> Result<bool, DbError> {
        let r =
            sqlx::query("DELETE FROM port_forwards WHERE instance = ? AND protocol = ? AND host_port = ?")
                .bind(instance)
                .bind(protocol)
                .bind(i64::from(host_port))
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() > 0)
    }

    fn row_to_rule(r: &sqlx::sqlite::SqliteRow) -> Result<croft_api::FirewallRule, DbError> {
        Ok(croft_api::FirewallRule {
            action: r.try_get("action")?,
            protocol: r.try_get("protocol")?,
            port: r.try_get("port")?,
            source: r.try_get("source")?,
        })
    }

    /// Every VPS's firewall rules, each VPS's in match order.
    pub async fn firewall_rules(&self) -> Result<Vec<(String, croft_api::FirewallRule)>, DbError> {
        let rows = sqlx::query("SELECT * FROM firewall_rules ORDER BY instance, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("instance")?, Self::row_to_rule(r)?)))
            .collect()
    }

    pub async fn insert_firewall_rule(
        &self,
        instance: &str,
        rule: &croft_api::FirewallRule,
    ) -> Result<i64, DbError> {
        let r = sqlx::query(
            "INSERT INTO firewall_rules (instance, action, protocol, port, source) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(instance)
        .bind(&rule.action)
        .bind(&rule.protocol)
        .bind(&rule.port)
        .bind(&rule.source)
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    /// Remove the `index`th (1-based, in match order) rule of `instance`;
    /// the removed rule, or `None` if there is no such rule.
    pub async fn delete_firewall_rule(
        &self,
        instance: &str,
        index: usize,
    ) -> Result<Option<(i64, croft_api::FirewallRule)>, DbError> {
        let rows = sqlx::query("SELECT * FROM firewall_rules WHERE instance = ? ORDER BY id")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        let Some(r) = index.checked_sub(1).and_then(|i| rows.get(i)) else {
            return Ok(None);
        };
        let id: i64 = r.try_get("id")?;
        let rule = Self::row_to_rule(r)?;
        sqlx::query("DELETE FROM firewall_rules WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(Some((id, rule)))
    }

    /// Put a removed rule back where it was (a rollback).
    pub async fn restore_firewall_rule(
        &self,
        id: i64,
        instance: &str,
        rule: &croft_api::FirewallRule,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO firewall_rules (id, instance, action, protocol, port, source) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(instance)
            .bind(&rule.action)
            .bind(&rule.protocol)
            .bind(&rule.port)
            .bind(&rule.source)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_firewall_rule_id(&self, id: i64) -> Result<(), DbError> {
        sqlx::query("DELETE FROM firewall_rules WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn ssh_keys(&self, instance: &str) -> Result<Vec<String>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT key FROM ssh_keys WHERE instance = ? ORDER BY rowid")
                .bind(instance)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Every VPS's keys, by VPS name, each list in the order added.
    pub async fn all_ssh_keys(&self) -> Result<std::collections::HashMap<String, Vec<String>>, DbError> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT instance, key FROM ssh_keys ORDER BY rowid")
            .fetch_all(&self.pool)
            .await?;
        let mut keys: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (instance, key) in rows {
            keys.entry(instance).or_default().push(key);
        }
        Ok(keys)
    }

    pub async fn add_ssh_keys(&self, instance: &str, keys: &[String]) -> Result<(), DbError> {
        for key in keys {
            sqlx::query("INSERT OR IGNORE INTO ssh_keys (instance, key) VALUES (?, ?)")
                .bind(instance)
                .bind(key)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    pub async fn delete_instance(&self, name: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM snapshots WHERE instance = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM instances WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn snapshots(&self, instance: &str) -> Result<Vec<(String, String)>, DbError> {
        let rows = sqlx::query("SELECT name, created_at FROM snapshots WHERE instance = ? ORDER BY rowid")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("created_at")?)))
            .collect()
    }

    /// The names of a VPS's recorded snapshots, oldest first.
    pub async fn snapshot_names(&self, instance: &str) -> Result<Vec<String>, DbError> {
        Ok(self
            .snapshots(instance)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    /// Record a snapshot; `false` if one of that name exists.
    pub async fn insert_snapshot(&self, instance: &str, name: &str) -> Result<bool, DbError> {
        let r = sqlx::query("INSERT OR IGNORE INTO snapshots (instance, name) VALUES (?, ?)")
            .bind(instance)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_snapshot(&self, instance: &str, name: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM snapshots WHERE instance = ? AND name = ?")
            .bind(instance)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn images(&self) -> Result<Vec<ImageRow>, DbError> {
        let rows = sqlx::query("SELECT * FROM images ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ImageRow {
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

    /// Record an image, or update the record: fields given replace the
    /// stored ones, fields left `None` keep them.
    pub async fn upsert_image(&self, u: ImageUpdate<'_>) -> Result<(), DbError> {
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

    pub async fn delete_image(&self, name: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM images WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_job(&self, id: &str, kind: &str, target: &str) -> Result<(), DbError> {
        sqlx::query("INSERT INTO jobs (id, kind, target, status) VALUES (?, ?, ?, 'running')")
            .bind(id)
            .bind(kind)
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn update_job(
        &self,
        id: &str,
        status: JobStatus,
        progress: u8,
        message: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        let status = match status {
            JobStatus::Running => "running",
            JobStatus::Success => "success",
            JobStatus::Failure => "failure",
        };
        sqlx::query(
            "UPDATE jobs SET status = ?, progress = ?, message = COALESCE(?, message), error = ?,
             updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
        )
        .bind(status)
        .bind(progress as i64)
        .bind(message)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Jobs that were running when a previous croftd died can never end.
    pub async fn fail_interrupted_jobs(&self) -> Result<u64, DbError> {
        let r = sqlx::query(
            "UPDATE jobs SET status = 'failure', error = 'interrupted: croftd stopped while the job ran'
             WHERE status = 'running'",
        )
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn job(&self, id: &str) -> Result<Option<Job>, DbError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::row_to_job).transpose()
    }

    pub async fn jobs(&self) -> Result<Vec<Job>, DbError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT 200")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::row_to_job).collect()
    }

    fn row_to_job(row: &sqlx::sqlite::SqliteRow) -> Result<Job, DbError> {
        let status: String = row.try_get("status")?;
        Ok(Job {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            target: row.try_get("target")?,
            status: match status.as_str() {
                "running" => JobStatus::Running,
                "success" => JobStatus::Success,
                "failure" => JobStatus::Failure,
                other => {
                    return Err(DbError::Corrupt {
                        what: "job status".into(),
                        detail: other.into(),
                    })
                }
            },
            progress: row.try_get::<i64, _>("progress")?.clamp(0, 100) as u8,
            message: row.try_get("message")?,
            error: row.try_get("error")?,
            created_at: row.try_get("created_at")?,
        })
    }
}
