//! The network service: the bridge and the rules, an interface with
//! addresses for every VPS (IPAM, see [`ipam`]), port forwards and
//! firewalls, and the views of all of it. The rules are always rebuilt
//! from the store, so applying them is idempotent and a croftd restart
//! restores them; what they change on the host goes through [`NetHost`].

mod groups;
pub mod host;
pub mod ipam;

use super::{Result, ServiceError, VpsName};
use crate::store::{
    ForwardRecord, GroupRecord, InstanceRecord, NicRecord, RuleEdit, RuleRecord, Store, StoreError,
};
use croft_api::config::InstanceConfig;
use croft_host::net::{nft, NetError, NicSpec};
pub use host::{KernelNet, NetHost, SimNet};
use ipam::{host_if, new_mac, Network, NetworkConfig, NetworkError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tracing::info;

impl From<NetworkError> for ServiceError {
    fn from(e: NetworkError) -> ServiceError {
        match e {
            NetworkError::Exhausted { .. } => ServiceError::Conflict(e.to_string()),
            _ => ServiceError::Invalid(e.to_string()),
        }
    }
}

fn net_err(what: &'static str) -> impl FnOnce(NetError) -> ServiceError {
    move |e| ServiceError::host(what, e)
}

/// The rules of the VPS with `nic` (whose settings are `settings`), from
/// the stored forwards and firewall rules of all VPSes.
fn vps_rules(
    nic: &NicRecord,
    forwards: &[ForwardRecord],
    rules: &[RuleRecord],
    groups: &[GroupRecord],
    settings: &InstanceConfig,
    isolated: bool,
) -> Result<nft::VpsRules> {
    Ok(nft::VpsRules {
        host_if: nic.host_if.clone(),
        isolated,
        mac: croft_host::net::parse_mac(&nic.mac).map_err(net_err("read a stored MAC"))?,
        ipv4: nic.ipv4.as_deref().and_then(|a| a.parse().ok()),
        ipv6: nic.ipv6.as_deref().and_then(|a| a.parse().ok()),
        extra: nic.extra.iter().filter_map(|a| a.parse().ok()).collect(),
        delegated: nic.extra.iter().filter_map(|a| parse_prefix(a)).collect(),
        // Forwards go to the first interface.
        forwards: forwards
            .iter()
            .filter(|f| f.instance == nic.instance && nic.index == 0)
            .map(|f| nft::PortForward {
                protocol: f.protocol.clone(),
                host_port: f.host_port,
                vps_port: f.vps_port,
                host_port_end: f.host_port_end,
            })
            .collect(),
        firewall: firewall_for(&nic.instance, settings, rules, groups),
        provider_exempt: settings.provider_exempt,
    })
}

/// The host-side firewall of VPS `name`. Stored rules were validated on
/// the way in.
fn firewall_for(
    name: &str,
    settings: &InstanceConfig,
    rules: &[RuleRecord],
    groups: &[GroupRecord],
) -> nft::Firewall {
    let own = rules.iter().filter(|r| r.instance == name).map(|r| &r.rule);
    let rules: Vec<nft::FirewallRule> = own
        .chain(attached(name, groups).flat_map(|g| g.rules.iter()))
        .map(|r| nft::FirewallRule {
            inbound: r.direction != "out",
            allow: r.action == "allow",
            protocol: r.protocol.clone(),
            ports: r
                .port
                .as_deref()
                .and_then(|p| croft_api::parse_port_range(p).ok()),
            remote: r
                .source
                .as_deref()
                .or(r.destination.as_deref())
                .and_then(|s| croft_api::parse_source(s).ok()),
        })
        .collect();
    nft::Firewall {
        default_deny_in: settings.firewall_deny,
        default_deny_out: settings.firewall_deny_out,
        rules,
    }
}

/// The groups attached to VPS `name` (its key), in the order attached.
fn attached<'g>(name: &str, groups: &'g [GroupRecord]) -> impl Iterator<Item = &'g GroupRecord> {
    let mut mine: Vec<(i64, &GroupRecord)> = groups
        .iter()
        .filter_map(|g| g.members.iter().find(|(k, _)| k == name).map(|(_, at)| (*at, g)))
        .collect();
    mine.sort_by_key(|(at, _)| *at);
    mine.into_iter().map(|(_, g)| g)
}

/// A delegated IPv6 prefix as stored: `2001:db8:100:1::/64`.
fn parse_prefix(text: &str) -> Option<(std::net::Ipv6Addr, u8)> {
    let (net, len) = text.split_once('/')?;
    Some((net.parse().ok()?, len.parse().ok()?))
}

/// The VPS (key) of network `network` whose delegated prefix holds `addr`.
fn prefix_holder(nics: &[NicRecord], network: &str, addr: IpAddr) -> Option<String> {
    let IpAddr::V6(addr) = addr else { return None };
    nics.iter()
        .filter(|n| n.network == network)
        .find(|n| {
            n.extra
                .iter()
                .filter_map(|p| parse_prefix(p))
                .any(|p| overlaps(p, (addr, 128)))
        })
        .map(|n| n.instance.clone())
}

/// The lowest free address of network `net`'s `subnet` (trying `prefer`
/// first) that none of its delegated prefixes holds.
fn allocate_outside_prefixes(
    net: &Network,
    subnet: ipam::Subnet,
    mut used: HashSet<IpAddr>,
    prefer: Option<u128>,
    nics: &[NicRecord],
) -> Result<IpAddr> {
    loop {
        let a = net.allocate(subnet, &used, prefer)?;
        if prefix_holder(nics, &net.name, a).is_none() {
            return Ok(a);
        }
        used.insert(a);
    }
}

/// Whether two IPv6 prefixes share an address.
fn overlaps((a, la): (std::net::Ipv6Addr, u8), (b, lb): (std::net::Ipv6Addr, u8)) -> bool {
    let len = la.min(lb);
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    (u128::from(a) & mask) == (u128::from(b) & mask)
}

/// Check the `[network]` settings croftd's configuration gives, as its
/// start would read them.
pub fn check_config(cfg: &NetworkConfig) -> Result<(), NetworkError> {
    Network::from_config(cfg)?;
    services("host_services", &cfg.host_services)?;
    services("blocked_egress", &cfg.blocked_egress)?;
    Ok(())
}

/// `protocol/port[-port]` settings of `[network]` `key`.
fn services(key: &'static str, texts: &[String]) -> Result<Vec<nft::Service>, NetworkError> {
    texts
        .iter()
        .map(|text| {
            croft_api::parse_blocked(text)
                .map(|(protocol, ports)| nft::Service { protocol, ports })
                .map_err(|e| NetworkError::Config {
                    key,
                    why: e.to_string(),
                })
        })
        .collect()
}

/// The most interfaces a VPS has (`eth0` to `eth7`).
pub const MAX_NICS: u32 = 8;

/// Addresses a launch asks for, checked against the network before
/// anything is created.
#[derive(Debug, Default, Clone)]
pub struct AddressRequest {
    /// The network's name (empty: the default network).
    pub network: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    /// A fixed MAC (`0e:cf:...`, lower case).
    pub mac: Option<String>,
}

pub struct NetworkService {
    store: Arc<dyn Store>,
    host: Arc<dyn NetHost>,
    /// Whether VPSes get a network at all (`[network] enabled`).
    enabled: bool,
    /// The networks VPSes join, by name: `default` (croftd's
    /// configuration's `[network]`) and those made through the API.
    networks: std::sync::RwLock<BTreeMap<String, Network>>,
    reserved_ports: Vec<u16>,
    /// What VPSes may reach on the host (`[network] host_services`).
    host_services: Vec<nft::Service>,
    /// The provider's outbound rules (`[network] blocked_egress`).
    blocked_egress: Vec<nft::Service>,
    /// The first id range's base: interface names count ranges from it.
    id_base: u32,
    /// Held while addresses are chosen and recorded.
    ipam: tokio::sync::Mutex<()>,
    /// VPS ports whose rules are in the loaded ruleset; held while rules
    /// are rebuilt, so two rebuilds never interleave.
    rules_loaded: tokio::sync::Mutex<HashSet<String>>,
    /// Rules of new VPS ports waiting to be added (port, `nft` input):
    /// whoever holds `rules_loaded` next adds all of them in one `nft`
    /// run, so concurrent launches share one.
    rules_queue: Mutex<Vec<(String, String)>>,
    /// Bridged traffic passes the IP hooks (br_netfilter), so per-VPS
    /// firewalls can be enforced.
    firewall_capable: AtomicBool,
    /// How many full loads there have been, counted under `rules_loaded`:
    /// a change computed against the rules as loaded before another full
    /// load must not be applied incrementally.
    full_loads: std::sync::atomic::AtomicU64,
}

/// `c` added to a VPS's interfaces' sum so far. The sum's index mixes its
/// interfaces' (a new one, or one made anew, gives a new index, as a
/// single interface's would).
fn add_counters(
    sum: Option<croft_host::net::LinkCounters>,
    c: croft_host::net::LinkCounters,
) -> croft_host::net::LinkCounters {
    match sum {
        None => c,
        Some(s) => croft_host::net::LinkCounters {
            index: s.index.wrapping_mul(0x0100_0193) ^ c.index,
            rx_bytes: s.rx_bytes + c.rx_bytes,
            tx_bytes: s.tx_bytes + c.tx_bytes,
            rx_packets: s.rx_packets + c.rx_packets,
            tx_packets: s.tx_packets + c.tx_packets,
            rx_dropped: s.rx_dropped + c.rx_dropped,
            tx_dropped: s.tx_dropped + c.tx_dropped,
        },
    }
}

impl NetworkService {
    /// `api_port`: the port croftd serves its API on to remote callers,
    /// reserved like `reserved_ports`.
    pub fn new(
        cfg: &NetworkConfig,
        id_base: u32,
        api_port: Option<u16>,
        store: Arc<dyn Store>,
        host: Arc<dyn NetHost>,
    ) -> Result<NetworkService, NetworkError> {
        Ok(NetworkService {
            store,
            host,
            enabled: cfg.enabled,
            networks: std::sync::RwLock::new(
                cfg.enabled
                    .then(|| Network::from_config(cfg))
                    .transpose()?
                    .map(|n| (n.name.clone(), n))
                    .into_iter()
                    .collect(),
            ),
            reserved_ports: cfg.reserved_ports.iter().copied().chain(api_port).collect(),
            host_services: services("host_services", &cfg.host_services)?,
            blocked_egress: services("blocked_egress", &cfg.blocked_egress)?,
            id_base,
            ipam: tokio::sync::Mutex::new(()),
            rules_loaded: tokio::sync::Mutex::new(HashSet::new()),
            rules_queue: Mutex::new(Vec::new()),
            firewall_capable: AtomicBool::new(false),
            full_loads: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Run `f` with the host network off the async threads.
    async fn on_host<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn NetHost) -> T + Send + 'static,
    ) -> Result<T> {
        let host = self.host.clone();
        Ok(crate::blocking(move || f(host.as_ref())).await?)
    }

    /// The network named `name`, if there is one.
    pub fn network_named(&self, name: &str) -> Option<Network> {
        self.networks
            .read()
            .expect("networks poisoned")
            .get(name)
            .cloned()
    }

    /// Every network, by name.
    fn all_networks(&self) -> Vec<Network> {
        self.networks
            .read()
            .expect("networks poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Make sure network `net`'s bridge is up with its gateways; whether
    /// the host passes bridged traffic through the IP hooks.
    async fn bring_up(&self, net: &Network) -> Result<bool> {
        let (addresses, routes) = (net.bridge_addresses(), net.bridge_routes());
        let bridge = net.bridge.clone();
        if !net.bridged() {
            return self
                .on_host(move |h| h.ensure_bridge(&bridge, &addresses, &routes))
                .await?
                .map_err(net_err("set up the network bridge"));
        }
        // A bridged network's bridge is the admin's: never made, addressed
        // or set up here.
        if !self
            .on_host({
                let bridge = bridge.clone();
                move |h| h.is_bridge(&bridge)
            })
            .await?
        {
            return Err(ServiceError::Invalid(format!(
                "network {} is bridged to {bridge}, which is not a bridge on the host",
                net.name
            )));
        }
        let capable = self
            .on_host(|h| h.bridge_netfilter())
            .await?
            .map_err(net_err("pass bridged traffic through the IP hooks"))?;
        // Without br_netfilter what its VPSes send stays on the link, past
        // every firewall and the provider's rules.
        if !capable {
            return Err(ServiceError::Invalid(format!(
                "network {} needs br_netfilter (bridged traffic through the firewall), which this host lacks",
                net.name
            )));
        }
        Ok(true)
    }

    /// Bring up every network's bridge and load the rules: at every
    /// croftd start.
    pub async fn setup(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let dns = self
            .network_named(ipam::DEFAULT_NETWORK)
            .map(|n| n.dns)
            .unwrap_or_default();
        for record in self.store.networks().await? {
            let net = Network::from_record(&record, dns.clone()).map_err(|e| {
                ServiceError::host("read the stored networks", std::io::Error::other(e.to_string()))
            })?;
            self.networks
                .write()
                .expect("networks poisoned")
                .insert(net.name.clone(), net);
        }
        let mut capable = true;
        for net in self.all_networks() {
            match self.bring_up(&net).await {
                Ok(up) => capable &= up,
                // The admin's bridge gone: its VPSes cannot start until it
                // is back; the others can.
                Err(e) if net.bridged() => {
                    tracing::warn!(network = %net.name, "{}", crate::error_chain(&e))
                }
                Err(e) => return Err(e),
            }
        }
        self.firewall_capable.store(capable, Ordering::Relaxed);
        if !capable {
            tracing::warn!("no br_netfilter on this host: per-VPS firewalls are refused");
        }
        self.apply_rules().await?;
        // Delegated prefixes are routed again (a bridge made anew lost them).
        for nic in self.store.nics().await? {
            for prefix in nic.extra.iter().filter_map(|a| parse_prefix(a)) {
                let row = super::by_key(self.store.as_ref(), &nic.instance).await?;
                self.route_prefix(&row, prefix, false).await?;
            }
        }
        self.sync_proxies().await?;
        self.remove_stray_links().await?;
        info!(
            networks = self.all_networks().len(),
            host = self.host.kind(),
            "network up"
        );
        Ok(())
    }

    /// Rebuild croft's nftables rules from the store and load them. A
    /// VPS's anti-spoofing rules must be loaded before it first starts
    /// ([`Self::load_rules_for`]); everything else that changes rules
    /// calls this at once.
    pub async fn apply_rules(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let networks = self.all_networks();
        let isolated: HashMap<&str, bool> = networks.iter().map(|n| (n.name.as_str(), n.isolated)).collect();
        let mut loaded = self.rules_loaded.lock().await;
        let nics = self.store.nics().await?;
        let forwards = self.store.forwards().await?;
        let rules = self.store.firewall_rules().await?;
        let groups = self.store.firewall_groups(None).await?;
        let settings: HashMap<String, InstanceConfig> = self
            .store
            .instances()
            .await?
            .into_iter()
            .map(|i| (i.key, i.settings.parsed))
            .collect();
        let vpses = nics
            .iter()
            .filter_map(|n| Some((n, settings.get(&n.instance)?)))
            .map(|(n, settings)| {
                let isolated = isolated.get(n.network.as_str()).copied().unwrap_or(false);
                vps_rules(n, &forwards, &rules, &groups, settings, isolated)
            })
            .collect::<Result<Vec<_>>>()?;
        let ruleset = nft::Ruleset {
            networks: networks
                .iter()
                .map(|net| nft::NetworkRules {
                    bridge: net.bridge.clone(),
                    ipv4_subnet: net.ipv4.and_then(|s| match s.network() {
                        IpAddr::V4(a) => Some((a, s.prefix)),
                        IpAddr::V6(_) => None,
                    }),
                    ipv6_subnet: net.ipv6.and_then(|s| match s.network() {
                        IpAddr::V6(a) => Some((a, s.prefix)),
                        IpAddr::V4(_) => None,
                    }),
                    nat: net.nat,
                    isolated: net.isolated,
                    bridged: net.bridged(),
                })
                .collect(),
            host_services: self.host_services.clone(),
            blocked_egress: self.blocked_egress.clone(),
            vpses,
        };
        let text = nft::render(&ruleset);
        self.on_host(move |h| h.apply_rules(&text))
            .await?
            .map_err(net_err("apply the network rules"))?;
        *loaded = nics.into_iter().map(|n| n.host_if).collect();
        self.full_loads.fetch_add(1, Ordering::SeqCst);
        // Queued ports are in this load, or (made after it read the
        // store) not marked loaded: their launches reload again.
        self.rules_queue.lock().expect("rules queue").clear();
        Ok(())
    }

    /// Make each routed network's uplink answer for its addresses, as the
    /// store has them: ARP for the pools routed to its bridge, neighbour
    /// discovery for exactly its VPSes' IPv6 addresses.
    pub async fn sync_proxies(&self) -> Result<()> {
        // Networks sharing an uplink share its proxy entries.
        let mut uplinks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for net in self.all_networks() {
            if let Some(uplink) = net.uplink {
                uplinks.entry(uplink).or_default().push(net.name);
            }
        }
        if uplinks.is_empty() {
            return Ok(());
        }
        let nics = self.store.nics().await?;
        for (uplink, networks) in uplinks {
            let ipv6: Vec<std::net::Ipv6Addr> = nics
                .iter()
                .filter(|n| networks.contains(&n.network))
                .flat_map(|n| n.ipv6.iter().chain(&n.extra))
                .filter_map(|a| a.parse().ok())
                .collect();
            self.on_host(move |h| h.sync_uplink(&uplink, &ipv6))
                .await?
                .map_err(net_err("proxy the addresses on the uplink"))?;
        }
        Ok(())
    }

    /// [`Self::sync_proxies`] where a failure must not undo the change it
    /// follows (the uplink gone): said in the log, and made right at the
    /// next change or start.
    async fn sync_proxies_or_warn(&self) {
        if let Err(e) = self.sync_proxies().await {
            tracing::warn!(
                "proxying the routed addresses on their uplink: {}",
                crate::error_chain(&e)
            );
        }
    }

    /// Make sure the rules of VPS `name` (its port `host_if`) are loaded
    /// before it starts. A VPS with no port forward and no firewall, the
    /// common case, needs only its own port chain: that is added to the
    /// loaded rules (a few milliseconds, whatever the number of VPSes)
    /// instead of reloading every VPS's rules, and the ports of concurrent
    /// launches are added together in one `nft` run.
    pub async fn load_rules_for(&self, name: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.sync_proxies_or_warn().await;
        for vps in self.all_rules_of(name).await? {
            self.load_port_rules(name, vps).await?;
        }
        Ok(())
    }

    /// [`Self::load_rules_for`] for one interface of VPS `name`.
    async fn load_port_rules(&self, name: &str, vps: nft::VpsRules) -> Result<()> {
        let host_if = vps.host_if.as_str();
        if self.rules_loaded.lock().await.contains(host_if) {
            return Ok(());
        }
        if let Some(text) = nft::render_added_port(&vps) {
            self.rules_queue
                .lock()
                .expect("rules queue")
                .push((host_if.to_string(), text));
            let mut loaded = self.rules_loaded.lock().await;
            if loaded.contains(host_if) {
                // Added with an earlier batch, or by a full reload: the
                // entry is not needed any more.
                self.rules_queue
                    .lock()
                    .expect("rules queue")
                    .retain(|(port, _)| port != host_if);
                return Ok(());
            }
            let batch = std::mem::take(&mut *self.rules_queue.lock().expect("rules queue"));
            if !batch.is_empty() {
                let text: String = batch.iter().map(|(_, t)| t.as_str()).collect();
                match self.on_host(move |h| h.apply_rules(&text)).await? {
                    Ok(()) => loaded.extend(batch.into_iter().map(|(port, _)| port)),
                    Err(e) => tracing::warn!(vps = %name, "adding VPS rules failed ({e}); reloading all"),
                }
            }
            if loaded.contains(host_if) {
                return Ok(());
            }
        }
        // Forwards or a firewall, or the batch that carried this port
        // failed: everything, from the store.
        self.apply_rules().await
    }

    /// Host-side veths and ifb devices of VPSes that are not running: what
    /// a crash between making and removing them left behind.
    async fn remove_stray_links(&self) -> Result<()> {
        let running: HashSet<String> = self
            .store
            .instances()
            .await?
            .into_iter()
            .filter(|i| {
                matches!(
                    i.status,
                    croft_api::Status::Running | croft_api::Status::Starting | croft_api::Status::Stopping
                )
            })
            .map(|i| i.key)
            .collect();
        let keep: HashSet<String> = self
            .store
            .nics()
            .await?
            .into_iter()
            .filter(|n| running.contains(&n.instance))
            .flat_map(|n| [croft_host::net::tc::ifb_name(&n.host_if), n.host_if])
            .collect();
        let links = self
            .on_host(|h| h.links(nft::VETH_PREFIX))
            .await?
            .map_err(net_err("list network links"))?;
        for link in links.into_iter().filter(|l| !keep.contains(l)) {
            tracing::warn!(link = %link, "removing a link no running VPS owns");
            let _ = self.on_host(move |h| h.detach(&link)).await;
        }
        Ok(())
    }

    /// Refuse a firewall the host cannot enforce between VPSes.
    pub fn require_firewall(&self) -> Result<()> {
        if !self.enabled {
            return Err(ServiceError::Invalid("networking is off".into()));
        }
        if !self.firewall_capable.load(Ordering::Relaxed) {
            return Err(ServiceError::Invalid(
                "this host has no br_netfilter (traffic between VPSes bypasses the IP hooks), so croft cannot \
                 enforce per-VPS firewalls; load the br_netfilter module and restart croftd"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Parse and check the addresses a launch asks for (400 before anything
    /// is created).
    pub fn check_address_request(
        &self,
        network: &str,
        ipv4: Option<&str>,
        ipv6: Option<&str>,
        mac: Option<&str>,
    ) -> Result<AddressRequest> {
        let mut req = AddressRequest::default();
        if !self.enabled {
            if ipv4.is_some() || ipv6.is_some() || mac.is_some() {
                return Err(ServiceError::Invalid(
                    "networking is off; no address can be given".into(),
                ));
            }
            return Ok(req);
        }
        if let Some(text) = mac {
            let bytes = croft_host::net::parse_mac(text).map_err(|_| {
                ServiceError::Invalid(format!("{text:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"))
            })?;
            // Multicast frames go to every port; all zeros is no address.
            if bytes[0] & 1 == 1 || bytes == [0; 6] {
                return Err(ServiceError::Invalid(format!(
                    "{text} is not a unicast MAC address"
                )));
            }
            // 0e:cf:ff:.. are croft's bridges' own.
            if bytes[..3] == [0x0e, 0xcf, 0xff] {
                return Err(ServiceError::Invalid(format!(
                    "{text} is in 0e:cf:ff:00:00:00/24, the MACs of croft's bridges"
                )));
            }
            // One spelling, so no MAC is held twice under two.
            req.mac = Some(
                bytes
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
        let net = self
            .network_named(network)
            .ok_or_else(|| ServiceError::NotFound(format!("network {network}")))?;
        req.network = net.name.clone();
        for (text, v4) in [(ipv4, true), (ipv6, false)] {
            let Some(text) = text else { continue };
            let family = if v4 { "IPv4" } else { "IPv6" };
            let addr: IpAddr = text
                .parse()
                .ok()
                .filter(|a: &IpAddr| a.is_ipv4() == v4)
                .ok_or_else(|| ServiceError::Invalid(format!("{text:?} is not an {family} address")))?;
            let subnet = if v4 { net.ipv4 } else { net.ipv6 }
                .ok_or_else(|| ServiceError::Invalid(format!("the network has no {family} subnet")))?;
            net.check_assignable(subnet, addr)?;
            if v4 {
                req.ipv4 = Some(addr);
            } else {
                req.ipv6 = Some(addr);
            }
        }
        Ok(req)
    }

    /// Held while a new VPS's addresses are chosen ([`Self::plan_nic`])
    /// and recorded with it, so two launches never choose the same.
    pub async fn allocating(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.ipam.lock().await
    }

    /// The interface VPS `name` (id range `uid_base`) gets: a MAC and the
    /// requested or next free addresses; `None` when networking is off.
    /// Call with [`Self::allocating`] held until it is recorded.
    pub async fn plan_nic(
        &self,
        name: &str,
        uid_base: u32,
        req: AddressRequest,
    ) -> Result<Option<NicRecord>> {
        if !self.enabled {
            return Ok(None);
        }
        let network = if req.network.is_empty() {
            ipam::DEFAULT_NETWORK
        } else {
            req.network.as_str()
        };
        let net = self
            .network_named(network)
            .ok_or_else(|| ServiceError::NotFound(format!("network {network}")))?;
        let nics = self.store.nics().await?;
        let used = |pick: fn(&NicRecord) -> Option<&String>| -> HashSet<IpAddr> {
            nics.iter()
                .filter(|n| n.network == net.name)
                .flat_map(|n| pick(n).into_iter().chain(&n.extra))
                .filter_map(|a| a.parse().ok())
                .collect()
        };
        if let Some(holder) = req
            .mac
            .as_ref()
            .and_then(|mac| nics.iter().find(|n| &n.mac == mac))
        {
            return Err(ServiceError::Conflict(format!(
                "MAC {} is in use: VPS {} has it",
                holder.mac, holder.instance
            )));
        }
        let ipv4 = match (net.ipv4, req.ipv4) {
            (_, Some(a)) => Some(a),
            (Some(s), None) => Some(net.allocate(s, &used(|n| n.ipv4.as_ref()), None)?),
            (None, None) => None,
        };
        let ipv6 = match (net.ipv6, req.ipv6) {
            (_, Some(a)) => Some(a),
            (Some(s6), None) => {
                // Same host part as the IPv4 address where free: 10.87.0.5
                // and fd63:726f:6674::5.
                let prefer = net.ipv4.zip(ipv4).map(|(s4, a)| s4.index_of(a));
                Some(allocate_outside_prefixes(
                    &net,
                    s6,
                    used(|n| n.ipv6.as_ref()),
                    prefer,
                    &nics,
                )?)
            }
            (None, None) => None,
        };
        if let Some(holder) = ipv6.and_then(|a| prefix_holder(&nics, &net.name, a)) {
            return Err(ServiceError::Conflict(format!(
                "{} is in a prefix delegated to VPS {holder}",
                ipv6.map(|a| a.to_string()).unwrap_or_default()
            )));
        }
        Ok(Some(NicRecord {
            index: 0,
            instance: name.into(),
            network: net.name.clone(),
            host_if: host_if(uid_base, self.id_base),
            mac: req.mac.unwrap_or_else(new_mac),
            ipv4: ipv4.map(|a| a.to_string()),
            ipv6: ipv6.map(|a| a.to_string()),
            extra: Vec::new(),
        }))
    }

    /// What the backend needs to make the VPS's interface, with the
    /// bandwidth limits of its configuration.
    pub async fn nic_spec(&self, vps: &InstanceRecord) -> Result<Option<NicSpec>> {
        let Some(nic) = self.store.nic(&vps.key).await? else {
            return Ok(None);
        };
        Ok(self.spec_of(vps, nic))
    }

    /// What the backend needs to make the VPS's further interfaces
    /// (`eth1`..): their addresses, no default route (that is `eth0`'s;
    /// routes over them are the VPS's own to set), the same bandwidth
    /// limits.
    pub async fn extra_nic_specs(&self, vps: &InstanceRecord) -> Result<Vec<NicSpec>> {
        Ok(self
            .store
            .nics_of(&vps.key)
            .await?
            .into_iter()
            .filter(|n| n.index > 0)
            .filter_map(|n| self.spec_of(vps, n))
            .collect())
    }

    /// Interface `nic` of VPS `vps` as the backend makes it; `None` if its
    /// network is gone.
    fn spec_of(&self, vps: &InstanceRecord, nic: NicRecord) -> Option<NicSpec> {
        let net = self.network_named(&nic.network)?;
        let mut addresses = Vec::new();
        let mut gateways = Vec::new();
        for (addr, subnet) in [(&nic.ipv4, net.ipv4), (&nic.ipv6, net.ipv6)] {
            if let (Some(a), Some(s)) = (addr, subnet) {
                addresses.push(format!("{a}/{}", net.vps_prefix(s)));
                if nic.index == 0 {
                    gateways.push(net.gateway(s));
                }
            }
        }
        for extra in nic.extra.iter().filter(|a| !a.contains('/')) {
            let v4 = !extra.contains(':');
            if let Some(s) = if v4 { net.ipv4 } else { net.ipv6 } {
                addresses.push(format!("{extra}/{}", net.vps_prefix(s)));
            }
        }
        Some(NicSpec {
            bridge: net.bridge.clone(),
            host_if: nic.host_if,
            guest_if: format!("eth{}", nic.index),
            mac: nic.mac,
            addresses,
            gateways,
            onlink_gateways: net.routed(),
            ingress_bps: vps.settings.parsed.ingress_bps,
            egress_bps: vps.settings.parsed.egress_bps,
        })
    }

    /// The addresses and name servers a VPS's /etc/hosts and
    /// /etc/resolv.conf get; `None` without an interface.
    pub async fn network_files(&self, name: &str) -> Result<Option<crate::backend::NetworkFiles>> {
        let Some(nic) = self.store.nic(name).await? else {
            return Ok(None);
        };
        let Some(net) = self.network_named(&nic.network) else {
            return Ok(None);
        };
        Ok(Some(crate::backend::NetworkFiles {
            addresses: [nic.ipv4, nic.ipv6]
                .into_iter()
                .flatten()
                .filter_map(|a| a.parse().ok())
                .collect(),
            dns: net.dns.clone(),
        }))
    }

    /// Change the bandwidth limits of running VPS `name`'s interface now.
    /// Each interface gets the limits (as Incus's per-device limits).
    pub async fn apply_bandwidth(&self, name: &str, ingress: Option<u64>, egress: Option<u64>) -> Result<()> {
        let nics = self.store.nics_of(name).await?;
        if nics.is_empty() && (ingress.is_some() || egress.is_some()) {
            return Err(ServiceError::Invalid(format!(
                "VPS {name} has no network interface to limit"
            )));
        }
        for nic in nics {
            self.on_host(move |h| h.set_bandwidth(&nic.host_if, ingress, egress))
                .await?
                .map_err(net_err("apply the bandwidth limits"))?;
        }
        Ok(())
    }

    /// What the interface of VPS `name` (its key) has moved since it was
    /// made; `None` without an interface up.
    ///
    /// With several interfaces, their sum, whose index is made from all
    /// of theirs: interfaces are made together at a start, so a new one
    /// among them is a new set, counted from zero.
    pub async fn counters(&self, name: &str) -> Result<Option<croft_host::net::LinkCounters>> {
        let nics = self.store.nics_of(name).await?;
        let mut sum: Option<croft_host::net::LinkCounters> = None;
        for nic in nics {
            let read = self
                .on_host(move |h| h.link_counters(&nic.host_if))
                .await?
                .map_err(net_err("read the VPS's interface counters"))?;
            // One not made (its network gone) is left out, at every
            // reading alike.
            let Some(c) = read else {
                continue;
            };
            sum = Some(add_counters(sum, c));
        }
        Ok(sum)
    }

    /// Every VPS's interfaces' counters summed, by VPS key, as
    /// [`Self::counters`] gives one VPS's: read in one netlink dump and
    /// one store read, however many VPSes there are. The store gives each
    /// VPS's interfaces in the same order to both (by index), so the summed
    /// link index, which the traffic totals compare, is the same.
    pub async fn all_counters(&self) -> Result<HashMap<String, croft_host::net::LinkCounters>> {
        let nics = self.store.nics().await?;
        let links = self
            .on_host(|h| h.all_link_counters(croft_host::net::nft::VETH_PREFIX))
            .await?
            .map_err(net_err("read the VPSes' interface counters"))?;
        let mut sums: HashMap<String, croft_host::net::LinkCounters> = HashMap::new();
        for nic in nics {
            if let Some(c) = links.get(&nic.host_if) {
                let sum = sums.remove(&nic.instance);
                sums.insert(nic.instance, add_counters(sum, *c));
            }
        }
        Ok(sums)
    }

    /// Remove a stopped VPS's leftovers on the host (its shaping devices).
    pub async fn after_stop(&self, name: &str) {
        for nic in self.store.nics_of(name).await.unwrap_or_default() {
            let _ = self.on_host(move |h| h.detach(&nic.host_if)).await;
        }
    }

    /// The rules of every interface of VPS `name` as the store has them.
    async fn all_rules_of(&self, name: &str) -> Result<Vec<nft::VpsRules>> {
        let nics = self.store.nics_of(name).await?;
        if nics.is_empty() {
            return Ok(Vec::new());
        }
        let forwards = self.store.forwards().await?;
        let rules = self.store.firewall_rules().await?;
        let groups = self.store.firewall_groups(None).await?;
        let settings = super::by_key(self.store.as_ref(), name).await?.settings.parsed;
        nics.iter()
            .map(|nic| {
                let isolated = self.network_named(&nic.network).is_some_and(|n| n.isolated);
                vps_rules(nic, &forwards, &rules, &groups, &settings, isolated)
            })
            .collect()
    }

    /// The rules of VPS `name`'s first interface as the store has them;
    /// `None` if it has no network interface.
    async fn rules_of(&self, name: &str) -> Result<Option<nft::VpsRules>> {
        let Some(nic) = self.store.nic(name).await? else {
            return Ok(None);
        };
        let forwards = self.store.forwards().await?;
        let rules = self.store.firewall_rules().await?;
        let groups = self.store.firewall_groups(None).await?;
        let settings = super::by_key(self.store.as_ref(), name).await?.settings.parsed;
        let isolated = self.network_named(&nic.network).is_some_and(|n| n.isolated);
        vps_rules(&nic, &forwards, &rules, &groups, &settings, isolated).map(Some)
    }

    /// What a VPS about to be forgotten leaves to remove from the host:
    /// its link, and its rules (removed by themselves unless it has port
    /// forwards, which need a full reload). Read before its records go.
    pub async fn leftovers(&self, name: &str) -> Result<Leftovers> {
        let nic = self.store.nic(name).await?;
        let routes = match (&nic, nic.as_ref().and_then(|n| self.network_named(&n.network))) {
            (Some(nic), Some(net)) => nic
                .ipv6
                .as_deref()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .map(|via| {
                    nic.extra
                        .iter()
                        .filter_map(|p| parse_prefix(p))
                        .map(|(p, len)| (net.bridge.clone(), p, len, via))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let rules = self.all_rules_of(name).await?;
        Ok(Leftovers {
            host_ifs: rules.iter().map(|v| v.host_if.clone()).collect(),
            rules: Some(rules),
            routes,
        })
    }

    /// Remove what is left of a forgotten VPS's interface on the host,
    /// and its rules: only its own chains and elements when that is all
    /// it had, else by reloading everything.
    pub async fn release(&self, left: Leftovers) -> Result<()> {
        for host_if in left.host_ifs.clone() {
            self.on_host(move |h| h.detach(&host_if))
                .await?
                .map_err(net_err("remove the VPS's veth"))?;
        }
        // Its delegated prefixes are routed nowhere.
        for (bridge, prefix, len, via) in left.routes.clone() {
            let _ = self
                .on_host(move |h| h.route_via(&bridge, IpAddr::V6(prefix), len, via, true))
                .await;
        }
        // Its addresses are no longer the uplink's to answer for.
        if let Err(e) = self.sync_proxies().await {
            tracing::warn!("proxying the addresses left: {}", crate::error_chain(&e));
        }
        if !self.enabled {
            return Ok(());
        }
        let own_only = left
            .rules
            .filter(|rules| rules.iter().all(|v| v.forwards.is_empty()));
        if let Some(rules) = own_only {
            let mut loaded = self.rules_loaded.lock().await;
            // Those never loaded since croftd started: nothing to remove.
            let ports: Vec<&nft::VpsRules> = rules.iter().filter(|v| loaded.contains(&v.host_if)).collect();
            if ports.is_empty() {
                return Ok(());
            }
            let text: String = ports.iter().map(|v| nft::render_removed_port(v)).collect();
            let host_ifs: Vec<String> = ports.iter().map(|v| v.host_if.clone()).collect();
            match self.on_host(move |h| h.apply_rules(&text)).await? {
                Ok(()) => {
                    for host_if in host_ifs {
                        loaded.remove(&host_if);
                    }
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(ports = ?host_ifs, "removing their rules failed ({e}); reloading all")
                }
            }
        }
        self.apply_rules().await
    }

    pub fn nic_view(nic: Option<&NicRecord>) -> Option<croft_api::Nic> {
        nic.map(|n| croft_api::Nic {
            name: format!("eth{}", n.index),
            network: n.network.clone(),
            mac: n.mac.clone(),
            ipv4: n.ipv4.clone(),
            ipv6: n.ipv6.clone(),
            host_interface: n.host_if.clone(),
            extra: n.extra.clone(),
        })
    }

    pub fn forwards_view(forwards: &[ForwardRecord], name: &str) -> Vec<croft_api::PortForward> {
        forwards
            .iter()
            .filter(|f| f.instance == name)
            .map(|f| croft_api::PortForward {
                protocol: f.protocol.clone(),
                host_port: f.host_port,
                vps_port: f.vps_port,
                host_port_end: f.host_port_end,
            })
            .collect()
    }

    /// VPS `vps`'s firewall as shown: its defaults (from its config), its
    /// rules among `rules` (every VPS's), and the provider's rules that
    /// apply to it.
    pub fn firewall_view(
        &self,
        vps: &InstanceRecord,
        rules: &[RuleRecord],
        groups: &[GroupRecord],
    ) -> croft_api::Firewall {
        let word = |deny: bool| if deny { "deny" } else { "allow" }.to_string();
        let settings = &vps.settings.parsed;
        croft_api::Firewall {
            default: word(settings.firewall_deny),
            default_out: word(settings.firewall_deny_out),
            rules: rules
                .iter()
                .filter(|r| r.instance == vps.key)
                .map(|r| r.rule.clone())
                .collect(),
            provider_blocked: if settings.provider_exempt {
                Vec::new()
            } else {
                self.blocked_egress
                    .iter()
                    .map(|b| match b.ports {
                        (a, z) if a == z => format!("{}/{a}", b.protocol),
                        (a, z) => format!("{}/{a}-{z}", b.protocol),
                    })
                    .collect()
            },
            groups: attached(&vps.key, groups).map(|g| g.name.clone()).collect(),
        }
    }

    /// `croft port add`: forward a host port (or a range) to the VPS;
    /// lasts across restarts of the VPS and of croftd (it is a record, and
    /// the rules are rebuilt from the records). A reserved host port, or
    /// one a host service listens on, is refused unless `force` (the
    /// admin's to give).
    pub async fn add_forward(
        &self,
        vps: VpsName<'_>,
        f: croft_api::PortForward,
        force: bool,
    ) -> Result<Vec<croft_api::PortForward>> {
        croft_api::validate_forward(&f).map_err(|e| ServiceError::invalid(&e))?;
        let row = super::find(self.store.as_ref(), vps).await?;
        let (first, last) = f.host_ports();
        if let Some(port) = self
            .reserved_ports
            .iter()
            .find(|p| (first..=last).contains(p))
            .filter(|_| !force)
        {
            return Err(ServiceError::Invalid(format!(
                "host port {port} is reserved for the host's own services (network.reserved_ports and croftd's \
                 own API port); the admin may force it"
            )));
        }
        let protocol = f.protocol.clone();
        let listened = self
            .on_host(move |h| -> std::io::Result<Option<u16>> {
                for port in first..=last {
                    if h.host_listens(&protocol, port)? {
                        return Ok(Some(port));
                    }
                }
                Ok(None)
            })
            .await?
            .map_err(super::error::host_err("read /proc/net"))?;
        if let Some(port) = listened.filter(|_| !force) {
            return Err(ServiceError::Conflict(format!(
                "host port {port}/{} is in use by a service on the host; the admin may force it",
                f.protocol
            )));
        }
        let nic = self.store.nic(&row.key).await?;
        if nic.as_ref().is_none_or(|n| n.ipv4.is_none() && n.ipv6.is_none()) {
            return Err(ServiceError::Invalid(format!(
                "VPS {vps} has no address to forward to"
            )));
        }
        if let Some(net) = nic
            .as_ref()
            .and_then(|n| self.network_named(&n.network))
            .filter(|n| n.bridged())
        {
            return Err(ServiceError::Invalid(format!(
                "VPS {vps} is on bridged network {}: it is reached at its own addresses on the provider's link, \
                 not through the host's ports",
                net.name
            )));
        }
        let record = ForwardRecord {
            protocol: f.protocol.clone(),
            host_port: f.host_port,
            instance: row.key.clone(),
            vps_port: f.vps_port,
            host_port_end: f.host_port_end,
        };
        self.store.insert_forward(&record).await.map_err(|e| match e {
            StoreError::Taken(what) => ServiceError::Conflict(format!("{what} is already forwarded")),
            e => e.into(),
        })?;
        if let Err(e) = self.apply_rules().await {
            // Nothing half-applied: the rules stay as they were, and so
            // does the state.
            let _ = self
                .store
                .delete_forward(&row.key, &f.protocol, f.host_port)
                .await;
            return Err(e);
        }
        info!(vps = %vps, tenant = vps.tenant, protocol = %f.protocol, host_port = f.host_port, vps_port = f.vps_port, "port forwarded");
        self.forwards(vps).await
    }

    pub async fn remove_forward(&self, vps: VpsName<'_>, protocol: &str, host_port: u16) -> Result<()> {
        let row = super::find(self.store.as_ref(), vps).await?;
        if !self.store.delete_forward(&row.key, protocol, host_port).await? {
            return Err(ServiceError::NotFound(format!(
                "port forward {host_port}/{protocol} of VPS {vps}"
            )));
        }
        self.apply_rules().await
    }

    pub async fn forwards(&self, vps: VpsName<'_>) -> Result<Vec<croft_api::PortForward>> {
        let row = super::find(self.store.as_ref(), vps).await?;
        Ok(Self::forwards_view(&self.store.forwards().await?, &row.key))
    }

    /// `croft firewall list`.
    pub async fn firewall(&self, vps: VpsName<'_>) -> Result<croft_api::Firewall> {
        let row = super::find(self.store.as_ref(), vps).await?;
        let (rules, groups) = (
            self.store.firewall_rules().await?,
            self.store.firewall_groups(Some(&row.tenant)).await?,
        );
        Ok(self.firewall_view(&row, &rules, &groups))
    }

    /// `croft firewall add|replace|move|remove`: change the VPS's rules
    /// by `edit`, in force at once; if the rules cannot be loaded the
    /// change is undone.
    pub async fn edit_firewall(&self, vps: VpsName<'_>, edit: RuleEdit) -> Result<croft_api::Firewall> {
        if let RuleEdit::Insert { rule, .. } | RuleEdit::Replace { rule, .. } = &edit {
            croft_api::validate_firewall_rule(rule).map_err(|e| ServiceError::invalid(&e))?;
        }
        let row = super::find(self.store.as_ref(), vps).await?;
        if matches!(edit, RuleEdit::Insert { .. } | RuleEdit::Replace { .. }) {
            self.require_firewall()?;
        }
        let before = self
            .store
            .edit_firewall_rules(&row.key, &edit)
            .await
            .map_err(|e| match e {
                StoreError::Missing(what) => ServiceError::NotFound(format!("{what} of VPS {vps}")),
                e => e.into(),
            })?;
        if let Err(e) = self.reload_firewall(&row.key).await {
            let _ = self.store.set_firewall_rules(&row.key, &before).await;
            return Err(e);
        }
        info!(vps = %vps, tenant = vps.tenant, ?edit, "firewall changed");
        self.firewall(vps).await
    }

    /// Load the firewall of VPS `name` (its key) as the store has it:
    /// its two chains only when they are loaded, else everything.
    pub async fn reload_firewall(&self, name: &str) -> Result<()> {
        self.reload_firewalls(&[name.to_string()]).await
    }

    /// Load the firewalls of VPSes `names` (keys) as the store has them, in
    /// one transaction: their chains only when all are loaded, else
    /// everything.
    pub async fn reload_firewalls(&self, names: &[String]) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let mut vpses = Vec::new();
        for name in names {
            vpses.extend(self.all_rules_of(name).await?);
        }
        if vpses.is_empty() {
            return Ok(());
        }
        let loaded = self.rules_loaded.lock().await;
        if !vpses.iter().all(|v| loaded.contains(&v.host_if)) {
            drop(loaded);
            return self.apply_rules().await;
        }
        let text: String = vpses.iter().map(nft::render_firewall_update).collect();
        self.on_host(move |h| h.apply_rules(&text))
            .await?
            .map_err(net_err("load the VPSes' firewalls"))?;
        drop(loaded);
        Ok(())
    }

    pub async fn networks(&self) -> Result<Vec<croft_api::Network>> {
        // Leases name VPSes as `tenant/name` outside the default tenant.
        let names: std::collections::HashMap<String, String> = self
            .store
            .instances()
            .await?
            .into_iter()
            .map(|i| {
                let shown = if i.tenant == crate::store::DEFAULT_TENANT {
                    i.name
                } else {
                    format!("{}/{}", i.tenant, i.name)
                };
                (i.key, shown)
            })
            .collect();
        let nics = self.store.nics().await?;
        Ok(self
            .all_networks()
            .into_iter()
            .map(|net| croft_api::Network {
                leases: nics
                    .iter()
                    .filter(|n| n.network == net.name)
                    .map(|n| croft_api::Lease {
                        instance: names.get(&n.instance).cloned().unwrap_or(n.instance.clone()),
                        mac: n.mac.clone(),
                        ipv4: n.ipv4.clone(),
                        ipv6: n.ipv6.clone(),
                        extra: n.extra.clone(),
                    })
                    .collect(),
                kind: net.kind.clone(),
                name: net.name,
                bridge: net.bridge,
                ipv4: net.ipv4.map(|s| format!("{}/{}", s.gateway, s.prefix)),
                ipv6: net.ipv6.map(|s| format!("{}/{}", s.gateway, s.prefix)),
                nat: net.nat,
                isolated: net.isolated,
                uplink: net.uplink.clone(),
                pool: net
                    .pool
                    .iter()
                    .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                    .collect(),
                dns: net.dns.iter().map(|d| d.to_string()).collect(),
            })
            .collect())
    }

    /// `croft address add`: give VPS `row` another address of its network
    /// (`req.address`, or the next free one of `req.family`), recorded and
    /// let through its anti-spoofing rules; the address and the `cidr` its
    /// interface takes. The caller adds it inside a running VPS.
    pub async fn add_address(
        &self,
        row: &InstanceRecord,
        req: &croft_api::AddressAdd,
    ) -> Result<(String, Option<String>)> {
        let _allocating = self.allocating().await;
        let nic = self
            .store
            .nic(&row.key)
            .await?
            .ok_or_else(|| ServiceError::Invalid(format!("VPS {} has no network interface", row.name)))?;
        let net = self
            .network_named(&nic.network)
            .ok_or_else(|| ServiceError::NotFound(format!("network {}", nic.network)))?;
        if let Some(len) = req.prefix {
            return self
                .delegate(row, &nic, &net, req.address.as_deref(), len)
                .await
                .map(|p| (p, None));
        }
        let v4 = match (&req.address, req.family.as_deref()) {
            (Some(a), _) => !a.contains(':'),
            (None, None | Some("ipv4")) => true,
            (None, Some("ipv6")) => false,
            (None, Some(other)) => {
                return Err(ServiceError::Invalid(format!(
                    "unknown address family {other:?} (use ipv4 or ipv6)"
                )))
            }
        };
        let family = if v4 { "IPv4" } else { "IPv6" };
        let subnet = if v4 { net.ipv4 } else { net.ipv6 }.ok_or_else(|| {
            ServiceError::Invalid(format!("network {} has no {family} addresses", net.name))
        })?;
        let nics = self.store.nics().await?;
        let address: IpAddr = match &req.address {
            Some(text) => {
                let a: IpAddr = text
                    .parse()
                    .map_err(|_| ServiceError::Invalid(format!("{text:?} is not an IP address")))?;
                net.check_assignable(subnet, a)?;
                if let Some(holder) = prefix_holder(&nics, &net.name, a) {
                    return Err(ServiceError::Conflict(format!(
                        "{a} is in a prefix delegated to VPS {holder}"
                    )));
                }
                a
            }
            None => {
                let used: HashSet<IpAddr> = nics
                    .iter()
                    .filter(|n| n.network == net.name)
                    .flat_map(|n| n.ipv4.iter().chain(&n.ipv6).chain(&n.extra))
                    .filter_map(|a| a.parse().ok())
                    .collect();
                allocate_outside_prefixes(&net, subnet, used, None, &nics)?
            }
        };
        let old = self.loaded_rules_of(&row.key).await?;
        let text = address.to_string();
        self.store
            .add_address(&row.key, &text)
            .await
            .map_err(|e| match e {
                StoreError::Taken(what) => ServiceError::Conflict(format!("{what} is already in use")),
                e => e.into(),
            })?;
        if let Err(e) = self.reload_port(&row.key, old).await {
            let _ = self.store.remove_address(&row.key, &text).await;
            let _ = self.apply_rules().await;
            return Err(e);
        }
        self.sync_proxies_or_warn().await;
        Ok((text, Some(format!("{address}/{}", net.vps_prefix(subnet)))))
    }

    /// `croft nic add`: another interface for VPS `row` (stopped: it is
    /// made at the next start), on a network it has none on yet, with the
    /// requested or next free addresses of that network; as recorded.
    pub async fn add_nic(&self, row: &InstanceRecord, req: &croft_api::NicAdd) -> Result<NicRecord> {
        let addresses = self.check_address_request(
            &req.network,
            req.ipv4.as_deref(),
            req.ipv6.as_deref(),
            req.mac.as_deref(),
        )?;
        let _allocating = self.allocating().await;
        let nics = self.store.nics_of(&row.key).await?;
        let Some(first) = nics.first() else {
            return Err(ServiceError::Invalid(format!(
                "VPS {} has no network interface to add to (networking is off)",
                row.name
            )));
        };
        if let Some(on) = nics.iter().find(|n| n.network == addresses.network) {
            return Err(ServiceError::Conflict(format!(
                "VPS {} has an interface on network {} already (eth{})",
                row.name, on.network, on.index
            )));
        }
        let index = nics.iter().map(|n| n.index).max().unwrap_or(0) + 1;
        if index >= MAX_NICS {
            return Err(ServiceError::Invalid(format!(
                "a VPS has at most {MAX_NICS} interfaces (eth0 to eth{})",
                MAX_NICS - 1
            )));
        }
        let Some(mut nic) = self.plan_nic(&row.key, row.uid_base, addresses).await? else {
            return Err(ServiceError::Invalid(
                "networking is off ([network] enabled)".into(),
            ));
        };
        nic.index = index;
        // `crv3` -> `crv3n1`: its shaping device adds `i`, within 15.
        nic.host_if = format!("{}n{index}", first.host_if);
        self.store.add_nic(&nic).await.map_err(|e| match e {
            StoreError::Taken(what) => ServiceError::Conflict(format!("{what} is already in use")),
            e => e.into(),
        })?;
        self.sync_proxies_or_warn().await;
        Ok(nic)
    }

    /// `croft nic remove`: forget interface `index` (not `eth0`) of VPS
    /// `row` (stopped), its addresses and its rules.
    pub async fn remove_nic(&self, row: &InstanceRecord, index: u32) -> Result<()> {
        let _allocating = self.allocating().await;
        if index == 0 {
            return Err(ServiceError::Invalid(format!(
                "eth0 is VPS {}'s first interface: it goes with the VPS",
                row.name
            )));
        }
        let nic = self
            .store
            .nics_of(&row.key)
            .await?
            .into_iter()
            .find(|n| n.index == index)
            .ok_or_else(|| ServiceError::NotFound(format!("interface eth{index} of VPS {}", row.name)))?;
        let rules = self
            .all_rules_of(&row.key)
            .await?
            .into_iter()
            .find(|r| r.host_if == nic.host_if)
            .ok_or_else(|| ServiceError::NotFound(format!("interface eth{index} of VPS {}", row.name)))?;
        self.store.remove_nic(&row.key, index).await?;
        let left = Leftovers {
            host_ifs: vec![rules.host_if.clone()],
            rules: Some(vec![rules]),
            routes: Vec::new(),
        };
        self.release(left).await
    }

    /// Route a whole IPv6 prefix of length `len` (`wanted`, or the first
    /// free one) out of a routed network's pool to VPS `row`, through its
    /// IPv6 address; the prefix, `2001:db8:100:1::/64`.
    async fn delegate(
        &self,
        row: &InstanceRecord,
        nic: &NicRecord,
        net: &Network,
        wanted: Option<&str>,
        len: u8,
    ) -> Result<String> {
        let (Some(pool), true) = (net.ipv6, net.routed()) else {
            return Err(ServiceError::Invalid(format!(
                "network {} has no routed IPv6 pool to delegate prefixes from",
                net.name
            )));
        };
        // The prefix is routed through the VPS's own IPv6 address.
        if nic.ipv6.is_none() {
            return Err(ServiceError::Invalid(format!(
                "VPS {} has no IPv6 address to route the prefix through",
                row.name
            )));
        }
        if len <= pool.prefix || len > 124 {
            return Err(ServiceError::Invalid(format!(
                "a delegated prefix of the /{} pool must be /{} to /124",
                pool.prefix,
                pool.prefix + 1
            )));
        }
        let IpAddr::V6(base) = pool.network() else {
            return Err(ServiceError::Invalid("the pool is not IPv6".into()));
        };
        // What the network holds: addresses and prefixes.
        let held: Vec<(std::net::Ipv6Addr, u8, String)> = self
            .store
            .nics()
            .await?
            .into_iter()
            .filter(|n| n.network == net.name)
            .flat_map(|n| {
                let key = n.instance.clone();
                n.ipv6.into_iter().chain(n.extra).filter_map(move |a| {
                    let (addr, l) = parse_prefix(&a).or_else(|| Some((a.parse().ok()?, 128)))?;
                    Some((addr, l, key.clone()))
                })
            })
            .collect();
        let holder = |p: (std::net::Ipv6Addr, u8)| held.iter().find(|(a, l, _)| overlaps(p, (*a, *l)));
        let size = 1u128 << (128 - u32::from(len));
        let prefix = match wanted {
            Some(text) => {
                let p = parse_prefix(text)
                    .filter(|(_, l)| *l == len)
                    .ok_or_else(|| ServiceError::Invalid(format!("{text:?} is not a /{len} prefix")))?;
                // Block 0 holds the single addresses.
                let block0 = (base, len);
                if u128::from(p.0) % size != 0 || !overlaps(p, (base, pool.prefix)) || overlaps(p, block0) {
                    return Err(ServiceError::Invalid(format!(
                        "{text} is not a /{len} of the pool {}",
                        pool.cidr()
                    )));
                }
                if let Some((_, _, key)) = holder(p) {
                    return Err(ServiceError::Conflict(format!(
                        "{text} overlaps what VPS {key} holds"
                    )));
                }
                p
            }
            None => {
                // Block 0 holds the single addresses.
                let blocks = 1u128 << u32::from(len - pool.prefix).min(16);
                (1..blocks)
                    .map(|k| (std::net::Ipv6Addr::from(u128::from(base) + k * size), len))
                    .find(|p| holder(*p).is_none())
                    .ok_or_else(|| {
                        ServiceError::Conflict(format!("no free /{len} left in {}", pool.cidr()))
                    })?
            }
        };
        let text = format!("{}/{len}", prefix.0);
        let old = self.loaded_rules_of(&row.key).await?;
        self.store
            .add_address(&row.key, &text)
            .await
            .map_err(|e| match e {
                StoreError::Taken(what) => ServiceError::Conflict(format!("{what} is already in use")),
                e => e.into(),
            })?;
        let made = async {
            self.route_prefix(row, prefix, false).await?;
            self.reload_port(&row.key, old).await
        }
        .await;
        if let Err(e) = made {
            let _ = self.route_prefix(row, prefix, true).await;
            let _ = self.store.remove_address(&row.key, &text).await;
            let _ = self.apply_rules().await;
            return Err(e);
        }
        Ok(text)
    }

    /// `croft address remove`: the reverse of [`Self::add_address`] (the
    /// caller has taken it off a running VPS's interface); the cidr it had.
    pub async fn remove_address(&self, row: &InstanceRecord, address: &str) -> Result<Option<String>> {
        let _allocating = self.allocating().await;
        let cidr = self.address_cidr(row, address).await?;
        let old = self.loaded_rules_of(&row.key).await?;
        let prefix = parse_prefix(address);
        if let Some(prefix) = prefix {
            self.route_prefix(row, prefix, true).await?;
        }
        // A first address goes by making the next of its family first.
        let promoted = self.successor_of_first(row, address).await?;
        let removed = async {
            if let Some(next) = &promoted {
                self.store.promote_address(&row.key, next).await?;
            }
            self.store.remove_address(&row.key, address).await?;
            self.reload_port(&row.key, old).await
        }
        .await;
        if let Err(e) = removed {
            let _ = self.store.add_address(&row.key, address).await;
            if promoted.is_some() {
                let _ = self.store.promote_address(&row.key, address).await;
            }
            if let Some(prefix) = prefix {
                let _ = self.route_prefix(row, prefix, false).await;
            }
            let _ = self.apply_rules().await;
            return Err(e);
        }
        self.sync_proxies_or_warn().await;
        Ok(cidr)
    }

    /// When `address` is VPS `row`'s first of its family on `eth0`, the
    /// additional one that takes its place (the first added); refused when
    /// there is none, or when prefixes are routed through it.
    async fn successor_of_first(&self, row: &InstanceRecord, address: &str) -> Result<Option<String>> {
        let Some(nic) = self.store.nic(&row.key).await? else {
            return Ok(None);
        };
        let v6 = address.contains(':');
        if [&nic.ipv4, &nic.ipv6].into_iter().flatten().all(|a| a != address) {
            return Ok(None);
        }
        let family = if v6 { "IPv6" } else { "IPv4" };
        if v6 && nic.extra.iter().any(|a| a.contains('/')) {
            return Err(ServiceError::Conflict(format!(
                "prefixes are routed to VPS {} through {address}: remove them first",
                row.name
            )));
        }
        match nic.extra.iter().find(|a| !a.contains('/') && a.contains(':') == v6) {
            Some(next) => Ok(Some(next.clone())),
            None => Err(ServiceError::Invalid(format!(
                "{address} is VPS {}'s only {family} address: add the one to take its place first (croft address add)",
                row.name
            ))),
        }
    }

    /// Route (or with `remove`, stop routing) delegated `prefix` to VPS
    /// `row` through its IPv6 address.
    async fn route_prefix(
        &self,
        row: &InstanceRecord,
        prefix: (std::net::Ipv6Addr, u8),
        remove: bool,
    ) -> Result<()> {
        let Some(nic) = self.store.nic(&row.key).await? else {
            return Ok(());
        };
        let (Some(net), Some(via)) = (
            self.network_named(&nic.network),
            nic.ipv6.as_deref().and_then(|a| a.parse::<IpAddr>().ok()),
        ) else {
            return Ok(());
        };
        let bridge = net.bridge.clone();
        self.on_host(move |h| h.route_via(&bridge, IpAddr::V6(prefix.0), prefix.1, via, remove))
            .await?
            .map_err(net_err("route the delegated prefix"))
    }

    /// The cidr an address of VPS `row` has on `eth0` (`None` for a
    /// delegated prefix, which is routed to it), checked for removal: not
    /// one of its addresses is "not found", a first one nothing can take
    /// the place of is refused.
    pub async fn address_cidr(&self, row: &InstanceRecord, address: &str) -> Result<Option<String>> {
        let missing = || ServiceError::NotFound(format!("address {address} of VPS {}", row.name));
        let nic = self.store.nic(&row.key).await?.ok_or_else(missing)?;
        let first = [&nic.ipv4, &nic.ipv6].into_iter().flatten().any(|a| a == address);
        if !first && !nic.extra.iter().any(|a| a == address) {
            return Err(missing());
        }
        // Refused before anything changes when nothing can take its place.
        self.successor_of_first(row, address).await?;
        if address.contains('/') {
            return Ok(None);
        }
        let net = self.network_named(&nic.network).ok_or_else(missing)?;
        let subnet = if address.contains(':') { net.ipv6 } else { net.ipv4 }.ok_or_else(missing)?;
        Ok(Some(format!("{address}/{}", net.vps_prefix(subnet))))
    }

    /// Load VPS `key`'s port rules as the store has them, from `old` (its
    /// rules as loaded): its chains and map entries only when loaded,
    /// else everything.
    async fn reload_port(&self, key: &str, old: LoadedRules) -> Result<()> {
        let (Some(before), Some(new)) = (old.rules, self.rules_of(key).await?) else {
            return self.apply_rules().await;
        };
        let loaded = self.rules_loaded.lock().await;
        // A full load since `old` was read has already replaced its entries.
        let reloaded = self.full_loads.load(Ordering::SeqCst) != old.generation;
        if reloaded || !loaded.contains(&new.host_if) || !new.forwards.is_empty() {
            drop(loaded);
            return self.apply_rules().await;
        }
        let text = nft::render_port_update(&before, &new);
        self.on_host(move |h| h.apply_rules(&text))
            .await?
            .map_err(net_err("load the VPS's port rules"))?;
        drop(loaded);
        Ok(())
    }

    /// VPS `key`'s rules as the store has them before a change, and the
    /// full load they are loaded by (see [`Self::reload_port`]).
    async fn loaded_rules_of(&self, key: &str) -> Result<LoadedRules> {
        let generation = self.full_loads.load(Ordering::SeqCst);
        Ok(LoadedRules {
            rules: self.rules_of(key).await?,
            generation,
        })
    }

    /// `croft network create`: a network of its own, its bridge up and
    /// its rules loaded; nothing of it is left if any step fails.
    pub async fn create_network(&self, req: croft_api::NetworkCreate) -> Result<croft_api::Network> {
        if !self.enabled {
            return Err(ServiceError::Invalid(
                "networking is off ([network] enabled)".into(),
            ));
        }
        croft_api::validate_name(&req.name).map_err(|e| ServiceError::invalid(&e))?;
        let _allocating = self.allocating().await;
        let networks = self.all_networks();
        if networks.iter().any(|n| n.name == req.name) {
            return Err(ServiceError::Conflict(format!(
                "network {} already exists",
                req.name
            )));
        }
        let bridged = req.kind == "bridged";
        let bridge = match req.bridge.clone() {
            Some(bridge) => bridge,
            None if bridged => {
                return Err(ServiceError::Invalid(
                    "a bridged network needs a bridge: the existing host bridge on the provider's link"
                        .into(),
                ))
            }
            None => (1..)
                .map(|i| format!("croftbr{i}"))
                .find(|b| networks.iter().all(|n| &n.bridge != b))
                .expect("a free bridge name"),
        };
        if networks.iter().any(|n| n.bridge == bridge) {
            return Err(ServiceError::Conflict(format!(
                "bridge {bridge} is network {}'s",
                networks
                    .iter()
                    .find(|n| n.bridge == bridge)
                    .map(|n| n.name.as_str())
                    .unwrap_or("")
            )));
        }
        let routed = req.kind == "routed";
        let record = crate::store::NetworkRecord {
            name: req.name.clone(),
            kind: req.kind.clone(),
            bridge: bridge.clone(),
            ipv4: req.ipv4.clone(),
            ipv6: req.ipv6.clone(),
            // Only a nat network's addresses are masqueraded: a routed or
            // bridged network's are public.
            nat: req.nat && req.kind == "nat",
            isolated: req.isolated,
            uplink: req.uplink.clone(),
            pool: (!req.pool.is_empty()).then(|| req.pool.join(",")),
        };
        let dns = self
            .network_named(ipam::DEFAULT_NETWORK)
            .map(|n| n.dns)
            .unwrap_or_default();
        let net = Network::from_record(&record, dns)?;
        if let Some(other) = networks.iter().find(|n| net.overlap(n).is_some()) {
            let (mine, theirs) = net.overlap(other).expect("found overlapping");
            return Err(ServiceError::Conflict(format!(
                "{} overlaps network {}'s {}",
                mine.cidr(),
                other.name,
                theirs.cidr()
            )));
        }
        if let Some(uplink) = &record.uplink {
            let name = uplink.clone();
            let links = self
                .on_host(move |h| h.links(&name))
                .await?
                .map_err(net_err("list network links"))?;
            if !links.contains(uplink) {
                return Err(ServiceError::Invalid(format!(
                    "there is no interface {uplink} on the host"
                )));
            }
        }
        if routed && net.ipv6.is_some() && !self.on_host(|h| h.ipv6_forwarding()).await? {
            return Err(ServiceError::Invalid(
                "a routed IPv6 pool needs the host to route IPv6: set net.ipv6.conf.all.forwarding=1 \
                 (and accept_ra=2 on an uplink that takes router advertisements), then try again"
                    .into(),
            ));
        }
        let existing = self
            .on_host({
                let bridge = bridge.clone();
                move |h| h.links(&bridge)
            })
            .await?
            .map_err(net_err("list network links"))?;
        if bridged {
            if !existing.contains(&bridge) {
                return Err(ServiceError::Invalid(format!(
                    "there is no bridge {bridge} on the host: a bridged network joins an existing one"
                )));
            }
        } else if existing.contains(&bridge) {
            return Err(ServiceError::Conflict(format!(
                "a link named {bridge} exists on the host already; choose another bridge name"
            )));
        }
        self.store.create_network(&record).await.map_err(|e| match e {
            StoreError::Taken(what) => ServiceError::Conflict(format!("{what} is already in use")),
            e => e.into(),
        })?;
        self.networks
            .write()
            .expect("networks poisoned")
            .insert(net.name.clone(), net.clone());
        let made = async {
            self.bring_up(&net).await?;
            self.apply_rules().await?;
            self.sync_proxies().await
        }
        .await;
        if let Err(e) = made {
            self.forget_network(&net).await;
            return Err(e);
        }
        info!(network = %net.name, bridge = %net.bridge, "network created");
        self.network_info(&net.name).await
    }

    /// `croft network delete`: a network no VPS is on, with its bridge.
    pub async fn delete_network(&self, name: &str) -> Result<()> {
        if name == ipam::DEFAULT_NETWORK {
            return Err(ServiceError::Invalid(
                "the default network is croftd's configuration's [network]; it cannot be deleted".into(),
            ));
        }
        let _allocating = self.allocating().await;
        let net = self
            .network_named(name)
            .ok_or_else(|| ServiceError::NotFound(format!("network {name}")))?;
        self.store.delete_network(name).await.map_err(|e| match e {
            StoreError::InUse(what) => ServiceError::Conflict(what),
            StoreError::Missing(what) => ServiceError::NotFound(what),
            e => e.into(),
        })?;
        self.forget_network(&net).await;
        info!(network = %name, "network deleted");
        Ok(())
    }

    /// Take network `net` out of the map, the rules and the host.
    async fn forget_network(&self, net: &Network) {
        self.networks
            .write()
            .expect("networks poisoned")
            .remove(&net.name);
        let _ = self.store.delete_network(&net.name).await;
        if let Err(e) = self.apply_rules().await {
            tracing::warn!(network = %net.name, "reloading the rules without it: {}", crate::error_chain(&e));
        }
        if net.bridged() {
            // The admin's bridge stays.
            return;
        }
        let bridge = net.bridge.clone();
        if let Err(e) = self.on_host(move |h| h.detach(&bridge)).await {
            tracing::warn!(network = %net.name, "removing its bridge: {}", crate::error_chain(&e));
        }
    }

    pub async fn network_info(&self, name: &str) -> Result<croft_api::Network> {
        self.networks()
            .await?
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("network {name}")))
    }
}

/// A VPS's rules before a change, and how many full loads there had been.
struct LoadedRules {
    rules: Option<nft::VpsRules>,
    generation: u64,
}

/// See [`NetworkService::leftovers`].
#[derive(Debug, Default)]
pub struct Leftovers {
    /// Its interfaces' host-side links.
    pub host_ifs: Vec<String>,
    /// The rules of each of its interfaces, as loaded; `None` to remove
    /// them by reloading all.
    pub rules: Option<Vec<nft::VpsRules>>,
    /// The routes of its delegated prefixes: (bridge, prefix, length, via).
    pub routes: Vec<(String, std::net::Ipv6Addr, u8, IpAddr)>,
}
