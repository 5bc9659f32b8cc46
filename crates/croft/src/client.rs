//! A small HTTP/1.1 client for croftd's unix socket (hyper), turning every
//! API error body into a one-line error.

use anyhow::{anyhow, bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;

pub const DEFAULT_SOCKET: &str = "/run/croft/croftd.sock";

pub struct Client {
    socket: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(socket: PathBuf) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Client { socket, rt })
    }

    fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<(StatusCode, Bytes)> {
        self.rt.block_on(async {
            let stream = tokio::net::UnixStream::connect(&self.socket)
                .await
                .with_context(|| {
                    format!(
                        "cannot reach croftd at {} (is it running? are you root?)",
                        self.socket.display()
                    )
                })?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header("host", "croftd");
            if body.is_some() {
                req = req.header("content-type", "application/json");
            }
            let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
            let resp = sender
                .send_request(req)
                .await
                .context("croftd closed the connection")?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            Ok((status, bytes))
        })
    }

    fn call<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<T> {
        let (status, bytes) = self.send(method, path, body)?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<croft_api::ErrorBody>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
            bail!("{msg}");
        }
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| anyhow!("unexpected answer from croftd: {e}"))
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, None)
    }

    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call(Method::POST, path, Some(serde_json::to_vec(body)?))
    }

    pub fn patch<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call(Method::PATCH, path, Some(serde_json::to_vec(body)?))
    }

    pub fn delete(&self, path: &str) -> Result<()> {
        self.call::<serde_json::Value>(Method::DELETE, path, None)
            .map(drop)
    }
}
