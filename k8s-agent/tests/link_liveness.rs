//! A link that goes silent without closing (a half-open TCP connection: a NAT dropped it, a
//! peer froze) is noticed by the agent, which dials again at once. The silence is made by a
//! TCP proxy between the agent and the real control plane that stops forwarding the
//! connections it holds, while new ones pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use actix::Actor;
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_k8s_agent::runtime::Runtime;
use streamspace_k8s_agent::runtime::local::{LocalRuntime, LocalSettings};
use streamspace_testkit::control_plane as cp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forwards to `upstream`; [`Proxy::freeze`] stalls every connection open at that moment.
struct Proxy {
    port: u16,
    epoch: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let epoch = Arc::new(AtomicU64::new(0));
        let current = epoch.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, born, current.clone()));
                tokio::spawn(pump(sr, cw, born, current.clone()));
            }
        });
        Proxy { port, epoch }
    }

    fn freeze(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    born: u64,
    epoch: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if epoch.load(Ordering::SeqCst) != born {
            // Frozen: hold both sockets open and forward nothing, ever.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[actix_web::test]
async fn a_silent_link_is_dropped_and_the_agent_dials_again_at_once() {
    // The control plane pings every 200 ms; the agent gives up after two silent intervals.
    let server = cp::start(&[
        ("AGENT_HEARTBEAT_INTERVAL", "200ms"),
        ("AGENT_TIMEOUT", "5s"),
    ])
    .await;
    let token = server.register_agent("local-1", "local").await;
    let upstream: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let url = format!("ws://127.0.0.1:{}", proxy.port);
    let env = [
        ("AGENT_ID", "local-1"),
        ("CONTROL_PLANE_URL", url.as_str()),
        ("AGENT_TOKEN", token.as_str()),
        ("PLATFORM", "local"),
    ];
    let config = Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let runtime = LocalRuntime::open(LocalSettings {
        data_dir: data.path().to_owned(),
        xvnc: "Xvnc".into(),
        geometry: "800x600".into(),
        max_sessions: 1,
        run_as: None,
    })
    .unwrap();
    let _agent = ControlPlaneLink::new(
        Arc::new(config),
        Arc::new(Runtime::Local(runtime)),
        Arc::new(AtomicBool::new(false)),
    )
    .start();
    cp::agent_reaches(&server, "local-1", "online").await;
    server.audit("agent_connect", 1).await;

    proxy.freeze();
    // A second hello, on a fresh connection through the proxy, well before AGENT_TIMEOUT.
    let connects = server.audit("agent_connect", 2).await;
    assert_eq!(connects.len(), 2);
    cp::agent_reaches(&server, "local-1", "online").await;
}
