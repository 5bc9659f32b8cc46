//! `GET /1.0/events`: a WebSocket of what happens to VPSes and
//! operations, as JSON text frames (`croft_api::Event`), filtered to what
//! the caller may see: its tenant's, or, for the admin naming no tenant,
//! everything.

use super::guard::Scope;
use super::routes::Routes;
use super::AppState;
use crate::auth::Action::VpsRead;
use crate::auth::Caller;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use tokio::sync::broadcast::error::RecvError;

pub(super) fn routes(r: Routes) -> Routes {
    r.get("/1.0/events", VpsRead, events)
}

#[utoipa::path(
    get,
    path = "/1.0/events",
    tag = "events",
    responses((status = 101, description = "A WebSocket of Event text frames: the caller's tenant's, or everything for the admin naming none"))
)]
pub(super) async fn events(
    State(s): State<AppState>,
    caller: Caller,
    scope: Scope,
    ws: WebSocketUpgrade,
) -> Response {
    // Subscribed before the upgrade: nothing that happens from the answer
    // on is missed.
    let rx = s.events.subscribe();
    let only = scope.listing(&caller).map(str::to_string);
    ws.on_upgrade(move |socket| relay(socket, rx, only))
}

async fn relay(
    mut socket: WebSocket,
    mut rx: tokio::sync::broadcast::Receiver<croft_api::Event>,
    only: Option<String>,
) {
    loop {
        tokio::select! {
            event = rx.recv() => {
                let event = match event {
                    Ok(e) if only.as_ref().is_none_or(|t| *t == e.tenant) => e,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => croft_api::Event {
                        at: 0.0,
                        tenant: only.clone().unwrap_or_default(),
                        action: "events-lost".into(),
                        target: String::new(),
                        detail: Some(format!("{n} events were missed: the client read too slowly")),
                    },
                    Err(RecvError::Closed) => return,
                };
                let text = serde_json::to_string(&event).expect("an event serializes");
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
