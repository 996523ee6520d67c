//! The viewer's outgoing WebSocket, as the HTTP response body of the upgrade.
//!
//! actix-ws's `Session` queues up to 32 messages in a channel and its body then encodes all of
//! them at once into the HTTP layer's write buffer: a sender learns nothing about what the
//! socket really took, and a stalled viewer could hold megabytes there beyond the stream
//! window. Here the connection's writer (`http/upgraded.rs`) pulls frames only while less than
//! 32 KiB wait to be written, and each frame is reported written the moment it is pulled; so the
//! tunnel returns credit to the agent only for bytes that left this process's queues, and the
//! `streamspace_viewer_buffered_bytes` gauge counts everything held for viewers but that one
//! buffer.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::ws::CloseReason;
use actix_http::ws::{Codec, Message};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::websocket::{Owed, binary_header};

/// Browsers refuse close frames whose reason exceeds the 125-byte control payload.
const MAX_CLOSE_REASON: usize = 123;

/// What the tunnel sends its viewer.
pub enum ToViewer {
    /// RFB bytes from the desktop.
    Bytes(Bytes),
    /// A liveness ping.
    Ping,
    /// The answer to the viewer's ping (counted in [`Owed`] until written).
    Pong(Bytes),
    /// The last frame.
    Close(CloseReason),
}

/// The response body: frames from the tunnel's queue (or the bridge's upstream), encoded as
/// the HTTP layer asks for them.
pub struct ViewerWriter<Q, F> {
    queue: Q,
    owed: Owed,
    codec: Codec,
    buf: BytesMut,
    /// RFB bytes whose frame header went out: written next, as they are.
    payload: Option<Bytes>,
    written: F,
    closed: bool,
}

impl<Q, F: FnMut(usize)> ViewerWriter<Q, F> {
    /// A writer for `queue`; `written(n)` is called as `n` RFB bytes are handed to the socket.
    pub fn new(queue: Q, owed: Owed, written: F) -> Self {
        ViewerWriter {
            queue,
            owed,
            codec: Codec::new(),
            buf: BytesMut::new(),
            payload: None,
            written,
            closed: false,
        }
    }
}

fn shorten(mut reason: CloseReason) -> CloseReason {
    if let Some(text) = reason.description.as_mut()
        && text.len() > MAX_CLOSE_REASON
    {
        let mut end = MAX_CLOSE_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    reason
}

impl<Q: Stream<Item = ToViewer> + Unpin, F: FnMut(usize) + Unpin> Stream for ViewerWriter<Q, F> {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(payload) = this.payload.take() {
            return Poll::Ready(Some(Ok(payload)));
        }
        if this.closed {
            return Poll::Ready(None);
        }
        let message = match this.queue.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            // The tunnel (or the bridge's upstream) is gone without a word: end the connection.
            Poll::Ready(None) => {
                this.closed = true;
                Message::Close(None)
            }
            // The frame's header, then the payload as it came from the agent (the connection's
            // writer sends both in one `writev`): encoding the frame whole copied every byte.
            Poll::Ready(Some(ToViewer::Bytes(bytes))) => {
                (this.written)(bytes.len());
                let header = binary_header(bytes.len());
                this.payload = Some(bytes);
                return Poll::Ready(Some(Ok(header)));
            }
            Poll::Ready(Some(ToViewer::Ping)) => Message::Ping(Bytes::new()),
            Poll::Ready(Some(ToViewer::Pong(bytes))) => {
                this.owed.written();
                Message::Pong(bytes)
            }
            Poll::Ready(Some(ToViewer::Close(reason))) => {
                this.closed = true;
                Message::Close(Some(shorten(reason)))
            }
        };
        match actix_codec::Encoder::encode(&mut this.codec, message, &mut this.buf) {
            Ok(()) => Poll::Ready(Some(Ok(this.buf.split().freeze()))),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_http::ws::CloseCode;

    use super::*;

    #[test]
    fn a_long_close_reason_is_cut_at_a_character_boundary() {
        let reason = shorten(CloseReason {
            code: CloseCode::Normal,
            description: Some("é".repeat(100)),
        });
        let text = reason.description.unwrap();
        assert_eq!(text.len(), 122);
        assert!(text.chars().all(|c| c == 'é'));
    }
}
