//! WebSocket connections served off actix-http's HTTP/1 dispatcher.
//!
//! The dispatcher keeps an 8 KiB read and an 8 KiB write buffer for a connection's whole life:
//! two thirds of what an idle agent link cost (heap profile in docs/PERFORMANCE.md). actix-http
//! hands a request asking for an upgrade to an upgrade service together with the socket; this
//! one passes the request through the same application (routes, middleware, extractors — the
//! handlers cannot tell), writes the answer itself, and when it is a `101` moves the bytes with
//! no buffer kept between them: reads allocate only once the socket is readable, and the
//! WebSocket frames the handler sends are written as they come.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use actix::ArbiterHandle;
use actix_codec::{Encoder, Framed, FramedParts};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1::{Codec, Message};
use actix_http::{
    BoxedPayloadStream, ConnectionType, Payload, Request, Response, StatusCode, error::PayloadError,
};
use actix_service::{IntoServiceFactory, ServiceFactory, fn_factory, fn_service};
use actix_web::dev::{AppConfig, Service, ServiceResponse};
use actix_web::{Error, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::net::TcpStream;

/// The first read of a burst; each read that fills its buffer doubles the next, up to
/// [`MAX_READ`], so a stream of VNC updates is read in large pieces and a heartbeat in small.
const FIRST_READ: usize = 2 * 1024;
const MAX_READ: usize = 64 * 1024;
/// Frames are taken from the handler while fewer than this many bytes, in at most
/// [`WRITE_BATCH`] frames, wait to be written (one `writev`): a frame taken counts as written
/// for the stream windows (`viewer_writer.rs`), so what a stalled peer can hold here stays
/// this small. (actix-http's dispatcher buffered as much: 32 KiB.)
const WRITE_BUFFER: usize = 32 * 1024;
const WRITE_BATCH: usize = 32;
/// A peer that takes none of our bytes for this long, while some wait, is gone or will not
/// read: its connection ends (nginx's `send_timeout`, the same default). Until then a viewer
/// or agent that vanished without closing held its socket and what waited to be written until
/// the kernel gave up retransmitting, a quarter of an hour.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a closed connection waits for its peer to close too (actix-web's default client
/// disconnect timeout, which the HTTP server uses as well).
pub const LINGER: Duration = Duration::from_secs(1);

/// The upgrade service of a worker: an instance of the application made by `make_app`, serving
/// the upgrade requests of that worker's connections.
pub fn factory<F, I, S, B>(
    make_app: F,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, Codec>),
    Config = (),
    Response = (),
    Error = Infallible,
    InitError = (),
>
where
    F: Fn() -> I + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let app = make_app().into_factory().new_service(AppConfig::default());
        async move {
            let app = Rc::new(app.await?);
            // Boxed, so a connection's future (allocated for its whole life) holds a pointer
            // rather than the largest state of this one.
            Ok(fn_service(move |(req, framed)| {
                Box::pin(serve(app.clone(), req, framed))
            }))
        }
    })
}

/// Serves one upgrade request on `io` with `app`, the application's service. Errors on the
/// socket end the connection; they are the peer's doing and logged at debug level.
async fn serve<S, B>(
    app: Rc<S>,
    req: Request,
    framed: Framed<TcpStream, Codec>,
) -> Result<(), Infallible>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    if let Err(e) = exchange(&app, req, framed).await {
        log::debug!("upgraded connection ended: {e}");
    }
    Ok(())
}

async fn exchange<S, B>(app: &S, req: Request, framed: Framed<TcpStream, Codec>) -> io::Result<()>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody + 'static,
{
    // The dispatcher's buffers go now, not when this connection ends.
    let FramedParts {
        io,
        mut codec,
        read_buf,
        ..
    } = framed.into_parts();
    // Bytes the client sent right behind its request (a WebSocket client may, before the 101).
    let early = (!read_buf.is_empty()).then(|| Bytes::copy_from_slice(&read_buf));
    drop(read_buf);
    // Shared by the handler reading (through the request's body) and this writing; both on
    // this worker's thread.
    let io = Rc::new(io);
    let (req, _) = req.replace_payload(payload(early.clone(), io.clone()));
    // Boxed: the application's future is large and needed only until it answers.
    let (response, deferred): (Response<BoxBody>, _) = match Box::pin(app.call(req)).await {
        Ok(response) => {
            let mut response = response.into_parts().1;
            let deferred = response.extensions_mut().remove::<Deferred>();
            (response.map_into_boxed_body().into(), deferred)
        }
        Err(e) => (e.error_response().into(), None),
    };
    let (mut head, body) = response.into_parts();
    let mut out = BytesMut::new();
    if head.status() == StatusCode::SWITCHING_PROTOCOLS {
        codec.encode(Message::Item((head, BodySize::Stream)), &mut out)?;
        write_all(&io, &mut VecDeque::from([out.freeze()]), SEND_TIMEOUT).await?;
        match deferred {
            Some(deferred) => deferred.start(io, early),
            None => spawn_copy(body, io),
        }
        return Ok(());
    }
    // A refusal (bad credential, not a WebSocket request, …): answered whole, then closed.
    let body = actix_http::body::to_bytes(body)
        .await
        .map_err(|_| io::Error::other("response body failed"))?;
    head.head_mut().set_connection_type(ConnectionType::Close);
    codec.encode(
        Message::Item((head, BodySize::Sized(body.len() as u64))),
        &mut out,
    )?;
    codec.encode(Message::Chunk(Some(body)), &mut out)?;
    codec.encode(Message::Chunk(None), &mut out)?;
    write_all(&io, &mut VecDeque::from([out.freeze()]), SEND_TIMEOUT).await?;
    linger(&io).await
}

/// A `101` answer's body made once the answer is written, by `serve` from what the socket
/// reads, on the worker `home` when one is given: a viewer's stream is served on the thread of
/// its agent's link, so its every frame passes between the two without waking another thread
/// (half the added round trip's p99 in docs/PERFORMANCE.md). The handler must not read the
/// request's body: the socket's reads start again, from the first, in `serve`'s payload.
pub struct Deferred {
    home: Option<ArbiterHandle>,
    serve: Box<dyn FnOnce(Payload) -> BoxBody + Send>,
}

/// `response` (a `101`) with its body made later by `serve`, on `home` or on this worker.
pub fn deferred<F>(
    response: HttpResponse<()>,
    home: Option<ArbiterHandle>,
    serve: F,
) -> HttpResponse
where
    F: FnOnce(Payload) -> BoxBody + Send + 'static,
{
    let mut response = response.set_body(BoxBody::new(()));
    response.extensions_mut().insert(Deferred {
        home,
        serve: Box::new(serve),
    });
    response
}

impl Deferred {
    /// Serves the upgraded connection `io` (whose request's bytes after the head were
    /// `early`) on its home worker, or here when it has none or the socket cannot move.
    fn start(self, io: Rc<TcpStream>, early: Option<Bytes>) {
        let Deferred { home, serve } = self;
        let Some(home) = home else {
            return serve_here(serve, io, early);
        };
        // The request's body (the only other owner of the socket) went with the request.
        let io = match Rc::try_unwrap(io) {
            Ok(io) => io,
            Err(io) => {
                log::warn!("an upgraded connection's socket is still shared: served here");
                return serve_here(serve, io, early);
            }
        };
        let moved = match io.into_std() {
            Ok(moved) => moved,
            Err(e) => return log::debug!("upgraded connection lost moving it: {e}"),
        };
        let spawned = home.spawn(async move {
            match TcpStream::from_std(moved) {
                Ok(io) => serve_here(serve, Rc::new(io), early),
                Err(e) => log::debug!("upgraded connection lost moving it: {e}"),
            }
        });
        if !spawned {
            log::debug!("upgraded connection lost: its worker has stopped");
        }
    }
}

/// Serves `io` on this worker with the body `serve` makes.
fn serve_here(
    serve: Box<dyn FnOnce(Payload) -> BoxBody + Send>,
    io: Rc<TcpStream>,
    early: Option<Bytes>,
) {
    spawn_copy(serve(payload(early, io.clone())), io);
}

/// A request's body reading `io`, starting with `early`.
fn payload(early: Option<Bytes>, io: Rc<TcpStream>) -> Payload {
    let payload: BoxedPayloadStream = Box::pin(reader(early, io));
    Payload::Stream { payload }
}

/// A task of its own, small, for the WebSocket's life, writing `body` to `io`: the
/// connection's task ends, and with it the HTTP/1 dispatcher it held (about 3 KiB).
fn spawn_copy<B: MessageBody + 'static>(body: B, io: Rc<TcpStream>) {
    actix_web::rt::spawn(async move {
        if let Err(e) = async {
            copy_body(body, &io, SEND_TIMEOUT).await?;
            linger(&io).await
        }
        .await
        {
            log::debug!("WebSocket connection ended: {e}");
        }
    });
}

/// Ends our side and reads what the peer still sends until it ends its own (for at most
/// [`LINGER`]): closing a socket with unread bytes resets the connection, and the peer would
/// lose the last frames, the close frame with its reason among them.
async fn linger(io: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(io).shutdown(std::net::Shutdown::Write)?;
    let drain = async {
        let mut scrap = vec![0u8; 1024];
        loop {
            io.readable().await?;
            match io.try_read(&mut scrap) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    };
    tokio::time::timeout(LINGER, drain).await.unwrap_or(Ok(()))
}

/// Writes the handler's frames as they come, several at once when several are ready; fails
/// when the peer takes nothing for `stall`.
async fn copy_body<B: MessageBody>(body: B, io: &TcpStream, stall: Duration) -> io::Result<()> {
    let mut body = pin!(body);
    let mut ready = VecDeque::new();
    loop {
        let ended = poll_fn(|cx| {
            let mut pending = 0;
            while ready.len() < WRITE_BATCH && pending < WRITE_BUFFER {
                match body.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        pending += chunk.len();
                        ready.push_back(chunk);
                    }
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(true),
                    Poll::Pending if ready.is_empty() => return Poll::Pending,
                    Poll::Pending => break,
                }
            }
            Poll::Ready(false)
        })
        .await;
        write_all(io, &mut ready, stall).await?;
        if ended {
            return Ok(());
        }
    }
}

/// Writes every chunk in `chunks`, emptying it; fails when the socket takes nothing for
/// `stall`.
async fn write_all(
    io: &TcpStream,
    chunks: &mut VecDeque<Bytes>,
    stall: Duration,
) -> io::Result<()> {
    while !chunks.is_empty() {
        tokio::time::timeout(stall, io.writable())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"))??;
        let slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
        let mut written = match io.try_write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        while let Some(front) = chunks.front_mut() {
            if written < front.len() {
                let _ = front.split_to(written);
                break;
            }
            written -= front.len();
            chunks.pop_front();
        }
    }
    Ok(())
}

/// The request's body: what the socket brings, read only once it has something.
fn reader(
    early: Option<Bytes>,
    io: Rc<TcpStream>,
) -> impl Stream<Item = Result<Bytes, PayloadError>> {
    futures_util::stream::unfold(Some((early, io, FIRST_READ)), |state| async move {
        let (early, io, size) = state?;
        if let Some(early) = early {
            return Some((Ok(early), Some((None, io, size))));
        }
        match read_some(&io, size).await {
            Ok(Some(chunk)) => {
                let next = if chunk.len() == size {
                    (size * 2).min(MAX_READ)
                } else {
                    FIRST_READ
                };
                Some((Ok(chunk), Some((None, io, next))))
            }
            Ok(None) => None,
            Err(e) => Some((Err(PayloadError::Io(e)), None)),
        }
    })
}

/// Waits until `io` is readable, then reads up to `size` bytes; `None` at the end.
async fn read_some(io: &TcpStream, size: usize) -> io::Result<Option<Bytes>> {
    loop {
        io.readable().await?;
        let mut buf = BytesMut::with_capacity(size);
        match io.try_read_buf(&mut buf) {
            Ok(0) => return Ok(None),
            // The WebSocket decoder keeps the chunk's allocation while it holds any of it: a
            // small read gets an allocation of its own size rather than keep `size` bytes.
            Ok(n) if n < size / 2 => return Ok(Some(Bytes::copy_from_slice(&buf))),
            Ok(_) => return Ok(Some(buf.freeze())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::BodyStream;
    use std::thread::ThreadId;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    /// A connection accepted here: the peer's end and ours.
    async fn connection() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap());
        let (peer, accepted) = tokio::join!(peer, listener.accept());
        (peer.unwrap(), accepted.unwrap().0)
    }

    /// A deferred body that echoes what the peer sends, and tells on which thread it was made.
    fn echo(made_on: oneshot::Sender<ThreadId>) -> Box<dyn FnOnce(Payload) -> BoxBody + Send> {
        Box::new(move |payload| {
            let _ = made_on.send(std::thread::current().id());
            BoxBody::new(BodyStream::new(payload))
        })
    }

    #[actix_web::test]
    async fn a_deferred_connection_is_served_on_its_home_worker_from_its_first_byte() {
        let (mut peer, ours) = connection().await;
        peer.write_all(b"later").await.unwrap();
        let home = actix::Arbiter::new();
        let (thread_of_home, home_thread) = oneshot::channel();
        home.spawn_fn(move || {
            let _ = thread_of_home.send(std::thread::current().id());
        });
        let (made_on, made) = oneshot::channel();
        let deferred = Deferred {
            home: Some(home.handle()),
            serve: echo(made_on),
        };
        // The bytes that came behind the request's head, read before the hand-over.
        deferred.start(Rc::new(ours), Some(Bytes::from_static(b"early, ")));
        assert_eq!(made.await.unwrap(), home_thread.await.unwrap());
        let mut echoed = [0; 12];
        peer.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"early, later");
        home.stop();
    }

    #[actix_web::test]
    async fn a_peer_that_reads_nothing_is_let_go() {
        let (_peer, ours) = connection().await;
        let chunk = Bytes::from(vec![0u8; 64 * 1024]);
        let endless = futures_util::stream::repeat_with(move || Ok::<_, io::Error>(chunk.clone()));
        // The kernel's buffers fill first; then nothing more is taken.
        let copying = copy_body(BodyStream::new(endless), &ours, Duration::from_millis(200));
        let copied = tokio::time::timeout(Duration::from_secs(30), copying).await;
        let copied = copied.expect("still writing to a peer that reads nothing");
        assert_eq!(copied.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[actix_web::test]
    async fn a_socket_still_shared_is_served_where_it_is() {
        let (mut peer, ours) = connection().await;
        let ours = Rc::new(ours);
        let _still_held = ours.clone();
        let home = actix::Arbiter::new();
        let (made_on, made) = oneshot::channel();
        let deferred = Deferred {
            home: Some(home.handle()),
            serve: echo(made_on),
        };
        deferred.start(ours, None);
        assert_eq!(made.await.unwrap(), std::thread::current().id());
        peer.write_all(b"here").await.unwrap();
        let mut echoed = [0; 4];
        peer.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"here");
        home.stop();
    }
}
