//! End-to-end tests of images in the pool: export, import and delete,
//! hostile tarballs refused, and no image or volume left by a full pool,
//! a crash mid-import or a failed build. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::net::Started;
use common::Host;
use croft_api::{Image, StoragePool};
use std::time::Duration;

/// Write a hostile or broken tarball with Python's tarfile (it writes
/// whatever names it is given).
fn python_tar(path: &std::path::Path, script: &str) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import io, tarfile\nt = tarfile.open({:?}, 'w')\n{script}\nt.close()",
            path.display().to_string()
        ))
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn images_export_import_and_delete_and_hostile_tarballs_are_refused() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "base1"]);
    let tarball = host.dir.join("busybox.tar.gz");
    let out = host.ok(&["image", "export", "busybox", tarball.to_str().unwrap()]);
    let sha = out.split_whitespace().next().unwrap().to_string();
    let sum = std::process::Command::new("sha256sum")
        .arg(&tarball)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sum.stdout)
            .split_whitespace()
            .next()
            .unwrap(),
        sha
    );

    host.ok(&["image", "import", tarball.to_str().unwrap(), "mine/box"]);
    let images: Vec<Image> = host.ok_json(&["image", "list", "--format", "json"]);
    let mine = images
        .iter()
        .find(|i| i.name == "mine/box")
        .expect("imported image listed");
    assert_eq!(mine.source, "imported");
    assert!(mine.available);
    assert_eq!(mine.sha256.as_deref(), Some(sha.as_str()));
    host.ok(&["launch", "mine/box", "fromimg1"]);
    assert_eq!(host.sh_ok("fromimg1", "hostname").trim(), "fromimg1");
    // What the image is, read from its files.
    let info: Image = host.ok_json(&["image", "info", "mine/box", "--format", "json"]);
    assert_eq!(info.arch.as_deref(), Some("amd64"), "{info:?}");
    assert_eq!(info.sha256.as_deref(), Some(sha.as_str()));
    let built: Image = host.ok_json(&["image", "info", "busybox", "--format", "json"]);
    assert_eq!(
        (built.distro.as_deref(), built.arch.as_deref()),
        (Some("busybox"), Some("amd64")),
        "{built:?}"
    );
    assert!(built.size_bytes.unwrap_or(0) > 1 << 20, "{built:?}");
    assert!(host.fails(&["image", "info", "nosuch"]).contains("not found"));
    // An existing file is not overwritten by an export unless asked.
    assert!(host
        .fails(&["image", "export", "busybox", tarball.to_str().unwrap()])
        .contains("exists"));
    assert_eq!(
        host.ok(&["image", "export", "--force", "busybox", tarball.to_str().unwrap()])
            .split_whitespace()
            .next(),
        Some(sha.as_str())
    );
    // The same tree as .tar.zst imports too.
    let plain = host.dir.join("busybox.tar");
    let zst = host.dir.join("busybox.tar.zst");
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&format!("gzip -dc {} > {}", tarball.display(), plain.display()));
    sh(&format!("zstd -q -T0 {} -o {}", plain.display(), zst.display()));
    host.ok(&["image", "import", zst.to_str().unwrap(), "mine/zst"]);
    host.ok(&["launch", "mine/zst", "fromzst1"]);
    assert_eq!(host.sh_ok("fromzst1", "hostname").trim(), "fromzst1");
    host.ok(&["delete", "--force", "fromzst1"]);
    host.ok(&["image", "delete", "mine/zst"]);
    // An image for another architecture imports but does not launch.
    let arm = host.dir.join("arm64.tar");
    python_tar(
        &arm,
        "elf = b'\\x7fELF\\x02\\x01\\x01' + bytes(11) + (183).to_bytes(2, 'little') + bytes(44)\n\
         i = tarfile.TarInfo('bin/sh'); i.size = len(elf); i.mode = 0o755; t.addfile(i, io.BytesIO(elf))",
    );
    host.ok(&["image", "import", arm.to_str().unwrap(), "other/arm"]);
    let err = host.fails(&["launch", "other/arm", "arm1"]);
    assert!(err.contains("built for arm64"), "{err}");
    assert!(host.fails(&["info", "arm1"]).contains("not found"));
    host.ok(&["image", "delete", "other/arm"]);
    assert!(host
        .fails(&["image", "import", tarball.to_str().unwrap(), "mine/box"])
        .contains("already exists"));

    // Hostile and broken tarballs: a clear error, nothing written outside,
    // no image registered, no half-built volume left.
    let images_dir = host.pool_dir().join("images");
    let evil = host.dir.join("evil.tar");
    python_tar(
        &evil,
        "i = tarfile.TarInfo('bin/sh'); t.addfile(i, io.BytesIO(b''))\n\
         i = tarfile.TarInfo('../../escaped'); i.size = 3; t.addfile(i, io.BytesIO(b'bad'))",
    );
    let err = host.fails(&["image", "import", evil.to_str().unwrap(), "evil"]);
    assert!(err.contains(".."), "{err}");
    let dev = host.dir.join("dev.tar");
    python_tar(
        &dev,
        "i = tarfile.TarInfo('dev/sda'); i.type = tarfile.BLKTYPE; i.devmajor = 8; t.addfile(i)",
    );
    assert!(host
        .fails(&["image", "import", dev.to_str().unwrap(), "dev1"])
        .contains("device node"));
    let cut = host.dir.join("cut.tar.gz");
    let bytes = std::fs::read(&tarball).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(host
        .fails(&["image", "import", cut.to_str().unwrap(), "cut1"])
        .contains("corrupt"));
    assert!(host
        .fails(&["image", "import", "/nonexistent.tar", "none1"])
        .contains("No such file"));
    assert!(host
        .fails(&["image", "import", tarball.to_str().unwrap(), "../x"])
        .contains("invalid image name"));
    // No request names a file on croftd's host: the tarball is the body.
    let (code, body) = host.api_err(
        "POST",
        "/1.0/images/import",
        Some(r#"{"name":"x1","path":"/nonexistent.tar"}"#),
    );
    assert_eq!(code, 405, "{body:?}");
    let (code, body) = host.api_err("POST", "/1.0/images?name=x1", Some(r#"{"path":"/etc/shadow"}"#));
    assert_eq!(
        (code, body.error.contains("send the tarball as the body")),
        (400, true),
        "{body:?}"
    );
    for leftover in ["escaped", "evil", "dev1", "cut1"] {
        assert!(
            !host.pool_dir().join(leftover).exists() && !images_dir.join(leftover).exists(),
            "{leftover} written"
        );
    }
    let entries: Vec<String> = std::fs::read_dir(&images_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(
        entries,
        ["busybox", "mine_box"],
        "unexpected volumes in the image store"
    );
    let images: Vec<Image> = host.ok_json(&["image", "list", "--format", "json"]);
    let imported: Vec<&str> = images
        .iter()
        .filter(|i| i.source == "imported")
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(
        imported,
        ["mine/box"],
        "a refused import was registered: {images:?}"
    );

    // Deleting the image leaves VPSes made from it running.
    host.ok(&["image", "delete", "mine/box"]);
    assert!(!images_dir.join("mine_box").exists());
    assert!(host
        .fails(&["launch", "mine/box", "fromimg2"])
        .contains("unknown image"));
    assert_eq!(host.sh_ok("fromimg1", "echo ok").trim(), "ok");
}

/// The pool filling up during an import, and croftd killed in the middle
/// of one: a clear error or an interrupted job, and afterwards no image
/// registered, no half-written volume, and a pool that still works.
#[test]
fn a_full_pool_or_a_crash_mid_import_leaves_no_image_and_no_volume() {
    let mut host = Host::new();
    // 700 MiB of zeros (a few KiB as .tar.zst) cannot fit the 512 MiB pool.
    let src = host.dir.join("big");
    let tarball = host.dir.join("big.tar.zst");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "set -e; mkdir -p {s}/bin; : > {s}/bin/sh; truncate -s 700M {s}/zeros; \
             tar --zstd -cf {t} -C {s} bin zeros; rm -rf {s}",
            s = src.display(),
            t = tarball.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let images = host.pool_dir().join("images");
    let unfinished = images.join(".big.building");

    // Killed mid-import: the upload fails, the half-written volume is
    // removed on the next start, and nothing is registered.
    let import = host.croft_spawn(&["image", "import", tarball.to_str().unwrap(), "big"]);
    host.wait_for("the import to start writing", Duration::from_secs(20), || {
        unfinished.exists()
    });
    std::thread::sleep(Duration::from_millis(200));
    host.kill_daemon();
    assert!(unfinished.exists(), "the import finished before the kill");
    let out = import.wait_with_output().unwrap();
    assert!(!out.status.success(), "the import succeeded without its daemon");
    host.start_daemon();
    assert!(!unfinished.exists(), "half-written volume left after restart");
    assert!(!host
        .ok(&["image", "list", "--format", "json"])
        .contains("\"big\""));

    // The pool fills up: a clear error, and the space comes back.
    let err = host.fails(&["image", "import", tarball.to_str().unwrap(), "big"]);
    assert!(err.contains("pool is full"), "{err}");
    for (what, gone) in [
        ("image dir", !images.join("big").exists()),
        ("unfinished volume", !unfinished.exists()),
    ] {
        assert!(gone, "{what} left after a failed import");
    }
    let list = host.ok(&["image", "list", "--format", "json"]);
    assert!(!list.contains("\"big\""), "{list}");
    // The space comes back in the background (the btrfs cleaner frees a
    // deleted volume after the answer).
    let used = || -> u64 {
        let pool: StoragePool = host.ok_json(&["storage", "info", "default", "--format", "json"]);
        pool.used_bytes
    };
    host.wait_for("the space back", Duration::from_secs(30), || used() < 200 << 20);
    host.ok(&["launch", "busybox", "after1"]);
    host.sh_ok("after1", "echo data > /root/f && sync");
}

/// debootstrap failing half-way (here at its first download: the daemon's
/// network namespace has no way out): a clear error, no image registered,
/// no volume left, and a launch of it fails the same way without a trace.
#[test]
fn a_failed_image_build_registers_nothing_and_leaves_no_volume() {
    let host = Host::with_config("debian_mirror = \"http://192.0.2.1/debian\"");
    let err = host.fails(&["image", "build", "debian/bookworm"]);
    assert!(
        err.contains("build of debian/bookworm failed") && err.contains("debootstrap"),
        "{err}"
    );
    let info: Image = host.ok_json(&["image", "info", "debian/bookworm", "--format", "json"]);
    assert!(!info.available, "{info:?}");
    let images = host.pool_dir().join("images");
    let left: Vec<String> = std::fs::read_dir(&images)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| !n.contains("bookworm")),
        "left behind: {left:?}"
    );
    let err = host.fails(&["launch", "debian/bookworm", "d1"]);
    assert!(err.contains("debootstrap"), "{err}");
    host.assert_no_trace_of("d1");
    assert!(host
        .fails(&["image", "build", "debian/nosuch"])
        .contains("unknown image"));
    assert!(host
        .fails(&["image", "build", "../x"])
        .contains("invalid image name"));
    // A build of an image that is there is a no-op that succeeds.
    host.ok(&["launch", "busybox", "b1"]);
    host.ok(&["image", "build", "busybox"]);
}

/// The pids of processes whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(text)
                .then(|| format!("{}: {cmdline}", e.file_name().to_string_lossy()))
        })
        .collect()
}

/// A build stuck on a download that never comes (a mirror that takes the
/// connection and says nothing) is stopped by `croft job cancel`:
/// debootstrap and its children killed, no image registered, no volume
/// left, the waiting `croft image build` told so.
#[test]
fn a_cancelled_image_build_stops_a_hung_download_and_leaves_nothing() {
    let host = Host::with_config("debian_mirror = \"http://127.0.0.1:8089/debian\"");
    // The silent mirror, in croftd's network namespace.
    let _mirror = Started(
        std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", host.netns))
            .args(["python3", "-c"])
            .arg(
                "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('127.0.0.1', 8089))\ns.listen(8)\nheld = []\nwhile True:\n    held.append(s.accept())\n",
            )
            .spawn()
            .expect("run python3"),
    );
    // Listening before the build starts (else debootstrap finds the port
    // closed and fails at once).
    host.wait_for("the silent mirror to listen", Duration::from_secs(20), || {
        host.host_sh("ss -ltn | grep -q '127.0.0.1:8089'")
            .status
            .success()
    });
    let mut build = Started(host.croft_spawn(&["image", "build", "debian/bookworm"]));
    let pool = host.pool_dir().display().to_string();
    // debootstrap's first download hangs.
    host.wait_for("a download from the mirror", Duration::from_secs(60), || {
        !processes_mentioning("127.0.0.1:8089/debian/dists/bookworm").is_empty()
    });
    let jobs: Vec<croft_api::Job> = host.ok_json(&["job", "list", "--format", "json"]);
    let job = jobs
        .iter()
        .find(|j| j.kind == "image-build" && j.status == croft_api::JobStatus::Running)
        .unwrap_or_else(|| panic!("no running build: {jobs:?}"));
    let out = host.ok(&["job", "cancel", &job.id]);
    assert!(out.contains("cancelled"), "{out}");
    // The waiting command hears it, and nothing of the build runs on.
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut build.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!build.0.wait().unwrap().success());
    assert!(
        stderr.contains("build of debian/bookworm was cancelled"),
        "{stderr}"
    );
    assert_eq!(processes_mentioning(&pool), Vec::<String>::new());
    assert_eq!(processes_mentioning("127.0.0.1:8089"), Vec::<String>::new());
    let info: Image = host.ok_json(&["image", "info", "debian/bookworm", "--format", "json"]);
    assert!(!info.available, "{info:?}");
    let left: Vec<String> = std::fs::read_dir(host.pool_dir().join("images"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.iter().all(|n| !n.contains("bookworm")),
        "left behind: {left:?}"
    );
    let shown: croft_api::Job = host.ok_json(&["job", "show", &job.id, "--format", "json"]);
    assert_eq!(shown.status, croft_api::JobStatus::Cancelled, "{shown:?}");
    let err = host.fails(&["job", "cancel", &job.id]);
    assert!(err.contains("has ended (cancelled)"), "{err}");
}

/// `croft publish`: a stopped VPS, or a snapshot of a running one, becomes
/// an image that launches VPSes with what it held but none of its
/// identity; links the tenant left on its disk lead nowhere on the host;
/// a running VPS without a snapshot, a taken name or a bad one are
/// refused with nothing made.
#[test]
fn a_published_vps_launches_new_vpses_with_its_files_but_a_fresh_identity() {
    let host = Host::new();
    host.ok(&["launch", "busybox", "src1"]);
    // Something worth keeping, and an identity and traces to clear.
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPublishedKey owner@src1";
    host.sh_ok(
        "src1",
        &format!(
            "mkdir -p /srv/app /root/.ssh /var/log/app /var/lib/dhcp && echo app-v1 > /srv/app/version \
             && echo 0123456789abcdef0123456789abcdef > /etc/machine-id \
             && echo '{key}' > /root/.ssh/authorized_keys && echo 'mysql -phunter2' > /root/.bash_history \
             && echo started > /var/log/app/app.log && echo old > /var/log/app/app.log.1.gz \
             && echo lease > /var/lib/dhcp/dhclient.eth0.leases"
        ),
    );
    // Links to the host's files, where the clearing looks: the host's
    // must stay as they are.
    let canary = host.dir.join("canary");
    std::fs::create_dir_all(canary.join("ssh")).unwrap();
    std::fs::write(canary.join("ssh/ssh_host_ed25519_key"), "host key").unwrap();
    std::fs::write(canary.join("ssh/authorized_keys"), "host's keys").unwrap();
    std::fs::write(canary.join("app.log"), "host log").unwrap();
    host.sh_ok(
        "src1",
        &format!(
            "ln -s {c}/app.log /var/log/app/linked.log && mkdir -p /home/ann && ln -s {c}/ssh /home/ann/.ssh \
             && ln -s {c}/app.log /home/ann/.bash_history",
            c = canary.display()
        ),
    );
    let id_before = host.sh_ok("src1", "cat /etc/machine-id");

    // Running, without a snapshot: refused, and said what to do.
    let err = host.fails(&["publish", "src1", "app/v1"]);
    assert!(
        err.contains("src1 is running: stop it first, or publish a snapshot"),
        "{err}"
    );
    // A snapshot of the running VPS publishes.
    host.ok(&["snapshot", "create", "src1", "s1"]);
    let out = host.ok(&["publish", "src1/s1", "app/v1", "--description", "the app, v1"]);
    assert!(out.contains("Published src1/s1 as image app/v1"), "{out}");
    let image: Image = host.ok_json(&["image", "info", "app/v1", "--format", "json"]);
    assert_eq!(image.source, "published");
    assert_eq!(image.description, "the app, v1");
    assert!(image.available);
    // A stopped VPS publishes as it is.
    host.ok(&["stop", "src1"]);
    host.ok(&["publish", "src1", "app/v1-stopped"]);

    for (image, vps) in [("app/v1", "new1"), ("app/v1-stopped", "new2")] {
        host.ok(&["launch", image, vps]);
        assert_eq!(host.sh_ok(vps, "cat /srv/app/version"), "app-v1\n");
        assert_eq!(host.sh_ok(vps, "hostname").trim(), vps);
        let id = host.sh_ok(vps, "cat /etc/machine-id");
        assert_eq!(id.trim().len(), 32, "{id}");
        assert_ne!(id, id_before, "{vps} kept the published VPS's machine-id");
        let gone = host.sh_ok(
            vps,
            "for f in /root/.ssh/authorized_keys /root/.bash_history /var/log/app/app.log.1.gz \
             /var/lib/dhcp/dhclient.eth0.leases; do test -e $f && echo $f; done; true",
        );
        assert_eq!(gone, "", "{vps} kept: {gone}");
        assert_eq!(host.sh_ok(vps, "wc -c < /var/log/app/app.log").trim(), "0");
    }
    // The image itself holds none of it (what launch gives each VPS
    // anew is not what proves the clearing).
    let image = host.pool_dir().join("images/app_v1");
    assert_eq!(std::fs::read_to_string(image.join("etc/machine-id")).unwrap(), "");
    for gone in [
        "root/.ssh/authorized_keys",
        "root/.bash_history",
        "var/log/app/app.log.1.gz",
        "var/lib/dhcp/dhclient.eth0.leases",
    ] {
        assert!(
            std::fs::symlink_metadata(image.join(gone)).is_err(),
            "the image holds {gone}"
        );
    }
    // The host's files behind the links are untouched.
    assert_eq!(
        std::fs::read_to_string(canary.join("ssh/ssh_host_ed25519_key")).unwrap(),
        "host key"
    );
    assert_eq!(
        std::fs::read_to_string(canary.join("app.log")).unwrap(),
        "host log"
    );
    assert_eq!(
        std::fs::read_to_string(canary.join("ssh/authorized_keys")).unwrap(),
        "host's keys"
    );
    // The source is as it was.
    host.ok(&["start", "src1"]);
    assert_eq!(host.sh_ok("src1", "cat /etc/machine-id"), id_before);
    assert!(host.sh_ok("src1", "cat /root/.ssh/authorized_keys").contains(key));

    // Bad input: one line, nothing made.
    let before: Vec<Image> = host.ok_json(&["image", "list", "--format", "json"]);
    for (args, says) in [
        (
            &["publish", "src1/s1", "app/v1"][..],
            "image app/v1 already exists",
        ),
        (&["publish", "src1/s1", "busybox"], "image busybox already exists"),
        (&["publish", "src1/nosnap", "app/v2"], "snapshot nosnap of src1"),
        (&["publish", "nosuch", "app/v2"], "nosuch"),
        (&["publish", "src1/s1", "../x"], "invalid image name"),
    ] {
        let err = host.fails(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let after: Vec<Image> = host.ok_json(&["image", "list", "--format", "json"]);
    assert_eq!(before, after);
    // Deleting the image leaves the VPSes launched from it alone.
    host.ok(&["image", "delete", "app/v1"]);
    assert_eq!(host.sh_ok("new1", "cat /srv/app/version"), "app-v1\n");
}

/// `croft image refresh`: the image is built anew and takes the old one's
/// place; VPSes made from the old keep their disks, new ones get the new
/// build. A refresh that fails keeps the old image; images croft does not
/// build cannot be refreshed.
#[test]
fn a_refreshed_image_takes_the_old_ones_place_and_a_failed_refresh_keeps_it() {
    let mut host = Host::new();
    host.ok(&["launch", "busybox", "old1"]);
    host.sh_ok("old1", "echo mine > /root/file");
    let volume = host.pool_dir().join("images/busybox");
    let uuid = |path: &std::path::Path| {
        let out = std::process::Command::new("btrfs")
            .args(["subvolume", "show"])
            .arg(path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("UUID:").map(|u| u.trim().to_string()))
            .unwrap_or_else(|| panic!("no UUID in {text}"))
    };
    let before = uuid(&volume);
    let built_before: Image = host.ok_json(&["image", "info", "busybox", "--format", "json"]);
    std::thread::sleep(Duration::from_millis(1100));
    let out = host.ok(&["image", "refresh", "busybox"]);
    assert!(out.contains("Image busybox is built anew"), "{out}");
    let after = uuid(&volume);
    assert_ne!(before, after, "the image volume was not replaced");
    let built_after: Image = host.ok_json(&["image", "info", "busybox", "--format", "json"]);
    assert!(built_after.available);
    assert_ne!(built_before.created_at, built_after.created_at);
    // Nothing of the old volume or the build is left under the images.
    let names: Vec<String> = std::fs::read_dir(host.pool_dir().join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["busybox"], "{names:?}");
    // The old VPS runs on with its disk; a new one launches from the new.
    assert_eq!(host.sh_ok("old1", "cat /root/file"), "mine\n");
    host.ok(&["launch", "busybox", "new1"]);
    assert_eq!(host.sh_ok("new1", "hostname").trim(), "new1");

    // A refresh that cannot build (no busybox to build from) fails and
    // keeps the image in place.
    let config = std::fs::read_to_string(&host.config).unwrap();
    std::fs::write(
        &host.config,
        format!("{config}busybox = \"/nonexistent/busybox\"\n"),
    )
    .unwrap();
    host.kill_daemon();
    host.start_daemon();
    let err = host.fails(&["image", "refresh", "busybox"]);
    assert!(err.contains("/nonexistent/busybox"), "{err}");
    assert_eq!(uuid(&volume), after, "a failed refresh replaced the image");
    assert!(
        !host.pool_dir().join("images/.busybox.building").exists(),
        "a failed refresh left its volume"
    );
    host.ok(&["launch", "busybox", "new2"]);
    // Only images croft builds are refreshed.
    host.ok(&["stop", "new2"]);
    host.ok(&["publish", "new2", "mine"]);
    let err = host.fails(&["image", "refresh", "mine"]);
    assert!(
        err.contains("image mine is published; croft cannot refresh it"),
        "{err}"
    );
    let err = host.fails(&["image", "refresh", "nosuch"]);
    assert!(err.contains("unknown image"), "{err}");
}
