//! The types croftd and the croft CLI exchange over the REST API (`/1.0/...`),
//! and the validation of every user-supplied value.
//!
//! Validation lives here, next to the types, so that the CLI can reject bad
//! input before a round trip and the daemon rejects the same input with the same
//! message when it arrives through the API from any other client.

pub mod access;
pub mod config;
pub mod exec;
pub mod names;
pub mod quota;
pub mod units;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use access::{
    AuditEntry, Certificate, Enroll, Event, JoinToken, PasswordChange, Tenant, TenantCreate, TenantFeatures,
    TenantImages, Ticket, TicketCreate, Token, TokenCreate, TokenCreated, Trust, TrustToken,
    TrustTokenCreate, TrustTokenCreated, User, UserCreate, WhoAmI,
};
pub use config::{ConfigError, InstanceConfig};
pub use names::{validate_name, NameError};
pub use quota::{Plan, PlanCreate, Quota, QuotaUsage, TenantUsage};
pub use units::{format_size, parse_cpu, parse_rate, parse_size, UnitError};

/// A value croft refuses, and why, in words for the user: what every
/// validator here returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl From<String> for ValueError {
    fn from(why: String) -> ValueError {
        ValueError(why)
    }
}

/// The API version prefix every route lives under.
pub const API_PREFIX: &str = "/1.0";

/// What a client sends to create (and start) a VPS.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    pub name: String,
    pub image: String,
    /// `key=value` configuration, the same keys as `croft config set`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Create without starting.
    #[serde(default)]
    pub no_start: bool,
    /// A fixed IPv4 address on the network (default: the next free one).
    #[serde(default)]
    pub ipv4: Option<String>,
    /// A fixed IPv6 address on the network (default: the next free one).
    #[serde(default)]
    pub ipv6: Option<String>,
    /// Public keys put in root's authorized_keys before the first boot
    /// (one key per entry, OpenSSH format).
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// A script run once at first boot (it must start with `#!`).
    #[serde(default)]
    pub user_data: Option<String>,
    /// A plan whose limits it gets (what `config` sets wins).
    #[serde(default)]
    pub plan: Option<String>,
    /// The network it joins (default: `default`).
    #[serde(default)]
    pub network: Option<String>,
    /// A fixed MAC address for its interface (default: a new random one),
    /// e.g. the virtual MAC a provider bound a failover address to.
    #[serde(default)]
    pub mac: Option<String>,
}

/// Largest user-data script accepted.
pub const MAX_USER_DATA: usize = 64 << 10;

/// The key types OpenSSH accepts in authorized_keys.
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The public keys in `text` (a .pub file or authorized_keys lines): one
/// `TYPE BASE64 [COMMENT]` per line, blank lines and `#` comments skipped.
/// Options (`command=...`) are refused: a key given to croft grants plain
/// root login, nothing else.
pub fn parse_ssh_keys(text: &str) -> Result<Vec<String>, ValueError> {
    let mut keys = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut parts = line.split_whitespace();
        let kind = parts.next().unwrap_or_default();
        let blob = parts.next().unwrap_or_default();
        let short: String = line.chars().take(40).collect();
        if !SSH_KEY_TYPES.contains(&kind) {
            return Err(ValueError(format!(
                "not an OpenSSH public key: {short:?} (expected e.g. ssh-ed25519 AAAA... comment)"
            )));
        }
        let base64 = blob.len() >= 16
            && blob
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=');
        if !base64 || line.chars().any(|c| c.is_control()) {
            return Err(ValueError(format!("malformed {kind} key: {short:?}")));
        }
        keys.push(line.to_string());
    }
    if keys.is_empty() {
        return Err(ValueError(
            "no public key found (expected e.g. ssh-ed25519 AAAA... comment)".into(),
        ));
    }
    Ok(keys)
}

/// Check a user-data script: a `#!` interpreter line, at most 64 KiB.
pub fn validate_user_data(script: &str) -> Result<(), ValueError> {
    if !script.starts_with("#!") {
        return Err(ValueError(
            "the user-data script must start with an interpreter line (#!/bin/sh)".into(),
        ));
    }
    if script.len() > MAX_USER_DATA {
        return Err(ValueError(format!(
            "the user-data script is larger than {} KiB",
            MAX_USER_DATA >> 10
        )));
    }
    Ok(())
}

/// A partial configuration change: keys to set, keys to unset.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// `POST /1.0/instances/{name}/state`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateRequest {
    pub action: StateAction,
    /// Kill at once instead of asking init to shut down.
    #[serde(default)]
    pub force: bool,
    /// Seconds to wait for a clean shutdown before killing.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Start a rescue system instead, with the VPS's disk at /mnt.
    #[serde(default)]
    pub rescue: bool,
    /// The rescue system's image (default: the daemon's `rescue_image`).
    #[serde(default)]
    pub rescue_image: Option<String>,
    /// With start or restart: answer once the VPS has booted (systemd
    /// reports `running`; at once for an init without systemd), or with a
    /// 409 saying what it reports instead, after at most `wait_timeout`
    /// seconds (default 120).
    #[serde(default)]
    pub wait: bool,
    #[serde(default)]
    pub wait_timeout: Option<u64>,
}

/// How long a start with `wait` waits for the boot by default.
pub const DEFAULT_BOOT_WAIT: u64 = 120;

/// `POST /1.0/instances/{name}/rebuild`: reinstall the disk from an image,
/// keeping everything else about the VPS.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RebuildRequest {
    pub image: String,
    /// A new first-boot script (the old one is not run again).
    #[serde(default)]
    pub user_data: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StateAction {
    Start,
    Stop,
    Restart,
}

/// The lifecycle state of a VPS as the daemon reports it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Stopped,
    Starting,
    Running,
    Stopping,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Deleting => "deleting",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One VPS as listed and shown: what its owner sees (how it sits on the
/// host is [`HostDetails`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    /// Its name, unique within its tenant.
    pub name: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Its identity for good (a name may be reused after a delete).
    pub uuid: String,
    pub image: String,
    pub status: Status,
    pub config: BTreeMap<String, String>,
    pub created_at: String,
    /// How the VPS last stopped, e.g. "init exited with status 0".
    pub last_exit: Option<String>,
    /// Live resource usage while running.
    pub usage: Option<Usage>,
    /// Bytes the VPS's disk uses, where the pool can tell: exact for one
    /// VPS, as of the pool's last commit (seconds old) in a list.
    #[serde(default)]
    pub disk_bytes: Option<u64>,
    /// The VPS's first network interface (`eth0`), if it has one.
    #[serde(default)]
    pub nic: Option<Nic>,
    /// All its interfaces, `eth0` first.
    #[serde(default)]
    pub nics: Vec<Nic>,
    /// Host ports forwarded to it.
    #[serde(default)]
    pub forwards: Vec<PortForward>,
    /// Its inbound firewall, when it has a network interface.
    #[serde(default)]
    pub firewall: Option<Firewall>,
    /// Public keys root was given.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// What became of its first-boot script, if it has one: "pending",
    /// "succeeded" or "failed with exit status N ...".
    #[serde(default)]
    pub user_data: Option<String>,
    /// While it runs a rescue system: that system's image (its own disk
    /// is at /mnt inside).
    #[serde(default)]
    pub rescue: Option<String>,
    /// What it sent and received this calendar month, against its
    /// transfer quota.
    #[serde(default)]
    pub traffic: Option<TrafficStatus>,
    /// With a disk I/O limit set: exactly what this host enforces of it.
    #[serde(default)]
    pub disk_io_enforced: Option<String>,
}

/// What a VPS sent and received in one calendar month (UTC), counted on
/// the host end of its interface (`GET /1.0/instances/{name}/traffic`:
/// every month, for billing).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Traffic {
    /// `2026-12`.
    pub month: String,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub sent_packets: u64,
}

/// This month's traffic of a VPS and where it stands against its quota.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrafficStatus {
    #[serde(flatten)]
    pub month: Traffic,
    /// `limits.transfer`: bytes sent and received allowed this month.
    pub quota_bytes: Option<u64>,
    /// Past the quota this month.
    pub over_quota: bool,
    /// Held to `limits.transfer.throttle` for being past it.
    pub throttled: bool,
}

/// `GET /1.0/instances/{name}/metrics?range=`: a VPS's usage over a span
/// of time, a point per step, oldest first, as graphs draw it: `at` holds
/// each point's time and every series a value per point (`null` where
/// nothing was recorded: the VPS was stopped, or the host cannot measure
/// that series).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UsageHistory {
    /// `hour`, `day`, `week`, `month` or `year`.
    pub range: String,
    /// Seconds each point covers: 60 for an hour or a day, 1800 for a
    /// week or a month, 21600 for a year.
    pub step_seconds: u64,
    /// Each point's period start, seconds since the epoch.
    pub at: Vec<i64>,
    pub series: Vec<UsageSeries>,
}

/// One series of a [`UsageHistory`]: over each point's period, the
/// average and the largest of the sampler's figures (taken every 10 s).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UsageSeries {
    /// `cpu_percent` (of one CPU), `memory_bytes`,
    /// `disk_read_bytes_per_second`, `disk_write_bytes_per_second`,
    /// `network_receive_bytes_per_second`,
    /// `network_transmit_bytes_per_second`, `processes`.
    pub name: String,
    pub avg: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
}

/// `GET /1.0/instances/{name}/host`: how a VPS sits on its host, for the
/// host's administrator (and local exec and console).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostDetails {
    pub name: String,
    pub tenant: String,
    pub uuid: String,
    /// What names it on the host: its disk volume, run directory and
    /// cgroup (its name in the default tenant, its UUID in others).
    pub key: String,
    /// What runs it: "container", or "sim" for the simulator.
    pub backend: String,
    /// First host uid (and gid) of its id range; root inside is this one.
    pub uid_base: u32,
    /// How many ids the range has.
    pub id_count: u32,
    /// Host pid of its init while it runs.
    pub init_pid: Option<i32>,
    /// Its supervisor's control socket while it runs (local clients
    /// attach exec and console through it).
    pub control_socket: Option<String>,
}

/// A storage pool, as `croft storage info` shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoragePool {
    pub name: String,
    pub driver: String,
    /// The loop file, block device or directory behind the pool.
    pub source: String,
    pub mount: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub volumes: usize,
}

/// A VPS's interface on a croft network.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Nic {
    /// Its name inside: `eth0` (made at launch), `eth1`.. (added after).
    #[serde(default = "eth0")]
    pub name: String,
    pub network: String,
    pub mac: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// The host end of its veth pair.
    pub host_interface: String,
    /// Its additional addresses (`croft address add`).
    #[serde(default)]
    pub extra: Vec<String>,
}

fn eth0() -> String {
    "eth0".into()
}

/// `POST /1.0/instances/{name}/nics`: another interface of a stopped VPS,
/// on another network (made at its next start, as `eth1`..), with the
/// given or next free addresses of that network.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NicAdd {
    pub network: String,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    /// A fixed MAC (default: a new one).
    #[serde(default)]
    pub mac: Option<String>,
}

/// `POST /1.0/instances/{name}/addresses`: another address of the VPS's
/// network on its interface, live: `address`, or the next free one of
/// `family`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddressAdd {
    #[serde(default)]
    pub address: Option<String>,
    /// `ipv4` (the default) or `ipv6`, for the next free address.
    #[serde(default)]
    pub family: Option<String>,
    /// A whole IPv6 prefix of this length routed to the VPS (a routed
    /// network's pool): `64` for a /64. `address` may name it
    /// (`2001:db8:100:1::/64`); the VPS configures addresses in it itself.
    #[serde(default)]
    pub prefix: Option<u8>,
}

/// A host port forwarded to a VPS port (`POST /1.0/instances/{name}/forwards`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortForward {
    /// "tcp" or "udp".
    pub protocol: String,
    pub host_port: u16,
    pub vps_port: u16,
    /// The last host port of a range (`host_port` its first): each port of
    /// the range goes to the same port of the VPS, so `vps_port` equals
    /// `host_port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port_end: Option<u16>,
}

/// The most ports one forward takes.
pub const MAX_FORWARD_RANGE: u32 = 1000;

impl PortForward {
    /// Its host ports, first and last.
    pub fn host_ports(&self) -> (u16, u16) {
        (self.host_port, self.host_port_end.unwrap_or(self.host_port))
    }
}

/// `POST /1.0/instances/{name}/forwards?force=true`: the admin takes a
/// reserved host port or one a host service listens on.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ForwardForce {
    #[serde(default)]
    pub force: bool,
}

/// A network VPSes are attached to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub name: String,
    /// `nat`: its own bridge and subnets, masqueraded out; `routed`:
    /// public addresses from pools routed to the host; `bridged`: on an
    /// existing host bridge, the provider's link and gateway.
    #[serde(default = "nat_kind")]
    pub kind: String,
    pub bridge: String,
    /// Gateway address and prefix, `10.87.0.1/24`.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub nat: bool,
    pub isolated: bool,
    /// A routed network's uplink, where its addresses are proxied.
    #[serde(default)]
    pub uplink: Option<String>,
    /// The addresses its VPSes get, as ranges in the subnets (empty: the
    /// whole subnets).
    #[serde(default)]
    pub pool: Vec<String>,
    pub dns: Vec<String>,
    /// Addresses in use, one entry per VPS.
    pub leases: Vec<Lease>,
}

fn nat_kind() -> String {
    "nat".into()
}

/// `POST /1.0/networks`: a network of its own (a bridge and subnets)
/// beside the default one. Networks are kept apart: traffic from one to
/// another is dropped, port forwards aside.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    pub name: String,
    /// `nat` (the default), `routed` or `bridged`.
    #[serde(default = "nat_kind")]
    pub kind: String,
    /// The bridge's name (default: the next free `croftbrN`); a bridged
    /// network's is an existing host bridge, required.
    #[serde(default)]
    pub bridge: Option<String>,
    /// The gateway's address and prefix, `10.88.0.1/24` (a routed
    /// network's pool, `198.51.100.16/28`; a bridged network's is the
    /// provider's gateway on the link).
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    /// Masquerade IPv4 leaving the subnet (default true).
    #[serde(default = "yes")]
    pub nat: bool,
    /// Keep its VPSes from reaching each other.
    #[serde(default)]
    pub isolated: bool,
    /// A routed network's uplink: the host interface on which the
    /// provider expects its addresses on-link (croft answers ARP and
    /// neighbour discovery for them there). None: the pools are routed to
    /// the host.
    #[serde(default)]
    pub uplink: Option<String>,
    /// The addresses its VPSes may get, each an address or an inclusive
    /// range inside the subnets (`198.51.100.70-198.51.100.79`): on a
    /// bridged network, the part of the provider's link that is croft's.
    /// Empty: the whole subnets.
    #[serde(default)]
    pub pool: Vec<String>,
}

fn yes() -> bool {
    true
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    pub instance: String,
    pub mac: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// Its additional addresses.
    #[serde(default)]
    pub extra: Vec<String>,
}

/// One rule of a VPS's firewall. Rules are kept in one ordered list and
/// matched in that order, first match wins: inbound rules against traffic
/// to the VPS, outbound rules against traffic from it
/// (`POST /1.0/instances/{name}/firewall/rules`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FirewallRule {
    /// "in" (default) or "out".
    #[serde(default = "inbound")]
    pub direction: String,
    /// "allow" or "deny".
    pub action: String,
    /// "tcp", "udp", "icmp" or "any".
    pub protocol: String,
    /// A destination port or range, `22` or `8000-8100` (tcp and udp
    /// only).
    #[serde(default)]
    pub port: Option<String>,
    /// Inbound rules: only traffic from this address or CIDR (IPv4 or
    /// IPv6; without one the rule matches both).
    #[serde(default)]
    pub source: Option<String>,
    /// Outbound rules: only traffic to this address or CIDR.
    #[serde(default)]
    pub destination: Option<String>,
}

fn inbound() -> String {
    "in".into()
}

/// A VPS's firewall: its default policies, its rules in the order they
/// are matched, and the provider's outbound rules that apply to it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Firewall {
    /// "allow" or "deny": what happens to inbound traffic no rule matches.
    pub default: String,
    /// The same for outbound traffic.
    #[serde(default = "allow")]
    pub default_out: String,
    pub rules: Vec<FirewallRule>,
    /// The provider's outbound rules (`protocol/port`, dropped before the
    /// VPS's own rules), empty if the VPS is exempt.
    #[serde(default)]
    pub provider_blocked: Vec<String>,
    /// The security groups attached, whose rules follow the VPS's own, in
    /// this order.
    #[serde(default)]
    pub groups: Vec<String>,
}

fn allow() -> String {
    "allow".into()
}

/// A security group: rules defined once, attached to many VPSes of its
/// tenant (`/1.0/firewall-groups`). An attached group's rules are matched
/// after the VPS's own, groups in the order they were attached.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FirewallGroup {
    pub name: String,
    pub tenant: String,
    #[serde(default)]
    pub description: String,
    /// In match order.
    pub rules: Vec<FirewallRule>,
    /// The VPSes it is attached to.
    pub members: Vec<String>,
}

/// `POST /1.0/firewall-groups`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FirewallGroupCreate {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// `POST /1.0/instances/{name}/firewall/groups`: attach a group.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupAttach {
    pub group: String,
}

/// `POST /1.0/instances/{name}/firewall/rules/{index}/move`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleMove {
    /// The rule's new number (1 is matched first).
    pub to: usize,
}

/// `POST /1.0/instances/{name}/firewall/rules?position=N`: where a new
/// rule goes.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RulePosition {
    /// The new rule's number: it goes before the rule that had it
    /// (default: last).
    #[serde(default)]
    pub position: Option<usize>,
}

/// Parse a port or range: `22` -> (22, 22), `8000-8100`.
pub fn parse_port_range(text: &str) -> Result<(u16, u16), ValueError> {
    let port = |p: &str| -> Result<u16, ValueError> {
        match p.trim().parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            _ => Err(ValueError(format!("invalid port {p:?} (1 to 65535)"))),
        }
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(ValueError(format!("invalid port range {text:?} (low-high)")));
            }
            Ok((a, b))
        }
        None => port(text).map(|p| (p, p)),
    }
}

/// Parse an address or CIDR into its network address and prefix:
/// `192.0.2.7` -> 192.0.2.7/32, `192.0.2.7/24` -> 192.0.2.0/24.
pub fn parse_source(text: &str) -> Result<(std::net::IpAddr, u8), ValueError> {
    use std::net::IpAddr;
    let bad = || format!("invalid address or CIDR {text:?} (e.g. 192.0.2.0/24 or 2001:db8::/32)");
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix {
        Some(p) => p.trim().parse().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        None => max,
    };
    let network = match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    Ok((network, prefix))
}

/// Check a firewall rule: known action and protocol, a port only with tcp
/// or udp, a valid source.
pub fn validate_firewall_rule(r: &FirewallRule) -> Result<(), ValueError> {
    if r.action != "allow" && r.action != "deny" {
        return Err(ValueError(format!(
            "unknown action {:?} (use allow or deny)",
            r.action
        )));
    }
    if !["tcp", "udp", "icmp", "any"].contains(&r.protocol.as_str()) {
        return Err(ValueError(format!(
            "unknown protocol {:?} (use tcp, udp, icmp or any)",
            r.protocol
        )));
    }
    if let Some(port) = &r.port {
        if r.protocol != "tcp" && r.protocol != "udp" {
            return Err(ValueError(format!(
                "a port needs protocol tcp or udp, not {}",
                r.protocol
            )));
        }
        parse_port_range(port)?;
    }
    match r.direction.as_str() {
        "in" if r.destination.is_some() => {
            return Err(ValueError(
                "an inbound rule matches a source (--from), not a destination".into(),
            ))
        }
        "out" if r.source.is_some() => {
            return Err(ValueError(
                "an outbound rule matches a destination (--to), not a source".into(),
            ))
        }
        "in" | "out" => {}
        other => return Err(ValueError(format!("unknown direction {other:?} (use in or out)"))),
    }
    for address in r.source.iter().chain(&r.destination) {
        parse_source(address)?;
    }
    Ok(())
}

/// A provider rule as the admin writes it in croftd's configuration:
/// `tcp/25`, `udp/1900`, `tcp/6660-6669`.
pub fn parse_blocked(text: &str) -> Result<(String, (u16, u16)), ValueError> {
    let bad = || {
        ValueError(format!(
            "invalid blocked port {text:?} (e.g. tcp/25 or udp/6660-6669)"
        ))
    };
    let (protocol, ports) = text.split_once('/').ok_or_else(bad)?;
    if protocol != "tcp" && protocol != "udp" {
        return Err(bad());
    }
    Ok((protocol.to_string(), parse_port_range(ports).map_err(|_| bad())?))
}

/// Check a port forward request: a known protocol and ports 1-65535.
pub fn validate_forward(f: &PortForward) -> Result<(), ValueError> {
    if f.protocol != "tcp" && f.protocol != "udp" {
        return Err(ValueError(format!(
            "unknown protocol {:?} (use tcp or udp)",
            f.protocol
        )));
    }
    if f.host_port == 0 || f.vps_port == 0 {
        return Err(ValueError("ports must be between 1 and 65535".into()));
    }
    if let Some(end) = f.host_port_end {
        if end < f.host_port {
            return Err(ValueError(format!(
                "invalid port range {}-{end}: it must not end before it starts",
                f.host_port
            )));
        }
        if u32::from(end - f.host_port) + 1 > MAX_FORWARD_RANGE {
            return Err(ValueError(format!(
                "a forward takes at most {MAX_FORWARD_RANGE} ports"
            )));
        }
        if f.vps_port != f.host_port {
            return Err(ValueError(
                "a range of host ports goes to the same ports of the VPS".into(),
            ));
        }
    }
    Ok(())
}

/// Parse `HOST:VPS` (or one port for both), as `croft port add` takes it.
pub fn parse_port_pair(text: &str) -> Result<(u16, u16), ValueError> {
    let port = |p: &str| -> Result<u16, ValueError> {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
            _ => Err(ValueError(format!("invalid port {p:?} (1 to 65535)"))),
        }
    };
    match text.split_once(':') {
        Some((h, v)) => Ok((port(h)?, port(v)?)),
        None => port(text).map(|p| (p, p)),
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
    pub oom_kills: u64,
    pub cpu_usage_ns: u64,
    pub processes: u64,
    /// What it read and wrote on the storage pool's device since it
    /// started; absent where the host cannot count it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_io: Option<DiskIoCounts>,
}

/// Disk I/O counted on the storage pool's device. On a cgroup v1 host,
/// what the kernel's flusher writes back from the page cache is not
/// counted (reads, direct writes and what the VPS's own `fsync` pushes out
/// are); cgroup v2 counts them all.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskIoCounts {
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// Read requests submitted to the device.
    pub reads: u64,
    pub writes: u64,
}

/// A long-running operation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// The tenant whose VPS or image it works on.
    pub tenant: String,
    pub target: String,
    pub status: JobStatus,
    /// 0..=100.
    pub progress: u8,
    pub message: Option<String>,
    pub error: Option<String>,
    pub created_at: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Running,
    Success,
    Failure,
    /// Stopped at a caller's request (`DELETE /1.0/jobs/{id}`), with what
    /// it had done undone.
    Cancelled,
}

impl JobStatus {
    /// How the status reads in a sentence: `succeeded`, `cancelled`.
    pub fn word(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Success => "succeeded",
            JobStatus::Failure => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }
}

/// Every API error has this body, with a 4xx (caller's fault) or 5xx status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: String,
    /// HTTP status code, repeated for clients that only see the body.
    pub code: u16,
}

/// A read-only point-in-time copy of a VPS's disk.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub name: String,
    pub created_at: String,
    /// Bytes the snapshot holds alone (what deleting it would free).
    pub size_bytes: Option<u64>,
}

/// `POST /1.0/instances/{name}/snapshots`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// Default: the first free `snapN`.
    #[serde(default)]
    pub name: Option<String>,
}

/// The media type of the bytes a stream endpoint sends or takes (an image
/// tarball, a snapshot's send stream).
pub const STREAM_TYPE: &str = "application/octet-stream";

/// `POST /1.0/instances/{name}/snapshots?name=` with a [`STREAM_TYPE`]
/// body: import the send stream a snapshot export wrote (here or on
/// another host) as a snapshot.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotImportQuery {
    /// Default: the name the snapshot had when it was exported.
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /1.0/instances/{name}/snapshots/{snap}/export?since=`: the
/// snapshot as a btrfs send stream.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotExportQuery {
    /// Send only what changed since this (older) snapshot of the same VPS;
    /// the receiving side must have imported that one first.
    #[serde(default)]
    pub since: Option<String>,
}

/// `POST /1.0/images?name=` with a [`STREAM_TYPE`] body: import a tarball
/// (.tar, .tar.gz or .tar.zst) as an image.
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageImportQuery {
    pub name: String,
}

/// `POST /1.0/instances/{name}/snapshots/{snap}/restore`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// Stop a running VPS first (and start it again afterwards).
    #[serde(default)]
    pub stop: bool,
}

/// `POST /1.0/instances/{name}/copy`.
/// `POST /1.0/instances/{name}/password`: root's new password, or none
/// for a generated one; the answer holds the generated one (shown once).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PasswordSet {
    #[serde(default)]
    pub password: Option<String>,
}

/// `POST /1.0/instances/{name}/ssh-keys`: one more public key for root
/// (OpenSSH format).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SshKeyAdd {
    pub key: String,
}

/// `POST /1.0/instances/{name}/rename`: a stopped VPS's new name (and
/// hostname, from its next start); all else stays.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    /// The new VPS.
    pub name: String,
    /// Copy this snapshot instead of the current disk.
    #[serde(default)]
    pub snapshot: Option<String>,
}

/// `croft publish`: an image made from a VPS's disk or snapshot.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The new image's name.
    pub image: String,
    /// Publish this snapshot (a running VPS can be published only so).
    #[serde(default)]
    pub snapshot: Option<String>,
    /// What the image is, shown by `croft image list`.
    #[serde(default)]
    pub description: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Image {
    pub name: String,
    pub description: String,
    /// "built" (croft builds it on first use) or "imported".
    pub source: String,
    /// Present in the storage pool (launching needs no build).
    pub available: bool,
    pub size_bytes: Option<u64>,
    /// Of the tarball the image came from or was last exported to.
    pub sha256: Option<String>,
    pub created_at: Option<String>,
    /// os-release ID of the image (debian, ...), once built or imported.
    pub distro: Option<String>,
    /// os-release VERSION_CODENAME (bookworm, ...) or VERSION_ID.
    pub release: Option<String>,
    /// Debian architecture name of its binaries (amd64, arm64, ...).
    pub arch: Option<String>,
}

/// `POST /1.0/images/build`: build one of the images croft knows how to
/// build (a job; nothing to do if it is already built).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    pub name: String,
}

/// Image names: a label, or two joined by '/', of lowercase letters,
/// digits, '.' and '-' (`busybox`, `debian/bookworm`, `my-app.v2`).
pub fn validate_image_name(name: &str) -> Result<(), ValueError> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && p.as_bytes()[0].is_ascii_alphanumeric()
            && !p.contains("..")
    };
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(ValueError(format!(
            "invalid image name {name:?}: use lowercase letters, digits, '.' and '-', optionally two parts joined by '/'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod forward_tests {
    use super::*;

    #[test]
    fn port_pairs_and_forwards() {
        assert_eq!(parse_port_pair("8080:80"), Ok((8080, 80)));
        assert_eq!(parse_port_pair("22"), Ok((22, 22)));
        for bad in ["0:80", "8080:65536", "x:80", "8080:", "-1", ""] {
            assert!(parse_port_pair(bad).is_err(), "{bad}");
        }
        let ok = PortForward {
            protocol: "udp".into(),
            host_port: 53,
            vps_port: 53,
            host_port_end: None,
        };
        assert!(validate_forward(&ok).is_ok());
        let bad = PortForward {
            protocol: "sctp".into(),
            ..ok.clone()
        };
        assert!(validate_forward(&bad).unwrap_err().0.contains("unknown protocol"));
        // Ranges go to the same ports, forwards, at most 1000 ports.
        let range = |first: u16, vps: u16, last: u16| PortForward {
            protocol: "udp".into(),
            host_port: first,
            vps_port: vps,
            host_port_end: Some(last),
        };
        assert!(validate_forward(&range(6000, 6000, 6100)).is_ok());
        for (bad, why) in [
            (range(6000, 7000, 6100), "same ports"),
            (range(6100, 6100, 6000), "end before"),
            (range(1000, 1000, 2000), "at most 1000"),
        ] {
            assert!(validate_forward(&bad).unwrap_err().0.contains(why), "{bad:?}");
        }
        assert_eq!(range(6000, 6000, 6100).host_ports(), (6000, 6100));
    }

    #[test]
    fn firewall_rules() {
        let rule = |a: &str, p: &str, port: Option<&str>, src: Option<&str>| FirewallRule {
            direction: "in".into(),
            destination: None,
            action: a.into(),
            protocol: p.into(),
            port: port.map(Into::into),
            source: src.map(Into::into),
        };
        assert!(validate_firewall_rule(&rule("allow", "tcp", Some("22"), Some("192.0.2.0/24"))).is_ok());
        assert!(validate_firewall_rule(&rule("deny", "udp", Some("8000-8100"), None)).is_ok());
        assert!(validate_firewall_rule(&rule("allow", "icmp", None, Some("2001:db8::/32"))).is_ok());
        for (bad, why) in [
            (rule("permit", "tcp", None, None), "unknown action"),
            (rule("allow", "sctp", None, None), "unknown protocol"),
            (rule("allow", "icmp", Some("22"), None), "needs protocol"),
            (rule("allow", "tcp", Some("90-80"), None), "range"),
            (rule("allow", "tcp", Some("0"), None), "invalid port"),
            (rule("allow", "tcp", None, Some("10.0.0.0/33")), "invalid address"),
            (rule("allow", "tcp", None, Some("example.com")), "invalid address"),
        ] {
            let err = validate_firewall_rule(&bad).unwrap_err();
            assert!(err.0.contains(why), "{bad:?}: {err}");
        }
        // Outbound rules match a destination, inbound ones a source.
        let mut out = rule("deny", "tcp", Some("25"), None);
        out.direction = "out".into();
        out.destination = Some("198.51.100.0/24".into());
        assert!(validate_firewall_rule(&out).is_ok());
        out.source = Some("192.0.2.1".into());
        assert!(validate_firewall_rule(&out)
            .unwrap_err()
            .0
            .contains("destination"));
        assert_eq!(parse_blocked("tcp/25").unwrap(), ("tcp".into(), (25, 25)));
        assert_eq!(
            parse_blocked("udp/6660-6669").unwrap(),
            ("udp".into(), (6660, 6669))
        );
        for bad in ["25", "icmp/1", "tcp/0", "tcp/x"] {
            assert!(parse_blocked(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_source("192.0.2.77/24").unwrap(),
            ("192.0.2.0".parse().unwrap(), 24)
        );
        assert_eq!(
            parse_source("2001:db8::1").unwrap(),
            ("2001:db8::1".parse().unwrap(), 128)
        );
    }

    #[test]
    fn ssh_keys_and_user_data() {
        let good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q me@host";
        assert_eq!(
            parse_ssh_keys(&format!("# mine\n{good}\n\n")),
            Ok(vec![good.to_string()])
        );
        for bad in [
            "",
            "# only a comment",
            "not a key",
            "ssh-ed25519",
            "ssh-ed25519 AAAA",
            "command=\"rm -rf /\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA$(reboot)",
        ] {
            assert!(parse_ssh_keys(bad).is_err(), "{bad}");
        }
        assert!(validate_user_data("#!/bin/sh\necho hi\n").is_ok());
        assert!(validate_user_data("echo hi").unwrap_err().0.contains("#!"));
        assert!(validate_user_data(&format!("#!/bin/sh\n{}", "x".repeat(MAX_USER_DATA))).is_err());
    }
}

/// `GET /1.0`: who answers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    pub api_version: String,
    pub server_version: String,
    /// What runs the VPSes: "container", or "sim" for the simulator.
    pub backend: String,
    /// The host's cgroup version ("v1", "v2"), where VPSes run in cgroups.
    pub cgroup_version: Option<String>,
    /// Where remote callers reach the API (TLS 1.3), if it listens there.
    pub https_address: Option<String>,
    /// The SHA-256 fingerprint of the server certificate remote clients
    /// pin.
    pub certificate_fingerprint: Option<String>,
}

/// `GET /1.0/instances/{name}/console`: recent console output.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsoleLog {
    pub log: String,
}
