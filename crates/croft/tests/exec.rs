//! End-to-end tests of exec and the console through the real croftd,
//! croft and croft-supervisor: stdio streams, exit codes and signals,
//! and interactive sessions on a pty. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use std::time::Duration;

#[test]
fn exec_streams_stdio_and_propagates_exit_codes() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "ex1"]);
    let out = host.croft(&["exec", "ex1", "--", "sh", "-c", "echo out; echo err >&2; exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(
        host.croft(&["exec", "ex1", "--", "no-such-command"])
            .status
            .code(),
        Some(127)
    );
    assert_eq!(
        host.croft(&["exec", "ex1", "--", "sh", "-c", "kill -9 $$"])
            .status
            .code(),
        Some(137)
    );
    // stdin is the caller's.
    let mut child = std::process::Command::new(common::bin_dir().join("croft"))
        .args([
            "--socket",
            host.socket.to_str().unwrap(),
            "exec",
            "ex1",
            "--",
            "wc",
            "-c",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&[b'x'; 100_000]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000");
    // A command that stops reading its endless stdin ends normally (the
    // CLI is not killed by SIGPIPE feeding it), and a megabyte of output
    // arrives whole.
    let out = host.host_sh(&format!(
        "yes | {} --socket {} exec ex1 -- sh -c 'head -1; head -c 1048576 /dev/zero'",
        common::bin_dir().join("croft").display(),
        host.socket.display()
    ));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.len(), 2 + (1 << 20));
    assert!(out.stdout.starts_with(b"y\n"));
    // Signals to the CLI reach the command inside.
    let child = std::process::Command::new(common::bin_dir().join("croft"))
        .args([
            "--socket",
            host.socket.to_str().unwrap(),
            "exec",
            "ex1",
            "--",
            "sleep",
            "31",
        ])
        .spawn()
        .unwrap();
    host.wait_for("the command to run", Duration::from_secs(20), || {
        host.sh_ok("ex1", "ps").contains("sleep 31")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(130), "SIGINT was not forwarded");
    assert!(
        !host.sh_ok("ex1", "ps").contains("sleep 31"),
        "the command outlived the interrupted exec"
    );
    // A closed pipe ends the CLI quietly.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --socket {} info ex1 | head -c1",
            common::bin_dir().join("croft").display(),
            host.socket.display()
        ))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );
    let env = host.ok(&[
        "exec",
        "ex1",
        "--env",
        "GREETING=hi",
        "--cwd",
        "/etc",
        "--",
        "sh",
        "-c",
        "echo $GREETING $(pwd)",
    ]);
    assert_eq!(env.trim(), "hi /etc");
}

/// `croft exec --user U --cwd D --env K=V`: as a user of the VPS, with its
/// groups and home, where asked, with what was set.
#[test]
fn exec_runs_as_a_user_of_the_vps_in_a_directory_with_an_environment() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "ex2"]);
    host.sh_ok(
        "ex2",
        "echo 'alice:x:1500:1500::/home/alice:/bin/sh' >> /etc/passwd && \
         echo 'alice:x:1500:' >> /etc/group && echo 'staff2:x:2000:bob,alice' >> /etc/group && \
         mkdir -p /home/alice && chown 1500:1500 /home/alice",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["exec", "ex2"];
        all.extend_from_slice(args);
        let out = host.croft(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let id = run(&["--user", "alice", "--", "id"]);
    assert!(id.starts_with("uid=1500(alice) gid=1500(alice)"), "{id}");
    assert!(id.contains("2000(staff2)"), "supplementary group: {id}");
    assert_eq!(
        run(&["--user", "alice", "--", "sh", "-c", "pwd; echo $HOME $USER"]),
        "/home/alice\n/home/alice alice"
    );
    assert_eq!(run(&["--user", "alice", "--cwd", "/tmp", "--", "pwd"]), "/tmp");
    assert_eq!(run(&["--user", "4242", "--", "id", "-u"]), "4242");
    assert_eq!(
        run(&["--env", "GREETING=hi there", "--", "sh", "-c", "echo $GREETING"]),
        "hi there"
    );
    // A user cannot do what root can.
    let out = host.croft(&["exec", "ex2", "--user", "alice", "--", "touch", "/etc/owned"]);
    assert!(!out.status.success(), "alice wrote /etc");
    // Bad input: a clear one-line error.
    let out = host.croft(&["exec", "ex2", "--user", "nosuch", "--", "true"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user nosuch in the VPS's /etc/passwd"));
    let err = host.fails(&["exec", "ex2", "--user", "Bad User", "--", "true"]);
    assert!(err.contains("invalid user"), "{err}");
    // VPS root turns /etc/group into a FIFO: the exec neither hangs on it
    // nor grants groups from it.
    host.sh_ok("ex2", "rm /etc/group && mkfifo /etc/group");
    let groups = run(&["--user", "alice", "--", "grep", "^Groups:", "/proc/self/status"]);
    assert_eq!(
        groups.split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "1500"],
        "{groups}"
    );
}

#[test]
fn interactive_exec_and_console_work_through_a_pty() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "tty1"]);
    let out = run_in_pty(
        &host,
        &["exec", "-t", "tty1", "--", "sh", "-c", "tty; exit 3"],
        b"",
        Duration::from_secs(10),
    );
    assert_eq!(out.0, Some(3));
    assert!(out.1.contains("/dev/pts/"), "no pty inside: {:?}", out.1);
    // What init printed before anyone attached is in the console log.
    let log = host.ok(&["console", "tty1", "--show-log"]);
    assert!(
        log.contains("Please press Enter to activate this console"),
        "{log:?}"
    );
    // The console shows busybox's askfirst shell, with job control: Ctrl+C
    // interrupts the shell's command, not init. Ctrl+a q detaches.
    let init = host.init_pid("tty1");
    let (code, text) = run_in_pty(
        &host,
        &["console", "tty1"],
        b"\r\recho con$((40+2))sole\rsleep 100\r\x03\recho after$((1+1))\r\x01q",
        Duration::from_secs(15),
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("con42sole"),
        "console did not run the command: {text:?}"
    );
    assert!(
        text.contains("after2"),
        "Ctrl+C did not interrupt the command: {text:?}"
    );
    assert!(
        !text.contains("job control turned off"),
        "the console shell has no controlling tty: {text:?}"
    );
    assert!(text.contains("Detached"), "{text:?}");
    assert_eq!(
        host.init_pid("tty1"),
        init,
        "Ctrl+C on the console rebooted the VPS"
    );
}

/// Run croft with a pty as its terminal, type `input` after a moment, and
/// collect everything it prints.
fn run_in_pty(host: &Host, args: &[&str], input: &[u8], timeout: Duration) -> (Option<i32>, String) {
    let mut command = std::process::Command::new(common::bin_dir().join("croft"));
    command.arg("--socket").arg(&host.socket).args(args);
    common::run_in_pty(command, input, timeout)
}

/// On a terminal, what loses data asks first and goes on only when the
/// VPS's name is typed back; --yes (or a script, off a terminal) does not
/// ask.
#[test]
fn delete_on_a_terminal_asks_for_the_name_first() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "del1", "--no-start"]);
    let (code, text) = run_in_pty(&host, &["delete", "del1"], b"del2\n", Duration::from_secs(10));
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("Type del1 to go on"), "{text}");
    assert!(text.contains("not confirmed; nothing was changed"), "{text}");
    host.info("del1");
    let (code, text) = run_in_pty(&host, &["delete", "del1"], b"del1\n", Duration::from_secs(10));
    assert_eq!(code, Some(0), "{text}");
    assert!(host.fails(&["info", "del1"]).contains("not found"));
    host.ok(&["launch", "busybox", "del3", "--no-start"]);
    let (code, text) = run_in_pty(&host, &["delete", "del3", "--yes"], b"", Duration::from_secs(10));
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("Type del3"), "{text}");
}

/// `croft file push|pull`: a binary round-trips with its mode; a path
/// through a symlink stays inside the VPS; bad input is a clear error.
#[test]
fn files_are_pushed_and_pulled_whole_with_their_mode() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new();
    host.ok(&["launch", "busybox", "fp1"]);
    let local = host.dir.join("blob");
    let data: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&local, &data).unwrap();
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o750)).unwrap();
    host.ok(&[
        "file",
        "push",
        local.to_str().unwrap(),
        "fp1:/root/blob",
        "--uid",
        "1000",
        "--gid",
        "1000",
    ]);
    let inside = host.sh_ok("fp1", "stat -c '%a %u %g %s' /root/blob");
    assert_eq!(inside.trim(), "750 1000 1000 300000");
    let back = host.dir.join("back");
    host.ok(&["file", "pull", "fp1:/root/blob", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        data,
        "the bytes changed on the way"
    );
    assert_eq!(
        std::fs::metadata(&back).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    // A path through VPS root's symlink to / lands in the VPS's own /.
    host.sh_ok("fp1", "ln -s / /root/up");
    host.ok(&[
        "file",
        "push",
        local.to_str().unwrap(),
        "fp1:/root/up/etc/croft-pushed",
    ]);
    assert!(host.sh_ok("fp1", "ls /etc/croft-pushed").contains("croft-pushed"));
    assert!(
        !std::path::Path::new("/etc/croft-pushed").exists(),
        "written on the host"
    );
    for (args, says) in [
        (
            vec!["file", "pull", "fp1:/no/such", back.to_str().unwrap()],
            "cannot read /no/such in fp1",
        ),
        (
            vec!["file", "pull", "fp1:/root", back.to_str().unwrap()],
            "not a regular file",
        ),
        (
            vec!["file", "push", local.to_str().unwrap(), "fp1:relative"],
            "absolute path",
        ),
        (
            vec!["file", "push", local.to_str().unwrap(), "fp1:/no/such/dir/x"],
            "cannot write /no/such/dir/x in fp1",
        ),
        (
            vec![
                "file",
                "push",
                local.to_str().unwrap(),
                "fp1:/root/x",
                "--mode",
                "999",
            ],
            "octal mode",
        ),
    ] {
        let err = host.fails(&args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read(&back).unwrap(),
        data,
        "a failed pull touched the file"
    );
    assert!(host
        .sh_ok("fp1", "ls /no/such/dir 2>&1 || true")
        .contains("No such"));
}
