//! croft: the command line for croftd.
//!
//! Every command is an API call on croftd's unix socket through the typed
//! client (`croft-client`), except the data path of `exec` and `console`
//! (`session.rs`), which talks to the VPS's supervisor directly.
//! Image and snapshot transfers stream local files to and from croftd
//! (`transfer.rs`).

mod access;
mod files;
mod images;
mod jobs;
mod network;
mod relay;
mod remote;
mod session;
mod snapshots;
mod terminal;
mod transfer;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use croft_api::config::{parse_assignment, LIMITS_CPU, LIMITS_DISK, LIMITS_MEMORY, LIMITS_PROCESSES};
use croft_api::{
    format_size, ConfigPatch, Instance, Job, JobStatus, LaunchRequest, StateAction, StateRequest,
};
use croft_client::Client;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "croft",
    version,
    about = "Manage croft VPSes",
    propagate_version = true
)]
struct Cli {
    /// croftd's API socket.
    #[arg(long, global = true, env = "CROFT_SOCKET", default_value = croft_client::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Act in this tenant (the admin's way to a tenant's VPSes and tokens).
    #[arg(long, global = true, env = "CROFT_TENANT")]
    tenant: Option<String>,
    /// Talk to this remote croftd (croft remote list), not the local one.
    #[arg(long, global = true, env = "CROFT_REMOTE")]
    remote: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Create a VPS from an image and start it.
    Launch {
        /// The image it boots (croft image list).
        image: String,
        /// The new VPS's name.
        name: String,
        /// CPU quota in CPUs (fractions allowed, e.g. 0.5).
        #[arg(long)]
        cpu: Option<String>,
        /// Memory hard limit, e.g. 512MiB or 2GiB.
        #[arg(long)]
        memory: Option<String>,
        /// Maximum number of processes.
        #[arg(long)]
        processes: Option<String>,
        /// Disk hard limit, e.g. 10GiB (btrfs pools).
        #[arg(long)]
        disk: Option<String>,
        /// Any configuration key, as key=value (repeatable).
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Create but do not start.
        #[arg(long)]
        no_start: bool,
        /// A fixed IPv4 address (default: the next free one).
        #[arg(long = "ip", value_name = "IPV4")]
        ipv4: Option<String>,
        /// A fixed IPv6 address (default: the next free one).
        #[arg(long = "ip6", value_name = "IPV6")]
        ipv6: Option<String>,
        /// A public key file (.pub) whose keys root gets in authorized_keys
        /// (repeatable).
        #[arg(long = "ssh-key", value_name = "FILE")]
        ssh_keys: Vec<PathBuf>,
        /// A script run once at first boot, cloud-init style (systemd images;
        /// output in /var/log/croft-user-data.log, outcome in croft info).
        #[arg(long, value_name = "FILE")]
        user_data: Option<PathBuf>,
        /// A plan whose limits the VPS gets (croft plan list); --cpu,
        /// --memory, --disk and --processes win over it.
        #[arg(long)]
        plan: Option<String>,
        /// The network it joins (croft network list; default: default).
        #[arg(long)]
        network: Option<String>,
        /// A fixed MAC address for its interface, e.g. the virtual MAC
        /// a provider bound a failover address to (default: a new one).
        #[arg(long)]
        mac: Option<String>,
    },
    /// List VPSes.
    #[command(alias = "ls")]
    List {
        /// Every tenant's VPSes, with a TENANT column (the admin's).
        #[arg(long)]
        all_tenants: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one VPS.
    Info {
        /// The VPS.
        name: String,
        /// Show how it sits on the host instead: id range, init pid,
        /// backend, control socket (for the host's administrator).
        #[arg(long)]
        host: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Start a stopped VPS.
    Start {
        /// The VPS.
        name: String,
        #[command(flatten)]
        rescue: RescueArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Shut a VPS down (init is asked first, then killed after the timeout).
    Stop {
        /// The VPS.
        name: String,
        /// Kill at once.
        #[arg(long, short)]
        force: bool,
        /// Seconds to wait for a clean shutdown (default: boot.stop_timeout).
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Stop and start a VPS.
    Restart {
        /// The VPS.
        name: String,
        /// Kill at once instead of a clean shutdown.
        #[arg(long, short)]
        force: bool,
        /// Seconds to wait for a clean shutdown (default: boot.stop_timeout).
        #[arg(long)]
        timeout: Option<u64>,
        #[command(flatten)]
        rescue: RescueArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Delete a VPS and its files.
    #[command(alias = "rm")]
    Delete {
        /// The VPS.
        name: String,
        /// Stop it first if it runs.
        #[arg(long, short)]
        force: bool,
        /// Do not ask on a terminal.
        #[arg(long, short)]
        yes: bool,
    },
    /// Run a command inside a VPS.
    Exec {
        /// The VPS.
        name: String,
        /// Allocate a pty (interactive programs, shells).
        #[arg(short = 't', long = "tty")]
        tty: bool,
        /// Extra environment, NAME=value (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Working directory inside the VPS (default: the user's home
        /// with --user, else /).
        #[arg(long)]
        cwd: Option<String>,
        /// Run it as this user of the VPS (a name or a uid), with its
        /// groups and home; default root.
        #[arg(long)]
        user: Option<String>,
        /// The command and its arguments.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// Attach to the VPS console (detach with Ctrl+a q).
    Console {
        /// The VPS.
        name: String,
        /// Print the console output recorded while nobody was attached, and
        /// exit. Control characters are shown, not obeyed (see --raw).
        #[arg(long)]
        show_log: bool,
        /// With --show-log: print the log as recorded, terminal escape
        /// sequences of the VPS's included (for a file or a pipe).
        #[arg(long, requires = "show_log")]
        raw: bool,
    },
    /// Show or change VPS configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Images VPSes are launched from.
    Image {
        #[command(subcommand)]
        command: images::ImageCommand,
    },
    /// Snapshots of a VPS's disk.
    Snapshot {
        #[command(subcommand)]
        command: snapshots::SnapshotCommand,
    },
    /// Reinstall a VPS's disk from an image, keeping its name, addresses, port
    /// forwards, firewall, limits, SSH keys and snapshots (a running VPS is
    /// stopped and started again).
    Rebuild {
        /// The VPS.
        name: String,
        /// The image it is rebuilt from (croft image list).
        image: String,
        /// A new first-boot script (the old one does not run again).
        #[arg(long, value_name = "FILE")]
        user_data: Option<PathBuf>,
        /// Do not ask on a terminal.
        #[arg(long, short)]
        yes: bool,
    },
    /// Files into and out of a running VPS.
    File {
        #[command(subcommand)]
        command: files::FileCommand,
    },
    /// Set root's password of a VPS, on its disk at once (running or
    /// not): typed on the terminal (or read from stdin), or generated and
    /// shown once.
    Password {
        /// The VPS.
        name: String,
        /// Generate a random one and print it.
        #[arg(long)]
        generate: bool,
    },
    /// The public keys root of a VPS accepts: added and removed at once,
    /// running or not.
    SshKey {
        #[command(subcommand)]
        command: SshKeyCommand,
    },
    /// Rename a stopped VPS: its name, and its hostname from its next
    /// start; everything else stays.
    Rename {
        /// The VPS.
        name: String,
        /// Its new name.
        new_name: String,
    },
    /// Copy a VPS (or one of its snapshots, SRC/SNAP) into a new, stopped VPS
    /// with its own identity.
    Copy {
        /// The VPS to copy, or VPS/SNAPSHOT.
        source: String,
        /// The new VPS's name.
        name: String,
    },
    /// Make an image of a stopped VPS (or of one of its snapshots,
    /// VPS/SNAP), with its identity cleared: machine-id, SSH host keys,
    /// authorized keys, root's password, histories, logs. New VPSes can
    /// then be launched from it.
    Publish {
        /// The VPS, or VPS/SNAPSHOT (a running VPS only so).
        source: String,
        /// The new image's name (`my-app`, `acme/web`).
        image: String,
        /// What the image is (default: where it was published from).
        #[arg(long)]
        description: Option<String>,
    },
    /// Storage pools VPS disks live in.
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// Networks VPSes are attached to.
    Network {
        #[command(subcommand)]
        command: network::NetworkCommand,
    },
    /// A VPS's further interfaces (eth1..) on other networks.
    Nic {
        #[command(subcommand)]
        command: network::NicCommand,
    },
    /// A VPS's additional addresses, added and removed live.
    Address {
        #[command(subcommand)]
        command: network::AddressCommand,
    },
    /// Host ports forwarded to VPS ports.
    Port {
        #[command(subcommand)]
        command: network::PortCommand,
    },
    /// A VPS's inbound firewall (enforced on the host).
    Firewall {
        #[command(subcommand)]
        command: network::FirewallCommand,
    },
    /// Tenants: the customers VPSes belong to.
    Tenant {
        #[command(subcommand)]
        command: access::TenantCommand,
    },
    /// Plans: named VPS sizes (croft launch --plan).
    Plan {
        #[command(subcommand)]
        command: access::PlanCommand,
    },
    /// Client certificates trusted by this croftd, and the trust tokens
    /// that enroll them.
    Trust {
        #[command(subcommand)]
        command: access::TrustCommand,
    },
    /// Long operations (launches, rebuilds, image builds): list, show,
    /// wait for, cancel.
    Job {
        #[command(subcommand)]
        command: jobs::JobCommand,
    },
    /// API tokens for remote callers and automation.
    Token {
        #[command(subcommand)]
        command: access::TokenCommand,
    },
    /// The web panel's users: who logs in to /ui/ with a password.
    User {
        #[command(subcommand)]
        command: access::UserCommand,
    },
    /// What a VPS sent and received, per calendar month (UTC), newest
    /// first.
    Traffic {
        /// The VPS.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// The audit log: every change asked of croftd, newest first (the
    /// admin's; --tenant for one tenant's).
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Print what happens to VPSes and operations as it happens (your
    /// tenant's; the admin's: everything, or --tenant's), until stopped.
    Monitor {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Who croftd takes you for, and what you may do.
    Whoami {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Remote croftds this CLI talks to over TLS.
    Remote {
        #[command(subcommand)]
        command: remote::RemoteCommand,
    },
    /// The croftd itself.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
    },
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Version, backend, where remote callers reach it and the fingerprint
    /// of its certificate (what `croft remote add` pins).
    Info {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum SshKeyCommand {
    /// Give root the keys of a .pub file (or authorized_keys lines; `-`:
    /// stdin).
    Add {
        /// The VPS.
        name: String,
        /// The key file.
        file: PathBuf,
    },
    /// Take key NUMBER (as listed) from root.
    Remove {
        /// The VPS.
        name: String,
        /// The key's number (croft ssh-key list).
        number: usize,
    },
    /// Root's keys, numbered.
    List {
        /// The VPS.
        name: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Set keys (limits apply live to a running VPS).
    Set {
        /// The VPS.
        name: String,
        /// KEY=VALUE settings (croft config keys).
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Remove keys (back to their defaults / no limit).
    Unset {
        /// The VPS.
        name: String,
        /// The keys to unset (croft config keys).
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show the configuration.
    Show {
        /// The VPS.
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// List the keys croft knows.
    Keys,
}

#[derive(Subcommand)]
enum StorageCommand {
    /// List storage pools with their size and use.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one pool.
    Info {
        /// The storage pool.
        #[arg(default_value = "default")]
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`croft list | head`) like other Unix
    // tools, instead of panicking in println!.
    // SAFETY: setting a signal disposition to its default at start-up,
    // before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let prefixed = match remote_of_arguments(&mut args) {
        Ok(remote) => remote,
        Err(e) => {
            eprintln!("croft: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, like every other croft error; the full usage is
            // one `--help` away.
            let text = e.to_string();
            // The first paragraph, which names what is wrong, on one line.
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let first = first.join(" ");
            let first = first.trim_start_matches("error: ");
            eprintln!("croft: error: {first} (see croft --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli, prefixed) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                msg.push_str(": ");
                msg.push_str(&cause.to_string());
            }
            eprintln!("croft: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn path_name(name: &str) -> Result<&str> {
    croft_api::validate_name(name)?;
    Ok(name)
}

/// The remote `REMOTE:vps` arguments name, taken off them (the
/// arguments that are not UTF-8 name no remote).
fn remote_of_arguments(args: &mut [std::ffi::OsString]) -> Result<Option<String>> {
    let remotes = remote::Remotes::load()?;
    let mut text: Vec<String> = args
        .iter()
        .map(|a| a.to_str().map(str::to_string).unwrap_or_default())
        .collect();
    // `image copy REMOTE:IMAGE` names the image's source, not the remote
    // the command talks to: that argument is its own.
    let source = text
        .windows(2)
        .position(|w| w == ["image", "copy"])
        .and_then(|i| {
            // The first argument after `copy` that is neither an option nor
            // the value of one.
            let mut j = i + 2;
            while j < text.len() {
                match text[j].as_str() {
                    "--tenant" | "--remote" | "--socket" => j += 2,
                    a if a.starts_with('-') => j += 1,
                    _ => return Some(j),
                }
            }
            None
        });
    let kept = source.map(|j| std::mem::take(&mut text[j]));
    let chosen = remote::take_remote_prefix(&mut text, &remotes)?;
    if let (Some(j), Some(arg)) = (source, kept) {
        text[j] = arg;
    }
    for (arg, new) in args.iter_mut().zip(text) {
        if arg.to_str().is_some() {
            *arg = new.into();
        }
    }
    Ok(chosen)
}

fn run(cli: Cli, prefixed: Option<String>) -> Result<u8> {
    if let Some(tenant) = &cli.tenant {
        croft_api::validate_name(tenant).map_err(|e| anyhow!("tenant {e}"))?;
    }
    if let Command::Remote { command } = cli.command {
        remote::run(command)?;
        return Ok(0);
    }
    let remotes = remote::Remotes::load()?;
    let chosen = match (cli.remote, prefixed) {
        (Some(a), Some(b)) if a != b => bail!("--remote {a} and {b}:… name two remotes"),
        (Some(r), _) | (None, Some(r)) => r,
        (None, None) => remotes.default.clone().unwrap_or_else(|| remote::LOCAL.into()),
    };
    let via = files::Via {
        socket: cli.socket.clone(),
        remote: chosen.clone(),
        tenant: cli.tenant.clone(),
    };
    let client = remotes.client(&chosen, cli.socket)?.with_tenant(cli.tenant);
    match cli.command {
        Command::Launch {
            image,
            name,
            cpu,
            memory,
            processes,
            disk,
            config,
            no_start,
            ipv4,
            ipv6,
            ssh_keys,
            user_data,
            plan,
            network,
            mac,
        } => {
            croft_api::validate_name(&name)?;
            if let Some(plan) = &plan {
                croft_api::validate_name(plan).map_err(|e| anyhow!("plan {e}"))?;
            }
            let mut cfg = BTreeMap::new();
            for s in &config {
                let (k, v) = parse_assignment(s)?;
                cfg.insert(k, v);
            }
            for (key, value) in [
                (LIMITS_CPU, cpu),
                (LIMITS_MEMORY, memory),
                (LIMITS_PROCESSES, processes),
                (LIMITS_DISK, disk),
            ] {
                if let Some(v) = value {
                    cfg.insert(key.to_string(), v);
                }
            }
            croft_api::InstanceConfig::parse(&cfg)?;
            let mut keys = Vec::new();
            for file in &ssh_keys {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| anyhow!("cannot read SSH key {}: {e}", file.display()))?;
                keys.extend(
                    croft_api::parse_ssh_keys(&text)
                        .map_err(|e| anyhow!("SSH key {}: {e}", file.display()))?,
                );
            }
            let user_data = user_data.as_deref().map(read_user_data).transpose()?;
            let job: Job = client.launch(&LaunchRequest {
                name: name.clone(),
                image,
                config: cfg,
                no_start,
                ipv4,
                ipv6,
                ssh_keys: keys,
                user_data,
                plan,
                network,
                mac,
            })?;
            println!("Creating {name}");
            let job = wait_job(&client, &job)?;
            job_succeeded(&format!("launch of {name}"), job)?;
            println!("{} {name}", if no_start { "Created" } else { "Started" });
        }
        Command::List { all_tenants, format } => {
            let list = if all_tenants {
                client.all_instances()?
            } else {
                client.instances()?
            };
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let mut header = vec!["NAME", "STATUS", "IMAGE", "IPV4", "CPU", "MEMORY", "PROCESSES"];
                if all_tenants {
                    header.insert(0, "TENANT");
                }
                print_table(
                    &header,
                    list.iter().map(|i| {
                        let tenant = all_tenants.then(|| i.tenant.clone());
                        tenant
                            .into_iter()
                            .chain([
                                i.name.clone(),
                                match i.rescue {
                                    Some(_) => format!("{} (rescue)", i.status),
                                    None => i.status.to_string(),
                                },
                                i.image.clone(),
                                i.nic
                                    .as_ref()
                                    .and_then(|n| n.ipv4.clone())
                                    .unwrap_or_else(|| "-".into()),
                                i.config.get(LIMITS_CPU).cloned().unwrap_or_else(|| "-".into()),
                                memory_column(i),
                                i.usage
                                    .as_ref()
                                    .map(|u| u.processes.to_string())
                                    .unwrap_or_else(|| "-".into()),
                            ])
                            .collect()
                    }),
                );
            }
        }
        Command::Info {
            name,
            host: true,
            format,
        } => {
            let host = client.host_details(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&host)?);
            } else {
                println!("Name:        {}", host.name);
                println!("UUID:        {}", host.uuid);
                println!("Backend:     {}", host.backend);
                println!(
                    "Id range:    {}-{}",
                    host.uid_base,
                    u64::from(host.uid_base) + u64::from(host.id_count) - 1
                );
                let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                println!("Init PID:    {}", dash(host.init_pid.map(|p| p.to_string())));
                println!("Socket:      {}", dash(host.control_socket));
            }
        }
        Command::Info {
            name,
            host: false,
            format,
        } => {
            let i = client.instance(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                // How it sits on the host is the admin's to see; a tenant's
                // view goes without it.
                let host = match client.host_details(path_name(&name)?) {
                    Ok(host) => Some(host),
                    Err(e) if e.status() == Some(403) => None,
                    Err(e) => return Err(e.into()),
                };
                print_info(&i, host.as_ref());
            }
        }
        Command::Start { name, rescue, wait } => {
            start(&client, &name, StateAction::Start, (false, None), rescue, wait)?;
        }
        Command::Rebuild {
            name,
            image,
            user_data,
            yes,
        } => {
            terminal::confirm(
                &format!("Rebuilding {name} from {image} replaces its disk: its files are lost"),
                &name,
                yes,
            )?;
            let user_data = user_data.as_deref().map(read_user_data).transpose()?;
            let job: Job = client.rebuild(
                path_name(&name)?,
                &croft_api::RebuildRequest {
                    image: image.clone(),
                    user_data,
                },
            )?;
            println!("Rebuilding {name} from {image}");
            let job = wait_job(&client, &job)?;
            job_succeeded(&format!("rebuild of {name}"), job)?;
            println!("Rebuilt {name} from {image}");
        }
        Command::Stop { name, force, timeout } => {
            state(&client, &name, StateAction::Stop, force, timeout)?;
            println!("Stopped {name}");
        }
        Command::Restart {
            name,
            force,
            timeout,
            rescue,
            wait,
        } => {
            start(
                &client,
                &name,
                StateAction::Restart,
                (force, timeout),
                rescue,
                wait,
            )?;
        }
        Command::Delete { name, force, yes } => {
            terminal::confirm(
                &format!("Deleting {name} deletes its disk and snapshots"),
                &name,
                yes,
            )?;
            client.delete_instance(path_name(&name)?, force)?;
            println!("Deleted {name}");
        }
        Command::Exec {
            name,
            tty,
            env,
            cwd,
            user,
            command,
        } => return session::exec(&client, &name, tty, env, cwd, user, command),
        Command::Console {
            name,
            show_log: true,
            raw,
        } => {
            let log = client.console_log(path_name(&name)?)?.log;
            let log = log.as_str();
            if raw {
                print!("{log}");
            } else {
                print!("{}", terminal::printable(log));
            }
        }
        Command::Console {
            name,
            show_log: false,
            ..
        } => session::console(&client, &name)?,
        Command::Config { command } => config(&client, command)?,
        Command::Snapshot { command } => snapshots::run(&client, command)?,
        Command::File { command } => files::run(&via, command)?,
        Command::Password { name, generate } => {
            let password = if generate {
                None
            } else {
                Some(terminal::read_secret("New root password: ")?)
            };
            match client.set_password(path_name(&name)?, password)? {
                Some(generated) => println!("Root password of {name} (shown once): {generated}"),
                None => println!("Set root's password of {name}"),
            }
        }
        Command::SshKey { command } => match command {
            SshKeyCommand::Add { name, file } => {
                let text = if file.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())
                        .map_err(|e| anyhow!("cannot read the key from stdin: {e}"))?
                } else {
                    std::fs::read_to_string(&file)
                        .map_err(|e| anyhow!("cannot read SSH key {}: {e}", file.display()))?
                };
                let keys = croft_api::parse_ssh_keys(&text)
                    .map_err(|e| anyhow!("SSH key {}: {e}", file.display()))?;
                for key in &keys {
                    client.add_ssh_key(path_name(&name)?, key)?;
                }
                println!("Added {} key(s) to root of {name}", keys.len());
            }
            SshKeyCommand::Remove { name, number } => {
                client.remove_ssh_key(path_name(&name)?, number)?;
                println!("Removed key {number} from root of {name}");
            }
            SshKeyCommand::List { name } => {
                for (i, key) in client.ssh_keys(path_name(&name)?)?.iter().enumerate() {
                    println!("{:>3}  {key}", i + 1);
                }
            }
        },
        Command::Rename { name, new_name } => {
            croft_api::validate_name(&new_name)?;
            client.rename(path_name(&name)?, &new_name)?;
            println!("Renamed {name} to {new_name}");
        }
        Command::Copy { source, name } => {
            let (src, snap) = match source.split_once('/') {
                Some((src, snap)) => (src.to_string(), Some(snap.to_string())),
                None => (source.clone(), None),
            };
            croft_api::validate_name(&name)?;
            client.copy(
                path_name(&src)?,
                &croft_api::CopyRequest {
                    name: name.clone(),
                    snapshot: snap,
                },
            )?;
            println!("Copied {source} to {name} (stopped; croft start {name})");
        }
        Command::Publish {
            source,
            image,
            description,
        } => {
            let (vps, snapshot) = match source.split_once('/') {
                Some((vps, snap)) => (vps.to_string(), Some(snap.to_string())),
                None => (source.clone(), None),
            };
            croft_api::validate_image_name(&image).map_err(|e| anyhow!(e))?;
            let published = client.publish(
                path_name(&vps)?,
                &croft_api::PublishRequest {
                    image,
                    snapshot,
                    description,
                },
            )?;
            println!(
                "Published {source} as image {} ({}; croft launch {0} NAME)",
                published.name,
                published
                    .size_bytes
                    .map(format_size)
                    .unwrap_or_else(|| "size unknown".into())
            );
        }
        Command::Storage {
            command: StorageCommand::List { format },
        } => {
            let pools = client.storage_pools()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&pools)?);
            } else {
                print_table(
                    &["NAME", "DRIVER", "SIZE", "USED", "FREE", "VPSES", "SOURCE"],
                    pools.iter().map(|p| {
                        vec![
                            p.name.clone(),
                            p.driver.clone(),
                            format_size(p.size_bytes),
                            format_size(p.used_bytes),
                            format_size(p.free_bytes),
                            p.volumes.to_string(),
                            p.source.clone(),
                        ]
                    }),
                );
            }
        }
        Command::Network { command } => network::network(&client, command)?,
        Command::Port { command } => network::port(&client, command)?,
        Command::Address { command } => network::address(&client, command)?,
        Command::Nic { command } => network::nic(&client, command)?,
        Command::Firewall { command } => network::firewall(&client, command)?,
        Command::Tenant { command } => access::tenant(&client, command)?,
        Command::Token { command } => access::token(&client, command)?,
        Command::User { command } => access::user(&client, command)?,
        Command::Job { command } => jobs::run(&client, command)?,
        Command::Trust { command } => access::trust(&client, command)?,
        Command::Plan { command } => access::plan(&client, command)?,
        Command::Whoami { format } => access::whoami(&client, format)?,
        Command::Monitor { count, format } => {
            let mut left = count;
            client.monitor(|e| {
                if format == Format::Json {
                    println!("{}", serde_json::to_string(&e).unwrap_or_default());
                } else {
                    let detail = e.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
                    println!("{:.3} {} {} {}{detail}", e.at, e.tenant, e.action, e.target);
                }
                let _ = std::io::Write::flush(&mut std::io::stdout());
                left = left.map(|n| n.saturating_sub(1));
                left != Some(0)
            })?;
        }
        Command::Audit { limit, format } => access::audit(&client, limit, format)?,
        Command::Traffic { name, format } => show_list(
            format,
            &client.traffic(path_name(&name)?)?,
            &["MONTH", "RECEIVED", "SENT", "PACKETS IN", "PACKETS OUT"],
            |t| {
                vec![
                    t.month.clone(),
                    format_size(t.received_bytes),
                    format_size(t.sent_bytes),
                    t.received_packets.to_string(),
                    t.sent_packets.to_string(),
                ]
            },
        )?,
        Command::Remote { .. } => unreachable!("handled above"),
        Command::Server {
            command: ServerCommand::Info { format },
        } => {
            let info = client.server_info()?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                println!("API:            {}", info.api_version);
                println!("Version:        {}", info.server_version);
                println!("Backend:        {}", info.backend);
                println!("cgroups:        {}", dash(info.cgroup_version));
                println!("HTTPS address:  {}", dash(info.https_address));
                println!("Fingerprint:    {}", dash(info.certificate_fingerprint));
            }
        }
        Command::Storage {
            command: StorageCommand::Info { name, format },
        } => {
            let p = client.storage_pool(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!("Name:    {}", p.name);
                println!("Driver:  {}", p.driver);
                println!("Source:  {}", p.source);
                println!("Mount:   {}", p.mount);
                println!("Size:    {}", format_size(p.size_bytes));
                println!("Used:    {}", format_size(p.used_bytes));
                println!("Free:    {}", format_size(p.free_bytes));
                println!("VPSes:   {}", p.volumes);
            }
        }
        Command::Image { command } => {
            let socket = via.socket.clone();
            images::run(&client, command, &|name| remotes.client(name, socket.clone()))?
        }
    }
    Ok(0)
}

/// A user-data script from a file, checked.
fn read_user_data(file: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow!("cannot read user-data {}: {e}", file.display()))?;
    croft_api::validate_user_data(&text).map_err(|e| anyhow!("user-data {}: {e}", file.display()))?;
    Ok(text)
}

/// An error unless the job that ended succeeded: `what` failed, with its
/// error, or was cancelled.
pub(crate) fn job_succeeded(what: &str, job: Job) -> Result<()> {
    match job.status {
        JobStatus::Success => Ok(()),
        JobStatus::Cancelled => bail!("{what} was cancelled; what it had done is undone"),
        _ => bail!("{what} failed: {}", job.error.unwrap_or_default()),
    }
}

/// Wait for a job; on a terminal, show its progress as a bar.
pub(crate) fn wait_job(client: &Client, job: &Job) -> Result<Job> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        loop {
            let j = client.wait_job(&job.id, 30)?;
            if j.status != JobStatus::Running {
                return Ok(j);
            }
        }
    }
    let bar = indicatif::ProgressBar::new(100);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos:>3}% {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    loop {
        let j = client.job(&job.id)?;
        bar.set_position(j.progress.into());
        bar.set_message(j.message.clone().unwrap_or_default());
        if j.status != JobStatus::Running {
            bar.finish_and_clear();
            return Ok(j);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn state(client: &Client, name: &str, action: StateAction, force: bool, timeout: Option<u64>) -> Result<()> {
    client.change_state(
        path_name(name)?,
        &StateRequest {
            action,
            force,
            timeout,
            rescue: false,
            rescue_image: None,
            wait: false,
            wait_timeout: None,
        },
    )?;
    Ok(())
}

/// Start or restart VPS `name` (a restart's stop `(force, timeout)`),
/// and say how it came up.
fn start(
    client: &Client,
    name: &str,
    action: StateAction,
    (force, timeout): (bool, Option<u64>),
    rescue: RescueArgs,
    wait: WaitArgs,
) -> Result<()> {
    let i: Instance = client.change_state(
        path_name(name)?,
        &StateRequest {
            action,
            force,
            timeout,
            rescue: rescue.rescue,
            rescue_image: rescue.rescue_image,
            wait: wait.wait,
            wait_timeout: wait.wait_timeout,
        },
    )?;
    let done = if action == StateAction::Restart {
        "Restarted"
    } else {
        "Started"
    };
    match &i.rescue {
        Some(image) => {
            println!("{done} {name} in rescue mode ({image}); its disk is at /mnt (croft console {name})")
        }
        None => println!("{done} {name}"),
    }
    Ok(())
}

/// `--rescue`: a rescue system instead of the VPS's own disk.
#[derive(clap::Args)]
struct RescueArgs {
    /// Boot a rescue system instead, with the VPS's disk at /mnt (reach it
    /// with croft console or croft exec; a normal start boots the disk).
    #[arg(long)]
    rescue: bool,
    /// The rescue system's image (default: croftd's rescue_image, busybox).
    #[arg(long, value_name = "IMAGE", requires = "rescue")]
    rescue_image: Option<String>,
}

/// `--wait`: until the VPS has booted.
#[derive(clap::Args)]
struct WaitArgs {
    /// Return once it has booted (systemd reports running), or fail
    /// saying what it reports instead.
    #[arg(long)]
    wait: bool,
    /// Seconds --wait waits at most (default 120).
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    wait_timeout: Option<u64>,
}

fn memory_column(i: &Instance) -> String {
    let limit = i
        .config
        .get(LIMITS_MEMORY)
        .map(|l| croft_api::parse_size(l).map(format_size).unwrap_or(l.clone()));
    match (&i.usage, limit) {
        (Some(u), Some(limit)) => format!("{}/{}", format_size(u.memory_bytes), limit),
        (Some(u), None) => format_size(u.memory_bytes),
        (None, Some(limit)) => format!("-/{limit}"),
        (None, None) => "-".into(),
    }
}

/// A list as JSON, or as a table of `header` with a row of each item.
pub(crate) fn show_list<T: serde::Serialize>(
    format: Format,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(items)?);
    } else {
        print_table(header, items.iter().map(row));
    }
    Ok(())
}

pub(crate) fn print_table(header: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

fn print_info(i: &Instance, host: Option<&croft_api::HostDetails>) {
    println!("Name:        {}", i.name);
    if i.tenant != "default" {
        println!("Tenant:      {}", i.tenant);
    }
    println!("UUID:        {}", i.uuid);
    match &i.rescue {
        Some(image) => println!("Status:      {} (rescue system {image}, disk at /mnt)", i.status),
        None => println!("Status:      {}", i.status),
    }
    println!("Image:       {}", i.image);
    println!("Created:     {}", i.created_at);
    if let Some(host) = host {
        println!(
            "Id range:    {}-{}",
            host.uid_base,
            u64::from(host.uid_base) + u64::from(host.id_count) - 1
        );
        if let Some(pid) = host.init_pid {
            println!("Init PID:    {pid}");
        }
    }
    if let Some(e) = &i.last_exit {
        println!("Last exit:   {e}");
    }
    // An older croftd names only the first.
    let nics = if i.nics.is_empty() {
        i.nic.iter().collect::<Vec<_>>()
    } else {
        i.nics.iter().collect()
    };
    for n in nics {
        println!(
            "Network:     {} ({}, MAC {}, host side {})",
            n.network, n.name, n.mac, n.host_interface
        );
        for addr in [&n.ipv4, &n.ipv6].into_iter().flatten() {
            println!("  Address:   {addr}");
        }
        for addr in &n.extra {
            println!("  Address:   {addr} (additional)");
        }
    }
    for f in &i.forwards {
        println!(
            "Forward:     host port {}/{} -> {}",
            f.host_port, f.protocol, f.vps_port
        );
    }
    for key in &i.ssh_keys {
        let mut parts = key.split_whitespace();
        let (kind, blob, comment) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.collect::<Vec<_>>().join(" "),
        );
        let tail: String = blob
            .chars()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        println!("SSH key:     {kind} ...{tail} {comment}");
    }
    if let Some(u) = &i.user_data {
        println!("User data:   {u}");
    }
    if let Some(enforced) = &i.disk_io_enforced {
        println!("Disk I/O:    enforced here: {enforced}");
    }
    if let Some(fw) = &i.firewall {
        println!(
            "Firewall:    default in {}, out {}, {} rule(s)",
            fw.default,
            fw.default_out,
            fw.rules.len()
        );
        for (n, r) in fw.rules.iter().enumerate() {
            let port = r.port.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
            let from = r
                .source
                .as_deref()
                .map(|s| format!(" from {s}"))
                .unwrap_or_default();
            let to = r
                .destination
                .as_deref()
                .map(|d| format!(" to {d}"))
                .unwrap_or_default();
            println!(
                "  {}. {} {} {}{port}{from}{to}",
                n + 1,
                r.direction,
                r.action,
                r.protocol
            );
        }
        if !fw.provider_blocked.is_empty() {
            println!(
                "  blocked by the provider, outbound: {}",
                fw.provider_blocked.join(", ")
            );
        }
    }
    if let Some(t) = &i.traffic {
        let quota = match t.quota_bytes {
            Some(q) => format!(
                ", {} of {} transfer{}",
                format_size(t.month.received_bytes + t.month.sent_bytes),
                format_size(q),
                if t.throttled {
                    " (past it: throttled)"
                } else if t.over_quota {
                    " (past it)"
                } else {
                    ""
                }
            ),
            None => String::new(),
        };
        println!(
            "Traffic:     {}: {} received, {} sent{quota}",
            t.month.month,
            format_size(t.month.received_bytes),
            format_size(t.month.sent_bytes)
        );
    }
    if let Some(d) = i.disk_bytes {
        let limit = i
            .config
            .get(LIMITS_DISK)
            .map(|l| format!(" of {l}"))
            .unwrap_or_default();
        println!("Disk:        {}{limit}", format_size(d));
    }
    if let Some(u) = &i.usage {
        println!("Usage:");
        let limit = u
            .memory_limit_bytes
            .map(|l| format!(" of {}", format_size(l)))
            .unwrap_or_default();
        println!("  Memory:    {}{limit}", format_size(u.memory_bytes));
        println!("  CPU time:  {:.2}s", u.cpu_usage_ns as f64 / 1e9);
        println!("  Processes: {}", u.processes);
        println!("  OOM kills: {}", u.oom_kills);
    }
    if !i.config.is_empty() {
        println!("Config:");
        for (k, v) in &i.config {
            println!("  {k}={v}");
        }
    }
}

fn config(client: &Client, command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Set { name, settings } => {
            let mut set = BTreeMap::new();
            for s in &settings {
                let (k, v) = parse_assignment(s)?;
                set.insert(k, v);
            }
            client.patch_config(path_name(&name)?, &ConfigPatch { set, unset: vec![] })?;
        }
        ConfigCommand::Unset { name, keys } => {
            client.patch_config(
                path_name(&name)?,
                &ConfigPatch {
                    set: BTreeMap::new(),
                    unset: keys,
                },
            )?;
        }
        ConfigCommand::Show { name, format } => {
            let i = client.instance(path_name(&name)?)?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&i.config)?);
            } else {
                for (k, v) in &i.config {
                    println!("{k}={v}");
                }
            }
        }
        ConfigCommand::Keys => {
            print_table(
                &["KEY", "DESCRIPTION"],
                croft_api::config::KEYS
                    .iter()
                    .map(|(k, d)| vec![k.to_string(), d.to_string()]),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every positional argument of every command says what it is in
    /// `--help` (`croft launch --help` once listed `<IMAGE> <NAME>` bare).
    #[test]
    fn every_positional_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_positionals() {
                if arg.get_help().is_none() {
                    missing.push(format!("{path} <{}>", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "croft", &mut missing);
        assert!(
            missing.is_empty(),
            "positional arguments without help: {missing:#?}"
        );
    }
}
