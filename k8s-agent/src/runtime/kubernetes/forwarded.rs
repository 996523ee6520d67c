//! A port-forwarded connection that ends with the API server's reason instead of a bare EOF:
//! when nothing listens in the Pod, the kubelet reports why on the error channel, and the
//! viewer should hear that, not "the VNC server closed the connection".

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

type ErrorFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// One port of a `Portforwarder`, with its error channel.
pub struct Forwarded {
    stream: DuplexStream,
    /// Resolves with the error message, or `None` once the forwarder ended without one.
    error: Option<ErrorFuture>,
    target: String,
}

impl Forwarded {
    /// Wraps the stream and error future that `Portforwarder` hands out for one port.
    pub fn new(
        stream: DuplexStream,
        error: Option<impl Future<Output = Option<String>> + Send + 'static>,
        target: String,
    ) -> Self {
        Forwarded {
            stream,
            error: error.map(|e| Box::pin(e) as ErrorFuture),
            target,
        }
    }
}

impl AsyncRead for Forwarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                // End of stream: wait for the forwarder to say whether it failed.
                let Some(error) = self.error.as_mut() else {
                    return Poll::Ready(Ok(()));
                };
                match error.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => {
                        self.error = None;
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Some(message)) => {
                        self.error = None;
                        log::warn!("port-forward to {}: {}", self.target, message.trim());
                        Poll::Ready(Err(std::io::Error::other(format!(
                            "the Pod's port-forward failed: {}",
                            cause(&message)
                        ))))
                    }
                }
            }
            other => other,
        }
    }
}

impl AsyncWrite for Forwarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The end of a kubelet error chain ("error forwarding port 5900 to pod …: failed to …: dial
/// tcp 127.0.0.1:5900: connect: connection refused"): the part a user can act on, short
/// enough for a WebSocket close reason (123 bytes). The whole chain goes to the log.
fn cause(message: &str) -> String {
    let parts: Vec<&str> = message.trim().split(": ").collect();
    let start = parts
        .iter()
        .rposition(|p| p.starts_with("dial ") || p.starts_with("read ") || p.starts_with("write "))
        .unwrap_or(parts.len().saturating_sub(2));
    parts[start..].join(": ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cause_is_the_end_of_the_chain() {
        assert_eq!(
            super::cause(
                "error forwarding port 5900 to pod 1f3, uid : failed to execute portforward in network namespace: dial tcp 127.0.0.1:40000: connect: connection refused\n"
            ),
            "dial tcp 127.0.0.1:40000: connect: connection refused"
        );
        assert_eq!(super::cause("a: b: c"), "b: c");
        assert_eq!(super::cause("plain"), "plain");
    }
}
