//! A VPS's disk made fit to become an image (`croft publish`): what makes
//! it one machine, and what its users left behind, cleared, as
//! virt-sysprep does for VM disks and Proxmox users do before turning a
//! guest into a template.
//!
//! Run on a private copy of the disk that no VPS runs on, so nothing
//! changes under it meanwhile; but its contents are the tenant's, so no
//! symlink in it is ever followed: a link where a directory is expected
//! ends that step, and links themselves are removed, never their targets.

use crate::rootfs::{io, RootfsError};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Files in a home directory that record what its user typed.
const HISTORIES: &[&str] = &[
    ".bash_history",
    ".python_history",
    ".lesshst",
    ".viminfo",
    ".mysql_history",
    ".psql_history",
];

/// Clear the identity and traces of the disk at `root`:
/// - `/etc/machine-id` emptied (the next VPS gets its own), D-Bus's copy
///   removed;
/// - SSH host keys removed (the next VPS gets new ones at launch);
/// - `authorized_keys` of root and of every user in /home removed, and
///   root's password locked: who may log in is said at launch;
/// - shell and editor histories removed;
/// - logs emptied (rotated ones and the journal removed), files kept with
///   their owners so services still write them;
/// - systemd's random seed, DHCP leases, /tmp and /var/tmp removed;
/// - croft's first-boot script, its result and its unit removed.
pub fn clear_identity(root: &Path) -> Result<(), RootfsError> {
    if let Some(etc) = real_dir(root, "etc") {
        truncate(&etc.join("machine-id"))?;
        remove_file(&etc.join("systemd/system/croft-user-data.service"))?;
        if let Some(wants) = real_dir(root, "etc/systemd/system/multi-user.target.wants") {
            remove_file(&wants.join("croft-user-data.service"))?;
        }
        if let Some(ssh) = real_dir(root, "etc/ssh") {
            for name in entries(&ssh)? {
                if starts_with(&name, "ssh_host_") {
                    remove_file(&ssh.join(name))?;
                }
            }
        }
        match crate::rootfs::set_root_password_hash(root, "*") {
            Ok(()) | Err(RootfsError::NoRootEntry) => {}
            Err(e) => return Err(e),
        }
        // shadow's backup holds the old hash.
        remove_file(&etc.join("shadow-"))?;
    }
    if let Some(dbus) = real_dir(root, "var/lib/dbus") {
        // Debian links it to /etc/machine-id; a copy of its own goes.
        if fs::symlink_metadata(dbus.join("machine-id")).is_ok_and(|m| m.is_file()) {
            remove_file(&dbus.join("machine-id"))?;
        }
    }
    let mut homes: Vec<PathBuf> = real_dir(root, "root").into_iter().collect();
    if let Some(home) = real_dir(root, "home") {
        for user in entries(&home)? {
            if let Some(dir) = real_dir(&home, user) {
                homes.push(dir);
            }
        }
    }
    for home in &homes {
        for history in HISTORIES {
            remove_file(&home.join(history))?;
        }
        // Who may log in, the user's own keys and the hosts it knew.
        if let Some(ssh) = real_dir(home, ".ssh") {
            for name in entries(&ssh)? {
                if starts_with(&name, "authorized_keys")
                    || starts_with(&name, "id_")
                    || starts_with(&name, "known_hosts")
                {
                    remove_file(&ssh.join(name))?;
                }
            }
        }
    }
    if let Some(log) = real_dir(root, "var/log") {
        clear_logs(&log, 0)?;
    }
    if let Some(systemd) = real_dir(root, "var/lib/systemd") {
        remove_file(&systemd.join("random-seed"))?;
        remove_file(&systemd.join("credential.secret"))?;
    }
    if let Some(dhcp) = real_dir(root, "var/lib/dhcp") {
        for name in entries(&dhcp)? {
            if ends_with(&name, ".leases") {
                remove_file(&dhcp.join(name))?;
            }
        }
    }
    if let Some(croft) = real_dir(root, "var/lib/croft") {
        remove_file(&croft.join("user-data"))?;
        remove_file(&croft.join("user-data.status"))?;
    }
    for tmp in ["tmp", "var/tmp"] {
        if let Some(dir) = real_dir(root, tmp) {
            empty(&dir)?;
        }
    }
    Ok(())
}

/// How deep below /var/log logs are looked for (logs are never deep; a
/// tree made deeper is the tenant's and is left as it is).
const LOG_DEPTH: usize = 16;

/// Logs below `dir` (at `depth` below /var/log): current ones emptied,
/// rotated ones removed, the journal's per-machine directories removed.
fn clear_logs(dir: &Path, depth: usize) -> Result<(), RootfsError> {
    for name in entries(dir)? {
        let path = dir.join(&name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if name == "journal" && depth == 0 {
                empty(&path)?;
            } else if depth < LOG_DEPTH {
                clear_logs(&path, depth + 1)?;
            }
        } else if meta.is_file() {
            if rotated(&name) {
                remove_file(&path)?;
            } else {
                truncate(&path)?;
            }
        }
    }
    Ok(())
}

/// A log logrotate has set aside: `syslog.1`, `dpkg.log.2.gz`, `x.old`.
fn rotated(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    let name = name.as_ref();
    let name = [".gz", ".xz", ".bz2", ".zst"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    name.ends_with(".old")
        || name
            .rsplit_once('.')
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `base/rel` if every component of `rel` is a real directory (no link).
fn real_dir(base: &Path, rel: impl AsRef<Path>) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    for part in rel.as_ref().components() {
        path.push(part);
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            return None;
        }
    }
    Some(path)
}

/// The names in directory `dir`, as they are (not all are UTF-8).
fn entries(dir: &Path) -> Result<Vec<OsString>, RootfsError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io("read", dir))? {
        let entry = entry.map_err(io("read", dir))?;
        names.push(entry.file_name());
    }
    Ok(names)
}

/// Whether `name` begins with `prefix`.
fn starts_with(name: &OsStr, prefix: &str) -> bool {
    name.as_bytes().starts_with(prefix.as_bytes())
}

/// Whether `name` ends with `suffix`.
fn ends_with(name: &OsStr, suffix: &str) -> bool {
    name.as_bytes().ends_with(suffix.as_bytes())
}

/// Remove the file or link at `path` (a link's target stays); a
/// directory or nothing there is left alone.
fn remove_file(path: &Path) -> Result<(), RootfsError> {
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => fs::remove_file(path).map_err(io("remove", path)),
        _ => Ok(()),
    }
}

/// Empty the regular file at `path`, keeping its owner and mode; anything
/// else there is left alone.
fn truncate(path: &Path) -> Result<(), RootfsError> {
    use std::os::unix::fs::OpenOptionsExt;
    if !fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .and_then(|f| f.set_len(0))
        .map_err(io("empty", path))
}

/// Remove everything in directory `dir`, which stays. Links are removed,
/// not followed. Walked with a list of its own, not by recursion (the tree
/// is the tenant's, and may be as deep as paths allow), listing each
/// directory once: its files go at once, its directories are emptied
/// before it is removed.
fn empty(dir: &Path) -> Result<(), RootfsError> {
    // (directory, whether its entries were dealt with already)
    let mut pending: Vec<(PathBuf, bool)> = vec![(dir.to_path_buf(), false)];
    while let Some((current, listed)) = pending.pop() {
        if listed {
            if current != dir {
                fs::remove_dir(&current).map_err(io("remove", &current))?;
            }
            continue;
        }
        pending.push((current.clone(), true));
        for name in entries(&current)? {
            let path = current.join(name);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => pending.push((path, false)),
                Ok(_) => fs::remove_file(&path).map_err(io("remove", &path))?,
                Err(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn identity_and_traces_go_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        write(root, "etc/ssh/ssh_host_ed25519_key", "secret");
        write(root, "etc/ssh/ssh_host_ed25519_key.pub", "public");
        write(root, "etc/ssh/sshd_config", "Port 22\n");
        write(
            root,
            "etc/shadow",
            "root:$6$salt$hash:19000:0:99999:7:::\nwww:!:19000::::::\n",
        );
        write(root, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA owner\n");
        write(root, "root/.bash_history", "mysql -p hunter2\n");
        write(root, "home/ann/.ssh/authorized_keys", "ssh-ed25519 BBBB ann\n");
        write(root, "home/ann/notes.txt", "kept\n");
        write(root, "var/log/syslog", "boot\n");
        write(root, "var/log/syslog.1", "old\n");
        write(root, "var/log/apt/history.log.2.gz", "older");
        write(root, "var/log/journal/0123/system.journal", "binary");
        write(root, "var/lib/systemd/random-seed", "seed");
        write(root, "var/lib/dhcp/dhclient.eth0.leases", "lease");
        write(root, "tmp/x/y", "scratch");
        write(root, "srv/app/data", "kept\n");
        write(root, "etc/shadow-", "root:$6$old$hash:19000:0:99999:7:::\n");
        write(root, "root/.ssh/id_ed25519", "private key");
        write(root, "root/.ssh/known_hosts", "github.com ssh-ed25519 AAAA");
        write(root, "var/lib/systemd/credential.secret", "secret");
        // A name that is not UTF-8, and a tree deeper than a recursion
        // would like.
        fs::write(root.join("tmp").join(OsStr::from_bytes(b"\xff\xfe")), "x").unwrap();
        let mut deep = root.join("var/tmp");
        for _ in 0..1000 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();

        clear_identity(root).unwrap();

        assert_eq!(fs::read_to_string(root.join("etc/machine-id")).unwrap(), "");
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key").exists());
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key.pub").exists());
        assert!(root.join("etc/ssh/sshd_config").exists());
        let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
        assert!(shadow.starts_with("root:*:"), "{shadow}");
        assert!(shadow.contains("www:!:19000"), "{shadow}");
        assert!(!root.join("root/.ssh/authorized_keys").exists());
        assert!(!root.join("root/.bash_history").exists());
        assert!(!root.join("home/ann/.ssh/authorized_keys").exists());
        assert_eq!(fs::read_to_string(root.join("var/log/syslog")).unwrap(), "");
        assert!(!root.join("var/log/syslog.1").exists());
        assert!(!root.join("var/log/apt/history.log.2.gz").exists());
        assert!(root.join("var/log/journal").is_dir());
        assert!(!root.join("var/log/journal/0123").exists());
        assert!(!root.join("var/lib/systemd/random-seed").exists());
        assert!(!root.join("var/lib/dhcp/dhclient.eth0.leases").exists());
        assert!(root.join("tmp").is_dir() && fs::read_dir(root.join("tmp")).unwrap().next().is_none());
        assert!(fs::read_dir(root.join("var/tmp")).unwrap().next().is_none());
        for gone in [
            "etc/shadow-",
            "root/.ssh/id_ed25519",
            "root/.ssh/known_hosts",
            "var/lib/systemd/credential.secret",
        ] {
            assert!(!root.join(gone).exists(), "{gone} is left");
        }
        assert_eq!(
            fs::read_to_string(root.join("home/ann/notes.txt")).unwrap(),
            "kept\n"
        );
        assert_eq!(fs::read_to_string(root.join("srv/app/data")).unwrap(), "kept\n");
    }

    #[test]
    fn links_out_of_the_disk_are_removed_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        let o = outside.path();
        write(o, "etc/ssh/ssh_host_rsa_key", "host's key");
        write(o, "log/syslog", "host's log\n");
        write(o, "machine-id", "host\n");
        write(o, "tmp/file", "host's file");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // /etc/ssh, /var/log and /tmp are links to the host; machine-id too.
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("var")).unwrap();
        symlink(o.join("etc/ssh"), root.join("etc/ssh")).unwrap();
        symlink(o.join("machine-id"), root.join("etc/machine-id")).unwrap();
        symlink(o.join("log"), root.join("var/log")).unwrap();
        symlink(o.join("tmp"), root.join("tmp")).unwrap();
        // root's home holds a link to the host's file named like a history.
        fs::create_dir_all(root.join("root")).unwrap();
        symlink(o.join("tmp/file"), root.join("root/.bash_history")).unwrap();

        clear_identity(root).unwrap();

        assert_eq!(
            fs::read_to_string(o.join("etc/ssh/ssh_host_rsa_key")).unwrap(),
            "host's key"
        );
        assert_eq!(fs::read_to_string(o.join("log/syslog")).unwrap(), "host's log\n");
        assert_eq!(fs::read_to_string(o.join("machine-id")).unwrap(), "host\n");
        assert_eq!(fs::read_to_string(o.join("tmp/file")).unwrap(), "host's file");
        assert!(fs::symlink_metadata(root.join("root/.bash_history")).is_err());
    }

    #[test]
    fn rotated_logs_are_told_from_current_ones() {
        for name in ["syslog.1", "dpkg.log.2.gz", "auth.log.old", "kern.log.10.xz"] {
            assert!(rotated(OsStr::new(name)), "{name}");
        }
        for name in ["syslog", "dpkg.log", "lastlog", "wtmp", "cloud-init.log", "x.gz"] {
            assert!(!rotated(OsStr::new(name)), "{name}");
        }
    }
}
