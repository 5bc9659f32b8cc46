//! The manager's network side: the bridge and rules at start, an
//! interface with addresses for every VPS, port forwards, and the views of
//! all of it. Address management is the `nics` table (see
//! `crate::network`); the rules are always rebuilt from the database, so
//! applying them is idempotent and a croftd restart restores them.

use super::{blocking, host_err, Manager, ManagerError, Result};
use crate::db::{DbError, ForwardRow, NicRow};
use crate::network::{host_if, new_mac, Network, NetworkError};
use croft_host::net::{nft, NicSpec};
use std::collections::HashSet;
use std::net::IpAddr;
use tracing::info;

impl From<NetworkError> for ManagerError {
    fn from(e: NetworkError) -> ManagerError {
        match e {
            NetworkError::Exhausted { .. } => ManagerError::Conflict(e.to_string()),
            _ => ManagerError::Invalid(e.to_string()),
        }
    }
}

fn net_host_err(what: &str) -> impl FnOnce(croft_host::net::NetError) -> ManagerError + '_ {
    move |e| ManagerError::Host {
        what: what.into(),
        detail: crate::error_chain(&e),
    }
}

/// The rules of the VPS with `nic`, from the stored forwards and firewall
/// rules of all VPSes.
fn vps_rules(
    nic: &crate::db::NicRow,
    forwards: &[crate::db::ForwardRow],
    rules: &[(String, croft_api::FirewallRule)],
    default_deny: bool,
) -> Result<nft::VpsRules> {
    Ok(nft::VpsRules {
        host_if: nic.host_if.clone(),
        mac: croft_host::net::parse_mac(&nic.mac).map_err(net_host_err("read a stored MAC"))?,
        ipv4: nic.ipv4.as_deref().and_then(|a| a.parse().ok()),
        ipv6: nic.ipv6.as_deref().and_then(|a| a.parse().ok()),
        forwards: forwards
            .iter()
            .filter(|f| f.instance == nic.instance)
            .map(|f| nft::PortForward {
                protocol: f.protocol.clone(),
                host_port: f.host_port,
                vps_port: f.vps_port,
            })
            .collect(),
        firewall: firewall_for(&nic.instance, default_deny, rules),
    })
}

/// The host-side firewall of VPS `name`, or `None` if it lets everything
/// in (no rules, default allow). Stored rules were validated on the way in.
fn firewall_for(
    name: &str,
    default_deny: bool,
    rules: &[(String, croft_api::FirewallRule)],
) -> Option<nft::Firewall> {
    let rules: Vec<nft::FirewallRule> = rules
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, r)| nft::FirewallRule {
            allow: r.action == "allow",
            protocol: r.protocol.clone(),
            ports: r
                .port
                .as_deref()
                .and_then(|p| croft_api::parse_port_range(p).ok()),
            source: r.source.as_deref().and_then(|s| croft_api::parse_source(s).ok()),
        })
        .collect();
    (default_deny || !rules.is_empty()).then_some(nft::Firewall { default_deny, rules })
}

/// Addresses a launch asks for, checked against the network before
/// anything is created.
#[derive(Debug, Default, Clone, Copy)]
pub struct AddressRequest {
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
}

impl Manager {
    /// The network VPSes join, unless networking is off.
    pub(super) fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    /// Bring up the bridge and load the rules: at every croftd start.
    pub(super) async fn setup_network(&self) -> Result<()> {
        let Some(net) = self.network.clone() else {
            return Ok(());
        };
        let addresses: Vec<(IpAddr, u8)> = [net.ipv4, net.ipv6]
            .into_iter()
            .flatten()
            .map(|s| (s.gateway, s.prefix))
            .collect();
        let bridge = net.bridge.clone();
        let capable = blocking(move || croft_host::net::ensure_bridge(&bridge, &addresses))
            .await?
            .map_err(net_host_err("set up the network bridge"))?;
        self.firewall_capable
            .store(capable, std::sync::atomic::Ordering::Relaxed);
        if !capable {
            tracing::warn!("no br_netfilter on this host: per-VPS firewalls are refused");
        }
        self.apply_rules().await?;
        self.remove_stray_links().await?;
        info!(bridge = %net.bridge, "network up");
        Ok(())
    }

    /// Rebuild croft's nftables rules from the database and load them. A
    /// VPS's anti-spoofing rules must be loaded before it first starts
    /// (`start_locked` sees to that); everything else that changes rules
    /// calls this at once.
    pub(super) async fn apply_rules(&self) -> Result<()> {
        let Some(net) = self.network.clone() else {
            return Ok(());
        };
        let mut loaded = self.rules_loaded.lock().await;
        let nics = self.db.nics().await?;
        let forwards = self.db.forwards().await?;
        let rules = self.db.firewall_rules().await?;
        let deny: HashSet<String> = self
            .db
            .instances()
            .await?
            .into_iter()
            .filter(|i| {
                croft_api::InstanceConfig::parse(&i.config)
                    .map(|c| c.firewall_deny)
                    .unwrap_or(false)
            })
            .map(|i| i.name)
            .collect();
        let vpses = nics
            .iter()
            .map(|n| vps_rules(n, &forwards, &rules, deny.contains(&n.instance)))
            .collect::<Result<Vec<_>>>()?;
        let ruleset = nft::Ruleset {
            bridge: net.bridge.clone(),
            ipv4_subnet: net.ipv4.and_then(|s| match s.network() {
                IpAddr::V4(a) => Some((a, s.prefix)),
                IpAddr::V6(_) => None,
            }),
            nat: net.nat,
            isolated: net.isolated,
            vpses,
        };
        let text = nft::render(&ruleset);
        blocking(move || nft::apply(&text))
            .await?
            .map_err(net_host_err("apply the network rules"))?;
        *loaded = nics.into_iter().map(|n| n.host_if).collect();
        // Queued ports are in this load, or (made after it read the
        // database) not marked loaded: their launches reload again.
        self.rules_queue.lock().expect("rules queue").clear();
        Ok(())
    }

    /// Make sure the rules of VPS `name` (its port `host_if`) are loaded
    /// before it starts. A VPS with no port forward and no firewall, the
    /// common case, needs only its own port chain: that is added to the
    /// loaded rules (a few milliseconds, whatever the number of VPSes)
    /// instead of reloading every VPS's rules, and the ports of concurrent
    /// launches are added together in one `nft` run.
    pub(super) async fn load_rules_for(&self, name: &str, host_if: &str) -> Result<()> {
        let Some(net) = self.network.clone() else {
            return Ok(());
        };
        if self.rules_loaded.lock().await.contains(host_if) {
            return Ok(());
        }
        let Some(vps) = self.rules_of(name).await? else {
            return Ok(());
        };
        if let Some(text) = nft::render_added_port(net.isolated, &vps) {
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
                match blocking(move || nft::apply(&text)).await? {
                    Ok(()) => loaded.extend(batch.into_iter().map(|(port, _)| port)),
                    Err(e) => tracing::warn!(vps = %name, "adding VPS rules failed ({e}); reloading all"),
                }
            }
            if loaded.contains(host_if) {
                return Ok(());
            }
        }
        // Forwards or a firewall, or the batch that carried this port
        // failed: everything, from the database.
        self.apply_rules().await
    }

    /// Host-side veths and ifb devices of VPSes that are not running: what
    /// a crash between making and removing them left behind.
    async fn remove_stray_links(&self) -> Result<()> {
        let running: HashSet<String> = self
            .db
            .instances()
            .await?
            .into_iter()
            .filter(|i| {
                matches!(
                    i.status,
                    croft_api::Status::Running | croft_api::Status::Starting | croft_api::Status::Stopping
                )
            })
            .map(|i| i.name)
            .collect();
        let keep: HashSet<String> = self
            .db
            .nics()
            .await?
            .into_iter()
            .filter(|n| running.contains(&n.instance))
            .flat_map(|n| [croft_host::net::tc::ifb_name(&n.host_if), n.host_if])
            .collect();
        let links = blocking(|| croft_host::net::links_with_prefix(nft::VETH_PREFIX))
            .await?
            .map_err(net_host_err("list network links"))?;
        for link in links.into_iter().filter(|l| !keep.contains(l)) {
            tracing::warn!(link = %link, "removing a link no running VPS owns");
            let _ = blocking(move || croft_host::net::detach(&link)).await;
        }
        Ok(())
    }

    /// Refuse a firewall the host cannot enforce between VPSes.
    pub(super) fn require_firewall(&self) -> Result<()> {
        if self.network().is_none() {
            return Err(ManagerError::Invalid("networking is off".into()));
        }
        if !self.firewall_capable.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(ManagerError::Invalid(
                "this host has no br_netfilter (traffic between VPSes bypasses the IP hooks), so croft cannot \
                 enforce per-VPS firewalls; load the br_netfilter module and restart croftd"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Parse and check the addresses a launch asks for (400 before anything
    /// is created).
    pub(super) fn check_address_request(
        &self,
        ipv4: Option<&str>,
        ipv6: Option<&str>,
    ) -> Result<AddressRequest> {
        let mut req = AddressRequest::default();
        for (text, v4) in [(ipv4, true), (ipv6, false)] {
            let Some(text) = text else { continue };
            let family = if v4 { "IPv4" } else { "IPv6" };
            let net = self.network().ok_or_else(|| {
                ManagerError::Invalid(format!("networking is off; no {family} address can be given"))
            })?;
            let addr: IpAddr = text
                .parse()
                .ok()
                .filter(|a: &IpAddr| a.is_ipv4() == v4)
                .ok_or_else(|| ManagerError::Invalid(format!("{text:?} is not an {family} address")))?;
            let subnet = if v4 { net.ipv4 } else { net.ipv6 }
                .ok_or_else(|| ManagerError::Invalid(format!("the network has no {family} subnet")))?;
            subnet.check_assignable(addr)?;
            if v4 {
                req.ipv4 = Some(addr);
            } else {
                req.ipv6 = Some(addr);
            }
        }
        Ok(req)
    }

    /// Give VPS `name` its interface: a MAC and the requested or next free
    /// addresses, recorded in one row (the UNIQUE constraints make a taken
    /// address a conflict, never a duplicate).
    pub(super) async fn allocate_nic(&self, name: &str, uid_base: u32, req: AddressRequest) -> Result<()> {
        let Some(net) = self.network.clone() else {
            return Ok(());
        };
        let _ipam = self.ipam.lock().await;
        let nics = self.db.nics().await?;
        let used = |pick: fn(&NicRow) -> Option<&String>| -> HashSet<IpAddr> {
            nics.iter()
                .filter_map(|n| pick(n).and_then(|a| a.parse().ok()))
                .collect()
        };
        let ipv4 = match (net.ipv4, req.ipv4) {
            (_, Some(a)) => Some(a),
            (Some(s), None) => Some(s.allocate(&used(|n| n.ipv4.as_ref()), None)?),
            (None, None) => None,
        };
        let ipv6 = match (net.ipv6, req.ipv6) {
            (_, Some(a)) => Some(a),
            (Some(s6), None) => {
                // Same host part as the IPv4 address where free: 10.87.0.5
                // and fd63:726f:6674::5.
                let prefer = net.ipv4.zip(ipv4).map(|(s4, a)| s4.index_of(a));
                Some(s6.allocate(&used(|n| n.ipv6.as_ref()), prefer)?)
            }
            (None, None) => None,
        };
        let row = NicRow {
            instance: name.into(),
            network: net.name.clone(),
            host_if: host_if(uid_base, self.cfg.id_base),
            mac: new_mac(),
            ipv4: ipv4.map(|a| a.to_string()),
            ipv6: ipv6.map(|a| a.to_string()),
        };
        self.db.insert_nic(&row).await.map_err(|e| match e {
            DbError::Taken(what) => ManagerError::Conflict(format!("address {what} is already in use")),
            e => e.into(),
        })
    }

    /// What the supervisor needs to make the VPS's interface, with the
    /// bandwidth limits of its configuration `cfg`.
    pub(super) async fn nic_spec(
        &self,
        name: &str,
        cfg: &croft_api::InstanceConfig,
    ) -> Result<Option<NicSpec>> {
        let (Some(net), Some(nic)) = (self.network(), self.db.nic(name).await?) else {
            return Ok(None);
        };
        let mut addresses = Vec::new();
        let mut gateways = Vec::new();
        for (addr, subnet) in [(&nic.ipv4, net.ipv4), (&nic.ipv6, net.ipv6)] {
            if let (Some(a), Some(s)) = (addr, subnet) {
                addresses.push(format!("{a}/{}", s.prefix));
                gateways.push(s.gateway);
            }
        }
        Ok(Some(NicSpec {
            bridge: net.bridge.clone(),
            host_if: nic.host_if,
            mac: nic.mac,
            addresses,
            gateways,
            ingress_bps: cfg.ingress_bps,
            egress_bps: cfg.egress_bps,
        }))
    }

    /// /etc/hosts and /etc/resolv.conf for the VPS's addresses, written
    /// into its disk before each start.
    pub(super) async fn write_network_files(&self, name: &str, rootfs: &std::path::Path) -> Result<()> {
        let (Some(net), Some(nic)) = (self.network(), self.db.nic(name).await?) else {
            return Ok(());
        };
        let addresses: Vec<IpAddr> = [nic.ipv4, nic.ipv6]
            .into_iter()
            .flatten()
            .filter_map(|a| a.parse().ok())
            .collect();
        let (rootfs, hostname, dns) = (rootfs.to_path_buf(), name.to_string(), net.dns.clone());
        blocking(move || croft_host::rootfs::write_network_files(&rootfs, &hostname, &addresses, &dns))
            .await?
            .map_err(|e| ManagerError::Host {
                what: "write the VPS's network files".into(),
                detail: crate::error_chain(&e),
            })
    }

    /// Change the bandwidth limits of a running VPS now, and in its spec so
    /// a reboot from inside (which makes a new veth) keeps them.
    pub(super) async fn apply_bandwidth(
        &self,
        name: &str,
        ingress: Option<u64>,
        egress: Option<u64>,
    ) -> Result<()> {
        let Some(nic) = self.db.nic(name).await? else {
            if ingress.is_some() || egress.is_some() {
                return Err(ManagerError::Invalid(format!(
                    "VPS {name} has no network interface to limit"
                )));
            }
            return Ok(());
        };
        let host_if = nic.host_if.clone();
        blocking(move || croft_host::net::tc::set_limits(&host_if, ingress, egress))
            .await?
            .map_err(net_host_err("apply the bandwidth limits"))?;
        let spec_path = croft_host::spec::RunDir(&self.run_dir(name)).spec();
        if let Ok(text) = std::fs::read(&spec_path) {
            if let Ok(mut spec) = serde_json::from_slice::<croft_host::spec::VpsSpec>(&text) {
                if let Some(n) = spec.nic.as_mut() {
                    n.ingress_bps = ingress;
                    n.egress_bps = egress;
                }
                // Written aside and renamed: the supervisor may read it at any
                // moment (a reboot from inside).
                let json = serde_json::to_vec_pretty(&spec).expect("spec serializes");
                let tmp = spec_path.with_extension("json.tmp");
                std::fs::write(&tmp, json)
                    .and_then(|_| std::fs::rename(&tmp, &spec_path))
                    .map_err(super::host_err("update the spec"))?;
            }
        }
        Ok(())
    }

    /// Remove a stopped VPS's leftovers on the host (its shaping device).
    pub(super) async fn after_stop_network(&self, name: &str) {
        if let Ok(Some(nic)) = self.db.nic(name).await {
            let _ = blocking(move || croft_host::net::detach(&nic.host_if)).await;
        }
    }

    /// The rules of VPS `name` as the database has them; `None` if it has
    /// no network interface.
    async fn rules_of(&self, name: &str) -> Result<Option<nft::VpsRules>> {
        let Some(nic) = self.db.nic(name).await? else {
            return Ok(None);
        };
        let forwards = self.db.forwards().await?;
        let rules = self.db.firewall_rules().await?;
        let deny = croft_api::InstanceConfig::parse(&self.row(name).await?.config)
            .map(|c| c.firewall_deny)
            .unwrap_or(false);
        vps_rules(&nic, &forwards, &rules, deny).map(Some)
    }

    /// Whether VPS `name` has rules beyond its own port chain (forwards or
    /// a firewall), so that removing it needs a full reload.
    pub(super) async fn has_more_rules(&self, name: &str) -> Result<bool> {
        Ok(self
            .rules_of(name)
            .await?
            .is_some_and(|v| !v.forwards.is_empty() || v.firewall.is_some()))
    }

    /// Remove what is left of a deleted VPS's interface on the host, and
    /// its rules: only its port chain and elements when that is all it had
    /// (`more_rules` false), else by reloading everything.
    pub(super) async fn release_nic(&self, host_if: Option<String>, more_rules: bool) -> Result<()> {
        if let Some(host_if) = host_if.clone() {
            blocking(move || croft_host::net::detach(&host_if))
                .await?
                .map_err(net_host_err("remove the VPS's veth"))?;
        }
        if let (Some(net), Some(host_if), false) = (self.network.clone(), host_if, more_rules) {
            let mut loaded = self.rules_loaded.lock().await;
            if !loaded.contains(&host_if) {
                return Ok(()); // never loaded since croftd started: nothing to remove
            }
            let text = nft::render_removed_port(net.isolated, &host_if);
            match blocking(move || nft::apply(&text)).await? {
                Ok(()) => {
                    loaded.remove(&host_if);
                    return Ok(());
                }
                Err(e) => tracing::warn!(port = %host_if, "removing its rules failed ({e}); reloading all"),
            }
        }
        self.apply_rules().await
    }

    pub(super) fn nic_view(nic: Option<&NicRow>) -> Option<croft_api::Nic> {
        nic.map(|n| croft_api::Nic {
            network: n.network.clone(),
            mac: n.mac.clone(),
            ipv4: n.ipv4.clone(),
            ipv6: n.ipv6.clone(),
            host_interface: n.host_if.clone(),
        })
    }

    pub(super) fn forwards_view(forwards: &[ForwardRow], name: &str) -> Vec<croft_api::PortForward> {
        forwards
            .iter()
            .filter(|f| f.instance == name)
            .map(|f| croft_api::PortForward {
                protocol: f.protocol.clone(),
                host_port: f.host_port,
                vps_port: f.vps_port,
            })
            .collect()
    }

    /// `croft port add`: forward a host port to the VPS; lasts across
    /// restarts of the VPS and of croftd (it is a row, and the rules are
    /// rebuilt from the rows).
    pub async fn add_forward(
        &self,
        name: &str,
        f: croft_api::PortForward,
    ) -> Result<Vec<croft_api::PortForward>> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        croft_api::validate_forward(&f).map_err(ManagerError::Invalid)?;
        self.row(name).await?;
        if self.cfg.network.reserved_ports.contains(&f.host_port) {
            return Err(ManagerError::Invalid(format!(
                "host port {} is reserved for the host's own services (network.reserved_ports)",
                f.host_port
            )));
        }
        if crate::network::host_listens(&f.protocol, f.host_port).map_err(host_err("read /proc/net"))? {
            return Err(ManagerError::Conflict(format!(
                "host port {}/{} is in use by a service on the host",
                f.host_port, f.protocol
            )));
        }
        let nic = self.db.nic(name).await?;
        if nic.as_ref().and_then(|n| n.ipv4.as_ref()).is_none() {
            return Err(ManagerError::Invalid(format!(
                "VPS {name} has no IPv4 address to forward to"
            )));
        }
        let row = ForwardRow {
            protocol: f.protocol.clone(),
            host_port: f.host_port,
            instance: name.into(),
            vps_port: f.vps_port,
        };
        self.db.insert_forward(&row).await.map_err(|e| match e {
            DbError::Taken(what) => ManagerError::Conflict(format!("{what} is already forwarded")),
            e => e.into(),
        })?;
        if let Err(e) = self.apply_rules().await {
            // Nothing half-applied: the rules stay as they were, and so
            // does the state.
            let _ = self.db.delete_forward(name, &f.protocol, f.host_port).await;
            return Err(e);
        }
        info!(vps = name, protocol = %f.protocol, host_port = f.host_port, vps_port = f.vps_port, "port forwarded");
        self.forwards(name).await
    }

    pub async fn remove_forward(&self, name: &str, protocol: &str, host_port: u16) -> Result<()> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.row(name).await?;
        if !self.db.delete_forward(name, protocol, host_port).await? {
            return Err(ManagerError::NotFound(format!(
                "port forward {host_port}/{protocol} of VPS {name}"
            )));
        }
        self.apply_rules().await
    }

    pub async fn forwards(&self, name: &str) -> Result<Vec<croft_api::PortForward>> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.row(name).await?;
        Ok(Self::forwards_view(&self.db.forwards().await?, name))
    }

    /// `croft firewall list`.
    pub async fn firewall(&self, name: &str) -> Result<croft_api::Firewall> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        let row = self.row(name).await?;
        Ok(Self::firewall_view(&row, &self.db.firewall_rules().await?))
    }

    /// VPS `row`'s firewall as shown: its default (from its config) and
    /// its rules among `rules`, every VPS's.
    pub(super) fn firewall_view(
        row: &crate::db::InstanceRow,
        rules: &[(String, croft_api::FirewallRule)],
    ) -> croft_api::Firewall {
        let deny = croft_api::InstanceConfig::parse(&row.config)
            .map(|c| c.firewall_deny)
            .unwrap_or(false);
        croft_api::Firewall {
            default: if deny { "deny" } else { "allow" }.into(),
            rules: rules
                .iter()
                .filter(|(n, _)| *n == row.name)
                .map(|(_, r)| r.clone())
                .collect(),
        }
    }

    /// `croft firewall add`: append a rule; in force at once.
    pub async fn add_firewall_rule(
        &self,
        name: &str,
        rule: croft_api::FirewallRule,
    ) -> Result<croft_api::Firewall> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        croft_api::validate_firewall_rule(&rule).map_err(ManagerError::Invalid)?;
        self.row(name).await?;
        self.require_firewall()?;
        let id = self.db.insert_firewall_rule(name, &rule).await?;
        if let Err(e) = self.apply_rules().await {
            let _ = self.db.delete_firewall_rule_id(id).await;
            return Err(e);
        }
        self.firewall(name).await
    }

    /// `croft firewall remove`: remove the `index`th rule (1-based).
    pub async fn remove_firewall_rule(&self, name: &str, index: usize) -> Result<croft_api::Firewall> {
        croft_api::validate_name(name).map_err(|e| ManagerError::Invalid(crate::error_chain(&e)))?;
        self.row(name).await?;
        let Some((id, rule)) = self.db.delete_firewall_rule(name, index).await? else {
            return Err(ManagerError::NotFound(format!(
                "firewall rule {index} of VPS {name}"
            )));
        };
        if let Err(e) = self.apply_rules().await {
            let _ = self.db.restore_firewall_rule(id, name, &rule).await;
            return Err(e);
        }
        self.firewall(name).await
    }

    pub async fn networks(&self) -> Result<Vec<croft_api::Network>> {
        let Some(net) = self.network() else {
            return Ok(Vec::new());
        };
        let leases = self
            .db
            .nics()
            .await?
            .into_iter()
            .filter(|n| n.network == net.name)
            .map(|n| croft_api::Lease {
                instance: n.instance,
                mac: n.mac,
                ipv4: n.ipv4,
                ipv6: n.ipv6,
            })
            .collect();
        Ok(vec![croft_api::Network {
            name: net.name.clone(),
            bridge: net.bridge.clone(),
            ipv4: net.ipv4.map(|s| format!("{}/{}", s.gateway, s.prefix)),
            ipv6: net.ipv6.map(|s| format!("{}/{}", s.gateway, s.prefix)),
            nat: net.nat,
            isolated: net.isolated,
            dns: net.dns.iter().map(|d| d.to_string()).collect(),
            leases,
        }])
    }

    pub async fn network_info(&self, name: &str) -> Result<croft_api::Network> {
        self.networks()
            .await?
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| ManagerError::NotFound(format!("network {name}")))
    }
}
