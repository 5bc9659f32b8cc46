//! Disk I/O throttling on one block device (the storage pool's): bytes and
//! operations per second, read and written.
//!
//! - **v1** (`blkio.throttle.*_device`): the limits apply where a bio is
//!   submitted, to the cgroup of the task submitting it. A VPS's direct
//!   I/O (`O_DIRECT`) and its reads that miss the page cache are submitted
//!   by its own tasks and throttled. Buffered writes land in the page cache
//!   and are written back later by the kernel's flusher threads, which
//!   belong to the root cgroup: v1 does not throttle them.
//! - **v2** (`io.max`): writeback is charged to the cgroup that dirtied the
//!   pages (with the memory controller), so buffered writes are throttled
//!   too.
//!
//! A value of "no limit" is written as `0` (v1) or `max` (v2), so applying
//! limits also removes those set before.
//!
//! The same controllers count what each cgroup read and wrote on the
//! device ([`IoStats`]), with the same reach: v1 does not count the page
//! cache's writeback (the flusher's), only what a VPS's own tasks submit
//! (reads, direct writes, what their `fsync` pushes out). v1 also counts
//! only on a device where blk-throttle was switched on, which the first
//! throttle rule written for it does, even a rule of "no limit"
//! ([`super::CgroupManager::count_io`]).

use serde::{Deserialize, Serialize};

use super::fs::Write;

/// A block device by number, as cgroup files name it (`MAJ:MIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    pub major: u32,
    pub minor: u32,
}

impl std::fmt::Display for BlockDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// I/O limits on `device`, each `None` when unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoLimits {
    pub device: BlockDevice,
    pub read_bps: Option<u64>,
    pub write_bps: Option<u64>,
    pub read_iops: Option<u64>,
    pub write_iops: Option<u64>,
}

impl IoLimits {
    pub(super) fn any(&self) -> bool {
        [self.read_bps, self.write_bps, self.read_iops, self.write_iops]
            .iter()
            .any(Option::is_some)
    }

    /// The limits as `(field, value)`, to validate.
    pub(super) fn values(&self) -> [(&'static str, Option<u64>); 4] {
        [
            ("read_bps", self.read_bps),
            ("write_bps", self.write_bps),
            ("read_iops", self.read_iops),
            ("write_iops", self.write_iops),
        ]
    }
}

/// What a cgroup read and wrote on one device since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStats {
    pub read_bytes: u64,
    pub written_bytes: u64,
    /// Read operations (requests submitted to the device).
    pub reads: u64,
    pub writes: u64,
}

/// v1's counts of `device` from `blkio.throttle.io_service_bytes_recursive`
/// (`bytes`) and `blkio.throttle.io_serviced_recursive` (`ops`): lines of
/// `MAJ:MIN Read|Write|Sync|Async|Discard|Total N`. A device without lines
/// has had no I/O from the cgroup.
pub(super) fn v1_stats(device: BlockDevice, bytes: &str, ops: &str) -> IoStats {
    let find = |text: &str, what: &str| -> u64 {
        let prefix = format!("{device} {what} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    IoStats {
        read_bytes: find(bytes, "Read"),
        written_bytes: find(bytes, "Write"),
        reads: find(ops, "Read"),
        writes: find(ops, "Write"),
    }
}

/// v2's counts of `device` from `io.stat`: a line per device of
/// `MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N`.
pub(super) fn v2_stats(device: BlockDevice, io_stat: &str) -> IoStats {
    let prefix = format!("{device} ");
    let mut stats = IoStats::default();
    let Some(line) = io_stat.lines().find_map(|l| l.strip_prefix(prefix.as_str())) else {
        return stats;
    };
    for (key, value) in line.split_whitespace().filter_map(|kv| kv.split_once('=')) {
        let value = value.parse().unwrap_or(0);
        match key {
            "rbytes" => stats.read_bytes = value,
            "wbytes" => stats.written_bytes = value,
            "rios" => stats.reads = value,
            "wios" => stats.writes = value,
            _ => {}
        }
    }
    stats
}

/// The v1 plan, for the blkio hierarchy's directory. A missing file is an
/// error only for a limit being set (a kernel without throttling).
pub(super) fn v1_writes(limits: &IoLimits) -> Vec<Write> {
    let device = limits.device;
    [
        ("blkio.throttle.read_bps_device", limits.read_bps),
        ("blkio.throttle.write_bps_device", limits.write_bps),
        ("blkio.throttle.read_iops_device", limits.read_iops),
        ("blkio.throttle.write_iops_device", limits.write_iops),
    ]
    .into_iter()
    .map(|(file, value)| Write::new(file, format!("{device} {}", value.unwrap_or(0)), value.is_some()))
    .collect()
}

/// The v2 plan: one line of `io.max`.
pub(super) fn v2_writes(limits: &IoLimits) -> Vec<Write> {
    let value = |v: Option<u64>| v.map_or_else(|| "max".to_string(), |v| v.to_string());
    vec![Write::new(
        "io.max",
        format!(
            "{} rbps={} wbps={} riops={} wiops={}",
            limits.device,
            value(limits.read_bps),
            value(limits.write_bps),
            value(limits.read_iops),
            value(limits.write_iops)
        ),
        limits.any(),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: BlockDevice = BlockDevice { major: 7, minor: 3 };

    #[test]
    fn v1_sets_each_limit_and_clears_the_others() {
        let limits = IoLimits {
            device: DEV,
            read_bps: Some(10 << 20),
            write_bps: None,
            read_iops: None,
            write_iops: Some(100),
        };
        let writes = v1_writes(&limits);
        let plan: Vec<(&str, &str, bool)> = writes
            .iter()
            .map(|w| (w.file, w.value.as_str(), w.required))
            .collect();
        assert_eq!(
            plan,
            [
                ("blkio.throttle.read_bps_device", "7:3 10485760", true),
                ("blkio.throttle.write_bps_device", "7:3 0", false),
                ("blkio.throttle.read_iops_device", "7:3 0", false),
                ("blkio.throttle.write_iops_device", "7:3 100", true),
            ]
        );
    }

    #[test]
    fn v1_counts_are_the_devices_read_and_write_lines() {
        let bytes = "254:0 Read 19308544\n254:0 Write 16384\n7:3 Read 10489856\n7:3 Write 20983808\n\
                     7:3 Sync 31473664\n7:3 Async 0\n7:3 Discard 0\n7:3 Total 31473664\nTotal 50798592\n";
        let ops = "254:0 Read 96\n7:3 Read 15\n7:3 Write 53\n7:3 Total 68\nTotal 169\n";
        assert_eq!(
            v1_stats(DEV, bytes, ops),
            IoStats {
                read_bytes: 10489856,
                written_bytes: 20983808,
                reads: 15,
                writes: 53
            }
        );
        // 7:30 is another device, not 7:3.
        assert_eq!(v1_stats(DEV, "7:30 Read 5\nTotal 5\n", ""), IoStats::default());
    }

    #[test]
    fn v2_counts_are_the_devices_io_stat_line() {
        let io_stat = "7:30 rbytes=1 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n\
                       7:3 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n";
        assert_eq!(
            v2_stats(DEV, io_stat),
            IoStats {
                read_bytes: 4096,
                written_bytes: 8192,
                reads: 1,
                writes: 2
            }
        );
        assert_eq!(v2_stats(DEV, ""), IoStats::default());
    }

    #[test]
    fn v2_writes_one_io_max_line() {
        let mut limits = IoLimits {
            device: DEV,
            read_bps: None,
            write_bps: Some(1_000_000),
            read_iops: None,
            write_iops: None,
        };
        let w = &v2_writes(&limits)[0];
        assert_eq!(
            (w.file, w.value.as_str(), w.required),
            ("io.max", "7:3 rbps=max wbps=1000000 riops=max wiops=max", true)
        );
        limits.write_bps = None;
        let w = &v2_writes(&limits)[0];
        assert_eq!(
            (w.value.as_str(), w.required),
            ("7:3 rbps=max wbps=max riops=max wiops=max", false)
        );
    }
}
