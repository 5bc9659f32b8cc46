//! What a tenant may hold (its quota), what it holds (its usage), and
//! plans: named VPS sizes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hard caps on what a tenant's VPSes hold together; `None`: no cap.
/// With a cap on CPU, memory, disk or processes, every VPS of the tenant
/// must have that limit set (a VPS without one would escape the cap).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    #[serde(default)]
    pub vpses: Option<u64>,
    /// Total `limits.cpu` of its VPSes, in thousandths of a CPU.
    #[serde(default)]
    pub cpu_millicores: Option<u64>,
    /// Total `limits.memory`.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Total `limits.disk`.
    #[serde(default)]
    pub disk_bytes: Option<u64>,
    /// Highest `limits.processes` of any one VPS.
    #[serde(default)]
    pub processes_per_vps: Option<u64>,
    #[serde(default)]
    pub snapshots: Option<u64>,
    #[serde(default)]
    pub ipv4_addresses: Option<u64>,
    #[serde(default)]
    pub port_forwards: Option<u64>,
    #[serde(default)]
    pub firewall_rules: Option<u64>,
}

/// What a tenant's VPSes hold, in the units of [`Quota`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaUsage {
    pub vpses: u64,
    pub cpu_millicores: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    /// The highest `limits.processes` of any one VPS.
    pub processes_per_vps: u64,
    pub snapshots: u64,
    pub ipv4_addresses: u64,
    pub port_forwards: u64,
    pub firewall_rules: u64,
}

/// `GET /1.0/tenants/{name}/usage`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TenantUsage {
    pub tenant: String,
    pub used: QuotaUsage,
    pub quota: Quota,
}

/// A plan: a named VPS size, its `limits.*` settings, which `croft
/// launch --plan` applies.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub description: String,
    /// `limits.cpu`, `limits.memory`, `limits.disk`, `limits.processes`...
    pub config: BTreeMap<String, String>,
}

/// What `POST /1.0/plans` takes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlanCreate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub config: BTreeMap<String, String>,
}
