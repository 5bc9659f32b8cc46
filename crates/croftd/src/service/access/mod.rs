//! API tokens and authentication: tokens made (shown once), listed with
//! their last use, revoked at once; a presented token turned into a
//! [`Caller`]; and repeated failures from one address slowed down.
//! `trust.rs`: client certificates and the trust tokens that enroll them;
//! `users.rs`: the panel's users, logins and sessions.

mod trust;
pub mod users;

use super::{Result, ServiceError};
use crate::auth::{token, Caller, Credential, Role};
use crate::store::{NewTokenRecord, Store, StoreError, TokenRecord};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Failed authentications one address may make in [`FAILURE_WINDOW`]
/// before it is refused (429) until the window ends.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// A token's last use is written at most this often (a write per request
/// would cost every request a database commit).
const TOUCH_EVERY: Duration = Duration::from_secs(30);
/// The lifetime of a token made without one.
const DEFAULT_LIFETIME: &str = "90d";

pub struct AccessService {
    store: Arc<dyn Store>,
    /// Per address: when its window started, and its failures in it.
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Per token: when its last use was written.
    touched: Mutex<HashMap<String, Instant>>,
    /// The WebSocket tickets panel sessions asked for, not yet used.
    tickets: Mutex<HashMap<String, users::Ticket>>,
    /// Password hashes computed at once (each takes 19 MiB and tens of
    /// milliseconds): a flood of logins waits here, not in memory.
    hashing: Arc<tokio::sync::Semaphore>,
}

fn token_view(r: TokenRecord) -> croft_api::Token {
    croft_api::Token {
        id: r.id,
        description: r.description,
        role: r.role.as_str().into(),
        tenant: r.tenant,
        from: r.from_cidr,
        created_at: r.created_at,
        expires_at: r.expires_at,
        expired: r.expired,
        last_used_at: r.last_used_at,
        last_used_from: r.last_used_from,
    }
}

/// The address failures are counted against: an IPv4 address as it is,
/// an IPv6 one by its /64 (one host usually holds a whole /64, and would
/// otherwise have endless addresses to fail from).
fn throttled_as(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Whether `addr` is inside `cidr` (as `croft_api::parse_source` reads it).
fn within(addr: IpAddr, cidr: &str) -> bool {
    let Ok((network, prefix)) = croft_api::parse_source(cidr) else {
        return false;
    };
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
        v4 => v4,
    };
    croft_api::parse_source(&format!("{addr}/{prefix}")).is_ok_and(|(masked, _)| masked == network)
}

impl AccessService {
    pub fn new(store: Arc<dyn Store>) -> AccessService {
        AccessService {
            store,
            failures: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
            tickets: Mutex::new(HashMap::new()),
            hashing: Arc::new(tokio::sync::Semaphore::new(users::HASHING_AT_ONCE)),
        }
    }

    /// Where a credential with `role` made by `caller` in `tenant`
    /// belongs: a tenant role in that tenant; admin and metrics in no
    /// tenant, and only an admin may make those.
    fn grant<'t>(caller: &Caller, tenant: &'t str, role: Role) -> Result<Option<&'t str>> {
        if role.is_tenant_role() {
            return Ok(Some(tenant));
        }
        if caller.role != Role::Admin {
            return Err(ServiceError::Forbidden(format!(
                "{} has the {} role and may not grant the {} role; that needs the role admin",
                caller.name,
                caller.role.as_str(),
                role.as_str()
            )));
        }
        Ok(None)
    }

    /// Make a token. In `tenant` with a `scope` (owner for read-write,
    /// viewer for read), or of no tenant with a `role` (admin or metrics,
    /// which only an admin may make).
    pub async fn create_token(
        &self,
        caller: &Caller,
        tenant: &str,
        req: croft_api::TokenCreate,
    ) -> Result<croft_api::TokenCreated> {
        let (role, tenant) = match (req.scope.as_deref(), req.role.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::Invalid(
                    "give a scope (a tenant's token) or a role (admin or metrics), not both".into(),
                ))
            }
            (_, Some(role)) => {
                let role = match Role::parse(role) {
                    Some(r @ (Role::Admin | Role::Metrics)) => r,
                    _ => {
                        return Err(ServiceError::Invalid(format!(
                            "a token's role is admin or metrics (a tenant's token takes a scope, read or read-write), not {role:?}"
                        )))
                    }
                };
                (role, Self::grant(caller, tenant, role)?)
            }
            (scope, None) => match scope.unwrap_or("read-write") {
                "read-write" => (Role::Owner, Some(tenant)),
                "read" => (Role::Viewer, Some(tenant)),
                other => {
                    return Err(ServiceError::Invalid(format!(
                        "a token's scope is read or read-write, not {other:?}"
                    )))
                }
            },
        };
        let lifetime = croft_api::access::parse_lifetime(req.expires.as_deref().unwrap_or(DEFAULT_LIFETIME))
            .map_err(|e| ServiceError::invalid(&e))?;
        if let Some(from) = &req.from {
            croft_api::parse_source(from).map_err(|e| ServiceError::invalid(&e))?;
        }
        if req.description.len() > 1024 || req.description.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(
                "a token's description is one line of at most 1024 bytes".into(),
            ));
        }
        let made = token::generate();
        let record = self
            .store
            .create_token(&NewTokenRecord {
                id: &made.id,
                hash: &made.hash,
                description: &req.description,
                role,
                tenant,
                from_cidr: req.from.as_deref(),
                lifetime_secs: lifetime,
            })
            .await
            .map_err(|e| match e {
                StoreError::Missing(what) => ServiceError::NotFound(what),
                e => e.into(),
            })?;
        info!(token = %record.id, role = role.as_str(), tenant = ?record.tenant, by = %caller.name, "API token made");
        Ok(croft_api::TokenCreated {
            token: made.token,
            info: token_view(record),
        })
    }

    /// The tokens of `tenant`, or every token when `None`.
    pub async fn list_tokens(&self, tenant: Option<&str>) -> Result<Vec<croft_api::Token>> {
        let records = self.store.tokens(tenant.map(Some)).await?;
        Ok(records.into_iter().map(token_view).collect())
    }

    /// Revoke token `id` at once (the next request with it fails). Only
    /// a token of `tenant`, unless `tenant` is `None` (the admin).
    pub async fn revoke_token(&self, caller: &Caller, tenant: Option<&str>, id: &str) -> Result<()> {
        let not_found = || ServiceError::NotFound(format!("API token {id}"));
        let record = self.store.token(id).await?.ok_or_else(not_found)?;
        if tenant.is_some() && record.tenant.as_deref() != tenant {
            return Err(not_found());
        }
        if !self.store.delete_token(id).await? {
            return Err(not_found());
        }
        self.touched.lock().expect("touched poisoned").remove(id);
        info!(token = %id, by = %caller.name, "API token revoked");
        Ok(())
    }

    /// Append `entry` to the audit log.
    pub async fn record_audit(&self, entry: &croft_api::AuditEntry) -> Result<()> {
        Ok(self.store.record_audit(entry).await?)
    }

    /// What was done to the thing at API path `path` of `tenant` (a VPS),
    /// newest first: its latest `limit` audit entries that succeeded.
    pub async fn activity(&self, tenant: &str, path: &str, limit: u32) -> Result<Vec<croft_api::AuditEntry>> {
        Ok(self.store.audit_of_path(tenant, path, limit).await?)
    }

    /// The latest `limit` audit entries (of `tenant`, or of all).
    pub async fn audit(&self, tenant: Option<&str>, limit: u32) -> Result<Vec<croft_api::AuditEntry>> {
        Ok(self.store.audit(tenant, limit.clamp(1, 10_000)).await?)
    }

    /// The caller a bearer token proves, presented from `from`. Every
    /// refusal is 401 and says why without saying whether a token of that
    /// id exists; an address that failed too often is refused (429)
    /// without its token even being looked at.
    pub async fn authenticate(&self, presented: &str, from: IpAddr) -> Result<Caller> {
        self.refuse_if_throttled(from)?;
        match self.check_token(presented, from).await {
            Ok(caller) => Ok(caller),
            Err(e) => {
                if matches!(e, ServiceError::Unauthenticated(_)) {
                    self.count_failure(from);
                }
                Err(e)
            }
        }
    }

    async fn check_token(&self, presented: &str, from: IpAddr) -> Result<Caller> {
        let unknown = || ServiceError::Unauthenticated("unknown or revoked API token".into());
        let (id, secret) = token::parse(presented).ok_or_else(unknown)?;
        let record = self.store.token(id).await?.ok_or_else(unknown)?;
        if !token::matches(secret, &record.hash) {
            return Err(unknown());
        }
        if record.expired {
            return Err(ServiceError::Unauthenticated(format!(
                "API token {id} expired at {}",
                record.expires_at.as_deref().unwrap_or("?")
            )));
        }
        if let Some(cidr) = &record.from_cidr {
            if !within(from, cidr) {
                return Err(ServiceError::Unauthenticated(format!(
                    "API token {id} is not accepted from {from}"
                )));
            }
        }
        self.touch(id, from).await;
        Ok(Caller {
            role: record.role,
            tenant: record.tenant,
            credential: Credential::Token { id: id.into() },
            name: format!("token {id}"),
        })
    }

    /// Record the token's use, unless it was recorded moments ago.
    async fn touch(&self, id: &str, from: IpAddr) {
        let now = Instant::now();
        {
            let mut touched = self.touched.lock().expect("touched poisoned");
            if touched
                .get(id)
                .is_some_and(|t| now.duration_since(*t) < TOUCH_EVERY)
            {
                return;
            }
            touched.insert(id.to_string(), now);
        }
        if let Err(e) = self.store.touch_token(id, &from.to_string()).await {
            warn!(token = %id, "cannot record the token's use: {e}");
        }
    }

    fn refuse_if_throttled(&self, from: IpAddr) -> Result<()> {
        let from = throttled_as(from);
        let failures = self.failures.lock().expect("failures poisoned");
        if let Some((start, count)) = failures.get(&from) {
            let left = FAILURE_WINDOW.saturating_sub(start.elapsed());
            if *count >= MAX_FAILURES && !left.is_zero() {
                return Err(ServiceError::TooManyAttempts(format!(
                    "too many failed authentications from {from}; try again in {} s",
                    left.as_secs().max(1)
                )));
            }
        }
        Ok(())
    }

    /// Count an attempt that may fail (a login) before it is checked, and
    /// refuse it if its address has failed too often: counting first
    /// means concurrent attempts cannot all slip past the limit. A
    /// successful one is given back ([`Self::forgive`]).
    fn attempt(&self, from: IpAddr) -> Result<()> {
        let from = throttled_as(from);
        let mut failures = self.failures.lock().expect("failures poisoned");
        failures.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
        let entry = failures.entry(from).or_insert((Instant::now(), 0));
        if entry.1 >= MAX_FAILURES {
            let left = FAILURE_WINDOW.saturating_sub(entry.0.elapsed());
            return Err(ServiceError::TooManyAttempts(format!(
                "too many failed authentications from {from}; try again in {} s",
                left.as_secs().max(1)
            )));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Take back an attempt [`Self::attempt`] counted that succeeded.
    fn forgive(&self, from: IpAddr) {
        let from = throttled_as(from);
        let mut failures = self.failures.lock().expect("failures poisoned");
        if let Some(entry) = failures.get_mut(&from) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    fn count_failure(&self, from: IpAddr) {
        let from = throttled_as(from);
        let mut failures = self.failures.lock().expect("failures poisoned");
        // Forget windows that ended, so the map stays as small as the
        // set of addresses failing now.
        failures.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
        let entry = failures.entry(from).or_insert((Instant::now(), 0));
        entry.1 += 1;
        if entry.1 == MAX_FAILURES {
            warn!(%from, "too many failed authentications; refusing this address for a while");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn ipv6_failures_count_per_64() {
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(
            super::throttled_as(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(super::throttled_as(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(super::throttled_as(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn addresses_within_networks() {
        let ip = |s: &str| s.parse().unwrap();
        assert!(within(ip("192.0.2.7"), "192.0.2.0/24"));
        assert!(within(ip("::ffff:192.0.2.7"), "192.0.2.0/24"));
        assert!(!within(ip("192.0.3.7"), "192.0.2.0/24"));
        assert!(within(ip("2001:db8::1"), "2001:db8::/32"));
        assert!(!within(ip("2001:db9::1"), "2001:db8::/32"));
        assert!(within(ip("10.1.2.3"), "10.1.2.3"));
        assert!(!within(ip("10.1.2.3"), "not a network"));
    }
}
