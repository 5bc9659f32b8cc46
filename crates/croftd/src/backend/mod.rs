//! Backends: what runs a VPS. The services decide *what* happens to a VPS
//! (its state, its records, its network); a [`Backend`] makes it happen on
//! this host: prepares disks from images, starts and stops, follows a
//! running VPS, applies limits and reports usage.
//!
//! [`container::ContainerBackend`] runs VPSes as containers under
//! `croft-supervisor`; [`sim::SimBackend`] keeps them in memory, so that
//! the services and the API run without root (tests, `croftd --simulate`).
//! A virtual-machine backend is meant to be a third.

pub mod container;
pub mod session;
pub mod sim;
mod sim_exec;

use crate::service::images::catalog::ImageError;
use crate::service::ErrorKind;
use crate::store::InstanceRecord;
use async_trait::async_trait;
use croft_api::config::InstanceConfig;
use croft_api::Usage;
use croft_host::cgroup::CgroupError;
use croft_host::net::NicSpec;
use croft_host::storage::{SideVolume, StorageError};
use std::net::IpAddr;
use std::path::PathBuf;
use thiserror::Error;
use tokio::sync::mpsc;

#[derive(Debug, Error)]
pub enum BackendError {
    /// Something of an earlier run of the VPS is still in the way.
    #[error("{0}")]
    Busy(String),
    #[error("cannot start VPS {name}: {detail}")]
    Start { name: String, detail: String },
    /// The host lacks a resource for now (HTTP 503); nothing changed.
    #[error("cannot start VPS {name} now: {detail}")]
    Unavailable { name: String, detail: String },
    /// Limits the running VPS cannot take (its usage is above them).
    #[error("cannot apply the new limits")]
    Limits(#[source] Box<BackendError>),
    #[error("{what}")]
    Host {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Task(#[from] crate::TaskFailed),
}

impl BackendError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BackendError::Busy(_) | BackendError::Limits(_) => ErrorKind::Conflict,
            BackendError::Unavailable { .. } => ErrorKind::Unavailable,
            BackendError::Image(ImageError::Unknown { .. }) => ErrorKind::NotFound,
            _ => ErrorKind::Internal,
        }
    }

    pub fn host(what: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        BackendError::Host {
            what: what.into(),
            source: Box::new(source),
        }
    }
}

pub type Result<T, E = BackendError> = std::result::Result<T, E>;

/// What a new disk is made from.
#[derive(Debug, Clone, Copy)]
pub enum DiskSource<'a> {
    /// An image (in the pool already if the pool keeps images).
    Image(&'a str),
    /// Another VPS's disk, or its snapshot.
    Copy { vps: &'a str, snapshot: Option<&'a str> },
}

/// What a fresh disk gets besides the image: the identity of its VPS.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub hostname: String,
    /// Keys for root's authorized_keys (none: left as they are).
    pub ssh_keys: Vec<String>,
    /// A script run once at first boot.
    pub user_data: Option<String>,
}

/// How the VPS reaches the network, for the files written into its disk
/// before each start (/etc/hosts, /etc/resolv.conf).
#[derive(Debug, Clone, Default)]
pub struct NetworkFiles {
    pub addresses: Vec<IpAddr>,
    pub dns: Vec<IpAddr>,
}

/// Everything a start needs.
#[derive(Debug, Clone)]
pub struct StartSpec {
    /// The root filesystem it boots: its disk, or a rescue system.
    pub rootfs: PathBuf,
    /// Its own disk while it boots a rescue system (at /mnt inside).
    pub rescue_disk: Option<PathBuf>,
    /// The command its init runs, and the signal that asks it to stop
    /// when the rootfs does not say.
    pub init: Vec<String>,
    pub default_stop_signal: String,
    pub nic: Option<NicSpec>,
    /// Its further interfaces (`eth1`..).
    pub extra_nics: Vec<NicSpec>,
    pub network_files: Option<NetworkFiles>,
}

/// What happened to a running VPS on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VpsEvent {
    /// It rebooted (or was restarted): its new init, and why when it did
    /// not reboot itself.
    Rebooted { init_pid: i32, reason: Option<String> },
    /// It is down for good, and why.
    Down { reason: String },
}

/// A VPS found after croftd (re)started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Running {
        init_pid: i32,
    },
    /// It ended while croftd was away (everything of it is killed).
    Gone {
        reason: String,
    },
}

/// What runs VPSes on this host. A VPS is named here by its key
/// ([`InstanceRecord::key`]: the `name` of these methods), which names
/// everything it has on the host; its own name is only its hostname.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// "container", "sim".
    fn kind(&self) -> &'static str;
    /// The host's cgroup version ("v1", "v2"), where it matters.
    fn cgroup_version(&self) -> Option<&'static str>;

    /// What disk I/O limits (`limits.disk.read` ...) this host enforces,
    /// said in a sentence; the reason it can enforce none otherwise.
    fn disk_io(&self) -> std::result::Result<&'static str, String>;

    /// Why containers inside a VPS (`features.nesting`) cannot be given
    /// here, if they cannot.
    fn nesting(&self) -> std::result::Result<(), String>;

    /// Make a disk for `vps` from `source`: its own (`side` `None`) or a
    /// side volume (a rescue system, a replacement); its root path.
    async fn prepare_disk(
        &self,
        vps: &InstanceRecord,
        source: DiskSource<'_>,
        side: Option<SideVolume>,
    ) -> Result<PathBuf>;
    /// Give the fresh disk at `disk` its VPS's identity.
    async fn provision(&self, disk: PathBuf, identity: Identity) -> Result<()>;

    /// Start `vps`; its init's pid.
    async fn start(&self, vps: &InstanceRecord, spec: StartSpec) -> Result<i32>;
    /// Stop it (`force`: kill at once, else ask and kill after
    /// `timeout_secs`); why it is down.
    async fn stop(&self, vps: &InstanceRecord, force: bool, timeout_secs: u64) -> Result<String>;
    /// Kill whatever of VPS `name` still runs (a rollback, a lost
    /// supervisor).
    async fn kill(&self, name: &str);
    /// Free what a stopped VPS held while it ran.
    async fn release(&self, name: &str);
    /// Forget everything of VPS `name` on this host but its disks.
    async fn remove(&self, name: &str) -> Result<()>;
    /// Find VPS `name`, recorded as running, after croftd (re)started.
    async fn reattach(&self, name: &str) -> Found;
    /// Follow running VPS `name`: its events, until the channel closes
    /// after a [`VpsEvent::Down`].
    fn watch(&self, name: &str) -> mpsc::UnboundedReceiver<VpsEvent>;
    /// After croftd started: drop what belongs to no VPS in `known` (with
    /// their status) and what stopped ones still hold.
    async fn tidy(&self, known: &[(String, croft_api::Status)]);
    /// croftd stops and no VPS runs: leave the host as it was.
    async fn shutdown(&self);

    /// Apply `new` limits to running VPS `name`; on failure the old ones
    /// are back.
    async fn apply_limits(&self, name: &str, new: &InstanceConfig, old: &InstanceConfig) -> Result<()>;
    /// Record bandwidth limits where a reboot from inside finds them.
    async fn record_bandwidth(&self, name: &str, ingress: Option<u64>, egress: Option<u64>) -> Result<()>;
    /// Add (or with `remove`, take away) address `cidr` on running VPS
    /// `name`'s interface now, and where a reboot from inside finds it.
    async fn set_address(&self, name: &str, cidr: &str, remove: bool) -> Result<()>;
    /// The addresses running VPS `name`'s interface was last given (where
    /// a reboot from inside finds them).
    async fn addresses(&self, name: &str) -> Result<Vec<String>>;
    /// Live usage of running VPS `name`.
    fn usage(&self, name: &str) -> Option<Usage>;
    /// The socket local clients attach exec and console through.
    fn control_socket(&self, name: &str) -> Option<String>;
    /// Its recent console output, newest last, at most `max` bytes.
    async fn console_log(&self, name: &str, max: usize) -> Vec<u8>;
    /// Run a command in running VPS `name`: its session, whose channels
    /// the API relays. Refused before anything runs if the VPS cannot
    /// take it.
    async fn exec(&self, name: &str, start: croft_api::exec::ExecStart) -> Result<session::ExecSession>;
    /// Attach to running VPS `name`'s console: a session whose input goes
    /// to it and whose output is what it shows (sizes apply, signals do
    /// not); dropping the session detaches, and the VPS runs on.
    async fn console(&self, name: &str) -> Result<session::ExecSession>;
}
