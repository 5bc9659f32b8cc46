//! The SQLite store's security groups: their rules, in order, and the
//! VPSes they are attached to.

use super::{quota, SqliteStore};
use crate::store::{GroupRecord, Result, RuleEdit, StoreError};
use croft_api::FirewallRule;
use sqlx::{Row, SqliteConnection};

fn rule_of(r: &sqlx::sqlite::SqliteRow) -> Result<FirewallRule> {
    Ok(FirewallRule {
        direction: r.try_get("direction")?,
        action: r.try_get("action")?,
        protocol: r.try_get("protocol")?,
        port: r.try_get("port")?,
        source: r.try_get("source")?,
        destination: r.try_get("destination")?,
    })
}

/// The id of group `name` of `tenant`, or [`StoreError::Missing`].
async fn group_id(conn: &mut SqliteConnection, tenant: &str, name: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM firewall_groups WHERE tenant = ? AND name = ?")
        .bind(tenant)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Missing(format!("security group {name}")))
}

async fn rules_of(conn: &mut SqliteConnection, id: i64) -> Result<Vec<FirewallRule>> {
    let rows = sqlx::query("SELECT * FROM firewall_group_rules WHERE group_id = ? ORDER BY position")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(rule_of).collect()
}

async fn write_rules(conn: &mut SqliteConnection, id: i64, rules: &[FirewallRule]) -> Result<()> {
    sqlx::query("DELETE FROM firewall_group_rules WHERE group_id = ?")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for (position, rule) in rules.iter().enumerate() {
        sqlx::query(
            "INSERT INTO firewall_group_rules
             (group_id, position, direction, action, protocol, port, source, destination)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(&rule.direction)
        .bind(&rule.action)
        .bind(&rule.protocol)
        .bind(&rule.port)
        .bind(&rule.source)
        .bind(&rule.destination)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) async fn group_records(&self, tenant: Option<&str>) -> Result<Vec<GroupRecord>> {
        let mut conn = self.pool.acquire().await?;
        let groups = sqlx::query(
            "SELECT * FROM firewall_groups WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, name",
        )
        .bind(tenant)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(groups.len());
        for g in &groups {
            let id: i64 = g.try_get("id")?;
            let members = sqlx::query(
                "SELECT instance, position FROM firewall_group_members WHERE group_id = ? ORDER BY instance",
            )
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|m| Ok((m.try_get("instance")?, m.try_get("position")?)))
            .collect::<Result<Vec<_>>>()?;
            out.push(GroupRecord {
                tenant: g.try_get("tenant")?,
                name: g.try_get("name")?,
                description: g.try_get("description")?,
                rules: rules_of(&mut conn, id).await?,
                members,
            });
        }
        Ok(out)
    }

    pub(super) async fn create_group(&self, tenant: &str, name: &str, description: &str) -> Result<()> {
        let made = sqlx::query("INSERT INTO firewall_groups (tenant, name, description) VALUES (?, ?, ?)")
            .bind(tenant)
            .bind(name)
            .bind(description)
            .execute(&self.pool)
            .await;
        match made {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Taken(format!("the security group name {name}")))
            }
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(StoreError::Missing(format!("tenant {tenant}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn delete_group(&self, tenant: &str, name: &str) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = group_id(&mut tx, tenant, name).await?;
        let members: Vec<String> = sqlx::query_scalar(
            "SELECT instance FROM firewall_group_members WHERE group_id = ? ORDER BY instance",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if !members.is_empty() {
            return Err(StoreError::InUse(format!(
                "security group {name} is attached to {}; detach it first",
                members.join(", ")
            )));
        }
        sqlx::query("DELETE FROM firewall_groups WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn edit_group(
        &self,
        tenant: &str,
        name: &str,
        edit: &RuleEdit,
    ) -> Result<Vec<FirewallRule>> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = group_id(&mut tx, tenant, name).await?;
        let before = rules_of(&mut tx, id).await?;
        let mut after = before.clone();
        edit.apply(&mut after)?;
        if after.len() > before.len() {
            let more = croft_api::QuotaUsage {
                firewall_rules: (after.len() - before.len()) as u64,
                ..Default::default()
            };
            quota::guard_tenant_addition(&mut tx, tenant, more).await?;
        }
        write_rules(&mut tx, id, &after).await?;
        tx.commit().await?;
        Ok(before)
    }

    pub(super) async fn set_group(&self, tenant: &str, name: &str, rules: &[FirewallRule]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let id = group_id(&mut tx, tenant, name).await?;
        write_rules(&mut tx, id, rules).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn attach(&self, instance: &str, name: &str) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let tenant: String = sqlx::query_scalar("SELECT tenant FROM instances WHERE key = ?")
            .bind(instance)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("VPS {instance}")))?;
        let id = group_id(&mut tx, &tenant, name).await?;
        let made = sqlx::query(
            "INSERT INTO firewall_group_members (instance, group_id, position)
             VALUES (?, ?, (SELECT COALESCE(MAX(position) + 1, 0) FROM firewall_group_members WHERE instance = ?))",
        )
        .bind(instance)
        .bind(id)
        .bind(instance)
        .execute(&mut *tx)
        .await;
        match made {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Taken(format!(
                    "security group {name}, attached already,"
                )))
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn detach(&self, instance: &str, name: &str) -> Result<bool> {
        let r = sqlx::query(
            "DELETE FROM firewall_group_members WHERE instance = ?1 AND group_id =
             (SELECT g.id FROM firewall_groups g JOIN instances i ON i.tenant = g.tenant
              WHERE i.key = ?1 AND g.name = ?2)",
        )
        .bind(instance)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }
}
