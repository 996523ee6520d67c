//! Many streams back to back through the real agent: each of `STREAMS` viewers sends a small
//! message and waits for its echo, again and again, through the control plane, the agent's
//! link and tunnel, to a desktop whose "VNC server" echoes (this very program, started by the
//! agent in place of Xvnc). Baseline in the same run: as many connections straight to the same
//! echo server's socket. Messages per second both ways, and the ratio. Then the round trip at
//! a steady rate (50 messages a second on each stream), through the relay and straight to the
//! echo server: what the relay and the real agent add to it.
//!
//! Run with `scripts/bench` (it starts Postgres and builds in release mode).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use serde_json::json;
use streamspace_testkit::control_plane as cp;
use streamspace_testkit::latencies::Latencies;
use streamspace_testkit::rfb::{RawTransport, RfbClient, Transport, ViewerStream};
use streamspace_testkit::round_trips::{Pattern, round_trips};

/// Bytes per message: an RFB pointer event and a little more.
const MESSAGE: usize = 64;

/// Streams at once and how long they run; `--quick` (the test command's smoke run) is small.
fn sizes() -> (usize, Duration) {
    if std::env::args().any(|a| a == "--quick") {
        (10, Duration::from_secs(1))
    } else {
        (100, Duration::from_secs(5))
    }
}

/// What the echo server says first, as a VNC server does: a viewer speaks only after it.
const GREETING: &[u8] = b"RFB 003.008\n";

/// Started by the agent as a desktop's Xvnc (`… -rfbunixpath PATH …`): greets, then echoes,
/// every connection to that socket, a thread each, until killed.
fn echo_server(path: &str) -> ! {
    let listener = UnixListener::bind(path).expect("bind the echo socket");
    loop {
        let Ok((mut conn, _)) = listener.accept() else {
            continue;
        };
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            if conn.write_all(GREETING).is_err() {
                return;
            }
            while let Ok(n) = conn.read(&mut buffer) {
                if n == 0 || conn.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

/// Messages a second on each stream in the steady-rate round trips.
const PER_S: u32 = 50;

async fn greeted<T: Transport>(clients: &mut [RfbClient<T>]) {
    for client in clients {
        let greeting = client.read_exact(GREETING.len()).await.expect("greeting");
        assert_eq!(greeting[..], GREETING[..]);
    }
}

/// Messages echoed per second over `clients`, each back to back for `over`.
async fn back_to_back<T: Transport>(mut clients: Vec<RfbClient<T>>, over: Duration) -> f64 {
    greeted(&mut clients).await;
    let started = Instant::now();
    let workers = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| async move {
            let message = [i as u8; MESSAGE];
            let mut echoed = 0u64;
            while started.elapsed() < over {
                client.write(&message).await.expect("send");
                let back = client.read_exact(MESSAGE).await.expect("echo");
                assert_eq!(back[..], message[..], "the echo came back changed");
                echoed += 1;
            }
            echoed
        });
    let total: u64 = futures_util::future::join_all(workers).await.iter().sum();
    total as f64 / started.elapsed().as_secs_f64()
}

/// CPU time (user and system, in clock ticks) of each of this process's threads, by thread id
/// with its name.
fn cpu_by_thread() -> std::collections::HashMap<String, (String, u64)> {
    let mut threads = std::collections::HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The name is in parentheses and may hold spaces; the fields follow the last one.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        let name = stat[open + 1..close].to_owned();
        threads.insert(
            task.file_name().to_string_lossy().into_owned(),
            (name, ticks(11) + ticks(12)),
        );
    }
    threads
}

/// Seconds of CPU each kind of thread spent between two readings, the busiest first: the
/// control plane's HTTP workers (`actix-rt|system:…`) are summed.
fn cpu_spent(
    before: &std::collections::HashMap<String, (String, u64)>,
    after: &std::collections::HashMap<String, (String, u64)>,
) -> Vec<(String, f64)> {
    let mut by_name = std::collections::BTreeMap::<String, u64>::new();
    for (tid, (name, ticks)) in after {
        let earlier = before.get(tid).map_or(0, |(_, t)| *t);
        let name = match name.as_str() {
            "streams_bench" => "main: the agent, the Supervisor".to_owned(),
            n if n.starts_with("actix-rt|system") => "control-plane HTTP workers".to_owned(),
            n => n.to_owned(),
        };
        *by_name.entry(name).or_default() += ticks.saturating_sub(earlier);
    }
    let mut spent: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, ticks)| *ticks > 0)
        // /proc counts in USER_HZ, 100 a second on Linux.
        .map(|(name, ticks)| (name, ticks as f64 / 100.0))
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    spent
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "-rfbunixpath") {
        echo_server(&args[at + 1]);
    }
    actix_web::rt::System::new().block_on(run());
}

async fn run() {
    let (streams, over) = sizes();
    let server = cp::start(&[]).await;
    server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "echo", "image": "sleep 1000000"}),
        )
        .await;
    // The runtime knows its VNC servers by "Xvnc" in their command line: this program under
    // such a name.
    let bin = tempfile::tempdir().unwrap();
    let xvnc = bin.path().join("echo-Xvnc");
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &xvnc).unwrap();
    let agent = support::local_agent(&server, "bench", &xvnc.to_string_lossy(), 1).await;
    let id = cp::create_session(&server, &server.admin, "echo").await;
    cp::session_reaches(&server, id, "running").await;
    let endpoint = agent.runtime.get(id).await.unwrap().vnc.unwrap().host;
    let socket = endpoint.strip_prefix("unix:").unwrap().to_owned();

    // A viewer's URL opens one stream: a set for the back-to-back run, one for the round trips.
    let mut urls = Vec::with_capacity(streams);
    let mut more_urls = Vec::with_capacity(streams);
    for _ in 0..streams {
        urls.push(server.viewer_url(&server.admin, id).await);
        more_urls.push(server.viewer_url(&server.admin, id).await);
    }
    // The viewers on a thread of their own (as if on other machines), so this one's CPU is
    // the agent's and the control plane's workers' their own: which of them bounds the rate.
    let before = cpu_by_thread();
    let viewers = std::thread::Builder::new()
        .name("viewers".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let through_agent = back_to_back(relayed(&urls).await, over).await;
                let after = cpu_by_thread();
                let baseline = back_to_back(direct(&socket, streams).await, over).await;
                let pattern = Pattern { per_s: PER_S, over };
                let mut viewers = relayed(&more_urls).await;
                greeted(&mut viewers).await;
                let relayed_trips = round_trips(viewers, pattern).await;
                let mut straight = direct(&socket, streams).await;
                greeted(&mut straight).await;
                let direct_trips = round_trips(straight, pattern).await;
                let trips = (relayed_trips, direct_trips);
                (through_agent, baseline, after, trips)
            })
        })
        .unwrap();
    let (through_agent, baseline, after, (relayed_trips, direct_trips)) =
        actix_web::rt::task::spawn_blocking(move || viewers.join().expect("the viewers' thread"))
            .await
            .unwrap();
    println!(
        "{streams} streams back to back ({MESSAGE}-byte messages echoed, {} s each way), same run",
        over.as_secs()
    );
    println!("    through the relay and the real agent {through_agent:9.0} msg/s");
    println!("    straight to the echo server's socket {baseline:9.0} msg/s");
    println!(
        "    ratio                                {:9.2} (relay / direct)",
        through_agent / baseline
    );
    println!("  CPU seconds by thread while the relayed streams ran (viewers included)");
    for (name, seconds) in cpu_spent(&before, &after) {
        println!("    {name:36} {seconds:6.2}");
    }
    println!(
        "{streams} streams × {PER_S} msg/s round trips ({MESSAGE}-byte messages, {} s each way), same run",
        over.as_secs()
    );
    println!(
        "    through the relay and the real agent {}",
        p50_p99(&relayed_trips)
    );
    println!(
        "    straight to the echo server's socket {}",
        p50_p99(&direct_trips)
    );
    println!(
        "    added                                p50 {:.2} ms, p99 {:.2} ms",
        relayed_trips.p50() - direct_trips.p50(),
        relayed_trips.p99() - direct_trips.p99()
    );
    server
        .delete(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    cp::session_reaches(&server, id, "terminated").await;
    assert!(
        through_agent > 0.0 && baseline > 0.0,
        "a figure was not measured: {through_agent} {baseline}"
    );
    assert!(
        !relayed_trips.is_empty() && !direct_trips.is_empty(),
        "no round trip was measured"
    );
}

/// A viewer through the control plane for each URL.
async fn relayed(urls: &[String]) -> Vec<ViewerStream> {
    let mut viewers = Vec::with_capacity(urls.len());
    for url in urls {
        let viewer = ViewerStream::open(url).await;
        viewers.push(viewer.map_err(|e| format!("{e:?}")).unwrap());
    }
    viewers
}

/// `n` connections straight to the echo server's socket.
async fn direct(socket: &str, n: usize) -> Vec<RfbClient<RawTransport<tokio::net::UnixStream>>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(RfbClient::connect_unix(socket).await.unwrap());
    }
    clients
}

fn p50_p99(trips: &Latencies) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms ({} round trips)",
        trips.p50(),
        trips.p99(),
        trips.len()
    )
}
