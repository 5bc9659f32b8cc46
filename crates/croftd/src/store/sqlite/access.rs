//! The SQLite store's access half: tenants and API tokens.

use super::{corrupt, quota, require_tenant, taken, SqliteStore};
use crate::auth::Role;
use crate::store::{
    AccessStore, CertificateRecord, NewTokenRecord, PlanRecord, Result, SessionRecord, StoreError,
    TenantRecord, TokenRecord, TrustTokenRecord, UserRecord,
};
use async_trait::async_trait;
use sqlx::Row;
use std::collections::BTreeMap;

fn row_to_tenant(r: &sqlx::sqlite::SqliteRow) -> Result<TenantRecord> {
    let name: String = r.try_get("name")?;
    Ok(TenantRecord {
        quota: quota::parse_quota(&name, &r.try_get::<String, _>("quota")?)?,
        images: match r.try_get::<Option<String>, _>("images")? {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("the images of tenant {name}"), e))?,
            ),
        },
        features: match r.try_get::<Option<String>, _>("features")? {
            None => Vec::new(),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| corrupt(format!("the features of tenant {name}"), e))?,
        },
        description: r.try_get("description")?,
        created_at: r.try_get("created_at")?,
        name,
    })
}

fn row_to_plan(r: &sqlx::sqlite::SqliteRow) -> Result<PlanRecord> {
    let name: String = r.try_get("name")?;
    let config: String = r.try_get("config")?;
    Ok(PlanRecord {
        config: serde_json::from_str::<BTreeMap<String, String>>(&config)
            .map_err(|e| corrupt(format!("plan {name}"), e))?,
        description: r.try_get("description")?,
        name,
    })
}

/// The columns of a token, with whether it has expired.
const TOKEN_COLUMNS: &str = "*, (expires_at IS NOT NULL
    AND expires_at <= strftime('%Y-%m-%dT%H:%M:%SZ', 'now')) AS expired";

fn row_to_token(r: &sqlx::sqlite::SqliteRow) -> Result<TokenRecord> {
    let id: String = r.try_get("id")?;
    let role: String = r.try_get("role")?;
    Ok(TokenRecord {
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("the role of token {id}"), &role))?,
        hash: r.try_get("hash")?,
        description: r.try_get("description")?,
        tenant: r.try_get("tenant")?,
        from_cidr: r.try_get("from_cidr")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        expired: r.try_get("expired")?,
        last_used_at: r.try_get("last_used_at")?,
        last_used_from: r.try_get("last_used_from")?,
        id,
    })
}

/// Audit log rows as entries.
fn audit_entries(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<croft_api::AuditEntry>> {
    rows.iter()
        .map(|r| {
            let status: i64 = r.try_get("status")?;
            Ok(croft_api::AuditEntry {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                caller: r.try_get("caller")?,
                role: r.try_get("role")?,
                tenant: r.try_get("tenant")?,
                method: r.try_get("method")?,
                path: r.try_get("path")?,
                action: r.try_get("action")?,
                status: u16::try_from(status).map_err(|_| corrupt("an audit entry's status", status))?,
                remote: r.try_get("remote")?,
            })
        })
        .collect()
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn tenants(&self) -> Result<Vec<TenantRecord>> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_tenant).collect()
    }

    async fn tenant(&self, name: &str) -> Result<Option<TenantRecord>> {
        let row = sqlx::query("SELECT * FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_tenant).transpose()
    }

    async fn create_tenant(&self, name: &str, description: &str) -> Result<TenantRecord> {
        let row = sqlx::query("INSERT INTO tenants (name, description) VALUES (?, ?) RETURNING *")
            .bind(name)
            .bind(description)
            .fetch_one(&self.pool)
            .await
            .map_err(taken(format!("tenant name {name}")))?;
        row_to_tenant(&row)
    }

    async fn delete_tenant(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let vpses: i64 = sqlx::query_scalar("SELECT count(*) FROM instances WHERE tenant = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if vpses > 0 {
            return Err(StoreError::InUse(format!(
                "tenant {name} still has {vpses} VPS{}; delete them first",
                if vpses == 1 { "" } else { "es" }
            )));
        }
        let deleted = sqlx::query("DELETE FROM tenants WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    async fn set_quota(&self, tenant: &str, q: &croft_api::Quota) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if quota::quota_of(&mut tx, tenant).await?.is_none() {
            return Err(StoreError::Missing(format!("tenant {tenant}")));
        }
        let usage = quota::usage_of(&mut tx, tenant, None).await?;
        crate::store::quota::fits(tenant, q, &usage)?;
        let vpses: Vec<(String, String)> =
            sqlx::query_as("SELECT name, config FROM instances WHERE tenant = ?")
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await?;
        for (name, config) in vpses {
            let cfg = quota::parse_config(&name, &config)?;
            crate::store::quota::require_limits(tenant, &name, q, &cfg)?;
        }
        sqlx::query("UPDATE tenants SET quota = ? WHERE name = ?")
            .bind(serde_json::to_string(q).expect("a quota serializes"))
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_tenant_images(&self, tenant: &str, images: Option<&[String]>) -> Result<bool> {
        let r = sqlx::query("UPDATE tenants SET images = ? WHERE name = ?")
            .bind(images.map(|i| serde_json::to_string(i).expect("names serialize")))
            .bind(tenant)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn set_tenant_features(&self, tenant: &str, features: &[String]) -> Result<bool> {
        let r = sqlx::query("UPDATE tenants SET features = ? WHERE name = ?")
            .bind(serde_json::to_string(features).expect("names serialize"))
            .bind(tenant)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn tenant_usage(&self, tenant: &str) -> Result<croft_api::QuotaUsage> {
        let mut conn = self.pool.acquire().await?;
        quota::usage_of(&mut conn, tenant, None).await
    }

    async fn plans(&self) -> Result<Vec<PlanRecord>> {
        let rows = sqlx::query("SELECT * FROM plans ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_plan).collect()
    }

    async fn plan(&self, name: &str) -> Result<Option<PlanRecord>> {
        let row = sqlx::query("SELECT * FROM plans WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_plan).transpose()
    }

    async fn create_plan(&self, plan: &PlanRecord) -> Result<()> {
        sqlx::query("INSERT INTO plans (name, description, config) VALUES (?, ?, ?)")
            .bind(&plan.name)
            .bind(&plan.description)
            .bind(serde_json::to_string(&plan.config).expect("a string map serializes"))
            .execute(&self.pool)
            .await
            .map_err(taken(format!("plan name {}", plan.name)))?;
        Ok(())
    }

    async fn delete_plan(&self, name: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM plans WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn create_token(&self, new: &NewTokenRecord<'_>) -> Result<TokenRecord> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        require_tenant(&mut tx, new.tenant).await?;
        let lifetime = new
            .lifetime_secs
            .map(|s| format!("+{} seconds", s.min(i64::MAX as u64)));
        sqlx::query(
            "INSERT INTO api_tokens (id, hash, description, tenant, role, from_cidr, expires_at)
             VALUES (?, ?, ?, ?, ?, ?,
                CASE WHEN ?7 IS NULL THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?7) END)",
        )
        .bind(new.id)
        .bind(new.hash)
        .bind(new.description)
        .bind(new.tenant)
        .bind(new.role.as_str())
        .bind(new.from_cidr)
        .bind(lifetime)
        .execute(&mut *tx)
        .await
        .map_err(taken(format!("token id {}", new.id)))?;
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?"))
            .bind(new.id)
            .fetch_one(&mut *tx)
            .await?;
        let record = row_to_token(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn token(&self, id: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_token).transpose()
    }

    async fn tokens(&self, tenant: Option<Option<&str>>) -> Result<Vec<TokenRecord>> {
        let (all, tenant) = match tenant {
            None => (true, None),
            Some(t) => (false, t),
        };
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ?1 OR tenant IS ?2
             ORDER BY created_at DESC, id"
        ))
        .bind(all)
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_token).collect()
    }

    async fn delete_token(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn touch_token(&self, id: &str, from: &str) -> Result<()> {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
             last_used_from = ? WHERE id = ?",
        )
        .bind(from)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record_audit(&self, e: &croft_api::AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (caller, role, tenant, method, path, action, status, remote)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&e.caller)
        .bind(&e.role)
        .bind(&e.tenant)
        .bind(&e.method)
        .bind(&e.path)
        .bind(&e.action)
        .bind(i64::from(e.status))
        .bind(&e.remote)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit(&self, tenant: Option<&str>, limit: u32) -> Result<Vec<croft_api::AuditEntry>> {
        // One query per case, so that a tenant's uses its index.
        let rows = match tenant {
            Some(tenant) => {
                sqlx::query("SELECT * FROM audit_log WHERE tenant = ? ORDER BY id DESC LIMIT ?")
                    .bind(tenant)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?")
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        audit_entries(&rows)
    }

    async fn audit_of_path(
        &self,
        tenant: &str,
        path: &str,
        limit: u32,
    ) -> Result<Vec<croft_api::AuditEntry>> {
        let below = format!(
            "{}/%",
            path.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        );
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE tenant = ? AND status < 400 AND (path = ? OR path LIKE ? ESCAPE '\\')
             ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant)
        .bind(path)
        .bind(below)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        audit_entries(&rows)
    }
    async fn create_trust_token(
        &self,
        token: &TrustTokenRecord,
        lifetime_secs: u64,
    ) -> Result<TrustTokenRecord> {
        self.create_trust_token_row(token, lifetime_secs).await
    }

    async fn trust_token(&self, id: &str) -> Result<Option<TrustTokenRecord>> {
        self.trust_token_row(id).await
    }

    async fn trust_tokens(&self, tenant: Option<&str>) -> Result<Vec<TrustTokenRecord>> {
        self.trust_token_rows(tenant).await
    }

    async fn delete_trust_token(&self, id: &str) -> Result<bool> {
        self.delete_trust_token_row(id).await
    }

    async fn enroll(&self, id: &str, cert: &CertificateRecord) -> Result<bool> {
        self.enroll_row(id, cert).await
    }

    async fn certificate(&self, fingerprint: &str) -> Result<Option<CertificateRecord>> {
        self.certificate_row(fingerprint).await
    }

    async fn certificates(&self, tenant: Option<&str>) -> Result<Vec<CertificateRecord>> {
        self.certificate_rows(tenant).await
    }

    async fn delete_certificate(&self, fingerprint: &str) -> Result<bool> {
        self.delete_certificate_row(fingerprint).await
    }

    async fn create_user(&self, user: &UserRecord) -> Result<UserRecord> {
        self.create_user_row(user).await
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        self.user_row(name).await
    }

    async fn users(&self, tenant: Option<Option<&str>>) -> Result<Vec<UserRecord>> {
        self.user_rows(tenant).await
    }

    async fn delete_user(&self, name: &str) -> Result<bool> {
        self.delete_user_row(name).await
    }

    async fn set_password(&self, name: &str, hash: &str, keep: Option<&str>) -> Result<bool> {
        self.set_password_row(name, hash, keep).await
    }

    async fn create_session(&self, session: &SessionRecord, password_hash: &str) -> Result<bool> {
        self.create_session_row(session, password_hash).await
    }

    async fn session(&self, hash: &str) -> Result<Option<(SessionRecord, UserRecord)>> {
        self.session_row(hash).await
    }

    async fn touch_session(&self, hash: &str, at: i64) -> Result<()> {
        self.touch_session_row(hash, at).await
    }

    async fn delete_session(&self, hash: &str) -> Result<bool> {
        self.delete_session_row(hash).await
    }

    async fn delete_expired_sessions(&self, now: i64) -> Result<u64> {
        self.delete_expired_session_rows(now).await
    }
}
