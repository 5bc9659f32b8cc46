//! Root filesystems on plain directories: the busybox image and per-VPS
//! copies whose owners are shifted into the VPS's id range.
//!
//! Shifting at copy time ("chown at creation") is the fallback the runtime
//! design allows until storage pools give every VPS a copy-on-write
//! snapshot plus an idmapped mount.

use nix::unistd::{fchownat, Gid, Uid};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RootfsError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unsupported file type in a root filesystem (device, socket or fifo)")]
    Unsupported { path: PathBuf },
    #[error("the VPS has no root entry in /etc/shadow to set a password on")]
    NoRootEntry,
    #[error("{path}: owner id {id} is outside the 65536-id range a VPS maps")]
    IdOutOfRange { path: PathBuf, id: u32 },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{path} is larger than the {max} bytes croft reads of it")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("cancelled")]
    Cancelled,
}

/// The most croft reads of a small system file on a VPS's disk
/// (`/etc/hosts`): the tenant can make it a sparse file of any size.
const SMALL_FILE_MAX: u64 = 1 << 20;

/// The regular file `rootfs/<dir>/<file>` as text, read as [`read_inside`]
/// does (no link followed, never blocking on a FIFO); `None` if there is
/// no such regular file.
fn read_small_inside(rootfs: &Path, dir: &str, file: &str) -> Result<Option<String>, RootfsError> {
    let path = rootfs.join(dir).join(file);
    match read_inside(rootfs, dir, file, SMALL_FILE_MAX + 1) {
        Some(bytes) if bytes.len() as u64 > SMALL_FILE_MAX => Err(RootfsError::TooLarge {
            path,
            max: SMALL_FILE_MAX,
        }),
        Some(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        None => Ok(None),
    }
}

pub(crate) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RootfsError + 'a {
    move |source| RootfsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Fill the empty directory `root` with the `busybox` image: a tiny Linux
/// userland from a static busybox, with busybox init, a root shell on the
/// console and the usual layout.
pub fn populate_busybox(busybox: &Path, root: &Path) -> Result<(), RootfsError> {
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "run",
        "var/log",
        "var/run",
        "mnt",
        "home",
    ] {
        let p = root.join(dir);
        fs::create_dir_all(&p).map_err(io("create", &p))?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).map_err(io("chmod", root))?;
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700)).map_err(io("chmod", root))?;
    let target = root.join("bin/busybox");
    fs::copy(busybox, &target).map_err(io("copy", busybox))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).map_err(io("chmod", &target))?;
    let out = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(io("run", busybox))?;
    if !out.status.success() {
        return Err(RootfsError::Command {
            command: format!("{} --list-full", busybox.display()),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" || applet.contains("..") {
            continue;
        }
        let link = root.join(applet);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        if !link.exists() {
            std::os::unix::fs::symlink("/bin/busybox", &link).map_err(io("symlink", &link))?;
        }
    }
    let files: &[(&str, &str, u32)] = &[
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644),
            ("etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0o644),
            ("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o600),
            ("etc/hostname", "busybox\n", 0o644),
            ("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n", 0o644),
            ("etc/profile", "export PATH=/usr/sbin:/usr/bin:/sbin:/bin\nexport PS1='\\h:\\w\\$ '\n", 0o644),
            // busybox init: TERM reboots, USR2 powers off; a reboot ends PID 1
            // with SIGHUP in a pid namespace, which the supervisor turns
            // into a fresh boot.
            (
                "etc/inittab",
                "::sysinit:/etc/init.d/rcS\n::askfirst:-/bin/sh\n::ctrlaltdel:/sbin/reboot\n::shutdown:/bin/sync\n",
                0o644,
            ),
            ("etc/init.d/rcS", "#!/bin/sh\n/bin/hostname -F /etc/hostname 2>/dev/null\nmkdir -p /run /var/run\n", 0o755),
        ];
    for (path, content, mode) in files {
        let p = root.join(path);
        fs::write(&p, content).map_err(io("write", &p))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).map_err(io("chmod", &p))?;
    }
    Ok(())
}

/// Copy `src` into the empty directory `dst` (a fresh volume), shifting
/// every owner from the image's ids (0..65536) to `uid_base + id`. The
/// caller owns `dst` and removes it on error.
pub fn copy_shifted(src: &Path, dst: &Path, uid_base: u32) -> Result<(), RootfsError> {
    copy_tree(src, dst, uid_base)
}

fn shift(path: &Path, id: u32, base: u32) -> Result<u32, RootfsError> {
    if id >= crate::spec::ID_RANGE {
        return Err(RootfsError::IdOutOfRange {
            path: path.to_path_buf(),
            id,
        });
    }
    Ok(base + id)
}

fn copy_tree(src: &Path, dst: &Path, base: u32) -> Result<(), RootfsError> {
    let meta = fs::symlink_metadata(src).map_err(io("stat", src))?;
    chown_like(dst, &meta, base)?;
    for entry in fs::read_dir(src).map_err(io("read", src))? {
        let entry = entry.map_err(io("read", src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(io("stat", &from))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            fs::create_dir(&to).map_err(io("create", &to))?;
            copy_tree(&from, &to, base)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(io("readlink", &from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io("symlink", &to))?;
            chown_like(&to, &meta, base)?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(io("copy", &from))?;
            chown_like(&to, &meta, base)?;
        } else {
            return Err(RootfsError::Unsupported { path: from });
        }
    }
    Ok(())
}

/// Give `path` the shifted owner of `meta` and restore its mode afterwards
/// (chown clears setuid and setgid bits).
fn chown_like(path: &Path, meta: &fs::Metadata, base: u32) -> Result<(), RootfsError> {
    let uid = shift(path, meta.uid(), base)?;
    let gid = shift(path, meta.gid(), base)?;
    fchownat(
        None,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| RootfsError::Io {
        op: "chown",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io("chmod", path))?;
    }
    Ok(())
}

/// The signal that asks this rootfs's init to power off: systemd wants
/// SIGRTMIN+3 (SIGTERM would make it re-execute itself); other inits
/// (busybox, sysvinit) power off or reboot on SIGTERM.
pub fn stop_signal_for(rootfs: &Path, default: &str) -> String {
    let init = rootfs.join("sbin/init");
    match fs::read_link(&init) {
        Ok(target) if target.to_string_lossy().contains("systemd") => "SIGRTMIN+3".into(),
        _ => default.into(),
    }
}

/// Open `rootfs/<dir>/<file>` for writing without following a symlink in
/// `dir` or `file`: a copied disk is the tenant's, and host root must not be
/// steered to a host file through a link planted in it.
fn create_inside(rootfs: &Path, dir: &str, file: &str) -> Result<fs::File, RootfsError> {
    let d = rootfs.join(dir);
    let meta = fs::symlink_metadata(&d).map_err(io("stat", &d))?;
    if !meta.is_dir() {
        return Err(RootfsError::Unsupported { path: d });
    }
    let path = d.join(file);
    // A symlink, FIFO, socket or device there is replaced, not followed
    // or opened (a FIFO would block croftd for good).
    match fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => return Err(RootfsError::Unsupported { path }),
        Ok(m) if !m.is_file() => fs::remove_file(&path).map_err(io("remove", &path))?,
        _ => {}
    }
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(io("write", &path))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(RootfsError::Unsupported { path });
    }
    Ok(f)
}

/// Give a copied root filesystem its own identity: its hostname, a new
/// `/etc/machine-id` (when the system has one) and new SSH host keys
/// (when it has an SSH server; generated with the host's ssh-keygen, or
/// removed so the guest makes its own).
pub fn new_identity(rootfs: &Path, hostname: &str) -> Result<(), RootfsError> {
    set_hostname(rootfs, hostname)?;
    new_machine_identity(rootfs, hostname)
}

/// Write `hostname` into /etc/hostname and /etc/hosts' 127.0.1.1 line, as
/// a rename leaves it for the next boot.
pub fn set_hostname(rootfs: &Path, hostname: &str) -> Result<(), RootfsError> {
    use std::io::Write;
    create_inside(rootfs, "etc", "hostname")?
        .write_all(format!("{hostname}\n").as_bytes())
        .map_err(io("write", &rootfs.join("etc/hostname")))?;
    // The name resolves locally, as on a Debian install (127.0.1.1).
    let hosts = rootfs.join("etc/hosts");
    if let Some(old) = read_small_inside(rootfs, "etc", "hosts")? {
        let mut text: String = old
            .lines()
            .filter(|l| !l.starts_with("127.0.1.1"))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!("127.0.1.1 {hostname}\n"));
        create_inside(rootfs, "etc", "hosts")?
            .write_all(text.as_bytes())
            .map_err(io("write", &hosts))?;
    }
    Ok(())
}

/// A new machine-id and SSH host keys (see [`new_identity`]).
fn new_machine_identity(rootfs: &Path, hostname: &str) -> Result<(), RootfsError> {
    use std::io::Write;
    // Every VPS gets its own machine-id, also when the image leaves it empty:
    // systemd in a container may otherwise derive the same id on every VPS
    // from what the host exposes.
    let machine_id = rootfs.join("etc/machine-id");
    if fs::symlink_metadata(&machine_id).is_ok() {
        let uuid =
            fs::read_to_string("/proc/sys/kernel/random/uuid").map_err(io("read", Path::new("/proc")))?;
        let id: String = uuid.trim().chars().filter(|c| *c != '-').collect();
        create_inside(rootfs, "etc", "machine-id")?
            .write_all(format!("{id}\n").as_bytes())
            .map_err(io("write", &machine_id))?;
    }
    let ssh = rootfs.join("etc/ssh");
    if fs::symlink_metadata(&ssh).map(|m| m.is_dir()).unwrap_or(false) {
        let has_server = ssh.join("sshd_config").exists();
        for entry in fs::read_dir(&ssh).map_err(io("read", &ssh))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
                fs::remove_file(entry.path()).map_err(io("remove", &entry.path()))?;
            }
        }
        if has_server {
            new_host_keys(rootfs, hostname)?;
        }
    }
    Ok(())
}

/// The SSH host key types a VPS gets: every OpenSSH client of the last
/// decade speaks one of them. An RSA key takes over a second to make (a
/// prime search), which would be most of a Debian launch.
const HOST_KEY_TYPES: &[&str] = &["ed25519", "ecdsa"];

/// Make new SSH host keys for a VPS with the host's ssh-keygen and point
/// sshd at exactly those (so it does not warn about a missing RSA key).
/// Without ssh-keygen on the host the keys are left for the guest to make.
fn new_host_keys(rootfs: &Path, hostname: &str) -> Result<(), RootfsError> {
    use std::io::Write;
    let ssh = rootfs.join("etc/ssh");
    let config = read_inside(rootfs, "etc/ssh", "sshd_config", 256 << 10).unwrap_or_default();
    let config = String::from_utf8_lossy(&config);
    let has_dropins = config
        .lines()
        .any(|l| l.trim_start().starts_with("Include /etc/ssh/sshd_config.d/"))
        && fs::symlink_metadata(ssh.join("sshd_config.d")).is_ok_and(|m| m.is_dir());
    if !has_dropins {
        // An sshd we cannot point at a key list: make every default type.
        let _ = Command::new("ssh-keygen")
            .arg("-A")
            .arg("-f")
            .arg(rootfs)
            .output();
        return Ok(());
    }
    for kind in HOST_KEY_TYPES {
        let key = ssh.join(format!("ssh_host_{kind}_key"));
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C"])
            .arg(format!("root@{hostname}"))
            .arg("-f")
            .arg(&key)
            .output();
        if !made.is_ok_and(|o| o.status.success()) {
            return Ok(());
        }
    }
    let lines: String = HOST_KEY_TYPES
        .iter()
        .map(|kind| format!("HostKey /etc/ssh/ssh_host_{kind}_key\n"))
        .collect();
    create_inside(rootfs, "etc/ssh/sshd_config.d", "croft-host-keys.conf")?
        .write_all(format!("# Written by croft: the host keys this VPS was given.\n{lines}").as_bytes())
        .map_err(io("write", &ssh.join("sshd_config.d/croft-host-keys.conf")))
}

/// Debian packages every Debian image gets on top of minbase: a VPS-ready
/// userland (init, SSH, networking tools, certificates, a pager, locales).
pub const DEBIAN_PACKAGES: &str =
    "systemd-sysv,dbus,openssh-server,iproute2,ca-certificates,less,locales,procps";

/// Units that cannot work in a container: masked in Debian images.
const MASKED_UNITS: &[&str] = &[
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "systemd-journald-audit.socket",
    "getty@tty1.service",
];

/// Where a Debian image's packages and their fixes come from.
#[derive(Debug, Clone, Copy)]
pub struct DebianMirrors<'a> {
    /// The archive: the release and its `-updates` suite.
    pub archive: &'a str,
    /// The security archive: the release's `-security` suite.
    pub security: &'a str,
}

/// The image's APT sources (deb822, as Debian 13 installs write them):
/// the release, its point-release fixes (`-updates`) and Debian's
/// security fixes (`-security`), so `apt upgrade` inside a VPS gets them.
pub fn debian_sources(release: &str, mirrors: DebianMirrors) -> String {
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    format!(
        "Types: deb\nURIs: {archive}\nSuites: {release} {release}-updates\nComponents: main\nSigned-By: {keyring}\n\n\
         Types: deb\nURIs: {security}\nSuites: {release}-security\nComponents: main\nSigned-By: {keyring}\n",
        archive = mirrors.archive,
        security = mirrors.security,
    )
}

/// Build Debian `release` into the empty directory `root` with debootstrap
/// from `mirrors.archive`, then make it VPS-ready: APT sources with the
/// security and update suites, units that need real hardware masked, a
/// UTF-8 locale, an empty machine-id and no SSH host keys (each VPS gets
/// its own), the package cache emptied.
///
/// `progress` hears each step debootstrap reports. `cancelled` is asked a
/// few times a second: once it says yes, debootstrap and everything it
/// started are killed and the build fails with [`RootfsError::Cancelled`]
/// (`root` is left for the caller to remove, as after any failure). It is
/// polled, not tied to output, so a download that hangs is cancelled too.
pub fn debootstrap(
    release: &str,
    mirrors: DebianMirrors,
    root: &Path,
    progress: &mut dyn FnMut(&str),
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(), RootfsError> {
    use std::io::BufRead;
    let mirror = mirrors.archive;
    // stdout and stderr share one pipe so the "I: ..." lines arrive in order.
    let (reader, writer) = nix::unistd::pipe().map_err(|e| io("create a pipe for", root)(e.into()))?;
    let writer2 = writer.try_clone().map_err(io("create a pipe for", root))?;
    let mut child = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={DEBIAN_PACKAGES}"),
            release,
        ])
        .arg(root)
        .arg(mirror)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(writer2)
        // Its own process group, so a cancel reaches the dpkg and chroot
        // children too.
        .process_group(0)
        .spawn()
        .map_err(io("run debootstrap into", root))?;
    // The Command held the only write ends; the loop ends when debootstrap
    // (and anything it left running) closes them.
    let ended = std::sync::atomic::AtomicBool::new(false);
    let killed = std::sync::atomic::AtomicBool::new(false);
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    // The group's id is debootstrap's pid (process_group(0)); it is not
    // reaped (and its pid not reused) until the watcher is joined.
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !ended.load(Ordering::Relaxed) {
                if cancelled() {
                    killed.store(true, Ordering::Relaxed);
                    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        for line in std::io::BufReader::new(fs::File::from(reader)).lines() {
            let Ok(line) = line else { break };
            if let Some(info) = line.strip_prefix("I: ") {
                progress(info);
            }
            if tail.len() == 3 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        ended.store(true, Ordering::Relaxed);
    });
    let status = child.wait().map_err(io("wait for debootstrap into", root))?;
    if killed.load(Ordering::Relaxed) {
        return Err(RootfsError::Cancelled);
    }
    if !status.success() {
        return Err(RootfsError::Command {
            command: format!("debootstrap {release} {} {mirror}", root.display()),
            detail: format!("{status}: {}", Vec::from(tail).join(" / ")),
        });
    }
    // debootstrap leaves device nodes in /dev; a VPS gets a fresh /dev at
    // start, and an image holding device nodes could not be imported.
    let dev = root.join("dev");
    if dev.is_dir() {
        fs::remove_dir_all(&dev).map_err(io("empty", &dev))?;
        fs::create_dir(&dev).map_err(io("create", &dev))?;
    }
    // debootstrap writes a sources.list with the release alone.
    let _ = fs::remove_file(root.join("etc/apt/sources.list"));
    let sources = root.join("etc/apt/sources.list.d");
    fs::create_dir_all(&sources).map_err(io("create", &sources))?;
    fs::write(sources.join("debian.sources"), debian_sources(release, mirrors))
        .map_err(io("write", &sources))?;
    let units = root.join("etc/systemd/system");
    fs::create_dir_all(&units).map_err(io("create", &units))?;
    for unit in MASKED_UNITS {
        let link = units.join(unit);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link).map_err(io("mask", &link))?;
    }
    fs::write(root.join("etc/locale.gen"), "en_US.UTF-8 UTF-8\nC.UTF-8 UTF-8\n")
        .map_err(io("write", root))?;
    fs::write(root.join("etc/default/locale"), "LANG=C.UTF-8\n").map_err(io("write", root))?;
    let gen = Command::new("chroot")
        .arg(root)
        .arg("locale-gen")
        .output()
        .map_err(io("run locale-gen in", root))?;
    if !gen.status.success() {
        return Err(RootfsError::Command {
            command: "locale-gen".into(),
            detail: String::from_utf8_lossy(&gen.stderr).trim().to_string(),
        });
    }
    fs::write(root.join("etc/machine-id"), "").map_err(io("write", root))?;
    fs::write(root.join("etc/hostname"), "debian\n").map_err(io("write", root))?;
    fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    )
    .map_err(io("write", root))?;
    let ssh = root.join("etc/ssh");
    if let Ok(entries) = fs::read_dir(&ssh) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("ssh_host_") {
                fs::remove_file(e.path()).map_err(io("remove", &e.path()))?;
            }
        }
    }
    let cache = root.join("var/cache/apt/archives");
    if let Ok(entries) = fs::read_dir(&cache) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The directory `rel` below `rootfs`, walked one component at a time:
/// a symlink or non-directory anywhere is refused (the disk is the
/// tenant's), a missing directory is created with `mode`, owned by the
/// owner of the VPS's `/` (root inside).
fn dir_inside(rootfs: &Path, rel: &str, mode: u32) -> Result<PathBuf, RootfsError> {
    let top = fs::symlink_metadata(rootfs).map_err(io("stat", rootfs))?;
    let mut path = rootfs.to_path_buf();
    for part in Path::new(rel).components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(RootfsError::Unsupported { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&path).map_err(io("create", &path))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io("chmod", &path))?;
                std::os::unix::fs::lchown(&path, Some(top.uid()), Some(top.gid()))
                    .map_err(io("chown", &path))?;
            }
            Err(e) => return Err(io("stat", &path)(e)),
        }
    }
    Ok(path)
}

/// Read at most `max` bytes of the regular file `rel_dir/file` below
/// `rootfs` without following a link anywhere on the way and without
/// blocking (the disk is the tenant's: a symlink out of it, a FIFO or a
/// device must not be read). `None` if it is not such a file. The kernel
/// resolves the path (openat2, no symlinks, beneath the disk), so a
/// running VPS swapping a directory for a link meanwhile changes nothing.
fn read_inside(rootfs: &Path, rel_dir: &str, file: &str, max: u64) -> Option<Vec<u8>> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd};
    let root = fs::File::open(rootfs).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
    let fd = openat2(root.as_raw_fd(), &Path::new(rel_dir).join(file), how).ok()?;
    // SAFETY: openat2 just returned this descriptor; nothing else owns it.
    let f = unsafe { fs::File::from_raw_fd(fd) };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(max).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Write `text` to `rel_dir/file` below `rootfs` with `mode`, owned by
/// root inside, without following links.
fn write_inside(rootfs: &Path, rel_dir: &str, file: &str, text: &[u8], mode: u32) -> Result<(), RootfsError> {
    use std::io::Write;
    let top = fs::symlink_metadata(rootfs).map_err(io("stat", rootfs))?;
    dir_inside(rootfs, rel_dir, 0o755)?;
    let path = rootfs.join(rel_dir).join(file);
    let f = create_inside(rootfs, rel_dir, file)?;
    std::os::unix::fs::fchown(&f, Some(top.uid()), Some(top.gid())).map_err(io("chown", &path))?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io("chmod", &path))?;
    (&f).write_all(text).map_err(io("write", &path))
}

/// Add public `keys` to root's `~/.ssh/authorized_keys` (keys already there
/// stay, none is added twice).
pub fn add_authorized_keys(rootfs: &Path, keys: &[String]) -> Result<(), RootfsError> {
    if keys.is_empty() {
        return Ok(());
    }
    dir_inside(rootfs, "root", 0o700)?;
    dir_inside(rootfs, "root/.ssh", 0o700)?;
    let mut text = read_small_inside(rootfs, "root/.ssh", "authorized_keys")?.unwrap_or_default();
    for key in keys {
        if !text.lines().any(|l| l.trim() == key.trim()) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(key.trim());
            text.push('\n');
        }
    }
    write_inside(rootfs, "root/.ssh", "authorized_keys", text.as_bytes(), 0o600)
}

/// Set root's password hash (`$6$...`) in the disk's /etc/shadow, its
/// other fields and lines, owner and mode kept (Debian's is root:shadow
/// 0640); the last change is today.
pub fn set_root_password_hash(rootfs: &Path, hash: &str) -> Result<(), RootfsError> {
    use std::io::Write;
    let shadow = rootfs.join("etc/shadow");
    let text = read_small_inside(rootfs, "etc", "shadow")?.ok_or(RootfsError::NoRootEntry)?;
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let mut found = false;
    let new: String = text
        .lines()
        .map(|line| {
            let mut fields: Vec<String> = line.split(':').map(str::to_string).collect();
            if fields.first().is_some_and(|f| f == "root") && fields.len() >= 3 {
                found = true;
                fields[1] = hash.to_string();
                fields[2] = today.to_string();
            }
            format!("{}\n", fields.join(":"))
        })
        .collect();
    if !found {
        return Err(RootfsError::NoRootEntry);
    }
    // Written beside it with its owner and mode, then renamed over it: a
    // full disk leaves the old file, never an empty one.
    let meta = fs::symlink_metadata(&shadow).map_err(io("stat", &shadow))?;
    let next = rootfs.join("etc/.shadow.croft");
    let f = create_inside(rootfs, "etc", ".shadow.croft")?;
    let written = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()))
        .and_then(|()| f.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777)))
        .and_then(|()| (&f).write_all(new.as_bytes()))
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&next, &shadow));
    if written.is_err() {
        let _ = fs::remove_file(&next);
    }
    written.map_err(io("write", &shadow))
}

/// Take public `key` out of root's `~/.ssh/authorized_keys` (every line
/// holding it; the other lines stay as they were).
pub fn remove_authorized_key(rootfs: &Path, key: &str) -> Result<(), RootfsError> {
    let Some(text) = read_small_inside(rootfs, "root/.ssh", "authorized_keys")? else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| l.trim() != key.trim())
        .map(|l| format!("{l}\n"))
        .collect();
    write_inside(rootfs, "root/.ssh", "authorized_keys", kept.as_bytes(), 0o600)
}

/// Where a VPS keeps its user-data script and what became of it.
const USER_DATA_DIR: &str = "var/lib/croft";

/// Install a first-boot script, run once by systemd (`croft-user-data
/// .service`, cloud-init style) with its output in
/// /var/log/croft-user-data.log. The unit itself always succeeds so a
/// failing script does not mark the boot degraded; its exit status is kept
/// for `croft info` ([`user_data_status`]). Needs a systemd image.
pub fn install_user_data(rootfs: &Path, script: &[u8]) -> Result<(), RootfsError> {
    let systemd = fs::symlink_metadata(rootfs.join("etc/systemd/system"))
        .map(|m| m.is_dir())
        .unwrap_or(false);
    if !systemd {
        return Err(RootfsError::Command {
            command: "user-data".into(),
            detail: "the image has no systemd (/etc/systemd/system) to run it at first boot".into(),
        });
    }
    write_inside(rootfs, USER_DATA_DIR, "user-data", script, 0o700)?;
    let unit = "[Unit]\n\
Description=croft user-data (runs once, at first boot)\n\
After=network.target\n\
ConditionPathExists=!/var/lib/croft/user-data.status\n\
\n\
[Service]\n\
Type=oneshot\n\
RemainAfterExit=yes\n\
ExecStart=/bin/sh -c '/var/lib/croft/user-data >/var/log/croft-user-data.log 2>&1; echo $? >/var/lib/croft/user-data.status'\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n";
    write_inside(
        rootfs,
        "etc/systemd/system",
        "croft-user-data.service",
        unit.as_bytes(),
        0o644,
    )?;
    let wants = dir_inside(rootfs, "etc/systemd/system/multi-user.target.wants", 0o755)?;
    let link = wants.join("croft-user-data.service");
    if fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("../croft-user-data.service", &link).map_err(io("link", &link))?;
    }
    Ok(())
}

/// What became of the VPS's user-data script: `None` if it has none,
/// else "pending", "succeeded" or "failed with exit status N".
pub fn user_data_status(rootfs: &Path) -> Option<String> {
    read_inside(rootfs, USER_DATA_DIR, "user-data", 0)?;
    let Some(status) = read_inside(rootfs, USER_DATA_DIR, "user-data.status", 16) else {
        return Some("pending".into());
    };
    let text = String::from_utf8_lossy(&status);
    Some(match text.trim() {
        "0" => "succeeded".into(),
        code => format!("failed with exit status {code} (see /var/log/croft-user-data.log)"),
    })
}

/// Written at every start of a VPS with a network: its addresses under its
/// hostname in `/etc/hosts` (lines croft wrote before are replaced, the
/// tenant's own kept) and, unless the guest manages DNS itself (a symlinked
/// `/etc/resolv.conf`), the name servers in `/etc/resolv.conf`.
pub fn write_network_files(
    rootfs: &Path,
    hostname: &str,
    addresses: &[std::net::IpAddr],
    nameservers: &[std::net::IpAddr],
) -> Result<(), RootfsError> {
    use std::io::Write;
    const MARK: &str = "# croft";
    let etc = rootfs.join("etc");
    let owner = fs::symlink_metadata(&etc).map_err(io("stat", &etc))?;
    let chown = |f: &fs::File, path: &Path| {
        std::os::unix::fs::fchown(f, Some(owner.uid()), Some(owner.gid())).map_err(io("chown", path))
    };
    let hosts = etc.join("hosts");
    let old = read_small_inside(rootfs, "etc", "hosts")?
        .unwrap_or_else(|| "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n".into());
    let mut text: String = old
        .lines()
        .filter(|l| !l.ends_with(MARK))
        .map(|l| format!("{l}\n"))
        .collect();
    for addr in addresses {
        text.push_str(&format!("{addr} {hostname} {MARK}\n"));
    }
    let f = create_inside(rootfs, "etc", "hosts")?;
    chown(&f, &hosts)?;
    (&f).write_all(text.as_bytes()).map_err(io("write", &hosts))?;

    let resolv = etc.join("resolv.conf");
    let guest_managed = fs::symlink_metadata(&resolv)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    if !nameservers.is_empty() && !guest_managed {
        let mut text = String::from("# Written by croft at every start (croftd's `dns` setting).\n");
        for ns in nameservers {
            text.push_str(&format!("nameserver {ns}\n"));
        }
        let f = create_inside(rootfs, "etc", "resolv.conf")?;
        chown(&f, &resolv)?;
        (&f).write_all(text.as_bytes()).map_err(io("write", &resolv))?;
    }
    Ok(())
}

/// The name servers this host uses, for VPSes to use too: from
/// /etc/resolv.conf, or from systemd-resolved's upstream list when the host
/// points at its local stub (127.0.0.53 is not reachable from a VPS).
pub fn host_nameservers() -> Vec<std::net::IpAddr> {
    let parse = |path: &str| -> Vec<std::net::IpAddr> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .filter_map(|v| v.trim().parse().ok())
            .filter(|ip: &std::net::IpAddr| !ip.is_loopback())
            .collect()
    };
    let direct = parse("/etc/resolv.conf");
    if direct.is_empty() {
        parse("/run/systemd/resolve/resolv.conf")
    } else {
        direct
    }
}

/// What an image's files say it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsFacts {
    /// os-release `ID` (debian, ubuntu, alpine, ...).
    pub distro: Option<String>,
    /// os-release `VERSION_CODENAME`, else `VERSION_ID`.
    pub release: Option<String>,
    /// Debian architecture name of its binaries (amd64, arm64, ...).
    pub arch: Option<String>,
}

/// Read an image's distribution and architecture from its files. `root` is
/// untrusted: only regular files are read, never through a symlink (a
/// link to `/etc/shadow` must not make host root read the host's file).
pub fn describe(root: &Path) -> OsFacts {
    let regular = |rel: &str| -> Option<PathBuf> {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).ok()?;
        // Parents are checked too: `usr` itself may be a planted link.
        let parents_real = Path::new(rel).ancestors().skip(1).all(|a| {
            a.as_os_str().is_empty()
                || fs::symlink_metadata(root.join(a))
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
        });
        (meta.is_file() && parents_real).then_some(path)
    };
    let mut facts = OsFacts::default();
    if let Some(text) = ["etc/os-release", "usr/lib/os-release"].iter().find_map(|rel| {
        regular(rel)?;
        let (dir, file) = rel.rsplit_once('/')?;
        read_inside(root, dir, file, SMALL_FILE_MAX).map(|b| String::from_utf8_lossy(&b).into_owned())
    }) {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
        };
        facts.distro = field("ID");
        facts.release = field("VERSION_CODENAME").or_else(|| field("VERSION_ID"));
    }
    facts.arch = [
        "usr/bin/env",
        "bin/busybox",
        "usr/bin/busybox",
        "usr/bin/dash",
        "bin/sh",
    ]
    .iter()
    .find_map(|rel| regular(rel).and_then(|p| elf_arch(&p)));
    facts
}

/// The Debian name of the architecture an ELF file is built for.
fn elf_arch(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 20];
    fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    let little = head[5] == 1;
    let machine = if little {
        u16::from_le_bytes([head[18], head[19]])
    } else {
        u16::from_be_bytes([head[18], head[19]])
    };
    let is64 = head[4] == 2;
    Some(
        match (machine, is64) {
            (62, _) => "amd64",
            (3, _) => "i386",
            (183, _) => "arm64",
            (40, _) => "armhf",
            (243, true) => "riscv64",
            (21, true) if little => "ppc64el",
            (22, _) => "s390x",
            _ => return Some(format!("elf-machine-{machine}")),
        }
        .to_string(),
    )
}

/// The Debian name of the architecture croft runs on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "riscv64" => "riscv64",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_gets_its_own_stop_signal() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sbin")).unwrap();
        assert_eq!(stop_signal_for(dir.path(), "SIGTERM"), "SIGTERM");
        std::os::unix::fs::symlink("/lib/systemd/systemd", dir.path().join("sbin/init")).unwrap();
        assert_eq!(stop_signal_for(dir.path(), "SIGTERM"), "SIGRTMIN+3");
    }

    #[test]
    fn new_identity_replaces_hostname_and_machine_id_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/machine-id"), "0123456789abcdef0123456789abcdef\n").unwrap();
        let outside = dir.path().join("outside");
        fs::write(&outside, "host file").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc/hostname")).unwrap();
        new_identity(root, "copy1").unwrap();
        assert_eq!(fs::read_to_string(root.join("etc/hostname")).unwrap(), "copy1\n");
        assert_eq!(
            fs::read_to_string(&outside).unwrap(),
            "host file",
            "followed a planted link"
        );
        let id = fs::read_to_string(root.join("etc/machine-id")).unwrap();
        assert_eq!(id.trim().len(), 32);
        assert_ne!(id, "0123456789abcdef0123456789abcdef\n");
    }

    #[test]
    fn ids_outside_the_range_are_refused() {
        assert!(matches!(
            shift(Path::new("/x"), 70_000, 0),
            Err(RootfsError::IdOutOfRange { .. })
        ));
        assert_eq!(shift(Path::new("/x"), 5, 100_000).unwrap(), 100_005);
    }

    #[test]
    fn describe_reads_os_release_and_elf_but_never_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::write(
            root.join("usr/lib/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("../usr/lib/os-release", root.join("etc/os-release")).unwrap();
        fs::copy("/bin/true", root.join("usr/bin/env")).unwrap();
        let facts = describe(root);
        assert_eq!(facts.distro.as_deref(), Some("debian"));
        assert_eq!(facts.release.as_deref(), Some("bookworm"));
        assert_eq!(facts.arch.as_deref(), Some(host_arch()));

        // A planted link to a host file is not followed.
        let evil = tempfile::tempdir().unwrap();
        let secret = evil.path().join("secret");
        fs::write(&secret, "ID=host-secret\n").unwrap();
        let root2 = tempfile::tempdir().unwrap();
        fs::create_dir_all(root2.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(&secret, root2.path().join("etc/os-release")).unwrap();
        std::os::unix::fs::symlink(evil.path(), root2.path().join("usr")).unwrap();
        fs::create_dir_all(evil.path().join("lib")).unwrap();
        fs::write(evil.path().join("lib/os-release"), "ID=host-secret\n").unwrap();
        assert_eq!(describe(root2.path()), OsFacts::default());
    }

    /// A tenant's /etc/hosts that is a FIFO would block croftd for good
    /// (holding the VPS's lock); a sparse one of gigabytes would have it
    /// read them all into memory.
    #[test]
    fn network_files_never_block_on_a_fifo_or_read_a_huge_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        let hosts = root.join("etc/hosts");
        nix::unistd::mkfifo(&hosts, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let a: Vec<std::net::IpAddr> = vec!["10.87.0.2".parse().unwrap()];
        write_network_files(root, "web1", &a, &[]).unwrap();
        assert!(fs::symlink_metadata(&hosts).unwrap().is_file());
        assert!(fs::read_to_string(&hosts)
            .unwrap()
            .contains("10.87.0.2 web1 # croft"));
        new_identity(root, "web2").unwrap();
        // Sparse: no disk, and far more than croft reads.
        fs::OpenOptions::new()
            .write(true)
            .open(&hosts)
            .unwrap()
            .set_len(SMALL_FILE_MAX * 1024)
            .unwrap();
        let err = write_network_files(root, "web1", &a, &[]).unwrap_err();
        assert!(matches!(err, RootfsError::TooLarge { .. }), "{err}");
        assert!(new_identity(root, "web2").is_err());
    }

    #[test]
    fn network_files_replace_croft_lines_keep_the_tenants_and_respect_a_resolv_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n192.0.2.9 mine\n").unwrap();
        let a: Vec<std::net::IpAddr> = vec!["10.87.0.2".parse().unwrap()];
        let ns: Vec<std::net::IpAddr> = vec!["192.0.2.53".parse().unwrap()];
        write_network_files(root, "web1", &a, &ns).unwrap();
        let b: Vec<std::net::IpAddr> = vec!["10.87.0.3".parse().unwrap(), "fd63::3".parse().unwrap()];
        write_network_files(root, "web1", &b, &ns).unwrap();
        let hosts = fs::read_to_string(root.join("etc/hosts")).unwrap();
        assert_eq!(
            hosts,
            "127.0.0.1 localhost\n192.0.2.9 mine\n10.87.0.3 web1 # croft\nfd63::3 web1 # croft\n"
        );
        assert!(fs::read_to_string(root.join("etc/resolv.conf"))
            .unwrap()
            .contains("nameserver 192.0.2.53\n"));
        fs::remove_file(root.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            root.join("etc/resolv.conf"),
        )
        .unwrap();
        write_network_files(root, "web1", &b, &ns).unwrap();
        assert!(fs::symlink_metadata(root.join("etc/resolv.conf"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn roots_password_hash_replaces_its_shadow_field_keeping_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        let shadow = root.join("etc/shadow");
        fs::write(&shadow, "root:*:19000:0:99999:7:::\nalice:!:19000::::::\n").unwrap();
        fs::set_permissions(&shadow, fs::Permissions::from_mode(0o640)).unwrap();
        set_root_password_hash(root, "$6$salt$hash").unwrap();
        let text = fs::read_to_string(&shadow).unwrap();
        let root_line: Vec<&str> = text.lines().next().unwrap().split(':').collect();
        assert_eq!(root_line[1], "$6$salt$hash");
        assert_ne!(root_line[2], "19000", "the last change is today");
        assert!(text.contains("alice:!:19000::::::\n"), "{text}");
        assert_eq!(fs::metadata(&shadow).unwrap().mode() & 0o7777, 0o640);
        assert!(!root.join("etc/.shadow.croft").exists());
        fs::write(&shadow, "alice:!:19000::::::\n").unwrap();
        assert!(matches!(
            set_root_password_hash(root, "$6$x$y"),
            Err(RootfsError::NoRootEntry)
        ));
        assert_eq!(fs::read_to_string(&shadow).unwrap(), "alice:!:19000::::::\n");
    }

    #[test]
    fn authorized_keys_and_user_data_are_written_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5 me@host"
            .to_string();
        add_authorized_keys(root, std::slice::from_ref(&key)).unwrap();
        add_authorized_keys(root, std::slice::from_ref(&key)).unwrap();
        let ak = root.join("root/.ssh/authorized_keys");
        assert_eq!(fs::read_to_string(&ak).unwrap(), format!("{key}\n"));
        assert_eq!(fs::metadata(&ak).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(root.join("root/.ssh")).unwrap().permissions().mode() & 0o777,
            0o700
        );

        assert_eq!(user_data_status(root), None);
        install_user_data(root, b"#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(user_data_status(root).as_deref(), Some("pending"));
        assert!(fs::symlink_metadata(
            root.join("etc/systemd/system/multi-user.target.wants/croft-user-data.service")
        )
        .unwrap()
        .file_type()
        .is_symlink());
        fs::write(root.join("var/lib/croft/user-data.status"), "3\n").unwrap();
        assert!(user_data_status(root).unwrap().contains("exit status 3"));
        // The directory swapped for a link to a host directory holding
        // files of those names (a running VPS may do that at any moment):
        // nothing is read through it.
        let host_dir = tempfile::tempdir().unwrap();
        fs::write(host_dir.path().join("user-data"), "x").unwrap();
        fs::write(host_dir.path().join("user-data.status"), "7\n").unwrap();
        fs::rename(root.join("var/lib/croft"), root.join("var/lib/croft-moved")).unwrap();
        std::os::unix::fs::symlink(host_dir.path(), root.join("var/lib/croft")).unwrap();
        assert_eq!(user_data_status(root), None);

        // A planted link (root -> a host directory) is refused.
        let evil = tempfile::tempdir().unwrap();
        let host_dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host_dir.path(), evil.path().join("root")).unwrap();
        assert!(add_authorized_keys(evil.path(), &[key]).is_err());
        assert!(!host_dir.path().join(".ssh").exists());
        // No systemd: user-data is refused with a clear error.
        let plain = tempfile::tempdir().unwrap();
        assert!(install_user_data(plain.path(), b"#!/bin/sh\n")
            .unwrap_err()
            .to_string()
            .contains("systemd"));
    }
}
