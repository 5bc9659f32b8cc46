//! Security groups: firewall rules a tenant defines once and attaches to
//! many of its VPSes. A group's rules are rendered into each member's
//! chains after its own rules, so a change to a group loads the chains
//! of its members, and nothing else.

use super::{NetworkService, Result, ServiceError, VpsName};
use crate::store::{GroupRecord, RuleEdit, StoreError};
use croft_api::{FirewallGroup, FirewallGroupCreate};
use std::collections::HashMap;
use tracing::info;

/// A store error about a group or an attachment, as the caller sees it.
fn refused(e: StoreError) -> ServiceError {
    match e {
        StoreError::Missing(what) => ServiceError::NotFound(what),
        StoreError::Taken(what) if what.starts_with("the security group name") => {
            ServiceError::Conflict(format!("{} is already in use", &what["the ".len()..]))
        }
        StoreError::InUse(what) => ServiceError::Conflict(what),
        e => e.into(),
    }
}

impl NetworkService {
    /// Groups as shown, their members named as their tenant names them.
    async fn views(&self, groups: Vec<GroupRecord>) -> Result<Vec<FirewallGroup>> {
        let names: HashMap<String, String> = self
            .store
            .instances()
            .await?
            .into_iter()
            .map(|i| (i.key, i.name))
            .collect();
        Ok(groups
            .into_iter()
            .map(|g| FirewallGroup {
                members: g
                    .members
                    .iter()
                    .filter_map(|(key, _)| names.get(key).cloned())
                    .collect(),
                name: g.name,
                tenant: g.tenant,
                description: g.description,
                rules: g.rules,
            })
            .collect())
    }

    /// The groups of `tenant` (every tenant's if `None`).
    pub async fn groups(&self, tenant: Option<&str>) -> Result<Vec<FirewallGroup>> {
        let groups = self.store.firewall_groups(tenant).await?;
        self.views(groups).await
    }

    /// Group `name` of `tenant`.
    pub async fn group(&self, tenant: &str, name: &str) -> Result<FirewallGroup> {
        self.groups(Some(tenant))
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("security group {name}")))
    }

    pub async fn create_group(&self, tenant: &str, req: FirewallGroupCreate) -> Result<FirewallGroup> {
        croft_api::validate_name(&req.name).map_err(|e| ServiceError::invalid(&e))?;
        self.store
            .create_firewall_group(tenant, &req.name, &req.description)
            .await
            .map_err(refused)?;
        info!(tenant, group = %req.name, "security group created");
        self.group(tenant, &req.name).await
    }

    /// Delete a group attached to no VPS.
    pub async fn delete_group(&self, tenant: &str, name: &str) -> Result<()> {
        self.store
            .delete_firewall_group(tenant, name)
            .await
            .map_err(refused)?;
        info!(tenant, group = name, "security group deleted");
        Ok(())
    }

    /// Change a group's rules by `edit`, in force on every member at once;
    /// undone if the rules cannot be loaded.
    pub async fn edit_group(&self, tenant: &str, name: &str, edit: RuleEdit) -> Result<FirewallGroup> {
        if let RuleEdit::Insert { rule, .. } | RuleEdit::Replace { rule, .. } = &edit {
            croft_api::validate_firewall_rule(rule).map_err(|e| ServiceError::invalid(&e))?;
            self.require_firewall()?;
        }
        let before = self
            .store
            .edit_group_rules(tenant, name, &edit)
            .await
            .map_err(|e| match e {
                StoreError::Missing(what) if what.starts_with("firewall rule") => {
                    ServiceError::NotFound(format!("{what} of security group {name}"))
                }
                e => refused(e),
            })?;
        let members = self.member_keys(tenant, name).await?;
        if let Err(e) = self.reload_firewalls(&members).await {
            let _ = self.store.set_group_rules(tenant, name, &before).await;
            return Err(e);
        }
        info!(
            tenant,
            group = name,
            ?edit,
            members = members.len(),
            "security group changed"
        );
        self.group(tenant, name).await
    }

    async fn member_keys(&self, tenant: &str, name: &str) -> Result<Vec<String>> {
        Ok(self
            .store
            .firewall_groups(Some(tenant))
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .map(|g| g.members.into_iter().map(|(key, _)| key).collect())
            .unwrap_or_default())
    }

    /// Attach group `group` of the VPS's tenant to it, after those
    /// attached: its rules apply at once.
    pub async fn attach_group(&self, vps: VpsName<'_>, group: &str) -> Result<croft_api::Firewall> {
        let row = super::super::find(self.store.as_ref(), vps).await?;
        self.require_firewall()?;
        self.store.attach_group(&row.key, group).await.map_err(refused)?;
        if let Err(e) = self.reload_firewall(&row.key).await {
            let _ = self.store.detach_group(&row.key, group).await;
            return Err(e);
        }
        info!(vps = %vps, tenant = vps.tenant, group, "security group attached");
        self.firewall(vps).await
    }

    pub async fn detach_group(&self, vps: VpsName<'_>, group: &str) -> Result<croft_api::Firewall> {
        let row = super::super::find(self.store.as_ref(), vps).await?;
        if !self.store.detach_group(&row.key, group).await? {
            return Err(ServiceError::NotFound(format!(
                "security group {group} attached to VPS {vps}"
            )));
        }
        if let Err(e) = self.reload_firewall(&row.key).await {
            let _ = self.store.attach_group(&row.key, group).await;
            return Err(e);
        }
        info!(vps = %vps, tenant = vps.tenant, group, "security group detached");
        self.firewall(vps).await
    }
}
