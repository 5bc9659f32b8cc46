//! A croftd for tests (tier 2): the whole REST API over the simulated
//! backend, a dir pool in a temporary directory, the simulated host
//! network and an in-memory store, with helpers to talk HTTP to it. No
//! root needed.
#![allow(dead_code)] // each test binary uses its own share of the helpers

use axum::body::Body;
use axum::http::{Request, StatusCode};
use croft_api::{ErrorBody, Instance, Job, JobStatus};
use croftd::backend::sim::SimBackend;
use croftd::config::DaemonConfig;
use croftd::service::images::catalog::Catalog;
use croftd::service::network::SimNet;
use croftd::service::{Seams, Services};
use croftd::store::{SqliteStore, Store};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

pub struct Sim {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub backend: Arc<SimBackend>,
    pub net: Arc<SimNet>,
    pub services: Services,
    /// The API as the local socket serves it (every request host root's).
    pub router: axum::Router,
    /// The API as the network listener serves it, and its route table.
    pub remote: axum::Router,
    pub table: Vec<croftd::http::Endpoint>,
}

/// The address remote test requests come from.
pub const REMOTE: &str = "192.0.2.10:40000";

impl Sim {
    pub async fn new() -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        Sim::on(dir, store).await
    }

    /// A croftd over `store` (another croftd's, to restart one).
    pub async fn on(dir: tempfile::TempDir, store: Arc<dyn Store>) -> Sim {
        let cfg = DaemonConfig {
            state_dir: dir.path().join("state"),
            run_dir: dir.path().join("run"),
            storage_driver: "dir".into(),
            ..Default::default()
        };
        let pool: Arc<dyn croft_host::storage::Pool> =
            Arc::from(croft_host::storage::open(&cfg.pool()).unwrap());
        let backend = Arc::new(SimBackend::new(pool.clone()));
        let net = Arc::new(SimNet::default());
        let catalog = Catalog::new(
            cfg.images_dir(),
            cfg.busybox.clone(),
            String::new(),
            String::new(),
        );
        let services = Services::new(Seams {
            cfg: Arc::new(cfg),
            store: store.clone(),
            backend: backend.clone(),
            pool,
            catalog,
            net_host: net.clone(),
        })
        .unwrap();
        services.instances.reconcile().await.unwrap();
        // As if a network listener were up (what trust tokens carry).
        let mut services = services;
        services.https = Some(croftd::service::Https {
            address: "127.0.0.1:8443".into(),
            fingerprint: "ab".repeat(32),
            bound: "127.0.0.1:8443".parse().unwrap(),
        });
        let router = croftd::http::local(services.clone());
        let (remote, table) = croftd::http::api(services.clone());
        Sim {
            dir,
            store,
            backend,
            net,
            services,
            router,
            remote,
            table,
        }
    }

    /// Send a request; its status and body. A body starting with `STREAM:`
    /// goes as a stream (the rest of it), any other as JSON.
    pub async fn send(&self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Vec<u8>) {
        self.send_as(None, method, path, body).await
    }

    /// [`Self::send`] as a remote caller from [`REMOTE`] with `token`
    /// (as a bearer token; no header if empty), or locally if `None`.
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Vec<u8>) {
        self.send_from(token.map(|t| (t, REMOTE)), method, path, body)
            .await
    }

    /// A remote request with the client certificate of `fingerprint`
    /// (and no token): its status and error message or body.
    pub async fn send_with_certificate(
        &self,
        fingerprint: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let mut req = req
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
            .unwrap();
        req.extensions_mut().insert(croftd::http::Peer::Remote {
            addr: REMOTE.parse().unwrap(),
            certificate: Some(fingerprint.to_string()),
        });
        let resp = self.remote.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        let text = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        (status, text)
    }

    /// [`Self::send_as`] from a given address: `remote` is the token and
    /// the address, or `None` for the local socket.
    pub async fn send_from(
        &self,
        remote: Option<(&str, &str)>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Vec<u8>) {
        let token = remote.map(|(t, _)| t);
        let mut req = Request::builder().method(method).uri(path);
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(b) => match b.strip_prefix("STREAM:") {
                Some(bytes) => {
                    req = req.header("content-type", croft_api::STREAM_TYPE);
                    Some(bytes)
                }
                None => {
                    req = req.header("content-type", "application/json");
                    Some(b)
                }
            },
            None => None,
        };
        let mut req = req
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
            .unwrap();
        let router = match token {
            None => self.router.clone(),
            Some(_) => {
                let addr = remote.map(|(_, a)| a).unwrap_or(REMOTE);
                let peer = croftd::http::Peer::Remote {
                    addr: addr.parse().unwrap(),
                    certificate: None,
                };
                req.extensions_mut().insert(peer);
                self.remote.clone()
            }
        };
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, bytes.to_vec())
    }

    /// `req` as the network listener serves it, from [`REMOTE`] without a
    /// client certificate: the whole response.
    pub async fn send_remote(&self, mut req: Request<Body>) -> axum::response::Response {
        req.extensions_mut().insert(croftd::http::Peer::Remote {
            addr: REMOTE.parse().unwrap(),
            certificate: None,
        });
        self.remote.clone().oneshot(req).await.unwrap()
    }

    /// A request that must succeed, and its answer.
    pub async fn ok<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<&str>) -> T {
        let (status, bytes) = self.send(method, path, body).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }

    /// A request that must be refused with `want`, and its error message
    /// (the body is always our JSON error, its code the status).
    pub async fn refused(&self, method: &str, path: &str, body: Option<&str>, want: StatusCode) -> String {
        let (status, bytes) = self.send(method, path, body).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, want, "{method} {path} {body:?}: {text}");
        let err: ErrorBody =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not an error body ({e}): {text}"));
        assert_eq!(err.code, want.as_u16());
        assert!(
            !err.error.is_empty() && !err.error.contains('\n'),
            "{:?}",
            err.error
        );
        err.error
    }

    pub async fn wait_job(&self, job: &Job) -> Job {
        self.ok("GET", &format!("/1.0/jobs/{}/wait?timeout=10", job.id), None)
            .await
    }

    /// Launch `name` from busybox with `extra` request fields; the job's end.
    pub async fn launch_with(&self, name: &str, extra: &str) -> Job {
        let body = format!(r#"{{"name":"{name}","image":"busybox"{extra}}}"#);
        let job: Job = self.ok("POST", "/1.0/instances", Some(&body)).await;
        self.wait_job(&job).await
    }

    pub async fn launch(&self, name: &str) -> Instance {
        let job = self.launch_with(name, "").await;
        assert_eq!(job.status, JobStatus::Success, "{job:?}");
        self.info(name).await
    }

    pub async fn info(&self, name: &str) -> Instance {
        self.ok("GET", &format!("/1.0/instances/{name}"), None).await
    }

    pub async fn details(&self, name: &str) -> croft_api::HostDetails {
        self.ok("GET", &format!("/1.0/instances/{name}/host"), None).await
    }

    pub async fn state(&self, name: &str, body: &str) -> Instance {
        self.ok("POST", &format!("/1.0/instances/{name}/state"), Some(body))
            .await
    }

    /// Wait until `name`'s view satisfies `cond` (what a watcher task
    /// records arrives a moment after the event).
    pub async fn wait_for(&self, name: &str, what: &str, cond: impl Fn(&Instance) -> bool) -> Instance {
        for _ in 0..200 {
            let vps = self.info(name).await;
            if cond(&vps) {
                return vps;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{name}: {what} never happened: {:?}", self.info(name).await);
    }
}

// The Prometheus text parser, shared with the end-to-end tests.
pub mod prometheus;
