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
