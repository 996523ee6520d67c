//! Accepting a viewer's WebSocket, the same way for a tunnel on this replica and for a bridge
//! to another: an [`Inbox`] decodes what the viewer sends; what goes to the viewer is written
//! by a [`ViewerWriter`] as the connection's writer asks for it, so nothing piles up in
//! between.

use actix_web::body::{BodyStream, BoxBody};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::Stream;

use super::error::ApiError;
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
    let (response, incoming) = websocket::handshake(req, body, MAX_VIEWER_FRAME)
        .map_err(|e| ApiError::invalid(format!("websocket upgrade: {e}")))?;
    Ok((incoming, Accepted { response }))
}

impl Accepted {
    /// The upgrade response, its body writing what `source` yields; `written(n)` is called
    /// as `n` RFB bytes are handed to the socket.
    pub fn respond<Q, F>(self, source: Q, owed: Owed, written: F) -> HttpResponse
    where
        Q: Stream<Item = ToViewer> + Unpin + 'static,
        F: FnMut(usize) + Unpin + 'static,
    {
        let writer = ViewerWriter::new(source, owed, written);
        self.response
            .set_body(BoxBody::new(BodyStream::new(writer)))
    }
}
