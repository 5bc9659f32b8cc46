//! The memory controller: limit, usage, OOM kills.
//!
//! A VPS's memory limit bounds memory and swap together, so that swapping
//! never extends a VPS beyond what it pays for: v1 sets
//! `memory.memsw.limit_in_bytes` equal to `memory.limit_in_bytes`, v2 sets
//! `memory.swap.max` to 0 (when the kernel accounts swap at all).

use std::path::Path;

use super::fs::{self, Write};
use super::{CgroupError, Stats};

const V1_LIMIT: &str = "memory.limit_in_bytes";
const V1_MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
const V1_USAGE: &str = "memory.usage_in_bytes";
const V1_OOM_CONTROL: &str = "memory.oom_control";

const V2_MAX: &str = "memory.max";
const V2_SWAP_MAX: &str = "memory.swap.max";
const V2_CURRENT: &str = "memory.current";
const V2_EVENTS: &str = "memory.events";

/// v1 reads "no limit" back as a huge page-aligned number
/// (9223372036854771712 on 4 KiB pages); anything from 2^62 on is unlimited.
const V1_UNLIMITED: u64 = 1 << 62;

/// The v1 writes for `limit`, given the current memsw limit (`None`: no memsw
/// file, swap is not accounted). The kernel keeps `limit <= memsw` at every
/// step, so a new value not above the current memsw limit goes to
/// `limit_in_bytes` first, and a higher one to memsw first.
pub(super) fn v1_writes(limit: Option<u64>, current_memsw: Option<u64>) -> Vec<Write> {
    let value = limit.map_or_else(|| "-1".to_owned(), |bytes| bytes.to_string());
    let limit_write = Write::new(V1_LIMIT, value.clone(), limit.is_some());
    let Some(current_memsw) = current_memsw else {
        return vec![limit_write];
    };
    let memsw_write = Write::new(V1_MEMSW_LIMIT, value, false);
    if limit.unwrap_or(u64::MAX) <= current_memsw {
        vec![limit_write, memsw_write]
    } else {
        vec![memsw_write, limit_write]
    }
}

/// Parses a v1 limit file: `None` when unlimited (the kernel's huge value, or
/// `-1` as written).
fn parse_v1_limit(path: &Path, content: &str) -> Result<Option<u64>, CgroupError> {
    if content.trim() == "-1" {
        return Ok(None);
    }
    let limit = fs::parse_u64(path, content)?;
    Ok((limit < V1_UNLIMITED).then_some(limit))
}

/// The current memsw limit (`u64::MAX` when unlimited), `None` if swap is not
/// accounted.
pub(super) fn v1_current_memsw(dir: &Path) -> Result<Option<u64>, CgroupError> {
    let path = dir.join(V1_MEMSW_LIMIT);
    let Some(content) = fs::read_optional(&path)? else {
        return Ok(None);
    };
    Ok(Some(parse_v1_limit(&path, &content)?.unwrap_or(u64::MAX)))
}

/// A failed v1 limit write as the caller can act on it: EBUSY is the
/// kernel failing to reclaim below `limit` ([`CgroupError::MemoryInUse`],
/// with what the cgroup uses), anything else as it was.
pub(super) fn below_usage(dir: &Path, limit: Option<u64>, e: CgroupError) -> CgroupError {
    let busy = matches!(&e, CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EBUSY));
    match (busy, limit, fs::read_u64(&dir.join(V1_USAGE))) {
        (true, Some(limit), Ok(usage)) => CgroupError::MemoryInUse { usage, limit },
        _ => e,
    }
}

pub(super) fn v2_writes(limit: Option<u64>) -> Vec<Write> {
    match limit {
        Some(bytes) => vec![
            Write::new(V2_MAX, bytes.to_string(), true),
            Write::new(V2_SWAP_MAX, "0", false),
        ],
        None => vec![
            Write::new(V2_MAX, "max", false),
            Write::new(V2_SWAP_MAX, "max", false),
        ],
    }
}

pub(super) fn v1_stats(dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    stats.memory_bytes = fs::read_u64(&dir.join(V1_USAGE))?;
    let path = dir.join(V1_LIMIT);
    stats.memory_limit_bytes = parse_v1_limit(&path, &fs::read(&path)?)?;
    let path = dir.join(V1_OOM_CONTROL);
    // `oom_kill` exists since Linux 4.13.
    stats.oom_kills = fs::keyed_u64(&path, &fs::read(&path)?, "oom_kill")?.unwrap_or(0);
    Ok(())
}

/// How many processes the OOM killer killed in memory cgroup `dir` (v1
/// or v2); `None` where it cannot be read.
pub(super) fn oom_kills(dir: &Path) -> Option<u64> {
    [V1_OOM_CONTROL, V2_EVENTS].iter().find_map(|file| {
        let path = dir.join(file);
        let content = fs::read_optional(&path).ok()??;
        fs::keyed_u64(&path, &content, "oom_kill").ok()?
    })
}

pub(super) fn v2_stats(dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    stats.memory_bytes = fs::read_u64(&dir.join(V2_CURRENT))?;
    let path = dir.join(V2_MAX);
    let max = fs::read(&path)?;
    stats.memory_limit_bytes = match max.trim() {
        "max" => None,
        _ => Some(fs::parse_u64(&path, &max)?),
    };
    let path = dir.join(V2_EVENTS);
    stats.oom_kills = fs::keyed_u64(&path, &fs::read(&path)?, "oom_kill")?.unwrap_or(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(writes: &[Write]) -> Vec<(&str, &str)> {
        writes.iter().map(|w| (w.file, w.value.as_str())).collect()
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn v1_raising_writes_memsw_first() {
        let writes = v1_writes(Some(2 * GIB), Some(GIB));
        assert_eq!(
            files(&writes),
            [(V1_MEMSW_LIMIT, "2147483648"), (V1_LIMIT, "2147483648")]
        );
        assert!(writes[1].required && !writes[0].required);
    }

    #[test]
    fn v1_lowering_writes_limit_first() {
        let writes = v1_writes(Some(GIB / 2), Some(GIB));
        assert_eq!(
            files(&writes),
            [(V1_LIMIT, "536870912"), (V1_MEMSW_LIMIT, "536870912")]
        );
        // From unlimited (the kernel's huge value) down to a limit.
        let writes = v1_writes(Some(GIB), Some(9_223_372_036_854_771_712));
        assert_eq!(files(&writes)[0], (V1_LIMIT, "1073741824"));
        // Unchanged value: limit first is valid too.
        assert_eq!(files(&v1_writes(Some(GIB), Some(GIB)))[0].0, V1_LIMIT);
    }

    #[test]
    fn v1_removing_the_limit_raises_memsw_first_and_is_optional() {
        let writes = v1_writes(None, Some(GIB));
        assert_eq!(files(&writes), [(V1_MEMSW_LIMIT, "-1"), (V1_LIMIT, "-1")]);
        assert!(writes.iter().all(|w| !w.required));
    }

    #[test]
    fn v1_without_swap_accounting_writes_only_the_limit() {
        assert_eq!(files(&v1_writes(Some(GIB), None)), [(V1_LIMIT, "1073741824")]);
    }

    #[test]
    fn v1_limits_read_back_unlimited_as_none() {
        let path = Path::new("memory.limit_in_bytes");
        assert_eq!(parse_v1_limit(path, "9223372036854771712\n").unwrap(), None);
        assert_eq!(parse_v1_limit(path, "-1").unwrap(), None);
        assert_eq!(parse_v1_limit(path, "1073741824\n").unwrap(), Some(GIB));
        assert!(parse_v1_limit(path, "max").is_err());
    }

    #[test]
    fn v2_limit_forbids_swap_and_none_removes_both() {
        assert_eq!(
            files(&v2_writes(Some(GIB))),
            [(V2_MAX, "1073741824"), (V2_SWAP_MAX, "0")]
        );
        assert_eq!(files(&v2_writes(None)), [(V2_MAX, "max"), (V2_SWAP_MAX, "max")]);
    }
}
