//! The services: what croftd does, over the seams it does it through.
//! Each service receives what it works with ([`Store`], [`Backend`], the
//! storage [`Pool`], the host network) and builds none of it, so the same
//! services run on the host for real and on the simulated backend in
//! tests.
//!
//! - [`instances`]: VPS lifecycle and the operations on disks;
//! - [`images`]: images built and imported;
//! - [`network`]: addresses, forwards, firewalls and the rules;
//! - [`jobs`]: long operations, with progress, that clients wait for;
//! - [`tenants`]: the customers VPSes belong to;
//! - [`access`]: API tokens, and the callers they prove;
//! - [`metrics`]: what VPSes and the host use, sampled in the background;
//! - [`history`]: those samples kept as each VPS's usage over time.

pub mod access;
pub mod error;
pub mod events;
pub mod history;
pub mod images;
pub mod instances;
pub mod jobs;
mod locks;
pub mod metrics;
pub mod network;
mod reclaim;
pub mod stream;
pub mod tenants;

use crate::backend::Backend;
use crate::config::DaemonConfig;
use crate::store::{InstanceRecord, Store};
use access::AccessService;
use croft_host::storage::Pool;
pub use error::{ErrorKind, Result, ServiceError};
use images::catalog::Catalog;
use images::ImageService;
use instances::InstanceService;
use jobs::Jobs;
use locks::Locks;
use network::{NetHost, NetworkService};
use reclaim::Reclaimer;
use std::sync::Arc;
use tenants::TenantService;

/// Every service, wired together: what the HTTP layer serves.
#[derive(Clone)]
pub struct Services {
    pub instances: Arc<InstanceService>,
    pub images: Arc<ImageService>,
    pub network: Arc<NetworkService>,
    pub tenants: Arc<TenantService>,
    pub access: Arc<AccessService>,
    pub jobs: Jobs,
    pub events: events::Events,
    pub metrics: Arc<metrics::MetricsService>,
    /// "container", "sim": what runs the VPSes.
    pub backend_kind: &'static str,
    pub cgroup_version: Option<&'static str>,
    /// The network listener, once it is up: what `GET /1.0` tells.
    pub https: Option<Https>,
}

/// Where the network listener is, and the fingerprint of its
/// certificate.
#[derive(Debug, Clone)]
pub struct Https {
    pub address: String,
    pub fingerprint: String,
    /// The address it is bound to (trust tokens carry the addresses it
    /// is reachable at, as of when they are made).
    pub bound: std::net::SocketAddr,
}

/// What the services are built from.
pub struct Seams {
    pub cfg: Arc<DaemonConfig>,
    pub store: Arc<dyn Store>,
    pub backend: Arc<dyn Backend>,
    pub pool: Arc<dyn Pool>,
    pub catalog: Catalog,
    pub net_host: Arc<dyn NetHost>,
}

impl Services {
    pub fn new(seams: Seams) -> Result<Services> {
        let Seams {
            cfg,
            store,
            backend,
            pool,
            catalog,
            net_host,
        } = seams;
        let events = events::Events::default();
        let jobs = Jobs::new(store.clone(), events.clone());
        let locks = Arc::new(Locks::default());
        let reclaimer = Arc::new(Reclaimer::new(pool.clone()));
        let network = Arc::new(
            NetworkService::new(&cfg.network, cfg.id_base, cfg.api_port(), store.clone(), net_host)
                .map_err(|e| ServiceError::Invalid(format!("[network] {e}")))?,
        );
        let images = Arc::new(ImageService::new(
            store.clone(),
            pool.clone(),
            catalog,
            jobs.clone(),
            locks.clone(),
            reclaimer.clone(),
        ));
        let tenants = Arc::new(TenantService::new(store.clone()));
        let metrics = Arc::new(metrics::MetricsService::new(
            store.clone(),
            backend.clone(),
            pool.clone(),
            network.clone(),
            jobs.clone(),
        ));
        let access = Arc::new(AccessService::new(store.clone()));
        let instances = Arc::new(InstanceService::new(instances::Deps {
            cfg,
            store,
            backend: backend.clone(),
            pool,
            images: images.clone(),
            network: network.clone(),
            jobs: jobs.clone(),
            events: events.clone(),
            locks,
            reclaimer,
        }));
        Ok(Services {
            instances,
            images,
            network,
            tenants,
            access,
            jobs,
            events,
            metrics,
            backend_kind: backend.kind(),
            cgroup_version: backend.cgroup_version(),
            https: None,
        })
    }
}

/// A VPS as its users name it: a name, unique within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VpsName<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
}

impl<'a> VpsName<'a> {
    pub fn new(tenant: &'a str, name: &'a str) -> VpsName<'a> {
        VpsName { tenant, name }
    }
}

impl std::fmt::Display for VpsName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The record of `vps`, its name checked first: a bad name is refused
/// (400), one its tenant has not not found (404), whether or not another
/// tenant has a VPS of that name.
pub(crate) async fn find(store: &dyn Store, vps: VpsName<'_>) -> Result<InstanceRecord> {
    croft_api::validate_name(vps.name).map_err(|e| ServiceError::invalid(&e))?;
    store
        .instance_named(vps.tenant, vps.name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("VPS {}", vps.name)))
}

/// The record of the VPS of key `key` (one found by name before, and
/// maybe deleted since).
pub(crate) async fn by_key(store: &dyn Store, key: &str) -> Result<InstanceRecord> {
    store
        .instance(key)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("VPS {key}")))
}
