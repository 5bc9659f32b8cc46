//! Publishing: an image made from a VPS's disk or one of its snapshots,
//! with the VPS's identity cleared.

use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use croft_api::{Image, Status};
use std::sync::Arc;

/// The longest description an image takes.
const DESCRIPTION_MAX: usize = 200;

impl InstanceService {
    /// `croft publish VPS[/SNAP] IMAGE`: image `image` from `vps`'s disk,
    /// which must be stopped (a running disk changes as it is copied), or
    /// from its snapshot `snap`.
    pub async fn publish(
        self: &Arc<Self>,
        vps: VpsName<'_>,
        snap: Option<String>,
        image: &str,
        description: Option<String>,
    ) -> Result<Image> {
        croft_api::validate_image_name(image).map_err(|e| ServiceError::invalid(&e))?;
        if let Some(d) = &description {
            if d.chars().count() > DESCRIPTION_MAX || d.chars().any(char::is_control) {
                return Err(ServiceError::Invalid(format!(
                    "an image description is one line of at most {DESCRIPTION_MAX} characters"
                )));
            }
        }
        let (_guard, row) = self.locked(vps).await?;
        match &snap {
            Some(s) => self.require_snapshot(&row, s).await?,
            None if row.status != Status::Stopped => {
                return Err(ServiceError::Conflict(format!(
                    "{} is {}: stop it first, or publish a snapshot of it \
                     (croft snapshot create {0} SNAP, then croft publish {0}/SNAP {image})",
                    row.name, row.status
                )))
            }
            None => {}
        }
        let from = match &snap {
            Some(s) => format!("{}/{s}", row.name),
            None => row.name.clone(),
        };
        let description = description.unwrap_or_else(|| format!("published from {from}"));
        self.images
            .publish(image, &row.key, snap.as_deref(), &description)
            .await
    }
}
