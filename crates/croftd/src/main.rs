//! croftd: the croft daemon's entry point. It reads the configuration,
//! sets up logging and the runtime, builds the seams (store, storage pool,
//! backend, host network), hands them to the services and serves the API
//! on the local socket; everything else is the `croftd` library. See
//! ARCHITECTURE.md.

use anyhow::Context;
use clap::Parser;
use croftd::backend::container::{ContainerBackend, ContainerConfig};
use croftd::backend::sim::SimBackend;
use croftd::backend::Backend;
use croftd::config::DaemonConfig;
use croftd::service::images::catalog::Catalog;
use croftd::service::network::{KernelNet, NetHost, SimNet};
use croftd::service::{Seams, Services};
use croftd::store::{SqliteStore, Store};
use croftd::{error_chain, host_limits, http};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::info;

/// Where croftd looks for its configuration when not told.
const DEFAULT_CONFIG: &str = "/etc/croft/croftd.toml";

#[derive(Parser)]
#[command(name = "croftd", version, about = "The croft VPS daemon")]
struct Args {
    /// TOML configuration file (every setting has a default); default
    /// /etc/croft/croftd.toml when there is one.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Run the whole API on simulated VPSes, without root: state in
    /// memory, disks as plain directories, no host network changed. For
    /// developing clients and the panel.
    #[arg(long)]
    simulate: bool,
}

fn main() -> anyhow::Result<()> {
    // Whatever croftd inherited beyond stdio (a shell's pipe, a terminal)
    // must reach no supervisor and so no VPS.
    croft_host::fds::cloexec_from(3).context("mark inherited descriptors close-on-exec")?;
    let mut args = Args::parse();
    if args.config.is_none() && !args.simulate {
        args.config = Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists());
    }
    let mut cfg = DaemonConfig::load(args.config.as_deref())?;
    if args.simulate && args.config.is_none() {
        simulated_dirs(&mut cfg);
    }
    let level: tracing::Level = cfg
        .log_level
        .parse()
        .context("log_level must be error, warn, info, debug or trace")?;
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if !args.simulate && !nix::unistd::geteuid().is_root() {
        anyhow::bail!("croftd must run as root (or try croftd --simulate)");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(run(cfg, args.simulate))
}

/// A simulated croftd's state and socket, in a directory of the user's.
fn simulated_dirs(cfg: &mut DaemonConfig) {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/croft-sim-{}", nix::unistd::geteuid())))
        .join("croft-sim");
    cfg.state_dir = base.join("state");
    cfg.run_dir = base.join("run");
}

fn make_dir(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("create {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// The seams croftd runs on: the real ones, or the simulated ones.
async fn seams(cfg: Arc<DaemonConfig>, simulate: bool) -> anyhow::Result<Seams> {
    // 0711 on the path to VPS root filesystems, so VPS root can traverse
    // into its own rootfs.
    make_dir(&cfg.state_dir, 0o711)?;
    make_dir(&cfg.images_dir(), 0o711)?;
    make_dir(&cfg.run_dir, 0o711)?;
    make_dir(&cfg.vps_run_dir(), 0o700)?;
    let catalog = Catalog::new(
        cfg.images_dir(),
        cfg.busybox.clone(),
        cfg.debian_mirror.clone(),
        cfg.debian_security_mirror.clone(),
    );
    let mut pool_cfg = cfg.pool();
    if simulate {
        pool_cfg.driver = "dir".into();
        pool_cfg.source = None;
    }
    let pool: Arc<dyn croft_host::storage::Pool> = Arc::from(
        croft_host::storage::open(&pool_cfg)
            .map_err(|e| anyhow::anyhow!("storage pool: {}", error_chain(&e)))?,
    );
    let store_err = |e: croftd::store::StoreError| anyhow::anyhow!(error_chain(&e));
    let (store, backend, net_host): (Arc<dyn Store>, Arc<dyn Backend>, Arc<dyn NetHost>) = if simulate {
        (
            Arc::new(SqliteStore::in_memory().await.map_err(store_err)?),
            Arc::new(SimBackend::new(pool.clone())),
            Arc::new(SimNet::default()),
        )
    } else {
        let container = ContainerConfig {
            vps_run_dir: cfg.vps_run_dir(),
            supervisor: cfg.supervisor_path(),
            lxcfs_dir: cfg.lxcfs.then(|| cfg.run_dir.clone()),
            cgroup_prefix: cfg.cgroup_prefix.clone(),
            disk_view: cfg.disk_view,
        };
        (
            Arc::new(SqliteStore::open(&cfg.db_path()).await.map_err(store_err)?),
            Arc::new(
                ContainerBackend::new(container, pool.clone(), catalog.clone())
                    .map_err(|e| anyhow::anyhow!(error_chain(&e)))?,
            ),
            Arc::new(KernelNet),
        )
    };
    Ok(Seams {
        cfg,
        store,
        backend,
        pool,
        catalog,
        net_host,
    })
}

/// The network listener on `address` with its TLS configuration; its
/// address and certificate fingerprint go on `services`, for `GET /1.0`.
async fn https_listener(
    cfg: &DaemonConfig,
    address: &str,
    services: &mut Services,
) -> anyhow::Result<(tokio::net::TcpListener, rustls::ServerConfig)> {
    let (cert, key) = cfg.tls_paths();
    let mut names = vec!["croftd".to_string(), "localhost".to_string()];
    if let Ok(host) = nix::unistd::gethostname() {
        names.extend(host.into_string().ok());
    }
    let identity =
        http::tls::load_or_create(&cert, &key, &names).map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    let config = http::tls::server_config(&identity).map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listen on {address} (https_address)"))?;
    let bound_addr = listener.local_addr()?;
    let bound = bound_addr.to_string();
    info!(address = %bound, fingerprint = %identity.fingerprint, "listening for remote callers (TLS 1.3)");
    services.https = Some(croftd::service::Https {
        address: bound,
        fingerprint: identity.fingerprint,
        bound: bound_addr,
    });
    Ok((listener, config))
}

/// The panel's first admin user, `admin`, made when there is no admin
/// user: its password goes to `<state_dir>/panel-admin-password` (mode
/// 0600), where only root reads it, for the quick start to show.
async fn first_panel_admin(cfg: &DaemonConfig, services: &Services) -> anyhow::Result<()> {
    use std::io::Write as _;
    let Some(password) = services
        .access
        .first_admin("admin")
        .await
        .map_err(|e| anyhow::anyhow!("the first panel admin: {}", error_chain(&e)))?
    else {
        return Ok(());
    };
    let path = cfg.state_dir.join("panel-admin-password");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    // A file left from before keeps its mode on open: set it anew.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))?;
    writeln!(file, "{password}").with_context(|| format!("write {}", path.display()))?;
    info!(user = "admin", password_file = %path.display(), "the panel's admin user made; its password is in the file");
    Ok(())
}

async fn run(cfg: DaemonConfig, simulate: bool) -> anyhow::Result<()> {
    let socket = cfg.socket_path();
    if cfg.raise_host_limits && !simulate {
        host_limits::raise();
    }
    let cfg = Arc::new(cfg);
    let mut services =
        Services::new(seams(cfg.clone(), simulate).await?).map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    services
        .instances
        .reconcile()
        .await
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;

    if let Err(e) = first_panel_admin(&cfg, &services).await {
        // The API and the VPSes do not need it: croftd runs on, and says
        // how to make one.
        tracing::warn!(
            "{}; make a panel admin with: croft user create NAME --role admin",
            error_chain(e.as_ref())
        );
    }

    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener =
        tokio::net::UnixListener::bind(&socket).with_context(|| format!("bind {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    info!(socket = %socket.display(), backend = services.backend_kind, "croftd listening");

    let remote = match &cfg.https_address {
        Some(address) => Some(https_listener(&cfg, address, &mut services).await?),
        None => None,
    };
    if let Some((listener, config)) = remote {
        let (router, _) = http::api(services.clone());
        tokio::spawn(http::tls::serve(listener, config, router));
    }

    // Traffic accounting: every VPS's interface read every interval.
    let sampler = services.instances.clone();
    let every = std::time::Duration::from_secs(cfg.traffic_interval);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let month = croftd::service::instances::traffic::this_month();
            if let Err(e) = sampler.sample_traffic(&month).await {
                tracing::warn!("reading traffic: {}", error_chain(&e));
            }
        }
    });

    // Metrics: sampled in the background, rendered by GET /metrics.
    services
        .metrics
        .clone()
        .spawn(std::time::Duration::from_secs(cfg.metrics_interval));

    let autostart = services.instances.clone();
    tokio::spawn(async move {
        if let Err(e) = autostart.autostart().await {
            tracing::warn!("autostart: {}", error_chain(&e));
        }
    });

    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        info!("croftd stopping; VPSes keep running under their supervisors");
    };
    axum::serve(listener, http::local(services.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    services.instances.tidy_on_shutdown().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
