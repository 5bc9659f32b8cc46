//! The records of who may use croftd: tenants (and, with them, the API
//! tokens and trusted certificates of their users).

use super::Result;
use crate::auth::Role;
use async_trait::async_trait;

/// A tenant: a customer, whose VPSes only its own users see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub quota: croft_api::Quota,
    /// The images its VPSes may be made from; `None`: every image.
    pub images: Option<Vec<String>>,
    /// The features its VPSes may have on (`tun`, `fuse`).
    pub features: Vec<String>,
}

/// A plan: a named VPS size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    pub name: String,
    pub description: String,
    /// Its `limits.*` settings.
    pub config: std::collections::BTreeMap<String, String>,
}

/// A client certificate trusted by its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// SHA-256 of the certificate, lowercase hex.
    pub fingerprint: String,
    /// Who it is (the trust token's name).
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub created_at: String,
}

/// A one-time trust token as stored: its secret's hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustTokenRecord {
    pub id: String,
    pub hash: String,
    /// The name the certificate it enrolls gets.
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    /// Whether `expires_at` has passed, as of the read.
    pub expired: bool,
}

/// A bearer API token as stored: never the token, only its secret's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public: names the token in lists and logs.
    pub id: String,
    pub hash: String,
    pub description: String,
    pub role: Role,
    /// The tenant of an owner or viewer token.
    pub tenant: Option<String>,
    /// Accepted only from this network, if set.
    pub from_cidr: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Whether `expires_at` has passed, as of the read.
    pub expired: bool,
    pub last_used_at: Option<String>,
    pub last_used_from: Option<String>,
}

/// A token to record.
#[derive(Debug, Clone)]
pub struct NewTokenRecord<'a> {
    pub id: &'a str,
    pub hash: &'a str,
    pub description: &'a str,
    pub role: Role,
    pub tenant: Option<&'a str>,
    pub from_cidr: Option<&'a str>,
    /// Seconds from now until it expires; `None`: never.
    pub lifetime_secs: Option<u64>,
}

/// A person who logs in to the web panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub name: String,
    /// The tenant of an owner or viewer; `None` for an admin.
    pub tenant: Option<String>,
    pub role: Role,
    /// Argon2id, as a PHC string.
    pub password_hash: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

/// A logged-in session, by its secret's hash. Times are seconds since the
/// epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub hash: String,
    pub user: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub seen_at: i64,
}

/// The access half of the [`Store`](super::Store).
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Every tenant, by name.
    async fn tenants(&self) -> Result<Vec<TenantRecord>>;
    async fn tenant(&self, name: &str) -> Result<Option<TenantRecord>>;
    /// A tenant of that name already there is [`StoreError::Taken`](super::StoreError::Taken).
    async fn create_tenant(&self, name: &str, description: &str) -> Result<TenantRecord>;
    /// Forget a tenant: [`StoreError::InUse`](super::StoreError::InUse)
    /// while it owns a VPS, checked in the same transaction; false if
    /// there was no such tenant.
    async fn delete_tenant(&self, name: &str) -> Result<bool>;
    /// Set a tenant's quota: [`StoreError::Quota`](super::StoreError::Quota)
    /// if it already holds more, [`StoreError::LimitRequired`](super::StoreError::LimitRequired)
    /// if a VPS of it lacks a limit the quota caps, checked in the same
    /// transaction.
    async fn set_quota(&self, tenant: &str, quota: &croft_api::Quota) -> Result<()>;
    /// Set the images a tenant may use (`None`: every image); false if
    /// there is no such tenant.
    async fn set_tenant_images(&self, tenant: &str, images: Option<&[String]>) -> Result<bool>;
    /// Set the features a tenant's VPSes may have on; false if there is
    /// no such tenant.
    async fn set_tenant_features(&self, tenant: &str, features: &[String]) -> Result<bool>;
    /// What a tenant holds.
    async fn tenant_usage(&self, tenant: &str) -> Result<croft_api::QuotaUsage>;

    // --- Plans ---
    async fn plans(&self) -> Result<Vec<PlanRecord>>;
    async fn plan(&self, name: &str) -> Result<Option<PlanRecord>>;
    /// A plan of that name already there is [`StoreError::Taken`](super::StoreError::Taken).
    async fn create_plan(&self, plan: &PlanRecord) -> Result<()>;
    /// False if there was no such plan.
    async fn delete_plan(&self, name: &str) -> Result<bool>;

    // --- API tokens ---
    /// Record a token; a tenant that is not there is
    /// [`StoreError::Missing`](super::StoreError::Missing).
    async fn create_token(&self, new: &NewTokenRecord<'_>) -> Result<TokenRecord>;
    async fn token(&self, id: &str) -> Result<Option<TokenRecord>>;
    /// The tokens of `tenant` (`Some(None)`: the tenant-less ones), or
    /// every token (`None`), newest first.
    async fn tokens(&self, tenant: Option<Option<&str>>) -> Result<Vec<TokenRecord>>;
    /// Forget a token at once; false if there was none.
    async fn delete_token(&self, id: &str) -> Result<bool>;
    /// Record that the token was used now, from `from`.
    async fn touch_token(&self, id: &str, from: &str) -> Result<()>;

    // --- Panel users and their sessions ---
    /// Record a user (`created_at`, `last_login_at` are the store's): a
    /// name taken is [`StoreError::Taken`](super::StoreError::Taken), a
    /// tenant not there [`StoreError::Missing`](super::StoreError::Missing).
    async fn create_user(&self, user: &UserRecord) -> Result<UserRecord>;
    async fn user(&self, name: &str) -> Result<Option<UserRecord>>;
    /// The users of `tenant` (`Some(None)`: the admins), or every user
    /// (`None`), by name.
    async fn users(&self, tenant: Option<Option<&str>>) -> Result<Vec<UserRecord>>;
    /// Forget a user and its sessions; false if there was none.
    async fn delete_user(&self, name: &str) -> Result<bool>;
    /// Set a user's password and end its sessions but `keep` (the one
    /// changing it), in one transaction; false if there is no such user.
    async fn set_password(&self, name: &str, hash: &str, keep: Option<&str>) -> Result<bool>;
    /// Record a session, and the user's login at its start, if the
    /// user's password is still the one of `password_hash` (checked in the
    /// same transaction, so a login racing a password change cannot
    /// outlive it); false if it is not, or the user is gone.
    async fn create_session(&self, session: &SessionRecord, password_hash: &str) -> Result<bool>;
    /// The session of `hash` and its user, whether or not it expired.
    async fn session(&self, hash: &str) -> Result<Option<(SessionRecord, UserRecord)>>;
    /// Record that the session was used at `at`.
    async fn touch_session(&self, hash: &str, at: i64) -> Result<()>;
    /// End a session; false if there was none.
    async fn delete_session(&self, hash: &str) -> Result<bool>;
    /// Forget sessions that expired before `now`; how many.
    async fn delete_expired_sessions(&self, now: i64) -> Result<u64>;

    // --- The audit log ---
    /// Append an entry (its id and time are the store's).
    async fn record_audit(&self, entry: &croft_api::AuditEntry) -> Result<()>;
    /// The latest `limit` entries (of `tenant`, or of all), newest first.
    async fn audit(&self, tenant: Option<&str>, limit: u32) -> Result<Vec<croft_api::AuditEntry>>;
    /// The latest `limit` entries of `tenant` on `path` or below it that
    /// were done (status below 400), newest first: one VPS's activity.
    async fn audit_of_path(&self, tenant: &str, path: &str, limit: u32)
        -> Result<Vec<croft_api::AuditEntry>>;

    // --- Trust: client certificates and the tokens that enroll them ---
    /// Record a trust token (its `created_at`, `expired` are the store's),
    /// valid for `lifetime_secs`; a tenant that is not there is
    /// [`StoreError::Missing`](super::StoreError::Missing).
    async fn create_trust_token(
        &self,
        token: &TrustTokenRecord,
        lifetime_secs: u64,
    ) -> Result<TrustTokenRecord>;
    async fn trust_token(&self, id: &str) -> Result<Option<TrustTokenRecord>>;
    /// Every trust token not yet used (of `tenant`, or all), newest first.
    async fn trust_tokens(&self, tenant: Option<&str>) -> Result<Vec<TrustTokenRecord>>;
    /// Forget a trust token; false if there was none.
    async fn delete_trust_token(&self, id: &str) -> Result<bool>;
    /// Use trust token `id` up and trust `cert`, in one transaction:
    /// false (and nothing trusted) if the token is gone already (used by a
    /// concurrent enrollment); a fingerprint already trusted is
    /// [`StoreError::Taken`](super::StoreError::Taken).
    async fn enroll(&self, id: &str, cert: &CertificateRecord) -> Result<bool>;
    async fn certificate(&self, fingerprint: &str) -> Result<Option<CertificateRecord>>;
    /// The trusted certificates (of `tenant`, or all), by name.
    async fn certificates(&self, tenant: Option<&str>) -> Result<Vec<CertificateRecord>>;
    /// Stop trusting a certificate at once; false if it was not trusted.
    async fn delete_certificate(&self, fingerprint: &str) -> Result<bool>;
}
