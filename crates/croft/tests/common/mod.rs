//! Test harness for the privileged end-to-end tests: one real croftd per
//! test, in a network namespace of its own (`ip netns add`, kept across
//! daemon restarts, like a host's network), with its own state and run
//! directories and its own cgroup prefix, torn down on drop even when the
//! test fails.
#![allow(dead_code)]

use croft_api::{ErrorBody, HostDetails, Instance};

// The Prometheus text parser of the tier-2 tests.
#[path = "../../../croftd/tests/sim/prometheus.rs"]
pub mod prometheus;
use serde::de::DeserializeOwned;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_croft"))
        .parent()
        .expect("target dir")
        .to_path_buf()
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the end-to-end tests need root (namespaces, cgroups); run them with `make test` / .ci/run as root"
    );
}

pub struct Host {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub prefix: String,
    pub config: PathBuf,
    daemon: Option<Child>,
    /// The named network namespace the daemon (and so every VPS) runs in.
    pub netns: String,
}

impl Host {
    pub fn new() -> Host {
        Host::with_config("")
    }

    /// A daemon with extra TOML lines in its configuration.
    pub fn with_config(extra: &str) -> Host {
        require_root();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/croft-test-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = format!("croft-test-{tag}");
        let config = dir.join("croftd.toml");
        // A small loop-file btrfs pool per test, unless the test sets one.
        let storage = if extra.contains("storage_") {
            ""
        } else {
            "storage_size = \"512MiB\"\n"
        };
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{d}/state\"\nrun_dir = \"{d}/run\"\ncgroup_prefix = \"{prefix}\"\nlog_level = \"info\"\nraise_host_limits = false\n{storage}{extra}\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let socket = dir.join("run/croftd.sock");
        let netns = format!("croft-test-{tag}");
        let _ = Command::new("ip")
            .args(["netns", "del", &netns])
            .stderr(Stdio::null())
            .status();
        let made = Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .expect("run ip netns");
        assert!(made.success(), "ip netns add {netns} failed");
        let up = Command::new("ip")
            .args(["-n", &netns, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success());
        let mut host = Host {
            dir,
            socket,
            prefix,
            config,
            daemon: None,
            netns,
        };
        host.start_daemon();
        host
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The pool's mount point (btrfs on a loop file unless configured).
    pub fn pool_dir(&self) -> PathBuf {
        self.state_dir().join("storage-pools/default")
    }

    /// Where everything of VPS `name` lives (its rootfs volume inside).
    pub fn instance_dir(&self, name: &str) -> PathBuf {
        self.pool_dir().join("containers").join(name)
    }

    pub fn start_daemon(&mut self) {
        self.start_daemon_with_env(&[]);
    }

    /// Wait for a daemon that is expected to die on its own (a crash point).
    pub fn wait_daemon_gone(&mut self) {
        let mut child = self.daemon.take().expect("daemon running");
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "croftd did not die; log:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start the daemon with extra environment variables.
    pub fn start_daemon_with_env(&mut self, env: &[(&str, &str)]) {
        self.start_daemon_inheriting(env, None)
    }

    /// Start the daemon with `fd` open (not close-on-exec) at descriptor
    /// 9, as a careless shell or service manager would leave it.
    pub fn start_daemon_inheriting(&mut self, env: &[(&str, &str)], fd: Option<std::os::fd::RawFd>) {
        self.spawn_daemon(env, fd, None)
    }

    /// Start the daemon in cgroup `procs`' directory (a `cgroup.procs`
    /// file), as when restarted from another shell or by systemd.
    pub fn start_daemon_in_cgroup(&mut self, procs: &Path) {
        self.spawn_daemon(&[], None, Some(procs))
    }

    fn spawn_daemon(&mut self, env: &[(&str, &str)], fd: Option<std::os::fd::RawFd>, cgroup: Option<&Path>) {
        assert!(self.daemon.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("croftd.log"))
            .unwrap();
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg(bin_dir().join("croftd"))
            .arg("--config")
            .arg(&self.config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(fd) = fd {
            use std::os::unix::process::CommandExt;
            // SAFETY: dup2 is async-signal-safe; the new descriptor has no
            // close-on-exec flag, so croftd inherits it.
            unsafe {
                command.pre_exec(move || {
                    if libc::dup2(fd, 9) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        if let Some(procs) = cgroup {
            join_cgroup_on_exec(&mut command, procs);
        }
        let child = command.spawn().expect("spawn croftd");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = self.try_api_raw("GET", "/1.0", None) {
                return;
            }
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "croftd exited at start with {status}; log:\n{}",
                    self.daemon_log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "croftd did not come up; log:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the daemon, as a crash would.
    pub fn kill_daemon(&mut self) {
        let mut child = self.daemon.take().expect("daemon running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Kill the lxcfs this test's croftd started and detach its mount (as a
    /// host reboot would, or at the end of the test).
    pub fn stop_lxcfs(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.run_dir().join("lxcfs.pid")) {
            if let Ok(pid) = pid.trim().parse() {
                kill_pid(pid);
            }
        }
        let lxcfs = self.run_dir().join("lxcfs");
        if is_mount_point(&lxcfs) {
            let _ = nix::mount::umount2(&lxcfs, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    /// Run a shell script on the "host": in the daemon's network namespace.
    pub fn host_sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(["sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// The PID of the running daemon.
    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon running").id()
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("croftd.log")).unwrap_or_default()
    }

    pub fn croft(&self, args: &[&str]) -> Output {
        Command::new(bin_dir().join("croft"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run croft")
    }

    /// Start croft in the background (its output collected), for a
    /// command to interrupt.
    pub fn croft_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(bin_dir().join("croft"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run croft")
    }

    /// Run croft, assert success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.croft(args);
        assert!(
            out.status.success(),
            "croft {args:?} failed ({}): {}{}\ndaemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run croft, assert a non-zero exit with exactly one line on stderr
    /// and return that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.croft(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "croft {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "croft {args:?}: expected a one-line error, got {stderr:?}"
        );
        assert!(
            stderr.starts_with("croft: error: ") || stderr.starts_with("error: "),
            "{stderr:?}"
        );
        stderr.trim_end().to_string()
    }

    /// `croft exec NAME -- sh -c SCRIPT`.
    pub fn sh(&self, name: &str, script: &str) -> Output {
        self.croft(&["exec", name, "--", "sh", "-c", script])
    }

    /// Run a shell script in the VPS, assert success, return stdout.
    pub fn sh_ok(&self, name: &str, script: &str) -> String {
        let out = self.sh(name, script);
        assert!(
            out.status.success(),
            "exec {script:?} in {name} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run croft with `args` (a command with `--format json`), assert
    /// success and decode what it printed.
    pub fn ok_json<T: DeserializeOwned>(&self, args: &[&str]) -> T {
        decode(self.ok(args))
    }

    /// VPS `name` as `croft info --format json` shows it.
    pub fn info(&self, name: &str) -> Instance {
        self.ok_json(&["info", name, "--format", "json"])
    }

    /// Every VPS, as `croft list --format json` shows them.
    pub fn list(&self) -> Vec<Instance> {
        self.ok_json(&["list", "--format", "json"])
    }

    /// VPS `name` as `croft list --format json` shows it.
    pub fn listed(&self, name: &str) -> Instance {
        let list = self.list();
        list.iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name} not listed: {list:?}"))
            .clone()
    }

    /// The typed API client on this daemon's socket (what the CLI uses).
    pub fn client(&self) -> croft_client::Client {
        croft_client::Client::new(&self.socket).expect("a client")
    }

    /// How VPS `name` sits on the host (`GET /1.0/instances/{name}/host`).
    pub fn details(&self, name: &str) -> HostDetails {
        self.client()
            .host_details(name)
            .unwrap_or_else(|e| panic!("details of {name}: {e}"))
    }

    /// The host pid of the init of VPS `name`, which must be running.
    pub fn init_pid(&self, name: &str) -> i32 {
        let details = self.details(name);
        details
            .init_pid
            .unwrap_or_else(|| panic!("VPS {name} is not running: no init pid in {details:?}"))
    }

    /// The first host uid of VPS `name`'s id range.
    pub fn uid_base(&self, name: &str) -> u32 {
        self.details(name).uid_base
    }

    /// A raw HTTP request to the API; returns the status and the body.
    pub fn try_api_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: croftd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // A server that refuses a body may close before reading it all;
        // its answer is still there to read.
        if let Err(e) = s.write_all(req.as_bytes()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe && e.kind() != std::io::ErrorKind::ConnectionReset {
                return Err(e);
            }
        }
        // Read until EOF; a server that refused the body may reset the
        // connection after answering, which still leaves its answer here.
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4)
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let payload = &raw[split..];
        let payload = if head.contains("\r\ntransfer-encoding: chunked") {
            dechunk(payload)
        } else {
            payload.to_vec()
        };
        Ok((status, payload))
    }

    /// A raw HTTP request to the API; returns the status and the body.
    pub fn api_raw(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Vec<u8>) {
        self.try_api_raw(method, path, body).expect("API reachable")
    }

    /// An API request that must succeed (2xx), its answer decoded as `T`.
    pub fn api_ok<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&str>) -> T {
        decode(self.api_ok_bytes(method, path, body))
    }

    /// An API request that must succeed (2xx) and whose answer, if any, is
    /// not needed (a 204).
    pub fn api_ok_empty(&self, method: &str, path: &str, body: Option<&str>) {
        self.api_ok_bytes(method, path, body);
    }

    /// An API request that must succeed (2xx); returns the body as sent.
    pub fn api_ok_bytes(&self, method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
        let (status, reply) = self.api_raw(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: expected a success, got {status}: {}",
            text(&reply)
        );
        reply
    }

    /// An API request that must fail (4xx or 5xx) with a JSON error body;
    /// returns the status and that body.
    pub fn api_err(&self, method: &str, path: &str, body: Option<&str>) -> (u16, ErrorBody) {
        let (status, reply) = self.api_raw(method, path, body);
        assert!(
            status >= 400,
            "{method} {path}: expected an error, got {status}: {}",
            text(&reply)
        );
        (status, decode(&reply))
    }

    /// Directories of this daemon's cgroup tree in every hierarchy.
    pub fn cgroup_prefix_dirs(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        find_dirs_named(Path::new("/sys/fs/cgroup"), &self.prefix, 6, &mut found);
        found
    }

    /// The VPS's cgroup directory in hierarchy `controller` (v1 layout).
    pub fn vps_cgroup(&self, controller: &str, name: &str) -> PathBuf {
        self.cgroup_prefix_dirs()
            .into_iter()
            .find(|d| d.starts_with(Path::new("/sys/fs/cgroup").join(controller)))
            .unwrap_or_else(|| panic!("no {controller} cgroup for {}", self.prefix))
            .join(name)
    }

    /// Nothing of `name` is left: no row, no files, no cgroup, no mounts.
    pub fn assert_no_trace_of(&self, name: &str) {
        let (code, _) = self.api_raw("GET", &format!("/1.0/instances/{name}"), None);
        assert_eq!(code, 404, "VPS {name} still known to croftd");
        assert!(!self.instance_dir(name).exists(), "files of {name} left behind");
        assert!(
            !self.run_dir().join("vps").join(name).exists(),
            "run dir of {name} left behind"
        );
        for d in self.cgroup_prefix_dirs() {
            assert!(
                !d.join(name).exists(),
                "cgroup {} left behind",
                d.join(name).display()
            );
        }
        // No mount of the VPS is left (its pool's own mount stays).
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for place in [self.instance_dir(name), self.run_dir().join("vps").join(name)] {
            assert!(
                !mounts.contains(&*place.to_string_lossy()),
                "mounts under {} left behind",
                place.display()
            );
        }
    }

    /// Wait until `pred` holds (polling), or panic with `what`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !pred() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; daemon log:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Decode JSON text (what croft printed, an API answer) as `T`, or panic
/// showing the text.
pub fn decode<T: DeserializeOwned>(json: impl AsRef<[u8]>) -> T {
    let json = json.as_ref();
    serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("not a {}: {e}: {}", std::any::type_name::<T>(), text(json)))
}

/// Bytes as text, for messages.
pub fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The body of a chunked HTTP/1.1 answer (`SIZE\r\nDATA\r\n`..., `0\r\n\r\n`).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..eol]);
        let size = size.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            break;
        };
        let data = &raw[eol + 2..];
        if size == 0 || data.len() < size {
            body.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        body.extend_from_slice(&data[..size]);
        raw = data[size..].strip_prefix(b"\r\n").unwrap_or(&data[size..]);
    }
    body
}

fn find_dirs_named(dir: &Path, name: &str, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let p = e.path();
        if e.file_name().to_string_lossy() == name {
            out.push(p);
        } else if depth > 0 {
            find_dirs_named(&p, name, depth - 1, out);
        }
    }
}

pub fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

impl Drop for Host {
    fn drop(&mut self) {
        // Processes we started: every VPS (through its cgroup) and every
        // supervisor (through its pid file).
        for d in self.cgroup_prefix_dirs() {
            let mut procs = Vec::new();
            collect_procs(&d, &mut procs);
            for p in procs {
                kill_pid(p);
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.run_dir().join("vps")) {
            for e in entries.flatten() {
                if let Ok(pid) = std::fs::read_to_string(e.path().join("supervisor.pid")) {
                    if let Ok(pid) = pid.trim().parse() {
                        kill_pid(pid);
                    }
                }
            }
        }
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        // cgroups empty out asynchronously after a kill.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let dirs = self.cgroup_prefix_dirs();
            let mut all_gone = true;
            for d in &dirs {
                all_gone &= remove_cgroup_tree(d);
            }
            if all_gone || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop_lxcfs();
        // The pool: unmounting it also frees its loop device (autoclear).
        let pool = self.pool_dir();
        if is_mount_point(&pool) {
            let _ = nix::mount::umount2(&pool, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

/// Have `command`'s process join the cgroup whose `cgroup.procs` file is
/// `procs` before it execs.
pub fn join_cgroup_on_exec(command: &mut Command, procs: &Path) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    let procs = std::ffi::CString::new(procs.as_os_str().as_bytes()).unwrap();
    // SAFETY: open, write and close are async-signal-safe and use only this
    // C string, made before the fork; "0" moves the writing process.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
}

/// A cgroup a test makes for itself (named `croft-test-*`, which the
/// suite's leak check looks for), removed on drop once its processes are
/// gone.
pub struct ScratchCgroup(pub PathBuf);

impl ScratchCgroup {
    /// Make `<parent>/croft-test-<pid>-<what>`.
    pub fn new(parent: &Path, what: &str) -> ScratchCgroup {
        let dir = parent.join(format!("croft-test-{}-{what}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        ScratchCgroup(dir)
    }
}

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn is_mount_point(path: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*path.to_string_lossy()))
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_procs(&e.path(), out);
            }
        }
    }
}

fn remove_cgroup_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok() || !dir.exists()
}

/// Copy a host binary and the shared libraries it links into a VPS rootfs.
pub fn install_host_binary(rootfs: &std::path::Path, binary: &std::path::Path, dest: &str) {
    let ldd = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .expect("ldd");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(lib) = path {
            let target = rootfs.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(lib, &target).unwrap();
        }
    }
    let target = rootfs.join(dest.trim_start_matches('/'));
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(binary, target).unwrap();
}

pub mod attack;
pub mod net;

/// The API fuzzer, which croftd's tier-2 tests run on the simulator and
/// `api_fuzz.rs` here on real VPSes; its seeded generator serves the other
/// randomized tests too.
#[path = "../../../croftd/tests/fuzz/mod.rs"]
pub mod fuzz;

/// Run `command` with a pty as its terminal, type `input` (a chunk per
/// line, 0.4 s apart) and collect everything it prints: its exit code
/// and its output.
pub fn run_in_pty(mut command: Command, input: &[u8], timeout: Duration) -> (Option<i32>, String) {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = command
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let fd = master.as_raw_fd();
    let mut writer = master.try_clone().unwrap();
    let input = input.to_vec();
    std::thread::spawn(move || {
        for chunk in input.split_inclusive(|b| *b == b'\r') {
            std::thread::sleep(Duration::from_millis(400));
            let _ = std::io::Write::write_all(&mut writer, chunk);
        }
    });
    let deadline = std::time::Instant::now() + timeout;
    let mut text = Vec::new();
    let mut code = None;
    loop {
        let mut fds = [nix::poll::PollFd::new(
            // SAFETY: `master` outlives this borrow.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
        if fds[0]
            .revents()
            .is_some_and(|r| r.contains(nix::poll::PollFlags::POLLIN))
        {
            let mut buf = [0u8; 4096];
            match master.read(&mut buf) {
                Ok(n) if n > 0 => text.extend_from_slice(&buf[..n]),
                _ => {}
            }
        }
        if code.is_none() {
            if let Some(status) = child.try_wait().unwrap() {
                code = status.code();
                // Drain what is left, then stop.
                std::thread::sleep(Duration::from_millis(100));
                let mut fds = [nix::poll::PollFd::new(
                    // SAFETY: as above.
                    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                    nix::poll::PollFlags::POLLIN,
                )];
                if nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0 {
                    let mut buf = [0u8; 65536];
                    if let Ok(n) = master.read(&mut buf) {
                        text.extend_from_slice(&buf[..n]);
                    }
                }
                break;
            }
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
    }
    let _ = child.wait();
    (code, String::from_utf8_lossy(&text).into_owned())
}
