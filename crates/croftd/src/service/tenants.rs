//! Tenants, their quotas and usage, and plans (named VPS sizes): made by
//! the admin; every VPS belongs to a tenant.

use super::{Result, ServiceError};
use crate::store::{PlanRecord, Store, StoreError, TenantRecord, DEFAULT_TENANT};
use std::sync::Arc;
use tracing::info;

pub struct TenantService {
    store: Arc<dyn Store>,
}

impl TenantService {
    pub fn new(store: Arc<dyn Store>) -> TenantService {
        TenantService { store }
    }

    fn view(record: TenantRecord, vpses: usize) -> croft_api::Tenant {
        croft_api::Tenant {
            name: record.name,
            description: record.description,
            created_at: record.created_at,
            vpses,
            quota: record.quota,
            images: record.images,
            features: record.features,
        }
    }

    async fn vps_count(&self, tenant: &str) -> Result<usize> {
        Ok(self
            .store
            .instances()
            .await?
            .iter()
            .filter(|i| i.tenant == tenant)
            .count())
    }

    pub async fn list(&self) -> Result<Vec<croft_api::Tenant>> {
        let vpses = self.store.instances().await?;
        Ok(self
            .store
            .tenants()
            .await?
            .into_iter()
            .map(|t| {
                let count = vpses.iter().filter(|v| v.tenant == t.name).count();
                Self::view(t, count)
            })
            .collect())
    }

    /// Tenant `name`: 400 for a bad name, 404 for an unknown one.
    pub async fn get(&self, name: &str) -> Result<croft_api::Tenant> {
        croft_api::validate_name(name).map_err(|e| ServiceError::Invalid(format!("tenant {e}")))?;
        let record = self
            .store
            .tenant(name)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("tenant {name}")))?;
        let count = self.vps_count(name).await?;
        Ok(Self::view(record, count))
    }

    pub async fn create(&self, req: croft_api::TenantCreate) -> Result<croft_api::Tenant> {
        croft_api::validate_name(&req.name).map_err(|e| ServiceError::Invalid(format!("tenant {e}")))?;
        if req.description.len() > 1024 || req.description.chars().any(char::is_control) {
            return Err(ServiceError::Invalid(
                "a tenant's description is one line of at most 1024 bytes".into(),
            ));
        }
        let record = self
            .store
            .create_tenant(&req.name, &req.description)
            .await
            .map_err(|e| match e {
                StoreError::Taken(_) => ServiceError::Conflict(format!("tenant {} already exists", req.name)),
                e => e.into(),
            })?;
        info!(tenant = %record.name, "tenant created");
        Ok(Self::view(record, 0))
    }

    /// Delete a tenant that has no VPS left; its tokens go with it.
    pub async fn delete(&self, name: &str) -> Result<()> {
        croft_api::validate_name(name).map_err(|e| ServiceError::Invalid(format!("tenant {e}")))?;
        if name == DEFAULT_TENANT {
            return Err(ServiceError::Invalid(format!(
                "the {DEFAULT_TENANT} tenant holds the host administrator's VPSes and cannot be deleted"
            )));
        }
        match self.store.delete_tenant(name).await {
            Ok(true) => {
                info!(tenant = %name, "tenant deleted");
                Ok(())
            }
            Ok(false) => Err(ServiceError::NotFound(format!("tenant {name}"))),
            Err(StoreError::InUse(why)) => Err(ServiceError::Conflict(why)),
            Err(e) => Err(e.into()),
        }
    }

    /// Set tenant `name`'s quota (all of it: a cap left out is no cap).
    /// Refused if the tenant already holds more, or has a VPS without a
    /// limit the quota caps.
    pub async fn set_quota(&self, name: &str, quota: croft_api::Quota) -> Result<croft_api::Tenant> {
        self.get(name).await?;
        self.store.set_quota(name, &quota).await?;
        info!(tenant = %name, ?quota, "quota set");
        self.get(name).await
    }

    /// Set the images tenant `name` may use (`None`: every image). Each
    /// must be a valid image name; an image not there yet is allowed (it
    /// may be imported later).
    pub async fn set_images(&self, name: &str, images: Option<Vec<String>>) -> Result<croft_api::Tenant> {
        self.get(name).await?;
        if let Some(list) = &images {
            for image in list {
                croft_api::validate_image_name(image).map_err(|e| ServiceError::invalid(&e))?;
            }
        }
        self.store.set_tenant_images(name, images.as_deref()).await?;
        info!(tenant = %name, ?images, "allowed images set");
        self.get(name).await
    }

    /// Set the features tenant `name`'s VPSes may have on (all of them).
    /// Refused while one of its VPSes has on a feature left out.
    pub async fn set_features(&self, name: &str, features: Vec<String>) -> Result<croft_api::Tenant> {
        self.get(name).await?;
        for f in &features {
            if !croft_api::config::FEATURES.contains(&f.as_str()) {
                return Err(ServiceError::Invalid(format!(
                    "unknown feature {f:?} (features: {})",
                    croft_api::config::FEATURES.join(", ")
                )));
            }
        }
        for vps in self
            .store
            .instances()
            .await?
            .into_iter()
            .filter(|i| i.tenant == name)
        {
            if let Some(on) = features_on(&vps.settings.parsed).find(|f| !features.iter().any(|a| a == f)) {
                return Err(ServiceError::Conflict(format!(
                    "VPS {} of tenant {name} has features.{on} on; switch it off first",
                    vps.name
                )));
            }
        }
        self.store.set_tenant_features(name, &features).await?;
        info!(tenant = %name, ?features, "allowed features set");
        self.get(name).await
    }

    /// Whether tenant `name` exists: one record read (the guard asks
    /// this of every request that names a tenant).
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.store.tenant(name).await?.is_some())
    }

    /// The images tenant `name` may use; `None`: every image.
    pub async fn allowed_images(&self, name: &str) -> Result<Option<Vec<String>>> {
        allowed_images(self.store.as_ref(), name).await
    }

    /// What tenant `name` holds, beside its quota.
    pub async fn usage(&self, name: &str) -> Result<croft_api::TenantUsage> {
        let tenant = self.get(name).await?;
        Ok(croft_api::TenantUsage {
            used: self.store.tenant_usage(name).await?,
            tenant: tenant.name,
            quota: tenant.quota,
        })
    }

    pub async fn plans(&self) -> Result<Vec<croft_api::Plan>> {
        Ok(self.store.plans().await?.into_iter().map(plan_view).collect())
    }

    /// Plan `name`: 400 for a bad name, 404 for an unknown one.
    pub async fn plan(&self, name: &str) -> Result<croft_api::Plan> {
        croft_api::validate_name(name).map_err(|e| ServiceError::Invalid(format!("plan {e}")))?;
        self.store
            .plan(name)
            .await?
            .map(plan_view)
            .ok_or_else(|| ServiceError::NotFound(format!("plan {name}")))
    }

    /// Make a plan: its settings must be `limits.*` keys croft accepts.
    pub async fn create_plan(&self, req: croft_api::PlanCreate) -> Result<croft_api::Plan> {
        croft_api::validate_name(&req.name).map_err(|e| ServiceError::Invalid(format!("plan {e}")))?;
        if let Some(key) = req.config.keys().find(|k| !k.starts_with("limits.")) {
            return Err(ServiceError::Invalid(format!(
                "a plan sets limits.* keys only, not {key:?}"
            )));
        }
        if req.config.is_empty() {
            return Err(ServiceError::Invalid("a plan sets at least one limit".into()));
        }
        croft_api::InstanceConfig::parse(&req.config).map_err(|e| ServiceError::invalid(&e))?;
        let record = PlanRecord {
            name: req.name,
            description: req.description,
            config: req.config,
        };
        self.store.create_plan(&record).await.map_err(|e| match e {
            StoreError::Taken(_) => ServiceError::Conflict(format!("plan {} already exists", record.name)),
            e => e.into(),
        })?;
        info!(plan = %record.name, "plan created");
        Ok(plan_view(record))
    }

    pub async fn delete_plan(&self, name: &str) -> Result<()> {
        croft_api::validate_name(name).map_err(|e| ServiceError::Invalid(format!("plan {e}")))?;
        if !self.store.delete_plan(name).await? {
            return Err(ServiceError::NotFound(format!("plan {name}")));
        }
        Ok(())
    }
}

fn plan_view(p: PlanRecord) -> croft_api::Plan {
    croft_api::Plan {
        name: p.name,
        description: p.description,
        config: p.config,
    }
}

/// The images `tenant` may use (`None`: every image); 404 for no such
/// tenant.
async fn allowed_images(store: &dyn Store, tenant: &str) -> Result<Option<Vec<String>>> {
    Ok(store
        .tenant(tenant)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("tenant {tenant}")))?
        .images)
}

/// The features `cfg` has on, by name (`tun`, `fuse`).
pub(crate) fn features_on(cfg: &croft_api::InstanceConfig) -> impl Iterator<Item = &'static str> {
    [("tun", cfg.tun), ("fuse", cfg.fuse), ("nesting", cfg.nesting)]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| name)
}

/// Refuse (403) a VPS of `tenant` the features of `cfg` the admin has not
/// allowed the tenant: every launch and configuration change goes
/// through it. The admin's own VPSes (the default tenant) may have all.
pub(crate) async fn require_features(
    store: &dyn Store,
    tenant: &str,
    cfg: &croft_api::InstanceConfig,
) -> Result<()> {
    if tenant == crate::store::DEFAULT_TENANT {
        return Ok(());
    }
    let allowed = store
        .tenant(tenant)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("tenant {tenant}")))?
        .features;
    match features_on(cfg).find(|f| !allowed.iter().any(|a| a == f)) {
        Some(f) => Err(ServiceError::Forbidden(format!(
            "tenant {tenant} may not switch features.{f} on; the admin allows it (croft tenant features {tenant} {f})"
        ))),
        None => Ok(()),
    }
}

/// Refuse (403) image `image` to `tenant` unless its list allows it: what
/// every launch, rebuild and rescue of a tenant's VPS goes through.
pub(crate) async fn require_image(store: &dyn Store, tenant: &str, image: &str) -> Result<()> {
    match allowed_images(store, tenant).await? {
        Some(list) if !list.iter().any(|i| i == image) => Err(ServiceError::Forbidden(format!(
            "tenant {tenant} may not use image {image}; it may use: {}",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        ))),
        _ => Ok(()),
    }
}
