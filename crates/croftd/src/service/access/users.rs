//! Panel users and their sessions: users made by the admin (any role) or
//! by a tenant's owner (its own tenant's owners and viewers); a login that
//! checks the password (Argon2id, off the async threads) and opens a
//! session; a session's secret turned into the [`Caller`] it proves; and a
//! logout. A failed login answers the same, as slowly, whether or not the
//! name exists, and counts against its address like a bad token.

use super::AccessService;
use crate::auth::{password, Caller, Credential, Role};
use crate::service::{Result, ServiceError};
use crate::store::{SessionRecord, StoreError, UserRecord};
use std::net::IpAddr;
use std::time::Duration;
use tracing::info;

/// A session ends this long after the login, used or not.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A session not used for this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// A session's last use is written at most this often.
const SESSION_TOUCH_EVERY: i64 = 60;
/// A failed login is answered no sooner than this, on top of the
/// password check itself.
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(500);
/// Password hashes computed at once; more wait their turn.
pub const HASHING_AT_ONCE: usize = 2;
/// A login that cannot start its password check within this long is
/// refused as too many at once.
const HASHING_WAIT: Duration = Duration::from_secs(10);
/// WebSocket tickets one session may hold unused.
const TICKETS_PER_SESSION: usize = 16;

fn user_view(r: UserRecord) -> croft_api::User {
    croft_api::User {
        name: r.name,
        tenant: r.tenant,
        role: r.role.as_str().into(),
        created_at: r.created_at,
        last_login_at: r.last_login_at,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// How long a WebSocket ticket stays valid.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// A WebSocket ticket: the session it was issued to, the path it opens,
/// and when it stops being valid.
pub struct Ticket {
    session: String,
    path: String,
    expires: std::time::Instant,
}

/// A login that opened a session.
pub struct LoggedIn {
    /// The session's secret: the browser's cookie, never stored.
    pub secret: String,
    pub caller: Caller,
}

fn caller_of(user: UserRecord, session: String) -> Caller {
    Caller {
        name: format!("user {}", user.name),
        role: user.role,
        tenant: user.tenant,
        credential: Credential::Session {
            user: user.name,
            session,
        },
    }
}

impl AccessService {
    /// Run `work` (a password hash or check) off the async threads, at
    /// most [`HASHING_AT_ONCE`] at a time.
    async fn hashing<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let permit = tokio::time::timeout(HASHING_WAIT, self.hashing.clone().acquire_owned())
            .await
            .map_err(|_| ServiceError::TooManyAttempts("too many logins at once; try again".into()))?
            .expect("the hashing semaphore is never closed");
        // The permit goes with the work: a client that hangs up does not
        // free it while its hash still runs.
        Ok(crate::blocking(move || {
            let _permit = permit;
            work()
        })
        .await?)
    }

    /// Make a panel user in `tenant` (an owner or viewer), or an admin of
    /// no tenant, which only an admin may make.
    pub async fn create_user(
        &self,
        caller: &Caller,
        tenant: &str,
        req: croft_api::UserCreate,
    ) -> Result<croft_api::User> {
        croft_api::validate_name(&req.name).map_err(|e| ServiceError::Invalid(format!("user name {e}")))?;
        let role = match req.role.as_deref().unwrap_or("owner") {
            "owner" => Role::Owner,
            "viewer" => Role::Viewer,
            "admin" => Role::Admin,
            other => {
                return Err(ServiceError::Invalid(format!(
                    "a user's role is owner, viewer or admin, not {other:?}"
                )))
            }
        };
        let tenant = Self::grant(caller, tenant, role)?;
        password::check(&req.password).map_err(|e| ServiceError::invalid(&e))?;
        let secret = req.password;
        let hash = self.hashing(move || password::hash(&secret)).await?;
        let record = self
            .store
            .create_user(&UserRecord {
                name: req.name,
                tenant: tenant.map(str::to_string),
                role,
                password_hash: hash,
                created_at: String::new(),
                last_login_at: None,
            })
            .await
            .map_err(|e| match e {
                StoreError::Missing(what) => ServiceError::NotFound(what),
                e => e.into(),
            })?;
        info!(user = %record.name, role = role.as_str(), tenant = ?record.tenant, by = %caller.name, "panel user made");
        Ok(user_view(record))
    }

    /// The users of `tenant`, or every user when `None`.
    pub async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<croft_api::User>> {
        Ok(self
            .store
            .users(tenant.map(Some))
            .await?
            .into_iter()
            .map(user_view)
            .collect())
    }

    /// User `name`, if it is of `tenant` (any, for `None`: the admin).
    async fn user_within(&self, tenant: Option<&str>, name: &str) -> Result<UserRecord> {
        let not_found = || ServiceError::NotFound(format!("user {name}"));
        let user = self.store.user(name).await?.ok_or_else(not_found)?;
        if tenant.is_some() && user.tenant.as_deref() != tenant {
            return Err(not_found());
        }
        Ok(user)
    }

    /// Delete user `name` (of `tenant` unless the admin's `None`); its
    /// sessions end with it.
    pub async fn delete_user(&self, caller: &Caller, tenant: Option<&str>, name: &str) -> Result<()> {
        self.user_within(tenant, name).await?;
        if !self.store.delete_user(name).await? {
            return Err(ServiceError::NotFound(format!("user {name}")));
        }
        info!(user = %name, by = %caller.name, "panel user deleted");
        Ok(())
    }

    /// Set user `name`'s password. Its own session must give the current
    /// one; the admin or its tenant's owner need not. Its other sessions
    /// end (the caller's own stays).
    pub async fn set_password(
        &self,
        caller: &Caller,
        tenant: Option<&str>,
        name: &str,
        req: croft_api::PasswordChange,
    ) -> Result<()> {
        let user = self.user_within(tenant, name).await?;
        let own = match &caller.credential {
            Credential::Session { user, session } if user == name => Some(session.clone()),
            _ => None,
        };
        if own.is_some() {
            let Some(current) = req.current else {
                return Err(ServiceError::Invalid(
                    "give your current password to change it".into(),
                ));
            };
            let stored = user.password_hash.clone();
            if !self.hashing(move || password::verify(&current, &stored)).await? {
                tokio::time::sleep(FAILED_LOGIN_DELAY).await;
                return Err(ServiceError::Forbidden("the current password is wrong".into()));
            }
        }
        password::check(&req.password).map_err(|e| ServiceError::invalid(&e))?;
        let secret = req.password;
        let hash = self.hashing(move || password::hash(&secret)).await?;
        if !self.store.set_password(name, &hash, own.as_deref()).await? {
            return Err(ServiceError::NotFound(format!("user {name}")));
        }
        info!(user = %name, by = %caller.name, "panel password changed; its other sessions ended");
        Ok(())
    }

    /// Log `name` in with `password` from `from`: a new session. Every
    /// refusal says the same and takes as long, whether the name is
    /// unknown or the password wrong; an address that fails too often is
    /// refused for a while without a check.
    pub async fn login(&self, name: &str, password: &str, from: IpAddr) -> Result<LoggedIn> {
        self.attempt(from)?;
        let refused = || ServiceError::Unauthenticated("wrong user name or password".into());
        let user = self.store.user(name).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let given = password.to_string();
        // Too long to be anyone's password: refused without hashing it.
        let matches = given.len() <= password::MAX_LENGTH
            && self
                .hashing(move || match stored {
                    Some(stored) => password::verify(&given, &stored),
                    None => {
                        password::verify_nobody(&given);
                        false
                    }
                })
                .await?;
        let Some(user) = user.filter(|_| matches) else {
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            return Err(refused());
        };
        let (secret, hash) = password::new_session();
        let now = now();
        let made = self
            .store
            .create_session(
                &SessionRecord {
                    hash: hash.clone(),
                    user: user.name.clone(),
                    created_at: now,
                    expires_at: now + SESSION_LIFETIME.as_secs() as i64,
                    seen_at: now,
                },
                &user.password_hash,
            )
            .await?;
        if !made {
            // The password changed (or the user went) while it was checked.
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
            return Err(refused());
        }
        self.forgive(from);
        let _ = self.store.delete_expired_sessions(now).await;
        info!(user = %user.name, %from, "panel login");
        Ok(LoggedIn {
            secret,
            caller: caller_of(user, hash),
        })
    }

    /// The caller a session's secret proves. An unknown, ended, expired or
    /// idle session is 401 (counted against the address, as a bad token).
    pub async fn authenticate_session(&self, secret: &str, from: IpAddr) -> Result<Caller> {
        self.refuse_if_throttled(from)?;
        let ended = || ServiceError::Unauthenticated("your session ended: log in again".into());
        let found = match password::is_session_secret(secret) {
            true => self.store.session(&crate::auth::token::hash(secret)).await?,
            false => None,
        };
        let Some((session, user)) = found else {
            // A secret of the right shape that no session has is one that
            // ended (256 random bits are not guessed): not counted, so a
            // browser's old tabs cannot lock their address out. A
            // malformed one is counted, as a bad token is.
            if !password::is_session_secret(secret) {
                self.count_failure(from);
            }
            return Err(ended());
        };
        let now = now();
        if now >= session.expires_at || now - session.seen_at >= SESSION_IDLE.as_secs() as i64 {
            let _ = self.store.delete_session(&session.hash).await;
            return Err(ended());
        }
        if now - session.seen_at >= SESSION_TOUCH_EVERY {
            self.store.touch_session(&session.hash, now).await?;
        }
        Ok(caller_of(user, session.hash))
    }

    /// End the session of `secret`, if there is one.
    pub async fn logout(&self, secret: &str) -> Result<()> {
        if password::is_session_secret(secret) {
            self.store
                .delete_session(&crate::auth::token::hash(secret))
                .await?;
        }
        Ok(())
    }

    /// A single-use ticket for `caller`'s session to open the WebSocket at
    /// `path` within [`TICKET_LIFETIME`]. A browser cannot put headers on
    /// a WebSocket, so the ticket rides in its query: bound to the session
    /// and the path, it is no use to anyone else or for anything else.
    pub fn issue_ticket(&self, caller: &Caller, path: &str) -> Result<croft_api::Ticket> {
        let Credential::Session { session, .. } = &caller.credential else {
            return Err(ServiceError::Invalid(
                "tickets are for a panel session's WebSockets; a token or certificate opens them directly"
                    .into(),
            ));
        };
        if !path.starts_with("/1.0/") || path.contains(['?', '#']) || path.len() > 512 {
            return Err(ServiceError::Invalid(format!(
                "a ticket is for an API path, as /1.0/events, not {path:?}"
            )));
        }
        let (ticket, _) = password::new_session();
        let mut tickets = self.tickets.lock().expect("tickets poisoned");
        tickets.retain(|_, t| t.expires > std::time::Instant::now());
        if tickets.values().filter(|t| &t.session == session).count() >= TICKETS_PER_SESSION {
            return Err(ServiceError::TooManyAttempts(format!(
                "this session holds {TICKETS_PER_SESSION} unused tickets; use them or wait {} s",
                TICKET_LIFETIME.as_secs()
            )));
        }
        tickets.insert(
            ticket.clone(),
            Ticket {
                session: session.clone(),
                path: path.to_string(),
                expires: std::time::Instant::now() + TICKET_LIFETIME,
            },
        );
        Ok(croft_api::Ticket {
            ticket,
            expires_in_seconds: TICKET_LIFETIME.as_secs(),
        })
    }

    /// Use ticket `ticket` up: whether it was issued to `session` for
    /// `path` and is still valid. Used or not, it is gone after.
    pub fn redeem_ticket(&self, ticket: &str, session: &str, path: &str) -> bool {
        let taken = self.tickets.lock().expect("tickets poisoned").remove(ticket);
        taken.is_some_and(|t| t.session == session && t.path == path && t.expires > std::time::Instant::now())
    }

    /// Make the first admin user if there is no admin user: `name` with a
    /// new random password, returned (to be shown once, or kept where only
    /// root reads it). `None` when an admin user exists.
    pub async fn first_admin(&self, name: &str) -> Result<Option<String>> {
        if !self.store.users(Some(None)).await?.is_empty() {
            return Ok(None);
        }
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).expect("the kernel's random source");
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let given = secret.clone();
        let hash = self.hashing(move || password::hash(&given)).await?;
        self.store
            .create_user(&UserRecord {
                name: name.into(),
                tenant: None,
                role: Role::Admin,
                password_hash: hash,
                created_at: String::new(),
                last_login_at: None,
            })
            .await?;
        info!(user = %name, "the first panel admin made");
        Ok(Some(secret))
    }
}
