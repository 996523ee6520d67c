//! A viewer reached this replica, but the session's agent is linked to another: the viewer's
//! WebSocket is joined to one opened to that replica's `/internal/v1/vnc/{id}` (with a token
//! only replicas can mint), and messages are relayed both ways. Each viewer has its own
//! connection between the replicas, and a frame is read from it only when the viewer's socket
//! asks for the next one (the same [`ViewerWriter`](crate::actors::viewer_writer) as a local
//! tunnel's), so a stalled viewer holds one frame here, stalls the owner's writer, and so its
//! own stream's credit only. Pings of the owner's tunnel are passed to the viewer and its
//! pongs back, so the owner still notices a viewer that went silent.

use std::task::Poll;

use actix_http::ws::{CloseCode, CloseReason};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::websocket::Received;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::AppState;
use super::error::ApiError;
use super::viewer_socket::{self, MAX_VIEWER_FRAME};
use crate::actors::viewer_writer::ToViewer;
use crate::actors::vnc_tunnel::Viewer;
use crate::model::Role;
use crate::store::replicas::Replica;
use crate::websocket::Owed;

/// Header carrying the viewer's address to the owning replica (for its audit log).
pub const VIEWER_IP_HEADER: &str = "x-streamspace-viewer-ip";

/// Opens the stream on `replica` and upgrades the viewer to it.
pub async fn open(
    state: &AppState,
    req: &HttpRequest,
    body: web::Payload,
    viewer: &Viewer,
    role: Role,
    replica: &Replica,
) -> Result<HttpResponse, ApiError> {
    let token =
        state
            .keys
            .replica_bridge(viewer.user_id, &viewer.username, role, viewer.session_id);
    let url = format!(
        "{}/internal/v1/vnc/{}",
        replica.address.replacen("http", "ws", 1),
        viewer.session_id
    );
    let unreachable = |e: String| ApiError::Unavailable {
        code: "replica_unavailable",
        message: format!(
            "the control-plane replica holding this desktop's agent ({}) does not answer: {e}",
            replica.address
        ),
    };
    let mut request = awc::Client::new()
        .ws(url)
        .bearer_auth(token)
        .max_frame_size(MAX_VIEWER_FRAME);
    if let Some(ip) = &viewer.ip {
        request = request.set_header(VIEWER_IP_HEADER, ip.as_str());
    }
    let (answer, upstream) = request
        .connect()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if answer.status() != actix_web::http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(unreachable(format!("it answered {}", answer.status())));
    }
    let (incoming, accepted) = viewer_socket::accept(req, body)?;
    let (to_owner, from_owner) = upstream.split();
    let (ours, mut ours_queue) = mpsc::unbounded_channel();
    let owed = Owed::default();
    let mut from_owner = from_owner.fuse();
    // Our own frames (pongs to the viewer's pings, the drain's close) go first; then the
    // owner's, one at a time as the viewer's socket takes them.
    let source = futures_util::stream::poll_fn(move |cx| {
        if let Poll::Ready(Some(frame)) = ours_queue.poll_recv(cx) {
            return Poll::Ready(Some(frame));
        }
        loop {
            let frame = match futures_util::ready!(from_owner.poll_next_unpin(cx)) {
                Some(Ok(Frame::Binary(bytes))) => ToViewer::Bytes(bytes),
                Some(Ok(Frame::Ping(_))) => ToViewer::Ping,
                Some(Ok(Frame::Close(reason))) => ToViewer::Close(reason.unwrap_or(CloseReason {
                    code: CloseCode::Normal,
                    description: None,
                })),
                // A tunnel sends its viewer no text; pongs answer pings the viewer never sent.
                Some(Ok(Frame::Text(_) | Frame::Pong(_) | Frame::Continuation(_))) => continue,
                Some(Err(_)) | None => return Poll::Ready(None),
            };
            return Poll::Ready(Some(frame));
        }
    });
    actix_web::rt::spawn(relay(
        incoming,
        to_owner,
        ours,
        owed.clone(),
        state.draining.clone(),
    ));
    Ok(accepted.respond(source, owed, |_| {}))
}

/// The viewer's messages to the owner, until either side ends or this replica drains.
async fn relay(
    mut from_viewer: crate::websocket::Inbox,
    mut to_owner: futures_util::stream::SplitSink<
        actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
        Message,
    >,
    ours: mpsc::UnboundedSender<ToViewer>,
    owed: Owed,
    mut draining: tokio::sync::watch::Receiver<bool>,
) {
    let forward = async {
        // Ends when the viewer's connection does (its response body, our writer, is dropped).
        while let Some(message) = from_viewer.next().await {
            let forwarded = match message {
                Ok(Received::Binary(bytes)) => Message::Binary(bytes),
                Ok(Received::Text(text)) => Message::Text(text),
                Ok(Received::Pong(bytes)) => Message::Pong(bytes),
                Ok(Received::Ping(bytes)) => {
                    if !owed.add() {
                        let _ = ours.send(ToViewer::Close(CloseReason {
                            code: CloseCode::Policy,
                            description: Some("too many pings left unread".into()),
                        }));
                        break;
                    }
                    let _ = ours.send(ToViewer::Pong(bytes));
                    continue;
                }
                Ok(Received::Close(reason)) => {
                    let _ = to_owner.send(Message::Close(reason)).await;
                    return;
                }
                Err(_) => break,
            };
            if to_owner.send(forwarded).await.is_err() {
                break;
            }
        }
        let _ = to_owner.send(Message::Close(None)).await;
    };
    // This replica shutting down ends the bridge; the viewer reconnects through another.
    let shutdown = async {
        let _ = draining.wait_for(|draining| *draining).await;
        let _ = ours.send(ToViewer::Close(CloseReason {
            code: CloseCode::Restart,
            description: Some("the control plane is restarting; reconnecting".into()),
        }));
    };
    futures_util::pin_mut!(forward, shutdown);
    futures_util::future::select(forward, shutdown).await;
}
