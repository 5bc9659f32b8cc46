//! croft: the command line for croftd.
//!
//! Every command is an API call on croftd's unix socket, except the data
//! path of `exec` and `console`: once croftd has confirmed the VPS runs and
//! named its supervisor's socket, the CLI hands its own terminal to the
//! supervisor (descriptor passing), so no process copies the bytes of a
//! non-interactive exec.

mod client;
mod network;
mod relay;
mod terminal;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand, ValueEnum};
use client::Client;
use croft_api::config::{parse_assignment, LIMITS_CPU, LIMITS_DISK, LIMITS_MEMORY, LIMITS_PROCESSES};
use croft_api::{
    format_size, ConfigPatch, Image, Instance, Job, JobStatus, LaunchRequest, StateAction, StateRequest,
    Status,
};
use croft_host::proto::{Conn, Reply, Request};
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
    #[arg(long, global = true, env = "CROFT_SOCKET", default_value = client::DEFAULT_SOCKET)]
    socket: PathBuf,
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
        image: String,
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
    },
    /// List VPSes.
    #[command(alias = "ls")]
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one VPS.
    Info {
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Start a stopped VPS.
    Start {
        name: String,
        /// Boot a rescue system instead, with the VPS's disk at /mnt (reach it
        /// with croft console or croft exec; a normal start boots the disk).
        #[arg(long)]
        rescue: bool,
        /// The rescue system's image (default: croftd's rescue_image, busybox).
        #[arg(long, value_name = "IMAGE", requires = "rescue")]
        rescue_image: Option<String>,
    },
    /// Shut a VPS down (init is asked first, then killed after the timeout).
    Stop {
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
        name: String,
        #[arg(long, short)]
        force: bool,
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Delete a VPS and its files.
    #[command(alias = "rm")]
    Delete {
        name: String,
        /// Stop it first if it runs.
        #[arg(long, short)]
        force: bool,
    },
    /// Run a command inside a VPS.
    Exec {
        name: String,
        /// Allocate a pty (interactive programs, shells).
        #[arg(short = 't', long = "tty")]
        tty: bool,
        /// Extra environment, NAME=value (repeatable).
        #[arg(long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Working directory inside the VPS.
        #[arg(long)]
        cwd: Option<String>,
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
        command: ImageCommand,
    },
    /// Snapshots of a VPS's disk.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Reinstall a VPS's disk from an image, keeping its name, addresses, port
    /// forwards, firewall, limits, SSH keys and snapshots (a running VPS is
    /// stopped and started again).
    Rebuild {
        name: String,
        image: String,
        /// A new first-boot script (the old one does not run again).
        #[arg(long, value_name = "FILE")]
        user_data: Option<PathBuf>,
    },
    /// Copy a VPS (or one of its snapshots, SRC/SNAP) into a new, stopped VPS
    /// with its own identity.
    Copy { source: String, name: String },
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
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Set keys (limits apply live to a running VPS).
    Set {
        name: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Remove keys (back to their defaults / no limit).
    Unset {
        name: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show the configuration.
    Show {
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// List the keys croft knows.
    Keys,
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Take a read-only snapshot (default name: the first free snapN).
    Create { name: String, snapshot: Option<String> },
    /// List a VPS's snapshots.
    List {
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Make a snapshot the VPS's disk again.
    Restore {
        name: String,
        snapshot: String,
        /// Stop a running VPS first and start it again afterwards.
        #[arg(long)]
        stop: bool,
    },
    /// Delete a snapshot.
    Delete { name: String, snapshot: String },
    /// Write a snapshot to FILE as a btrfs send stream: all of it, or with
    /// --since only what changed since an older snapshot (btrfs pools).
    Export {
        name: String,
        snapshot: String,
        file: PathBuf,
        /// Send only the changes since this snapshot of the same VPS (the
        /// receiving VPS must have imported it already).
        #[arg(long)]
        since: Option<String>,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Receive a stream written by `croft snapshot export` (on this host or
    /// another) as a new snapshot of a VPS; restore or copy it from there.
    Import {
        name: String,
        file: PathBuf,
        /// Name of the new snapshot (default: the name it was exported with).
        #[arg(long = "name")]
        snapshot: Option<String>,
    },
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
        #[arg(default_value = "default")]
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// List the images croft can launch.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show one image: distribution, release, architecture, size, digest.
    Info {
        name: String,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Build an image croft knows how to build (debian/bookworm, ...) now
    /// rather than on its first launch.
    Build { name: String },
    /// Import a root filesystem tarball (.tar, .tar.gz or .tar.zst) as an image.
    Import { file: PathBuf, name: String },
    /// Export an image as a .tar.gz (prints its sha256).
    Export {
        name: String,
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Delete an image (VPSes launched from it keep their disks).
    Delete { name: String },
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`croft list | head`) like other Unix
    // tools, instead of panicking in println!.
    // SAFETY: setting a signal disposition to its default at start-up,
    // before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = match Cli::try_parse() {
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
    match run(cli) {
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

fn run(cli: Cli) -> Result<u8> {
    let client = Client::new(cli.socket)?;
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
        } => {
            croft_api::validate_name(&name)?;
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
            let job: Job = client.post(
                "/1.0/instances",
                &LaunchRequest {
                    name: name.clone(),
                    image,
                    config: cfg,
                    no_start,
                    ipv4,
                    ipv6,
                    ssh_keys: keys,
                    user_data,
                },
            )?;
            println!("Creating {name}");
            let job = wait_job(&client, &job)?;
            if job.status != JobStatus::Success {
                bail!("launch of {name} failed: {}", job.error.unwrap_or_default());
            }
            println!("{} {name}", if no_start { "Created" } else { "Started" });
        }
        Command::List { format } => {
            let list: Vec<Instance> = client.get("/1.0/instances")?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_table(
                    &[
                        "NAME",
                        "STATUS",
                        "IMAGE",
                        "IPV4",
                        "CPU",
                        "MEMORY",
                        "PROCESSES",
                        "INIT PID",
                    ],
                    list.iter().map(|i| {
                        vec![
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
                            i.init_pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                        ]
                    }),
                );
            }
        }
        Command::Info { name, format } => {
            let i: Instance = client.get(&format!("/1.0/instances/{}", path_name(&name)?))?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                print_info(&i);
            }
        }
        Command::Start {
            name,
            rescue,
            rescue_image,
        } => {
            let i: Instance = client.post(
                &format!("/1.0/instances/{}/state", path_name(&name)?),
                &StateRequest {
                    action: StateAction::Start,
                    force: false,
                    timeout: None,
                    rescue,
                    rescue_image,
                },
            )?;
            match &i.rescue {
                Some(image) => println!(
                    "Started {name} in rescue mode ({image}); its disk is at /mnt (croft console {name})"
                ),
                None => println!("Started {name}"),
            }
        }
        Command::Rebuild {
            name,
            image,
            user_data,
        } => {
            let user_data = user_data.as_deref().map(read_user_data).transpose()?;
            let job: Job = client.post(
                &format!("/1.0/instances/{}/rebuild", path_name(&name)?),
                &croft_api::RebuildRequest {
                    image: image.clone(),
                    user_data,
                },
            )?;
            println!("Rebuilding {name} from {image}");
            let job = wait_job(&client, &job)?;
            if job.status != JobStatus::Success {
                bail!("rebuild of {name} failed: {}", job.error.unwrap_or_default());
            }
            println!("Rebuilt {name} from {image}");
        }
        Command::Stop { name, force, timeout } => {
            state(&client, &name, StateAction::Stop, force, timeout)?;
            println!("Stopped {name}");
        }
        Command::Restart { name, force, timeout } => {
            state(&client, &name, StateAction::Restart, force, timeout)?;
            println!("Restarted {name}");
        }
        Command::Delete { name, force } => {
            client.delete(&format!("/1.0/instances/{}?force={force}", path_name(&name)?))?;
            println!("Deleted {name}");
        }
        Command::Exec {
            name,
            tty,
            env,
            cwd,
            command,
        } => return exec(&client, &name, tty, env, cwd, command),
        Command::Console {
            name,
            show_log: true,
            raw,
        } => {
            let log: serde_json::Value =
                client.get(&format!("/1.0/instances/{}/console", path_name(&name)?))?;
            let log = log["log"].as_str().unwrap_or_default();
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
        } => console(&client, &name)?,
        Command::Config { command } => config(&client, command)?,
        Command::Snapshot { command } => snapshot(&client, command)?,
        Command::Copy { source, name } => {
            let (src, snap) = match source.split_once('/') {
                Some((src, snap)) => (src.to_string(), Some(snap.to_string())),
                None => (source.clone(), None),
            };
            croft_api::validate_name(&name)?;
            let _: Instance = client.post(
                &format!("/1.0/instances/{}/copy", path_name(&src)?),
                &croft_api::CopyRequest {
                    name: name.clone(),
                    snapshot: snap,
                },
            )?;
            println!("Copied {source} to {name} (stopped; croft start {name})");
        }
        Command::Storage {
            command: StorageCommand::List { format },
        } => {
            let pools: Vec<serde_json::Value> = client.get("/1.0/storage-pools")?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&pools)?);
            } else {
                print_table(
                    &["NAME", "DRIVER", "SIZE", "USED", "FREE", "VPSES", "SOURCE"],
                    pools.iter().map(|p| {
                        let size = |k: &str| format_size(p[k].as_u64().unwrap_or(0));
                        vec![
                            p["name"].as_str().unwrap_or("").to_string(),
                            p["driver"].as_str().unwrap_or("").to_string(),
                            size("size_bytes"),
                            size("used_bytes"),
                            size("free_bytes"),
                            p["volumes"].to_string(),
                            p["source"].as_str().unwrap_or("").to_string(),
                        ]
                    }),
                );
            }
        }
        Command::Network { command } => network::network(&client, command)?,
        Command::Port { command } => network::port(&client, command)?,
        Command::Firewall { command } => network::firewall(&client, command)?,
        Command::Storage {
            command: StorageCommand::Info { name, format },
        } => {
            let p: serde_json::Value = client.get(&format!("/1.0/storage-pools/{}", path_name(&name)?))?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                let size = |k: &str| format_size(p[k].as_u64().unwrap_or(0));
                println!("Name:    {}", p["name"].as_str().unwrap_or(""));
                println!("Driver:  {}", p["driver"].as_str().unwrap_or(""));
                println!("Source:  {}", p["source"].as_str().unwrap_or(""));
                println!("Mount:   {}", p["mount"].as_str().unwrap_or(""));
                println!("Size:    {}", size("size_bytes"));
                println!("Used:    {}", size("used_bytes"));
                println!("Free:    {}", size("free_bytes"));
                println!("VPSes:   {}", p["volumes"]);
            }
        }
        Command::Image { command } => image(&client, command)?,
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

/// Wait for a job; on a terminal, show its progress as a bar.
fn wait_job(client: &Client, job: &Job) -> Result<Job> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        loop {
            let j: Job = client.get(&format!("/1.0/jobs/{}/wait?timeout=30", job.id))?;
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
        let j: Job = client.get(&format!("/1.0/jobs/{}", job.id))?;
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
    let _: Instance = client.post(
        &format!("/1.0/instances/{}/state", path_name(name)?),
        &StateRequest {
            action,
            force,
            timeout,
            rescue: false,
            rescue_image: None,
        },
    )?;
    Ok(())
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

fn print_info(i: &Instance) {
    println!("Name:        {}", i.name);
    match &i.rescue {
        Some(image) => println!("Status:      {} (rescue system {image}, disk at /mnt)", i.status),
        None => println!("Status:      {}", i.status),
    }
    println!("Image:       {}", i.image);
    println!("Created:     {}", i.created_at);
    println!("Id range:    {}-{}", i.uid_base, i.uid_base as u64 + 65535);
    if let Some(pid) = i.init_pid {
        println!("Init PID:    {pid}");
    }
    if let Some(e) = &i.last_exit {
        println!("Last exit:   {e}");
    }
    if let Some(n) = &i.nic {
        println!(
            "Network:     {} (eth0, MAC {}, host side {})",
            n.network, n.mac, n.host_interface
        );
        for addr in [&n.ipv4, &n.ipv6].into_iter().flatten() {
            println!("  Address:   {addr}");
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
    if let Some(fw) = &i.firewall {
        println!("Firewall:    default {}, {} rule(s)", fw.default, fw.rules.len());
        for (n, r) in fw.rules.iter().enumerate() {
            let port = r.port.as_deref().map(|p| format!(" {p}")).unwrap_or_default();
            let from = r
                .source
                .as_deref()
                .map(|s| format!(" from {s}"))
                .unwrap_or_default();
            println!("  {}. {} {}{port}{from}", n + 1, r.action, r.protocol);
        }
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

/// Ask croftd where the VPS's supervisor listens.
fn supervisor(client: &Client, name: &str) -> Result<Conn> {
    let i: Instance = client.get(&format!("/1.0/instances/{}/state", path_name(name)?))?;
    if i.status != Status::Running {
        bail!("VPS {name} is {}, not running", i.status);
    }
    let socket = i
        .supervisor_socket
        .ok_or_else(|| anyhow!("croftd did not name the supervisor of {name}"))?;
    Ok(Conn::connect(std::path::Path::new(&socket))?)
}

fn exec(
    client: &Client,
    name: &str,
    tty: bool,
    env: Vec<String>,
    cwd: Option<String>,
    args: Vec<String>,
) -> Result<u8> {
    for e in &env {
        if !e.contains('=') || e.starts_with('=') {
            bail!("invalid --env {e:?}: expected NAME=value");
        }
    }
    let conn = supervisor(client, name)?;
    let mut env = env;
    if tty {
        if let Ok(term) = std::env::var("TERM") {
            env.insert(0, format!("TERM={term}"));
        }
    }
    let req = Request::Exec {
        args,
        env,
        cwd,
        tty,
        window: if tty { terminal::window_size() } else { None },
    };
    if !tty {
        // Signals meant for the command (Ctrl+C, kill of this CLI) are
        // forwarded to it rather than ending only the CLI.
        let forward = terminal::ForwardedSignals::new()?;
        return match relay::exec(&conn, &req, &forward)? {
            Reply::Exited { code } => Ok(code.clamp(0, 255) as u8),
            Reply::Error { message } => bail!("{message}"),
            other => bail!("unexpected answer from the supervisor: {other:?}"),
        };
    }
    conn.send(&req, &[])?;
    let master = match conn.recv::<Reply>()? {
        (Reply::Pty, mut fds) if fds.len() == 1 => fds.remove(0),
        (Reply::Exited { code }, _) => return Ok(code.clamp(0, 255) as u8),
        (Reply::Error { message }, _) => bail!("{message}"),
        (other, _) => bail!("unexpected answer from the supervisor: {other:?}"),
    };
    let raw = terminal::RawMode::enter();
    let end = terminal::session(&master, &conn, None)?;
    drop(raw);
    match end {
        terminal::SessionEnd::Exited(code) => Ok(code.clamp(0, 255) as u8),
        terminal::SessionEnd::Detached => Ok(0),
        terminal::SessionEnd::Closed(why) => bail!("{why}"),
    }
}

/// Ctrl+a, as in screen and incus.
const DETACH_PREFIX: u8 = 0x01;

fn console(client: &Client, name: &str) -> Result<()> {
    let conn = supervisor(client, name)?;
    conn.send(&Request::Console, &[])?;
    let master = match conn.recv::<Reply>()? {
        (Reply::Console, mut fds) if fds.len() == 1 => fds.remove(0),
        (Reply::Error { message }, _) => bail!("{message}"),
        (other, _) => bail!("unexpected answer from the supervisor: {other:?}"),
    };
    eprintln!("Connected to the console of {name}. Detach with Ctrl+a q.\r");
    let raw = terminal::RawMode::enter();
    let end = terminal::session(&master, &conn, Some(DETACH_PREFIX))?;
    drop(raw);
    match end {
        terminal::SessionEnd::Closed(why) => eprintln!("\r\nConsole closed: {why}"),
        _ => eprintln!("\r\nDetached from {name}."),
    }
    Ok(())
}

/// An image name inside a URL path ('/' encoded).
fn image_path(name: &str) -> Result<String> {
    croft_api::validate_image_name(name).map_err(|e| anyhow!(e))?;
    Ok(name.replace('/', "%2F"))
}

/// "debian bookworm", as far as the image says.
fn os_name(i: &Image) -> String {
    match (&i.distro, &i.release) {
        (Some(d), Some(r)) => format!("{d} {r}"),
        (Some(d), None) => d.clone(),
        _ => "-".into(),
    }
}

fn image(client: &Client, command: ImageCommand) -> Result<()> {
    match command {
        ImageCommand::List { format } => {
            let images: Vec<Image> = client.get("/1.0/images")?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&images)?);
            } else {
                print_table(
                    &["NAME", "SOURCE", "AVAILABLE", "OS", "ARCH", "SIZE", "CREATED"],
                    images.iter().map(|i| {
                        vec![
                            i.name.clone(),
                            i.source.clone(),
                            if i.available {
                                "yes".into()
                            } else {
                                "no (built on launch)".into()
                            },
                            os_name(i),
                            i.arch.clone().unwrap_or_else(|| "-".into()),
                            i.size_bytes.map(format_size).unwrap_or_else(|| "-".into()),
                            i.created_at.clone().unwrap_or_else(|| "-".into()),
                        ]
                    }),
                );
            }
        }
        ImageCommand::Info { name, format } => {
            let i: Image = client.get(&format!("/1.0/images/{}", image_path(&name)?))?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                println!("Name:         {}", i.name);
                println!("Description:  {}", i.description);
                println!("Source:       {}", i.source);
                println!(
                    "Available:    {}",
                    if i.available {
                        "yes"
                    } else {
                        "no (built on first launch)"
                    }
                );
                println!("Distribution: {}", dash(&i.distro));
                println!("Release:      {}", dash(&i.release));
                println!("Architecture: {}", dash(&i.arch));
                println!(
                    "Size:         {}",
                    i.size_bytes.map(format_size).unwrap_or_else(|| "-".into())
                );
                println!("Created:      {}", dash(&i.created_at));
                println!("SHA-256:      {}", dash(&i.sha256));
            }
        }
        ImageCommand::Build { name } => {
            image_path(&name)?;
            let job: Job = client.post(
                "/1.0/images/build",
                &croft_api::BuildRequest { name: name.clone() },
            )?;
            let job = wait_job(client, &job)?;
            if job.status != JobStatus::Success {
                bail!("build of {name} failed: {}", job.error.unwrap_or_default());
            }
            println!("Image {name} is built");
        }
        ImageCommand::Import { file, name } => {
            image_path(&name)?;
            let file = std::fs::canonicalize(&file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let job: Job = client.post(
                "/1.0/images/import",
                &croft_api::ImportRequest {
                    name: name.clone(),
                    path: file.display().to_string(),
                },
            )?;
            let job = wait_job(client, &job)?;
            if job.status != JobStatus::Success {
                bail!("import of {name} failed: {}", job.error.unwrap_or_default());
            }
            println!("Imported {name}");
        }
        ImageCommand::Export { name, file, force } => {
            let file = absolute(file)?;
            let r: croft_api::ExportResult = client.post(
                &format!("/1.0/images/{}/export", image_path(&name)?),
                &croft_api::ExportRequest {
                    path: file.display().to_string(),
                    overwrite: force,
                },
            )?;
            println!("{}  {}", r.sha256, r.path);
        }
        ImageCommand::Delete { name } => {
            client.delete(&format!("/1.0/images/{}", image_path(&name)?))?;
            println!("Deleted image {name} (VPSes launched from it keep their own disks)");
        }
    }
    Ok(())
}

/// croftd reads and writes files by path, from its own working directory:
/// a relative path is the user's, so it is made absolute here.
fn absolute(file: PathBuf) -> Result<PathBuf> {
    Ok(if file.is_absolute() {
        file
    } else {
        std::env::current_dir()?.join(file)
    })
}

fn snapshot(client: &Client, command: SnapshotCommand) -> Result<()> {
    match command {
        SnapshotCommand::Create { name, snapshot } => {
            let snap: croft_api::Snapshot = client.post(
                &format!("/1.0/instances/{}/snapshots", path_name(&name)?),
                &croft_api::SnapshotRequest {
                    name: snapshot,
                    from_file: None,
                },
            )?;
            println!("Snapshot {}/{} taken", name, snap.name);
        }
        SnapshotCommand::Export {
            name,
            snapshot,
            file,
            since,
            force,
        } => {
            let r: croft_api::SnapshotExportResult = client.post(
                &format!(
                    "/1.0/instances/{}/snapshots/{}/export",
                    path_name(&name)?,
                    path_name(&snapshot)?
                ),
                &croft_api::SnapshotExportRequest {
                    path: absolute(file)?.display().to_string(),
                    since,
                    overwrite: force,
                },
            )?;
            match r.since {
                Some(since) => println!(
                    "Exported {name}/{snapshot} (changes since {since}) to {}: {}",
                    r.path,
                    format_size(r.size_bytes)
                ),
                None => println!(
                    "Exported {name}/{snapshot} to {}: {}",
                    r.path,
                    format_size(r.size_bytes)
                ),
            }
        }
        SnapshotCommand::Import { name, file, snapshot } => {
            let snap: croft_api::Snapshot = client.post(
                &format!("/1.0/instances/{}/snapshots", path_name(&name)?),
                &croft_api::SnapshotRequest {
                    name: snapshot,
                    from_file: Some(absolute(file)?.display().to_string()),
                },
            )?;
            println!("Imported snapshot {}/{}", name, snap.name);
        }
        SnapshotCommand::List { name, format } => {
            let snaps: Vec<croft_api::Snapshot> =
                client.get(&format!("/1.0/instances/{}/snapshots", path_name(&name)?))?;
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&snaps)?);
            } else {
                print_table(
                    &["NAME", "CREATED", "SIZE"],
                    snaps.iter().map(|s| {
                        vec![
                            s.name.clone(),
                            s.created_at.clone(),
                            s.size_bytes.map(format_size).unwrap_or_else(|| "-".into()),
                        ]
                    }),
                );
            }
        }
        SnapshotCommand::Restore { name, snapshot, stop } => {
            let _: Instance = client.post(
                &format!(
                    "/1.0/instances/{}/snapshots/{}/restore",
                    path_name(&name)?,
                    path_name(&snapshot)?
                ),
                &croft_api::RestoreRequest { stop },
            )?;
            println!("Restored {name} from {snapshot}");
        }
        SnapshotCommand::Delete { name, snapshot } => {
            client.delete(&format!(
                "/1.0/instances/{}/snapshots/{}",
                path_name(&name)?,
                path_name(&snapshot)?
            ))?;
            println!("Deleted snapshot {name}/{snapshot}");
        }
    }
    Ok(())
}

fn config(client: &Client, command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Set { name, settings } => {
            let mut set = BTreeMap::new();
            for s in &settings {
                let (k, v) = parse_assignment(s)?;
                set.insert(k, v);
            }
            let _: Instance = client.patch(
                &format!("/1.0/instances/{}/config", path_name(&name)?),
                &ConfigPatch { set, unset: vec![] },
            )?;
        }
        ConfigCommand::Unset { name, keys } => {
            let _: Instance = client.patch(
                &format!("/1.0/instances/{}/config", path_name(&name)?),
                &ConfigPatch {
                    set: BTreeMap::new(),
                    unset: keys,
                },
            )?;
        }
        ConfigCommand::Show { name, format } => {
            let i: Instance = client.get(&format!("/1.0/instances/{}", path_name(&name)?))?;
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
