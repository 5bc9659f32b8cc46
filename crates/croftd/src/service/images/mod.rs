//! The image service: the images croft builds ([`catalog`]) and those
//! imported into the pool, their records, builds, imports, exports and
//! deletes.

pub mod catalog;

use super::{Result, ServiceError};
use crate::service::jobs::{JobHandle, Jobs};
use crate::service::locks::Locks;
use crate::service::reclaim::Reclaimer;
use crate::service::stream::{Download, DownloadWriter, Hashing, Upload};
use crate::store::{ImageUpdate, Store};
use catalog::{pool_name, Catalog, ImageError, KINDS};
use croft_host::archive::ArchiveError;
use croft_host::storage::{Pool, StorageError};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

pub struct ImageService {
    store: Arc<dyn Store>,
    pool: Arc<dyn Pool>,
    catalog: Catalog,
    jobs: Jobs,
    locks: Arc<Locks>,
    reclaimer: Arc<Reclaimer>,
}

impl ImageService {
    pub fn new(
        store: Arc<dyn Store>,
        pool: Arc<dyn Pool>,
        catalog: Catalog,
        jobs: Jobs,
        locks: Arc<Locks>,
        reclaimer: Arc<Reclaimer>,
    ) -> ImageService {
        ImageService {
            store,
            pool,
            catalog,
            jobs,
            locks,
            reclaimer,
        }
    }

    /// Make sure image `name` (one croft builds) is in the pool, building it
    /// if it is not, and record what it is. Build steps are reported on
    /// `job`, scaled into the `span` of its percent.
    pub async fn ensure_built(&self, name: &str, job: Option<&JobHandle>, span: (u8, u8)) -> Result<()> {
        let kind = Catalog::kind(name)?;
        // A launch of a built image does not wait for a refresh or an
        // export holding its lock.
        if self.pool.image_exists(&pool_name(name)) {
            return Ok(());
        }
        let lock = self.locks.of(&format!("image:{name}"));
        let _guard = lock.lock().await;
        let dir_name = pool_name(name);
        if self.pool.image_exists(&dir_name) {
            return Ok(());
        }
        if let Some(job) = job {
            job.step(span.0, &format!("building image {name}")).await?;
        }
        self.run_build(name, kind, job, span, false).await
    }

    /// Build croft's image `name` of `kind` into the pool (anew in the old
    /// one's place if `rebuild`) and record what it is. The caller holds
    /// the image's lock.
    async fn run_build(
        &self,
        name: &str,
        kind: &catalog::ImageKind,
        job: Option<&JobHandle>,
        span: (u8, u8),
        rebuild: bool,
    ) -> Result<()> {
        let dir_name = pool_name(name);
        let (catalog, pool, image, job2) = (
            self.catalog.clone(),
            self.pool.clone(),
            name.to_string(),
            job.cloned(),
        );
        let runtime = tokio::runtime::Handle::current();
        crate::blocking(move || {
            let mut last_report: Option<std::time::Instant> = None;
            let cancel = job2.clone();
            let cancelled = move || cancel.as_ref().is_some_and(JobHandle::is_cancelled);
            let progress = &mut |step: &str| {
                let Some(job2) = &job2 else { return };
                // A build prints a line per package: report a few a second.
                if last_report.is_some_and(|t| t.elapsed() < Duration::from_millis(250)) {
                    return;
                }
                last_report = Some(std::time::Instant::now());
                let pct = span.0
                    + (u32::from(span.1 - span.0) * u32::from(catalog::build_percent(step)) / 100) as u8;
                runtime.block_on(job2.progress(pct, &format!("building image {image}: {step}")));
            };
            catalog.ensure_in_pool(&image, pool.as_ref(), rebuild, progress, &cancelled)
        })
        .await??;
        let pool = self.pool.clone();
        let (facts, size) = crate::blocking(move || {
            let mut facts = croft_host::rootfs::describe(&pool.image_dir(&dir_name));
            // The busybox image has no os-release.
            facts.distro.get_or_insert_with(|| "busybox".into());
            (facts, pool.image_usage(&dir_name).ok().flatten())
        })
        .await?;
        if rebuild {
            // A new image: its date is today's, and the digest of the old
            // one's export is no longer its own.
            self.store.delete_image(name).await?;
        }
        self.store
            .upsert_image(ImageUpdate {
                name,
                source: "built",
                description: kind.description,
                size_bytes: size,
                facts: Some(facts),
                ..Default::default()
            })
            .await?;
        info!(image = %name, rebuild, "built");
        Ok(())
    }

    /// Make a disk of image `name` possible: on a pool that keeps images,
    /// build it if croft builds it.
    pub async fn prepare(&self, name: &str, job: Option<&JobHandle>, span: (u8, u8)) -> Result<()> {
        if self.pool.snapshots() && Catalog::kind(name).is_ok() {
            self.ensure_built(name, job, span).await?;
        }
        Ok(())
    }

    /// `croft image build`: a job that builds the image unless it is built.
    pub async fn build(self: &Arc<Self>, name: &str) -> Result<croft_api::Job> {
        self.buildable(name, "build").await?;
        let this = self.clone();
        let image = name.to_string();
        Ok(self
            .jobs
            .submit(
                "image-build",
                crate::store::DEFAULT_TENANT,
                name,
                move |job| async move { this.ensure_built(&image, Some(&job), (0, 100)).await },
            )
            .await?)
    }

    /// `croft image refresh`: a job that builds image `name` anew from the
    /// mirror and puts it in the old one's place in one step. New launches
    /// and rebuilds get the new one; VPSes launched from the old keep
    /// their disks, which share its blocks (so the old image's data stays
    /// for as long as a disk made from it holds it).
    pub async fn refresh(self: &Arc<Self>, name: &str) -> Result<croft_api::Job> {
        let kind = self.buildable(name, "refresh").await?;
        let this = self.clone();
        let image = name.to_string();
        Ok(self
            .jobs
            .submit(
                "image-refresh",
                crate::store::DEFAULT_TENANT,
                name,
                move |job| async move {
                    let lock = this.locks.of(&format!("image:{image}"));
                    let _guard = lock.lock().await;
                    job.step(0, &format!("building image {image} anew")).await?;
                    this.run_build(&image, kind, Some(&job), (0, 100), true).await
                },
            )
            .await?)
    }

    /// Refuse to `verb` an image croft does not build, or on a pool that
    /// keeps no images.
    async fn buildable(&self, name: &str, verb: &str) -> Result<&'static catalog::ImageKind> {
        croft_api::validate_image_name(name).map_err(|e| ServiceError::invalid(&e))?;
        let kind = match Catalog::kind(name) {
            Ok(kind) => kind,
            Err(unknown) => {
                let records = self.store.images().await?;
                return Err(match records.iter().find(|i| i.name == name) {
                    Some(record) => ServiceError::Invalid(format!(
                        "image {name} is {}; croft cannot {verb} it (it builds {})",
                        record.source,
                        KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    )),
                    None => unknown.into(),
                });
            }
        };
        if !self.pool.snapshots() {
            return Err(ServiceError::Invalid(format!(
                "the dir storage driver builds images on first launch only and cannot {verb} them; use btrfs"
            )));
        }
        Ok(kind)
    }

    /// Image `name` made from the disk of pool volume `vps` (a VPS's key,
    /// stopped, or its snapshot `snap`), its identity cleared
    /// ([`croft_host::sysprep`]). The caller holds the VPS's lock.
    pub async fn publish(
        &self,
        name: &str,
        vps: &str,
        snap: Option<&str>,
        description: &str,
    ) -> Result<croft_api::Image> {
        croft_api::validate_image_name(name).map_err(|e| ServiceError::invalid(&e))?;
        if !self.pool.snapshots() {
            return Err(ServiceError::Invalid(
                "the dir storage driver cannot keep published images; use btrfs".into(),
            ));
        }
        let lock = self.locks.of(&format!("image:{name}"));
        let _guard = lock.lock().await;
        if Catalog::kind(name).is_ok() || self.store.images().await?.iter().any(|i| i.name == name) {
            return Err(ServiceError::Conflict(format!("image {name} already exists")));
        }
        let (pool, dir_name, vps, snap) = (
            self.pool.clone(),
            pool_name(name),
            vps.to_string(),
            snap.map(str::to_string),
        );
        let (facts, size) = crate::blocking(move || {
            pool.publish_image(&dir_name, &vps, snap.as_deref(), &mut |dir| {
                croft_host::sysprep::clear_identity(dir).map_err(|e| crate::error_chain(&e))
            })?;
            let dir = pool.image_dir(&dir_name);
            Ok::<_, StorageError>((
                croft_host::rootfs::describe(&dir),
                pool.image_usage(&dir_name).ok().flatten(),
            ))
        })
        .await?
        .map_err(|e| match e {
            StorageError::ImageBuild { detail, .. } => {
                ServiceError::Invalid(format!("cannot publish image {name}: {detail}"))
            }
            e => e.into(),
        })?;
        self.store
            .upsert_image(ImageUpdate {
                name,
                source: "published",
                description,
                size_bytes: size,
                facts: Some(facts),
                ..Default::default()
            })
            .await?;
        info!(image = %name, "published");
        self.get(name).await
    }

    /// One image, as `croft image info` shows it.
    pub async fn get(&self, name: &str) -> Result<croft_api::Image> {
        croft_api::validate_image_name(name).map_err(|e| ServiceError::invalid(&e))?;
        self.list()
            .await?
            .into_iter()
            .find(|i| i.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("image {name}")))
    }

    /// A known image for this host: one croft builds, or one imported
    /// into the pool.
    pub async fn require(&self, name: &str) -> Result<()> {
        croft_api::validate_image_name(name).map_err(|e| ServiceError::invalid(&e))?;
        let records = self.store.images().await?;
        let record = records.iter().find(|i| i.name == name);
        if let Some(arch) = record.and_then(|i| i.arch.as_deref()) {
            let host = croft_host::rootfs::host_arch();
            if arch != host {
                return Err(ServiceError::Invalid(format!(
                    "image {name} is built for {arch}; this host runs {host}"
                )));
            }
        }
        if Catalog::kind(name).is_ok() || record.is_some_and(|i| i.source != "built") {
            return Ok(());
        }
        let mut known: Vec<String> = KINDS.iter().map(|k| k.name.to_string()).collect();
        known.extend(
            records
                .into_iter()
                .filter(|i| i.source != "built")
                .map(|i| i.name),
        );
        Err(ImageError::Unknown {
            name: name.into(),
            available: known.join(", "),
        }
        .into())
    }

    pub async fn list(&self) -> Result<Vec<croft_api::Image>> {
        let records = self.store.images().await?;
        let mut out = Vec::new();
        for kind in KINDS {
            let record = records.iter().find(|r| r.name == kind.name);
            out.push(croft_api::Image {
                name: kind.name.into(),
                description: kind.description.into(),
                source: "built".into(),
                available: self.pool.image_exists(&pool_name(kind.name)),
                size_bytes: record.and_then(|r| r.size_bytes),
                sha256: record.and_then(|r| r.sha256.clone()),
                created_at: record.map(|r| r.created_at.clone()),
                distro: record.and_then(|r| r.distro.clone()),
                release: record.and_then(|r| r.release.clone()),
                arch: record.and_then(|r| r.arch.clone()),
            });
        }
        for r in records.into_iter().filter(|r| r.source != "built") {
            out.push(croft_api::Image {
                available: self.pool.image_exists(&pool_name(&r.name)),
                name: r.name,
                description: r.description,
                source: r.source,
                size_bytes: r.size_bytes,
                sha256: r.sha256,
                created_at: Some(r.created_at),
                distro: r.distro,
                release: r.release,
                arch: r.arch,
            });
        }
        Ok(out)
    }

    /// Import image `name` from a tarball (.tar, .tar.gz or .tar.zst)
    /// read from `upload` as it arrives: unpacked into a fresh volume with
    /// every entry checked, published only when whole. Nothing of a failed
    /// import is kept.
    pub async fn import(&self, name: &str, upload: Upload) -> Result<croft_api::Image> {
        croft_api::validate_image_name(name).map_err(|e| ServiceError::invalid(&e))?;
        let exists = || async {
            Ok::<_, ServiceError>(
                Catalog::kind(name).is_ok() || self.store.images().await?.iter().any(|i| i.name == name),
            )
        };
        if exists().await? {
            return Err(ServiceError::Conflict(format!("image {name} already exists")));
        }
        if !self.pool.snapshots() {
            return Err(ServiceError::Invalid(
                "the dir storage driver cannot keep imported images; use btrfs".into(),
            ));
        }
        let lock = self.locks.of(&format!("image:{name}"));
        let _guard = lock.lock().await;
        if exists().await? {
            return Err(ServiceError::Conflict(format!("image {name} already exists")));
        }
        let (pool, dir_name) = (self.pool.clone(), pool_name(name));
        let (made, unpacked, (sha256, _)) = crate::blocking(move || {
            let mut upload = Hashing::new(upload);
            let mut unpacked = None;
            let made = pool.ensure_image(&dir_name, &mut |dir| match croft_host::archive::unpack_from(
                &mut upload,
                dir,
            ) {
                Ok(u) => {
                    unpacked = Some(Ok((u.bytes, croft_host::rootfs::describe(dir))));
                    Ok(())
                }
                Err(e) => {
                    let why = crate::error_chain(&e);
                    unpacked = Some(Err(e));
                    Err(why)
                }
            });
            if made.is_ok() {
                // The tarball's own end may come before the upload's: the
                // digest is of everything sent.
                let _ = std::io::copy(&mut upload, &mut std::io::sink());
            }
            (made, unpacked, upload.finish())
        })
        .await?;
        let failed = |e: ServiceError| {
            // What it wrote before it failed goes in the background.
            self.reclaimer.request();
            Err(e)
        };
        let (bytes, facts) = match (made, unpacked) {
            (Ok(_), Some(Ok(unpacked))) => unpacked,
            (_, Some(Err(ArchiveError::NoSpace(_)))) => {
                return failed(ServiceError::Conflict(format!(
                    "the storage pool is full: cannot import image {name} (nothing of it was kept)"
                )))
            }
            (_, Some(Err(e))) => {
                return failed(ServiceError::Invalid(format!(
                    "cannot import image {name}: {}",
                    crate::error_chain(&e)
                )))
            }
            // Named as the user named it, not as its directory in the pool.
            (Err(StorageError::ImageBuild { detail, .. }), _) => {
                return failed(ServiceError::Invalid(format!(
                    "cannot import image {name}: {detail}"
                )))
            }
            (Err(e), _) => return failed(e.into()),
            (Ok(_), None) => unreachable!("a made image was unpacked"),
        };
        self.store
            .upsert_image(ImageUpdate {
                name,
                source: "imported",
                description: "imported",
                size_bytes: Some(bytes),
                sha256: Some(&sha256),
                facts: Some(facts),
            })
            .await?;
        info!(image = %name, sha256 = %sha256, "imported");
        self.get(name).await
    }

    /// Image `name` as a gzip-compressed tarball, made as the client takes
    /// it; its sha256 is recorded once it is whole.
    pub async fn export(self: &Arc<Self>, name: &str) -> Result<Download> {
        croft_api::validate_image_name(name).map_err(|e| ServiceError::invalid(&e))?;
        let dir_name = pool_name(name);
        if !self.pool.image_exists(&dir_name) {
            return Err(ServiceError::NotFound(format!(
                "image {name} (launch it once to build it)"
            )));
        }
        // Held while the tarball is made: a refresh or a delete waits, so
        // the tarball (and the digest recorded) is of one image.
        let guard = self.locks.of(&format!("image:{name}")).lock_owned().await;
        if !self.pool.image_exists(&dir_name) {
            return Err(ServiceError::NotFound(format!("image {name}")));
        }
        let (mut out, download) = DownloadWriter::new();
        let src = self.pool.image_dir(&dir_name);
        let (this, name) = (self.clone(), name.to_string());
        tokio::spawn(async move {
            let _guard = guard;
            let packed = crate::blocking(move || match croft_host::archive::pack(&src, &mut out) {
                Ok(packed) => Some(packed),
                Err(e) => {
                    out.fail(format!("cannot export image: {}", crate::error_chain(&e)));
                    None
                }
            })
            .await;
            let Ok(Some((sha256, size))) = packed else {
                warn!(image = %name, "export failed or was abandoned");
                return;
            };
            // Recorded already: its source stays what it was.
            let source = if Catalog::kind(&name).is_ok() {
                "built"
            } else {
                "imported"
            };
            let recorded = this
                .store
                .upsert_image(ImageUpdate {
                    name: &name,
                    source,
                    sha256: Some(&sha256),
                    ..Default::default()
                })
                .await;
            if let Err(e) = recorded {
                warn!(image = %name, "cannot record the export's sha256: {}", crate::error_chain(&e));
            }
            info!(image = %name, sha256 = %sha256, size, "exported");
        });
        Ok(download)
    }

    /// Delete an image; VPSes launched from it keep their own disks. A
    /// built image is rebuilt on its next launch.
    pub async fn delete(&self, name: &str) -> Result<()> {
        croft_api::validate_image_name(name).map_err(|e| ServiceError::invalid(&e))?;
        let known = Catalog::kind(name).is_ok() || self.store.images().await?.iter().any(|i| i.name == name);
        if !known {
            return Err(ServiceError::NotFound(format!("image {name}")));
        }
        let lock = self.locks.of(&format!("image:{name}"));
        let _guard = lock.lock().await;
        let pool = self.pool.clone();
        let dir_name = pool_name(name);
        crate::blocking(move || pool.delete_image(&dir_name)).await??;
        self.reclaimer.request();
        self.store.delete_image(name).await?;
        Ok(())
    }

    /// Image volumes a crash left behind: half-built ones, and imports
    /// that were unpacked but never recorded.
    pub async fn reconcile(&self) -> Result<()> {
        let pool = self.pool.clone();
        for name in crate::blocking(move || pool.remove_unfinished_images()).await?? {
            warn!(volume = %name, "removed an image volume a crash left half-built");
        }
        let recorded: Vec<String> = self
            .store
            .images()
            .await?
            .into_iter()
            .map(|i| pool_name(&i.name))
            .chain(KINDS.iter().map(|k| pool_name(k.name)))
            .collect();
        for orphan in self.pool.images()?.into_iter().filter(|n| !recorded.contains(n)) {
            warn!(volume = %orphan, "removing an image volume no image record names");
            let pool = self.pool.clone();
            if let Ok(Err(e)) = crate::blocking(move || pool.delete_image(&orphan)).await {
                warn!("{}", crate::error_chain(&e));
            }
        }
        Ok(())
    }
}
