//! croftd: the croft daemon's entry point. It reads the configuration,
//! sets up logging and the runtime, and wires the store, the manager and
//! the API listener together; everything else is the `croftd` library.
//! See ARCHITECTURE.md.

use anyhow::Context;
use clap::Parser;
use croftd::{api, config, db, error_chain, host_limits, manager};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use tracing::info;

#[derive(Parser)]
#[command(name = "croftd", version, about = "The croft VPS daemon")]
struct Args {
    /// TOML configuration file (every setting has a default).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    // Whatever croftd inherited beyond stdio (a shell's pipe, a terminal)
    // must reach no supervisor and so no VPS.
    croft_host::fds::cloexec_from(3).context("mark inherited descriptors close-on-exec")?;
    let args = Args::parse();
    let cfg = config::DaemonConfig::load(args.config.as_deref())?;
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
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("croftd must run as root");
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(run(cfg))
}

async fn run(cfg: config::DaemonConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.state_dir).with_context(|| format!("create {}", cfg.state_dir.display()))?;
    let db = db::Db::open(&cfg.db_path())
        .await
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;
    let socket = cfg.socket_path();
    if cfg.raise_host_limits {
        host_limits::raise();
    }
    let manager = manager::Manager::new(cfg, db).await?;
    manager
        .reconcile()
        .await
        .map_err(|e| anyhow::anyhow!(error_chain(&e)))?;

    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener =
        tokio::net::UnixListener::bind(&socket).with_context(|| format!("bind {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    info!(socket = %socket.display(), "croftd listening");

    let autostart = manager.clone();
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
    axum::serve(listener, api::router(manager.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    manager.tidy_on_shutdown().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}
