//! The network listener: the API over TLS 1.3 (and nothing older: rustls
//! is built without TLS 1.2), with a server certificate the admin gives or
//! a self-signed one made on first start. Clients pin it by its SHA-256
//! fingerprint, SSH-style; remote callers then prove who they are per
//! request (the guard), by a client certificate the handshake asks for
//! or a bearer token. Each connection's requests carry its address and
//! its certificate's fingerprint as their [`Peer`].

use super::Peer;
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} exists but {1} does not: give both the certificate and its key, or neither")]
    HalfPair(PathBuf, PathBuf),
    #[error("cannot make a self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("the certificate and key do not make a TLS server")]
    Config(#[source] rustls::Error),
}

/// The server's certificate chain and key, and the fingerprint clients
/// pin.
pub struct ServerIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf certificate, lowercase hex.
    pub fingerprint: String,
}

/// The SHA-256 fingerprint of a DER certificate, as clients pin it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity at `cert`/`key`, made (self-signed, for `names`) if
/// neither file exists yet. The key is written readable by root only.
pub fn load_or_create(cert: &Path, key: &Path, names: &[String]) -> Result<ServerIdentity, TlsError> {
    match (cert.exists(), key.exists()) {
        (true, true) => {}
        (false, false) => create(cert, key, names)?,
        (true, false) => return Err(TlsError::HalfPair(cert.into(), key.into())),
        (false, true) => return Err(TlsError::HalfPair(key.into(), cert.into())),
    }
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: rustls::pki_types::pem::Error| TlsError::Read {
            path,
            source: Box::new(e),
        }
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(read_err(cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err(cert))?;
    let leaf = certs.first().ok_or_else(|| TlsError::Read {
        path: cert.into(),
        source: "no certificate in the file".into(),
    })?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(key).map_err(read_err(key))?;
    Ok(ServerIdentity {
        certs,
        key,
        fingerprint,
    })
}

fn create(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec()).map_err(TlsError::Generate)?;
    let write = |path: &Path, mode: u32, text: &str| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
                path: dir.into(),
                source,
            })?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|source| TlsError::Write {
                path: path.into(),
                source,
            })
    };
    // The key first: a crash between the two leaves a key without a
    // certificate, which the next start reports rather than reusing half.
    write(key, 0o600, &made.key_pair.serialize_pem())?;
    write(cert, 0o644, &made.cert.pem())?;
    info!(cert = %cert.display(), "made a self-signed server certificate");
    Ok(())
}

/// Asks for a client certificate and takes any that proves its key in
/// the handshake: whether it is trusted is the guard's to say, by its
/// fingerprint (clients without one use bearer tokens).
#[derive(Debug)]
struct AnyClientCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::server::danger::ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The `host:port` addresses clients may reach a listener bound to
/// `bound` at: that address, or, for an unspecified one (`[::]`,
/// `0.0.0.0`), the host's interface addresses, global ones first and
/// loopback last.
pub fn reachable_addresses(bound: std::net::SocketAddr) -> Vec<String> {
    use std::net::{IpAddr, SocketAddr};
    let port = bound.port();
    if !bound.ip().is_unspecified() {
        return vec![bound.to_string()];
    }
    let mut found: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| a.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                })
                // An IPv4 listener is not reached at IPv6 addresses.
                .filter(|ip| bound.is_ipv6() || ip.is_ipv4())
                // Link-local IPv6 needs a zone a URL cannot carry well.
                .filter(|ip| !matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80))
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|ip| ip.is_loopback());
    found.dedup();
    found
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port).to_string())
        .collect()
}

/// A TLS 1.3-only server configuration for `identity`, speaking HTTP/1.1,
/// asking for (not requiring) a client certificate.
pub fn server_config(identity: &ServerIdentity) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AnyClientCertificate {
        provider: provider.clone(),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serve `router` to whoever connects to `listener` over TLS with
/// `config`, until the task is dropped. A failed handshake (a TLS 1.2
/// client, a scanner) closes that connection only.
pub async fn serve(listener: TcpListener, config: rustls::ServerConfig, router: Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Small frames (an exec's output, its exit) go at once: Nagle's
        // wait for an ACK the client delays would add ~40 ms to each.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return debug!(%addr, "TLS handshake failed: {e}"),
                Err(_) => return debug!(%addr, "TLS handshake timed out"),
            };
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| fingerprint(leaf));
            let peer = Peer::Remote { addr, certificate };
            let service = tower::ServiceExt::map_request(
                router,
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer.clone());
                    req
                },
            );
            let service = hyper_util::service::TowerToHyperService::new(service);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .with_upgrades()
                .await
            {
                debug!(%addr, "connection ended: {e}");
            }
        });
    }
}
