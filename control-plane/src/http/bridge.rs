//! A viewer reached this replica, but the session's agent is linked to another: the viewer's
//! WebSocket is joined to one opened to that replica's `/internal/v1/vnc/{id}` (with a token
//! only replicas can mint), and bytes are relayed both ways. Each viewer has its own
//! connection between the replicas, read only as fast as the viewer takes what it is sent,
//! so a stalled viewer still stalls its own stream only (the owner's writer counts its
//! credit). Pings of the owner's tunnel are passed to the viewer and its pongs back, so the
//! owner still notices a viewer that went silent.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::AggregatedMessage;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};

use super::AppState;
use super::error::ApiError;
use crate::actors::vnc_tunnel::Viewer;
use crate::model::Role;
use crate::store::replicas::Replica;

/// Largest viewer message accepted (RFB client messages are tiny; clipboard text is the
/// largest legitimate one).
pub const MAX_VIEWER_FRAME: usize = 1024 * 1024;

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
    let (response, session, stream) = actix_ws::handle(req, body)
        .map_err(|e| ApiError::invalid(format!("websocket upgrade: {e}")))?;
    let stream = stream
        .max_frame_size(MAX_VIEWER_FRAME)
        .aggregate_continuations()
        .max_continuation_size(MAX_VIEWER_FRAME);
    actix_web::rt::spawn(relay(session, stream, upstream, state.draining.clone()));
    Ok(response)
}

async fn relay(
    mut viewer: actix_ws::Session,
    mut from_viewer: actix_ws::AggregatedMessageStream,
    upstream: actix_codec::Framed<awc::BoxedSocket, awc::ws::Codec>,
    mut draining: tokio::sync::watch::Receiver<bool>,
) {
    let closer = viewer.clone();
    let (mut to_owner, mut from_owner) = upstream.split();
    let mut pong_to_viewer = viewer.clone();
    let viewer_to_owner = async {
        while let Some(message) = from_viewer.next().await {
            let forwarded = match message {
                Ok(AggregatedMessage::Binary(bytes)) => Message::Binary(bytes),
                Ok(AggregatedMessage::Text(text)) => Message::Text(text),
                Ok(AggregatedMessage::Pong(bytes)) => Message::Pong(bytes),
                Ok(AggregatedMessage::Ping(bytes)) => {
                    let _ = pong_to_viewer.pong(&bytes).await;
                    continue;
                }
                Ok(AggregatedMessage::Close(reason)) => {
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
    let owner_to_viewer = async {
        while let Some(frame) = from_owner.next().await {
            // Awaiting the viewer's socket is what holds the owner back for a slow viewer.
            let sent = match frame {
                Ok(Frame::Binary(bytes)) => viewer.binary(bytes).await,
                Ok(Frame::Text(bytes)) => {
                    viewer
                        .text(String::from_utf8_lossy(&bytes).into_owned())
                        .await
                }
                Ok(Frame::Ping(bytes)) => viewer.ping(&bytes).await,
                Ok(Frame::Pong(_)) | Ok(Frame::Continuation(_)) => Ok(()),
                Ok(Frame::Close(reason)) => {
                    let _ = viewer.clone().close(reason).await;
                    return;
                }
                Err(_) => break,
            };
            if sent.is_err() {
                return;
            }
        }
        let _ = viewer.clone().close(None).await;
    };
    // This replica shutting down ends the bridge; the viewer reconnects through another.
    let shutdown = async {
        let _ = draining.wait_for(|draining| *draining).await;
        let reason = actix_ws::CloseReason {
            code: actix_ws::CloseCode::Restart,
            description: Some("the control plane is restarting; reconnecting".into()),
        };
        let _ = closer.close(Some(reason)).await;
    };
    futures_util::pin_mut!(viewer_to_owner, owner_to_viewer, shutdown);
    let relaying = futures_util::future::select(viewer_to_owner, owner_to_viewer);
    futures_util::future::select(relaying, shutdown).await;
}
