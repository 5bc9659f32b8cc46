//! Metrics: a background sampler of what every VPS and the host use, kept
//! as one snapshot that `GET /metrics` renders in the Prometheus text
//! format, and croftd's own API requests, counted as they are served. A
//! scrape never collects (reading cgroups and the pool is the sampler's
//! job, every `metrics_interval` seconds), so scrapes cost a rendering and
//! never contend with each other or with the VPSes.

use crate::backend::Backend;
use crate::service::history::{Reading, Recorder};
use crate::service::network::NetworkService;
use crate::store::Store;
use croft_api::{Status, Usage};
use croft_host::storage::Pool;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tracing::warn;

/// One VPS as the last sample saw it.
#[derive(Debug, Clone)]
pub struct VpsSample {
    /// Its key, as the store names it.
    pub key: String,
    pub tenant: String,
    pub name: String,
    pub running: bool,
    /// Its cgroup's figures, while it runs.
    pub usage: Option<Usage>,
    /// Bytes its disk holds (as of the pool's last commit).
    pub disk_bytes: Option<u64>,
    pub disk_limit_bytes: Option<u64>,
    /// What its interfaces moved, as the VPS sees it, since they were
    /// made (at its start).
    pub network: Option<Network>,
}

/// Bytes and packets a VPS's interfaces moved, from its side.
#[derive(Debug, Clone, Copy, Default)]
pub struct Network {
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub sent_packets: u64,
    pub received_dropped: u64,
    pub sent_dropped: u64,
}

/// The storage pool as the last sample saw it.
#[derive(Debug, Clone, Copy)]
pub struct PoolSample {
    pub size_bytes: u64,
    pub used_bytes: u64,
}

/// A tenant as the last sample saw it: what it holds, against its quota.
#[derive(Debug, Clone)]
pub struct TenantSample {
    pub name: String,
    pub used: croft_api::QuotaUsage,
    pub quota: croft_api::Quota,
}

/// What one sample found.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When it was taken (seconds since the epoch); `None` before the
    /// first sample.
    pub taken_at: Option<f64>,
    pub vpses: Vec<VpsSample>,
    pub tenants: Vec<TenantSample>,
    pub pool: Option<PoolSample>,
    /// Operations (jobs) running in this croftd.
    pub operations: usize,
}

/// API requests served, by method, route (as registered) and status:
/// how many, and the seconds they took in all.
#[derive(Default)]
pub struct Requests {
    served: Mutex<BTreeMap<Served, Tally>>,
}

/// A kind of request served: method, route, status.
type Served = (String, &'static str, u16);
/// How many, and their seconds in all.
type Tally = (u64, f64);

impl Requests {
    /// Count one request of `method` on `route` answered `status` after
    /// `seconds`.
    pub fn record(&self, method: &str, route: &'static str, status: u16, seconds: f64) {
        let mut served = self.served.lock().expect("request counts poisoned");
        let entry = served.entry((method.to_string(), route, status)).or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }

    fn render(&self, out: &mut String) {
        let served = self.served.lock().expect("request counts poisoned").clone();
        let total = "croft_api_requests_total";
        let _ = writeln!(
            out,
            "# HELP {total} API requests croftd answered, by method, route and status.\n# TYPE {total} counter"
        );
        // The latency: a summary without quantiles (its sum and count),
        // per method and route.
        let mut latency: BTreeMap<(&str, &str), (u64, f64)> = BTreeMap::new();
        for ((method, route, status), (count, seconds)) in &served {
            let _ = writeln!(
                out,
                "{total}{{method=\"{}\",route=\"{}\",code=\"{status}\"}} {count}",
                label(method),
                label(route)
            );
            let entry = latency.entry((method.as_str(), route)).or_default();
            entry.0 += count;
            entry.1 += seconds;
        }
        let duration = "croft_api_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {duration} Time croftd took to answer API requests, by method and route.\n# TYPE {duration} summary"
        );
        for ((method, route), (count, seconds)) in latency {
            let labels = format!("method=\"{}\",route=\"{}\"", label(method), label(route));
            let _ = writeln!(
                out,
                "{duration}_sum{{{labels}}} {seconds}\n{duration}_count{{{labels}}} {count}"
            );
        }
    }
}

pub struct MetricsService {
    /// The API requests served, counted by the route table's layer.
    pub requests: Requests,
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    pool: Arc<dyn Pool>,
    network: Arc<NetworkService>,
    jobs: crate::service::jobs::Jobs,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Folds samples into the minute points of the usage history.
    history: Recorder,
    /// Each VPS disk's bytes, by key, and when they were read.
    disks: Mutex<Option<(f64, Disks)>>,
}

/// Each VPS disk's bytes, by key.
type Disks = std::collections::HashMap<String, u64>;

/// Seconds between reads of the disks' bytes: btrfs brings its quota
/// groups' figures up to date at its commits, every 30 s by default, so a
/// read between two commits would read the same again (at the cost of two
/// `btrfs` runs).
const DISKS_EVERY: f64 = 30.0;

impl MetricsService {
    pub fn new(
        store: Arc<dyn Store>,
        backend: Arc<dyn Backend>,
        pool: Arc<dyn Pool>,
        network: Arc<NetworkService>,
        jobs: crate::service::jobs::Jobs,
    ) -> MetricsService {
        MetricsService {
            requests: Requests::default(),
            store,
            backend,
            pool,
            network,
            jobs,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            history: Recorder::default(),
            disks: Mutex::new(None),
        }
    }

    /// Take a sample of every VPS and the pool, make it the one scrapes
    /// render, and keep the minutes it finished in the usage history.
    pub async fn sample(&self) -> crate::service::Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        self.sample_at(now).await
    }

    /// The disks' bytes: read again when the last good read is
    /// [`DISKS_EVERY`] old (or from a clock that went back). A failed read
    /// gives none this time and is tried again at the next sample.
    async fn disks(&self, now: f64) -> crate::service::Result<Disks> {
        let last = self.disks.lock().expect("disks lock poisoned").clone();
        if let Some((_, disks)) = last.filter(|(at, _)| (0.0..DISKS_EVERY).contains(&(now - at))) {
            return Ok(disks);
        }
        let pool = self.pool.clone();
        match crate::blocking(move || pool.usages()).await? {
            Ok(disks) => {
                *self.disks.lock().expect("disks lock poisoned") = Some((now, disks.clone()));
                Ok(disks)
            }
            Err(e) => {
                warn!("metrics: the disks' bytes: {e}");
                Ok(Disks::new())
            }
        }
    }

    /// [`Self::sample`], as if taken at `now` (seconds since the epoch).
    pub async fn sample_at(&self, now: f64) -> crate::service::Result<()> {
        let rows = self.store.instances().await?;
        let usages = self.disks(now).await?;
        let pool = self.pool.clone();
        let info = crate::blocking(move || pool.info().ok()).await?;
        // Every interface's counters in one read.
        let counters = match self.network.all_counters().await {
            Ok(counters) => counters,
            Err(e) => {
                warn!("metrics: the interfaces: {}", crate::error_chain(&e));
                Default::default()
            }
        };
        let mut vpses = Vec::with_capacity(rows.len());
        for row in rows {
            let running = row.status == Status::Running;
            // The host end of an interface receives what the VPS sends.
            let network = counters.get(&row.key).filter(|_| running).map(|c| Network {
                received_bytes: c.tx_bytes,
                sent_bytes: c.rx_bytes,
                received_packets: c.tx_packets,
                sent_packets: c.rx_packets,
                // Dropped at the host end on the way in is what the VPS
                // did not receive, and the other way round.
                received_dropped: c.tx_dropped,
                sent_dropped: c.rx_dropped,
            });
            vpses.push(VpsSample {
                usage: running.then(|| self.backend.usage(&row.key)).flatten(),
                disk_bytes: usages.get(&row.key).copied(),
                disk_limit_bytes: row.settings.parsed.disk_bytes,
                network,
                running,
                key: row.key,
                tenant: row.tenant,
                name: row.name,
            });
        }
        let readings: Vec<(String, Reading)> = vpses
            .iter()
            .filter_map(|v| {
                let usage = v.usage.as_ref()?;
                Some((
                    v.key.clone(),
                    Reading {
                        cpu_ns: usage.cpu_usage_ns,
                        memory_bytes: usage.memory_bytes,
                        processes: usage.processes,
                        net_in_bytes: v.network.map(|n| n.received_bytes),
                        net_out_bytes: v.network.map(|n| n.sent_bytes),
                        disk_read_bytes: usage.disk_io.map(|d| d.read_bytes),
                        disk_write_bytes: usage.disk_io.map(|d| d.written_bytes),
                    },
                ))
            })
            .collect();
        let mut tenants = Vec::new();
        for tenant in self.store.tenants().await? {
            let used = self.store.tenant_usage(&tenant.name).await?;
            tenants.push(TenantSample {
                name: tenant.name,
                used,
                quota: tenant.quota,
            });
        }
        let snapshot = Snapshot {
            taken_at: Some(now),
            tenants,
            operations: self.jobs.in_flight(),
            vpses,
            pool: info.map(|i| PoolSample {
                size_bytes: i.size_bytes,
                used_bytes: i.used_bytes,
            }),
        };
        *self.snapshot.write().expect("metrics lock poisoned") = Arc::new(snapshot);
        let finished = self.history.record(now, &readings);
        if !finished.is_empty() {
            self.store.record_history(&finished).await?;
        }
        Ok(())
    }

    /// Sample every `every`, from now on, for as long as croftd runs.
    pub fn spawn(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.sample().await {
                    warn!("metrics sample: {}", crate::error_chain(&e));
                }
            }
        })
    }

    /// The last sample.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("metrics lock poisoned").clone()
    }

    /// The last sample in the Prometheus text format: the series of
    /// `tenant`'s VPSes only if given (a tenant's caller), else every
    /// VPS's and the host's.
    pub fn render(&self, tenant: Option<&str>) -> String {
        let mut out = render(&self.snapshot(), tenant);
        if tenant.is_none() {
            self.requests.render(&mut out);
        }
        out
    }
}

/// One metric family: its name, help, type, and a value per VPS.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: fn(&VpsSample) -> Option<f64>,
}

const VPS_FAMILIES: &[Family] = &[
    Family {
        name: "croft_vps_running",
        help: "Whether the VPS runs (1) or not (0).",
        kind: "gauge",
        value: |v| Some(if v.running { 1.0 } else { 0.0 }),
    },
    Family {
        name: "croft_vps_cpu_seconds_total",
        help: "CPU time the VPS used since it started, in seconds.",
        kind: "counter",
        value: |v| v.usage.as_ref().map(|u| u.cpu_usage_ns as f64 / 1e9),
    },
    Family {
        name: "croft_vps_memory_bytes",
        help: "Memory the VPS uses, page cache included, in bytes.",
        kind: "gauge",
        value: |v| v.usage.as_ref().map(|u| u.memory_bytes as f64),
    },
    Family {
        name: "croft_vps_memory_limit_bytes",
        help: "The VPS's memory limit, in bytes.",
        kind: "gauge",
        value: |v| {
            v.usage
                .as_ref()
                .and_then(|u| u.memory_limit_bytes)
                .map(|b| b as f64)
        },
    },
    Family {
        name: "croft_vps_oom_kills_total",
        help: "Processes of the VPS the OOM killer killed since it started.",
        kind: "counter",
        value: |v| v.usage.as_ref().map(|u| u.oom_kills as f64),
    },
    Family {
        name: "croft_vps_processes",
        help: "Processes and threads in the VPS.",
        kind: "gauge",
        value: |v| v.usage.as_ref().map(|u| u.processes as f64),
    },
    Family {
        name: "croft_vps_network_receive_bytes_total",
        help: "Bytes the VPS's interfaces received since it started.",
        kind: "counter",
        value: |v| v.network.map(|n| n.received_bytes as f64),
    },
    Family {
        name: "croft_vps_network_transmit_bytes_total",
        help: "Bytes the VPS's interfaces sent since it started.",
        kind: "counter",
        value: |v| v.network.map(|n| n.sent_bytes as f64),
    },
    Family {
        name: "croft_vps_network_receive_packets_total",
        help: "Packets the VPS's interfaces received since it started.",
        kind: "counter",
        value: |v| v.network.map(|n| n.received_packets as f64),
    },
    Family {
        name: "croft_vps_network_transmit_packets_total",
        help: "Packets the VPS's interfaces sent since it started.",
        kind: "counter",
        value: |v| v.network.map(|n| n.sent_packets as f64),
    },
    Family {
        name: "croft_vps_network_receive_drops_total",
        help: "Packets to the VPS its interfaces dropped since it started.",
        kind: "counter",
        value: |v| v.network.map(|n| n.received_dropped as f64),
    },
    Family {
        name: "croft_vps_network_transmit_drops_total",
        help: "Packets from the VPS its interfaces dropped since it started.",
        kind: "counter",
        value: |v| v.network.map(|n| n.sent_dropped as f64),
    },
    Family {
        name: "croft_vps_disk_read_bytes_total",
        help: "Bytes the VPS read from the pool's device since it started (not from the page cache).",
        kind: "counter",
        value: |v| disk_io(v).map(|d| d.read_bytes as f64),
    },
    Family {
        name: "croft_vps_disk_written_bytes_total",
        help: "Bytes the VPS wrote to the pool's device since it started (on cgroup v1 hosts, not what the kernel's flusher writes back from the page cache).",
        kind: "counter",
        value: |v| disk_io(v).map(|d| d.written_bytes as f64),
    },
    Family {
        name: "croft_vps_disk_reads_total",
        help: "Read requests the VPS submitted to the pool's device since it started.",
        kind: "counter",
        value: |v| disk_io(v).map(|d| d.reads as f64),
    },
    Family {
        name: "croft_vps_disk_writes_total",
        help: "Write requests the VPS submitted to the pool's device since it started (on cgroup v1 hosts, not the page cache's writeback).",
        kind: "counter",
        value: |v| disk_io(v).map(|d| d.writes as f64),
    },
    Family {
        name: "croft_vps_disk_used_bytes",
        help: "Bytes the VPS's disk holds, as of the pool's last commit (read every 30 s).",
        kind: "gauge",
        value: |v| v.disk_bytes.map(|b| b as f64),
    },
    Family {
        name: "croft_vps_disk_limit_bytes",
        help: "The VPS's disk limit, in bytes.",
        kind: "gauge",
        value: |v| v.disk_limit_bytes.map(|b| b as f64),
    },
];

/// A running VPS's disk I/O counts, where the host counts them.
fn disk_io(v: &VpsSample) -> Option<croft_api::DiskIoCounts> {
    v.usage.as_ref()?.disk_io
}

/// A label value as the text format wants it: `\`, `"` and newlines
/// escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render(snapshot: &Snapshot, tenant: Option<&str>) -> String {
    let mut out = String::new();
    let vpses: Vec<&VpsSample> = snapshot
        .vpses
        .iter()
        .filter(|v| tenant.is_none_or(|t| v.tenant == t))
        .collect();
    for family in VPS_FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
        for vps in &vpses {
            if let Some(value) = (family.value)(vps) {
                let _ = writeln!(
                    out,
                    "{}{{tenant=\"{}\",vps=\"{}\"}} {value}",
                    family.name,
                    label(&vps.tenant),
                    label(&vps.name)
                );
            }
        }
    }
    if tenant.is_none() {
        if let Some(pool) = snapshot.pool {
            for (name, help, value) in [
                (
                    "croft_pool_size_bytes",
                    "The storage pool's size, in bytes.",
                    pool.size_bytes,
                ),
                (
                    "croft_pool_used_bytes",
                    "Bytes the storage pool holds.",
                    pool.used_bytes,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
            }
        }
    }
    render_tenants(&mut out, snapshot, tenant);
    if tenant.is_none() {
        let name = "croft_operations_running";
        let _ = writeln!(
            out,
            "# HELP {name} Operations (jobs: launches, rebuilds, copies, ...) running now.\n# TYPE {name} gauge\n{name} {}",
            snapshot.operations
        );
    }
    if let Some(at) = snapshot.taken_at {
        let name = "croft_metrics_sample_timestamp_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} When these figures were sampled, in seconds since the epoch.\n# TYPE {name} gauge\n{name} {at}"
        );
    }
    out
}

/// Each tenant's usage and quota, by what they count (a tenant's caller:
/// its own only). A quantity without a cap has no quota series.
fn render_tenants(out: &mut String, snapshot: &Snapshot, only: Option<&str>) {
    type Pick = fn(&croft_api::QuotaUsage, &croft_api::Quota) -> (u64, Option<u64>);
    const QUANTITIES: &[(&str, Pick)] = &[
        ("vpses", |u, q| (u.vpses, q.vpses)),
        ("cpu_millicores", |u, q| (u.cpu_millicores, q.cpu_millicores)),
        ("memory_bytes", |u, q| (u.memory_bytes, q.memory_bytes)),
        ("disk_bytes", |u, q| (u.disk_bytes, q.disk_bytes)),
        ("snapshots", |u, q| (u.snapshots, q.snapshots)),
        ("ipv4_addresses", |u, q| (u.ipv4_addresses, q.ipv4_addresses)),
        ("port_forwards", |u, q| (u.port_forwards, q.port_forwards)),
    ];
    let tenants: Vec<&TenantSample> = snapshot
        .tenants
        .iter()
        .filter(|t| only.is_none_or(|o| t.name == o))
        .collect();
    for (kind, help, quota) in [
        ("croft_tenant_usage", "What the tenant holds", false),
        ("croft_tenant_quota", "The tenant's quota", true),
    ] {
        let _ = writeln!(
            out,
            "# HELP {kind} {help}, by quantity (vpses, cpu_millicores, memory_bytes, disk_bytes, snapshots, ipv4_addresses, port_forwards).\n# TYPE {kind} gauge"
        );
        for t in &tenants {
            for (quantity, pick) in QUANTITIES {
                let (used, cap) = pick(&t.used, &t.quota);
                let value = if quota { cap } else { Some(used) };
                if let Some(value) = value {
                    let _ = writeln!(
                        out,
                        "{kind}{{tenant=\"{}\",quantity=\"{quantity}\"}} {value}",
                        label(&t.name)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vps(tenant: &str, name: &str, running: bool) -> VpsSample {
        VpsSample {
            key: name.into(),
            tenant: tenant.into(),
            name: name.into(),
            running,
            usage: running.then_some(Usage {
                memory_bytes: 64 << 20,
                memory_limit_bytes: Some(256 << 20),
                oom_kills: 1,
                cpu_usage_ns: 2_500_000_000,
                processes: 7,
                disk_io: Some(croft_api::DiskIoCounts {
                    read_bytes: 4096,
                    written_bytes: 8192,
                    reads: 1,
                    writes: 2,
                }),
            }),
            disk_bytes: Some(10 << 20),
            disk_limit_bytes: None,
            network: running.then_some(Network {
                received_bytes: 1000,
                sent_bytes: 2000,
                received_packets: 10,
                sent_packets: 20,
                received_dropped: 1,
                sent_dropped: 0,
            }),
        }
    }

    #[test]
    fn a_tenant_sees_only_its_own_series_and_no_host_figures() {
        let tenant = |name: &str, vpses: u64| TenantSample {
            name: name.into(),
            used: croft_api::QuotaUsage {
                vpses,
                ..Default::default()
            },
            quota: croft_api::Quota {
                vpses: Some(5),
                ..Default::default()
            },
        };
        let snapshot = Snapshot {
            taken_at: Some(1_800_000_000.5),
            vpses: vec![vps("acme", "web1", true), vps("beta", "db", false)],
            tenants: vec![tenant("acme", 1), tenant("beta", 2)],
            pool: Some(PoolSample {
                size_bytes: 100,
                used_bytes: 40,
            }),
            operations: 3,
        };
        let all = render(&snapshot, None);
        assert!(
            all.contains("croft_vps_cpu_seconds_total{tenant=\"acme\",vps=\"web1\"} 2.5\n"),
            "{all}"
        );
        assert!(
            all.contains("croft_vps_running{tenant=\"beta\",vps=\"db\"} 0\n"),
            "{all}"
        );
        assert!(all.contains("croft_pool_used_bytes 40\n"), "{all}");
        assert!(
            all.contains("# TYPE croft_vps_oom_kills_total counter\n"),
            "{all}"
        );
        assert!(
            all.contains("croft_vps_network_transmit_bytes_total{tenant=\"acme\",vps=\"web1\"} 2000\n"),
            "{all}"
        );
        // A stopped VPS has no usage figures, only its state and disk.
        assert!(!all.contains("croft_vps_memory_bytes{tenant=\"beta\""), "{all}");
        assert!(
            all.contains("croft_tenant_usage{tenant=\"beta\",quantity=\"vpses\"} 2\n"),
            "{all}"
        );
        assert!(
            all.contains("croft_tenant_quota{tenant=\"acme\",quantity=\"vpses\"} 5\n"),
            "{all}"
        );
        assert!(
            !all.contains("quantity=\"memory_bytes\"} 0\ncroft_tenant_quota"),
            "{all}"
        );
        assert!(all.contains("croft_operations_running 3\n"), "{all}");
        assert!(
            all.contains("croft_vps_network_receive_drops_total{tenant=\"acme\",vps=\"web1\"} 1\n"),
            "{all}"
        );
        assert!(
            all.contains("croft_vps_disk_written_bytes_total{tenant=\"acme\",vps=\"web1\"} 8192\n"),
            "{all}"
        );
        assert!(
            all.contains("croft_vps_disk_reads_total{tenant=\"acme\",vps=\"web1\"} 1\n"),
            "{all}"
        );
        let acme = render(&snapshot, Some("acme"));
        assert!(acme.contains("vps=\"web1\""), "{acme}");
        assert!(!acme.contains("beta"), "{acme}");
        assert!(!acme.contains("croft_pool"), "{acme}");
        assert!(!acme.contains("croft_operations_running"), "{acme}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
