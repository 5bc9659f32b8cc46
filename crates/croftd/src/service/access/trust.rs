//! Client certificates, the CLI's way in: trusted by fingerprint once
//! enrolled with a one-time trust token (`croft trust add` makes one;
//! `croft remote add NAME TOKEN` uses it, pinning croftd's certificate
//! from the token).

use super::{AccessService, Result, ServiceError};
use crate::auth::{token, Caller, Credential, Role};
use crate::store::{CertificateRecord, StoreError, TrustTokenRecord};
use std::net::IpAddr;
use tracing::info;

/// How long a trust token can be used unless told.
const DEFAULT_TRUST_LIFETIME: &str = "1d";

fn trust_token_view(t: TrustTokenRecord) -> croft_api::TrustToken {
    croft_api::TrustToken {
        id: t.id,
        name: t.name,
        role: t.role.as_str().into(),
        tenant: t.tenant,
        created_at: t.created_at,
        expires_at: t.expires_at,
        expired: t.expired,
    }
}

fn certificate_view(c: CertificateRecord) -> croft_api::Certificate {
    croft_api::Certificate {
        fingerprint: c.fingerprint,
        name: c.name,
        role: c.role.as_str().into(),
        tenant: c.tenant,
        created_at: c.created_at,
    }
}

impl AccessService {
    /// Make a trust token for `req.name` with a role in `tenant` (or of no
    /// tenant, for admin and metrics); `addresses` and `fingerprint` (of
    /// croftd's certificate) go into it for the client.
    pub async fn create_trust_token(
        &self,
        caller: &Caller,
        tenant: &str,
        req: croft_api::TrustTokenCreate,
        addresses: Vec<String>,
        fingerprint: String,
    ) -> Result<croft_api::TrustTokenCreated> {
        croft_api::validate_name(&req.name).map_err(|e| ServiceError::Invalid(format!("trust name {e}")))?;
        let role_text = req.role.as_deref().unwrap_or("owner");
        let role = Role::parse(role_text).ok_or_else(|| {
            ServiceError::Invalid(format!(
                "a role is admin, owner, viewer or metrics, not {role_text:?}"
            ))
        })?;
        let tenant = Self::grant(caller, tenant, role)?;
        let lifetime =
            croft_api::access::parse_lifetime(req.expires.as_deref().unwrap_or(DEFAULT_TRUST_LIFETIME))
                .map_err(|e| ServiceError::invalid(&e))?
                .ok_or_else(|| ServiceError::Invalid("a trust token must expire".into()))?;
        let made = token::generate();
        let record = self
            .store
            .create_trust_token(
                &TrustTokenRecord {
                    id: made.id.clone(),
                    hash: made.hash.clone(),
                    name: req.name,
                    role,
                    tenant: tenant.map(str::to_string),
                    created_at: String::new(),
                    expires_at: String::new(),
                    expired: false,
                },
                lifetime,
            )
            .await
            .map_err(|e| match e {
                StoreError::Missing(what) => ServiceError::NotFound(what),
                e => e.into(),
            })?;
        info!(trust_token = %record.id, name = %record.name, role = role.as_str(), by = %caller.name, "trust token made");
        let join = croft_api::JoinToken {
            addresses,
            fingerprint,
            secret: made.token,
        };
        Ok(croft_api::TrustTokenCreated {
            token: join.encode(),
            info: trust_token_view(record),
        })
    }

    /// The trust tokens not yet used and the trusted certificates (of
    /// `tenant`, or all).
    pub async fn trust(
        &self,
        tenant: Option<&str>,
    ) -> Result<(Vec<croft_api::TrustToken>, Vec<croft_api::Certificate>)> {
        let tokens = self.store.trust_tokens(tenant).await?;
        let certs = self.store.certificates(tenant).await?;
        Ok((
            tokens.into_iter().map(trust_token_view).collect(),
            certs.into_iter().map(certificate_view).collect(),
        ))
    }

    /// Stop trusting certificate `id` (a fingerprint), or drop the trust
    /// token of that id; only one of `tenant`, unless `tenant` is `None`.
    pub async fn untrust(&self, caller: &Caller, tenant: Option<&str>, id: &str) -> Result<()> {
        let not_found = || ServiceError::NotFound(format!("certificate or trust token {id}"));
        if let Some(cert) = self.store.certificate(id).await? {
            if tenant.is_some() && cert.tenant.as_deref() != tenant {
                return Err(not_found());
            }
            self.store.delete_certificate(id).await?;
            info!(certificate = %id, name = %cert.name, by = %caller.name, "certificate no longer trusted");
            return Ok(());
        }
        match self.store.trust_token(id).await? {
            Some(t) if tenant.is_none() || t.tenant.as_deref() == tenant => {
                self.store.delete_trust_token(id).await?;
                info!(trust_token = %id, by = %caller.name, "trust token dropped");
                Ok(())
            }
            _ => Err(not_found()),
        }
    }

    /// Trust the client certificate of `fingerprint`, presented from
    /// `from`, with the role of the trust token `secret`, which it uses up.
    /// A wrong, used or expired token is 401, and counts as a failed
    /// authentication of `from`.
    pub async fn enroll(
        &self,
        secret: &str,
        fingerprint: &str,
        from: IpAddr,
    ) -> Result<croft_api::Certificate> {
        self.refuse_if_throttled(from)?;
        let outcome = self.try_enroll(secret, fingerprint).await;
        if matches!(outcome, Err(ServiceError::Unauthenticated(_))) {
            self.count_failure(from);
        }
        outcome
    }

    async fn try_enroll(&self, secret: &str, fingerprint: &str) -> Result<croft_api::Certificate> {
        let unknown = || ServiceError::Unauthenticated("unknown or used trust token".into());
        let (id, secret) = token::parse(secret).ok_or_else(unknown)?;
        let t = self.store.trust_token(id).await?.ok_or_else(unknown)?;
        if !token::matches(secret, &t.hash) {
            return Err(unknown());
        }
        if t.expired {
            return Err(ServiceError::Unauthenticated(format!(
                "trust token {id} expired at {}",
                t.expires_at
            )));
        }
        let cert = CertificateRecord {
            fingerprint: fingerprint.to_string(),
            name: t.name.clone(),
            role: t.role,
            tenant: t.tenant.clone(),
            created_at: String::new(),
        };
        match self.store.enroll(id, &cert).await {
            Ok(true) => {}
            Ok(false) => return Err(unknown()),
            Err(StoreError::Taken(_)) => {
                return Err(ServiceError::Conflict(
                    "this client certificate is trusted already".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        info!(certificate = %fingerprint, name = %t.name, role = t.role.as_str(), "certificate enrolled");
        let stored = self.store.certificate(fingerprint).await?.ok_or_else(unknown)?;
        Ok(certificate_view(stored))
    }

    /// The caller a client certificate proves, if it is trusted.
    pub async fn authenticate_certificate(&self, fingerprint: &str) -> Result<Option<Caller>> {
        Ok(self.store.certificate(fingerprint).await?.map(|c| Caller {
            role: c.role,
            tenant: c.tenant,
            credential: Credential::Certificate {
                fingerprint: c.fingerprint,
            },
            name: format!("certificate {}", c.name),
        }))
    }
}
