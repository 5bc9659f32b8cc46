//! `croft tenant ...`, `croft token ...` and `croft whoami`: the tenants,
//! their API tokens, and who the caller is.

use crate::{print_table, Format};
use anyhow::Result;
use clap::Subcommand;
use croft_api::{TenantCreate, TokenCreate};
use croft_client::Client;

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (a customer, whose VPSes only its users see).
    Create {
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
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Delete a tenant that has no VPS left (its API tokens go with it).
    Delete { name: String },
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
    Revoke { id: String },
}

pub fn tenant(client: &Client, command: TenantCommand) -> Result<()> {
    match command {
        TenantCommand::Create { name, description } => {
            croft_api::validate_name(&name).map_err(|e| anyhow::anyhow!("tenant {e}"))?;
            let t = client.create_tenant(&TenantCreate { name, description })?;
            println!("Created tenant {}", t.name);
        }
        TenantCommand::List { format } => {
            let tenants = client.tenants()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&tenants)?);
            } else {
                print_table(
                    &["NAME", "VPSES", "CREATED", "DESCRIPTION"],
                    tenants.iter().map(|t| {
                        vec![
                            t.name.clone(),
                            t.vpses.to_string(),
                            t.created_at.clone(),
                            t.description.clone(),
                        ]
                    }),
                );
            }
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
            }
        }
        TenantCommand::Delete { name } => {
            client.delete_tenant(&name)?;
            println!("Deleted tenant {name}");
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
            let tokens = client.tokens()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                print_table(
                    &[
                        "ID",
                        "ROLE",
                        "TENANT",
                        "FROM",
                        "EXPIRES",
                        "LAST USED",
                        "DESCRIPTION",
                    ],
                    tokens.iter().map(|t| {
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
                    }),
                );
            }
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id)?;
            println!("Revoked API token {id}");
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
