//! WebSockets that cost little while idle (an agent's link, 10,000 of them on one replica;
//! a viewer's): frames received are decoded straight from the socket's reads, and an agent's
//! frames to send wait in a queue the connection's writer (`http/upgraded.rs`) takes them from
//! — no channel, no task. actix-ws gave each socket two channels and a task (about 5 KiB; heap
//! profile in docs/PERFORMANCE.md). A viewer's frames are written by `viewer_writer.rs`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker, ready};

use actix_codec::{Decoder, Encoder};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::ws::{
    self, CloseReason, Codec, Frame, HandshakeError, Item, Message, ProtocolError,
};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;

/// Most frames a peer may have made us send (pongs to its pings, error replies to its bad
/// messages) waiting to be written; a peer asking for more is closed.
pub const MAX_OWED: usize = 64;

/// Frames a peer makes us send fall outside the stream credit windows, so they are counted
/// until written: a peer that keeps asking while never reading is closed instead of growing
/// our memory. Shared by what queues such frames and the socket's writer (one worker thread).
#[derive(Debug, Clone, Default)]
pub struct Owed(Rc<Cell<usize>>);

impl Owed {
    /// Counts one more frame; `false` (counting nothing) once [`MAX_OWED`] are waiting.
    pub fn add(&self) -> bool {
        if self.0.get() >= MAX_OWED {
            return false;
        }
        self.0.set(self.0.get() + 1);
        true
    }

    /// One counted frame was written.
    pub fn written(&self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Accepts a WebSocket handshake: the `101` answer, the queue to send through and the
/// messages received. `max_message` bounds a frame, and a message made of several.
pub fn accept(
    req: &HttpRequest,
    payload: web::Payload,
    max_message: usize,
) -> Result<(HttpResponse, Outbox, Inbox), HandshakeError> {
    let (response, inbox) = handshake(req, payload, max_message)?;
    let queue = Rc::new(RefCell::new(Queue::new()));
    let response = response.set_body(BoxBody::new(OutboxBody(queue.clone())));
    Ok((response, Outbox(queue), inbox))
}

/// Accepts a WebSocket handshake whose frames the caller writes itself (the `101` answer's
/// body): the answer without its body, and the messages received, bounded as in [`accept`].
pub fn handshake(
    req: &HttpRequest,
    payload: web::Payload,
    max_message: usize,
) -> Result<(HttpResponse<()>, Inbox), HandshakeError> {
    Ok((upgrade(req)?, Inbox::new(payload.into_inner(), max_message)))
}

/// The `101` answer to a WebSocket handshake, without its body.
pub fn upgrade(req: &HttpRequest) -> Result<HttpResponse<()>, HandshakeError> {
    Ok(HttpResponse::from(
        ws::handshake(req.head())?.finish().drop_body(),
    ))
}

/// The header of an unmasked binary frame carrying `len` bytes (a server's frame, RFC 6455
/// §5.2), written ahead of a payload that is then sent as it is rather than copied behind it.
pub fn binary_header(len: usize) -> Bytes {
    let mut header = BytesMut::with_capacity(10);
    // FIN and the binary opcode.
    header.put_u8(0x82);
    if len < 126 {
        header.put_u8(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        header.put_u8(126);
        header.put_u16(len);
    } else {
        header.put_u8(127);
        header.put_u64(len as u64);
    }
    header.freeze()
}

/// A message received: a text or binary message whole, or a control frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

struct Queue {
    /// Encoded frames, and whether each is one the peer caused (see [`Outbox::send_owed`]).
    frames: VecDeque<(Bytes, bool)>,
    owed: Owed,
    writer: Option<Waker>,
    closed: bool,
}

impl Queue {
    fn new() -> Self {
        Queue {
            frames: VecDeque::new(),
            owed: Owed::default(),
            writer: None,
            closed: false,
        }
    }
}

/// Where a socket's frames are queued, in order. Dropping it closes the socket (with a close
/// frame without reason) once what is queued has been written.
pub struct Outbox(Rc<RefCell<Queue>>);

impl Outbox {
    /// Queues a frame; nothing once closed.
    pub fn send(&self, message: Message) {
        self.push(message, false);
    }

    /// Queues a frame the peer caused (a pong, an error reply), unless the most allowed of
    /// those are still waiting to be written: `false` then, and the caller closes a peer that
    /// keeps asking while never reading.
    pub fn send_owed(&self, message: Message) -> bool {
        let owed = self.0.borrow().owed.clone();
        if !owed.add() {
            return false;
        }
        if !self.push(message, true) {
            owed.written();
        }
        true
    }

    /// Queues a close frame; the socket ends once it is written.
    pub fn close(&self, reason: Option<CloseReason>) {
        self.push(Message::Close(reason), false);
        self.0.borrow_mut().closed = true;
    }

    /// Whether the frame was queued.
    fn push(&self, message: Message, owed: bool) -> bool {
        let mut queue = self.0.borrow_mut();
        if queue.closed {
            return false;
        }
        let mut frame = BytesMut::new();
        if Codec::new().encode(message, &mut frame).is_err() {
            // Only a close reason's description can fail to encode (it is too long): the
            // caller's bug, not the peer's; the frame is dropped.
            log::error!("a WebSocket frame could not be encoded");
            return false;
        }
        queue.frames.push_back((frame.freeze(), owed));
        if let Some(writer) = queue.writer.take() {
            writer.wake();
        }
        true
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if !self.0.borrow().closed {
            self.close(None);
        }
    }
}

/// The `101` answer's body: the queued frames, as the connection's writer asks for them.
struct OutboxBody(Rc<RefCell<Queue>>);

impl MessageBody for OutboxBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let mut queue = self.0.borrow_mut();
        match queue.frames.pop_front() {
            Some((frame, owed)) => {
                if owed {
                    queue.owed.written();
                }
                if queue.frames.is_empty() && queue.frames.capacity() > 16 {
                    // A burst is over: an idle socket keeps no room for the next.
                    queue.frames = VecDeque::new();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            None if queue.closed => Poll::Ready(None),
            None => {
                queue.writer = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The messages a socket receives, a message sent in several frames put together again.
pub struct Inbox {
    payload: actix_web::dev::Payload,
    buf: BytesMut,
    codec: Codec,
    /// A message arriving in several frames: whether it is text, and what came so far.
    partial: Option<(bool, BytesMut)>,
    /// What a read brought beyond the frame that was waiting for it: decoded from there, not
    /// copied.
    rest: Option<Bytes>,
    max_message: usize,
    ended: bool,
}

/// The longest frame header: two bytes, a 64-bit length, a mask.
const MAX_HEADER: usize = 14;

/// How many bytes the frame begun in `buf` still lacks; `None` while its header is incomplete.
fn missing(buf: &[u8]) -> Option<usize> {
    let second = *buf.get(1)?;
    let (extension, len) = match second & 0x7F {
        126 => (
            2,
            u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
        ),
        127 => (8, u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)),
        len => (0, u64::from(len)),
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let whole = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .saturating_add(2 + extension + mask);
    Some(whole.saturating_sub(buf.len()))
}

impl Inbox {
    /// The messages `payload` brings, bounded as in [`accept`].
    pub fn new(payload: actix_web::dev::Payload, max_message: usize) -> Self {
        Inbox {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_message),
            partial: None,
            rest: None,
            max_message,
            ended: false,
        }
    }

    /// Adds a read's bytes to what waits to be decoded. Only the frame begun before them is
    /// completed by copying (a frame is decoded from one piece of memory); what follows it is
    /// decoded where it was read. Appending every read copied every byte received while frames
    /// straddled reads, as VNC updates always do.
    fn feed(&mut self, chunk: Bytes) {
        if self.buf.is_empty() {
            self.buf = BytesMut::from(chunk);
            return;
        }
        let wanted = missing(&self.buf).unwrap_or(MAX_HEADER).min(chunk.len());
        self.buf.extend_from_slice(&chunk[..wanted]);
        if wanted < chunk.len() {
            self.rest = Some(chunk.slice(wanted..));
        }
    }

    /// A whole message from `frame`, or `None` while one is still arriving in pieces.
    fn assemble(&mut self, frame: Frame) -> Result<Option<Received>, ProtocolError> {
        let (first, bytes, last) = match frame {
            Frame::Text(bytes) => return text_message(bytes).map(Some),
            Frame::Binary(bytes) => return Ok(Some(Received::Binary(bytes))),
            Frame::Ping(bytes) => return Ok(Some(Received::Ping(bytes))),
            Frame::Pong(bytes) => return Ok(Some(Received::Pong(bytes))),
            Frame::Close(reason) => return Ok(Some(Received::Close(reason))),
            Frame::Continuation(Item::FirstText(bytes)) => (Some(true), bytes, false),
            Frame::Continuation(Item::FirstBinary(bytes)) => (Some(false), bytes, false),
            Frame::Continuation(Item::Continue(bytes)) => (None, bytes, false),
            Frame::Continuation(Item::Last(bytes)) => (None, bytes, true),
        };
        // (The codec refuses pieces out of order.)
        let (text, mut so_far) = match (first, self.partial.take()) {
            (Some(text), _) => (text, BytesMut::new()),
            (None, Some(partial)) => partial,
            (None, None) => return Err(ProtocolError::ContinuationNotStarted),
        };
        if so_far.len() + bytes.len() > self.max_message {
            return Err(ProtocolError::Overflow);
        }
        so_far.extend_from_slice(&bytes);
        if !last {
            self.partial = Some((text, so_far));
            return Ok(None);
        }
        let whole = so_far.freeze();
        if text {
            text_message(whole).map(Some)
        } else {
            Ok(Some(Received::Binary(whole)))
        }
    }
}

fn text_message(bytes: Bytes) -> Result<Received, ProtocolError> {
    ByteString::try_from(bytes)
        .map(Received::Text)
        .map_err(|e| ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

impl Stream for Inbox {
    type Item = Result<Received, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match this.codec.decode(&mut this.buf) {
                Ok(Some(frame)) => match this.assemble(frame) {
                    Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                    Ok(None) => continue,
                    Err(e) => {
                        this.ended = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            if this.buf.is_empty() {
                // What was read is all handed out: keep no room while idle.
                this.buf = BytesMut::new();
            }
            if let Some(rest) = this.rest.take() {
                this.feed(rest);
                continue;
            }
            match ready!(Pin::new(&mut this.payload).poll_next(cx)) {
                Some(Ok(chunk)) => this.feed(chunk),
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(ProtocolError::Io(std::io::Error::other(e)))));
                }
                None => {
                    this.ended = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::ws::CloseCode;
    use futures_util::StreamExt;

    /// An inbox reading `chunks`, as a client wrote them.
    fn inbox(chunks: Vec<Bytes>, max_message: usize) -> Inbox {
        let stream = futures_util::stream::iter(chunks.into_iter().map(Ok));
        let payload = Box::pin(stream);
        Inbox::new(actix_web::dev::Payload::Stream { payload }, max_message)
    }

    /// Frames as a client sends them (masked).
    fn client_frames(messages: Vec<Message>) -> Bytes {
        let mut codec = Codec::new().client_mode();
        let mut out = BytesMut::new();
        for message in messages {
            codec.encode(message, &mut out).unwrap();
        }
        out.freeze()
    }

    #[test]
    fn a_binary_header_and_its_payload_are_the_codecs_frame_at_every_length_boundary() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = Bytes::from(vec![7u8; len]);
            let mut expected = BytesMut::new();
            Codec::new()
                .encode(Message::Binary(payload.clone()), &mut expected)
                .unwrap();
            let mut ours = BytesMut::from(&binary_header(len)[..]);
            ours.extend_from_slice(&payload);
            assert_eq!(ours, expected, "a payload of {len} bytes");
        }
    }

    #[actix_web::test]
    async fn a_message_in_pieces_comes_out_whole_with_control_frames_between_passed_on() {
        let wire = client_frames(vec![
            Message::Continuation(Item::FirstText(Bytes::from_static(b"{\"type\":"))),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Continuation(Item::Continue(Bytes::from_static(b"\"heart"))),
            Message::Continuation(Item::Last(Bytes::from_static(b"beat\"}"))),
            Message::Binary(Bytes::from_static(b"\x01\x02")),
        ]);
        // Split anywhere: a read may end inside a frame.
        let (a, b) = (wire.slice(..5), wire.slice(5..));
        let got: Vec<_> = inbox(vec![a, b], 1024).collect().await;
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![
                Received::Ping(Bytes::from_static(b"p")),
                Received::Text("{\"type\":\"heartbeat\"}".into()),
                Received::Binary(Bytes::from_static(b"\x01\x02")),
            ]
        );
    }

    #[actix_web::test]
    async fn frames_of_every_header_size_come_out_whole_whatever_the_reads_cut() {
        // 7-bit, 16-bit and 64-bit lengths, each frame masked.
        let sent: Vec<Bytes> = [0, 5, 125, 126, 300, 65_535, 65_536, 100_000, 3]
            .iter()
            .enumerate()
            .map(|(i, &len)| Bytes::from(vec![i as u8; len]))
            .collect();
        let wire = client_frames(sent.iter().cloned().map(Message::Binary).collect());
        for read in [1, 2, 13, 14, 15, 4096, 65_541, 200_000] {
            let reads: Vec<Bytes> = (0..wire.len())
                .step_by(read)
                .map(|at| wire.slice(at..(at + read).min(wire.len())))
                .collect();
            let got: Vec<_> = inbox(reads, 1 << 20).collect().await;
            let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
            let expected: Vec<_> = sent.iter().cloned().map(Received::Binary).collect();
            assert_eq!(got, expected, "reads of {read} bytes");
        }
    }

    #[actix_web::test]
    async fn a_message_larger_than_allowed_ends_the_inbox_with_overflow() {
        let wire = client_frames(vec![
            Message::Continuation(Item::FirstBinary(Bytes::from(vec![0; 60]))),
            Message::Continuation(Item::Last(Bytes::from(vec![0; 60]))),
            Message::Binary(Bytes::from_static(b"never read")),
        ]);
        let got: Vec<_> = inbox(vec![wire], 100).collect().await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(matches!(got[0], Err(ProtocolError::Overflow)), "{got:?}");
        let wire = client_frames(vec![Message::Binary(Bytes::from(vec![0; 101]))]);
        let got: Vec<_> = inbox(vec![wire], 100).collect().await;
        assert!(matches!(got[..], [Err(ProtocolError::Overflow)]), "{got:?}");
    }

    #[actix_web::test]
    async fn unmasked_frames_and_bad_text_are_errors() {
        let mut unmasked = BytesMut::new();
        Codec::new()
            .encode(Message::Text("hi".into()), &mut unmasked)
            .unwrap();
        let got: Vec<_> = inbox(vec![unmasked.freeze()], 100).collect().await;
        assert!(
            matches!(got[..], [Err(ProtocolError::UnmaskedFrame)]),
            "{got:?}"
        );
        let wire = client_frames(vec![
            Message::Continuation(Item::FirstText(Bytes::from_static(b"\xff"))),
            Message::Continuation(Item::Last(Bytes::from_static(b"\xfe"))),
        ]);
        let got: Vec<_> = inbox(vec![wire], 100).collect().await;
        assert!(matches!(got[..], [Err(ProtocolError::Io(_))]), "{got:?}");
    }

    /// What the connection's writer would take from `body` now.
    fn written(body: &mut OutboxBody) -> (Vec<Frame>, bool) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut wire = BytesMut::new();
        let ended = loop {
            match Pin::new(&mut *body).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(chunk))) => wire.extend_from_slice(&chunk),
                Poll::Ready(None) => break true,
                Poll::Pending => break false,
            }
        };
        let mut codec = Codec::new().client_mode();
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut wire).unwrap() {
            frames.push(frame);
        }
        (frames, ended)
    }

    fn outbox() -> (Outbox, OutboxBody) {
        let queue = Rc::new(RefCell::new(Queue::new()));
        (Outbox(queue.clone()), OutboxBody(queue))
    }

    #[test]
    fn frames_go_out_in_order_and_a_close_ends_the_body() {
        let (outbox, mut body) = outbox();
        assert_eq!(written(&mut body), (vec![], false));
        outbox.send(Message::Text("one".into()));
        outbox.send(Message::Binary(Bytes::from_static(b"two")));
        let reason = CloseReason {
            code: CloseCode::Policy,
            description: Some("bye".into()),
        };
        outbox.close(Some(reason.clone()));
        outbox.send(Message::Text("after the close".into()));
        assert_eq!(
            written(&mut body),
            (
                vec![
                    Frame::Text(Bytes::from_static(b"one")),
                    Frame::Binary(Bytes::from_static(b"two")),
                    Frame::Close(Some(reason)),
                ],
                true
            )
        );
    }

    #[test]
    fn a_dropped_outbox_closes_without_a_reason_after_what_it_queued() {
        let (outbox, mut body) = outbox();
        outbox.send(Message::Ping(Bytes::new()));
        drop(outbox);
        assert_eq!(
            written(&mut body),
            (vec![Frame::Ping(Bytes::new()), Frame::Close(None)], true)
        );
    }

    #[test]
    fn a_peer_may_owe_at_most_the_limit() {
        let owed = Owed::default();
        for _ in 0..MAX_OWED {
            assert!(owed.add());
        }
        assert!(!owed.add());
        owed.written();
        assert!(owed.add());
    }

    #[test]
    fn replies_a_peer_caused_are_refused_past_the_limit_until_some_are_written() {
        let (outbox, mut body) = outbox();
        for _ in 0..MAX_OWED {
            assert!(outbox.send_owed(Message::Pong(Bytes::new())));
        }
        assert!(!outbox.send_owed(Message::Pong(Bytes::new())));
        // Our own frames are not the peer's doing: always queued.
        outbox.send(Message::Ping(Bytes::new()));
        let (frames, _) = written(&mut body);
        assert_eq!(frames.len(), MAX_OWED + 1);
        assert!(outbox.send_owed(Message::Pong(Bytes::new())));
    }

    #[test]
    fn an_idle_outbox_keeps_no_room_after_a_burst() {
        let (outbox, mut body) = outbox();
        for _ in 0..100 {
            outbox.send(Message::Binary(Bytes::from_static(b"x")));
        }
        written(&mut body);
        assert_eq!(outbox.0.borrow().frames.capacity(), 0);
    }
}
