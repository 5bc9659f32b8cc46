//! The SQLite store's trust records: client certificates trusted by
//! fingerprint, and the one-time tokens that enroll them.

use super::{corrupt, require_tenant, taken, SqliteStore};
use crate::auth::Role;
use crate::store::{CertificateRecord, Result, TrustTokenRecord};
use sqlx::Row;

fn role(what: &str, text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| corrupt(format!("the role of {what}"), text))
}

fn row_to_certificate(r: &sqlx::sqlite::SqliteRow) -> Result<CertificateRecord> {
    let fingerprint: String = r.try_get("fingerprint")?;
    Ok(CertificateRecord {
        role: role(
            &format!("certificate {fingerprint}"),
            &r.try_get::<String, _>("role")?,
        )?,
        name: r.try_get("name")?,
        tenant: r.try_get("tenant")?,
        created_at: r.try_get("created_at")?,
        fingerprint,
    })
}

const TRUST_TOKEN_COLUMNS: &str = "*, expires_at <= strftime('%Y-%m-%dT%H:%M:%SZ', 'now') AS expired";

fn row_to_trust_token(r: &sqlx::sqlite::SqliteRow) -> Result<TrustTokenRecord> {
    let id: String = r.try_get("id")?;
    Ok(TrustTokenRecord {
        role: role(&format!("trust token {id}"), &r.try_get::<String, _>("role")?)?,
        hash: r.try_get("hash")?,
        name: r.try_get("name")?,
        tenant: r.try_get("tenant")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        expired: r.try_get("expired")?,
        id,
    })
}

impl SqliteStore {
    pub(super) async fn create_trust_token_row(
        &self,
        t: &TrustTokenRecord,
        lifetime_secs: u64,
    ) -> Result<TrustTokenRecord> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        require_tenant(&mut tx, t.tenant.as_deref()).await?;
        sqlx::query(
            "INSERT INTO trust_tokens (id, hash, name, role, tenant, expires_at)
             VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?))",
        )
        .bind(&t.id)
        .bind(&t.hash)
        .bind(&t.name)
        .bind(t.role.as_str())
        .bind(&t.tenant)
        .bind(format!("+{} seconds", lifetime_secs.min(i64::MAX as u64)))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {TRUST_TOKEN_COLUMNS} FROM trust_tokens WHERE id = ?"
        ))
        .bind(&t.id)
        .fetch_one(&mut *tx)
        .await?;
        let record = row_to_trust_token(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn trust_token_row(&self, id: &str) -> Result<Option<TrustTokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TRUST_TOKEN_COLUMNS} FROM trust_tokens WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(row_to_trust_token).transpose()
    }

    pub(super) async fn trust_token_rows(&self, tenant: Option<&str>) -> Result<Vec<TrustTokenRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRUST_TOKEN_COLUMNS} FROM trust_tokens WHERE ?1 IS NULL OR tenant = ?1
             ORDER BY created_at DESC, id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_trust_token).collect()
    }

    pub(super) async fn delete_trust_token_row(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM trust_tokens WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(super) async fn enroll_row(&self, id: &str, c: &CertificateRecord) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let used = sqlx::query("DELETE FROM trust_tokens WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if used == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO trusted_certificates (fingerprint, name, role, tenant) VALUES (?, ?, ?, ?)")
            .bind(&c.fingerprint)
            .bind(&c.name)
            .bind(c.role.as_str())
            .bind(&c.tenant)
            .execute(&mut *tx)
            .await
            .map_err(taken(format!("certificate {}", c.fingerprint)))?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn certificate_row(&self, fingerprint: &str) -> Result<Option<CertificateRecord>> {
        let row = sqlx::query("SELECT * FROM trusted_certificates WHERE fingerprint = ?")
            .bind(fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_certificate).transpose()
    }

    pub(super) async fn certificate_rows(&self, tenant: Option<&str>) -> Result<Vec<CertificateRecord>> {
        let rows =
            sqlx::query("SELECT * FROM trusted_certificates WHERE ?1 IS NULL OR tenant = ?1 ORDER BY name")
                .bind(tenant)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(row_to_certificate).collect()
    }

    pub(super) async fn delete_certificate_row(&self, fingerprint: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM trusted_certificates WHERE fingerprint = ?")
            .bind(fingerprint)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
