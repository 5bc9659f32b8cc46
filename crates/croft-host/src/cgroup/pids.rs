//! The pids controller: a cap on the number of tasks, which stops a fork bomb
//! in one VPS from exhausting the host's pid space.

use std::path::Path;

use super::fs::{self, Write};
use super::{CgroupError, Stats};

const MAX: &str = "pids.max";
const CURRENT: &str = "pids.current";

/// The same files in v1 and v2.
pub(super) fn writes(max: Option<u64>) -> Vec<Write> {
    match max {
        Some(max) => vec![Write::new(MAX, max.to_string(), true)],
        None => vec![Write::new(MAX, "max", false)],
    }
}

pub(super) fn stats(dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    stats.pids_current = fs::read_u64(&dir.join(CURRENT))?;
    Ok(())
}
