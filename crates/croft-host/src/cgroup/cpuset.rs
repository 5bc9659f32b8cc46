//! The cpuset controller: which CPUs a VPS runs on.
//!
//! A VPS with a CPU quota of N CPUs is also pinned to ceil(N) CPUs, as
//! Proxmox's `cores` does: then `nproc` (which counts the CPUs a process
//! may run on), /proc/cpuinfo and /sys/devices/system/cpu/online (through
//! lxcfs) all show the CPUs it paid for, and its threads stay on them. The
//! manager picks the least-used CPUs ([`least_used`]).

use std::collections::BTreeMap;
use std::path::Path;

use super::{fs, CgroupError};

pub(super) const CPUS: &str = "cpuset.cpus";
pub(super) const MEMS: &str = "cpuset.mems";

/// Parse a kernel CPU list ("0-3,8,10-11"); empty means no CPUs.
pub fn parse_list(path: &Path, text: &str) -> Result<Vec<u32>, CgroupError> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || fs::malformed(path, text);
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.parse().map_err(|_| bad())?, hi.parse().map_err(|_| bad())?),
            None => {
                let one: u32 = part.parse().map_err(|_| bad())?;
                (one, one)
            }
        };
        if lo > hi || hi - lo > 65_536 {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// A CPU list as the kernel takes it: "0,2,3".
pub fn format_list(cpus: &[u32]) -> String {
    cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// The `want` CPUs of `available` that the fewest pinned VPSes use
/// (`pins`: CPU -> number of VPSes pinned to it), lowest numbers first
/// among equals; returned sorted.
pub fn least_used(available: &[u32], pins: &BTreeMap<u32, usize>, want: usize) -> Vec<u32> {
    let mut ranked: Vec<u32> = available.to_vec();
    ranked.sort_by_key(|cpu| (pins.get(cpu).copied().unwrap_or(0), *cpu));
    ranked.truncate(want);
    ranked.sort_unstable();
    ranked
}

/// The CPUs of the cpuset cgroup at `dir`.
pub(super) fn read(dir: &Path) -> Result<Vec<u32>, CgroupError> {
    let path = dir.join(CPUS);
    parse_list(&path, &fs::read(&path)?)
}

/// Give a new cpuset cgroup its parent's CPUs and memory nodes, so it can
/// take processes. Leaves a cgroup that already has them (or a directory
/// without cpuset files) alone.
pub(super) fn inherit(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in [CPUS, MEMS] {
        let own = dir.join(file);
        if !own.exists() || !fs::read(&own)?.trim().is_empty() {
            continue;
        }
        fs::write_file(&own, fs::read(&parent.join(file))?.trim())?;
    }
    Ok(())
}

/// Pin the cgroup at `dir` to `cpus`, or with `None` give it all of its
/// parent's CPUs again.
pub(super) fn pin(dir: &Path, cpus: Option<&[u32]>) -> Result<(), CgroupError> {
    let value = match cpus {
        Some(cpus) => format_list(cpus),
        None => match dir.parent() {
            Some(parent) => fs::read(&parent.join(CPUS))?.trim().to_string(),
            None => return Ok(()),
        },
    };
    fs::write_file(&dir.join(CPUS), &value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_format() {
        let p = Path::new("cpuset.cpus");
        assert_eq!(
            parse_list(p, "0-3,8,10-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_list(p, "\n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_list(p, "1,1,0").unwrap(), vec![0, 1]);
        for bad in ["a", "3-1", "0-", "-1", "0-4294967295"] {
            assert!(parse_list(p, bad).is_err(), "{bad}");
        }
        assert_eq!(format_list(&[0, 2, 3]), "0,2,3");
    }

    #[test]
    fn least_used_cpus_are_chosen_lowest_first() {
        let pins = BTreeMap::from([(0, 2), (1, 1), (3, 1)]);
        assert_eq!(least_used(&[0, 1, 2, 3], &pins, 1), vec![2]);
        assert_eq!(least_used(&[0, 1, 2, 3], &pins, 2), vec![1, 2]);
        assert_eq!(least_used(&[0, 1, 2, 3], &pins, 3), vec![1, 2, 3]);
        assert_eq!(least_used(&[0, 1], &BTreeMap::new(), 1), vec![0]);
    }
}
