//! croftd's own configuration: a TOML file, every field optional, every
//! path overridable so several daemons can run side by side in tests.

use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Persistent state: the database, images, VPS root filesystems.
    pub state_dir: PathBuf,
    /// Runtime files that vanish on host reboot: the API socket and one
    /// directory per running VPS for its supervisor.
    pub run_dir: PathBuf,
    /// The API socket; default `<run_dir>/croftd.sock`. Always on, always
    /// admin (mode 0600).
    pub socket: Option<PathBuf>,
    /// Where the API listens for remote callers over TLS 1.3, e.g.
    /// `[::]:8443`; off when unset.
    pub https_address: Option<String>,
    /// The server certificate (PEM) for `https_address`; default
    /// `<state_dir>/server.crt`, made self-signed on first start.
    pub tls_certificate: Option<PathBuf>,
    /// Its private key (PEM); default `<state_dir>/server.key`.
    pub tls_key: Option<PathBuf>,
    /// Name of croft's cgroup beneath the daemon's own cgroup.
    pub cgroup_prefix: String,
    /// First host id handed to VPSes; each VPS gets the next free
    /// 65536-id range above it.
    pub id_base: u32,
    /// How many id ranges (and so VPSes) the pool holds.
    pub id_ranges: u32,
    /// The supervisor binary; default: `croft-supervisor` beside croftd.
    pub supervisor: Option<PathBuf>,
    /// Storage driver of the default pool: `btrfs` (subvolumes, disk
    /// limits) or `dir` (plain directories, no disk limits).
    pub storage_driver: String,
    /// Size of the loop file created for a btrfs pool on first start.
    pub storage_size: String,
    /// A block device or an existing btrfs directory to use instead of the
    /// loop file (btrfs), or the directory of a dir pool.
    pub storage_source: Option<PathBuf>,
    /// The static busybox the `busybox` image is built from.
    pub busybox: PathBuf,
    /// The Debian mirror Debian images are built from (and whose
    /// `-updates` suite they list).
    pub debian_mirror: String,
    /// The Debian security archive Debian images list for security fixes.
    pub debian_security_mirror: String,
    /// error, warn, info, debug or trace.
    pub log_level: String,
    /// Give VPSes honest /proc files through lxcfs (run by croftd).
    pub lxcfs: bool,
    /// `statfs` inside a VPS (what `df` asks) answers with its disk's limit
    /// and usage rather than the pool's (runtime/disk_view.rs); off, every
    /// `statfs` goes straight to the kernel.
    pub disk_view: bool,
    /// Public key files (OpenSSH .pub) whose keys every new VPS's root
    /// gets, besides those given at launch.
    pub ssh_key_files: Vec<PathBuf>,
    /// Raise per-host-user kernel limits that cap how many VPSes can run
    /// (inotify instances and watches) at start; see host_limits.rs.
    pub raise_host_limits: bool,
    /// The image `croft start --rescue` boots when none is named.
    pub rescue_image: String,
    /// Seconds between readings of every VPS's traffic (1 to 3600).
    pub traffic_interval: u64,
    /// Seconds between samples of every VPS's use for `GET /metrics`
    /// (1 to 3600).
    pub metrics_interval: u64,
    /// Take a VPS's `limits.cpu` above the CPUs croftd may use (a quota
    /// no VPS can reach, sold as if it could); off: refused, saying so.
    pub cpu_overcommit: bool,
    /// The network VPSes join (`[network]` table).
    pub network: crate::service::network::ipam::NetworkConfig,
}

impl DaemonConfig {
    /// The port of `https_address`, where remote callers reach the API.
    pub fn api_port(&self) -> Option<u16> {
        self.https_address
            .as_deref()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.port())
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            state_dir: "/var/lib/croft".into(),
            run_dir: "/run/croft".into(),
            socket: None,
            https_address: None,
            tls_certificate: None,
            tls_key: None,
            cgroup_prefix: "croft".into(),
            id_base: 1_000_000,
            id_ranges: 10_000,
            supervisor: None,
            storage_driver: "btrfs".into(),
            storage_size: "20GiB".into(),
            storage_source: None,
            busybox: "/bin/busybox".into(),
            debian_mirror: "http://deb.debian.org/debian".into(),
            debian_security_mirror: "http://deb.debian.org/debian-security".into(),
            log_level: "info".into(),
            lxcfs: true,
            disk_view: true,
            ssh_key_files: Vec::new(),
            rescue_image: "busybox".into(),
            traffic_interval: 30,
            metrics_interval: 10,
            cpu_overcommit: false,
            raise_host_limits: true,
            network: Default::default(),
        }
    }
}

impl DaemonConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<DaemonConfig> {
        let Some(path) = path else {
            return Ok(DaemonConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        let cfg: DaemonConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))?;
        croft_api::parse_size(&cfg.storage_size)
            .map_err(|e| anyhow::anyhow!("invalid config {}: storage_size: {e}", path.display()))?;
        crate::service::network::check_config(&cfg.network)
            .map_err(|e| anyhow::anyhow!("invalid config {}: [network] {e}", path.display()))?;
        cfg.default_ssh_keys()
            .map_err(|e| anyhow::anyhow!("invalid config {}: {e}", path.display()))?;
        croft_api::validate_image_name(&cfg.rescue_image)
            .map_err(|e| anyhow::anyhow!("invalid config {}: rescue_image: {e}", path.display()))?;
        if let Some(addr) = &cfg.https_address {
            addr.parse::<std::net::SocketAddr>().map_err(|_| {
                anyhow::anyhow!(
                    "invalid config {}: https_address {addr:?} is not an address and port, e.g. [::]:8443",
                    path.display()
                )
            })?;
        }
        if !(1..=3600).contains(&cfg.metrics_interval) {
            anyhow::bail!(
                "invalid config {}: metrics_interval must be 1 to 3600 seconds",
                path.display()
            );
        }
        if !(1..=3600).contains(&cfg.traffic_interval) {
            anyhow::bail!(
                "invalid config {}: traffic_interval must be 1 to 3600 seconds",
                path.display()
            );
        }
        if cfg.id_base == 0 {
            anyhow::bail!(
                "invalid config {}: id_base must not be 0 (host root)",
                path.display()
            );
        }
        Ok(cfg)
    }

    /// The keys of `ssh_key_files`, read and checked.
    pub fn default_ssh_keys(&self) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        for file in &self.ssh_key_files {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("ssh_key_files: {}: {e}", file.display()))?;
            keys.extend(
                croft_api::parse_ssh_keys(&text)
                    .map_err(|e| format!("ssh_key_files: {}: {e}", file.display()))?,
            );
        }
        Ok(keys)
    }

    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| self.run_dir.join("croftd.sock"))
    }

    /// The server certificate and key the network listener uses.
    pub fn tls_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.tls_certificate
                .clone()
                .unwrap_or_else(|| self.state_dir.join("server.crt")),
            self.tls_key
                .clone()
                .unwrap_or_else(|| self.state_dir.join("server.key")),
        )
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("croft.db")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.state_dir.join("images")
    }

    /// The default storage pool, as the storage layer wants it.
    pub fn pool(&self) -> croft_host::storage::PoolConfig {
        croft_host::storage::PoolConfig {
            name: "default".into(),
            driver: self.storage_driver.clone(),
            mount: self.state_dir.join("storage-pools/default"),
            source: self.storage_source.clone(),
            loop_file: self.state_dir.join("disks/default.img"),
            loop_size: croft_api::parse_size(&self.storage_size).unwrap_or(20 << 30),
        }
    }

    /// Per-VPS supervisor directories live here.
    pub fn vps_run_dir(&self) -> PathBuf {
        self.run_dir.join("vps")
    }

    pub fn supervisor_path(&self) -> PathBuf {
        if let Some(p) = &self.supervisor {
            return p.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("croft-supervisor")))
            .unwrap_or_else(|| "croft-supervisor".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let d = DaemonConfig::default();
        assert_eq!(d.socket_path(), Path::new("/run/croft/croftd.sock"));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("croftd.toml");
        std::fs::write(&f, "state_dir = \"/tmp/x\"\ncgroup_prefix = \"croft-test\"\n").unwrap();
        let c = DaemonConfig::load(Some(&f)).unwrap();
        assert_eq!(c.db_path(), Path::new("/tmp/x/croft.db"));
        assert_eq!(c.cgroup_prefix, "croft-test");
        assert_eq!(c.run_dir, Path::new("/run/croft"));
        std::fs::write(&f, "stat_dir = \"/tmp/x\"\n").unwrap();
        let err = DaemonConfig::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn the_api_port_and_the_traffic_interval() {
        let mut c = DaemonConfig::default();
        assert_eq!(c.api_port(), None);
        c.https_address = Some("[::]:8443".into());
        assert_eq!(c.api_port(), Some(8443));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("croftd.toml");
        std::fs::write(&f, "traffic_interval = 0\n").unwrap();
        let err = DaemonConfig::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("traffic_interval must be 1 to 3600"), "{err}");
        std::fs::write(&f, "[network]\nblocked_egress = [\"smtp\"]\n").unwrap();
        let err = DaemonConfig::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("blocked_egress"), "{err}");
    }
}
