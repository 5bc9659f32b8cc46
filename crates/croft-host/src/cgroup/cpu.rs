//! The cpu (and v1 cpuacct) controllers: bandwidth quota, weight, usage.
//!
//! A VPS's CPU share is a CFS bandwidth quota over a fixed 100 ms period
//! (1500 millicores = 150 ms per 100 ms = 1.5 CPUs) plus a relative weight
//! that decides how idle CPU time is shared among busy VPSes.

use std::path::Path;

use super::fs::{self, Write};
use super::{CgroupError, Stats};

/// The CFS bandwidth period croft uses, in microseconds.
pub const CFS_PERIOD_US: u64 = 100_000;
/// The v2 `cpu.weight` a cgroup has when no weight is set.
pub const DEFAULT_CPU_WEIGHT: u64 = 100;
/// The largest `cpu_millicores` accepted (a quota that still fits an `i64`).
pub(super) const MAX_MILLICORES: u64 = i64::MAX as u64 / 100;

const V1_PERIOD: &str = "cpu.cfs_period_us";
const V1_QUOTA: &str = "cpu.cfs_quota_us";
const V1_SHARES: &str = "cpu.shares";
const V1_USAGE: &str = "cpuacct.usage";

const V2_MAX: &str = "cpu.max";
const V2_WEIGHT: &str = "cpu.weight";
const V2_STAT: &str = "cpu.stat";

/// The quota in microseconds per [`CFS_PERIOD_US`] (validated limits only).
fn quota_us(millicores: u64) -> u64 {
    millicores * (CFS_PERIOD_US / 1000)
}

/// v1 `cpu.shares` for a v2 weight: 1024 is the v1 default as 100 is v2's.
fn shares(weight: u64) -> u64 {
    (weight * 1024 / DEFAULT_CPU_WEIGHT).max(2)
}

pub(super) fn v1_writes(millicores: Option<u64>, weight: Option<u64>) -> Vec<Write> {
    let mut writes = match millicores {
        // The period first, so the quota is read against it.
        Some(millicores) => vec![
            Write::new(V1_PERIOD, CFS_PERIOD_US.to_string(), true),
            Write::new(V1_QUOTA, quota_us(millicores).to_string(), true),
        ],
        None => vec![Write::new(V1_QUOTA, "-1", false)],
    };
    writes.push(match weight {
        Some(weight) => Write::new(V1_SHARES, shares(weight).to_string(), true),
        None => Write::new(V1_SHARES, shares(DEFAULT_CPU_WEIGHT).to_string(), false),
    });
    writes
}

pub(super) fn v2_writes(millicores: Option<u64>, weight: Option<u64>) -> Vec<Write> {
    vec![
        match millicores {
            Some(millicores) => Write::new(V2_MAX, format!("{} {CFS_PERIOD_US}", quota_us(millicores)), true),
            None => Write::new(V2_MAX, format!("max {CFS_PERIOD_US}"), false),
        },
        match weight {
            Some(weight) => Write::new(V2_WEIGHT, weight.to_string(), true),
            None => Write::new(V2_WEIGHT, DEFAULT_CPU_WEIGHT.to_string(), false),
        },
    ]
}

/// Reads `cpuacct.usage` (nanoseconds) from the cpuacct directory.
pub(super) fn v1_stats(cpuacct_dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    stats.cpu_usage_ns = fs::read_u64(&cpuacct_dir.join(V1_USAGE))?;
    Ok(())
}

/// Reads `usage_usec` of `cpu.stat` (present even without the cpu controller).
pub(super) fn v2_stats(dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    let path = dir.join(V2_STAT);
    let content = fs::read(&path)?;
    let usec = fs::keyed_u64(&path, &content, "usage_usec")?.ok_or_else(|| fs::malformed(&path, &content))?;
    stats.cpu_usage_ns = usec.saturating_mul(1000);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(writes: &[Write]) -> Vec<(&str, &str, bool)> {
        writes
            .iter()
            .map(|w| (w.file, w.value.as_str(), w.required))
            .collect()
    }

    #[test]
    fn weight_maps_to_shares_with_a_floor_of_two() {
        assert_eq!(shares(100), 1024);
        assert_eq!(shares(250), 2560);
        assert_eq!(shares(10_000), 102_400);
        assert_eq!(shares(1), 10);
        assert_eq!(shares(0), 2);
    }

    #[test]
    fn v1_quota_over_a_100ms_period() {
        assert_eq!(
            files(&v1_writes(Some(1500), Some(50))),
            [
                (V1_PERIOD, "100000", true),
                (V1_QUOTA, "150000", true),
                (V1_SHARES, "512", true),
            ]
        );
        assert_eq!(
            files(&v1_writes(None, None)),
            [(V1_QUOTA, "-1", false), (V1_SHARES, "1024", false)]
        );
    }

    #[test]
    fn v2_quota_and_weight() {
        assert_eq!(
            files(&v2_writes(Some(250), Some(300))),
            [(V2_MAX, "25000 100000", true), (V2_WEIGHT, "300", true)]
        );
        assert_eq!(
            files(&v2_writes(None, None)),
            [(V2_MAX, "max 100000", false), (V2_WEIGHT, "100", false)]
        );
    }
}
