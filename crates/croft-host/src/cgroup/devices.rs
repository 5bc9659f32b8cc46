//! The devices controller (v1): which device nodes a VPS may open.
//!
//! A user namespace cannot create device nodes, but it can open one that
//! appears on a filesystem whose mount allows devices: a node smuggled
//! onto its disk by a root tool (a crafted snapshot stream once put the
//! pool's loop device there), or a host device bound in by mistake. The
//! allow-list is the layer VPS root cannot undo: the devices hierarchy is
//! never delegated, so nothing inside can write these files.

use std::path::Path;

use super::fs::{self, Write};
use super::CgroupError;

/// The character devices a VPS's /dev holds (as LXC and Incus allow):
/// null, zero, full, random, urandom, tty, console, ptmx, and the pty
/// slaves of its own devpts (majors 136-143). Everything else is denied.
pub const ALLOWED: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 137:* rwm",
    "c 138:* rwm",
    "c 139:* rwm",
    "c 140:* rwm",
    "c 141:* rwm",
    "c 142:* rwm",
    "c 143:* rwm",
];

/// Deny every device, then allow [`ALLOWED`]: on a cgroup that holds no
/// process yet (a new one, or one reused after its VPS stopped), so
/// nothing ever runs under a wider list.
pub(super) fn v1_writes() -> Vec<Write> {
    std::iter::once(Write::new("devices.deny", "a", true))
        .chain(
            ALLOWED
                .iter()
                .map(|rule| Write::new("devices.allow", *rule, true)),
        )
        .collect()
}

pub(super) fn v1_restrict(dir: &Path) -> Result<(), CgroupError> {
    fs::apply_writes(dir, &v1_writes())
}
