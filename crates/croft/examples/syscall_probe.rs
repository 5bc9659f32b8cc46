//! Tries the system calls a VPS must be refused and prints `name errno`
//! for each (0 = allowed). The end-to-end tests copy it into a VPS and
//! run it as root there; it is not part of croft itself.
//!
//! Every call is made harmless should it succeed (the clock is set to the
//! time it already has, accounting is pointed at a file that does not
//! exist), and it refuses to run outside a croft VPS anyway.

use std::os::unix::fs::OpenOptionsExt;

/// Run one raw system call and print its errno (0 if it succeeded).
fn probe(name: &str, nr: libc::c_long, args: [usize; 5]) {
    // SAFETY: every pointer passed in `args` points at a live local of
    // `main` or is null where the kernel accepts null; the call cannot
    // write into memory we use, and only its errno is inspected.
    let rc = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) };
    let errno = if rc < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    };
    println!("{name} {errno}");
}

/// `syscall_probe race SECONDS`: the attack on `croft exec` of runc's
/// CVE-2016-9962. For SECONDS it spins `PTRACE_ATTACH` on the next pid the
/// VPS's pid namespace will hand out (and now and then on the newest); every process it catches is
/// inspected while stopped: its seccomp mode, its uid as seen inside, and
/// which of its descriptors beyond stdio it can open through
/// /proc/PID/fd. A caught process counts as *won* if it runs without
/// seccomp, as a uid the VPS does not map (host root shows as 65534), or
/// holds a descriptor the attacker could open. Prints one line per catch
/// and `race attached=N won=W` at the end.
fn race(seconds: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let (mut attached, mut won) = (0u32, 0u32);
    let me = std::process::id() as libc::pid_t;
    while std::time::Instant::now() < deadline {
        let last: libc::pid_t = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(me);
        // The next pid (a process being born) and the newest one (a
        // command already running: catching it is allowed, and shows the
        // attack works at all).
        for i in 0..200 {
            let pid = last + 1 - (i % 16 == 15) as libc::pid_t;
            // SAFETY: PTRACE_ATTACH takes a pid and ignores addr and data.
            if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) } != 0 {
                continue;
            }
            attached += 1;
            let mut status = 0;
            // SAFETY: waits for the stop of a process we now trace.
            unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
            let field = |name: &str| -> String {
                std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                    .unwrap_or_default()
            };
            let (seccomp, uid) = (field("Seccomp:"), field("Uid:"));
            let mut opened = 0;
            if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                for fd in fds.flatten() {
                    let n: i32 = fd.file_name().to_string_lossy().parse().unwrap_or(0);
                    if n > 2
                        && std::fs::OpenOptions::new()
                            .read(true)
                            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                            .open(fd.path())
                            .is_ok()
                    {
                        opened += 1;
                    }
                }
            }
            let caught = seccomp == "0" || uid.split_whitespace().any(|u| u == "65534") || opened > 0;
            won += u32::from(caught);
            println!("caught pid={pid} seccomp={seccomp} uid={uid:?} opened={opened} won={caught}");
            // SAFETY: detaching a process we trace, with no signal; should
            // the attach's SIGSTOP land after the detach, SIGCONT undoes it.
            unsafe {
                libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
                libc::kill(pid, libc::SIGCONT);
            }
            break;
        }
    }
    println!("race attached={attached} won={won}");
}

/// `syscall_probe userns`: the attack that used up the host's user
/// namespaces. Makes and holds as many as the kernel grants: each forked
/// child nests them as deep as it may, the parent keeps a descriptor on
/// the deepest (which keeps the whole chain alive) and the child exits.
/// Prints `userns held=N errno=E`, E being what stopped it (28, ENOSPC,
/// when a child gets none: the budget is used up), then holds them until
/// killed.
fn userns_flood() {
    let mut nofile = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit read and write a valid rlimit struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile);
        nofile.rlim_cur = nofile.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &nofile);
    }
    let (mut held, mut kept) = (0u64, Vec::new());
    let errno = loop {
        let (mut report, mut release) = ([0i32; 2], [0i32; 2]);
        // SAFETY: pipe writes two descriptors into each valid array.
        unsafe {
            libc::pipe(report.as_mut_ptr());
            libc::pipe(release.as_mut_ptr());
        }
        // SAFETY: single-threaded; the child only makes raw system calls.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut depth = 0i32;
            // Each level maps our ids, so the next may be made inside it.
            let map_ids = || {
                std::fs::write("/proc/self/uid_map", "0 0 1")
                    .and_then(|()| std::fs::write("/proc/self/setgroups", "deny"))
                    .and_then(|()| std::fs::write("/proc/self/gid_map", "0 0 1"))
                    .is_ok()
            };
            // SAFETY: plain system calls on our own descriptors.
            unsafe {
                while libc::unshare(libc::CLONE_NEWUSER) == 0 && map_ids() {
                    depth += 1;
                }
                let answer = [depth, *libc::__errno_location()];
                libc::write(report[1], answer.as_ptr().cast(), 8);
                let mut byte = 0u8;
                libc::close(release[1]);
                libc::read(release[0], (&mut byte as *mut u8).cast(), 1);
                libc::_exit(0);
            }
        }
        let mut answer = [0i32; 2];
        // SAFETY: reads 8 bytes into a valid array; closes our own ends.
        unsafe {
            libc::close(report[1]);
            libc::close(release[0]);
            libc::read(report[0], answer.as_mut_ptr().cast(), 8);
        }
        let [depth, err] = answer;
        let opened = std::fs::File::open(format!("/proc/{pid}/ns/user"));
        // SAFETY: closing our own ends lets the child exit; then reap it.
        unsafe {
            libc::close(report[0]);
            libc::close(release[1]);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        match opened {
            Ok(fd) if depth > 0 => {
                kept.push(fd);
                held += depth as u64;
            }
            Ok(_) => break err,
            Err(e) => break e.raw_os_error().unwrap_or(-1),
        }
        // Both the nesting limit (33 levels) and a used-up budget answer
        // ENOSPC: a chain cut short goes on with the next child, a child
        // that got none at all means the budget is gone.
        if err != libc::ENOSPC {
            break err;
        }
    };
    println!("userns held={held} errno={errno}");
    loop {
        // SAFETY: pause just waits for a signal.
        unsafe { libc::pause() };
    }
}

fn main() {
    if std::env::var("container").as_deref() != Ok("croft") {
        eprintln!("syscall_probe: refusing to run outside a croft VPS (container=croft is not set)");
        std::process::exit(2);
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // `syscall_probe ptrace PID`: try to attach to PID (detaching at once
    // should it work) and print `ptrace errno`.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("userns") {
        userns_flood();
    }
    if let [_, mode, seconds] = args.as_slice() {
        if mode == "race" {
            race(seconds.parse().expect("seconds"));
            return;
        }
    }
    if let [_, mode, pid] = args.as_slice() {
        if mode == "ptrace" {
            let pid: usize = pid.parse().expect("a pid");
            probe(
                "ptrace",
                libc::SYS_ptrace,
                [libc::PTRACE_ATTACH as usize, pid, 0, 0, 0],
            );
            probe(
                "ptrace_detach",
                libc::SYS_ptrace,
                [libc::PTRACE_DETACH as usize, pid, 0, 0, 0],
            );
            return;
        }
    }
    // SAFETY: clock_gettime writes a timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let empty = c"".as_ptr() as usize;
    let user = c"user".as_ptr() as usize;
    let desc = c"croft-probe".as_ptr() as usize;
    let missing = c"/nonexistent/croft-probe".as_ptr() as usize;
    let mut handle = [0u8; 16];
    handle[0] = 8; // handle_bytes
    let handle = handle.as_mut_ptr() as usize;
    let now = &now as *const libc::timespec as usize;
    let session_keyring = -3i32 as usize;
    probe("keyctl", libc::SYS_keyctl, [0, session_keyring, 1, 0, 0]);
    probe(
        "add_key",
        libc::SYS_add_key,
        [user, desc, desc, 4, session_keyring],
    );
    probe("request_key", libc::SYS_request_key, [user, desc, 0, 0, 0]);
    probe(
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        [libc::AT_FDCWD as usize, handle, 0, 0, 0],
    );
    probe("init_module", libc::SYS_init_module, [0, 0, empty, 0, 0]);
    probe("finit_module", libc::SYS_finit_module, [0, empty, 0, 0, 0]);
    probe("delete_module", libc::SYS_delete_module, [desc, 0, 0, 0, 0]);
    probe("kexec_load", libc::SYS_kexec_load, [0, 0, 0, 0, 0]);
    probe("iopl", libc::SYS_iopl, [3, 0, 0, 0, 0]);
    probe("ioperm", libc::SYS_ioperm, [0x80, 1, 1, 0, 0]);
    probe("swapon", libc::SYS_swapon, [missing, 0, 0, 0, 0]);
    probe("acct", libc::SYS_acct, [missing, 0, 0, 0, 0]);
    probe(
        "clock_settime",
        libc::SYS_clock_settime,
        [libc::CLOCK_REALTIME as usize, now, 0, 0, 0],
    );
    // SYSLOG_ACTION_SIZE_BUFFER: only asks the kernel log's size.
    probe("syslog", libc::SYS_syslog, [10, 0, 0, 0, 0]);
    probe(
        "perf_event_open",
        libc::SYS_perf_event_open,
        [0, 0, usize::MAX, usize::MAX, 0],
    );
    // Should they succeed: a one-entry ring and a user-mode-only
    // userfaultfd, both closed with the process.
    let mut uring_params = [0u8; 120];
    probe(
        "io_uring_setup",
        libc::SYS_io_uring_setup,
        [1, uring_params.as_mut_ptr() as usize, 0, 0, 0],
    );
    const UFFD_USER_MODE_ONLY: usize = 1;
    probe(
        "userfaultfd",
        libc::SYS_userfaultfd,
        [libc::O_CLOEXEC as usize | UFFD_USER_MODE_ONLY, 0, 0, 0, 0],
    );
}
