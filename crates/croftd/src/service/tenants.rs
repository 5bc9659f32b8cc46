//! Tenants: created and deleted by the admin; every VPS belongs to one.

use super::{Result, ServiceError};
use crate::store::{Store, StoreError, TenantRecord, DEFAULT_TENANT};
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
}
