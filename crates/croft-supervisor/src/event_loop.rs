//! The supervisor's poll loop and the state of one running VPS.

use crate::error_chain;
use croft_host::proto::{Conn, ExitRecord, Reply, Request};
use croft_host::runtime::{self, exec, RuntimeError, SeccompProgram, Started};
use croft_host::spec::{parse_signal, RunDir, VpsSpec};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a start waits for a previous run's namespaces to be freed
/// when the VPS's budget of them is used up.
const NAMESPACE_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// A VPS whose init the OOM killer kills is restarted at most this many
/// times within [`OOM_RESTART_WINDOW`]; once more, and it stays down.
const OOM_RESTARTS_MAX: usize = 3;
const OOM_RESTART_WINDOW: Duration = Duration::from_secs(600);

/// Console output kept on disk while nobody is attached; the log is
/// rotated once to `console.log.1` past this size.
const CONSOLE_LOG_MAX: u64 = 1 << 20;

/// How fast the console log takes what a VPS writes to its console while
/// nobody is attached, in bytes per second (a fast serial line), after a
/// burst of [`CONSOLE_LOG_BURST`]. Beyond it the VPS's console writes wait,
/// as on a real console, instead of costing the supervisor CPU that no
/// limit of the VPS covers (a flood cost ~35% of a CPU).
const CONSOLE_LOG_RATE: u64 = 256 << 10;
const CONSOLE_LOG_BURST: u64 = 1 << 20;

/// A token bucket of console log bytes.
struct ConsoleBudget {
    bytes: u64,
    at: Instant,
}

impl ConsoleBudget {
    fn new() -> ConsoleBudget {
        ConsoleBudget {
            bytes: CONSOLE_LOG_BURST,
            at: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let earned = self.at.elapsed().as_secs_f64() * CONSOLE_LOG_RATE as f64;
        if earned >= 1.0 {
            self.bytes = (self.bytes + earned as u64).min(CONSOLE_LOG_BURST);
            self.at = Instant::now();
        }
    }

    /// How long until a whole read's worth is earned; `None` while there
    /// is one. (Reading whatever few bytes each turn of the loop earned
    /// would spin the loop on tiny reads.)
    fn wait(&self) -> Option<Duration> {
        let missing = (CONSOLE_READ as u64).saturating_sub(self.bytes);
        (missing > 0).then(|| Duration::from_secs_f64(missing as f64 / CONSOLE_LOG_RATE as f64))
    }
}

/// The most read from the console at once.
const CONSOLE_READ: usize = 8192;

/// How often a pending stop signal is sent again.
const STOP_SIGNAL_REPEAT: Duration = Duration::from_millis(500);

#[derive(Debug)]
enum ConnKind {
    /// Accepted, request not read yet.
    New,
    /// Waiting for this exec helper to exit.
    Exec(Pid),
    /// Holds the console; closing it detaches.
    Console,
    /// Waiting for the VPS to go down.
    Stop,
    Watch,
}

struct Client {
    conn: Conn,
    kind: ConnKind,
}

pub struct Supervisor {
    spec: VpsSpec,
    seccomp: SeccompProgram,
    listener: OwnedFd,
    signals: SignalFd,
    vps: Option<Started>,
    boots: u32,
    started_at: u64,
    stop_requested: bool,
    kill_deadline: Option<Instant>,
    /// When the stop signal was last sent (it is repeated, not flooded:
    /// init's console output wakes the loop far more often).
    last_stop_signal: Option<Instant>,
    clients: Vec<Client>,
    console_log: Option<fs::File>,
    console_attached: bool,
    console_budget: ConsoleBudget,
    /// Exit statuses of exec helpers that ended before their client was
    /// found (kept for a final flush).
    finished_execs: HashMap<i32, i32>,
    /// The VPS cgroup's OOM kill count when init last started.
    oom_kills_at_boot: Option<u64>,
    /// When the OOM killer last killed init (restarts are limited).
    oom_restarts: Vec<Instant>,
}

impl Supervisor {
    pub fn new(spec: VpsSpec, seccomp: SeccompProgram) -> Result<Supervisor, String> {
        let run = RunDir(&spec.run_dir);
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGPIPE,
        ] {
            mask.add(s);
        }
        mask.thread_block().map_err(|e| format!("block signals: {e}"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| format!("signalfd: {e}"))?;

        let sock_path = run.socket();
        let _ = fs::remove_file(&sock_path);
        let listener = socket::socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(|e| format!("socket: {e}"))?;
        let addr =
            UnixAddr::new(&sock_path).map_err(|e| format!("socket path {}: {e}", sock_path.display()))?;
        socket::bind(listener.as_raw_fd(), &addr)
            .map_err(|e| format!("bind {}: {e}", sock_path.display()))?;
        fs::set_permissions(&sock_path, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod socket: {e}"))?;
        socket::listen(&listener, socket::Backlog::new(64).expect("valid backlog"))
            .map_err(|e| format!("listen: {e}"))?;
        let _ = fs::remove_file(run.exit_record());
        fs::write(run.pid_file(), format!("{}\n", std::process::id()))
            .map_err(|e| format!("pid file: {e}"))?;
        let console_log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(run.console_log())
            .ok();
        Ok(Supervisor {
            spec,
            seccomp,
            listener,
            signals,
            vps: None,
            boots: 0,
            started_at: 0,
            stop_requested: false,
            kill_deadline: None,
            last_stop_signal: None,
            clients: Vec::new(),
            console_log,
            console_attached: false,
            console_budget: ConsoleBudget::new(),
            oom_kills_at_boot: None,
            oom_restarts: Vec::new(),
            finished_execs: HashMap::new(),
        })
    }

    pub fn init_pid(&self) -> i32 {
        self.vps.as_ref().map(|v| v.init_pid.as_raw()).unwrap_or(0)
    }

    /// Start (or restart after a reboot) the VPS.
    pub fn boot(&mut self) -> Result<(), RuntimeError> {
        // Re-read the spec on every boot: croftd may have changed it.
        if let Ok(bytes) = fs::read(RunDir(&self.spec.run_dir).spec()) {
            if let Ok(spec) = serde_json::from_slice::<VpsSpec>(&bytes) {
                self.spec = spec;
            }
        }
        // The namespaces of the VPS's previous run (a reboot, a restart)
        // are freed by the kernel in the background after its processes
        // die; until then they still count against the VPS's budget.
        let deadline = Instant::now() + NAMESPACE_RELEASE_WAIT;
        let started = loop {
            match runtime::start(&self.spec, &self.seccomp) {
                Err(RuntimeError::NamespaceLimit) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                result => break result?,
            }
        };
        self.vps = Some(started);
        self.oom_kills_at_boot = croft_host::cgroup::oom_kills_in(&self.spec.cgroup_dirs);
        self.boots += 1;
        self.started_at = now();
        self.console_attached = false;
        Ok(())
    }

    /// Remove the socket and pid file (the run dir itself is croftd's).
    pub fn cleanup(&self) {
        let run = RunDir(&self.spec.run_dir);
        let _ = fs::remove_file(run.socket());
        let _ = fs::remove_file(run.pid_file());
    }

    pub fn run(mut self) {
        loop {
            let exit = self.poll_once();
            if let Some(record) = exit {
                self.finish(record);
                return;
            }
        }
    }

    /// One round of the loop; returns how the VPS ended once it has.
    fn poll_once(&mut self) -> Option<ExitRecord> {
        self.console_budget.refill();
        // Unattached, the console is read only while the log's budget lasts.
        let budget_wait = (!self.console_attached && self.vps.is_some())
            .then(|| self.console_budget.wait())
            .flatten();
        let console_fd = if self.console_attached || budget_wait.is_some() {
            None
        } else {
            self.vps.as_ref().map(|v| v.console.as_fd())
        };
        let mut fds = vec![
            PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
        ];
        let console_index = console_fd.map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        });
        let first_client = fds.len();
        for c in &self.clients {
            fds.push(PollFd::new(c.conn.as_fd(), PollFlags::POLLIN));
        }
        // While a stop is pending, wake up to repeat the stop signal (and,
        // at the deadline, to kill).
        let wake = self.kill_deadline.map(|d| {
            d.saturating_duration_since(Instant::now())
                .min(STOP_SIGNAL_REPEAT)
        });
        let timeout = match [wake, budget_wait].into_iter().flatten().min() {
            Some(wait) => PollTimeout::try_from(wait.as_millis() as i32 + 1).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => return None,
            Err(e) => {
                eprintln!("croft-supervisor: poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
                return None;
            }
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let listener_ready = ready(&fds[0]);
        let signals_ready = ready(&fds[1]);
        let console_ready = console_index.is_some_and(|i| ready(&fds[i]));
        let ready_clients: Vec<usize> = (0..self.clients.len())
            .filter(|i| ready(&fds[first_client + i]))
            .collect();
        drop(fds);

        if console_ready {
            self.drain_console();
        }
        // Clients are handled from the highest index down so removals do
        // not shift the ones still to handle.
        for i in ready_clients.into_iter().rev() {
            self.handle_client(i);
        }
        if listener_ready {
            self.accept_clients();
        }
        if let Some(d) = self.kill_deadline {
            if Instant::now() >= d {
                self.kill_init();
                self.kill_deadline = None;
            } else if self
                .last_stop_signal
                .is_none_or(|t| t.elapsed() >= STOP_SIGNAL_REPEAT)
            {
                self.send_stop_signal();
            }
        }
        if signals_ready {
            return self.handle_signals();
        }
        None
    }

    fn accept_clients(&mut self) {
        loop {
            match socket::accept4(self.listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                Ok(fd) => {
                    // SAFETY: accept4 returned a new descriptor that we own.
                    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                    self.clients.push(Client {
                        conn: Conn::from_fd(fd),
                        kind: ConnKind::New,
                    });
                }
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    eprintln!("croft-supervisor: accept: {e}");
                    return;
                }
            }
        }
    }

    fn handle_client(&mut self, i: usize) {
        match self.clients[i].kind {
            ConnKind::New => match self.clients[i].conn.recv::<Request>() {
                Ok((req, fds)) => self.handle_request(i, req, fds),
                Err(_) => {
                    self.clients.swap_remove(i);
                }
            },
            // Any traffic or hangup on an established connection means the
            // client went away (they send nothing after their request).
            ConnKind::Console => {
                self.clients.swap_remove(i);
                self.console_attached = false;
            }
            ConnKind::Exec(helper) => match self.clients[i].conn.recv::<Request>() {
                Ok((Request::Signal { signal }, _)) if (1..=libc::SIGRTMAX()).contains(&signal) => {
                    signal_exec(helper, signal);
                }
                Ok(_) => {}
                // The caller is gone: do not leave its command running.
                Err(_) => {
                    signal_exec(helper, libc::SIGKILL);
                    self.clients.swap_remove(i);
                }
            },
            ConnKind::Stop | ConnKind::Watch => {
                let mut probe = [0u8; 1];
                match nix::sys::socket::recv(
                    self.clients[i].conn.as_raw_fd(),
                    &mut probe,
                    socket::MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(0) | Err(_) => {
                        self.clients.swap_remove(i);
                    }
                    Ok(_) => {}
                }
            }
        }
    }

    fn handle_request(&mut self, i: usize, req: Request, mut fds: Vec<OwnedFd>) {
        let reply_error = |c: &Client, message: String| {
            let _ = c.conn.send(&Reply::Error { message }, &[]);
        };
        let Some(vps) = self.vps.as_ref() else {
            reply_error(&self.clients[i], "the VPS is not running".into());
            self.clients.swap_remove(i);
            return;
        };
        match req {
            Request::Status => {
                let _ = self.clients[i].conn.send(
                    &Reply::Status {
                        init_pid: vps.init_pid.as_raw(),
                        supervisor_pid: std::process::id() as i32,
                        started_at: self.started_at,
                        boots: self.boots,
                    },
                    &[],
                );
                self.clients.swap_remove(i);
            }
            Request::Exec {
                args,
                env,
                cwd,
                user,
                tty,
                window,
            } => {
                let stdio = if tty {
                    None
                } else if fds.len() == 3 {
                    let e = fds.pop().expect("3 fds");
                    let o = fds.pop().expect("3 fds");
                    let i0 = fds.pop().expect("3 fds");
                    Some([i0, o, e])
                } else {
                    reply_error(
                        &self.clients[i],
                        format!("exec without a tty needs 3 descriptors, got {}", fds.len()),
                    );
                    self.clients.swap_remove(i);
                    return;
                };
                let req = exec::ExecRequest {
                    args: &args,
                    env: &env,
                    cwd: cwd.as_deref(),
                    user: user.as_deref(),
                    stdio,
                    window,
                };
                match exec::spawn(
                    vps.init_pid.as_raw(),
                    &self.spec.cgroup_dirs,
                    req,
                    &self.clients[i].conn,
                    &self.seccomp,
                ) {
                    Ok(pid) => {
                        if let Some(code) = self.finished_execs.remove(&pid.as_raw()) {
                            let _ = self.clients[i].conn.send(&Reply::Exited { code }, &[]);
                            self.clients.swap_remove(i);
                        } else {
                            self.clients[i].kind = ConnKind::Exec(pid);
                        }
                    }
                    Err(e) => {
                        reply_error(&self.clients[i], error_chain(&e));
                        self.clients.swap_remove(i);
                    }
                }
            }
            Request::Console => {
                if self.console_attached {
                    reply_error(&self.clients[i], "a console client is already attached".into());
                    self.clients.swap_remove(i);
                    return;
                }
                match self.clients[i]
                    .conn
                    .send(&Reply::Console, &[vps.console.as_raw_fd()])
                {
                    Ok(()) => {
                        self.clients[i].kind = ConnKind::Console;
                        self.console_attached = true;
                    }
                    Err(_) => {
                        self.clients.swap_remove(i);
                    }
                }
            }
            Request::Stop { force, timeout_secs } => {
                self.clients[i].kind = ConnKind::Stop;
                self.request_stop(force, timeout_secs);
            }
            Request::Watch => self.clients[i].kind = ConnKind::Watch,
            Request::Address { cidr, remove } => {
                match croft_host::net::set_vps_address(vps.init_pid.as_raw(), &cidr, remove) {
                    Ok(()) => {
                        let _ = self.clients[i].conn.send(&Reply::Done, &[]);
                    }
                    Err(e) => reply_error(&self.clients[i], error_chain(&e)),
                }
                self.clients.swap_remove(i);
            }
            Request::Signal { .. } => {
                reply_error(
                    &self.clients[i],
                    "signal is only valid on an exec connection".into(),
                );
                self.clients.swap_remove(i);
            }
        }
    }

    fn request_stop(&mut self, force: bool, timeout_secs: u64) {
        self.stop_requested = true;
        let sig = parse_signal(&self.spec.stop_signal).unwrap_or(libc::SIGTERM);
        if force || sig == libc::SIGKILL {
            self.kill_init();
            return;
        }
        self.send_stop_signal();
        let deadline = Instant::now() + Duration::from_secs(timeout_secs.max(1));
        self.kill_deadline = Some(self.kill_deadline.map_or(deadline, |d| d.min(deadline)));
    }

    /// Ask init to power off. A signal from outside its pid namespace
    /// reaches PID 1 only once it has installed a handler, so an init that
    /// is still starting (systemd in its first few hundred ms) would lose
    /// it: the loop repeats it every STOP_SIGNAL_REPEAT until init exits.
    fn send_stop_signal(&mut self) {
        self.last_stop_signal = Some(Instant::now());
        let sig = parse_signal(&self.spec.stop_signal).unwrap_or(libc::SIGTERM);
        if let Some(v) = &self.vps {
            // SAFETY: kill(2) with a valid pid and signal number; nix has
            // no type for real-time signals such as SIGRTMIN+3.
            unsafe { libc::kill(v.init_pid.as_raw(), sig) };
        }
    }

    /// SIGKILL to PID 1 of a pid namespace kills every process in it.
    fn kill_init(&mut self) {
        if let Some(v) = &self.vps {
            let _ = kill(v.init_pid, Signal::SIGKILL);
        }
    }

    fn drain_console(&mut self) {
        let Some(vps) = &self.vps else { return };
        let mut buf = [0u8; CONSOLE_READ];
        let most = CONSOLE_READ.min(self.console_budget.bytes as usize);
        match nix::unistd::read(vps.console.as_raw_fd(), &mut buf[..most]) {
            Ok(n) if n > 0 => {
                self.console_budget.bytes -= n as u64;
                if let Some(log) = self.console_log.as_mut() {
                    let _ = log.write_all(&buf[..n]);
                    if log.metadata().map(|m| m.len() > CONSOLE_LOG_MAX).unwrap_or(false) {
                        let run = RunDir(&self.spec.run_dir);
                        let path = run.console_log();
                        let _ = fs::rename(&path, path.with_extension("log.1"));
                        self.console_log = fs::OpenOptions::new().create(true).append(true).open(path).ok();
                    }
                }
            }
            _ => {}
        }
    }

    fn handle_signals(&mut self) -> Option<ExitRecord> {
        let mut init_status = None;
        while let Ok(Some(info)) = self.signals.read_signal() {
            match info.ssi_signo as i32 {
                libc::SIGTERM | libc::SIGINT => {
                    // Host shutdown or an operator: power the VPS off cleanly.
                    self.request_stop(false, 30);
                }
                _ => {}
            }
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) => {
                    let Some(pid) = status.pid() else { continue };
                    if Some(pid) == self.vps.as_ref().map(|v| v.init_pid) {
                        init_status = Some(status);
                    } else {
                        self.exec_finished(pid, status);
                    }
                }
            }
        }
        let status = init_status?;
        let (code, signal) = match status {
            WaitStatus::Exited(_, c) => (Some(c), None),
            WaitStatus::Signaled(_, s, _) => (None, Some(s as i32)),
            _ => (None, None),
        };
        self.vps = None;
        self.kill_deadline = None;
        // Nothing inside can SIGKILL its own init: unasked for, that is
        // the OOM killer (the cgroup's count says so). The VPS restarts
        // rather than stay down, unless it keeps happening.
        let oom_kills = croft_host::cgroup::oom_kills_in(&self.spec.cgroup_dirs);
        let oom_killed = !self.stop_requested
            && signal == Some(libc::SIGKILL)
            && matches!((oom_kills, self.oom_kills_at_boot), (Some(now), Some(then)) if now > then);
        let mut restart_reason = None;
        if oom_killed {
            let killed_at = Instant::now();
            self.oom_restarts
                .retain(|at| killed_at.duration_since(*at) < OOM_RESTART_WINDOW);
            if self.oom_restarts.len() < OOM_RESTARTS_MAX {
                self.oom_restarts.push(killed_at);
                restart_reason = Some(
                    "its init was killed by the OOM killer (the VPS ran out of memory) and it was restarted"
                        .to_string(),
                );
            } else {
                return Some(ExitRecord {
                    reason: format!(
                        "its init was killed by the OOM killer {} times in {} minutes; left stopped",
                        OOM_RESTARTS_MAX + 1,
                        OOM_RESTART_WINDOW.as_secs() / 60
                    ),
                    code,
                    signal,
                    at: now(),
                    clean: false,
                });
            }
        }
        // In a pid namespace, reboot(2) from inside ends PID 1 with SIGHUP
        // (restart) or SIGINT (power off, halt).
        if !self.stop_requested && (signal == Some(libc::SIGHUP) || restart_reason.is_some()) {
            for c in self
                .clients
                .iter()
                .filter(|c| matches!(c.kind, ConnKind::Console))
            {
                let _ = c.conn.send(
                    &Reply::Error {
                        message: "the VPS rebooted".into(),
                    },
                    &[],
                );
            }
            self.clients.retain(|c| !matches!(c.kind, ConnKind::Console));
            match self.boot() {
                Ok(()) => {
                    let init_pid = self.init_pid();
                    for c in self.clients.iter().filter(|c| matches!(c.kind, ConnKind::Watch)) {
                        let _ = c.conn.send(
                            &Reply::Rebooted {
                                init_pid,
                                reason: restart_reason.clone(),
                            },
                            &[],
                        );
                    }
                    return None;
                }
                Err(e) => {
                    return Some(ExitRecord {
                        reason: format!("reboot failed: {}", error_chain(&e)),
                        code,
                        signal,
                        at: now(),
                        clean: false,
                    })
                }
            }
        }
        let clean = self.stop_requested || signal == Some(libc::SIGINT) || code == Some(0);
        let reason = match (code, signal) {
            _ if self.stop_requested && signal == Some(libc::SIGKILL) => "stopped (killed)".to_string(),
            _ if self.stop_requested => "stopped".to_string(),
            (_, Some(s)) if s == libc::SIGINT => "powered off from inside".to_string(),
            (Some(c), _) => format!("init exited with status {c}"),
            (_, Some(s)) => format!("init killed by signal {s}"),
            _ => "init ended".to_string(),
        };
        Some(ExitRecord {
            reason,
            code,
            signal,
            at: now(),
            clean,
        })
    }

    fn exec_finished(&mut self, pid: Pid, status: WaitStatus) {
        let code = match status {
            WaitStatus::Exited(_, c) => c,
            WaitStatus::Signaled(_, s, _) => 128 + s as i32,
            _ => return,
        };
        if let Some(i) = self
            .clients
            .iter()
            .position(|c| matches!(c.kind, ConnKind::Exec(p) if p == pid))
        {
            let _ = self.clients[i].conn.send(&Reply::Exited { code }, &[]);
            self.clients.swap_remove(i);
        } else {
            self.finished_execs.insert(pid.as_raw(), code);
        }
    }

    /// Record the exit, tell everyone waiting, and remove our files.
    fn finish(mut self, record: ExitRecord) {
        let run = RunDir(&self.spec.run_dir);
        if let Ok(json) = serde_json::to_vec(&record) {
            let tmp = run.exit_record().with_extension("tmp");
            if fs::write(&tmp, json).is_ok() {
                let _ = fs::rename(&tmp, run.exit_record());
            }
        }
        // Exec helpers die with the pid namespace; collect their codes.
        let give_up = Instant::now() + Duration::from_millis(500);
        while self.clients.iter().any(|c| matches!(c.kind, ConnKind::Exec(_))) && Instant::now() < give_up {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(5)),
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        self.exec_finished(pid, status);
                    }
                }
                Err(_) => break,
            }
        }
        self.cleanup();
        for c in &self.clients {
            let reply = match c.kind {
                ConnKind::Exec(_) => Reply::Exited { code: 137 },
                _ => Reply::Down { exit: record.clone() },
            };
            let _ = c.conn.send(&reply, &[]);
        }
    }
}

/// Deliver `signal` to the command an exec helper runs: the helper's only
/// child, born inside the VPS's pid namespace.
fn signal_exec(helper: Pid, signal: i32) {
    let path = format!("/proc/{helper}/task/{helper}/children");
    let Ok(children) = fs::read_to_string(path) else {
        return;
    };
    for pid in children.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        // SAFETY: kill(2) with a pid we just read and a checked signal
        // number; nix's Signal type has no real-time signals.
        unsafe { libc::kill(pid, signal) };
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
