//! Throughput and connect latency of the VNC relay (viewer WebSocket → control plane →
//! agent link → tunnel → Xvnc) against the baseline of a raw connection to the Unix socket of the
//! same Xvnc, in the same run. Each round asks for full, non-incremental framebuffer updates
//! in the Raw encoding (width × height × 4 bytes each) and reads them completely.
//!
//! A second baseline takes the relay's path with nothing on it but the copies: two plain TCP
//! forwarders in a row, each on a thread of its own as the agent and the control plane are
//! (desktop → forwarder → forwarder → viewer). What the relay loses against it is its own
//! work; what the forwarders lose against the raw socket, the hops every relay must make.
//!
//! A second control-plane replica on the same database, without the agent's link, bridges a
//! third viewer to the first: the cost of a cross-replica viewer is measured in the same run.
//!
//! The viewers run on a thread of their own, as if on another machine: the agent (on the main
//! thread) and the control plane's workers have theirs, as each forwarder has.
//!
//! Run with `scripts/bench` (it starts Postgres and builds in release mode).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use streamspace_testkit::control_plane as cp;
use streamspace_testkit::own_thread::serve_on_own_thread;
use streamspace_testkit::rfb::{RfbClient, Transport, ViewerStream};

/// Full updates per round, rounds, and connects timed; `--quick` (the test command's smoke
/// run) takes a few of each.
fn sizes() -> (usize, usize, usize) {
    if std::env::args().any(|a| a == "--quick") {
        (5, 2, 5)
    } else {
        (20, 5, 20)
    }
}

async fn stream_updates<T: Transport>(
    client: &mut RfbClient<T>,
    width: u16,
    height: u16,
) -> (u64, Duration) {
    let before = client.received;
    let started = Instant::now();
    for _ in 0..sizes().0 {
        client.request_update(width, height).await.unwrap();
        client.read_update().await.unwrap();
    }
    (client.received - before, started.elapsed())
}

/// Streams read at once in the aggregate figure.
const STREAMS: usize = 10;

/// MB/s of all `clients` streaming one round each at the same time.
async fn aggregate<T: Transport>(clients: &mut [RfbClient<T>], width: u16, height: u16) -> f64 {
    let started = Instant::now();
    let rounds = clients.iter_mut().map(|c| stream_updates(c, width, height));
    let bytes: u64 = futures_util::future::join_all(rounds)
        .await
        .iter()
        .map(|(n, _)| n)
        .sum();
    bytes as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// Where a forwarder connects each connection it accepts.
enum Upstream {
    Unix(String),
    Tcp(u16),
}

/// A forwarder's buffer each way: as large as the relay's largest read.
const BUF: usize = 64 * 1024;

/// A plain TCP forwarder on a thread of its own: each connection to the port it returns is
/// joined to a new connection to `upstream`, the bytes copied both ways.
fn forwarder(upstream: Upstream) -> u16 {
    let upstream = std::sync::Arc::new(upstream);
    serve_on_own_thread(move |listener| async move {
        while let Ok((mut viewer, _)) = listener.accept().await {
            viewer.set_nodelay(true).unwrap();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let copied = match &*upstream {
                    Upstream::Unix(path) => {
                        let mut desktop = tokio::net::UnixStream::connect(path).await.unwrap();
                        tokio::io::copy_bidirectional_with_sizes(
                            &mut viewer,
                            &mut desktop,
                            BUF,
                            BUF,
                        )
                        .await
                    }
                    Upstream::Tcp(port) => {
                        let mut next = tokio::net::TcpStream::connect(("127.0.0.1", *port))
                            .await
                            .unwrap();
                        next.set_nodelay(true).unwrap();
                        tokio::io::copy_bidirectional_with_sizes(&mut viewer, &mut next, BUF, BUF)
                            .await
                    }
                };
                drop(copied);
            });
        }
    })
}

/// Where the viewers go: the replica with the agent's link, another one, and the desktop's
/// own socket; each with an admin's token.
struct Viewers {
    owner: (cp::Caller, String),
    bridged: (cp::Caller, String),
    session: uuid::Uuid,
    socket: String,
}

impl Viewers {
    /// Every figure, printed; returned for the check that each was measured.
    async fn measure(self) -> [f64; 9] {
        let viewer_url = || self.owner.0.viewer_url(&self.owner.1, self.session);
        let bridged_url = || self.bridged.0.viewer_url(&self.bridged.1, self.session);
        let socket = self.socket.clone();

        // Throughput, rounds interleaved so both see the same machine conditions.
        let mut raw = RfbClient::connect_unix(&socket).await.unwrap();
        let init = raw.handshake().await.unwrap();
        let hops = forwarder(Upstream::Tcp(forwarder(Upstream::Unix(socket.clone()))));
        let mut forwarded = RfbClient::connect(("127.0.0.1", hops)).await.unwrap();
        forwarded.handshake().await.unwrap();
        let mut relay = ViewerStream::open(&viewer_url().await)
            .await
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        relay.handshake().await.unwrap();
        let mut bridged = ViewerStream::open(&bridged_url().await)
            .await
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        bridged.handshake().await.unwrap();
        stream_updates(&mut raw, init.width, init.height).await; // warm-up
        stream_updates(&mut forwarded, init.width, init.height).await;
        stream_updates(&mut relay, init.width, init.height).await;
        stream_updates(&mut bridged, init.width, init.height).await;
        let (mut raw_rates, mut relay_rates, mut bridged_rates) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut forwarded_rates = Vec::new();
        let mut bytes = 0;
        for _ in 0..sizes().1 {
            let (n, took) = stream_updates(&mut raw, init.width, init.height).await;
            raw_rates.push(n as f64 / took.as_secs_f64() / 1e6);
            let (n, took) = stream_updates(&mut forwarded, init.width, init.height).await;
            forwarded_rates.push(n as f64 / took.as_secs_f64() / 1e6);
            let (n, took) = stream_updates(&mut relay, init.width, init.height).await;
            relay_rates.push(n as f64 / took.as_secs_f64() / 1e6);
            let (n, took) = stream_updates(&mut bridged, init.width, init.height).await;
            bridged_rates.push(n as f64 / took.as_secs_f64() / 1e6);
            bytes = n;
        }
        let forwarded_rate = median(forwarded_rates);
        let (raw_rate, relay_rate, bridged_rate) = (
            median(raw_rates),
            median(relay_rates),
            median(bridged_rates),
        );

        // Many streams at once: the relay's aggregate against as many raw connections.
        let mut raws = Vec::new();
        let mut relays = Vec::new();
        for _ in 0..STREAMS {
            let mut c = RfbClient::connect_unix(&socket).await.unwrap();
            c.handshake().await.unwrap();
            raws.push(c);
            let mut v = ViewerStream::open(&viewer_url().await)
                .await
                .map_err(|e| format!("{e:?}"))
                .unwrap();
            v.handshake().await.unwrap();
            relays.push(v);
        }
        let raw_many = aggregate(&mut raws, init.width, init.height).await;
        let relay_many = aggregate(&mut relays, init.width, init.height).await;
        for v in relays {
            v.close().await;
        }

        // Connect latency: until the RFB greeting arrives. The relay's includes a fresh viewer
        // token, the WebSocket upgrade, vnc_connect to the agent and its socket connect.
        let (mut raw_connect, mut relay_connect, mut bridged_connect) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..sizes().2 {
            let started = Instant::now();
            let mut c = RfbClient::connect_unix(&socket).await.unwrap();
            c.read_exact(12).await.unwrap();
            raw_connect.push(started.elapsed().as_secs_f64() * 1000.0);
            relay_connect.push(greeted_after(viewer_url()).await);
            bridged_connect.push(greeted_after(bridged_url()).await);
        }
        let (raw_ms, relay_ms, bridged_ms) = (
            median(raw_connect),
            median(relay_connect),
            median(bridged_connect),
        );

        println!(
            "VNC relay vs a raw connection to the same Xvnc's Unix socket ({}x{}, Raw encoding), same run",
            init.width, init.height
        );
        println!(
            "  throughput: {} full updates ({:.1} MB) per round, median of {} rounds",
            sizes().0,
            bytes as f64 / 1e6,
            sizes().1
        );
        println!("    raw socket   {raw_rate:8.1} MB/s");
        println!("    relay        {relay_rate:8.1} MB/s");
        println!(
            "    ratio        {:8.2} (relay / raw)",
            relay_rate / raw_rate
        );
        println!("    forwarders   {forwarded_rate:8.1} MB/s (two plain TCP forwarders in a row)");
        println!(
            "    ratio        {:8.2} (relay / forwarders), {:.2} (forwarders / raw)",
            relay_rate / forwarded_rate,
            forwarded_rate / raw_rate
        );
        println!("    bridged      {bridged_rate:8.1} MB/s (a viewer on another replica)");
        println!(
            "    ratio        {:8.2} (bridged / relay)",
            bridged_rate / relay_rate
        );
        println!("  aggregate of {STREAMS} streams at once (one round each)");
        println!("    raw sockets  {raw_many:8.1} MB/s");
        println!("    relay        {relay_many:8.1} MB/s");
        println!(
            "    ratio        {:8.2} (relay / raw)",
            relay_many / raw_many
        );
        println!("  connect to RFB greeting, median of {}", sizes().2);
        println!("    raw socket   {raw_ms:8.2} ms");
        println!("    relay        {relay_ms:8.2} ms (viewer token + WebSocket + vnc_connect)");
        println!("    bridged      {bridged_ms:8.2} ms (the same, through another replica)");
        [
            raw_rate,
            forwarded_rate,
            relay_rate,
            bridged_rate,
            raw_many,
            relay_many,
            raw_ms,
            relay_ms,
            bridged_ms,
        ]
    }
}

/// Milliseconds from asking for a viewer's URL (its token) to the RFB greeting through it.
async fn greeted_after(url: impl Future<Output = String>) -> f64 {
    let started = Instant::now();
    let mut viewer = ViewerStream::open(&url.await)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    viewer.read_exact(12).await.unwrap();
    let took = started.elapsed().as_secs_f64() * 1000.0;
    viewer.close().await;
    took
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[actix_web::main]
async fn main() {
    let server = cp::start(&[]).await;
    server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "xterm", "image": "xterm"}),
        )
        .await;
    let agent = support::local_agent(&server, "bench", "Xvnc", 1).await;
    let runtime = agent.runtime.clone();
    let id = cp::create_session(&server, &server.admin, "xterm").await;
    cp::session_reaches(&server, id, "running").await;
    // The desktop's VNC server listens on a Unix socket only (`unix:PATH`).
    let endpoint = runtime.get(id).await.unwrap().vnc.unwrap().host;
    let socket = endpoint.strip_prefix("unix:").unwrap().to_owned();

    let other = cp::start_on(server.db.clone(), &[]).await;
    let here = Viewers {
        owner: (server.caller(), server.admin.clone()),
        bridged: (other.caller(), other.admin.clone()),
        session: id,
        socket,
    };
    // The viewers on a thread of their own (as if on another machine), so the agent, on
    // this thread, has one to itself as the forwarders each have.
    let viewers = std::thread::Builder::new()
        .name("viewers".into())
        .spawn(move || actix_web::rt::System::new().block_on(here.measure()))
        .unwrap();
    let figures = actix_web::rt::task::spawn_blocking(move || viewers.join().expect("viewers"))
        .await
        .unwrap();
    server
        .delete(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    cp::session_reaches(&server, id, "terminated").await;
    assert!(
        figures.iter().all(|f| f.is_finite() && *f > 0.0),
        "a figure was not measured: {figures:?}"
    );
}
