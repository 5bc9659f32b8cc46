//! `croft network ...` and `croft port ...`.

use crate::client::Client;
use crate::{path_name, print_table, Format};
use anyhow::Result;
use clap::Subcommand;
use croft_api::{Network, PortForward};

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

fn dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

pub fn network(client: &Client, command: NetworkCommand) -> Result<()> {
    match command {
        NetworkCommand::List { format } => {
            let nets: Vec<Network> = client.get("/1.0/networks")?;
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
            let n: Network = client.get(&format!("/1.0/networks/{}", path_name(&name)?))?;
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
            let _: Vec<PortForward> =
                client.post(&format!("/1.0/instances/{}/forwards", path_name(&name)?), &f)?;
            println!("Forwarding host port {host_port}/{protocol} to {name} port {vps_port}");
        }
        PortCommand::List { name, format } => {
            let list: Vec<PortForward> =
                client.get(&format!("/1.0/instances/{}/forwards", path_name(&name)?))?;
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
            client.delete(&format!(
                "/1.0/instances/{}/forwards/{}/{host_port}",
                path_name(&name)?,
                path_name(&protocol)
                    .map_err(|_| anyhow::anyhow!("unknown protocol {protocol:?} (use tcp or udp)"))?
            ))?;
            println!("Removed the forward of host port {host_port}/{protocol} to {name}");
        }
    }
    Ok(())
}
