//! A minimal RFB (VNC) client, enough to prove that real desktop bytes flow (version and
//! security handshake, ServerInit, framebuffer updates), over the control plane's viewer
//! WebSocket or, as a baseline for benchmarks, straight over TCP.

use std::time::Duration;

use awc::ws;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};

pub type WsConnection = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

/// What the server said in ServerInit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInit {
    /// Framebuffer width.
    pub width: u16,
    /// Framebuffer height.
    pub height: u16,
    /// Desktop name.
    pub name: String,
}

/// Why the viewer WebSocket could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// The upgrade was refused with this HTTP status.
    Http(u16),
    /// Anything else.
    Other(String),
}

/// Where RFB bytes come from and go to.
pub trait Transport {
    /// The next bytes that arrived (at least one), or how the stream ended.
    /// Appends what arrives next to `buf`; how many bytes. (Into the caller's buffer: the
    /// benchmark's viewer shares the machine with the relay it measures, so it copies as
    /// little as it can.)
    fn read_into(
        &mut self,
        buf: &mut BytesMut,
    ) -> impl std::future::Future<Output = Result<usize, String>>;
    /// Sends bytes.
    fn send(&mut self, bytes: &[u8]) -> impl std::future::Future<Output = Result<(), String>>;
}

/// The viewer WebSocket of the control plane's VNC proxy.
pub struct WsTransport(WsConnection);

impl Transport for WsTransport {
    async fn read_into(&mut self, buf: &mut BytesMut) -> Result<usize, String> {
        loop {
            match self.0.next().await {
                Some(Ok(ws::Frame::Binary(bytes))) => {
                    buf.extend_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Some(Ok(ws::Frame::Ping(bytes))) => {
                    let _ = self.0.send(ws::Message::Pong(bytes)).await;
                }
                Some(Ok(ws::Frame::Close(reason))) => return Err(format!("closed: {reason:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("connection ended".into()),
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.0
            .send(ws::Message::Binary(bytes.to_vec().into()))
            .await
            .map_err(|e| e.to_string())
    }
}

/// A plain connection to a VNC server, TCP or Unix socket (the benchmark's baseline).
pub struct RawTransport<S>(S);

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Transport for RawTransport<S> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> Result<usize, String> {
        buf.reserve(READ_AHEAD);
        match tokio::io::AsyncReadExt::read_buf(&mut self.0, buf).await {
            Ok(0) => Err("connection ended".into()),
            Ok(n) => Ok(n),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        tokio::io::AsyncWriteExt::write_all(&mut self.0, bytes)
            .await
            .map_err(|e| e.to_string())
    }
}

/// How much a read asks the transport for at least.
const READ_AHEAD: usize = 64 * 1024;

/// An RFB client; reads are buffered, since transports split and join messages arbitrarily.
pub struct RfbClient<T> {
    transport: T,
    buffer: BytesMut,
    /// Bytes received so far.
    pub received: u64,
    bytes_per_pixel: usize,
}

/// An RFB client through the VNC proxy.
pub type ViewerStream = RfbClient<WsTransport>;

impl RfbClient<WsTransport> {
    /// Opens `ws://…/api/v1/vnc/{session}?token=…`.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        match awc::Client::default()
            .ws(url)
            .max_frame_size(1 << 20)
            .connect()
            .await
        {
            Ok((_, conn)) => Ok(RfbClient::new(WsTransport(conn))),
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                Err(OpenError::Http(status.as_u16()))
            }
            Err(e) => Err(OpenError::Other(e.to_string())),
        }
    }

    /// A viewer on a WebSocket opened by the caller (e.g. with its own connector).
    pub fn from_websocket(conn: WsConnection) -> Self {
        RfbClient::new(WsTransport(conn))
    }

    /// Waits for the server to close; returns the close reason's text.
    pub async fn closed(&mut self) -> Option<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.transport.0.next()).await {
                Ok(Some(Ok(ws::Frame::Close(reason)))) => {
                    return reason.and_then(|r| r.description);
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("viewer stream not closed within 10s"),
            }
        }
    }

    /// Opens a viewer, completes the RFB handshake and reads a first full frame, which must
    /// carry pixels: a desktop a user would see.
    pub async fn open_showing(url: &str) -> Result<(Self, ServerInit), String> {
        let mut viewer = Self::open(url).await.map_err(|e| format!("{e:?}"))?;
        let init = viewer.handshake().await?;
        viewer.request_update(init.width, init.height).await?;
        let (rects, _) = viewer.read_update().await?;
        if rects.is_empty() {
            return Err("the first frame carried no rectangles".into());
        }
        Ok((viewer, init))
    }

    /// The close reason, if the server closes the stream within `wait`; `None` if it stays
    /// open that long (what arrives meanwhile is skipped).
    pub async fn closed_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.transport.0.next()).await {
                Ok(Some(Ok(ws::Frame::Close(reason)))) => {
                    return Some(reason.and_then(|r| r.description).unwrap_or_default());
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => return Some(format!("broken: {e}")),
                Ok(None) => return Some("ended without a close frame".into()),
                Err(_) => return None,
            }
        }
    }

    /// Closes from the viewer's side.
    pub async fn close(mut self) {
        let _ = self.transport.0.send(ws::Message::Close(None)).await;
    }
}

impl RfbClient<RawTransport<tokio::net::TcpStream>> {
    /// Connects straight to a VNC server's TCP port.
    pub async fn connect(addr: (&str, u16)) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RfbClient::new(RawTransport(stream)))
    }
}

impl RfbClient<RawTransport<tokio::net::UnixStream>> {
    /// Connects straight to a VNC server's Unix socket.
    pub async fn connect_unix(path: &str) -> std::io::Result<Self> {
        let stream = tokio::net::UnixStream::connect(path).await?;
        Ok(RfbClient::new(RawTransport(stream)))
    }
}

impl<T: Transport> RfbClient<T> {
    fn new(transport: T) -> Self {
        RfbClient {
            transport,
            buffer: BytesMut::new(),
            received: 0,
            bytes_per_pixel: 4,
        }
    }

    /// Reads exactly `n` bytes (within ten seconds), or reports how the stream ended.
    pub async fn read_exact(&mut self, n: usize) -> Result<BytesMut, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // Room for all of it at once: growing by each read would copy it over and over.
        self.buffer
            .reserve(n.saturating_sub(self.buffer.len()).max(READ_AHEAD));
        while self.buffer.len() < n {
            let read =
                tokio::time::timeout_at(deadline, self.transport.read_into(&mut self.buffer))
                    .await
                    .map_err(|_| {
                        format!(
                            "timed out waiting for {n} bytes (have {})",
                            self.buffer.len()
                        )
                    })??;
            self.received += read as u64;
        }
        Ok(self.buffer.split_to(n))
    }

    /// Sends bytes.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.transport.send(bytes).await
    }

    /// The RFB 3.8 handshake with security type None, shared; returns ServerInit.
    pub async fn handshake(&mut self) -> Result<ServerInit, String> {
        let version = self.read_exact(12).await?;
        if &version[..4] != b"RFB " {
            return Err(format!("not an RFB greeting: {version:?}"));
        }
        self.write(b"RFB 003.008\n").await?;
        let count = self.read_exact(1).await?[0] as usize;
        if count == 0 {
            let len =
                u32::from_be_bytes(self.read_exact(4).await?[..].try_into().unwrap_or_default());
            let reason = self.read_exact(len as usize).await?;
            return Err(format!(
                "server refused: {}",
                String::from_utf8_lossy(&reason)
            ));
        }
        let types = self.read_exact(count).await?;
        if !types.contains(&1) {
            return Err(format!(
                "server does not offer security type None: {types:?}"
            ));
        }
        self.write(&[1]).await?;
        let result = self.read_exact(4).await?;
        if result[..] != [0, 0, 0, 0] {
            return Err(format!("security handshake failed: {result:?}"));
        }
        self.write(&[1]).await?; // ClientInit: shared
        let init = self.read_exact(24).await?;
        let width = u16::from_be_bytes([init[0], init[1]]);
        let height = u16::from_be_bytes([init[2], init[3]]);
        self.bytes_per_pixel = usize::from(init[4] / 8).max(1);
        let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
        let name = String::from_utf8_lossy(&self.read_exact(name_len).await?).into_owned();
        Ok(ServerInit {
            width,
            height,
            name,
        })
    }

    /// Asks for the whole screen (non-incremental).
    pub async fn request_update(&mut self, width: u16, height: u16) -> Result<(), String> {
        let mut message = vec![3, 0, 0, 0, 0, 0];
        message.extend_from_slice(&width.to_be_bytes());
        message.extend_from_slice(&height.to_be_bytes());
        self.write(&message).await
    }

    /// Reads one whole FramebufferUpdate in the Raw encoding (the only one a client that
    /// sent no SetEncodings gets); returns its rectangles as (x, y, width, height) and the
    /// pixels of all of them.
    pub async fn read_update(&mut self) -> Result<(Vec<[u16; 4]>, Vec<u8>), String> {
        let header = self.read_exact(4).await?;
        if header[0] != 0 {
            return Err(format!(
                "expected FramebufferUpdate (0), got message type {}",
                header[0]
            ));
        }
        let count = u16::from_be_bytes([header[2], header[3]]);
        let mut rects = Vec::new();
        let mut pixels = Vec::new();
        for _ in 0..count {
            let rect = self.read_exact(12).await?;
            let u = |i: usize| u16::from_be_bytes([rect[i], rect[i + 1]]);
            let encoding = i32::from_be_bytes([rect[8], rect[9], rect[10], rect[11]]);
            if encoding != 0 {
                return Err(format!("expected Raw encoding, got {encoding}"));
            }
            let len = usize::from(u(4)) * usize::from(u(6)) * self.bytes_per_pixel;
            pixels.extend_from_slice(&self.read_exact(len).await?);
            rects.push([u(0), u(2), u(4), u(6)]);
        }
        Ok((rects, pixels))
    }
}
