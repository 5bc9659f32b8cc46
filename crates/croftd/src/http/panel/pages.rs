//! The panel's pages: the dashboard of VPS cards, one VPS (overview,
//! power, graphs, snapshots, rebuild, rescue, access, firewall, forwards,
//! activity), its console, a card alone (what live updates swap in), and
//! the account. Each asks the policy first, with the same actions as the API
//! routes that show the same things, and reads through the services.

use super::{render, PanelCaller, PanelError};
use crate::auth::{authorize, Action, Caller, Role};
use crate::service::VpsName;
use crate::store::DEFAULT_TENANT;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use croft_api::{format_size, Instance};

use super::super::AppState;

/// Who is logged in, for the header of every page.
pub(super) struct Nav {
    pub user: String,
    pub role: &'static str,
    pub tenant: Option<String>,
}

impl Nav {
    pub(super) fn of(caller: &Caller) -> Nav {
        Nav {
            user: match &caller.credential {
                crate::auth::Credential::Session { user, .. } => user.clone(),
                _ => caller.name.clone(),
            },
            role: caller.role.as_str(),
            tenant: caller.tenant.clone(),
        }
    }
}

/// A VPS as its card shows it.
pub(super) struct Card {
    pub name: String,
    pub tenant: String,
    pub status: &'static str,
    pub running: bool,
    pub image: String,
    pub addresses: Vec<String>,
    pub memory: String,
    pub disk: String,
    pub cpu: String,
    /// Its page, its console, and the card alone (with `?tenant=` for the
    /// admin).
    pub href: String,
    pub console_href: String,
    pub card_href: String,
    /// Its API path, and `?tenant=...` for the API calls of the admin
    /// (else empty).
    pub api: String,
    pub tenant_query: String,
    /// Whether the caller may press its buttons.
    pub can_change: bool,
}

fn limit(config: &std::collections::BTreeMap<String, String>, key: &str) -> Option<String> {
    config.get(key).cloned()
}

impl Card {
    fn of(vps: &Instance, caller: &Caller) -> Card {
        let tenant_query = match caller.tenant {
            Some(_) => String::new(),
            None => format!("?tenant={}", vps.tenant),
        };
        let mut addresses = Vec::new();
        for nic in &vps.nics {
            addresses.extend(nic.ipv4.iter().cloned());
            addresses.extend(nic.ipv6.iter().cloned());
        }
        let memory = match (&vps.usage, limit(&vps.config, "limits.memory")) {
            (Some(u), Some(l)) => format!("{} of {l}", format_size(u.memory_bytes)),
            (Some(u), None) => format_size(u.memory_bytes),
            (None, Some(l)) => l,
            (None, None) => "no limit".into(),
        };
        let disk = match (vps.disk_bytes, limit(&vps.config, "limits.disk")) {
            (Some(b), Some(l)) => format!("{} of {l}", format_size(b)),
            (Some(b), None) => format_size(b),
            (None, Some(l)) => l,
            (None, None) => "no limit".into(),
        };
        Card {
            name: vps.name.clone(),
            tenant: vps.tenant.clone(),
            status: vps.status.as_str(),
            running: vps.status == croft_api::Status::Running,
            image: vps.image.clone(),
            addresses,
            memory,
            disk,
            cpu: limit(&vps.config, "limits.cpu").unwrap_or_else(|| "no limit".into()),
            href: format!("/ui/instances/{}{tenant_query}", vps.name),
            console_href: format!("/ui/instances/{}/console{tenant_query}", vps.name),
            card_href: format!("/ui/instances/{}/card{tenant_query}", vps.name),
            can_change: authorize(caller, Action::VpsChange, Some(&vps.tenant)).is_ok(),
            api: format!("/1.0/instances/{}", vps.name),
            tenant_query,
        }
    }
}

/// `?tenant=`: which tenant's VPS the admin means.
#[derive(serde::Deserialize)]
pub(super) struct TenantQuery {
    tenant: Option<String>,
}

/// The tenant a page acts in: a tenant user's own; the admin's
/// `?tenant=`, or the default tenant. The policy then says whether the
/// caller may see it (another tenant's is "not found").
fn tenant_of(caller: &Caller, query: &TenantQuery) -> Result<String, PanelError> {
    let tenant = query
        .tenant
        .clone()
        .or_else(|| caller.tenant.clone())
        .unwrap_or_else(|| DEFAULT_TENANT.to_string());
    croft_api::validate_name(&tenant)
        .map_err(|e| PanelError(crate::service::ServiceError::Invalid(format!("tenant {e}"))))?;
    authorize(caller, Action::VpsRead, Some(&tenant))?;
    Ok(tenant)
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    nav: Nav,
    cards: Vec<Card>,
    /// The admin sees every tenant's VPSes, with a tenant on each card.
    every_tenant: bool,
    /// What a new VPS can be made from, for those who may make one.
    launch: Option<Launch>,
}

/// The launch form's choices.
struct Launch {
    images: Vec<String>,
    plans: Vec<String>,
    /// The tenants the admin may launch in (none for a tenant's user).
    tenants: Vec<String>,
}

/// The launch form's choices for `caller`, if it may launch in `tenant`.
async fn launch_choices(
    s: &AppState,
    caller: &Caller,
    tenant: &str,
) -> crate::service::Result<Option<Launch>> {
    if authorize(caller, Action::VpsChange, Some(tenant)).is_err() {
        return Ok(None);
    }
    let allowed = match caller.tenant {
        Some(_) => s.tenants.allowed_images(tenant).await?,
        None => None,
    };
    let images = s
        .images
        .list()
        .await?
        .into_iter()
        .filter(|i| allowed.as_ref().is_none_or(|a| a.contains(&i.name)))
        .map(|i| i.name)
        .collect();
    let plans = s.tenants.plans().await?.into_iter().map(|p| p.name).collect();
    let tenants = match caller.tenant {
        Some(_) => Vec::new(),
        None => s.tenants.list().await?.into_iter().map(|t| t.name).collect(),
    };
    Ok(Some(Launch {
        images,
        plans,
        tenants,
    }))
}

/// `GET /ui/`: the caller's VPSes as cards (every tenant's for the admin).
pub(super) async fn dashboard(State(s): State<AppState>, PanelCaller(caller): PanelCaller) -> Response {
    let tenant = caller.tenant.clone();
    let listed = match &tenant {
        Some(t) => authorize(&caller, Action::VpsRead, Some(t)).map(|_| Some(t.as_str())),
        None => authorize(&caller, Action::VpsRead, Some(DEFAULT_TENANT)).map(|_| None),
    };
    let vpses = match listed {
        Ok(listed) => s.instances.list(listed).await,
        Err(e) => Err(e),
    };
    let own = tenant.as_deref().unwrap_or(DEFAULT_TENANT);
    let launch = match vpses {
        Ok(_) => launch_choices(&s, &caller, own).await,
        Err(_) => Ok(None),
    };
    match (vpses, launch) {
        (Ok(vpses), Ok(launch)) => render(&Dashboard {
            cards: vpses.iter().map(|v| Card::of(v, &caller)).collect(),
            every_tenant: caller.role == Role::Admin,
            launch,
            nav: Nav::of(&caller),
        }),
        (Err(e), _) | (_, Err(e)) => PanelError(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "instance.html")]
struct InstancePage {
    nav: Nav,
    card: Card,
    uuid: String,
    created_at: String,
    limits: Vec<(String, String)>,
    last_exit: Option<String>,
    /// The rescue system's image while it runs one.
    rescue: Option<String>,
    snapshots: Vec<croft_api::Snapshot>,
    /// The images it may be rebuilt from (its tenant's; the catalog's
    /// are built at their first use).
    images: Vec<String>,
    /// Root's keys, numbered from 1 as the API takes them.
    ssh_keys: Vec<(usize, String)>,
    firewall: Option<croft_api::Firewall>,
    forwards: Vec<croft_api::PortForward>,
    /// What was asked of it, newest first; `None` for a viewer.
    activity: Option<Vec<croft_api::AuditEntry>>,
}

/// Entries of the VPS's activity shown on its page.
const ACTIVITY: u32 = 50;

/// `GET /ui/instances/{name}`: one VPS.
pub(super) async fn instance(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
) -> Result<Response, PanelError> {
    let tenant = tenant_of(&caller, &query)?;
    let who = VpsName::new(&tenant, &name);
    let vps = s.instances.get(who).await?;
    let snapshots = s.instances.snapshots(who).await?;
    let allowed = s.tenants.allowed_images(&tenant).await?;
    let images = s
        .images
        .list()
        .await?
        .into_iter()
        .filter(|i| allowed.as_ref().is_none_or(|a| a.contains(&i.name)))
        .map(|i| i.name)
        .collect();
    // What was done to it: the audit log's entries on its path that
    // succeeded (the log keeps paths as asked: its name's, renames
    // aside), for those who may change it: the log names the tenant's
    // users and their addresses, which a viewer's role does not show
    // (the API's audit log is the admin's alone). A tenant's owners see
    // the provider's own as the provider's.
    let activity = match authorize(&caller, Action::VpsChange, Some(&tenant)) {
        Ok(()) => Some(
            s.access
                .activity(&tenant, &format!("/1.0/instances/{name}"), ACTIVITY)
                .await?
                .into_iter()
                .map(|mut e| {
                    if caller.role.is_tenant_role() && !matches!(e.role.as_str(), "owner" | "viewer") {
                        e.caller = "the provider".into();
                        e.remote = None;
                    }
                    e
                })
                .collect(),
        ),
        Err(_) => None,
    };
    Ok(render(&InstancePage {
        card: Card::of(&vps, &caller),
        uuid: vps.uuid.clone(),
        created_at: vps.created_at.clone(),
        limits: vps
            .config
            .iter()
            .filter(|(k, _)| k.starts_with("limits."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        last_exit: vps.last_exit.clone(),
        rescue: vps.rescue.clone(),
        snapshots,
        images,
        ssh_keys: vps
            .ssh_keys
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, k)| (i + 1, k))
            .collect(),
        firewall: vps.firewall.clone(),
        forwards: vps.forwards.clone(),
        activity,
        nav: Nav::of(&caller),
    }))
}

#[derive(Template)]
#[template(path = "console.html")]
struct ConsolePage {
    nav: Nav,
    card: Card,
}

/// `GET /ui/instances/{name}/console`: its console in the browser, for
/// those who may use it (the API's console action).
pub(super) async fn console(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
) -> Result<Response, PanelError> {
    let tenant = tenant_of(&caller, &query)?;
    let vps = s.instances.get(VpsName::new(&tenant, &name)).await?;
    authorize(&caller, Action::VpsChange, Some(&tenant))?;
    Ok(render(&ConsolePage {
        card: Card::of(&vps, &caller),
        nav: Nav::of(&caller),
    }))
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardFragment {
    card: Card,
}

/// `GET /ui/instances/{name}/card`: the card alone, for a live update.
pub(super) async fn card(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
    Path(name): Path<String>,
    Query(query): Query<TenantQuery>,
) -> Result<Response, PanelError> {
    let tenant = tenant_of(&caller, &query)?;
    let vps = s.instances.get(VpsName::new(&tenant, &name)).await?;
    Ok(render(&CardFragment {
        card: Card::of(&vps, &caller),
    }))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Nav,
    /// A tenant's user's: its tenant's usage against its quota.
    usage: Vec<(&'static str, String)>,
    /// For those who manage them: the tenant's API tokens and users.
    tokens: Option<Vec<croft_api::Token>>,
    users: Option<Vec<croft_api::User>>,
}

/// `GET /ui/account`: the user's own password; for a tenant's users, its
/// usage against its quota, and for its owners its API tokens and users.
pub(super) async fn account(
    State(s): State<AppState>,
    PanelCaller(caller): PanelCaller,
) -> Result<Response, PanelError> {
    let (mut usage, mut tokens, mut users) = (Vec::new(), None, None);
    if let Some(tenant) = caller.tenant.clone() {
        let u = s.tenants.usage(&tenant).await?;
        let (used, q) = (u.used, u.quota);
        let of = |used: String, cap: Option<String>| match cap {
            Some(cap) => format!("{used} of {cap}"),
            None => format!("{used} (no cap)"),
        };
        let cpu = |m: u64| format!("{}", m as f64 / 1000.0);
        let n = |v: u64| v.to_string();
        usage = vec![
            ("VPSes", of(n(used.vpses), q.vpses.map(n))),
            ("CPUs", of(cpu(used.cpu_millicores), q.cpu_millicores.map(cpu))),
            (
                "Memory",
                of(format_size(used.memory_bytes), q.memory_bytes.map(format_size)),
            ),
            (
                "Disk",
                of(format_size(used.disk_bytes), q.disk_bytes.map(format_size)),
            ),
            ("Snapshots", of(n(used.snapshots), q.snapshots.map(n))),
            (
                "IPv4 addresses",
                of(n(used.ipv4_addresses), q.ipv4_addresses.map(n)),
            ),
            ("Port forwards", of(n(used.port_forwards), q.port_forwards.map(n))),
        ];
        if authorize(&caller, Action::TokenManage, Some(&tenant)).is_ok() {
            tokens = Some(s.access.list_tokens(Some(&tenant)).await?);
        }
        if authorize(&caller, Action::UserManage, Some(&tenant)).is_ok() {
            users = Some(s.access.list_users(Some(&tenant)).await?);
        }
    }
    Ok(render(&AccountPage {
        nav: Nav::of(&caller),
        usage,
        tokens,
        users,
    }))
}
