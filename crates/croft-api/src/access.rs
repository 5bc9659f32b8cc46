//! Who may use croft: tenants, API tokens, and who the caller is.

use crate::ValueError;
use serde::{Deserialize, Serialize};

/// A tenant: a customer, whose VPSes only its own users see.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    pub description: String,
    pub created_at: String,
    /// How many VPSes it has.
    pub vpses: usize,
    pub quota: crate::Quota,
    /// The images its VPSes may be made from; `None`: every image.
    pub images: Option<Vec<String>>,
    /// The features (`features.tun`, ...) its VPSes may have on, by name
    /// (`tun`, `fuse`); the admin's to give.
    #[serde(default)]
    pub features: Vec<String>,
}

/// `PUT /1.0/tenants/{name}/features`: the features a tenant's VPSes may
/// have on (`tun`, `fuse`), all of them; `[]` for none.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantFeatures {
    pub features: Vec<String>,
}

/// `PUT /1.0/tenants/{name}/images`: the images a tenant may use, or
/// `null` for every image.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantImages {
    pub images: Option<Vec<String>>,
}

/// What `POST /1.0/tenants` takes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantCreate {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// An API token as listed: never the token itself.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Token {
    /// Public: the token's name in lists, logs and the audit log, and
    /// what `croft token revoke` takes.
    pub id: String,
    pub description: String,
    /// admin, owner, viewer or metrics.
    pub role: String,
    /// The tenant of an owner or viewer token.
    pub tenant: Option<String>,
    /// Requests are accepted only from this network.
    pub from: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub expired: bool,
    pub last_used_at: Option<String>,
    pub last_used_from: Option<String>,
}

/// What `POST /1.0/tokens` takes. A token of a tenant (`?tenant=`) is an
/// owner's (`scope: read-write`, the default) or a viewer's (`scope:
/// read`); one of no tenant names its `role`, admin or metrics.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    #[serde(default)]
    pub description: String,
    /// read or read-write, for a tenant's token.
    pub scope: Option<String>,
    /// admin or metrics, for a token of no tenant.
    pub role: Option<String>,
    /// How long it is valid: `90d`, `12h`, `30m`, or `never`; default 90d.
    pub expires: Option<String>,
    /// Accept it only from this address or network (CIDR).
    pub from: Option<String>,
}

/// A token just made: the only time the token is shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenCreated {
    pub token: String,
    pub info: Token,
}

/// A person who logs in to the web panel.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// The tenant of an owner or viewer; none for an admin.
    pub tenant: Option<String>,
    /// `owner`, `viewer` or `admin`.
    pub role: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

/// `POST /1.0/users`: a panel user.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub name: String,
    /// `owner` (the default) or `viewer` in the request's tenant; `admin`,
    /// of no tenant, which only an admin may make.
    pub role: Option<String>,
    /// At least 10 characters.
    pub password: String,
}

/// `PUT /1.0/users/{name}/password`: a new password. A user changing its
/// own gives the current one too; an admin or the tenant's owner resetting
/// another's does not. Either way the user's other sessions end.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub password: String,
    pub current: Option<String>,
}

/// `POST /1.0/tickets`: a ticket for a panel session to open one
/// WebSocket (the console, the event stream).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TicketCreate {
    /// The WebSocket's path: `/1.0/events`, `/1.0/instances/web1/console/attach`.
    pub path: String,
}

/// A single-use WebSocket ticket: `?ticket=` on the WebSocket's URL.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ticket {
    pub ticket: String,
    pub expires_in_seconds: u64,
}

/// One entry of the audit log: a mutating request, once authenticated.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    /// `root@host`, `token 5f2c…`: never a secret.
    pub caller: String,
    pub role: String,
    /// The tenant the request acted in.
    pub tenant: String,
    pub method: String,
    pub path: String,
    /// The policy's name for what it did (`vps-change`).
    pub action: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// The caller's address, for a remote one.
    pub remote: Option<String>,
}

/// `GET /1.0/auth/whoami`: who the caller is and exactly what it may do.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WhoAmI {
    /// `root@host`, `token 5f2c…`.
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    /// How it authenticated: local-socket or token.
    pub credential: String,
    /// The actions it may do (see docs/api.md's table).
    pub permitted: Vec<String>,
}

/// Longest token lifetime accepted: ten years.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 86_400;

/// Parse a lifetime: a number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`90d`), or `never` (`None`).
pub fn parse_lifetime(text: &str) -> Result<Option<u64>, ValueError> {
    let text = text.trim();
    if text == "never" {
        return Ok(None);
    }
    let bad = || {
        ValueError(format!(
            "invalid lifetime {text:?}: expected a number and a unit (s, m, h, d or w), e.g. 90d, or never"
        ))
    };
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(unit_at);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
    if secs == 0 {
        return Err(ValueError("a lifetime must be longer than 0".into()));
    }
    if secs > MAX_LIFETIME_SECS {
        return Err(ValueError(format!(
            "a lifetime of {text} is too long: at most ten years (3650d), or never"
        )));
    }
    Ok(Some(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d"), Ok(Some(90 * 86_400)));
        assert_eq!(parse_lifetime("30m"), Ok(Some(1800)));
        assert_eq!(parse_lifetime("2w"), Ok(Some(14 * 86_400)));
        assert_eq!(parse_lifetime("never"), Ok(None));
        for bad in [
            "",
            "d",
            "90",
            "90x",
            "-1d",
            "0s",
            "1.5d",
            "99999999999999999999d",
            "3651d",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?}");
        }
    }
}

/// What `POST /1.0/trust/tokens` takes: a one-time token that enrolls
/// one client certificate as `name`, with a role in the request's tenant
/// (owner, the default, or viewer) or of no tenant (admin, metrics).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustTokenCreate {
    pub name: String,
    pub role: Option<String>,
    /// How long it can be used: default 1d.
    pub expires: Option<String>,
}

/// A trust token not yet used.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustToken {
    pub id: String,
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub expired: bool,
}

/// A trust token just made: `token` is what `croft remote add NAME TOKEN`
/// takes (a [`JoinToken`], encoded), shown once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustTokenCreated {
    pub token: String,
    pub info: TrustToken,
}

/// `GET /1.0/trust`: the trusted certificates and the trust tokens not
/// yet used.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Trust {
    pub certificates: Vec<Certificate>,
    pub tokens: Vec<TrustToken>,
}

/// A client certificate trusted by its fingerprint.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Certificate {
    pub fingerprint: String,
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    pub created_at: String,
}

/// `POST /1.0/trust/enroll`, sent with the client certificate to trust.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Enroll {
    /// The trust token's secret ([`JoinToken::secret`]).
    pub secret: String,
}

/// What a trust token carries to the user's machine: where croftd
/// listens, the fingerprint of its certificate (which the client pins),
/// and the secret that enrolls the client's certificate once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JoinToken {
    /// `host:port` addresses croftd may be reached at, most likely first.
    pub addresses: Vec<String>,
    pub fingerprint: String,
    pub secret: String,
}

impl JoinToken {
    /// The token as users copy it: `croftjoin_` and base64url of its JSON.
    pub fn encode(&self) -> String {
        use base64::Engine;
        let json = serde_json::to_vec(self).expect("a join token serializes");
        format!(
            "croftjoin_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    pub fn decode(text: &str) -> Result<JoinToken, ValueError> {
        use base64::Engine;
        let bad = || ValueError("not a trust token (croft trust add prints one)".into());
        let body = text.trim().strip_prefix("croftjoin_").ok_or_else(bad)?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad())?;
        let token: JoinToken = serde_json::from_slice(&json).map_err(|_| bad())?;
        if token.addresses.is_empty() || token.fingerprint.len() != 64 {
            return Err(bad());
        }
        Ok(token)
    }
}

#[cfg(test)]
mod join_tests {
    use super::JoinToken;

    #[test]
    fn a_join_token_round_trips_and_garbage_is_refused() {
        let t = JoinToken {
            addresses: vec!["192.0.2.1:8443".into(), "[2001:db8::1]:8443".into()],
            fingerprint: "ab".repeat(32),
            secret: "croft_0123456789ab_cd".into(),
        };
        assert_eq!(JoinToken::decode(&t.encode()), Ok(t.clone()));
        for bad in [
            "",
            "croftjoin_",
            "croftjoin_!!!",
            &t.encode().replace("croftjoin_", ""),
        ] {
            assert!(JoinToken::decode(bad).is_err(), "{bad}");
        }
    }
}

/// One event of `GET /1.0/events`: something that happened to a VPS or
/// an operation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Seconds since the epoch.
    pub at: f64,
    /// The tenant it happened in.
    pub tenant: String,
    /// `vps-created`, `vps-started`, `vps-stopped`, `vps-rebooted`,
    /// `vps-deleted`; `operation-started`, `operation-succeeded`,
    /// `operation-failed`.
    pub action: String,
    /// The VPS's name, or the operation's target.
    pub target: String,
    /// What else there is to say: why it stopped, the operation's id and
    /// kind, its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
