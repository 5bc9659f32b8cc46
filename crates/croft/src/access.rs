//! `croft tenant ...`, `croft plan ...`, `croft token ...` and `croft
//! whoami`: the tenants with their quotas, plans, API tokens, and who the
//! caller is.

use crate::{print_table, show_list, Format};
use anyhow::anyhow;
use anyhow::Result;
use clap::Subcommand;
use croft_api::config::{LIMITS_CPU, LIMITS_DISK, LIMITS_MEMORY, LIMITS_PROCESSES};
use croft_api::{format_size, PlanCreate, TenantCreate, TokenCreate};
use croft_client::Client;
use std::collections::BTreeMap;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (a customer, whose VPSes only its users see).
    Create {
        /// The tenant.
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the tenants with how many VPSes each has.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a tenant.
    Show {
        /// The tenant.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Delete a tenant that has no VPS left (its API tokens go with it).
    Delete {
        /// The tenant.
        name: String,
    },
    /// Set caps on what a tenant's VPSes hold together (`none` lifts
    /// one); the caps not given stay as they are.
    Quota {
        /// The tenant.
        name: String,
        #[arg(long)]
        vpses: Option<String>,
        /// Total CPUs of limits.cpu, e.g. 8 or 2.5.
        #[arg(long)]
        cpu: Option<String>,
        /// Total limits.memory, e.g. 16GiB.
        #[arg(long)]
        memory: Option<String>,
        /// Total limits.disk, e.g. 200GiB.
        #[arg(long)]
        disk: Option<String>,
        /// Highest limits.processes of one VPS.
        #[arg(long)]
        processes: Option<String>,
        #[arg(long)]
        snapshots: Option<String>,
        #[arg(long)]
        ipv4: Option<String>,
        #[arg(long)]
        forwards: Option<String>,
        #[arg(long)]
        firewall_rules: Option<String>,
    },
    /// Set the images a tenant may launch, rebuild and rescue from
    /// (`--all`: every image).
    Images {
        /// The tenant.
        name: String,
        /// The images it may use.
        #[arg(required_unless_present = "all")]
        images: Vec<String>,
        #[arg(long, conflicts_with = "images")]
        all: bool,
    },
    /// Set the features (tun, fuse) a tenant's VPSes may switch on
    /// (`--none`: none).
    Features {
        /// The tenant.
        name: String,
        /// The features it may use: tun, fuse.
        #[arg(required_unless_present = "none")]
        features: Vec<String>,
        #[arg(long, conflicts_with = "features")]
        none: bool,
    },
    /// What a tenant holds against its quota.
    Usage {
        /// The tenant.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Make a plan: a named VPS size.
    Create {
        /// The plan.
        name: String,
        #[arg(long)]
        cpu: Option<String>,
        #[arg(long)]
        memory: Option<String>,
        #[arg(long)]
        disk: Option<String>,
        #[arg(long)]
        processes: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the plans.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Delete a plan (VPSes launched with it keep their limits).
    Delete {
        /// The plan.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make an API token and print it, once. A tenant's token (with
    /// --tenant) has a scope; a token of no tenant has a role.
    Create {
        /// read (a viewer's) or read-write (an owner's), for a tenant's token.
        #[arg(long, conflicts_with = "role")]
        scope: Option<String>,
        /// admin or metrics, for a token of no tenant.
        #[arg(long)]
        role: Option<String>,
        /// How long it is valid: 90d, 12h, 30m, or never.
        #[arg(long, default_value = "90d")]
        expires: String,
        /// Accept it only from this address or network (CIDR).
        #[arg(long)]
        from: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List API tokens with their last use (never the tokens themselves).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Revoke a token: the next request with it is refused.
    Revoke {
        /// The token's id (croft token list).
        id: String,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Make a panel user: an owner or viewer of the tenant (--tenant), or
    /// an admin. Asks for its password (twice) on a terminal, else reads
    /// one line from stdin.
    Create {
        /// The user's login name.
        name: String,
        /// owner (the default), viewer or admin.
        #[arg(long, default_value = "owner")]
        role: String,
    },
    /// List the panel's users.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Set a user's password (asked for as with create); its sessions end.
    Passwd {
        /// The user.
        name: String,
    },
    /// Delete a user; its sessions end.
    Delete {
        /// The user.
        name: String,
    },
}

pub fn user(client: &Client, command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Create { name, role } => {
            croft_api::validate_name(&name).map_err(|e| anyhow::anyhow!("user name {e}"))?;
            let password = crate::terminal::read_secret(&format!("Password for {name}: "))?;
            let u = client.create_user(&croft_api::UserCreate {
                name,
                role: Some(role),
                password,
            })?;
            match &u.tenant {
                Some(t) => println!("Made panel user {} ({} of tenant {t})", u.name, u.role),
                None => println!("Made panel user {} ({})", u.name, u.role),
            }
        }
        UserCommand::List { format } => {
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            show_list(
                format,
                &client.users()?,
                &["NAME", "ROLE", "TENANT", "CREATED", "LAST LOGIN"],
                |u| {
                    vec![
                        u.name.clone(),
                        u.role.clone(),
                        dash(&u.tenant),
                        u.created_at.clone(),
                        dash(&u.last_login_at),
                    ]
                },
            )?;
        }
        UserCommand::Passwd { name } => {
            let password = crate::terminal::read_secret(&format!("New password for {name}: "))?;
            client.set_user_password(&name, &password)?;
            println!("Set the password of {name}; its sessions ended");
        }
        UserCommand::Delete { name } => {
            client.delete_user(&name)?;
            println!("Deleted panel user {name}");
        }
    }
    Ok(())
}

pub fn tenant(client: &Client, command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::Create { name, description } => {
            croft_api::validate_name(&name).map_err(|e| anyhow::anyhow!("tenant {e}"))?;
            let t = client.create_tenant(&TenantCreate { name, description })?;
            println!("Created tenant {}", t.name);
        }
        TenantCommand::List { format } => {
            show_list(
                format,
                &client.tenants()?,
                &["NAME", "VPSES", "CREATED", "DESCRIPTION"],
                |t| {
                    vec![
                        t.name.clone(),
                        t.vpses.to_string(),
                        t.created_at.clone(),
                        t.description.clone(),
                    ]
                },
            )?;
        }
        TenantCommand::Show { name, format } => {
            let t = client.tenant(&name)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&t)?);
            } else {
                println!("Name:        {}", t.name);
                println!("Description: {}", t.description);
                println!("Created:     {}", t.created_at);
                println!("VPSes:       {}", t.vpses);
                match &t.images {
                    Some(images) => println!("Images:      {}", images.join(", ")),
                    None => println!("Images:      all"),
                }
                let caps = serde_json::to_value(t.quota)?;
                let set: Vec<String> = caps
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "Quota:       {}",
                    if set.is_empty() {
                        "none".into()
                    } else {
                        set.join(", ")
                    }
                );
            }
        }
        TenantCommand::Delete { name } => {
            client.delete_tenant(&name)?;
            println!("Deleted tenant {name}");
        }
        TenantCommand::Quota {
            name,
            vpses,
            cpu,
            memory,
            disk,
            processes,
            snapshots,
            ipv4,
            forwards,
            firewall_rules,
        } => {
            let mut quota = client.tenant(&name)?.quota;
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| anyhow!("{v:?} is not a whole number"))
            };
            set_cap(&mut quota.vpses, vpses, number)?;
            set_cap(&mut quota.cpu_millicores, cpu, |v| Ok(croft_api::parse_cpu(v)?))?;
            set_cap(&mut quota.memory_bytes, memory, |v| Ok(croft_api::parse_size(v)?))?;
            set_cap(&mut quota.disk_bytes, disk, |v| Ok(croft_api::parse_size(v)?))?;
            set_cap(&mut quota.processes_per_vps, processes, number)?;
            set_cap(&mut quota.snapshots, snapshots, number)?;
            set_cap(&mut quota.ipv4_addresses, ipv4, number)?;
            set_cap(&mut quota.port_forwards, forwards, number)?;
            set_cap(&mut quota.firewall_rules, firewall_rules, number)?;
            client.set_quota(&name, &quota)?;
            println!("Set the quota of tenant {name}");
        }
        TenantCommand::Images { name, images, all } => {
            for image in &images {
                croft_api::validate_image_name(image)?;
            }
            client.set_tenant_images(&name, (!all).then_some(images))?;
            println!("Set the images of tenant {name}");
        }
        TenantCommand::Features {
            name,
            features,
            none: _,
        } => {
            client.set_tenant_features(&name, features)?;
            println!("Set the features of tenant {name}");
        }
        TenantCommand::Usage { name, format } => {
            let usage = client.tenant_usage(&name)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&usage)?);
            } else {
                let (u, q) = (usage.used, usage.quota);
                let cpus = |m: u64| {
                    let text = format!("{}.{:03}", m / 1000, m % 1000);
                    text.trim_end_matches('0').trim_end_matches('.').to_string()
                };
                let size = |b: u64| format_size(b);
                let count = |n: u64| n.to_string();
                let row = |what: &str, show: &dyn Fn(u64) -> String, used: u64, cap: Option<u64>| {
                    vec![
                        what.to_string(),
                        show(used),
                        cap.map(show).unwrap_or_else(|| "-".into()),
                    ]
                };
                print_table(
                    &["", "USED", "QUOTA"],
                    [
                        row("VPSes", &count, u.vpses, q.vpses),
                        row("CPU", &cpus, u.cpu_millicores, q.cpu_millicores),
                        row("memory", &size, u.memory_bytes, q.memory_bytes),
                        row("disk", &size, u.disk_bytes, q.disk_bytes),
                        row(
                            "processes per VPS",
                            &count,
                            u.processes_per_vps,
                            q.processes_per_vps,
                        ),
                        row("snapshots", &count, u.snapshots, q.snapshots),
                        row("IPv4 addresses", &count, u.ipv4_addresses, q.ipv4_addresses),
                        row("port forwards", &count, u.port_forwards, q.port_forwards),
                        row("firewall rules", &count, u.firewall_rules, q.firewall_rules),
                    ]
                    .into_iter(),
                );
            }
        }
    }
    Ok(())
}

/// Set `cap` from `given`: `none` lifts it, anything else is parsed.
fn set_cap(cap: &mut Option<u64>, given: Option<String>, parse: impl Fn(&str) -> Result<u64>) -> Result<()> {
    match given.as_deref() {
        None => {}
        Some("none") => *cap = None,
        Some(v) => *cap = Some(parse(v)?),
    }
    Ok(())
}

pub fn plan(client: &Client, command: PlanCommand) -> Result<()> {
    match command {
        PlanCommand::Create {
            name,
            cpu,
            memory,
            disk,
            processes,
            description,
        } => {
            croft_api::validate_name(&name).map_err(|e| anyhow!("plan {e}"))?;
            let config: BTreeMap<String, String> = [
                (LIMITS_CPU, cpu),
                (LIMITS_MEMORY, memory),
                (LIMITS_DISK, disk),
                (LIMITS_PROCESSES, processes),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
            croft_api::InstanceConfig::parse(&config)?;
            let plan = client.create_plan(&PlanCreate {
                name,
                description,
                config,
            })?;
            println!("Created plan {}", plan.name);
        }
        PlanCommand::List { format } => {
            let get = |p: &croft_api::Plan, k: &str| p.config.get(k).cloned().unwrap_or_else(|| "-".into());
            show_list(
                format,
                &client.plans()?,
                &["NAME", "CPU", "MEMORY", "DISK", "PROCESSES", "DESCRIPTION"],
                |p| {
                    vec![
                        p.name.clone(),
                        get(p, LIMITS_CPU),
                        get(p, LIMITS_MEMORY),
                        get(p, LIMITS_DISK),
                        get(p, LIMITS_PROCESSES),
                        p.description.clone(),
                    ]
                },
            )?;
        }
        PlanCommand::Delete { name } => {
            client.delete_plan(&name)?;
            println!("Deleted plan {name}");
        }
    }
    Ok(())
}

pub fn token(client: &Client, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Create {
            scope,
            role,
            expires,
            from,
            description,
        } => {
            croft_api::access::parse_lifetime(&expires)?;
            if let Some(from) = &from {
                croft_api::parse_source(from)?;
            }
            let made = client.create_token(&TokenCreate {
                description,
                scope,
                role,
                expires: Some(expires),
                from,
            })?;
            let t = &made.info;
            let whose = match &t.tenant {
                Some(tenant) => format!("{} of tenant {tenant}", t.role),
                None => t.role.clone(),
            };
            eprintln!(
                "Made API token {} ({whose}, expires {}); it is shown once, now:",
                t.id,
                t.expires_at.as_deref().unwrap_or("never")
            );
            println!("{}", made.token);
        }
        TokenCommand::List { format } => {
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            show_list(
                format,
                &client.tokens()?,
                &[
                    "ID",
                    "ROLE",
                    "TENANT",
                    "FROM",
                    "EXPIRES",
                    "LAST USED",
                    "DESCRIPTION",
                ],
                |t| {
                    vec![
                        t.id.clone(),
                        t.role.clone(),
                        dash(&t.tenant),
                        dash(&t.from),
                        match (&t.expires_at, t.expired) {
                            (Some(at), true) => format!("{at} (expired)"),
                            (at, _) => at.clone().unwrap_or_else(|| "never".into()),
                        },
                        match (&t.last_used_at, &t.last_used_from) {
                            (Some(at), Some(from)) => format!("{at} from {from}"),
                            (at, _) => dash(at),
                        },
                        t.description.clone(),
                    ]
                },
            )?;
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id)?;
            println!("Revoked API token {id}");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum TrustCommand {
    /// Make a one-time trust token for NAME's machine to enroll its client
    /// certificate with (`croft remote add REMOTE TOKEN` there); with
    /// --tenant an owner (or --role viewer) of that tenant.
    Add {
        /// The machine's name, which its certificate is known by.
        name: String,
        /// owner or viewer in the tenant; admin or metrics without one.
        #[arg(long)]
        role: Option<String>,
        /// How long the token can be used.
        #[arg(long, default_value = "1d")]
        expires: String,
    },
    /// The trusted client certificates and the trust tokens not yet used.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Stop trusting a certificate (by fingerprint), or drop a trust token
    /// (by id): at once.
    Remove {
        /// The certificate's id (croft trust list).
        id: String,
    },
}

pub fn trust(client: &Client, command: TrustCommand) -> Result<()> {
    match command {
        TrustCommand::Add { name, role, expires } => {
            croft_api::validate_name(&name).map_err(|e| anyhow!("trust name {e}"))?;
            croft_api::access::parse_lifetime(&expires)?;
            let made = client.create_trust_token(&croft_api::TrustTokenCreate {
                name,
                role,
                expires: Some(expires),
            })?;
            let t = &made.info;
            let whose = match &t.tenant {
                Some(tenant) => format!("{} of tenant {tenant}", t.role),
                None => t.role.clone(),
            };
            eprintln!(
                "Trust token {} for {} ({whose}), usable once until {}:",
                t.id, t.name, t.expires_at
            );
            println!("{}", made.token);
        }
        TrustCommand::List { format } => {
            let trust = client.trust()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&trust)?);
            } else {
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                let certs = trust.certificates.iter().map(|c| {
                    vec![
                        c.name.clone(),
                        c.role.clone(),
                        dash(&c.tenant),
                        "trusted".into(),
                        c.fingerprint.clone(),
                    ]
                });
                let tokens = trust.tokens.iter().map(|t| {
                    let state = if t.expired {
                        "token expired"
                    } else {
                        "token not used"
                    };
                    vec![
                        t.name.clone(),
                        t.role.clone(),
                        dash(&t.tenant),
                        state.into(),
                        t.id.clone(),
                    ]
                });
                print_table(
                    &["NAME", "ROLE", "TENANT", "STATE", "FINGERPRINT OR ID"],
                    certs.chain(tokens),
                );
            }
        }
        TrustCommand::Remove { id } => {
            client.untrust(&id)?;
            println!("Removed {id}");
        }
    }
    Ok(())
}

pub fn whoami(client: &Client, format: Format) -> Result<()> {
    let me = client.whoami()?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&me)?);
    } else {
        println!("Name:       {}", me.name);
        println!("Role:       {}", me.role);
        println!("Tenant:     {}", me.tenant.as_deref().unwrap_or("-"));
        println!("Credential: {}", me.credential);
        println!("May:        {}", me.permitted.join(", "));
    }
    Ok(())
}

pub fn audit(client: &Client, limit: u32, format: Format) -> Result<()> {
    show_list(
        format,
        &client.audit(limit)?,
        &["TIME", "CALLER", "ROLE", "TENANT", "REQUEST", "STATUS", "FROM"],
        |e| {
            vec![
                e.at.clone(),
                e.caller.clone(),
                e.role.clone(),
                e.tenant.clone(),
                format!("{} {}", e.method, e.path),
                e.status.to_string(),
                e.remote.clone().unwrap_or_else(|| "local".into()),
            ]
        },
    )
}
