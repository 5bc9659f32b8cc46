//! `GET /1.0/instances/{name}/exec`: a command in a VPS over one
//! WebSocket (the frames are `croft_api::exec`'s); and
//! `GET /1.0/instances/{name}/console/attach`: the console the same way,
//! without a start frame (closing the socket detaches). The VPS is checked
//! before the upgrade, so a missing or stopped one is a plain JSON error;
//! what goes wrong after it is the session's last frame.

use super::guard::Scope;
use super::routes::Routes;
use super::{ApiResult, AppState};
use crate::auth::Action::VpsChange;
use crate::backend::session::{ExecControl, ExecSession};
use crate::service::VpsName;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use croft_api::exec::{ExecInput, ExecOutput, ExecStart};
use std::time::Duration;

/// How long a client may take to say what to run.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/instances/{name}/exec", VpsChange, exec).get(
        "/1.0/instances/{name}/console/attach",
        VpsChange,
        console,
    )
}

#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/console/attach",
    tag = "sessions",
    responses((status = 101, description = "A WebSocket: binary frames of console input and output, ExecInput text frames to resize; closing detaches"))
)]
pub(super) async fn console(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    s.instances.running(VpsName::new(&scope.tenant, &name)).await?;
    Ok(ws.on_upgrade(move |mut socket| async move {
        let outcome = match s.instances.console(VpsName::new(&scope.tenant, &name)).await {
            Ok(session) => relay(&mut socket, session).await,
            Err(e) => ExecOutput::Error {
                message: crate::error_chain(&e),
            },
        };
        finish(&mut socket, outcome).await;
    }))
}

#[utoipa::path(
    get,
    path = "/1.0/instances/{name}/exec",
    tag = "sessions",
    responses((status = 101, description = "A WebSocket: an ExecStart text frame first, then binary stdin/stdout/stderr frames and ExecInput/ExecOutput text frames"))
)]
pub(super) async fn exec(
    State(s): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    s.instances.running(VpsName::new(&scope.tenant, &name)).await?;
    Ok(ws.on_upgrade(move |socket| session(socket, s, scope.tenant, name)))
}

async fn session(mut socket: WebSocket, s: AppState, tenant: String, name: String) {
    let outcome = match start(&mut socket).await {
        Ok(start) => match s.instances.exec(VpsName::new(&tenant, &name), start).await {
            Ok(session) => relay(&mut socket, session).await,
            Err(e) => ExecOutput::Error {
                message: crate::error_chain(&e),
            },
        },
        Err(message) => ExecOutput::Error { message },
    };
    finish(&mut socket, outcome).await;
}

/// The session's last frame, and the close.
async fn finish(socket: &mut WebSocket, outcome: ExecOutput) {
    let last = serde_json::to_string(&outcome).expect("an exec outcome serializes");
    let _ = socket.send(Message::Text(last.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// The client's first frame: what to run.
async fn start(socket: &mut WebSocket) -> Result<ExecStart, String> {
    match tokio::time::timeout(START_TIMEOUT, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => {
            serde_json::from_str(&text).map_err(|e| format!("invalid exec start: {e}"))
        }
        Ok(Some(Ok(_))) => Err("the first frame must be the exec start, as JSON text".into()),
        Ok(_) => Err("the client went away".into()),
        Err(_) => Err("no exec start in time".into()),
    }
}

/// Relay between the client and the command until it exits.
async fn relay(socket: &mut WebSocket, session: ExecSession) -> ExecOutput {
    let ExecSession {
        stdin,
        mut output,
        control,
        exit,
    } = session;
    let mut stdin = Some(stdin);
    loop {
        tokio::select! {
            out = output.recv() => match out {
                Some((stream, bytes)) => {
                    let mut frame = Vec::with_capacity(bytes.len() + 1);
                    frame.push(stream);
                    frame.extend_from_slice(&bytes);
                    if socket.send(Message::Binary(frame.into())).await.is_err() {
                        // The client is gone: dropping the session hangs
                        // the command up.
                        return ExecOutput::Error { message: "the client went away".into() };
                    }
                }
                None => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    if let Some(tx) = &stdin {
                        if tx.send(bytes).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ExecInput>(&text) {
                    Ok(ExecInput::Eof) => stdin = None,
                    Ok(ExecInput::Signal { signal }) => {
                        let _ = control.send(ExecControl::Signal(signal));
                    }
                    Ok(ExecInput::Resize { rows, cols }) => {
                        let _ = control.send(ExecControl::Resize { rows, cols });
                    }
                    Err(e) => {
                        return ExecOutput::Error { message: format!("invalid exec input: {e}") };
                    }
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    return ExecOutput::Error { message: "the client went away".into() };
                }
            },
        }
    }
    match exit.await {
        Ok(Ok(code)) => ExecOutput::Exit { code },
        Ok(Err(message)) => ExecOutput::Error { message },
        Err(_) => ExecOutput::Error {
            message: "the command's session ended without an exit".into(),
        },
    }
}
