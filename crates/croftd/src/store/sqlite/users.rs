//! The SQLite store's panel users and their logged-in sessions.

use super::{corrupt, require_tenant, taken, SqliteStore};
use crate::auth::Role;
use crate::store::{Result, SessionRecord, UserRecord};
use sqlx::Row;

fn row_to_user(r: &sqlx::sqlite::SqliteRow) -> Result<UserRecord> {
    let name: String = r.try_get("name")?;
    let role: String = r.try_get("role")?;
    Ok(UserRecord {
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("the role of user {name}"), &role))?,
        tenant: r.try_get("tenant")?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
        last_login_at: r.try_get("last_login_at")?,
        name,
    })
}

fn row_to_session(r: &sqlx::sqlite::SqliteRow) -> Result<SessionRecord> {
    Ok(SessionRecord {
        hash: r.try_get("hash")?,
        user: r.try_get("user")?,
        created_at: r.try_get("session_created_at")?,
        expires_at: r.try_get("expires_at")?,
        seen_at: r.try_get("seen_at")?,
    })
}

impl SqliteStore {
    pub(super) async fn create_user_row(&self, user: &UserRecord) -> Result<UserRecord> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        require_tenant(&mut tx, user.tenant.as_deref()).await?;
        sqlx::query("INSERT INTO users (name, tenant, role, password_hash) VALUES (?, ?, ?, ?)")
            .bind(&user.name)
            .bind(&user.tenant)
            .bind(user.role.as_str())
            .bind(&user.password_hash)
            .execute(&mut *tx)
            .await
            .map_err(taken(format!("the user name {}", user.name)))?;
        let row = sqlx::query("SELECT * FROM users WHERE name = ?")
            .bind(&user.name)
            .fetch_one(&mut *tx)
            .await?;
        let record = row_to_user(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    pub(super) async fn user_row(&self, name: &str) -> Result<Option<UserRecord>> {
        sqlx::query("SELECT * FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(row_to_user)
            .transpose()
    }

    pub(super) async fn user_rows(&self, tenant: Option<Option<&str>>) -> Result<Vec<UserRecord>> {
        let rows = match tenant {
            None => {
                sqlx::query("SELECT * FROM users ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(tenant) => {
                sqlx::query("SELECT * FROM users WHERE tenant IS ? ORDER BY name")
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(row_to_user).collect()
    }

    pub(super) async fn delete_user_row(&self, name: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(super) async fn set_password_row(&self, name: &str, hash: &str, keep: Option<&str>) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let r = sqlx::query("UPDATE users SET password_hash = ? WHERE name = ?")
            .bind(hash)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM sessions WHERE user = ? AND hash IS NOT ?")
            .bind(name)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn create_session_row(&self, s: &SessionRecord, password_hash: &str) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let made = sqlx::query(
            "INSERT INTO sessions (hash, user, created_at, expires_at, seen_at)
             SELECT ?, name, ?, ?, ? FROM users WHERE name = ? AND password_hash = ?",
        )
        .bind(&s.hash)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.seen_at)
        .bind(&s.user)
        .bind(password_hash)
        .execute(&mut *tx)
        .await
        .map_err(taken("the session".into()))?
        .rows_affected()
            > 0;
        if made {
            sqlx::query(
                "UPDATE users SET last_login_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE name = ?",
            )
            .bind(&s.user)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(made)
    }

    pub(super) async fn session_row(&self, hash: &str) -> Result<Option<(SessionRecord, UserRecord)>> {
        let row = sqlx::query(
            "SELECT s.hash, s.user, s.created_at AS session_created_at, s.expires_at, s.seen_at, u.*
             FROM sessions s JOIN users u ON u.name = s.user WHERE s.hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((row_to_session(&r)?, row_to_user(&r)?)))
            .transpose()
    }

    pub(super) async fn touch_session_row(&self, hash: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET seen_at = ? WHERE hash = ?")
            .bind(at)
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn delete_session_row(&self, hash: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM sessions WHERE hash = ?")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub(super) async fn delete_expired_session_rows(&self, now: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}
