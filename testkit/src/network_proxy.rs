//! A TCP proxy that makes links fail without closing, as networks do: a half-open connection
//! (a NAT dropped it, a peer froze) or a partition.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::own_thread::serve_on_own_thread;

/// Forwards to `upstream`; [`Proxy::freeze`] stalls every connection open at that moment,
/// and while [`Proxy::partition`] holds, new connections are dropped too.
pub struct Proxy {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    epoch: Arc<AtomicU64>,
    partitioned: Arc<AtomicBool>,
    severed: Arc<tokio::sync::Notify>,
}

impl Proxy {
    /// Starts forwarding (in the current tokio runtime).
    pub async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let epoch = Arc::new(AtomicU64::new(0));
        let partitioned = Arc::new(AtomicBool::new(false));
        let severed = Arc::new(tokio::sync::Notify::new());
        let (current, cut, sever) = (epoch.clone(), partitioned.clone(), severed.clone());
        // A thread of its own: what it forwards to may be reached by blocking code (a
        // database driver) on the caller's thread.
        let port = serve_on_own_thread(move |listener| async move {
            while let Ok((client, _)) = listener.accept().await {
                if cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, born, current.clone(), sever.clone()));
                tokio::spawn(pump(sr, cw, born, current.clone(), sever.clone()));
            }
        });
        Proxy {
            port,
            epoch,
            partitioned,
            severed,
        }
    }

    /// Stalls every connection open now, for good.
    pub fn freeze(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Nothing gets through, old connections or new, until [`Proxy::heal`].
    pub fn partition(&self) {
        self.partitioned.store(true, Ordering::SeqCst);
        self.freeze();
    }

    /// Closes every stalled connection (as TCP timeouts finally would), so the processes
    /// blocked on them get an error.
    pub fn sever(&self) {
        self.severed.notify_waiters();
    }

    /// New connections get through again.
    pub fn heal(&self) {
        self.partitioned.store(false, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    born: u64,
    epoch: Arc<AtomicU64>,
    severed: Arc<tokio::sync::Notify>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if epoch.load(Ordering::SeqCst) != born {
            // Frozen: hold both sockets open and forward nothing, until severed.
            severed.notified().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
