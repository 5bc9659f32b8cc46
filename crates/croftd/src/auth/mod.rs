//! Who calls croftd and what they may do: the [`Caller`] behind a
//! request, the [`Action`] each endpoint performs, and [`authorize`], the
//! one table that decides. The HTTP layer attaches an action to every
//! route as it is registered (`http/routes.rs`), so no endpoint exists
//! without a rule; `token.rs` holds the API tokens' format and hashing,
//! `password.rs` the panel's passwords and session secrets.

pub mod password;
pub mod token;

use crate::service::{Result, ServiceError};
use serde::Serialize;

/// What a caller may do, as one of four roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The provider: everything, in every tenant, and the host.
    Admin,
    /// A tenant's user: everything with the tenant's own VPSes.
    Owner,
    /// A tenant's read-only user: sees the tenant's VPSes, changes nothing.
    Viewer,
    /// A monitoring system: the host's figures, no tenant's VPSes.
    Metrics,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Owner, Role::Viewer, Role::Metrics];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Owner => "owner",
            Role::Viewer => "viewer",
            Role::Metrics => "metrics",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether the role belongs to one tenant (and acts only in it).
    pub fn is_tenant_role(self) -> bool {
        matches!(self, Role::Owner | Role::Viewer)
    }
}

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Root on this host, through the local socket (mode 0600).
    LocalSocket,
    /// A bearer API token, by its public id.
    Token { id: String },
    /// A client certificate trusted by its fingerprint.
    Certificate { fingerprint: String },
    /// A panel user's logged-in session (the browser's cookie): the user,
    /// and the session by its secret's hash.
    Session { user: String, session: String },
}

/// Who makes a request: its role, the tenant a tenant role belongs to,
/// and how it proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// Set exactly for the tenant roles.
    pub tenant: Option<String>,
    pub credential: Credential,
    /// A name for logs and the audit log: `root@host`, `token 5f2c…`.
    /// Never a secret.
    pub name: String,
}

impl Caller {
    /// Root on the host through the local socket: always admin, so that
    /// the host's root can never be locked out.
    pub fn host_root() -> Caller {
        Caller {
            role: Role::Admin,
            tenant: None,
            credential: Credential::LocalSocket,
            name: "root@host".into(),
        }
    }
}

/// What an endpoint does, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Server facts and who the caller is: any caller.
    Connect,
    /// See a tenant's VPSes, their snapshots, forwards, firewalls, console
    /// history and jobs.
    VpsRead,
    /// Create, change, start, stop and delete a tenant's VPSes and what
    /// belongs to them.
    VpsChange,
    /// How a VPS sits on the host (id range, init pid, control socket).
    VpsHost,
    /// See the images VPSes are made from.
    ImageRead,
    /// Build, import and delete images.
    ImageChange,
    /// See the host's storage pools and networks.
    HostRead,
    /// Create and delete networks.
    NetworkManage,
    /// See a tenant.
    TenantRead,
    /// Create and delete tenants, list them all.
    TenantManage,
    /// Create, list and revoke a tenant's API tokens.
    TokenManage,
    /// Create, list and delete a tenant's panel users, and reset their
    /// passwords.
    UserManage,
    /// See the plans VPSes can be launched with.
    PlanRead,
    /// Create and delete plans.
    PlanManage,
    /// Read the audit log.
    AuditRead,
    /// Scrape the metrics: a tenant's caller, its own VPSes' series.
    MetricsRead,
    /// Enroll a client certificate with a trust token: the one action of
    /// a caller not yet trusted (the guard lets it through to its
    /// handler, which checks the token).
    Enroll,
}

/// One rule: which roles may do an action, and whether the action is
/// about one tenant's things (so a tenant role may do it only in its own
/// tenant).
struct Rule {
    action: Action,
    roles: &'static [Role],
    tenant_scoped: bool,
    /// What the action is, for a refusal: "… may not {what}".
    what: &'static str,
}

use Role::{Admin, Metrics, Owner, Viewer};

/// The policy: every action, who may do it. `authorize` reads nothing
/// else.
const POLICY: &[Rule] = &[
    Rule {
        action: Action::Connect,
        roles: &[Admin, Owner, Viewer, Metrics],
        tenant_scoped: false,
        what: "connect",
    },
    Rule {
        action: Action::VpsRead,
        roles: &[Admin, Owner, Viewer],
        tenant_scoped: true,
        what: "see VPSes",
    },
    Rule {
        action: Action::VpsChange,
        roles: &[Admin, Owner],
        tenant_scoped: true,
        what: "change VPSes",
    },
    Rule {
        action: Action::VpsHost,
        roles: &[Admin],
        tenant_scoped: true,
        what: "see how a VPS sits on the host",
    },
    Rule {
        action: Action::ImageRead,
        roles: &[Admin, Owner, Viewer],
        tenant_scoped: false,
        what: "see images",
    },
    Rule {
        action: Action::ImageChange,
        roles: &[Admin],
        tenant_scoped: false,
        what: "build, import or delete images",
    },
    Rule {
        action: Action::HostRead,
        roles: &[Admin, Metrics],
        tenant_scoped: false,
        what: "see the host's pools and networks",
    },
    Rule {
        action: Action::NetworkManage,
        roles: &[Admin],
        tenant_scoped: false,
        what: "create or delete networks",
    },
    Rule {
        action: Action::TenantRead,
        roles: &[Admin, Owner, Viewer],
        tenant_scoped: true,
        what: "see the tenant",
    },
    Rule {
        action: Action::TenantManage,
        roles: &[Admin],
        tenant_scoped: false,
        what: "create, list or delete tenants",
    },
    Rule {
        action: Action::TokenManage,
        roles: &[Admin, Owner],
        tenant_scoped: true,
        what: "manage API tokens",
    },
    Rule {
        action: Action::UserManage,
        roles: &[Admin, Owner],
        tenant_scoped: true,
        what: "manage panel users",
    },
    Rule {
        action: Action::PlanRead,
        roles: &[Admin, Owner, Viewer],
        tenant_scoped: false,
        what: "see plans",
    },
    Rule {
        action: Action::PlanManage,
        roles: &[Admin],
        tenant_scoped: false,
        what: "create or delete plans",
    },
    Rule {
        action: Action::AuditRead,
        roles: &[Admin],
        tenant_scoped: false,
        what: "read the audit log",
    },
    Rule {
        action: Action::MetricsRead,
        roles: &[Admin, Owner, Viewer, Metrics],
        tenant_scoped: true,
        what: "read metrics",
    },
    Rule {
        action: Action::Enroll,
        roles: &[Admin, Owner, Viewer, Metrics],
        tenant_scoped: false,
        what: "enroll a certificate",
    },
];

fn rule(action: Action) -> &'static Rule {
    POLICY
        .iter()
        .find(|r| r.action == action)
        .expect("every action has a rule (tested)")
}

impl Action {
    /// Whether the action is about one tenant's things.
    pub fn tenant_scoped(self) -> bool {
        rule(self).tenant_scoped
    }

    /// The roles that may do it.
    pub fn roles(self) -> &'static [Role] {
        rule(self).roles
    }

    /// Whether it changes something (and so is audited whatever the
    /// request's method: an exec is a GET that upgrades).
    pub fn changes(self) -> bool {
        matches!(
            self,
            Action::VpsChange
                | Action::ImageChange
                | Action::TenantManage
                | Action::TokenManage
                | Action::UserManage
                | Action::PlanManage
                | Action::Enroll
                | Action::NetworkManage
        )
    }

    /// Its name in answers and the audit log: `vps-change`.
    pub fn name(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => name,
            _ => format!("{self:?}"),
        }
    }
}

/// May `caller` do `action` in `tenant` (the tenant the request acts in,
/// for tenant-scoped actions)? A tenant role outside its own tenant gets
/// "not found", as if the tenant did not exist: existence is not leaked.
/// A role that may not do the action gets a refusal naming the role and
/// the roles that may.
pub fn authorize(caller: &Caller, action: Action, tenant: Option<&str>) -> Result<()> {
    let rule = rule(action);
    if rule.tenant_scoped && caller.role.is_tenant_role() && caller.tenant.as_deref() != tenant {
        return Err(ServiceError::NotFound(format!(
            "tenant {}",
            tenant.unwrap_or("(none)")
        )));
    }
    if !rule.roles.contains(&caller.role) {
        let may: Vec<&str> = rule.roles.iter().map(|r| r.as_str()).collect();
        return Err(ServiceError::Forbidden(format!(
            "{} has the {} role, which may not {}; that needs the role {}",
            caller.name,
            caller.role.as_str(),
            rule.what,
            may.join(" or ")
        )));
    }
    Ok(())
}

/// Refuse a caller other than the admin that asks for what only the admin
/// may (`what`: "set the MAC").
pub fn refuse_unless_admin(caller: &Caller, asks: bool, what: &str) -> Result<()> {
    if asks && caller.role != Role::Admin {
        return Err(ServiceError::Forbidden(format!(
            "{} has the {} role, which may not {what}; that needs the role admin",
            caller.name,
            caller.role.as_str()
        )));
    }
    Ok(())
}

/// Refuse a caller other than the admin that sets one of the
/// configuration keys only the admin may set
/// ([`croft_api::config::ADMIN_KEYS`]): a VPS's exemption from the
/// provider's rules is the provider's to give.
pub fn refuse_admin_keys<'k>(caller: &Caller, keys: impl IntoIterator<Item = &'k String>) -> Result<()> {
    if caller.role == Role::Admin {
        return Ok(());
    }
    match keys
        .into_iter()
        .find(|k| croft_api::config::ADMIN_KEYS.contains(&k.as_str()))
    {
        Some(key) => Err(ServiceError::Forbidden(format!(
            "{} has the {} role, which may not set {key}; that needs the role admin",
            caller.name,
            caller.role.as_str()
        ))),
        None => Ok(()),
    }
}

/// Every action `caller` may do (what `whoami` shows).
pub fn permitted(caller: &Caller) -> Vec<Action> {
    POLICY
        .iter()
        // Enrolling is what a caller does before it has a role.
        .filter(|r| r.roles.contains(&caller.role) && r.action != Action::Enroll)
        .map(|r| r.action)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_caller(role: Role, tenant: &str) -> Caller {
        Caller {
            role,
            tenant: Some(tenant.into()),
            credential: Credential::Token { id: "t".into() },
            name: "token t".into(),
        }
    }

    #[test]
    fn every_action_has_exactly_one_rule() {
        for rule in POLICY {
            assert_eq!(
                POLICY.iter().filter(|r| r.action == rule.action).count(),
                1,
                "{:?}",
                rule.action
            );
        }
    }

    #[test]
    fn admin_may_do_everything_anywhere() {
        let root = Caller::host_root();
        for rule in POLICY {
            authorize(&root, rule.action, Some("acme")).unwrap();
        }
    }

    #[test]
    fn tenant_roles_stay_in_their_tenant_and_viewers_change_nothing() {
        let owner = tenant_caller(Role::Owner, "acme");
        let viewer = tenant_caller(Role::Viewer, "acme");
        authorize(&owner, Action::VpsChange, Some("acme")).unwrap();
        authorize(&viewer, Action::VpsRead, Some("acme")).unwrap();
        let err = authorize(&viewer, Action::VpsChange, Some("acme")).unwrap_err();
        assert!(
            matches!(&err, ServiceError::Forbidden(m) if m.contains("viewer") && m.contains("owner")),
            "{err}"
        );
        // Another tenant is "not found", whatever the role could do there.
        for caller in [&owner, &viewer] {
            let err = authorize(caller, Action::VpsRead, Some("other")).unwrap_err();
            assert!(matches!(err, ServiceError::NotFound(_)), "{err}");
        }
        for action in [
            Action::ImageChange,
            Action::TenantManage,
            Action::HostRead,
            Action::NetworkManage,
            Action::VpsHost,
            Action::PlanManage,
        ] {
            assert!(matches!(
                authorize(&owner, action, Some("acme")),
                Err(ServiceError::Forbidden(_))
            ));
        }
    }

    #[test]
    fn metrics_sees_the_host_and_the_metrics_and_no_vps() {
        let metrics = Caller {
            role: Role::Metrics,
            tenant: None,
            credential: Credential::Token { id: "m".into() },
            name: "token m".into(),
        };
        authorize(&metrics, Action::HostRead, None).unwrap();
        assert!(authorize(&metrics, Action::VpsRead, Some("default")).is_err());
        assert_eq!(
            permitted(&metrics),
            [Action::Connect, Action::HostRead, Action::MetricsRead]
        );
    }
}
