//! The typed client of croftd's REST API (`/1.0/...`) over its unix
//! socket: one method per endpoint, answers as `croft_api` types, errors
//! as [`ClientError`] (croftd's refusals with their status and message).
//! Image and snapshot exports and imports stream: nothing is held whole.
//! The CLI, the end-to-end tests and (later) the web panel use it.

mod exec;
pub mod outfile;
pub mod tls;
pub use exec::ExecIo;

use bytes::Bytes;
use croft_api::*;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Where croftd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/croft/croftd.sock";

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot reach croftd at {socket} (is it running? are you root?)")]
    Unreachable {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach croftd at {address}")]
    UnreachableRemote {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed: the server is not the one pinned, or
    /// speaks no TLS 1.3.
    #[error("no TLS session with {address}")]
    Tls {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid remote address {0:?}: expected https://HOST[:PORT]")]
    BadUrl(String),
    /// croftd refused the request: its status and message.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("croftd closed the connection")]
    Connection(#[source] hyper::Error),
    #[error("unexpected answer from croftd")]
    Decode(#[source] serde_json::Error),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the request")]
    Request(#[source] hyper::http::Error),
}

impl ClientError {
    /// The HTTP status croftd refused the request with, if it did.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A body this client sends.
type SendBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A connection to croftd: its socket, or TLS to a remote one.
pub(crate) trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

impl Client {
    /// A fresh connection to croftd.
    pub(crate) async fn connect(&self) -> Result<Box<dyn Stream>> {
        match &self.transport {
            Transport::Unix => {
                let stream = tokio::net::UnixStream::connect(&self.socket)
                    .await
                    .map_err(|source| ClientError::Unreachable {
                        socket: self.socket.clone(),
                        source,
                    })?;
                Ok(Box::new(stream))
            }
            Transport::Https {
                address, host, tls, ..
            } => {
                let tcp = tokio::net::TcpStream::connect(address).await.map_err(|source| {
                    ClientError::UnreachableRemote {
                        address: address.clone(),
                        source,
                    }
                })?;
                let _ = tcp.set_nodelay(true);
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(tls::server_name(host), tcp)
                    .await
                    .map_err(|source| ClientError::Tls {
                        address: address.clone(),
                        source,
                    })?;
                Ok(Box::new(stream))
            }
        }
    }

    /// The bearer token this client presents, if any.
    pub(crate) fn token(&self) -> Option<&str> {
        match &self.transport {
            Transport::Https { token, .. } => token.as_deref(),
            Transport::Unix => None,
        }
    }
}

/// Send `req` over a fresh connection `io`; the response, its body to
/// read.
async fn exchange<I>(io: I, req: Request<SendBody>) -> Result<Response<Incoming>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(ClientError::Connection)?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(ClientError::Connection)
}

/// Percent-encode one path segment (a VPS, snapshot or image name, a job
/// id): whatever it holds stays one segment.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// How a client reaches croftd.
enum Transport {
    /// The local socket: root on this host, always admin.
    Unix,
    /// A remote croftd over TLS, its certificate pinned, the caller
    /// proving itself with a bearer token (if it has one).
    Https {
        /// `host:port`.
        address: String,
        host: String,
        tls: Arc<rustls::ClientConfig>,
        token: Option<String>,
    },
}

/// The port a remote croftd listens on when its address names none.
pub const DEFAULT_PORT: u16 = 8443;

/// `https://HOST[:PORT]` as `(host, host:port)`.
pub fn parse_url(url: &str) -> Result<(String, String)> {
    let bad = || ClientError::BadUrl(url.to_string());
    let uri: hyper::Uri = url.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("https") || uri.path() != "/" && !uri.path().is_empty() {
        return Err(bad());
    }
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    let port = uri.port_u16().unwrap_or(DEFAULT_PORT);
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok((bare, format!("{host}:{port}")))
}

/// A blocking client; each call is one connection.
pub struct Client {
    socket: PathBuf,
    transport: Transport,
    /// The tenant every call acts in (`?tenant=`), if not the caller's
    /// own or the default one.
    tenant: Option<String>,
    rt: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| ClientError::Io {
                what: "cannot start the client's runtime".into(),
                source,
            })?;
        Ok(Client {
            socket: socket.into(),
            transport: Transport::Unix,
            tenant: None,
            rt,
        })
    }

    /// A client of the croftd at `url` (`https://HOST[:PORT]`) whose
    /// certificate has `fingerprint`, sending `token`.
    pub fn remote(url: &str, fingerprint: &str, token: Option<String>) -> Result<Client> {
        Client::remote_with(url, fingerprint, token, None)
    }

    /// [`Client::remote`], showing the client certificate `identity`
    /// (how a client enrolled with a trust token proves itself).
    pub fn remote_with(
        url: &str,
        fingerprint: &str,
        token: Option<String>,
        identity: Option<&tls::Identity>,
    ) -> Result<Client> {
        let (host, address) = parse_url(url)?;
        let config = match identity {
            None => tls::client_config(fingerprint),
            Some(id) => tls::client_config_with(fingerprint, id).map_err(|e| ClientError::Io {
                what: "cannot use the client certificate".into(),
                source: std::io::Error::other(e),
            })?,
        };
        let mut client = Client::new(PathBuf::new())?;
        client.transport = Transport::Https {
            address,
            host,
            tls: Arc::new(config),
            token,
        };
        Ok(client)
    }

    /// Whether this client talks to a remote croftd.
    pub fn is_remote(&self) -> bool {
        matches!(self.transport, Transport::Https { .. })
    }

    /// The SHA-256 fingerprint of the certificate the croftd at `url`
    /// presents, to pin (before anything is sent to it).
    pub fn server_fingerprint(url: &str) -> Result<String> {
        let (host, address) = parse_url(url)?;
        let client = Client::new(PathBuf::new())?;
        client.run(async {
            // An address of a trust token may lead nowhere: do not wait on
            // it for the kernel's minutes.
            let connect = tokio::net::TcpStream::connect(&address);
            let tcp = tokio::time::timeout(std::time::Duration::from_secs(5), connect)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
                .map_err(|source| ClientError::UnreachableRemote {
                    address: address.clone(),
                    source,
                })?;
            tls::fingerprint_of(tcp, &host)
                .await
                .map_err(|source| ClientError::Tls { address, source })
        })
    }

    /// Act in `tenant` (the admin's way to reach a tenant's VPSes).
    pub fn with_tenant(mut self, tenant: Option<String>) -> Client {
        self.tenant = tenant;
        self
    }

    /// `path` with the client's tenant added to its query.
    fn target(&self, path: &str) -> String {
        match &self.tenant {
            None => path.to_string(),
            Some(t) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                format!("{path}{sep}tenant={}", segment(t))
            }
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Drive `work` to its end on a thread of its own that ignores
    /// SIGPIPE: a socket croftd closed under an upload (it refused the
    /// upload before reading all of it) or a closed stdout under a download
    /// must end the call with an error, never kill the caller, whatever the
    /// caller's own SIGPIPE disposition (the CLI's is the default, to die
    /// quietly under `| head`).
    fn run<T: Send>(&self, work: impl std::future::Future<Output = T> + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut pipe = nix::sys::signal::SigSet::empty();
                    pipe.add(nix::sys::signal::Signal::SIGPIPE);
                    // A thread's signal mask is its own: the caller's is
                    // untouched. A failure leaves the default in place.
                    let _ = pipe.thread_block();
                    self.rt.block_on(work)
                })
                .join()
                .expect("the client's thread does not panic")
        })
    }

    /// Send a request and return the response whose body is still to
    /// read; croftd's refusals become [`ClientError::Api`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: SendBody,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(self.target(path))
            .header("host", "croftd");
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        if let Transport::Https { token: Some(t), .. } = &self.transport {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = req.body(body).map_err(ClientError::Request)?;
        let resp = exchange(self.connect().await?, req).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(ClientError::Connection)?
            .to_bytes();
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
        Err(ClientError::Api {
            status: status.as_u16(),
            message,
        })
    }

    /// One JSON call: `body` serialized, the answer decoded as `T`.
    fn call<T: DeserializeOwned + Send>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let body = body
            .map(|b| serde_json::to_vec(b).map_err(ClientError::Decode))
            .transpose()?;
        let content_type = body.is_some().then_some("application/json");
        let full: SendBody = Full::new(Bytes::from(body.unwrap_or_default()))
            .map_err(|never| match never {})
            .boxed();
        self.run(async {
            let resp = self.send(method, path, content_type, full).await?;
            let no_content = resp.status() == StatusCode::NO_CONTENT;
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(ClientError::Connection)?
                .to_bytes();
            let bytes = if no_content || bytes.is_empty() {
                Bytes::from_static(b"null")
            } else {
                bytes
            };
            serde_json::from_slice(&bytes).map_err(ClientError::Decode)
        })
    }

    fn get<T: DeserializeOwned + Send>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None::<&()>)
    }

    fn post<T: DeserializeOwned + Send>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call(Method::POST, path, Some(body))
    }

    fn delete(&self, path: &str) -> Result<()> {
        self.call::<Option<()>>(Method::DELETE, path, None::<&()>)
            .map(drop)
    }

    /// Upload what `from` yields as a stream body; `progress` hears the
    /// bytes sent so far.
    fn upload<T: DeserializeOwned + Send>(
        &self,
        path: &str,
        from: impl Read + Send + 'static,
        progress: impl Fn(u64) + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        // The reader is not joined: croftd may answer (a refusal) before it
        // has taken the whole body, and the reader then waits on a full
        // channel until the connection, and the body with it, is dropped.
        std::thread::spawn(move || {
            let mut from = from;
            let mut sent = 0u64;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let chunk = match from.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = chunk.is_err();
                if let Ok(c) = &chunk {
                    sent += c.len() as u64;
                }
                if tx.blocking_send(chunk).is_err() || failed {
                    return;
                }
                progress(sent);
            }
        });
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk.map(Frame::data), rx))
        });
        let body: SendBody = BodyExt::boxed(StreamBody::new(frames));
        let answer = self.run(async {
            let resp = self.send(Method::POST, path, Some(STREAM_TYPE), body).await?;
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(ClientError::Connection)?
                .to_bytes();
            serde_json::from_slice(&bytes).map_err(ClientError::Decode)
        });
        answer
    }

    /// Download a stream body into `to`; `progress` hears the bytes so
    /// far. An answer that ends early is an error, never a short file.
    fn download(
        &self,
        path: &str,
        to: &mut (dyn Write + Send),
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64> {
        let empty: SendBody = Full::new(Bytes::new()).map_err(|never| match never {}).boxed();
        self.run(async {
            let resp = self.send(Method::GET, path, None, empty).await?;
            let mut body = resp.into_body();
            let mut total = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(ClientError::Connection)?;
                if let Ok(data) = frame.into_data() {
                    to.write_all(&data).map_err(|source| ClientError::Io {
                        what: "cannot write the download".into(),
                        source,
                    })?;
                    total += data.len() as u64;
                    progress(total);
                }
            }
            to.flush().map_err(|source| ClientError::Io {
                what: "cannot write the download".into(),
                source,
            })?;
            Ok(total)
        })
    }

    // --- The daemon ---

    pub fn server_info(&self) -> Result<ServerInfo> {
        self.get("/1.0")
    }

    // --- VPSes ---

    pub fn instances(&self) -> Result<Vec<Instance>> {
        self.get("/1.0/instances")
    }

    /// Every tenant's VPSes (the admin's view; a tenant's users get
    /// their own).
    pub fn all_instances(&self) -> Result<Vec<Instance>> {
        self.get("/1.0/instances?all-tenants=true")
    }

    /// One VPS, with its exact disk usage.
    pub fn instance(&self, name: &str) -> Result<Instance> {
        self.get(&format!("/1.0/instances/{}", segment(name)))
    }

    /// One VPS without its disk usage (cheaper: no filesystem commit).
    pub fn instance_state(&self, name: &str) -> Result<Instance> {
        self.get(&format!("/1.0/instances/{}/state", segment(name)))
    }

    /// How a VPS sits on its host (id range, init, control socket).
    pub fn host_details(&self, name: &str) -> Result<HostDetails> {
        self.get(&format!("/1.0/instances/{}/host", segment(name)))
    }

    pub fn launch(&self, req: &LaunchRequest) -> Result<Job> {
        self.post("/1.0/instances", req)
    }

    pub fn change_state(&self, name: &str, req: &StateRequest) -> Result<Instance> {
        self.post(&format!("/1.0/instances/{}/state", segment(name)), req)
    }

    pub fn delete_instance(&self, name: &str, force: bool) -> Result<()> {
        self.delete(&format!("/1.0/instances/{}?force={force}", segment(name)))
    }

    pub fn patch_config(&self, name: &str, patch: &ConfigPatch) -> Result<Instance> {
        self.call(
            Method::PATCH,
            &format!("/1.0/instances/{}/config", segment(name)),
            Some(patch),
        )
    }

    pub fn console_log(&self, name: &str) -> Result<ConsoleLog> {
        self.get(&format!("/1.0/instances/{}/console", segment(name)))
    }

    pub fn copy(&self, name: &str, req: &CopyRequest) -> Result<Instance> {
        self.post(&format!("/1.0/instances/{}/copy", segment(name)), req)
    }

    /// Set root's password (`None`: generated); the generated one.
    pub fn set_password(&self, name: &str, password: Option<String>) -> Result<Option<String>> {
        let answer: croft_api::PasswordSet = self.post(
            &format!("/1.0/instances/{}/password", segment(name)),
            &croft_api::PasswordSet { password },
        )?;
        Ok(answer.password)
    }

    pub fn ssh_keys(&self, name: &str) -> Result<Vec<String>> {
        self.get(&format!("/1.0/instances/{}/ssh-keys", segment(name)))
    }

    pub fn add_ssh_key(&self, name: &str, key: &str) -> Result<Vec<String>> {
        self.post(
            &format!("/1.0/instances/{}/ssh-keys", segment(name)),
            &croft_api::SshKeyAdd { key: key.into() },
        )
    }

    pub fn remove_ssh_key(&self, name: &str, number: usize) -> Result<Vec<String>> {
        self.call(
            Method::DELETE,
            &format!("/1.0/instances/{}/ssh-keys/{number}", segment(name)),
            None::<&()>,
        )
    }

    pub fn rename(&self, name: &str, new: &str) -> Result<Instance> {
        self.post(
            &format!("/1.0/instances/{}/rename", segment(name)),
            &croft_api::RenameRequest { name: new.into() },
        )
    }

    pub fn rebuild(&self, name: &str, req: &RebuildRequest) -> Result<Job> {
        self.post(&format!("/1.0/instances/{}/rebuild", segment(name)), req)
    }

    // --- Snapshots ---

    pub fn snapshots(&self, name: &str) -> Result<Vec<Snapshot>> {
        self.get(&format!("/1.0/instances/{}/snapshots", segment(name)))
    }

    pub fn create_snapshot(&self, name: &str, req: &SnapshotRequest) -> Result<Snapshot> {
        self.post(&format!("/1.0/instances/{}/snapshots", segment(name)), req)
    }

    pub fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()> {
        self.delete(&format!(
            "/1.0/instances/{}/snapshots/{}",
            segment(name),
            segment(snap)
        ))
    }

    pub fn restore_snapshot(&self, name: &str, snap: &str, req: &RestoreRequest) -> Result<Instance> {
        self.post(
            &format!(
                "/1.0/instances/{}/snapshots/{}/restore",
                segment(name),
                segment(snap)
            ),
            req,
        )
    }

    /// Write snapshot `snap` of `name` as a send stream into `to` (whole,
    /// or the changes `since` an older one); the bytes written.
    pub fn export_snapshot(
        &self,
        name: &str,
        snap: &str,
        since: Option<&str>,
        to: &mut (dyn Write + Send),
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64> {
        let mut path = format!(
            "/1.0/instances/{}/snapshots/{}/export",
            segment(name),
            segment(snap)
        );
        if let Some(since) = since {
            path.push_str(&format!("?since={}", segment(since)));
        }
        self.download(&path, to, progress)
    }

    /// Import the send stream `from` yields as a snapshot of `name`
    /// (named `snap`, else as the stream names it).
    pub fn import_snapshot(
        &self,
        name: &str,
        snap: Option<&str>,
        from: impl Read + Send + 'static,
        progress: impl Fn(u64) + Send + 'static,
    ) -> Result<Snapshot> {
        let mut path = format!("/1.0/instances/{}/snapshots", segment(name));
        if let Some(snap) = snap {
            path.push_str(&format!("?name={}", segment(snap)));
        }
        self.upload(&path, from, progress)
    }

    // --- Networking ---

    pub fn forwards(&self, name: &str) -> Result<Vec<PortForward>> {
        self.get(&format!("/1.0/instances/{}/forwards", segment(name)))
    }

    /// `force`: take a reserved port or one a host service listens on (the
    /// admin's).
    pub fn add_forward(&self, name: &str, forward: &PortForward, force: bool) -> Result<Vec<PortForward>> {
        let force = if force { "?force=true" } else { "" };
        self.post(
            &format!("/1.0/instances/{}/forwards{force}", segment(name)),
            forward,
        )
    }

    pub fn remove_forward(&self, name: &str, protocol: &str, host_port: u16) -> Result<()> {
        self.delete(&format!(
            "/1.0/instances/{}/forwards/{}/{host_port}",
            segment(name),
            segment(protocol)
        ))
    }

    pub fn firewall(&self, name: &str) -> Result<Firewall> {
        self.get(&format!("/1.0/instances/{}/firewall", segment(name)))
    }

    /// Add a rule: at number `position` (before the rule that had it), or
    /// last.
    pub fn add_firewall_rule(
        &self,
        name: &str,
        rule: &FirewallRule,
        position: Option<usize>,
    ) -> Result<Firewall> {
        let at = position.map(|p| format!("?position={p}")).unwrap_or_default();
        self.post(
            &format!("/1.0/instances/{}/firewall/rules{at}", segment(name)),
            rule,
        )
    }

    /// Replace the `index`th rule (1-based) in its place.
    pub fn replace_firewall_rule(&self, name: &str, index: usize, rule: &FirewallRule) -> Result<Firewall> {
        self.call(
            Method::PUT,
            &format!("/1.0/instances/{}/firewall/rules/{index}", segment(name)),
            Some(rule),
        )
    }

    // --- Security groups ---

    pub fn firewall_groups(&self) -> Result<Vec<croft_api::FirewallGroup>> {
        self.get("/1.0/firewall-groups")
    }

    pub fn firewall_group(&self, name: &str) -> Result<croft_api::FirewallGroup> {
        self.get(&format!("/1.0/firewall-groups/{}", segment(name)))
    }

    pub fn create_firewall_group(
        &self,
        req: &croft_api::FirewallGroupCreate,
    ) -> Result<croft_api::FirewallGroup> {
        self.post("/1.0/firewall-groups", req)
    }

    pub fn delete_firewall_group(&self, name: &str) -> Result<()> {
        self.delete(&format!("/1.0/firewall-groups/{}", segment(name)))
    }

    /// Change a group's rules: `rule` at `position` (or last), or rule
    /// `index` replaced, moved to `to`, or removed, as the arguments say.
    pub fn add_group_rule(
        &self,
        group: &str,
        rule: &FirewallRule,
        position: Option<usize>,
    ) -> Result<croft_api::FirewallGroup> {
        let at = position.map(|p| format!("?position={p}")).unwrap_or_default();
        self.post(
            &format!("/1.0/firewall-groups/{}/rules{at}", segment(group)),
            rule,
        )
    }

    pub fn replace_group_rule(
        &self,
        group: &str,
        index: usize,
        rule: &FirewallRule,
    ) -> Result<croft_api::FirewallGroup> {
        self.call(
            Method::PUT,
            &format!("/1.0/firewall-groups/{}/rules/{index}", segment(group)),
            Some(rule),
        )
    }

    pub fn move_group_rule(&self, group: &str, index: usize, to: usize) -> Result<croft_api::FirewallGroup> {
        self.post(
            &format!("/1.0/firewall-groups/{}/rules/{index}/move", segment(group)),
            &croft_api::RuleMove { to },
        )
    }

    pub fn remove_group_rule(&self, group: &str, index: usize) -> Result<croft_api::FirewallGroup> {
        self.call(
            Method::DELETE,
            &format!("/1.0/firewall-groups/{}/rules/{index}", segment(group)),
            None::<&()>,
        )
    }

    pub fn attach_group(&self, name: &str, group: &str) -> Result<Firewall> {
        self.post(
            &format!("/1.0/instances/{}/firewall/groups", segment(name)),
            &croft_api::GroupAttach { group: group.into() },
        )
    }

    pub fn detach_group(&self, name: &str, group: &str) -> Result<Firewall> {
        self.call(
            Method::DELETE,
            &format!(
                "/1.0/instances/{}/firewall/groups/{}",
                segment(name),
                segment(group)
            ),
            None::<&()>,
        )
    }

    /// Give VPS `name` another address: `req.address`, or the next free
    /// one of `req.family`.
    pub fn add_address(&self, name: &str, req: &croft_api::AddressAdd) -> Result<Instance> {
        self.post(&format!("/1.0/instances/{}/addresses", segment(name)), req)
    }

    pub fn add_nic(&self, name: &str, req: &croft_api::NicAdd) -> Result<Instance> {
        self.post(&format!("/1.0/instances/{}/nics", segment(name)), req)
    }

    pub fn remove_nic(&self, name: &str, index: u32) -> Result<Instance> {
        self.call(
            Method::DELETE,
            &format!("/1.0/instances/{}/nics/{index}", segment(name)),
            None::<&()>,
        )
    }

    pub fn remove_address(&self, name: &str, address: &str) -> Result<Instance> {
        self.call(
            Method::DELETE,
            &format!("/1.0/instances/{}/addresses/{}", segment(name), segment(address)),
            None::<&()>,
        )
    }

    /// What VPS `name` sent and received per month, newest first.
    pub fn traffic(&self, name: &str) -> Result<Vec<croft_api::Traffic>> {
        self.get(&format!("/1.0/instances/{}/traffic", segment(name)))
    }

    /// Give the `index`th rule the number `to`.
    pub fn move_firewall_rule(&self, name: &str, index: usize, to: usize) -> Result<Firewall> {
        self.post(
            &format!("/1.0/instances/{}/firewall/rules/{index}/move", segment(name)),
            &croft_api::RuleMove { to },
        )
    }

    /// Remove the `index`th rule (1-based, in match order).
    pub fn remove_firewall_rule(&self, name: &str, index: usize) -> Result<Firewall> {
        self.call(
            Method::DELETE,
            &format!("/1.0/instances/{}/firewall/rules/{index}", segment(name)),
            None::<&()>,
        )
    }

    pub fn networks(&self) -> Result<Vec<Network>> {
        self.get("/1.0/networks")
    }

    pub fn network(&self, name: &str) -> Result<Network> {
        self.get(&format!("/1.0/networks/{}", segment(name)))
    }

    pub fn create_network(&self, req: &croft_api::NetworkCreate) -> Result<Network> {
        self.post("/1.0/networks", req)
    }

    pub fn delete_network(&self, name: &str) -> Result<()> {
        self.delete(&format!("/1.0/networks/{}", segment(name)))
    }

    // --- Images ---

    pub fn images(&self) -> Result<Vec<Image>> {
        self.get("/1.0/images")
    }

    pub fn image(&self, name: &str) -> Result<Image> {
        self.get(&format!("/1.0/images/{}", segment(name)))
    }

    pub fn build_image(&self, name: &str) -> Result<Job> {
        self.post("/1.0/images/build", &BuildRequest { name: name.into() })
    }

    /// Build croft's image `name` anew from the mirror (a job).
    pub fn refresh_image(&self, name: &str) -> Result<Job> {
        self.post("/1.0/images/refresh", &BuildRequest { name: name.into() })
    }

    /// Make an image of VPS `name`'s disk or snapshot.
    pub fn publish(&self, name: &str, req: &croft_api::PublishRequest) -> Result<Image> {
        self.post(&format!("/1.0/instances/{}/publish", segment(name)), req)
    }

    /// Import the tarball `from` yields as image `name`.
    pub fn import_image(
        &self,
        name: &str,
        from: impl Read + Send + 'static,
        progress: impl Fn(u64) + Send + 'static,
    ) -> Result<Image> {
        self.upload(&format!("/1.0/images?name={}", segment(name)), from, progress)
    }

    /// Write image `name` as a gzip-compressed tarball into `to`; the
    /// bytes written.
    pub fn export_image(
        &self,
        name: &str,
        to: &mut (dyn Write + Send),
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64> {
        self.download(&format!("/1.0/images/{}/export", segment(name)), to, progress)
    }

    pub fn delete_image(&self, name: &str) -> Result<()> {
        self.delete(&format!("/1.0/images/{}", segment(name)))
    }

    // --- Storage ---

    pub fn storage_pools(&self) -> Result<Vec<StoragePool>> {
        self.get("/1.0/storage-pools")
    }

    pub fn storage_pool(&self, name: &str) -> Result<StoragePool> {
        self.get(&format!("/1.0/storage-pools/{}", segment(name)))
    }

    // --- Jobs ---

    pub fn jobs(&self) -> Result<Vec<Job>> {
        self.get("/1.0/jobs")
    }

    pub fn job(&self, id: &str) -> Result<Job> {
        self.get(&format!("/1.0/jobs/{}", segment(id)))
    }

    /// Ask running job `id` to stop at its next step; the job as it is now.
    pub fn cancel_job(&self, id: &str) -> Result<Job> {
        self.call(Method::DELETE, &format!("/1.0/jobs/{}", segment(id)), None::<&()>)
    }

    /// Job `id` once it has ended, or as it is after `timeout_secs`.
    pub fn wait_job(&self, id: &str, timeout_secs: u64) -> Result<Job> {
        self.get(&format!("/1.0/jobs/{}/wait?timeout={timeout_secs}", segment(id)))
    }

    // --- Who may use croft ---

    pub fn whoami(&self) -> Result<WhoAmI> {
        self.get("/1.0/auth/whoami")
    }

    pub fn tenants(&self) -> Result<Vec<Tenant>> {
        self.get("/1.0/tenants")
    }

    pub fn tenant(&self, name: &str) -> Result<Tenant> {
        self.get(&format!("/1.0/tenants/{}", segment(name)))
    }

    pub fn create_tenant(&self, req: &TenantCreate) -> Result<Tenant> {
        self.post("/1.0/tenants", req)
    }

    pub fn delete_tenant(&self, name: &str) -> Result<()> {
        self.delete(&format!("/1.0/tenants/{}", segment(name)))
    }

    pub fn set_quota(&self, tenant: &str, quota: &Quota) -> Result<Tenant> {
        self.call(
            Method::PUT,
            &format!("/1.0/tenants/{}/quota", segment(tenant)),
            Some(quota),
        )
    }

    /// Set the images a tenant may use (`None`: every image).
    pub fn set_tenant_features(&self, tenant: &str, features: Vec<String>) -> Result<Tenant> {
        self.call(
            Method::PUT,
            &format!("/1.0/tenants/{}/features", segment(tenant)),
            Some(&croft_api::TenantFeatures { features }),
        )
    }

    pub fn set_tenant_images(&self, tenant: &str, images: Option<Vec<String>>) -> Result<Tenant> {
        self.call(
            Method::PUT,
            &format!("/1.0/tenants/{}/images", segment(tenant)),
            Some(&TenantImages { images }),
        )
    }

    pub fn tenant_usage(&self, tenant: &str) -> Result<TenantUsage> {
        self.get(&format!("/1.0/tenants/{}/usage", segment(tenant)))
    }

    pub fn plans(&self) -> Result<Vec<Plan>> {
        self.get("/1.0/plans")
    }

    pub fn plan(&self, name: &str) -> Result<Plan> {
        self.get(&format!("/1.0/plans/{}", segment(name)))
    }

    pub fn create_plan(&self, req: &PlanCreate) -> Result<Plan> {
        self.post("/1.0/plans", req)
    }

    pub fn delete_plan(&self, name: &str) -> Result<()> {
        self.delete(&format!("/1.0/plans/{}", segment(name)))
    }

    /// The latest `limit` audit entries, newest first.
    pub fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        self.get(&format!("/1.0/audit?limit={limit}"))
    }

    pub fn trust(&self) -> Result<Trust> {
        self.get("/1.0/trust")
    }

    pub fn create_trust_token(&self, req: &TrustTokenCreate) -> Result<TrustTokenCreated> {
        self.post("/1.0/trust/tokens", req)
    }

    /// Stop trusting a certificate (by fingerprint) or drop a trust token.
    pub fn untrust(&self, id: &str) -> Result<()> {
        self.delete(&format!("/1.0/trust/{}", segment(id)))
    }

    /// Trust this client's certificate with a trust token's secret.
    pub fn enroll(&self, secret: &str) -> Result<Certificate> {
        self.post(
            "/1.0/trust/enroll",
            &Enroll {
                secret: secret.to_string(),
            },
        )
    }

    pub fn tokens(&self) -> Result<Vec<Token>> {
        self.get("/1.0/tokens")
    }

    pub fn create_token(&self, req: &TokenCreate) -> Result<TokenCreated> {
        self.post("/1.0/tokens", req)
    }

    pub fn revoke_token(&self, id: &str) -> Result<()> {
        self.delete(&format!("/1.0/tokens/{}", segment(id)))
    }

    /// The panel's users (of the client's tenant, or all for the admin).
    pub fn users(&self) -> Result<Vec<croft_api::User>> {
        self.get("/1.0/users")
    }

    pub fn create_user(&self, req: &croft_api::UserCreate) -> Result<croft_api::User> {
        self.post("/1.0/users", req)
    }

    pub fn delete_user(&self, name: &str) -> Result<()> {
        self.delete(&format!("/1.0/users/{}", segment(name)))
    }

    /// Set a panel user's password (its sessions end).
    pub fn set_user_password(&self, name: &str, password: &str) -> Result<()> {
        let body = croft_api::PasswordChange {
            password: password.to_string(),
            current: None,
        };
        let path = format!("/1.0/users/{}/password", segment(name));
        self.call::<Option<()>>(Method::PUT, &path, Some(&body)).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_stay_one_segment() {
        assert_eq!(segment("web1"), "web1");
        assert_eq!(segment("debian/bookworm"), "debian%2Fbookworm");
        assert_eq!(segment("../etc"), "..%2Fetc");
        assert_eq!(segment("a b?c#d%"), "a%20b%3Fc%23d%25");
        assert_eq!(segment("café"), "caf%C3%A9");
    }
}
