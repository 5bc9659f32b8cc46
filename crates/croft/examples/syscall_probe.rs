//! Tries the system calls a VPS must be refused and prints `name errno`
//! for each (0 = allowed). The end-to-end tests copy it into a VPS and
//! run it as root there; it is not part of croft itself.
//!
//! Every call is made harmless should it succeed (the clock is set to the
//! time it already has, accounting is pointed at a file that does not
//! exist), and it refuses to run outside a croft VPS anyway.

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
}
