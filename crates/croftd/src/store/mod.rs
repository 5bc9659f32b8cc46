//! The store: croftd's state as typed records behind the [`Store`] trait.
//!
//! Services read and change state only through this trait, so the same
//! services run on SQLite today ([`sqlite::SqliteStore`], on a file or in
//! memory for tests) and on a cluster store later. Every store must pass
//! the conformance suite in `conformance.rs`. A record is parsed once,
//! here at the edge: a row that does not parse is [`StoreError::Corrupt`],
//! never silently a default.

pub mod access;
pub mod history;
pub mod quota;
pub mod sqlite;

#[cfg(test)]
pub(crate) mod conformance;

use async_trait::async_trait;
use croft_api::config::InstanceConfig;
use croft_api::{FirewallRule, Job, JobStatus, Status, Traffic};
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;
use uuid::Uuid;

pub use access::{
    AccessStore, CertificateRecord, NewTokenRecord, PlanRecord, SessionRecord, TenantRecord, TokenRecord,
    TrustTokenRecord, UserRecord,
};
pub use sqlite::SqliteStore;

/// The tenant of the host administrator's own VPSes, and of every VPS
/// from before tenants. It always exists.
pub const DEFAULT_TENANT: &str = "default";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("database migration failed")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("corrupt record of {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// A uniqueness rule refused the record: the value is taken.
    #[error("{0} is already in use")]
    Taken(String),
    /// The record is still needed by others (a tenant that owns VPSes).
    #[error("{0}")]
    InUse(String),
    /// A record the change refers to is not there (a tenant).
    #[error("{0} not found")]
    Missing(String),
    /// The change would take its tenant past a quota.
    #[error("{0}")]
    Quota(String),
    /// The tenant's quota caps a limit the VPS does not set.
    #[error("{0}")]
    LimitRequired(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A VPS's configuration: the `key=value` strings as the user gave them
/// (what `croft config show` echoes) and what they mean, parsed once when
/// the record is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub raw: BTreeMap<String, String>,
    pub parsed: InstanceConfig,
}

impl Settings {
    /// Parse `raw`; a value croft refuses is an error.
    pub fn parse(raw: BTreeMap<String, String>) -> Result<Settings, croft_api::ConfigError> {
        let parsed = InstanceConfig::parse(&raw)?;
        Ok(Settings { raw, parsed })
    }
}

/// One VPS.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    /// Its identity for good: a name can be reused after a delete, a UUID
    /// never (moves and backups between hosts name VPSes by it).
    pub uuid: Uuid,
    /// What names it on this host: its disk, run directory and cgroup,
    /// and its records in the store. See [`instance_key`].
    pub key: String,
    pub tenant: String,
    /// Its name within its tenant (and its default hostname).
    pub name: String,
    pub image: String,
    /// First host uid/gid of its private id range.
    pub uid_base: u32,
    pub settings: Settings,
    pub status: Status,
    pub init_pid: Option<i32>,
    pub last_exit: Option<String>,
    pub created_at: String,
    /// The rescue image it runs from while in rescue mode.
    pub rescue_image: Option<String>,
}

/// What creating a VPS records, all of it or nothing.
#[derive(Debug, Clone)]
pub struct NewInstance {
    pub uuid: Uuid,
    pub key: String,
    pub tenant: String,
    pub name: String,
    pub image: String,
    pub uid_base: u32,
    pub settings: BTreeMap<String, String>,
    pub nic: Option<NicRecord>,
    pub ssh_keys: Vec<String>,
}

/// The key of a new VPS `name` of `tenant` with `uuid`: its name in the
/// default tenant (as before tenants, so its host paths read as its
/// name), its UUID in others, so that nothing a tenant chooses names
/// anything on the host, and two tenants' VPSes of one name never meet.
/// (A new VPS of the default tenant whose name another VPS kept as its
/// key through a rename takes its UUID too.)
pub fn instance_key(tenant: &str, name: &str, uuid: Uuid) -> String {
    if tenant == DEFAULT_TENANT {
        name.to_string()
    } else {
        uuid.to_string()
    }
}

/// A VPS's interface on a croft network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicRecord {
    /// The VPS's key.
    pub instance: String,
    /// Its place among the VPS's interfaces: 0 is `eth0` (made at launch,
    /// the one with the default routes, forwards and additional
    /// addresses), 1.. are `eth1`.. (added after, one per network).
    pub index: u32,
    pub network: String,
    pub host_if: String,
    pub mac: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// Its additional addresses, in the order added.
    pub extra: Vec<String>,
}

/// A host port forwarded to a VPS port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRecord {
    pub protocol: String,
    pub host_port: u16,
    /// The VPS's key.
    pub instance: String,
    pub vps_port: u16,
    /// The last host port of a range.
    pub host_port_end: Option<u16>,
}

/// A snapshot of a VPS's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub name: String,
    pub created_at: String,
}

/// An image croft built or imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub name: String,
    pub source: String,
    pub description: String,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub created_at: String,
    pub distro: Option<String>,
    pub release: Option<String>,
    pub arch: Option<String>,
}

/// What to record about an image; `None` keeps what is already stored.
#[derive(Debug, Clone, Default)]
pub struct ImageUpdate<'a> {
    pub name: &'a str,
    pub source: &'a str,
    pub description: &'a str,
    pub size_bytes: Option<u64>,
    pub sha256: Option<&'a str>,
    pub facts: Option<croft_host::rootfs::OsFacts>,
}

/// A firewall rule as stored, with the id that orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    pub id: i64,
    /// The VPS's key.
    pub instance: String,
    pub rule: FirewallRule,
}

/// A network made through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    pub name: String,
    /// `nat`, `routed` or `bridged`.
    pub kind: String,
    pub bridge: String,
    /// The gateway and prefix, `10.88.0.1/24`.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub nat: bool,
    pub isolated: bool,
    /// A routed network's uplink, where its addresses are proxied.
    pub uplink: Option<String>,
    /// The addresses its VPSes may get (`a-b,c`); `None`: the subnets.
    pub pool: Option<String>,
}

/// A security group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub tenant: String,
    pub name: String,
    pub description: String,
    pub rules: Vec<FirewallRule>,
    /// The keys of the VPSes it is attached to, each with the group's
    /// place among the VPS's groups (0 first).
    pub members: Vec<(String, i64)>,
}

/// A VPS interface's counters as read, from the VPS's side (what the
/// host end receives, the VPS sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficReading {
    /// The interface's index: another one is a new interface.
    pub link_index: u32,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub sent_packets: u64,
}

/// One change to a VPS's ordered firewall rules; numbers count from 1,
/// as `croft firewall list` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleEdit {
    /// Put `rule` at number `position` (before the rule that had it), or
    /// last.
    Insert {
        position: Option<usize>,
        rule: FirewallRule,
    },
    Replace {
        index: usize,
        rule: FirewallRule,
    },
    /// Give rule `index` the number `to`, the rules between shifting.
    Move {
        index: usize,
        to: usize,
    },
    Remove {
        index: usize,
    },
}

impl RuleEdit {
    /// Apply the edit to `rules` (in match order): a number that names no
    /// rule is [`StoreError::Missing`].
    pub fn apply(&self, rules: &mut Vec<FirewallRule>) -> Result<()> {
        let len = rules.len();
        let at = |n: usize, last: usize| {
            n.checked_sub(1)
                .filter(|i| *i < last)
                .ok_or_else(|| StoreError::Missing(format!("firewall rule {n} (there are {len})")))
        };
        match self {
            RuleEdit::Insert { position, rule } => {
                let i = match position {
                    Some(n) => at(*n, len + 1)?,
                    None => len,
                };
                rules.insert(i, rule.clone());
            }
            RuleEdit::Replace { index, rule } => rules[at(*index, len)?] = rule.clone(),
            RuleEdit::Move { index, to } => {
                let (from, to) = (at(*index, len)?, at(*to, len)?);
                let rule = rules.remove(from);
                rules.insert(to, rule);
            }
            RuleEdit::Remove { index } => {
                rules.remove(at(*index, len)?);
            }
        }
        Ok(())
    }
}

/// croftd's state. Methods that change several records do so in one
/// transaction: a crash or an error leaves all of the change or none.
/// A VPS is named by its key (`instance`, `key`), except where a method
/// says it takes a tenant and a name.
#[async_trait]
pub trait Store: AccessStore + Send + Sync + 'static {
    // --- VPSes ---
    /// Every VPS of every tenant, by tenant and name.
    async fn instances(&self) -> Result<Vec<InstanceRecord>>;
    /// The VPS of key `key`.
    async fn instance(&self, key: &str) -> Result<Option<InstanceRecord>>;
    /// VPS `name` of `tenant`.
    async fn instance_named(&self, tenant: &str, name: &str) -> Result<Option<InstanceRecord>>;
    /// Record a new VPS in state `creating` with its interface and SSH
    /// keys. A name (in its tenant), key, uuid, id range or address
    /// already taken is [`StoreError::Taken`], a tenant that is not there
    /// [`StoreError::Missing`], and records nothing.
    async fn create_instance(&self, new: &NewInstance) -> Result<InstanceRecord>;
    /// Forget a VPS and everything recorded with it (interface, forwards,
    /// firewall rules, keys, snapshots). Forgetting one that is not there
    /// does nothing.
    async fn delete_instance(&self, name: &str) -> Result<()>;
    /// Set the status and init pid; `last_exit` is kept unless given.
    async fn set_status(
        &self,
        name: &str,
        status: Status,
        init_pid: Option<i32>,
        last_exit: Option<&str>,
    ) -> Result<()>;
    async fn set_rescue(&self, name: &str, image: Option<&str>) -> Result<()>;
    async fn set_image(&self, name: &str, image: &str) -> Result<()>;
    /// Give VPS `key` the name `new` in its tenant; a name taken there is
    /// [`StoreError::Taken`].
    async fn rename_instance(&self, key: &str, new: &str) -> Result<()>;
    async fn set_settings(&self, name: &str, settings: &BTreeMap<String, String>) -> Result<()>;

    // --- Networking ---
    async fn nics(&self) -> Result<Vec<NicRecord>>;
    /// The first interface (`eth0`) of VPS `instance`.
    async fn nic(&self, instance: &str) -> Result<Option<NicRecord>>;
    /// Every interface of VPS `instance`, first first.
    async fn nics_of(&self, instance: &str) -> Result<Vec<NicRecord>>;
    /// Record another interface of a VPS: one of its addresses held
    /// (another VPS's additional one too), or its network, MAC or index
    /// already used, is [`StoreError::Taken`]; an IPv4 address beyond the
    /// tenant's quota is refused.
    async fn add_nic(&self, nic: &NicRecord) -> Result<()>;
    /// Forget interface `index` (not 0) of VPS `instance`; false if it had
    /// none.
    async fn remove_nic(&self, instance: &str, index: u32) -> Result<bool>;
    async fn forwards(&self) -> Result<Vec<ForwardRecord>>;
    /// A host port already forwarded (one of a range) is
    /// [`StoreError::Taken`].
    async fn insert_forward(&self, forward: &ForwardRecord) -> Result<()>;
    /// False if there was no such forward.
    async fn delete_forward(&self, instance: &str, protocol: &str, host_port: u16) -> Result<bool>;
    /// Every VPS's firewall rules, each VPS's in match order.
    async fn firewall_rules(&self) -> Result<Vec<RuleRecord>>;
    /// Change `instance`'s rules by `edit`, in one transaction (an added
    /// rule within its tenant's quota); its rules as they were before.
    async fn edit_firewall_rules(&self, instance: &str, edit: &RuleEdit) -> Result<Vec<FirewallRule>>;
    /// Make `instance`'s rules exactly `rules` (a rollback of an edit).
    async fn set_firewall_rules(&self, instance: &str, rules: &[FirewallRule]) -> Result<()>;

    // --- Additional addresses ---
    /// Give `instance`'s interface `address` too: one its network has
    /// given already (to whichever VPS) is [`StoreError::Taken`], naming
    /// the VPS's key; an IPv4 address within the tenant's quota.
    async fn add_address(&self, instance: &str, address: &str) -> Result<()>;
    /// False if it had no such additional address.
    async fn remove_address(&self, instance: &str, address: &str) -> Result<bool>;
    /// Make additional address `address` of VPS `instance` its first of
    /// its family on `eth0`, and the first one additional; the first one.
    async fn promote_address(&self, instance: &str, address: &str) -> Result<String>;

    // --- Networks ---
    /// The networks made through the API (not the default one), by name.
    async fn networks(&self) -> Result<Vec<NetworkRecord>>;
    /// A name or bridge in use is [`StoreError::Taken`].
    async fn create_network(&self, network: &NetworkRecord) -> Result<()>;
    /// Delete a network no VPS is on: one in use is
    /// [`StoreError::InUse`] (naming the VPS keys), an unknown one
    /// [`StoreError::Missing`].
    async fn delete_network(&self, name: &str) -> Result<()>;

    // --- Security groups ---
    /// The groups of `tenant` (of all tenants if `None`), by name.
    async fn firewall_groups(&self, tenant: Option<&str>) -> Result<Vec<GroupRecord>>;
    /// A new empty group; a name the tenant already uses is
    /// [`StoreError::Taken`].
    async fn create_firewall_group(&self, tenant: &str, name: &str, description: &str) -> Result<()>;
    /// Delete a group; one still attached is [`StoreError::InUse`] (naming
    /// the VPS keys), an unknown one [`StoreError::Missing`].
    async fn delete_firewall_group(&self, tenant: &str, name: &str) -> Result<()>;
    /// Change a group's rules by `edit` (an added rule within the tenant's
    /// quota); its rules as they were before.
    async fn edit_group_rules(&self, tenant: &str, name: &str, edit: &RuleEdit) -> Result<Vec<FirewallRule>>;
    /// Make a group's rules exactly `rules` (a rollback).
    async fn set_group_rules(&self, tenant: &str, name: &str, rules: &[FirewallRule]) -> Result<()>;
    /// Attach group `name` of `instance`'s tenant to it, after those
    /// attached; attached already is [`StoreError::Taken`].
    async fn attach_group(&self, instance: &str, name: &str) -> Result<()>;
    /// False if it was not attached.
    async fn detach_group(&self, instance: &str, name: &str) -> Result<bool>;

    // --- Traffic ---
    /// Add what `instance`'s interface moved since the last reading
    /// (`reading`, from the VPS's side) to its totals of `month`, in one
    /// transaction; those totals.
    async fn record_traffic(&self, instance: &str, month: &str, reading: &TrafficReading) -> Result<Traffic>;
    /// `instance`'s totals, newest month first.
    async fn traffic(&self, instance: &str) -> Result<Vec<Traffic>>;
    /// Every VPS's totals of `month`, by key.
    async fn traffic_of_month(&self, month: &str) -> Result<HashMap<String, Traffic>>;

    // --- Usage history ---
    /// Keep every VPS's minute `points` in each archive's ring, in one
    /// transaction. Points of VPSes deleted since are dropped.
    async fn record_history(&self, points: &[history::MinutePoint]) -> Result<()>;
    /// `instance`'s points in `archive` whose period starts at `since` or
    /// later, oldest first.
    async fn history(
        &self,
        instance: &str,
        archive: history::Archive,
        since: i64,
    ) -> Result<Vec<history::HistoryPoint>>;

    // --- SSH keys ---
    /// A VPS's keys in the order added.
    async fn ssh_keys(&self, instance: &str) -> Result<Vec<String>>;
    /// Record another key of VPS `instance`'s root; false if it had it.
    async fn add_ssh_key(&self, instance: &str, key: &str) -> Result<bool>;
    /// Forget one; false if it had none such.
    async fn remove_ssh_key(&self, instance: &str, key: &str) -> Result<bool>;
    /// Every VPS's keys, by VPS key.
    async fn all_ssh_keys(&self) -> Result<HashMap<String, Vec<String>>>;

    // --- Snapshots ---
    /// A VPS's snapshots, oldest first.
    async fn snapshots(&self, instance: &str) -> Result<Vec<SnapshotRecord>>;
    /// Record a snapshot; `false` if one of that name exists.
    async fn insert_snapshot(&self, instance: &str, name: &str) -> Result<bool>;
    async fn delete_snapshot(&self, instance: &str, name: &str) -> Result<()>;

    // --- Images ---
    async fn images(&self) -> Result<Vec<ImageRecord>>;
    /// Record an image, or update the record: fields given replace the
    /// stored ones, fields left `None` keep them.
    async fn upsert_image(&self, update: ImageUpdate<'_>) -> Result<()>;
    async fn delete_image(&self, name: &str) -> Result<()>;

    // --- Jobs ---
    /// Record a running job of `kind` on `target` (a VPS or image name)
    /// of `tenant`.
    async fn insert_job(&self, id: &str, kind: &str, tenant: &str, target: &str) -> Result<()>;
    async fn update_job(
        &self,
        id: &str,
        status: JobStatus,
        progress: u8,
        message: Option<&str>,
        error: Option<&str>,
    ) -> Result<()>;
    /// Mark failed the jobs a previous croftd left running; how many.
    async fn fail_interrupted_jobs(&self) -> Result<u64>;
    async fn job(&self, id: &str) -> Result<Option<Job>>;
    /// The latest jobs (of `tenant`, or of all), newest first.
    async fn jobs(&self, tenant: Option<&str>) -> Result<Vec<Job>>;
}
