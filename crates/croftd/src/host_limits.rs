//! Kernel limits that are per *host user*, not per VPS, and so run out long
//! before memory does when many VPSes run.
//!
//! The kernel charges some per-user counters (inotify instances and
//! watches, namespaces) at every level of the user-namespace tree, at the
//! host level to the uid that owns the VPS's user namespace: its uid base
//! (see `runtime::security::as_namespace_owner`), so each VPS has an
//! allowance of its own, not shared with other VPSes or host root. The
//! default of 128 inotify instances is still too few for one busy Debian
//! VPS (systemd alone takes several, every unit watching files more), so
//! croftd raises these limits at start, never lowers them, to what LXD's
//! and Incus's production guides recommend. The memory they take is
//! charged to the VPS's memory cgroup.

use tracing::{info, warn};

/// (sysctl file, the least croftd wants there).
const MINIMUMS: &[(&str, u64)] = &[
    ("/proc/sys/fs/inotify/max_user_instances", 1_048_576),
    ("/proc/sys/fs/inotify/max_user_watches", 1_048_576),
];

/// Raise each limit below its minimum; a limit that cannot be read or
/// written is logged and left as it is.
pub fn raise() {
    for (file, minimum) in MINIMUMS {
        let current = match std::fs::read_to_string(file) {
            Ok(text) => text.trim().parse::<u64>().ok(),
            Err(_) => continue,
        };
        if current.is_some_and(|c| c >= *minimum) {
            continue;
        }
        match std::fs::write(file, minimum.to_string()) {
            Ok(()) => info!(limit = file, from = ?current, to = minimum, "raised a per-user kernel limit"),
            Err(e) => warn!(
                limit = file,
                "cannot raise this per-user kernel limit ({e}); fewer VPSes will fit"
            ),
        }
    }
}
