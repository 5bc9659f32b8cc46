//! Tier 2: the API over the network listener, TLS 1.3 on loopback TCP,
//! with a client that pins the server's certificate by fingerprint, as
//! `croft` does. The VPSes behind it are simulated.

mod sim;

use axum::http::StatusCode;
use croftd::http::tls;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use sim::Sim;
use std::net::SocketAddr;
use std::sync::Arc;

/// A croftd on the simulator listening on a loopback port with a
/// certificate made in its state directory; its address and fingerprint.
async fn listening(sim: &Sim) -> (SocketAddr, String, tokio::task::JoinHandle<()>) {
    let dir = sim.dir.path().join("tls");
    let identity = tls::load_or_create(
        &dir.join("server.crt"),
        &dir.join("server.key"),
        &["croftd".into()],
    )
    .unwrap();
    let config = tls::server_config(&identity).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(tls::serve(listener, config, sim.remote.clone()));
    (addr, identity.fingerprint, server)
}

/// One request over a fresh TLS connection made with `config`.
async fn request(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    token: Option<&str>,
    path: &str,
) -> Result<(StatusCode, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("croftd").unwrap();
    let tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header("host", "croftd");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn the_api_answers_over_tls_to_a_pinned_client_with_a_token() {
    let sim = Sim::new().await;
    let (addr, fingerprint, server) = listening(&sim).await;
    let made: croft_api::TokenCreated = sim
        .ok("POST", "/1.0/tokens", Some(r#"{"scope":"read-write"}"#))
        .await;
    let pinned = || croft_client::tls::client_config(&fingerprint);

    let (status, body) = request(addr, pinned(), Some(&made.token), "/1.0/auth/whoami")
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let me: croft_api::WhoAmI = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (me.role.as_str(), me.tenant.as_deref()),
        ("owner", Some("default"))
    );
    assert_eq!(me.credential, "token");

    // No token over the network: 401, whatever the local socket allows.
    let (status, body) = request(addr, pinned(), None, "/1.0/instances").await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A client pinning another certificate refuses this server.
    let other = "00".repeat(32);
    let err = request(
        addr,
        croft_client::tls::client_config(&other),
        Some(&made.token),
        "/1.0",
    )
    .await
    .unwrap_err();
    assert!(err.contains("not the one pinned"), "{err}");

    // A TLS 1.2 client gets no session at all.
    let tls12 =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
    let err = request(addr, tls12, Some(&made.token), "/1.0").await.unwrap_err();
    assert!(
        err.to_lowercase().contains("protocol") || err.contains("alert"),
        "{err}"
    );

    // The listener still serves after all that.
    let (status, _) = request(addr, pinned(), Some(&made.token), "/1.0").await.unwrap();
    assert_eq!(status, StatusCode::OK);
    server.abort();
}

#[test]
fn the_certificate_is_made_once_and_its_key_kept_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c/server.crt"), dir.path().join("c/server.key"));
    let first = tls::load_or_create(&cert, &key, &["croftd".into()]).unwrap();
    let again = tls::load_or_create(&cert, &key, &["croftd".into()]).unwrap();
    assert_eq!(first.fingerprint, again.fingerprint, "made once, then reused");
    assert_eq!(first.fingerprint.len(), 64);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Half a pair is refused, not silently replaced.
    std::fs::remove_file(&cert).unwrap();
    let err = tls::load_or_create(&cert, &key, &["croftd".into()])
        .err()
        .unwrap();
    assert!(err.to_string().contains("give both"), "{err}");
    assert!(key.exists());
}

/// For the TLS 1.2 attempt only: the server must refuse before any
/// certificate is looked at.
#[derive(Debug)]
struct AnyCert;

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Run `args` in VPS `vps` through `client`, with `stdin` and the
/// controls sent once output starts; the exit code and what came out.
fn exec(
    client: &croft_client::Client,
    vps: &str,
    args: &[&str],
    tty: bool,
    stdin: &'static [u8],
    controls: Vec<croft_api::exec::ExecInput>,
) -> Result<(i32, String, String), croft_client::ClientError> {
    use std::sync::{Arc, Mutex};
    let start = croft_api::exec::ExecStart {
        args: args.iter().map(|a| a.to_string()).collect(),
        tty,
        ..Default::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    for c in controls {
        tx.send(c).unwrap();
    }
    let out = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let sink = out.clone();
    let io = croft_client::ExecIo {
        stdin: Box::new(stdin),
        output: Box::new(move |stream, bytes| {
            let mut o = sink.lock().unwrap();
            match stream {
                croft_api::exec::STDOUT => o.0.extend_from_slice(bytes),
                _ => o.1.extend_from_slice(bytes),
            }
        }),
        controls: rx,
    };
    let code = client.exec(vps, &start, io)?;
    drop(tx);
    let o = out.lock().unwrap();
    Ok((
        code,
        String::from_utf8_lossy(&o.0).into_owned(),
        String::from_utf8_lossy(&o.1).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_over_the_api_passes_streams_exit_codes_signals_and_window_sizes() {
    use croft_api::exec::ExecInput;
    let sim = Sim::new().await;
    let (addr, fingerprint, server) = listening(&sim).await;
    sim.launch("web").await;
    sim.ok::<croft_api::Job>(
        "POST",
        "/1.0/instances",
        Some(r#"{"name":"off","image":"busybox","no_start":true}"#),
    )
    .await;
    let owner: croft_api::TokenCreated = sim
        .ok("POST", "/1.0/tokens", Some(r#"{"scope":"read-write"}"#))
        .await;
    let viewer: croft_api::TokenCreated = sim.ok("POST", "/1.0/tokens", Some(r#"{"scope":"read"}"#)).await;
    let url = format!("https://{addr}");
    let results = tokio::task::spawn_blocking(move || {
        let client = |t: &str| croft_client::Client::remote(&url, &fingerprint, Some(t.to_string())).unwrap();
        let (c, v) = (client(&owner.token), client(&viewer.token));
        (
            exec(&c, "web", &["echo", "hello", "world"], false, b"", vec![]).unwrap(),
            exec(&c, "web", &["warn", "careful"], false, b"", vec![]).unwrap(),
            exec(&c, "web", &["cat"], false, b"from stdin\n", vec![]).unwrap(),
            exec(&c, "web", &["exit", "3"], false, b"", vec![]).unwrap(),
            exec(
                &c,
                "web",
                &["sleep"],
                false,
                b"",
                vec![ExecInput::Signal { signal: 2 }],
            )
            .unwrap(),
            exec(
                &c,
                "web",
                &["size"],
                true,
                b"",
                vec![ExecInput::Resize { rows: 24, cols: 80 }],
            )
            .unwrap(),
            exec(&c, "web", &["nosuch"], false, b"", vec![]).unwrap(),
            exec(&c, "off", &["echo"], false, b"", vec![]).unwrap_err(),
            exec(&c, "ghost", &["echo"], false, b"", vec![]).unwrap_err(),
            exec(&v, "web", &["echo"], false, b"", vec![]).unwrap_err(),
            exec(&c, "web", &[""], false, b"", vec![]).unwrap_err(),
        )
    })
    .await
    .unwrap();
    let (echo, warn, cat, exit, signalled, size, missing, stopped, ghost, viewer, empty) = results;
    assert_eq!(echo, (0, "hello world\n".into(), String::new()));
    assert_eq!(warn, (0, String::new(), "careful\n".into()));
    assert_eq!(cat, (0, "from stdin\n".into(), String::new()));
    assert_eq!(exit.0, 3);
    assert_eq!(signalled.0, 130, "128 + SIGINT");
    assert_eq!(size, (0, "24 80\n".into(), String::new()));
    assert_eq!((missing.0, missing.2.as_str()), (127, "sim: nosuch: not found\n"));
    // Refused before the upgrade, as JSON errors.
    assert_eq!(stopped.status(), Some(409), "{stopped}");
    assert!(stopped.to_string().contains("not running"), "{stopped}");
    assert_eq!(ghost.status(), Some(404), "{ghost}");
    assert_eq!(viewer.status(), Some(403), "{viewer}");
    assert!(empty.to_string().contains("give a command"), "{empty}");
    // Each exec is in the audit log.
    let log: Vec<croft_api::AuditEntry> = sim.ok("GET", "/1.0/audit", None).await;
    assert!(log
        .iter()
        .any(|e| e.path == "/1.0/instances/web/exec" && e.status == 101));
    server.abort();
}

/// Input that yields `text`, then waits for `go` before it ends (the user
/// detaching once they saw what they typed echoed).
struct TypeThenDetach {
    text: Option<&'static [u8]>,
    go: std::sync::mpsc::Receiver<()>,
}

impl std::io::Read for TypeThenDetach {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(text) = self.text.take() {
            buf[..text.len()].copy_from_slice(text);
            return Ok(text.len());
        }
        let _ = self.go.recv();
        Ok(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_attaches_over_the_api_and_detaching_leaves_the_vps_running() {
    let sim = Sim::new().await;
    let (addr, fingerprint, server) = listening(&sim).await;
    let vps = sim.launch("web").await;
    let owner: croft_api::TokenCreated = sim
        .ok("POST", "/1.0/tokens", Some(r#"{"scope":"read-write"}"#))
        .await;
    let viewer: croft_api::TokenCreated = sim.ok("POST", "/1.0/tokens", Some(r#"{"scope":"read"}"#)).await;
    let url = format!("https://{addr}");
    let (seen, refused) = tokio::task::spawn_blocking(move || {
        let client = |t: &str| croft_client::Client::remote(&url, &fingerprint, Some(t.to_string())).unwrap();
        let (go_tx, go) = std::sync::mpsc::channel();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let io = croft_client::ExecIo {
            stdin: Box::new(TypeThenDetach {
                text: Some(b"typed"),
                go,
            }),
            output: Box::new(move |_, bytes| {
                let mut s = sink.lock().unwrap();
                s.extend_from_slice(bytes);
                if s.ends_with(b"typed") {
                    let _ = go_tx.send(());
                }
            }),
            controls: std::sync::mpsc::channel().1,
        };
        let code = client(&owner.token).console("web", io).unwrap();
        assert_eq!(code, 0, "detached");
        let io = croft_client::ExecIo {
            stdin: Box::new(&b""[..]),
            output: Box::new(|_, _| {}),
            controls: std::sync::mpsc::channel().1,
        };
        let refused = client(&viewer.token).console("web", io).unwrap_err();
        let seen = seen.lock().unwrap().clone();
        (seen, refused)
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&seen), "sim console\r\ntyped");
    assert_eq!(
        refused.status(),
        Some(403),
        "a viewer may not type on the console"
    );
    let after = sim.info("web").await;
    assert_eq!(
        after.status,
        croft_api::Status::Running,
        "detaching leaves it running"
    );
    assert_eq!(after.uuid, vps.uuid);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_shows_a_tenant_its_own_vpses_and_operations_only() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let sim = Sim::new().await;
    let (addr, fingerprint, server) = listening(&sim).await;
    sim.ok::<croft_api::Tenant>("POST", "/1.0/tenants", Some(r#"{"name":"acme"}"#))
        .await;
    let owner: croft_api::TokenCreated = sim
        .ok(
            "POST",
            "/1.0/tokens?tenant=acme",
            Some(r#"{"scope":"read-write"}"#),
        )
        .await;
    let (listening_now, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
    let (flag, log) = (listening_now.clone(), seen.clone());
    let url = format!("https://{addr}");
    let monitor = tokio::task::spawn_blocking(move || {
        let client = croft_client::Client::remote(&url, &fingerprint, Some(owner.token)).unwrap();
        client
            .monitor(|e| {
                flag.store(true, Ordering::SeqCst);
                let last = e.action == "vps-deleted" && e.target == "web";
                log.lock().unwrap().push(e);
                !last
            })
            .unwrap();
    });
    // Until the monitor hears something, it may not be listening yet.
    let launch = |tenant: &'static str, name: String| {
        let sim = &sim;
        async move {
            let body = format!(r#"{{"name":"{name}","image":"busybox","no_start":true}}"#);
            let job: croft_api::Job = sim
                .ok("POST", &format!("/1.0/instances?tenant={tenant}"), Some(&body))
                .await;
            sim.wait_job(&job).await;
        }
    };
    let mut i = 0;
    while !listening_now.load(Ordering::SeqCst) {
        launch("acme", format!("ping{i}")).await;
        i += 1;
        assert!(i < 100, "the monitor never heard an event");
    }
    launch("default", "theirs".into()).await;
    launch("acme", "web".into()).await;
    let _: croft_api::Instance = sim
        .ok(
            "POST",
            "/1.0/instances/web/state?tenant=acme",
            Some(r#"{"action":"start"}"#),
        )
        .await;
    let (status, _) = sim
        .send("DELETE", "/1.0/instances/web?tenant=acme&force=true", None)
        .await;
    assert_eq!(status, axum::http::StatusCode::NO_CONTENT);
    tokio::time::timeout(std::time::Duration::from_secs(10), monitor)
        .await
        .expect("the monitor saw web deleted")
        .unwrap();
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().all(|e| e.tenant == "acme"),
        "another tenant's event: {seen:?}"
    );
    let web: Vec<&str> = seen
        .iter()
        .filter(|e| e.target == "web")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        web,
        [
            "vps-created",
            "operation-started",
            "operation-succeeded",
            "vps-started",
            "vps-stopped",
            "vps-deleted"
        ],
        "{seen:?}"
    );
    server.abort();
}
