//! Who may use croft: tenants, API tokens, and who the caller is.

use crate::ValueError;
use serde::{Deserialize, Serialize};

/// A tenant: a customer, whose VPSes only its own users see.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    pub description: String,
    pub created_at: String,
    /// How many VPSes it has.
    pub vpses: usize,
    pub quota: crate::Quota,
}

/// What `POST /1.0/tenants` takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TenantCreate {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// An API token as listed: never the token itself.
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenCreated {
    pub token: String,
    pub info: Token,
}

/// One entry of the audit log: a mutating request, once authenticated.
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
