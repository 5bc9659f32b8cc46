//! A command in a VPS, or its console, over croftd's API: one WebSocket
//! (`GET /1.0/instances/{name}/exec` or `.../console/attach`, frames as
//! `croft_api::exec` says). What a remote `croft exec` and `croft console`
//! use; stdin is read on a thread of its own, signals and window sizes
//! arrive from the caller's.

use crate::{segment, Client, ClientError, Result};
use croft_api::exec::{ExecInput, ExecOutput, ExecStart};
use futures_util::{SinkExt, StreamExt};
use std::io::Read;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// Where a command's output goes: called with the stream
/// ([`croft_api::exec::STDOUT`] or `STDERR`) and the bytes.
pub type OutputSink = Box<dyn FnMut(u8, &[u8]) + Send>;

/// The caller's ends of a command.
pub struct ExecIo {
    /// Its input, read on a thread of its own until it ends.
    pub stdin: Box<dyn Read + Send>,
    /// Called with each piece of output.
    pub output: OutputSink,
    /// Signals and window sizes, as the caller catches them.
    pub controls: std::sync::mpsc::Receiver<ExecInput>,
}

fn broken(why: impl std::fmt::Display) -> ClientError {
    ClientError::Io {
        what: "the exec session broke".into(),
        source: std::io::Error::other(why.to_string()),
    }
}

impl Client {
    /// Run `start` in VPS `name` and relay `io` until it ends: its exit
    /// code (128 + a signal that ended it).
    pub fn exec(&self, name: &str, start: &ExecStart, io: ExecIo) -> Result<i32> {
        let path = format!("/1.0/instances/{}/exec", segment(name));
        self.session(&path, Some(start), io)
    }

    /// Attach to VPS `name`'s console and relay `io` until its stdin ends
    /// (the user detached: `Ok(0)`) or the console closes (the VPS
    /// stopped: an error saying so).
    pub fn console(&self, name: &str, io: ExecIo) -> Result<i32> {
        let path = format!("/1.0/instances/{}/console/attach", segment(name));
        self.session(&path, None, io)
    }

    /// One session on the WebSocket at `path`: `start` first if given (an
    /// exec, whose end of stdin is passed on), else a console (whose end
    /// of stdin detaches).
    fn session(&self, path: &str, start: Option<&ExecStart>, io: ExecIo) -> Result<i32> {
        let ExecIo {
            stdin,
            mut output,
            controls,
        } = io;
        self.run(async move {
            let mut ws = self.websocket(path).await?;
            if let Some(start) = start {
                let start = serde_json::to_string(start).map_err(ClientError::Decode)?;
                ws.send(Message::Text(start.into())).await.map_err(broken)?;
            }

            // Input from threads: stdin, then its end; signals and sizes.
            let (input_tx, mut input_rx) = tokio::sync::mpsc::channel::<Option<Vec<u8>>>(8);
            std::thread::spawn(move || read_stdin(stdin, input_tx));
            let (control_tx, mut control_rx) = tokio::sync::mpsc::unbounded_channel();
            std::thread::spawn(move || {
                while let Ok(c) = controls.recv() {
                    if control_tx.send(c).is_err() {
                        return;
                    }
                }
            });
            let mut stdin_open = true;
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Binary(frame))) if !frame.is_empty() => output(frame[0], &frame[1..]),
                        Some(Ok(Message::Text(text))) => {
                            return match serde_json::from_str::<ExecOutput>(&text) {
                                Ok(ExecOutput::Exit { code }) => Ok(code),
                                Ok(ExecOutput::Error { message }) => Err(ClientError::Api { status: 500, message }),
                                Err(e) => Err(broken(e)),
                            };
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(broken(e)),
                        None => return Err(broken("croftd closed the session before the command ended")),
                    },
                    input = input_rx.recv(), if stdin_open => {
                        let msg = match input.flatten() {
                            Some(bytes) => Message::Binary(bytes.into()),
                            None if start.is_none() => {
                                // Detached from the console.
                                let _ = ws.close(None).await;
                                return Ok(0);
                            }
                            None => {
                                stdin_open = false;
                                Message::Text(json(&ExecInput::Eof).into())
                            }
                        };
                        ws.send(msg).await.map_err(broken)?;
                    }
                    Some(control) = control_rx.recv() => {
                        ws.send(Message::Text(json(&control).into())).await.map_err(broken)?;
                    }
                }
            }
        })
    }
}

/// A WebSocket this client opened.
pub(crate) type WebSocket = tokio_tungstenite::WebSocketStream<Box<dyn crate::Stream>>;

impl Client {
    /// Open the WebSocket at `path`: a refusal before the upgrade is
    /// croftd's JSON error, as for any call.
    pub(crate) async fn websocket(&self, path: &str) -> Result<WebSocket> {
        let path = self.target(path);
        let mut req = format!("ws://croftd{path}")
            .into_client_request()
            .map_err(broken)?;
        if let Some(token) = self.token() {
            let value = format!("Bearer {token}").parse().map_err(broken)?;
            req.headers_mut().insert("authorization", value);
        }
        let stream = self.connect().await?;
        match tokio_tungstenite::client_async(req, stream).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let status = resp.status().as_u16();
                let body = resp.into_body().unwrap_or_default();
                let message = serde_json::from_slice::<croft_api::ErrorBody>(&body)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| String::from_utf8_lossy(&body).trim().to_string());
                Err(ClientError::Api { status, message })
            }
            Err(e) => Err(broken(e)),
        }
    }

    /// Follow croftd's events (`GET /1.0/events`): `on_event` hears each,
    /// and says whether to go on.
    pub fn monitor(&self, mut on_event: impl FnMut(croft_api::Event) -> bool + Send) -> Result<()> {
        self.run(async move {
            let mut ws = self.websocket("/1.0/events").await?;
            while let Some(msg) = ws.next().await {
                match msg.map_err(broken)? {
                    Message::Text(text) => {
                        let event = serde_json::from_str(&text).map_err(ClientError::Decode)?;
                        if !on_event(event) {
                            let _ = ws.close(None).await;
                            return Ok(());
                        }
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            Err(broken("croftd closed the event stream"))
        })
    }
}

fn json(input: &ExecInput) -> String {
    serde_json::to_string(input).expect("exec input serializes")
}

/// Read `from` into `to` chunk by chunk; `None` at its end.
fn read_stdin(mut from: Box<dyn Read + Send>, to: tokio::sync::mpsc::Sender<Option<Vec<u8>>>) {
    let mut buf = vec![0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.blocking_send(Some(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = to.blocking_send(None);
}
