//! End to end with a real Debian image: debootstrap (run here, in the
//! host's network namespace, since the daemon under test has no network),
//! imported into croft, booted with systemd as PID 1.
#![cfg(feature = "e2e")]

mod common;

use common::Host;
use croft_api::{Image, Status};
use std::time::{Duration, Instant};

fn wait_running(host: &Host, name: &str) -> Duration {
    let start = Instant::now();
    host.wait_for("systemd to reach running", Duration::from_secs(60), || {
        let out = host.croft(&["exec", name, "--", "systemctl", "is-system-running"]);
        String::from_utf8_lossy(&out.stdout).trim() == "running"
    });
    start.elapsed()
}

/// Debian's security and point-release fixes reach a VPS: apt inside
/// would fetch the release's `-security` and `-updates` suites (asked
/// offline, the VPS has no way out here), and the mirror has both (asked
/// from the host).
fn assert_apt_gets_fixes(host: &Host, vps: &str, release: &str) {
    let uris = host.sh_ok(vps, "apt-get --print-uris update");
    for suite in ["", "-updates", "-security"] {
        let uri = uris
            .lines()
            .filter_map(|l| l.split('\'').nth(1))
            .find(|u| u.ends_with(&format!("/dists/{release}{suite}/InRelease")))
            .unwrap_or_else(|| panic!("{vps}: apt does not fetch {release}{suite}: {uris}"));
        // From the host's own network namespace, as debootstrap above.
        let fetched = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='HEAD'), timeout=20)",
                uri,
            ])
            .output()
            .unwrap();
        assert!(
            fetched.status.success(),
            "{uri}: {}",
            String::from_utf8_lossy(&fetched.stderr)
        );
    }
}

#[test]
fn a_debian_vps_boots_systemd_to_running_and_shuts_down_cleanly() {
    common::require_root();
    let host = Host::with_config("storage_size = \"4GiB\"");
    // Build the images the way croftd does (both releases at once), then
    // hand them over as tarballs.
    let built: Vec<(String, Vec<String>)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = ["bookworm", "trixie"]
            .into_iter()
            .map(|release| {
                let dir = host.dir.clone();
                scope.spawn(move || {
                    let build = dir.join(release);
                    std::fs::create_dir_all(&build).unwrap();
                    let mut steps = Vec::new();
                    croft_host::rootfs::debootstrap(
                        release,
                        croft_host::rootfs::DebianMirrors {
                            archive: "http://deb.debian.org/debian",
                            security: "http://deb.debian.org/debian-security",
                        },
                        &build,
                        &mut |s| steps.push(s.to_string()),
                        &|| false,
                    )
                    .unwrap_or_else(|e| panic!("debootstrap {release} (needs the Debian mirror): {e}"));
                    let tarball = dir.join(format!("{release}.tar.gz"));
                    croft_host::archive::pack(&build, &std::fs::File::create(&tarball).unwrap()).unwrap();
                    std::fs::remove_dir_all(&build).unwrap();
                    (release.to_string(), steps)
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for (release, steps) in &built {
        // The steps a build reports as its job's progress.
        for stage in ["Retrieving", "Unpacking", "Configuring", "Base system installed"] {
            assert!(
                steps.iter().any(|s| s.starts_with(stage)),
                "no {stage} step in {steps:?}"
            );
        }
        let tarball = host.dir.join(format!("{release}.tar.gz"));
        host.ok(&[
            "image",
            "import",
            tarball.to_str().unwrap(),
            &format!("test/{release}"),
        ]);
        std::fs::remove_file(&tarball).unwrap();
        let info: Image = host.ok_json(&["image", "info", &format!("test/{release}"), "--format", "json"]);
        assert_eq!(
            (
                info.distro.as_deref(),
                info.release.as_deref(),
                info.arch.as_deref()
            ),
            (Some("debian"), Some(release.as_str()), Some("amd64")),
            "{info:?}"
        );
    }

    // Debian 13 (systemd 257) beside Debian 12 (systemd 252).
    host.ok(&["launch", "test/trixie", "new1"]);
    let took = wait_running(&host, "new1");
    eprintln!("new1 (trixie): systemd running after {took:?}");
    assert!(host.sh_ok("new1", "cat /etc/os-release").contains("trixie"));
    assert!(host
        .sh_ok("new1", "systemctl --version")
        .starts_with("systemd 257"));
    assert_apt_gets_fixes(&host, "new1", "trixie");

    // Root over SSH with a key given at launch, and a first-boot script
    // that runs once.
    let key = host.dir.join("id_ed25519");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let script = host.dir.join("user-data.sh");
    std::fs::write(&script, "#!/bin/sh\necho configured >> /root/user-data-runs\n").unwrap();
    let failing = host.dir.join("failing.sh");
    std::fs::write(&failing, "#!/bin/sh\necho trying; exit 3\n").unwrap();
    let pubkey = host.dir.join("id_ed25519.pub");
    host.ok(&[
        "launch",
        "test/bookworm",
        "ssh1",
        "--ssh-key",
        pubkey.to_str().unwrap(),
        "--user-data",
        script.to_str().unwrap(),
    ]);
    host.ok(&[
        "launch",
        "test/bookworm",
        "ud2",
        "--user-data",
        failing.to_str().unwrap(),
    ]);
    wait_running(&host, "ssh1");
    let ip = host.info("ssh1").nic.unwrap().ipv4.unwrap();
    let ssh = format!(
        "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
         -o ConnectTimeout=5 root@{ip} 'hostname; cat /root/user-data-runs'",
        key.display()
    );
    let out = host.host_sh(&ssh);
    assert!(
        out.status.success(),
        "ssh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ssh1\nconfigured\n");
    assert_apt_gets_fixes(&host, "ssh1", "bookworm");
    // A key given after launch lets root in at once; taken away, not.
    wait_running(&host, "ud2");
    let ip2 = host.info("ud2").nic.unwrap().ipv4.unwrap();
    let ssh2 = format!(
        "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
         -o ConnectTimeout=5 root@{ip2} hostname",
        key.display()
    );
    assert!(!host.host_sh(&ssh2).status.success(), "in without a key");
    host.ok(&["ssh-key", "add", "ud2", pubkey.to_str().unwrap()]);
    let out = host.host_sh(&ssh2);
    assert!(
        out.status.success(),
        "ssh with the added key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ud2\n");
    assert!(host
        .ok(&["ssh-key", "list", "ud2"])
        .starts_with("  1  ssh-ed25519 "));
    host.ok(&["ssh-key", "remove", "ud2", "1"]);
    assert!(!host.host_sh(&ssh2).status.success(), "in with a removed key");
    assert_eq!(host.info("ssh1").user_data.as_deref(), Some("succeeded"));
    assert_eq!(host.listed("ssh1").user_data.as_deref(), Some("succeeded"));
    // --wait answers once systemd has booted.
    host.ok(&["restart", "ssh1", "--wait"]);
    assert_eq!(
        host.sh_ok("ssh1", "systemctl is-system-running").trim(),
        "running"
    );
    assert_eq!(
        host.sh_ok("ssh1", "cat /root/user-data-runs"),
        "configured\n",
        "user-data ran twice"
    );
    // Rescue with a Debian rescue system: SSH with the VPS's key reaches
    // the rescue system, which sees the VPS's disk at /mnt.
    host.ok(&["stop", "ssh1"]);
    host.ok(&["start", "ssh1", "--rescue", "--rescue-image", "test/bookworm"]);
    wait_running(&host, "ssh1");
    let ssh_run = |command: &str| {
        let out = host.host_sh(&format!(
            "ssh -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
             -o ConnectTimeout=5 root@{ip} '{command}'",
            key.display()
        ));
        assert!(
            out.status.success(),
            "ssh {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        ssh_run("hostname; cat /mnt/root/user-data-runs; test -e /root/user-data-runs || echo clean-root"),
        "ssh1\nconfigured\nclean-root\n"
    );
    host.ok(&["stop", "ssh1"]);
    // Rebuild onto Debian 13: the same address and key, a new system.
    host.ok(&["rebuild", "ssh1", "test/trixie"]);
    host.ok(&["start", "ssh1"]);
    wait_running(&host, "ssh1");
    assert_eq!(
        host.info("ssh1").nic.and_then(|n| n.ipv4).as_deref(),
        Some(ip.as_str())
    );
    assert_eq!(host.info("ssh1").image, "test/trixie");
    assert_eq!(
        ssh_run(". /etc/os-release; echo $VERSION_CODENAME; test -e /root/user-data-runs || echo fresh"),
        "trixie\nfresh\n"
    );
    host.ok(&["delete", "--force", "ssh1"]);

    // A failing script: the VPS still boots (running, not degraded) and
    // croft info says what happened.
    wait_running(&host, "ud2");
    let status = host.info("ud2").user_data.unwrap();
    assert!(status.contains("exit status 3"), "{status}");
    assert!(host
        .sh_ok("ud2", "cat /var/log/croft-user-data.log")
        .contains("trying"));
    host.ok(&["delete", "--force", "ud2"]);

    host.ok(&["launch", "test/bookworm", "web1", "--memory", "512MiB"]);
    host.ok(&["launch", "test/bookworm", "web2"]);
    for name in ["web1", "web2"] {
        let took = wait_running(&host, name);
        eprintln!("{name}: systemd running after {took:?}");
        assert_eq!(
            host.croft(&["exec", name, "--", "systemctl", "is-active", "ssh"])
                .status
                .code(),
            Some(0)
        );
        assert_eq!(host.sh_ok(name, "hostname").trim(), name);
        assert!(host.sh_ok(name, "cat /etc/os-release").contains("bookworm"));
    }
    // Honest /proc (lxcfs): free inside shows the VPS's memory limit.
    let free = host.sh_ok("web1", "free -m");
    let total = free
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .and_then(|l| l.split_whitespace().nth(1));
    assert_eq!(total, Some("512"), "{free}");
    // The console offers a login prompt (Debian's getty on the VPS console).
    host.wait_for("a login prompt on the console", Duration::from_secs(10), || {
        host.ok(&["console", "web1", "--show-log"])
            .contains("web1 login:")
    });
    // coreutils' df inside shows the VPS's disk, and follows a live change.
    host.ok(&["config", "set", "web2", "limits.disk=2GiB"]);
    let size = |vps: &str| {
        host.sh_ok(vps, "df -B1 --output=size / | tail -n 1")
            .trim()
            .to_string()
    };
    assert_eq!(size("web2"), (2u64 << 30).to_string());
    host.ok(&["config", "set", "web2", "limits.disk=3GiB"]);
    assert_eq!(size("web2"), (3u64 << 30).to_string());
    // Each VPS is its own machine with its own identity.
    let id1 = host.sh_ok("web1", "cat /etc/machine-id");
    let id2 = host.sh_ok("web2", "cat /etc/machine-id");
    assert_eq!(id1.trim().len(), 32);
    assert_ne!(id1, id2);
    let key1 = host.sh_ok("web1", "cat /etc/ssh/ssh_host_ed25519_key.pub");
    let key2 = host.sh_ok("web2", "cat /etc/ssh/ssh_host_ed25519_key.pub");
    assert_ne!(key1, key2, "two VPSes share an SSH host key");
    // Services run in their own cgroups under the VPS's delegated subtree.
    let cg = host.sh_ok(
        "web1",
        "cat /proc/$(pidof sshd | cut -d' ' -f1)/cgroup | grep name=systemd",
    );
    assert!(cg.contains("/system.slice/ssh.service"), "{cg}");
    // Root does root things in its own VPS: dpkg/apt install a package,
    // and setuid binaries still raise privileges (no no_new_privs).
    // The package ships a service: systemd starts it in a cgroup of its own.
    host.sh_ok(
        "web1",
        "mkdir -p /tmp/p/DEBIAN /tmp/p/lib/systemd/system && printf 'Package: croft-probe\\nVersion: 1\\nArchitecture: all\\nMaintainer: t <t@t>\\nDescription: t\\n' > /tmp/p/DEBIAN/control \
         && printf '[Unit]\\nDescription=probe\\n[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' > /tmp/p/lib/systemd/system/croft-probe.service \
         && dpkg-deb -b /tmp/p /tmp/p.deb >/dev/null && apt-get install -y /tmp/p.deb >/dev/null 2>&1 && dpkg -s croft-probe >/dev/null \
         && systemctl daemon-reload && systemctl enable --now croft-probe.service 2>/dev/null && systemctl is-active croft-probe.service",
    );
    let cg = host.sh_ok(
        "web1",
        "cat /proc/$(systemctl show -p MainPID --value croft-probe.service)/cgroup | grep name=systemd",
    );
    assert!(cg.contains("/system.slice/croft-probe.service"), "{cg}");
    // Restarting sshd works (a new main process, still active).
    let before = host.sh_ok("web1", "systemctl show -p MainPID --value ssh");
    host.sh_ok("web1", "systemctl restart ssh && systemctl is-active ssh");
    let after = host.sh_ok("web1", "systemctl show -p MainPID --value ssh");
    assert_ne!(before, after, "sshd was not restarted");
    let euid = host.sh_ok(
        "web1",
        "cp /usr/bin/id /usr/local/bin/suid-id && chmod 4755 /usr/local/bin/suid-id && su -s /bin/sh nobody -c '/usr/local/bin/suid-id -u'",
    );
    assert_eq!(euid.trim(), "0", "setuid did not raise privileges inside the VPS");
    // A clean stop: systemd gets SIGRTMIN+3 and halts well before the timeout.
    let start = Instant::now();
    host.ok(&["stop", "web1", "--timeout", "20"]);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "stop took {:?}",
        start.elapsed()
    );
    assert_eq!(host.info("web1").last_exit.as_deref(), Some("stopped"));
    assert!(host
        .ok(&["console", "web1", "--show-log"])
        .contains("Halting system"));
    // A stop right after a start is not lost while systemd is still
    // starting (the signal is repeated until init takes it).
    host.ok(&["start", "web1"]);
    let start = Instant::now();
    host.ok(&["stop", "web1", "--timeout", "20"]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "early stop took {:?}",
        start.elapsed()
    );
    assert_eq!(host.info("web1").last_exit.as_deref(), Some("stopped"));
    // And it boots again.
    host.ok(&["start", "web1"]);
    wait_running(&host, "web1");
    // Its name resolves to its own address, set up before init ran.
    let ip = host.info("web1").nic.unwrap().ipv4.unwrap();
    assert!(host.sh_ok("web1", "getent ahostsv4 web1").contains(&ip));
    assert!(host.sh_ok("web1", "ip -4 addr show eth0").contains(&ip));
    // Power from inside: reboot comes back as a new boot (a new init, the
    // same address), poweroff leaves the VPS stopped.
    let pid_before = host.init_pid("web1");
    let _ = host.croft(&["exec", "web1", "--", "systemctl", "reboot"]);
    host.wait_for(
        "the VPS to come back from a reboot",
        Duration::from_secs(60),
        || {
            host.info("web1").status == Status::Running
                && host.details("web1").init_pid.is_some_and(|p| p != pid_before)
        },
    );
    wait_running(&host, "web1");
    assert!(
        host.sh_ok("web1", "ip -4 addr show eth0").contains(&ip),
        "lost its address over a reboot"
    );
    let _ = host.croft(&["exec", "web1", "--", "systemctl", "poweroff"]);
    host.wait_for("the VPS to power off", Duration::from_secs(60), || {
        host.info("web1").status == Status::Stopped
    });
    // Published, the stopped VPS becomes an image whose VPSes boot with
    // what it had installed but an identity of their own.
    host.ok(&["publish", "web1", "test/web-template"]);
    let image = host.pool_dir().join("images/test_web-template");
    assert_eq!(std::fs::read_to_string(image.join("etc/machine-id")).unwrap(), "");
    let keys: Vec<_> = std::fs::read_dir(image.join("etc/ssh"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ssh_host_"))
        .collect();
    assert!(keys.is_empty(), "the image holds host keys: {keys:?}");
    host.ok(&["launch", "test/web-template", "pub1"]);
    wait_running(&host, "pub1");
    assert_eq!(host.sh_ok("pub1", "hostname").trim(), "pub1");
    let id = host.sh_ok("pub1", "cat /etc/machine-id");
    assert_eq!(id.trim().len(), 32, "{id}");
    assert!(id != id1 && id != id2, "pub1 kept a machine-id: {id}");
    let key = host.sh_ok("pub1", "cat /etc/ssh/ssh_host_ed25519_key.pub");
    assert_ne!(key, key1, "pub1 kept web1's SSH host key");
    assert_eq!(
        host.sh_ok("pub1", "systemctl is-active ssh croft-probe.service"),
        "active\nactive\n"
    );
    assert_eq!(host.sh_ok("pub1", "getent shadow root | cut -d: -f2").trim(), "*");
    // The journal of web1's boots did not come along.
    let journals = host.sh_ok("pub1", "ls /var/log/journal 2>/dev/null; true");
    assert!(
        journals.split_whitespace().all(|d| d == id.trim()),
        "web1's journal came along: {journals}"
    );
    host.ok(&["delete", "--force", "pub1"]);
    // The trixie VPS ran beside them all along and shuts down cleanly too.
    assert!(host
        .sh_ok("new1", "systemctl is-system-running")
        .starts_with("running"));
    host.ok(&["stop", "new1", "--timeout", "20"]);
    assert_eq!(host.info("new1").last_exit.as_deref(), Some("stopped"));
}

/// Containers inside a VPS (`features.nesting`), on this cgroup v1 host:
/// podman from Debian runs a container from an image built here, once the
/// feature is on (a fully visible procfs for its runtime), and not before;
/// the containers run without cgroups of their own (podman's
/// `cgroups = "disabled"`), held by the VPS's limits. The VPS's own network
/// sysctls are its own to set.
#[test]
fn podman_runs_a_container_inside_a_vps_once_nesting_is_on() {
    common::require_root();
    let host = Host::with_config("storage_size = \"4GiB\"");
    // A Debian image with podman, built here (the daemon's namespace has
    // no way out) and imported.
    let build = host.dir.join("podman-rootfs");
    let out = std::process::Command::new("debootstrap")
        .args([
            "--variant=minbase",
            "--include=systemd-sysv,dbus,iproute2,procps,podman,crun,netavark",
            "bookworm",
        ])
        .arg(&build)
        .arg("http://deb.debian.org/debian")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "debootstrap with podman (needs the Debian mirror): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // As croft's own builds leave it: no device nodes, no machine-id.
    std::fs::remove_dir_all(build.join("dev")).unwrap();
    std::fs::create_dir(build.join("dev")).unwrap();
    std::fs::write(build.join("etc/machine-id"), "").unwrap();
    let tarball = host.dir.join("podman.tar.gz");
    croft_host::archive::pack(&build, &std::fs::File::create(&tarball).unwrap()).unwrap();
    std::fs::remove_dir_all(&build).unwrap();
    host.ok(&["image", "import", tarball.to_str().unwrap(), "test/podman"]);
    std::fs::remove_file(&tarball).unwrap();
    // The container image: a static busybox, made into a tarball here.
    let bb = host.dir.join("bb");
    std::fs::create_dir_all(bb.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", bb.join("bin/busybox")).unwrap();
    let bb_tar = host.dir.join("bb.tar");
    let tarred = std::process::Command::new("tar")
        .arg("-C")
        .arg(&bb)
        .args(["-cf"])
        .arg(&bb_tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(tarred.success());

    host.ok(&["launch", "test/podman", "pod1"]);
    wait_running(&host, "pod1");
    host.ok(&["file", "push", bb_tar.to_str().unwrap(), "pod1:/root/bb.tar"]);
    host.sh_ok(
        "pod1",
        "mkdir -p /etc/containers && printf '[containers]\\ncgroups = \"disabled\"\\n' > /etc/containers/containers.conf \
         && podman import /root/bb.tar localhost/bb >/dev/null",
    );
    let run =
        "podman run --rm --network none localhost/bb /bin/busybox sh -c 'echo in a container; echo pid $$'";
    // Off: the runtime may not mount its proc, and says so.
    let out = host.sh("pod1", run);
    assert!(!out.status.success(), "a container ran without nesting");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mount `proc`"), "{err}");
    assert!(host.sh("pod1", "test -e /dev/.croft/proc").status.code() == Some(1));

    host.ok(&["stop", "pod1"]);
    host.ok(&["config", "set", "pod1", "features.nesting=true"]);
    host.ok(&["start", "pod1"]);
    wait_running(&host, "pod1");
    let out = host.sh_ok("pod1", run);
    assert_eq!(out, "in a container\npid 1\n");
    // The VPS's own network sysctls are its own (forwarding for a VPN);
    // the host's are untouched, and a host-wide one stays closed (the
    // read-only /proc/sys itself: escape.rs).
    let host_forwarding = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    host.sh_ok(
        "pod1",
        "sysctl -w net.ipv4.ip_forward=0 >/dev/null && sysctl -w net.ipv4.ip_forward=1 >/dev/null",
    );
    assert_eq!(
        host.sh_ok("pod1", "cat /proc/sys/net/ipv4/ip_forward").trim(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_forwarding
    );
    assert!(!host.sh("pod1", "sysctl -w kernel.domainname=x").status.success());
}
