//! `croft network ...` and `croft port ...`.

use crate::{path_name, print_table, Format};
use anyhow::Result;
use clap::Subcommand;
use croft_api::{ConfigPatch, FirewallRule, PortForward};
use croft_client::Client;

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// List networks with their subnets.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a network: bridge, subnets, NAT, isolation, addresses in use.
    Info {
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum PortCommand {
    /// Forward a host port to a VPS port: `croft port add web1 tcp 8080:80`.
    Add {
        name: String,
        /// tcp or udp.
        protocol: String,
        /// HOST_PORT:VPS_PORT, or one port for both.
        #[arg(value_name = "HOST:VPS")]
        ports: String,
    },
    /// List a VPS's port forwards.
    List {
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Stop forwarding a host port.
    Remove {
        name: String,
        protocol: String,
        host_port: u16,
    },
}

#[derive(Subcommand)]
pub enum FirewallCommand {
    /// Add a rule (matched in order, first match wins):
    /// `croft firewall add web1 allow tcp 22 --from 192.0.2.0/24`.
    Add {
        name: String,
        /// allow or deny.
        action: String,
        /// tcp, udp, icmp or any.
        protocol: String,
        /// A port or range (8000-8100), for tcp and udp.
        port: Option<String>,
        /// Only traffic from this address or CIDR.
        #[arg(long, value_name = "CIDR")]
        from: Option<String>,
    },
    /// Show the default policy and the numbered rules.
    List {
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove rule NUMBER (as `list` numbers them).
    Remove { name: String, number: usize },
    /// Set what happens to inbound traffic no rule matches: allow or deny.
    Default { name: String, policy: String },
}

fn dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

pub fn network(client: &Client, command: NetworkCommand) -> Result<()> {
    match command {
        NetworkCommand::List { format } => {
            let nets = client.networks()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&nets)?);
                return Ok(());
            }
            print_table(
                &["NAME", "BRIDGE", "IPV4", "IPV6", "NAT", "ISOLATED", "VPSES"],
                nets.iter().map(|n| {
                    vec![
                        n.name.clone(),
                        n.bridge.clone(),
                        dash(&n.ipv4),
                        dash(&n.ipv6),
                        n.nat.to_string(),
                        n.isolated.to_string(),
                        n.leases.len().to_string(),
                    ]
                }),
            );
        }
        NetworkCommand::Info { name, format } => {
            let n = client.network(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&n)?);
                return Ok(());
            }
            println!("Name:     {}", n.name);
            println!("Bridge:   {}", n.bridge);
            println!("IPv4:     {}", dash(&n.ipv4));
            println!("IPv6:     {}", dash(&n.ipv6));
            println!("NAT:      {}", n.nat);
            println!("Isolated: {}", n.isolated);
            println!(
                "DNS:      {}",
                if n.dns.is_empty() {
                    "-".into()
                } else {
                    n.dns.join(", ")
                }
            );
            println!("Addresses in use:");
            print_table(
                &["  VPS", "MAC", "IPV4", "IPV6"],
                n.leases.iter().map(|l| {
                    vec![
                        format!("  {}", l.instance),
                        l.mac.clone(),
                        dash(&l.ipv4),
                        dash(&l.ipv6),
                    ]
                }),
            );
        }
    }
    Ok(())
}

pub fn port(client: &Client, command: PortCommand) -> Result<()> {
    match command {
        PortCommand::Add {
            name,
            protocol,
            ports,
        } => {
            let (host_port, vps_port) = croft_api::parse_port_pair(&ports).map_err(anyhow::Error::msg)?;
            let f = PortForward {
                protocol: protocol.clone(),
                host_port,
                vps_port,
            };
            croft_api::validate_forward(&f).map_err(anyhow::Error::msg)?;
            client.add_forward(path_name(&name)?, &f)?;
            println!("Forwarding host port {host_port}/{protocol} to {name} port {vps_port}");
        }
        PortCommand::List { name, format } => {
            let list = client.forwards(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            print_table(
                &["PROTOCOL", "HOST PORT", "VPS PORT"],
                list.iter().map(|f| {
                    vec![
                        f.protocol.clone(),
                        f.host_port.to_string(),
                        f.vps_port.to_string(),
                    ]
                }),
            );
        }
        PortCommand::Remove {
            name,
            protocol,
            host_port,
        } => {
            client.remove_forward(
                path_name(&name)?,
                path_name(&protocol)
                    .map_err(|_| anyhow::anyhow!("unknown protocol {protocol:?} (use tcp or udp)"))?,
                host_port,
            )?;
            println!("Removed the forward of host port {host_port}/{protocol} to {name}");
        }
    }
    Ok(())
}

pub fn firewall(client: &Client, command: FirewallCommand) -> Result<()> {
    match command {
        FirewallCommand::Add {
            name,
            action,
            protocol,
            port,
            from,
        } => {
            let rule = FirewallRule {
                action,
                protocol,
                port,
                source: from,
            };
            croft_api::validate_firewall_rule(&rule).map_err(anyhow::Error::msg)?;
            let fw = client.add_firewall_rule(path_name(&name)?, &rule)?;
            println!("Added rule {} to the firewall of {name}", fw.rules.len());
        }
        FirewallCommand::List { name, format } => {
            let fw = client.firewall(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&fw)?);
                return Ok(());
            }
            println!(
                "Default: {} (replies to connections the VPS opens always pass)",
                fw.default
            );
            print_table(
                &["#", "ACTION", "PROTOCOL", "PORT", "FROM"],
                fw.rules.iter().enumerate().map(|(i, r)| {
                    vec![
                        (i + 1).to_string(),
                        r.action.clone(),
                        r.protocol.clone(),
                        dash(&r.port),
                        r.source.clone().unwrap_or_else(|| "anywhere".into()),
                    ]
                }),
            );
        }
        FirewallCommand::Remove { name, number } => {
            client.remove_firewall_rule(path_name(&name)?, number)?;
            println!("Removed rule {number} from the firewall of {name}");
        }
        FirewallCommand::Default { name, policy } => {
            if policy != "allow" && policy != "deny" {
                anyhow::bail!("unknown policy {policy:?} (use allow or deny)");
            }
            let patch = ConfigPatch {
                set: [(croft_api::config::FIREWALL_DEFAULT.to_string(), policy.clone())].into(),
                unset: vec![],
            };
            client.patch_config(path_name(&name)?, &patch)?;
            println!("Inbound traffic to {name} that no rule matches: {policy}");
        }
    }
    Ok(())
}
