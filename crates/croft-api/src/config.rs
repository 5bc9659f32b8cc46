//! Per-VPS configuration keys (`croft config set NAME key=value`).
//!
//! Configuration is stored as the strings the user typed (so `croft config
//! show` echoes them back) and parsed into [`InstanceConfig`] on every change,
//! so an invalid value is refused before anything is stored or applied.

use crate::units::{parse_cpu, parse_rate, parse_size, UnitError};
use std::collections::BTreeMap;
use thiserror::Error;

pub const LIMITS_MEMORY: &str = "limits.memory";
pub const LIMITS_DISK: &str = "limits.disk";
pub const LIMITS_DISK_READ: &str = "limits.disk.read";
pub const LIMITS_DISK_WRITE: &str = "limits.disk.write";
pub const LIMITS_DISK_READ_IOPS: &str = "limits.disk.read_iops";
pub const LIMITS_DISK_WRITE_IOPS: &str = "limits.disk.write_iops";
/// The disk I/O limit keys, which need a cgroup I/O controller.
pub const DISK_IO_KEYS: &[&str] = &[
    LIMITS_DISK_READ,
    LIMITS_DISK_WRITE,
    LIMITS_DISK_READ_IOPS,
    LIMITS_DISK_WRITE_IOPS,
];
pub const LIMITS_CPU: &str = "limits.cpu";
pub const LIMITS_CPU_WEIGHT: &str = "limits.cpu.weight";
pub const LIMITS_PROCESSES: &str = "limits.processes";
pub const LIMITS_INGRESS: &str = "limits.ingress";
pub const LIMITS_EGRESS: &str = "limits.egress";
pub const LIMITS_TRANSFER: &str = "limits.transfer";
pub const LIMITS_TRANSFER_ACTION: &str = "limits.transfer.action";
pub const LIMITS_TRANSFER_THROTTLE: &str = "limits.transfer.throttle";
pub const FIREWALL_DEFAULT: &str = "firewall.default";
pub const FIREWALL_DEFAULT_OUT: &str = "firewall.default_out";
pub const FIREWALL_PROVIDER_EXEMPT: &str = "firewall.provider_exempt";
pub const BOOT_AUTOSTART: &str = "boot.autostart";
pub const BOOT_STOP_TIMEOUT: &str = "boot.stop_timeout";
pub const FEATURES_TUN: &str = "features.tun";
pub const FEATURES_FUSE: &str = "features.fuse";
pub const FEATURES_NESTING: &str = "features.nesting";

/// The features a VPS may have switched on (`features.NAME`), each a
/// host device it is given at its next start; a tenant's VPSes only those
/// the admin allows the tenant.
pub const FEATURES: &[&str] = &["tun", "fuse", "nesting"];

/// Keys only the host's admin may set (or a plan carry): a tenant's
/// request that sets one is refused.
pub const ADMIN_KEYS: &[&str] = &[FIREWALL_PROVIDER_EXEMPT];

/// Every key `croft config set` accepts, with a one-line description.
pub const KEYS: &[(&str, &str)] = &[
    (LIMITS_MEMORY, "memory hard limit, e.g. 512MiB (4MiB..16TiB)"),
    (
        LIMITS_DISK,
        "disk hard limit, e.g. 10GiB (16MiB..1PiB; needs a btrfs pool)",
    ),
    (
        LIMITS_DISK_READ,
        "disk reads in bytes per second, e.g. 100MB (1MB..1TB), live; what is enforced: croft info",
    ),
    (
        LIMITS_DISK_WRITE,
        "disk writes in bytes per second, e.g. 50MB (1MB..1TB), live; what is enforced: croft info",
    ),
    (
        LIMITS_DISK_READ_IOPS,
        "disk read operations per second (10..1000000), live",
    ),
    (
        LIMITS_DISK_WRITE_IOPS,
        "disk write operations per second (10..1000000), live",
    ),
    (LIMITS_CPU, "CPU quota in CPUs, e.g. 1.5 (0.01..1024)"),
    (
        LIMITS_CPU_WEIGHT,
        "CPU weight against other VPSes (1..10000, default 100)",
    ),
    (LIMITS_PROCESSES, "maximum number of processes (1..4194304)"),
    (
        LIMITS_INGRESS,
        "bandwidth the VPS receives, e.g. 100Mbit (64kbit..100Gbit)",
    ),
    (
        LIMITS_EGRESS,
        "bandwidth the VPS sends, e.g. 100Mbit (64kbit..100Gbit)",
    ),
    (
        LIMITS_TRANSFER,
        "monthly transfer quota: bytes sent and received per calendar month (UTC), e.g. 1TB",
    ),
    (
        LIMITS_TRANSFER_ACTION,
        "past the transfer quota: throttle (default) to limits.transfer.throttle, or report",
    ),
    (
        LIMITS_TRANSFER_THROTTLE,
        "the bandwidth each way past the transfer quota, e.g. 10Mbit (default)",
    ),
    (
        FIREWALL_DEFAULT,
        "inbound traffic no firewall rule matches: allow (default) or deny",
    ),
    (
        FIREWALL_DEFAULT_OUT,
        "outbound traffic no firewall rule matches: allow (default) or deny",
    ),
    (
        FIREWALL_PROVIDER_EXEMPT,
        "true: the provider's outbound rules (blocked_egress) do not apply (the admin's to set)",
    ),
    (BOOT_AUTOSTART, "start when croftd starts (true/false)"),
    (
        BOOT_STOP_TIMEOUT,
        "seconds a clean shutdown may take before the kill (1..3600, default 30)",
    ),
    (
        FEATURES_TUN,
        "true: /dev/net/tun (OpenVPN, WireGuard in userspace, tailscale) from the next start; a tenant's only if the admin allows it",
    ),
    (
        FEATURES_FUSE,
        "true: /dev/fuse (sshfs, rclone mount) from the next start; a tenant's only if the admin allows it",
    ),
    (
        FEATURES_NESTING,
        "true: containers inside (podman, without cgroups of their own on a cgroup v1 host) from the next start; a tenant's only if the admin allows it",
    ),
];

pub const MIN_MEMORY: u64 = 4 << 20;
pub const MAX_MEMORY: u64 = 16 << 40;
pub const DEFAULT_STOP_TIMEOUT: u64 = 30;
/// The bandwidth each way of a VPS past its transfer quota: 10 Mbit/s.
pub const DEFAULT_TRANSFER_THROTTLE: u64 = 10_000_000;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown configuration key {key:?} (known keys: {known})")]
    UnknownKey { key: String, known: String },
    #[error("invalid {key}")]
    Unit {
        key: String,
        #[source]
        source: UnitError,
    },
    #[error("{key}={value} is out of range: {range}")]
    OutOfRange {
        key: String,
        value: String,
        range: &'static str,
    },
    #[error("{key}={value:?} is not valid: expected {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("malformed setting {input:?}: expected key=value")]
    Malformed { input: String },
}

/// A VPS's disk I/O limits, each `None` when unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskIo {
    /// Bytes per second read.
    pub read_bps: Option<u64>,
    /// Bytes per second written.
    pub write_bps: Option<u64>,
    /// Read operations per second.
    pub read_iops: Option<u64>,
    /// Write operations per second.
    pub write_iops: Option<u64>,
}

impl DiskIo {
    pub fn is_unlimited(&self) -> bool {
        *self == DiskIo::default()
    }
}

/// The parsed, validated form of a VPS's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceConfig {
    pub memory_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub disk_io: DiskIo,
    pub cpu_millicores: Option<u64>,
    pub cpu_weight: Option<u64>,
    pub processes: Option<u64>,
    /// Bits per second the VPS may receive.
    pub ingress_bps: Option<u64>,
    /// Bits per second the VPS may send.
    pub egress_bps: Option<u64>,
    /// Monthly transfer quota, bytes sent and received.
    pub transfer_bytes: Option<u64>,
    /// Past the quota, only report (else throttle).
    pub transfer_report_only: bool,
    /// The bandwidth each way past the quota, when throttled.
    pub transfer_throttle_bps: u64,
    /// Drop inbound traffic no firewall rule allows.
    pub firewall_deny: bool,
    /// Drop outbound traffic no firewall rule allows.
    pub firewall_deny_out: bool,
    /// The provider's outbound rules do not apply.
    pub provider_exempt: bool,
    /// /dev/net/tun, from the next start.
    pub tun: bool,
    /// /dev/fuse, from the next start.
    pub fuse: bool,
    /// Containers inside (podman, Docker).
    pub nesting: bool,
    pub autostart: bool,
    pub stop_timeout_secs: u64,
}

impl InstanceConfig {
    pub fn parse(raw: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut cfg = InstanceConfig {
            stop_timeout_secs: DEFAULT_STOP_TIMEOUT,
            transfer_throttle_bps: DEFAULT_TRANSFER_THROTTLE,
            ..Default::default()
        };
        for (key, value) in raw {
            let unit = |source| ConfigError::Unit {
                key: key.clone(),
                source,
            };
            let range = |range| ConfigError::OutOfRange {
                key: key.clone(),
                value: value.clone(),
                range,
            };
            let int = |expected| {
                value.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                    key: key.clone(),
                    value: value.clone(),
                    expected,
                })
            };
            // One of two words: `no` (false) or `yes` (true).
            let either = |no: &str, yes: &str, expected| match value.trim() {
                v if v == no => Ok(false),
                v if v == yes => Ok(true),
                _ => Err(ConfigError::Invalid {
                    key: key.clone(),
                    value: value.clone(),
                    expected,
                }),
            };
            match key.as_str() {
                LIMITS_MEMORY => {
                    let bytes = parse_size(value).map_err(unit)?;
                    if !(MIN_MEMORY..=MAX_MEMORY).contains(&bytes) {
                        return Err(range("between 4MiB and 16TiB"));
                    }
                    cfg.memory_bytes = Some(bytes);
                }
                LIMITS_INGRESS | LIMITS_EGRESS => {
                    let bps = parse_rate(value).map_err(unit)?;
                    if !(64_000..=100_000_000_000).contains(&bps) {
                        return Err(range("between 64kbit and 100Gbit"));
                    }
                    if key == LIMITS_INGRESS {
                        cfg.ingress_bps = Some(bps);
                    } else {
                        cfg.egress_bps = Some(bps);
                    }
                }
                LIMITS_TRANSFER => {
                    let bytes = parse_size(value).map_err(unit)?;
                    if bytes < 1 << 20 {
                        return Err(range("at least 1MiB"));
                    }
                    cfg.transfer_bytes = Some(bytes);
                }
                LIMITS_TRANSFER_ACTION => {
                    cfg.transfer_report_only = either("throttle", "report", "throttle or report")?;
                }
                LIMITS_TRANSFER_THROTTLE => {
                    let bps = parse_rate(value).map_err(unit)?;
                    if !(64_000..=100_000_000_000).contains(&bps) {
                        return Err(range("between 64kbit and 100Gbit"));
                    }
                    cfg.transfer_throttle_bps = bps;
                }
                FIREWALL_DEFAULT => {
                    cfg.firewall_deny = either("allow", "deny", "allow or deny")?;
                }
                LIMITS_DISK => {
                    let bytes = parse_size(value).map_err(unit)?;
                    if !((16 << 20)..=(1 << 50)).contains(&bytes) {
                        return Err(range("between 16MiB and 1PiB"));
                    }
                    cfg.disk_bytes = Some(bytes);
                }
                LIMITS_DISK_READ | LIMITS_DISK_WRITE => {
                    // "100MB" or "100MB/s": bytes per second.
                    let v = value.trim();
                    let bytes = parse_size(v.strip_suffix("/s").unwrap_or(v)).map_err(unit)?;
                    if !(1_000_000..=1_000_000_000_000).contains(&bytes) {
                        return Err(range("between 1MB and 1TB per second"));
                    }
                    if key == LIMITS_DISK_READ {
                        cfg.disk_io.read_bps = Some(bytes);
                    } else {
                        cfg.disk_io.write_bps = Some(bytes);
                    }
                }
                LIMITS_DISK_READ_IOPS | LIMITS_DISK_WRITE_IOPS => {
                    let n = int("operations per second, an integer")?;
                    if !(10..=1_000_000).contains(&n) {
                        return Err(range("between 10 and 1000000 per second"));
                    }
                    if key == LIMITS_DISK_READ_IOPS {
                        cfg.disk_io.read_iops = Some(n);
                    } else {
                        cfg.disk_io.write_iops = Some(n);
                    }
                }
                LIMITS_CPU => {
                    let milli = parse_cpu(value).map_err(unit)?;
                    if !(10..=1_024_000).contains(&milli) {
                        return Err(range("between 0.01 and 1024 CPUs"));
                    }
                    cfg.cpu_millicores = Some(milli);
                }
                LIMITS_CPU_WEIGHT => {
                    let w = int("an integer")?;
                    if !(1..=10_000).contains(&w) {
                        return Err(range("between 1 and 10000"));
                    }
                    cfg.cpu_weight = Some(w);
                }
                LIMITS_PROCESSES => {
                    let n = int("an integer")?;
                    if !(1..=4_194_304).contains(&n) {
                        return Err(range("between 1 and 4194304"));
                    }
                    cfg.processes = Some(n);
                }
                FIREWALL_DEFAULT_OUT => {
                    cfg.firewall_deny_out = either("allow", "deny", "allow or deny")?;
                }
                FIREWALL_PROVIDER_EXEMPT => {
                    cfg.provider_exempt = either("false", "true", "true or false")?;
                }
                BOOT_AUTOSTART => {
                    cfg.autostart = either("false", "true", "true or false")?;
                }
                FEATURES_TUN => {
                    cfg.tun = either("false", "true", "true or false")?;
                }
                FEATURES_FUSE => {
                    cfg.fuse = either("false", "true", "true or false")?;
                }
                FEATURES_NESTING => {
                    cfg.nesting = either("false", "true", "true or false")?;
                }
                BOOT_STOP_TIMEOUT => {
                    let s = int("a number of seconds")?;
                    if !(1..=3600).contains(&s) {
                        return Err(range("between 1 and 3600 seconds"));
                    }
                    cfg.stop_timeout_secs = s;
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key: key.clone(),
                        known: KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
                    })
                }
            }
        }
        Ok(cfg)
    }
}

/// Split `key=value` as typed on the command line.
pub fn parse_assignment(input: &str) -> Result<(String, String), ConfigError> {
    match input.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(ConfigError::Malformed { input: input.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<InstanceConfig, ConfigError> {
        InstanceConfig::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn parses_known_keys() {
        let c = cfg(&[
            ("limits.memory", "1GiB"),
            ("limits.disk", "10GiB"),
            ("limits.cpu", "0.5"),
            ("limits.processes", "100"),
            ("limits.cpu.weight", "200"),
            ("boot.autostart", "true"),
        ])
        .unwrap();
        assert_eq!(c.memory_bytes, Some(1 << 30));
        assert_eq!(c.disk_bytes, Some(10 << 30));
        assert_eq!(c.cpu_millicores, Some(500));
        assert_eq!(c.processes, Some(100));
        assert_eq!(c.cpu_weight, Some(200));
        assert!(c.autostart);
        assert_eq!(c.stop_timeout_secs, DEFAULT_STOP_TIMEOUT);
    }

    #[test]
    fn refuses_bad_values() {
        assert!(matches!(
            cfg(&[("limits.disk", "1MiB")]),
            Err(ConfigError::OutOfRange { .. })
        ));
        assert!(matches!(
            cfg(&[("limits.memory", "1KiB")]),
            Err(ConfigError::OutOfRange { .. })
        ));
        assert!(matches!(
            cfg(&[("limits.memory", "lots")]),
            Err(ConfigError::Unit { .. })
        ));
        assert!(matches!(
            cfg(&[("limits.cpu", "0")]),
            Err(ConfigError::OutOfRange { .. })
        ));
        assert!(matches!(
            cfg(&[("limits.processes", "0")]),
            Err(ConfigError::OutOfRange { .. })
        ));
        assert!(matches!(
            cfg(&[("limits.processes", "-3")]),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            cfg(&[("boot.autostart", "yes")]),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            cfg(&[("limits.mem", "1GiB")]),
            Err(ConfigError::UnknownKey { .. })
        ));
    }

    #[test]
    fn disk_io_limits_take_rates_as_typed_and_refuse_the_rest() {
        let c = cfg(&[
            ("limits.disk.read", "100MB"),
            ("limits.disk.write", "50MiB/s"),
            ("limits.disk.read_iops", "500"),
            ("limits.disk.write_iops", "200"),
        ])
        .unwrap();
        assert_eq!(
            c.disk_io,
            DiskIo {
                read_bps: Some(100_000_000),
                write_bps: Some(50 << 20),
                read_iops: Some(500),
                write_iops: Some(200),
            }
        );
        assert!(cfg(&[]).unwrap().disk_io.is_unlimited());
        for (key, value) in [
            ("limits.disk.read", "0"),
            ("limits.disk.read", "10kB"),
            ("limits.disk.write", "2TB"),
            ("limits.disk.read_iops", "5"),
            ("limits.disk.write_iops", "2000000"),
        ] {
            assert!(
                matches!(cfg(&[(key, value)]), Err(ConfigError::OutOfRange { .. })),
                "{key}={value}"
            );
        }
        assert!(matches!(
            cfg(&[("limits.disk.write", "fast")]),
            Err(ConfigError::Unit { .. })
        ));
        assert!(matches!(
            cfg(&[("limits.disk.read_iops", "1.5")]),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn assignments() {
        assert_eq!(
            parse_assignment("limits.memory=1GiB"),
            Ok(("limits.memory".into(), "1GiB".into()))
        );
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("=x").is_err());
    }
}
