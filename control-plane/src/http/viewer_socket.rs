//! Accepting a viewer's WebSocket, the same way for a tunnel on this replica and for a bridge
//! to another: an [`Inbox`] decodes what the viewer sends; what goes to the viewer is written
//! by a [`ViewerWriter`] as the connection's writer asks for it, so nothing piles up in
//! between.

use actix::ArbiterHandle;
use actix_web::body::{BodyStream, BoxBody};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::Stream;

use super::error::ApiError;
use super::upgraded;
use crate::actors::viewer_writer::{ToViewer, ViewerWriter};
use crate::websocket::Owed;
use crate::websocket::{self, Inbox};

/// Largest viewer message accepted (RFB client messages are tiny; clipboard text is the
/// largest legitimate one).
pub const MAX_VIEWER_FRAME: usize = 1024 * 1024;

/// The upgrade response of a viewer, still without its writer.
pub struct Accepted {
    response: HttpResponse<()>,
}

/// Upgrades the viewer's request to a WebSocket: what the viewer sends, and the response.
pub fn accept(req: &HttpRequest, body: web::Payload) -> Result<(Inbox, Accepted), ApiError> {
    let (response, incoming) =
        websocket::handshake(req, body, MAX_VIEWER_FRAME).map_err(handshake_error)?;
    Ok((incoming, Accepted { response }))
}

/// Checks the viewer's request is a WebSocket handshake, whose messages are read later.
pub fn upgrade(req: &HttpRequest) -> Result<Accepted, ApiError> {
    let response = websocket::upgrade(req).map_err(handshake_error)?;
    Ok(Accepted { response })
}

fn handshake_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(format!("websocket upgrade: {e}"))
}

/// What goes to the viewer: what `source` yields, written as the socket takes it;
/// `written(n)` is called as `n` RFB bytes are handed to the socket.
pub fn body<Q, F>(source: Q, owed: Owed, written: F) -> BoxBody
where
    Q: Stream<Item = ToViewer> + Unpin + 'static,
    F: FnMut(usize) + Unpin + 'static,
{
    BoxBody::new(BodyStream::new(ViewerWriter::new(source, owed, written)))
}

impl Accepted {
    /// The upgrade response, its body [`body`].
    pub fn respond<Q, F>(self, source: Q, owed: Owed, written: F) -> HttpResponse
    where
        Q: Stream<Item = ToViewer> + Unpin + 'static,
        F: FnMut(usize) + Unpin + 'static,
    {
        self.response.set_body(body(source, owed, written))
    }

    /// The upgrade response, the viewer served by `serve` (from the messages it sends) on
    /// the worker `home`, or on this one.
    pub fn serve_on<F>(self, home: Option<ArbiterHandle>, serve: F) -> HttpResponse
    where
        F: FnOnce(Inbox) -> BoxBody + Send + 'static,
    {
        upgraded::deferred(self.response, home, move |payload| {
            serve(Inbox::new(payload, MAX_VIEWER_FRAME))
        })
    }
}
