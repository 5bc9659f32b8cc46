//! End-to-end tests of the remote API: croftd listens on TLS in its
//! network namespace; the CLI and curl run in another namespace, joined to
//! it by a veth pair, and reach it over TCP. Root needed.
#![cfg(feature = "e2e")]

mod common;

use common::{bin_dir, Host};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// croftd's address on the link to the client's namespace.
const SERVER_IP: &str = "10.231.0.1";
const CLIENT_IP: &str = "10.231.0.2";

/// A network namespace for the client, linked to the daemon's, with a
/// home of its own for the CLI's remotes; removed when dropped.
struct Client {
    netns: String,
    home: PathBuf,
}

impl Client {
    fn new(host: &Host) -> Client {
        let netns = format!("{}-client", host.netns);
        let home = host.dir.join("client-home");
        std::fs::create_dir_all(&home).unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?}");
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &netns])
            .stderr(Stdio::null())
            .status();
        run(&["netns", "add", &netns]);
        let client = Client { netns, home };
        run(&["-n", &client.netns, "link", "set", "lo", "up"]);
        run(&[
            "-n",
            &host.netns,
            "link",
            "add",
            "crremote",
            "type",
            "veth",
            "peer",
            "name",
            "crclient",
            "netns",
            &client.netns,
        ]);
        run(&[
            "-n",
            &host.netns,
            "addr",
            "add",
            &format!("{SERVER_IP}/30"),
            "dev",
            "crremote",
        ]);
        run(&["-n", &host.netns, "link", "set", "crremote", "up"]);
        run(&[
            "-n",
            &client.netns,
            "addr",
            "add",
            &format!("{CLIENT_IP}/30"),
            "dev",
            "crclient",
        ]);
        run(&["-n", &client.netns, "link", "set", "crclient", "up"]);
        client
    }

    /// Run `program` in the client's namespace with the client's home.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns, program])
            .args(args)
            .env("CROFT_CONFIG_DIR", &self.home)
            .env_remove("CROFT_SOCKET")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run croft in the client's namespace with `input` as its stdin.
    fn croft_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(bin_dir().join("croft"))
            .args(args)
            .env("CROFT_CONFIG_DIR", &self.home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Start croft in the client's namespace (`ip netns exec` becomes it).
    fn croft_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(bin_dir().join("croft"))
            .args(args)
            .env("CROFT_CONFIG_DIR", &self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn croft(&self, args: &[&str]) -> Output {
        self.run(bin_dir().join("croft").to_str().unwrap(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.croft(args);
        assert!(
            out.status.success(),
            "croft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The one-line error of a croft command that must fail.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.croft(args);
        assert!(!out.status.success(), "croft {args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The veth pair goes with the namespace.
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

#[test]
fn a_tenant_manages_its_vpses_from_another_machine_over_tls() {
    let host = Host::with_config("https_address = \"0.0.0.0:8443\"\n");
    let client = Client::new(&host);
    let url = format!("https://{SERVER_IP}:8443");
    // The admin, on the host: a tenant, a VPS of someone else's, and an
    // owner token for the tenant.
    host.ok(&["tenant", "create", "acme", "--description", "a customer"]);
    host.ok(&["tenant", "quota", "acme", "--vpses", "1", "--memory", "256MiB"]);
    host.ok(&["plan", "create", "small", "--memory", "128MiB", "--cpu", "0.5"]);
    host.ok(&["tenant", "images", "acme", "busybox"]);
    host.ok(&["launch", "busybox", "theirs", "--no-start"]);
    let token = host.ok(&[
        "--tenant",
        "acme",
        "token",
        "create",
        "--scope",
        "read-write",
        "--expires",
        "1d",
    ]);
    let token = token.trim();
    let info: croft_api::ServerInfo = host.ok_json(&["server", "info", "--format", "json"]);
    let fingerprint = info.certificate_fingerprint.expect("a fingerprint");
    assert_eq!(info.https_address.as_deref(), Some("0.0.0.0:8443"));

    // A wrong fingerprint is refused; nothing is kept.
    let err = client.fails(&[
        "remote",
        "add",
        "prod",
        &url,
        "--token",
        token,
        "--fingerprint",
        &"ab".repeat(32),
    ]);
    assert!(err.contains("not adding it"), "{err}");
    // Without a fingerprint and no terminal to ask on: told how.
    let err = client.fails(&["remote", "add", "prod", &url, "--token", token]);
    assert!(err.contains(&fingerprint), "{err}");
    let added = client.ok(&[
        "remote",
        "add",
        "prod",
        &url,
        "--token",
        token,
        "--fingerprint",
        &fingerprint,
    ]);
    assert!(added.contains("owner of tenant acme"), "{added}");
    let kept = std::fs::metadata(client.home.join("remotes.toml")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&kept.permissions()) & 0o777,
        0o600
    );

    // The tenant's life, remotely: launch, list, stop, snapshot, delete;
    // held to its quota.
    let err = client.fails(&["--remote", "prod", "launch", "busybox", "web"]);
    assert!(err.contains("limits.memory"), "{err}");
    client.ok(&["--remote", "prod", "launch", "busybox", "web", "--plan", "small"]);
    let err = client.fails(&["--remote", "prod", "launch", "busybox", "web2", "--plan", "small"]);
    assert!(err.contains("quota of 1 VPSes"), "{err}");
    let usage = client.ok(&["--remote", "prod", "tenant", "usage", "acme"]);
    assert!(usage.contains("128MiB") && usage.contains("256MiB"), "{usage}");
    let list: Vec<croft_api::Instance> =
        serde_json::from_str(&client.ok(&["--remote", "prod", "list", "--format", "json"])).unwrap();
    let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["web"], "the tenant sees its own VPS only");
    assert_eq!(list[0].tenant, "acme");
    // exec over the network: streams, stdin, the exit code, Ctrl+C.
    let out = client.croft(&[
        "exec",
        "prod:web",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = client.croft_with_input(&["exec", "prod:web", "--", "tr", "a-z", "A-Z"], b"piped in\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED IN\n");
    let sleeper = client.croft_spawn(&["exec", "prod:web", "--", "sleep", "60"]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = sleeper.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = client.ok(&["exec", "prod:web", "--", "sh", "-c", "pidof sleep || echo none"]);
    assert_eq!(gone.trim(), "none", "the interrupted command is gone");
    // Files pushed and pulled over the network: a binary round-trips
    // whole, with its mode.
    let local = client.home.join("blob");
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &blob).unwrap();
    std::fs::set_permissions(&local, std::os::unix::fs::PermissionsExt::from_mode(0o750)).unwrap();
    client.ok(&[
        "--remote",
        "prod",
        "file",
        "push",
        local.to_str().unwrap(),
        "web:/root/blob",
    ]);
    let mode = client.ok(&["exec", "prod:web", "--", "stat", "-c", "%a", "/root/blob"]);
    assert_eq!(mode.trim(), "750");
    let back = client.home.join("blob.back");
    client.ok(&[
        "--remote",
        "prod",
        "file",
        "pull",
        "web:/root/blob",
        back.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&back).unwrap(), blob, "the pulled file differs");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&back).unwrap().permissions()) & 0o777,
        0o750
    );
    // Another tenant's VPS is not there for this token.
    let err = client.fails(&[
        "--remote",
        "prod",
        "file",
        "push",
        local.to_str().unwrap(),
        "theirs:/root/x",
    ]);
    assert!(err.contains("not found"), "{err}");
    // A terminal: exec -t, and the console (busybox's askfirst shell),
    // detached with Ctrl+a q.
    let in_pty = |args: &[&str], input: &[u8]| {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &client.netns])
            .arg(bin_dir().join("croft"))
            .args(args)
            .env("CROFT_CONFIG_DIR", &client.home);
        common::run_in_pty(command, input, std::time::Duration::from_secs(15))
    };
    let (code, text) = in_pty(&["exec", "-t", "prod:web", "--", "sh", "-c", "tty; exit 4"], b"");
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("/dev/pts/"), "no terminal inside: {text:?}");
    let (code, text) = in_pty(&["console", "prod:web"], b"\r\recho con$((40+2))sole\r\x01q");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("con42sole"),
        "the console did not run the command: {text:?}"
    );
    assert!(text.contains("Detached from web"), "{text:?}");
    // croft monitor hears the stop.
    let monitor = client.croft_spawn(&["--remote", "prod", "monitor", "--count", "1", "--format", "json"]);
    std::thread::sleep(std::time::Duration::from_millis(1000));
    client.ok(&["stop", "prod:web"]);
    let out = monitor.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let event: croft_api::Event = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            event.tenant.as_str(),
            event.action.as_str(),
            event.target.as_str()
        ),
        ("acme", "vps-stopped", "web")
    );
    client.ok(&["snapshot", "create", "prod:web", "s1"]);
    let snaps = client.ok(&["--remote", "prod", "snapshot", "list", "web"]);
    assert!(snaps.contains("s1"), "{snaps}");
    // Snapshots stream both ways over the same authenticated API:
    // exported from the remote, deleted there, imported back.
    let stream = client.home.join("web-s1.stream");
    let stream_path = stream.to_str().unwrap();
    let out = client.ok(&["snapshot", "export", "prod:web", "s1", stream_path]);
    assert!(out.contains("sha256"), "{out}");
    let sent = std::fs::read(&stream).unwrap();
    assert!(sent.starts_with(b"btrfs-stream\0"), "not a send stream");
    client.ok(&["--remote", "prod", "snapshot", "delete", "web", "s1"]);
    client.ok(&[
        "--remote",
        "prod",
        "snapshot",
        "import",
        "web",
        stream_path,
        "--name",
        "back",
    ]);
    let snaps = client.ok(&["--remote", "prod", "snapshot", "list", "web"]);
    assert!(snaps.contains("back") && !snaps.contains("s1"), "{snaps}");
    // Images are the host's: a tenant's owner may not take them out.
    let err = client.fails(&[
        "--remote",
        "prod",
        "image",
        "export",
        "busybox",
        stream_path,
        "--force",
    ]);
    assert!(err.contains("owner role"), "{err}");
    // Another tenant's VPS does not exist for it, by name or by tenant.
    let err = client.fails(&["--remote", "prod", "info", "theirs"]);
    assert!(err.contains("VPS theirs not found"), "{err}");
    let err = client.fails(&["--remote", "prod", "--tenant", "default", "info", "theirs"]);
    assert!(err.contains("tenant default not found"), "{err}");
    // It may not touch the host's things.
    let err = client.fails(&["--remote", "prod", "storage", "list"]);
    assert!(err.contains("owner role"), "{err}");
    // The admin sees the tenant's VPS, made over the network.
    let web: croft_api::Instance = host.ok_json(&["--tenant", "acme", "info", "web", "--format", "json"]);
    assert_eq!(web.status, croft_api::Status::Stopped);

    // A plain HTTPS client: TLS 1.3 with the token works; TLS 1.2 gets no
    // session; no token is a 401 JSON error.
    let curl = |args: &[&str]| {
        let mut all = vec!["-sS", "--insecure", "--max-time", "10"];
        all.extend_from_slice(args);
        client.run("curl", &all)
    };
    let auth = format!("Authorization: Bearer {token}");
    let whoami = curl(&["-H", &auth, &format!("{url}/1.0/auth/whoami")]);
    assert!(
        whoami.status.success(),
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    let me: croft_api::WhoAmI = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!((me.role.as_str(), me.tenant.as_deref()), ("owner", Some("acme")));
    let old = curl(&["--tls-max", "1.2", "-H", &auth, &format!("{url}/1.0")]);
    assert!(!old.status.success(), "a TLS 1.2 client got an answer");
    let anonymous = curl(&["-w", "\n%{http_code}", &format!("{url}/1.0/instances")]);
    let text = String::from_utf8_lossy(&anonymous.stdout);
    assert!(text.ends_with("\n401") && text.contains("Bearer"), "{text}");

    // The admin's audit log has the remote changes, with where from.
    let log: Vec<croft_api::AuditEntry> = host.ok_json(&["audit", "--format", "json"]);
    let launch = log
        .iter()
        .find(|e| e.method == "POST" && e.path == "/1.0/instances" && e.status == 202)
        .expect("the remote launch is audited");
    assert_eq!(launch.tenant, "acme");
    assert!(
        launch.remote.as_deref().is_some_and(|r| r.starts_with(CLIENT_IP)),
        "{launch:?}"
    );
    assert!(
        !serde_json::to_string(&log).unwrap().contains(token),
        "no token in the audit log"
    );

    // A trust token: the client's certificate enrolled, croftd's pinned
    // from the token; the certificate's role is the token's.
    let join = host.ok(&["--tenant", "acme", "trust", "add", "laptop", "--role", "viewer"]);
    let added = client.ok(&["remote", "add", "office", join.trim()]);
    assert!(added.contains("trusted there"), "{added}");
    let key = std::fs::metadata(client.home.join("client.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    let me: croft_api::WhoAmI =
        serde_json::from_str(&client.ok(&["--remote", "office", "whoami", "--format", "json"])).unwrap();
    assert_eq!(
        (me.name.as_str(), me.role.as_str(), me.credential.as_str()),
        ("certificate laptop", "viewer", "certificate")
    );
    assert!(client.ok(&["info", "office:web"]).contains("web"));
    let err = client.fails(&["stop", "office:web"]);
    assert!(err.contains("viewer role"), "{err}");
    let err = client.fails(&["remote", "add", "again", join.trim()]);
    assert!(err.contains("unknown or used trust token"), "{err}");
    let trust: croft_api::Trust = host.ok_json(&["trust", "list", "--format", "json"]);
    let laptop = trust
        .certificates
        .iter()
        .find(|c| c.name == "laptop")
        .expect("trusted");
    host.ok(&["trust", "remove", &laptop.fingerprint]);
    let err = client.fails(&["--remote", "office", "list"]);
    assert!(err.contains("not trusted"), "{err}");

    // The admin's tables name what was made.
    let everyone = host.ok(&["list", "--all-tenants"]);
    assert!(
        everyone.contains("TENANT") && everyone.contains("acme") && everyone.contains("theirs"),
        "{everyone}"
    );
    let id = token.split('_').nth(1).unwrap();
    assert!(host.ok(&["token", "list"]).contains(id));
    assert!(host.ok(&["plan", "list"]).contains("128MiB"));
    assert!(host.ok(&["tenant", "list"]).contains("a customer"));
    assert!(host.ok(&["audit"]).contains("POST /1.0/instances"));

    // An admin's remote moves images both ways, streamed, the digests
    // equal.
    let admin = host.ok(&["token", "create", "--role", "admin", "--expires", "1d"]);
    client.ok(&[
        "remote",
        "add",
        "root",
        &url,
        "--token",
        admin.trim(),
        "--fingerprint",
        &fingerprint,
    ]);
    let tarball = client.home.join("busybox.tar.gz");
    let tarball_path = tarball.to_str().unwrap();
    let exported = client.ok(&["--remote", "root", "image", "export", "busybox", tarball_path]);
    let imported = client.ok(&["--remote", "root", "image", "import", tarball_path, "copied/box"]);
    let digest = |out: &str| out.split_whitespace().next().unwrap_or_default().to_string();
    assert_eq!(digest(&exported).len(), 64, "{exported}");
    assert_eq!(digest(&exported), digest(&imported), "{exported} / {imported}");
    let image: croft_api::Image = host.ok_json(&["image", "info", "copied/box", "--format", "json"]);
    assert!(image.available, "{image:?}");
    host.ok(&["image", "delete", "copied/box"]);

    // Revoked on the host: the next remote request is refused.
    host.ok(&["token", "revoke", id]);
    let err = client.fails(&["--remote", "prod", "list"]);
    assert!(err.contains("unknown or revoked API token"), "{err}");

    host.ok(&["--tenant", "acme", "delete", "web", "--force"]);
}

/// `croft image copy REMOTE:IMAGE`: an image exported by one croft host
/// over TLS and imported into another, the sha256 of what arrived checked
/// against what was sent and against what the source recorded; bad
/// sources and taken names refused with nothing made.
#[test]
fn an_image_is_copied_from_another_croft_host_with_its_sha256_checked() {
    let source = Host::with_config("https_address = \"0.0.0.0:8443\"\n");
    let target = Host::new();
    let client = Client::new(&source);
    source.ok(&["launch", "busybox", "b1"]);
    source.sh_ok("b1", "echo made-on-the-source > /root/mark");
    source.ok(&["stop", "b1"]);
    source.ok(&["publish", "b1", "app/box"]);
    let token = source.ok(&["token", "create", "--role", "admin", "--expires", "1d"]);
    let info: croft_api::ServerInfo = source.ok_json(&["server", "info", "--format", "json"]);
    let fingerprint = info.certificate_fingerprint.expect("a fingerprint");
    client.ok(&[
        "remote",
        "add",
        "src",
        &format!("https://{SERVER_IP}:8443"),
        "--token",
        token.trim(),
        "--fingerprint",
        &fingerprint,
    ]);
    // The target is reached on its socket, from the client's namespace.
    let socket = target.socket.to_str().unwrap().to_string();
    let copy = |args: &[&str]| {
        let mut all = vec!["--socket", socket.as_str(), "image", "copy"];
        all.extend_from_slice(args);
        client.croft(&all)
    };
    let out = copy(&["src:app/box"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    let sha = printed.split_whitespace().next().unwrap().to_string();
    assert_eq!(sha.len(), 64, "{printed}");
    let here: croft_api::Image = target.ok_json(&["image", "info", "app/box", "--format", "json"]);
    let there: croft_api::Image = source.ok_json(&["image", "info", "app/box", "--format", "json"]);
    assert_eq!(here.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(there.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(here.source, "imported");
    // It launches on the target with what the source's VPS had.
    target.ok(&["launch", "app/box", "c1"]);
    assert_eq!(target.sh_ok("c1", "cat /root/mark"), "made-on-the-source\n");

    // Bad input: one line each, nothing made on the target.
    let fails = |args: &[&str]| {
        let out = copy(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };
    let err = fails(&["src:app/box"]);
    assert!(err.contains("image app/box already exists here"), "{err}");
    let err = fails(&["src:nosuch", "other"]);
    assert!(err.contains("nosuch"), "{err}");
    let err = fails(&["nowhere:app/box", "other"]);
    assert!(err.contains("no remote nowhere"), "{err}");
    let err = fails(&["app/box"]);
    assert!(err.contains("REMOTE:IMAGE"), "{err}");
    let err = fails(&["src:../x"]);
    assert!(err.contains("invalid image name"), "{err}");
    let images: Vec<croft_api::Image> = target.ok_json(&["image", "list", "--format", "json"]);
    assert!(
        images.iter().all(|i| i.name != "other"),
        "a failed copy left an image: {images:?}"
    );
}

/// croft with `input` on its stdin (no terminal: a password is one line).
fn croft_with_input(host: &Host, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin_dir().join("croft"))
        .arg("--socket")
        .arg(&host.socket)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The web panel in Chromium (Debian's, driven by playwright-core), from a
/// client's network namespace across TLS, against a real croftd and a real
/// VPS: the owner the admin made with `croft user create` logs in,
/// launches a VPS within quota and sees it run without a reload, runs a
/// command on its console and sees the output, loads its CPU and sees the
/// graph show it, and stops it; an admin exports an image from the panel
/// and imports the file again (crates/croftd/ui/e2e/real-vps.mjs).
#[test]
fn the_panel_runs_a_real_vps_in_chromium_from_another_machine() {
    const PASSWORD: &str = "a long enough password";
    let host = Host::with_config("https_address = \"0.0.0.0:8443\"\nmetrics_interval = 2\n");
    let client = Client::new(&host);
    host.ok(&["tenant", "create", "acme"]);
    host.ok(&["tenant", "quota", "acme", "--vpses", "1", "--memory", "256MiB"]);
    host.ok(&["plan", "create", "small", "--memory", "128MiB", "--cpu", "1"]);
    host.ok(&["tenant", "images", "acme", "busybox"]);
    // Panel users from the CLI: a password that is too short is refused
    // and makes no user.
    let out = croft_with_input(&host, &["--tenant", "acme", "user", "create", "bob"], "short\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 10 characters"), "{err}");
    let out = croft_with_input(
        &host,
        &["--tenant", "acme", "user", "create", "alice"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let users = host.ok(&["--tenant", "acme", "user", "list"]);
    assert!(
        users.contains("alice") && users.contains("owner") && !users.contains("bob"),
        "{users}"
    );
    let out = croft_with_input(
        &host,
        &["user", "create", "ops", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The listener answers from the client's namespace before the browser
    // starts.
    let reachable = (0..100).any(|_| {
        let probe = client.run(
            "timeout",
            &["1", "bash", "-c", &format!("exec 3<>/dev/tcp/{SERVER_IP}/8443")],
        );
        probe.status.success() || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    });
    assert!(
        reachable,
        "croftd's HTTPS listener never answered:\n{}",
        host.daemon_log()
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../croftd/ui/e2e/real-vps.mjs");
    let screenshots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/panel-screenshots");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &client.netns,
            "node",
            "--test",
            "--test-reporter=tap",
            // A stuck browser fails the test (and its cleanup runs)
            // rather than hanging the run.
            "--test-timeout=600000",
        ])
        .arg(&script)
        .env("CROFT_URL", format!("https://{SERVER_IP}:8443"))
        .env("CROFT_PASSWORD", PASSWORD)
        .env("CROFT_SCREENSHOTS", &screenshots)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the browser test failed:\n{}{}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        host.daemon_log()
    );
    // Seen from the host: the VPS the browser launched is acme's, stopped.
    let vps: croft_api::Instance = host.ok_json(&["--tenant", "acme", "info", "web", "--format", "json"]);
    assert_eq!(vps.status, croft_api::Status::Stopped);
    // The image imported from the browser was deleted there too.
    let images = host.ok(&["image", "list"]);
    assert!(!images.contains("busybox-copy"), "{images}");
    // A new password from the CLI; the user goes.
    let out = croft_with_input(
        &host,
        &["--tenant", "acme", "user", "passwd", "alice"],
        "another long password\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    host.ok(&["--tenant", "acme", "user", "delete", "alice"]);
    let err = host.fails(&["--tenant", "acme", "user", "delete", "alice"]);
    assert!(err.contains("not found"), "{err}");
}
