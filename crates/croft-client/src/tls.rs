//! Trusting a remote croftd: by the SHA-256 fingerprint of its
//! certificate, pinned when the remote is added (as SSH pins a host key),
//! not by a certificate authority. The handshake's signature is still
//! checked against that certificate, and only TLS 1.3 is spoken.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// The SHA-256 fingerprint of a DER certificate, lowercase hex: what
/// croftd shows and what clients pin.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// What a client does with the certificate a server shows.
#[derive(Debug)]
enum Trust {
    /// Accept exactly the one of this fingerprint.
    Pinned(String),
    /// Remember its fingerprint and refuse it: a handshake that learns
    /// the fingerprint and sends nothing.
    Record(Mutex<Option<String>>),
}

/// The client's certificate verifier.
#[derive(Debug)]
struct ServerTrust {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        match &self.trust {
            Trust::Pinned(want) if *want == got => Ok(ServerCertVerified::assertion()),
            Trust::Pinned(want) => Err(rustls::Error::General(format!(
                "the server's certificate {got} is not the one pinned for this remote ({want}): \
                 another server, or croftd's certificate changed"
            ))),
            Trust::Record(seen) => {
                *seen.lock().expect("recorder poisoned") = Some(got);
                Err(rustls::Error::General("only looking at the certificate".into()))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client certificate and its key (PEM): what a client enrolled with
/// a trust token shows.
#[derive(Debug, Clone)]
pub struct Identity {
    pub certificate_pem: String,
    pub key_pem: String,
}

/// A TLS 1.3 client configuration trusting as `verifier` says, showing
/// `identity` if given.
fn config_with(
    verifier: Arc<ServerTrust>,
    identity: Option<&Identity>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls::pki_types::pem::PemObject;
    let builder = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("aws-lc-rs speaks TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let bad = |e: rustls::pki_types::pem::Error| {
                rustls::Error::General(format!("the client certificate: {e}"))
            };
            let certs = CertificateDer::pem_slice_iter(id.certificate_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).map_err(bad)?;
            builder.with_client_auth_cert(certs, key)?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn verifier(trust: Trust) -> Arc<ServerTrust> {
    Arc::new(ServerTrust {
        trust,
        provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    })
}

/// A TLS 1.3 client configuration that trusts only the server whose
/// certificate has `fingerprint`.
pub fn client_config(fingerprint: &str) -> rustls::ClientConfig {
    config_with(verifier(Trust::Pinned(fingerprint.to_ascii_lowercase())), None)
        .expect("a configuration without a client certificate")
}

/// [`client_config`], showing the client certificate `identity`.
pub fn client_config_with(
    fingerprint: &str,
    identity: &Identity,
) -> Result<rustls::ClientConfig, rustls::Error> {
    config_with(
        verifier(Trust::Pinned(fingerprint.to_ascii_lowercase())),
        Some(identity),
    )
}

/// The name the TLS handshake gives for `host`: an IP address as one, a
/// DNS name as one, anything else as `croftd` (the certificate is pinned
/// by fingerprint, so the name is not what is trusted).
pub fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("croftd").expect("a DNS name"))
}

/// The fingerprint of the certificate the TLS 1.3 server on `tcp`
/// presents; the handshake is abandoned once it is seen.
pub async fn fingerprint_of(tcp: tokio::net::TcpStream, host: &str) -> std::io::Result<String> {
    let recorder = verifier(Trust::Record(Mutex::new(None)));
    let config = config_with(recorder.clone(), None).expect("a configuration without a client certificate");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let outcome = connector.connect(server_name(host), tcp).await;
    let seen = match &recorder.trust {
        Trust::Record(seen) => seen.lock().expect("recorder poisoned").take(),
        Trust::Pinned(_) => None,
    };
    match (seen, outcome) {
        (Some(fingerprint), _) => Ok(fingerprint),
        (None, Err(e)) => Err(e),
        (None, Ok(_)) => Err(std::io::Error::other("the server showed no certificate")),
    }
}
