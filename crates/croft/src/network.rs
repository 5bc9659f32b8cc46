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
        /// The network.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Make a network of its own beside the default one, kept apart from
    /// the other networks: `croft network create lan2 --ipv4 10.88.0.1/24`
    /// (nat), `croft network create pub --type routed --ipv4
    /// 198.51.100.16/28` (public addresses, no NAT).
    Create {
        /// The network.
        name: String,
        /// nat (a private subnet, masqueraded out), routed (public
        /// addresses from a pool the provider routes to this host, no NAT)
        /// or bridged (on an existing host bridge: the provider's link and
        /// gateway).
        #[arg(long = "type", default_value = "nat")]
        kind: String,
        /// nat: the gateway's address and prefix, e.g. 10.88.0.1/24;
        /// routed: the pool, e.g. 198.51.100.16/28; bridged: the
        /// provider's gateway and prefix, e.g. 198.51.100.65/26.
        #[arg(long, value_name = "CIDR")]
        ipv4: Option<String>,
        /// nat: the gateway's IPv6 address and prefix, e.g. fd00:88::1/64;
        /// routed: the pool, e.g. 2001:db8:100::/64; bridged: the
        /// provider's gateway and prefix.
        #[arg(long, value_name = "CIDR")]
        ipv6: Option<String>,
        /// The bridge's name (default: the next free croftbrN); bridged:
        /// the existing host bridge, required.
        #[arg(long)]
        bridge: Option<String>,
        /// Only these addresses go to VPSes: an address or a range
        /// FIRST-LAST inside the subnet, repeatable (default: the whole
        /// subnet); on a bridged network, the part of the link that is
        /// croft's.
        #[arg(long, value_name = "RANGE")]
        pool: Vec<String>,
        /// Do not masquerade IPv4 leaving the subnet.
        #[arg(long)]
        no_nat: bool,
        /// Keep its VPSes from reaching each other.
        #[arg(long)]
        isolated: bool,
        /// routed: the host interface on which the provider expects the
        /// pool's addresses on-link (croft answers ARP and neighbour
        /// discovery for them there); default: the pool is routed to the
        /// host.
        #[arg(long)]
        uplink: Option<String>,
    },
    /// Delete a network no VPS is on, with its bridge.
    Delete {
        /// The network.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum NicCommand {
    /// Give a stopped VPS another interface on another network, made at
    /// its next start as eth1..: `croft nic add web1 lan2`.
    Add {
        /// The VPS.
        name: String,
        /// The network (croft network list).
        network: String,
        /// A fixed IPv4 address of that network (default: the next free).
        #[arg(long = "ip")]
        ipv4: Option<String>,
        /// A fixed IPv6 address of that network (default: the next free).
        #[arg(long = "ip6")]
        ipv6: Option<String>,
        /// A fixed MAC address (default: a new one).
        #[arg(long)]
        mac: Option<String>,
    },
    /// Take an interface (eth1.., or its number) off a stopped VPS.
    Remove {
        /// The VPS.
        name: String,
        /// The interface: eth1, eth2, ... (or its number).
        interface: String,
    },
    /// A VPS's interfaces.
    List {
        /// The VPS.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum AddressCommand {
    /// Give a VPS another address of its network, live: `croft address
    /// add web1 198.51.100.20`, or the next free one (--ipv6 for IPv6), or
    /// a whole IPv6 prefix routed to it (--prefix 64).
    Add {
        /// The VPS.
        name: String,
        /// The address (default: the next free one).
        address: Option<String>,
        /// The next free IPv6 address (default: IPv4).
        #[arg(long)]
        ipv6: bool,
        /// A whole IPv6 prefix of this length routed to the VPS (a routed
        /// network's): `--prefix 64`; ADDRESS may name it
        /// (2001:db8:100:1::/64).
        #[arg(long, value_name = "LENGTH")]
        prefix: Option<u8>,
    },
    /// Take an address off a VPS, live; its first of a family only when
    /// another was added, which takes its place (so `add` then `remove`
    /// changes a VPS's address).
    Remove {
        /// The VPS.
        name: String,
        /// The address, or a delegated prefix.
        address: String,
    },
    /// A VPS's addresses.
    List {
        /// The VPS.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum PortCommand {
    /// Forward a host port to a VPS port: `croft port add web1 tcp 8080:80`;
    /// a range goes to the same ports: `croft port add web1 udp 6000-6100`.
    Add {
        /// The VPS.
        name: String,
        /// tcp or udp.
        protocol: String,
        /// HOST_PORT:VPS_PORT, one port for both, or FIRST-LAST.
        #[arg(value_name = "HOST:VPS")]
        ports: String,
        /// Take a reserved port or one a host service listens on (the
        /// admin's).
        #[arg(long)]
        force: bool,
    },
    /// List a VPS's port forwards.
    List {
        /// The VPS.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Stop forwarding a host port.
    Remove {
        /// The VPS.
        name: String,
        /// tcp or udp.
        protocol: String,
        /// The host port (the first of a range).
        host_port: u16,
    },
}

#[derive(Subcommand)]
pub enum FirewallCommand {
    /// Add a rule (rules are matched in order, first match wins, each
    /// direction apart): `croft firewall add web1 allow tcp 22 --from
    /// 192.0.2.0/24`, `croft firewall add web1 deny tcp 25 --out`.
    Add {
        /// The VPS.
        name: String,
        #[command(flatten)]
        rule: RuleArgs,
        /// Put it at this number (before the rule that has it; default:
        /// last).
        #[arg(long, value_name = "NUMBER")]
        position: Option<usize>,
    },
    /// Replace rule NUMBER with another, in its place.
    Replace {
        /// The VPS.
        name: String,
        /// The rule's number (croft firewall list).
        number: usize,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// Give rule NUMBER the number TO (the rules between shift).
    Move {
        /// The VPS.
        name: String,
        /// The rule's number (croft firewall list).
        number: usize,
        /// The number it moves to.
        to: usize,
    },
    /// Show the default policies, the numbered rules and the provider's
    /// outbound rules that apply.
    List {
        /// The VPS.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remove rule NUMBER (as `list` numbers them).
    Remove {
        /// The VPS.
        name: String,
        /// The rule's number (croft firewall list).
        number: usize,
    },
    /// Attach a security group: its rules follow the VPS's own (after the
    /// groups attached before).
    Attach {
        /// The VPS.
        name: String,
        /// The security group.
        group: String,
    },
    /// Detach a security group.
    Detach {
        /// The VPS.
        name: String,
        /// The security group.
        group: String,
    },
    /// Security groups: rules defined once and attached to many VPSes.
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Set what happens to traffic no rule matches: allow or deny
    /// (inbound; --out for outbound).
    Default {
        /// The VPS.
        name: String,
        /// allow or deny.
        policy: String,
        #[arg(long)]
        out: bool,
    },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Make an empty group: `croft firewall group create web`.
    Create {
        /// The security group.
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the groups with their rules and members.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show a group's numbered rules and the VPSes it is attached to.
    Show {
        /// The security group.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Delete a group attached to no VPS.
    Delete {
        /// The security group.
        name: String,
    },
    /// Add a rule to a group: `croft firewall group add web allow tcp 443`.
    Add {
        /// The security group.
        group: String,
        #[command(flatten)]
        rule: RuleArgs,
        /// Put it at this number (default: last).
        #[arg(long, value_name = "NUMBER")]
        position: Option<usize>,
    },
    /// Replace rule NUMBER of a group.
    Replace {
        /// The security group.
        group: String,
        /// The rule's number (croft firewall list).
        number: usize,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// Give rule NUMBER of a group the number TO.
    Move {
        /// The security group.
        group: String,
        /// The rule's number (croft firewall list).
        number: usize,
        /// The number it moves to.
        to: usize,
    },
    /// Remove rule NUMBER of a group.
    Remove {
        /// The security group.
        group: String,
        /// The rule's number (croft firewall list).
        number: usize,
    },
}

/// A rule as typed: `allow tcp 22 --from 192.0.2.0/24`.
#[derive(clap::Args)]
pub struct RuleArgs {
    /// allow or deny.
    action: String,
    /// tcp, udp, icmp or any.
    protocol: String,
    /// A destination port or range (8000-8100), for tcp and udp.
    port: Option<String>,
    /// An outbound rule (traffic the VPS sends); default: inbound.
    #[arg(long)]
    out: bool,
    /// Inbound: only traffic from this address or CIDR.
    #[arg(long, value_name = "CIDR")]
    from: Option<String>,
    /// Outbound: only traffic to this address or CIDR.
    #[arg(long, value_name = "CIDR")]
    to: Option<String>,
}

impl RuleArgs {
    fn rule(self) -> Result<FirewallRule> {
        let rule = FirewallRule {
            direction: if self.out { "out" } else { "in" }.into(),
            action: self.action,
            protocol: self.protocol,
            port: self.port,
            source: self.from,
            destination: self.to,
        };
        croft_api::validate_firewall_rule(&rule).map_err(anyhow::Error::msg)?;
        Ok(rule)
    }
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
                &[
                    "NAME", "TYPE", "BRIDGE", "IPV4", "IPV6", "NAT", "ISOLATED", "VPSES",
                ],
                nets.iter().map(|n| {
                    vec![
                        n.name.clone(),
                        n.kind.clone(),
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
        NetworkCommand::Create {
            name,
            kind,
            ipv4,
            ipv6,
            bridge,
            no_nat,
            isolated,
            uplink,
            pool,
        } => {
            let n = client.create_network(&croft_api::NetworkCreate {
                name,
                kind,
                bridge,
                ipv4,
                ipv6,
                nat: !no_nat,
                isolated,
                uplink,
                pool,
            })?;
            println!(
                "Network {} created on bridge {} ({})",
                n.name,
                n.bridge,
                [n.ipv4.as_deref(), n.ipv6.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        NetworkCommand::Delete { name } => {
            client.delete_network(path_name(&name)?)?;
            println!("Network {name} deleted");
        }
        NetworkCommand::Info { name, format } => {
            let n = client.network(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&n)?);
                return Ok(());
            }
            println!("Name:     {}", n.name);
            println!("Type:     {}", n.kind);
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
            force,
        } => {
            let f = if ports.contains('-') {
                let (first, last) = croft_api::parse_port_range(&ports).map_err(anyhow::Error::msg)?;
                PortForward {
                    protocol: protocol.clone(),
                    host_port: first,
                    vps_port: first,
                    host_port_end: Some(last),
                }
            } else {
                let (host_port, vps_port) = croft_api::parse_port_pair(&ports).map_err(anyhow::Error::msg)?;
                PortForward {
                    protocol: protocol.clone(),
                    host_port,
                    vps_port,
                    host_port_end: None,
                }
            };
            croft_api::validate_forward(&f).map_err(anyhow::Error::msg)?;
            client.add_forward(path_name(&name)?, &f, force)?;
            match f.host_port_end {
                Some(last) => println!(
                    "Forwarding host ports {}-{last}/{protocol} to the same ports of {name}",
                    f.host_port
                ),
                None => println!(
                    "Forwarding host port {}/{protocol} to {name} port {}",
                    f.host_port, f.vps_port
                ),
            }
        }
        PortCommand::List { name, format } => {
            let list = client.forwards(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            print_table(
                &["PROTOCOL", "HOST PORT", "VPS PORT"],
                list.iter().map(|f| match f.host_port_end {
                    Some(last) => vec![
                        f.protocol.clone(),
                        format!("{}-{last}", f.host_port),
                        format!("{}-{last}", f.vps_port),
                    ],
                    None => vec![
                        f.protocol.clone(),
                        f.host_port.to_string(),
                        f.vps_port.to_string(),
                    ],
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
        FirewallCommand::Add { name, rule, position } => {
            let fw = client.add_firewall_rule(path_name(&name)?, &rule.rule()?, position)?;
            let number = position.unwrap_or(fw.rules.len());
            println!("Added rule {number} to the firewall of {name}");
        }
        FirewallCommand::Replace { name, number, rule } => {
            client.replace_firewall_rule(path_name(&name)?, number, &rule.rule()?)?;
            println!("Replaced rule {number} of the firewall of {name}");
        }
        FirewallCommand::Move { name, number, to } => {
            client.move_firewall_rule(path_name(&name)?, number, to)?;
            println!("Moved rule {number} of the firewall of {name} to {to}");
        }
        FirewallCommand::List { name, format } => {
            let fw = client.firewall(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&fw)?);
                return Ok(());
            }
            println!(
                "Default: inbound {}, outbound {} (replies to connections already let through always pass)",
                fw.default, fw.default_out
            );
            if !fw.provider_blocked.is_empty() {
                println!(
                    "Blocked by the provider, outbound: {}",
                    fw.provider_blocked.join(", ")
                );
            }
            print_rules(&fw.rules);
            if !fw.groups.is_empty() {
                println!("Then the rules of security groups: {}", fw.groups.join(", "));
            }
        }
        FirewallCommand::Attach { name, group } => {
            client.attach_group(path_name(&name)?, &group)?;
            println!("Attached security group {group} to {name}");
        }
        FirewallCommand::Detach { name, group } => {
            client.detach_group(path_name(&name)?, &group)?;
            println!("Detached security group {group} from {name}");
        }
        FirewallCommand::Group { command } => group(client, command)?,
        FirewallCommand::Remove { name, number } => {
            client.remove_firewall_rule(path_name(&name)?, number)?;
            println!("Removed rule {number} from the firewall of {name}");
        }
        FirewallCommand::Default { name, policy, out } => {
            if policy != "allow" && policy != "deny" {
                anyhow::bail!("unknown policy {policy:?} (use allow or deny)");
            }
            let (key, way) = if out {
                (croft_api::config::FIREWALL_DEFAULT_OUT, "Outbound traffic from")
            } else {
                (croft_api::config::FIREWALL_DEFAULT, "Inbound traffic to")
            };
            let patch = ConfigPatch {
                set: [(key.to_string(), policy.clone())].into(),
                unset: vec![],
            };
            client.patch_config(path_name(&name)?, &patch)?;
            println!("{way} {name} that no rule matches: {policy}");
        }
    }
    Ok(())
}

fn print_rules(rules: &[FirewallRule]) {
    print_table(
        &["#", "DIRECTION", "ACTION", "PROTOCOL", "PORT", "FROM/TO"],
        rules.iter().enumerate().map(|(i, r)| {
            vec![
                (i + 1).to_string(),
                r.direction.clone(),
                r.action.clone(),
                r.protocol.clone(),
                dash(&r.port),
                r.source
                    .clone()
                    .or(r.destination.clone())
                    .unwrap_or_else(|| "anywhere".into()),
            ]
        }),
    );
}

fn group(client: &Client, command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::Create { name, description } => {
            client.create_firewall_group(&croft_api::FirewallGroupCreate {
                name: name.clone(),
                description,
            })?;
            println!("Security group {name} created");
        }
        GroupCommand::List { format } => crate::show_list(
            format,
            &client.firewall_groups()?,
            &["NAME", "TENANT", "RULES", "ATTACHED TO", "DESCRIPTION"],
            |g| {
                vec![
                    g.name.clone(),
                    g.tenant.clone(),
                    g.rules.len().to_string(),
                    g.members.join(", "),
                    g.description.clone(),
                ]
            },
        )?,
        GroupCommand::Show { name, format } => {
            let g = client.firewall_group(&name)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&g)?);
                return Ok(());
            }
            println!(
                "Security group {} (tenant {}): {}",
                g.name, g.tenant, g.description
            );
            println!(
                "Attached to: {}",
                if g.members.is_empty() {
                    "-".into()
                } else {
                    g.members.join(", ")
                }
            );
            print_rules(&g.rules);
        }
        GroupCommand::Delete { name } => {
            client.delete_firewall_group(&name)?;
            println!("Security group {name} deleted");
        }
        GroupCommand::Add {
            group,
            rule,
            position,
        } => {
            let g = client.add_group_rule(&group, &rule.rule()?, position)?;
            println!(
                "Added rule {} to security group {group} ({} VPSes)",
                position.unwrap_or(g.rules.len()),
                g.members.len()
            );
        }
        GroupCommand::Replace { group, number, rule } => {
            client.replace_group_rule(&group, number, &rule.rule()?)?;
            println!("Replaced rule {number} of security group {group}");
        }
        GroupCommand::Move { group, number, to } => {
            client.move_group_rule(&group, number, to)?;
            println!("Moved rule {number} of security group {group} to {to}");
        }
        GroupCommand::Remove { group, number } => {
            client.remove_group_rule(&group, number)?;
            println!("Removed rule {number} from security group {group}");
        }
    }
    Ok(())
}

pub fn nic(client: &Client, command: NicCommand) -> Result<()> {
    match command {
        NicCommand::Add {
            name,
            network,
            ipv4,
            ipv6,
            mac,
        } => {
            let req = croft_api::NicAdd {
                network: network.clone(),
                ipv4,
                ipv6,
                mac,
            };
            let vps = client.add_nic(path_name(&name)?, &req)?;
            let added = vps.nics.iter().find(|n| n.network == network);
            println!(
                "Added {} on network {network} to {name} (made at its next start)",
                added.map(|n| n.name.as_str()).unwrap_or("an interface")
            );
        }
        NicCommand::Remove { name, interface } => {
            let index: u32 = interface
                .strip_prefix("eth")
                .unwrap_or(&interface)
                .parse()
                .map_err(|_| anyhow::anyhow!("{interface:?} is not an interface (eth1, eth2, ...)"))?;
            client.remove_nic(path_name(&name)?, index)?;
            println!("Removed eth{index} from {name}");
        }
        NicCommand::List { name, format } => {
            let nics = client.instance(path_name(&name)?)?.nics;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&nics)?);
            } else {
                print_table(
                    &["NAME", "NETWORK", "MAC", "IPV4", "IPV6", "HOST SIDE"],
                    nics.iter().map(|n| {
                        vec![
                            n.name.clone(),
                            n.network.clone(),
                            n.mac.clone(),
                            n.ipv4.clone().unwrap_or_default(),
                            n.ipv6.clone().unwrap_or_default(),
                            n.host_interface.clone(),
                        ]
                    }),
                );
            }
        }
    }
    Ok(())
}

pub fn address(client: &Client, command: AddressCommand) -> Result<()> {
    match command {
        AddressCommand::Add {
            name,
            address,
            ipv6,
            prefix,
        } => {
            let req = croft_api::AddressAdd {
                family: (address.is_none() && ipv6).then(|| "ipv6".to_string()),
                address,
                prefix,
            };
            let vps = client.add_address(path_name(&name)?, &req)?;
            let added = vps.nic.and_then(|n| n.extra.last().cloned()).unwrap_or_default();
            println!("Added {added} to {name}");
        }
        AddressCommand::Remove { name, address } => {
            client.remove_address(path_name(&name)?, &address)?;
            println!("Removed {address} from {name}");
        }
        AddressCommand::List { name, format } => {
            let nic = client.instance(path_name(&name)?)?.nic;
            let rows: Vec<(String, &str)> = nic
                .iter()
                .flat_map(|n| {
                    n.ipv4
                        .iter()
                        .chain(&n.ipv6)
                        .map(|a| (a.clone(), "first"))
                        .chain(n.extra.iter().map(|a| (a.clone(), "additional")))
                        .collect::<Vec<_>>()
                })
                .collect();
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&nic)?);
            } else {
                print_table(
                    &["ADDRESS", "KIND"],
                    rows.iter().map(|(a, k)| vec![a.clone(), k.to_string()]),
                );
            }
        }
    }
    Ok(())
}
