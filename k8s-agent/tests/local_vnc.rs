//! End to end on one machine: the real control plane (real Postgres) and the real agent
//! with the local runtime (real Xvnc and xterm), a raw RFB client through the VNC proxy.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix::{Actor, Addr};
use serde_json::json;
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_k8s_agent::runtime::Runtime;
use streamspace_k8s_agent::runtime::local::accounts::DesktopAccounts;
use streamspace_k8s_agent::runtime::local::{LocalRuntime, LocalSettings};
use streamspace_testkit::control_plane::{self as cp, TestServer};
use streamspace_testkit::rfb::{OpenError, ViewerStream};
use uuid::Uuid;

struct Setup {
    server: TestServer,
    alice: String,
    data: tempfile::TempDir,
    _agent: Addr<ControlPlaneLink>,
}

fn agent_config(url: &str, token: &str) -> Config {
    let env = [
        ("AGENT_ID", "local-1"),
        ("CONTROL_PLANE_URL", url),
        ("AGENT_TOKEN", token),
        ("PLATFORM", "local"),
    ];
    Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

fn runtime(dir: &std::path::Path) -> Arc<dyn Runtime> {
    let settings = LocalSettings {
        data_dir: dir.to_owned(),
        xvnc: "Xvnc".into(),
        geometry: "800x600".into(),
        max_sessions: 4,
        accounts: DesktopAccounts::Agent,
    };
    Arc::new(LocalRuntime::open(settings).unwrap())
}

async fn setup(overrides: &[(&str, &str)]) -> Setup {
    let server = cp::start(overrides).await;
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "xterm", "image": "xterm"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = server.register_agent("local-1", "local").await;
    let data = tempfile::tempdir().unwrap();
    let agent = ControlPlaneLink::new(
        Arc::new(agent_config(&server.ws_base(), &token)),
        runtime(data.path()),
        Arc::new(AtomicBool::new(false)),
    )
    .start();
    cp::agent_reaches(&server, "local-1", "online").await;
    let alice = server.user("alice").await;
    Setup {
        server,
        alice,
        data,
        _agent: agent,
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        kill_sessions(self.data.path());
    }
}

/// Session processes outlive their agent by design; a test must not leave them behind.
fn kill_sessions(data: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(data.join("sessions")) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(bytes) = std::fs::read(entry.path().join("session.json")) else {
            continue;
        };
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        for key in ["desktop_pid", "xvnc_pid"] {
            if let Some(pid) = record[key].as_i64().filter(|p| *p > 0) {
                let pid = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

async fn running_session(setup: &Setup) -> Uuid {
    let id = cp::create_session(&setup.server, &setup.alice, "xterm").await;
    cp::session_reaches(&setup.server, id, "running").await;
    id
}

async fn viewer(setup: &Setup, id: Uuid) -> ViewerStream {
    let url = setup.server.viewer_url(&setup.alice, id).await;
    ViewerStream::open(&url)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap()
}

#[actix_web::test]
async fn a_raw_rfb_client_completes_the_handshake_and_gets_a_framebuffer_update() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let mut viewer = viewer(&setup, id).await;
    let init = viewer.handshake().await.unwrap();
    assert_eq!((init.width, init.height), (800, 600));
    assert_eq!(init.name, "alice's StreamSpace desktop");
    // The xterm maps its (white) window a moment after Xvnc starts: ask until it shows.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        viewer
            .request_update(init.width, init.height)
            .await
            .unwrap();
        let (rects, pixels) = viewer.read_update().await.unwrap();
        let area: usize = rects
            .iter()
            .map(|r| usize::from(r[2]) * usize::from(r[3]))
            .sum();
        assert_eq!(
            area,
            800 * 600,
            "a full update covers the screen: {rects:?}"
        );
        if pixels.iter().any(|b| *b != 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the desktop stayed black"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn two_viewers_watch_one_session_at_once() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let mut a = viewer(&setup, id).await;
    let mut b = viewer(&setup, id).await;
    let (ia, ib) = (a.handshake().await.unwrap(), b.handshake().await.unwrap());
    assert_eq!(ia, ib);
    for v in [&mut a, &mut b] {
        v.request_update(800, 600).await.unwrap();
        assert!(!v.read_update().await.unwrap().0.is_empty());
    }
}

/// Bytes the kernel holds on the connections to the control plane at `port`, towards the
/// clients: unsent or unacknowledged on its side, received but unread on theirs
/// (`/proc/net/tcp`'s `tx_queue` and `rx_queue`).
fn kernel_queued(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_of = |address: &str| {
        let hex = address.rsplit(':').next().unwrap_or("");
        u16::from_str_radix(hex, 16).unwrap_or(0)
    };
    let queue = |field: &str, index: usize| {
        let hex = field.split(':').nth(index).unwrap_or("0");
        u64::from_str_radix(hex, 16).unwrap_or(0)
    };
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() > 4 && fields[3] == "01") // established
        .map(|fields| {
            if port_of(fields[1]) == port {
                queue(fields[4], 0)
            } else if port_of(fields[2]) == port {
                queue(fields[4], 1)
            } else {
                0
            }
        })
        .sum()
}

fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        .parse()
        .unwrap()
}

fn port_of(server: &TestServer) -> u16 {
    server.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// What [`stall`] saw.
struct Stalled {
    /// Bytes the owning replica's tunnel sent towards the stalled viewer.
    sent: u64,
    /// Bytes the stalled viewer read.
    read: u64,
    /// Bytes the kernel holds on the connections to the replicas' ports.
    in_kernel: u64,
    /// The owner's `streamspace_viewer_buffered_bytes` after the other viewer left.
    counted: u64,
    /// The most that gauge showed while both viewers were open.
    most_buffered: u64,
    /// Whole screens the other viewer got meanwhile.
    updates: u32,
}

/// For 30 s one viewer of a desktop keeps asking for whole screens (about 2 MB each, raw) and
/// reads none of them, while another viewer of the same desktop works on; both reach the
/// desktop through `through` (the owner of the agent's link, or a replica bridged to it).
async fn stall(setup: &Setup, through: &TestServer, id: Uuid) -> Stalled {
    let open = |token: String| async move {
        let url = through.viewer_url(&token, id).await;
        ViewerStream::open(&url)
            .await
            .map_err(|e| format!("{e:?}"))
            .unwrap()
    };
    let mut stalled = open(setup.alice.clone()).await;
    let init = stalled.handshake().await.unwrap();
    let mut active = open(setup.alice.clone()).await;
    active.handshake().await.unwrap();
    let buffered = || async {
        let (_, metrics) = setup.server.call("GET", "/metrics", None, None).await;
        gauge(
            metrics.as_str().unwrap(),
            "streamspace_viewer_buffered_bytes",
        ) as u64
    };

    let started = tokio::time::Instant::now();
    let mut most_buffered = 0;
    let mut updates = 0;
    while started.elapsed() < Duration::from_secs(30) {
        for _ in 0..5 {
            stalled
                .request_update(init.width, init.height)
                .await
                .unwrap();
        }
        active
            .request_update(init.width, init.height)
            .await
            .unwrap();
        let (rects, _) = active.read_update().await.unwrap();
        assert!(!rects.is_empty());
        updates += 1;
        most_buffered = most_buffered.max(buffered().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    active.close().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let counted = buffered().await;
    let mut ports = vec![port_of(&setup.server)];
    if through.base != setup.server.base {
        ports.push(port_of(through));
    }
    let in_kernel = ports.into_iter().map(kernel_queued).sum();
    let read = stalled.received;
    drop(stalled);
    let audit = setup.server.audit("vnc_disconnect", 2).await;
    // The stalled viewer is the one that asked five times as often.
    let details = |e: &serde_json::Value, key: &str| e["details"][key].as_u64().unwrap();
    let sent = audit
        .iter()
        .max_by_key(|e| details(e, "bytes_from_viewer"))
        .map(|e| details(e, "bytes_to_viewer"))
        .unwrap();
    let stalled = Stalled {
        sent,
        read,
        in_kernel,
        counted,
        most_buffered,
        updates,
    };
    println!(
        "stalled viewer: the owner sent {} B, the viewer read {} B, the kernel holds {} B, \
         the processes hold {} B, the gauge counts {} B",
        stalled.sent,
        stalled.read,
        stalled.in_kernel,
        stalled.held(),
        stalled.counted
    );
    stalled
}

impl Stalled {
    /// What the control-plane processes hold for the stalled viewer.
    fn held(&self) -> u64 {
        self.sent.saturating_sub(self.read + self.in_kernel)
    }

    /// The other viewer worked on; the stalled one held at most one window at the owner.
    fn assert_isolated(&self) {
        let window = u64::from(streamspace_protocol::DEFAULT_STREAM_WINDOW);
        assert!(
            self.updates >= 30,
            "the other viewer was served throughout ({} updates)",
            self.updates
        );
        assert!(
            self.most_buffered <= 2 * window,
            "{} bytes buffered for two viewers, one window each at most",
            self.most_buffered
        );
        assert!(
            self.sent > window * 4,
            "the desktop sent well beyond one window: {}",
            self.sent
        );
        assert!(
            self.counted <= window,
            "{} bytes counted for the stalled viewer",
            self.counted
        );
    }
}

/// An HTTP layer's one write buffer (32 KiB, plus the one frame that crossed it).
const HTTP_BUFFER: u64 = 32 * 1024 + 64 * 1024 + 4096;

#[actix_web::test]
async fn a_viewer_that_reads_nothing_for_30_s_holds_one_window_and_blocks_no_one() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let stalled = stall(&setup, &setup.server, id).await;
    stalled.assert_isolated();
    // The gauge counts everything the process holds but the HTTP layer's write buffer.
    assert!(
        stalled.held() <= stalled.counted + HTTP_BUFFER,
        "the process holds {} bytes for a stalled viewer, the gauge counts only {}",
        stalled.held(),
        stalled.counted
    );
}

#[actix_web::test]
async fn a_stalled_viewer_bridged_from_another_replica_holds_no_more_than_one_on_the_owner() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let bridge = cp::start_on(setup.server.db.clone(), &[]).await;
    let stalled = stall(&setup, &bridge, id).await;
    stalled.assert_isolated();
    // The bridging replica adds its own write buffer and the one frame it is passing on
    // (read from the owner, not yet taken by the viewer's socket), and nothing more.
    let bridged = HTTP_BUFFER + 64 * 1024 + 4096;
    assert!(
        stalled.held() <= stalled.counted + HTTP_BUFFER + bridged,
        "the two replicas hold {} bytes for a stalled viewer, the owner's gauge counts {}",
        stalled.held(),
        stalled.counted
    );
}

#[actix_web::test]
async fn wrong_expired_and_other_session_tokens_are_refused() {
    let setup = setup(&[]).await;
    let first = running_session(&setup).await;
    let second = running_session(&setup).await;
    let base = setup.server.ws_base();
    let open = |url: String| async move { ViewerStream::open(&url).await.err() };

    let status = |e: Option<OpenError>| match e {
        Some(OpenError::Http(status)) => status,
        other => panic!("expected an HTTP refusal, got {other:?}"),
    };
    assert_eq!(
        status(open(format!("{base}/api/v1/vnc/{first}?token=garbage")).await),
        401
    );
    assert_eq!(
        status(open(format!("{base}/api/v1/vnc/{first}")).await),
        401
    );
    // The login token is not a viewer token.
    assert_eq!(
        status(open(format!("{base}/api/v1/vnc/{first}?token={}", setup.alice)).await),
        401
    );
    // A viewer token opens one stream, once.
    let url = setup.server.viewer_url(&setup.alice, first).await;
    let _viewer = ViewerStream::open(&url)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    assert_eq!(status(open(url).await), 401, "a used viewer token");
    // A viewer token for the second session does not open the first.
    let url = setup.server.viewer_url(&setup.alice, second).await;
    let other = url.replace(&second.to_string(), &first.to_string());
    assert_eq!(status(open(other).await), 403);
    // Another user cannot even get a token, and cannot use alice's.
    let bob = setup.server.user("bob").await;
    let (code, _) = setup
        .server
        .post(
            &format!("/api/v1/sessions/{first}/viewer-token"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(code, 404);
}

#[actix_web::test]
async fn an_expired_viewer_token_is_refused() {
    use streamspace_control_plane::auth::tokens::{Claims, Keys, VNC_AUDIENCE};
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    // Forge nothing: sign a token that expired a second ago with the server's own secret.
    let claims = Claims {
        sub: Uuid::nil(),
        name: "alice".into(),
        role: streamspace_control_plane::model::Role::User,
        aud: VNC_AUDIENCE.into(),
        iat: 0,
        exp: chrono_now() - 1,
        sid: Some(id),
        jti: Some(Uuid::new_v4()),
        pwd: None,
    };
    let token = Keys::new(cp::JWT_SECRET.as_bytes()).sign(&claims);
    let url = format!("{}/api/v1/vnc/{id}?token={token}", setup.server.ws_base());
    assert!(matches!(
        ViewerStream::open(&url).await.err(),
        Some(OpenError::Http(401))
    ));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[actix_web::test]
async fn closing_the_viewer_closes_the_agent_side_and_is_audited() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let mut v = viewer(&setup, id).await;
    v.handshake().await.unwrap();
    v.close().await;
    let entry = setup
        .server
        .wait_for(
            "/api/v1/audit?action=vnc_disconnect",
            &setup.server.admin,
            "vnc_disconnect audit",
            |b| !b["entries"].as_array().unwrap().is_empty(),
        )
        .await;
    let details = &entry["entries"][0]["details"];
    assert!(
        details["bytes_to_viewer"].as_u64().unwrap() > 12,
        "{details}"
    );
    assert!(
        details["bytes_from_viewer"].as_u64().unwrap() >= 14,
        "{details}"
    );
    assert!(details["duration_ms"].is_u64());
    // The agent was told to close its end, and did.
    setup
        .server
        .wait_for(
            &format!("/api/v1/sessions/{id}"),
            &setup.alice,
            "vnc_disconnect completed",
            |_| {
                cp::commands_of(&setup.server, id)
                    .iter()
                    .any(|c| c.command_type == "vnc_disconnect" && c.status == "completed")
            },
        )
        .await;
}

#[actix_web::test]
async fn when_the_desktop_goes_away_the_viewer_is_told_why() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let mut v = viewer(&setup, id).await;
    v.handshake().await.unwrap();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            setup
                .data
                .path()
                .join("sessions")
                .join(id.to_string())
                .join("session.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let pid = record["xvnc_pid"].as_i64().unwrap();
    assert_eq!(vnc_streams(&setup).await, 1);
    std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert_eq!(
        v.closed().await.as_deref(),
        Some("VNC server closed the connection")
    );
    // A stream the agent ended frees its id in the control plane too.
    for _ in 0..200 {
        if vnc_streams(&setup).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the stream the agent ended is still counted as open");
}

/// `streamspace_vnc_streams` from `/metrics`.
async fn vnc_streams(setup: &Setup) -> u64 {
    let body = awc::Client::default()
        .get(format!("{}/metrics", setup.server.base))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("streamspace_vnc_streams "))
        .and_then(|v| v.trim().parse().ok())
        .expect("streamspace_vnc_streams in /metrics")
}

#[actix_web::test]
async fn the_proxy_can_be_switched_off() {
    let setup = setup(&[("VNC_PROXY_ENABLED", "false")]).await;
    let id = running_session(&setup).await;
    let (status, body) = setup
        .server
        .post(
            &format!("/api/v1/sessions/{id}/viewer-token"),
            &setup.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "vnc_proxy_disabled");
    let url = format!("{}/api/v1/vnc/{id}?token=x", setup.server.ws_base());
    assert!(matches!(
        ViewerStream::open(&url).await.err(),
        Some(OpenError::Http(503))
    ));
}

#[actix_web::test]
async fn a_session_that_is_not_running_cannot_be_viewed() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let (status, _) = setup
        .server
        .delete(&format!("/api/v1/sessions/{id}"), &setup.alice)
        .await;
    assert_eq!(status, 202);
    cp::session_reaches(&setup.server, id, "terminated").await;
    let (status, body) = setup
        .server
        .post(
            &format!("/api/v1/sessions/{id}/viewer-token"),
            &setup.alice,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (409, Some("the session is terminated, not running"))
    );
}

#[actix_web::test]
async fn disabling_a_user_closes_their_open_streams_at_once() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let mut v = viewer(&setup, id).await;
    v.handshake().await.unwrap();
    let (_, me) = setup.server.get("/api/v1/auth/me", &setup.alice).await;
    let alice_id = me["id"].as_str().unwrap().to_owned();
    let (status, body) = setup
        .server
        .call(
            "PATCH",
            &format!("/api/v1/users/{alice_id}"),
            Some(&setup.server.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        v.closed().await.as_deref(),
        Some("your account was disabled or deleted")
    );
}

#[actix_web::test]
async fn a_viewer_that_stops_answering_pings_is_dropped() {
    let setup = setup(&[
        ("AGENT_HEARTBEAT_INTERVAL", "200ms"),
        ("AGENT_TIMEOUT", "2s"),
    ])
    .await;
    let id = running_session(&setup).await;
    let mut v = viewer(&setup, id).await;
    v.handshake().await.unwrap();
    // The viewer goes silent (as a vanished browser would): it reads nothing, so it answers
    // no ping, and the control plane closes its stream after two intervals.
    let closed = setup.server.audit("vnc_disconnect", 1).await;
    assert_eq!(
        closed[0]["details"]["reason"],
        "the viewer stopped answering"
    );
    drop(v);
}

#[actix_web::test]
async fn a_viewer_that_pings_but_never_reads_is_closed() {
    use futures_util::{SinkExt, StreamExt};
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let url = setup.server.viewer_url(&setup.alice, id).await;
    let (_, mut ws) = awc::Client::default()
        .ws(url)
        .max_frame_size(1 << 20)
        .connect()
        .await
        .unwrap();
    // 25 MB of pings, nothing read: the pongs pile up behind the full socket.
    let payload = [7u8; 125];
    for _ in 0..200_000 {
        let ping = awc::ws::Message::Ping(payload.to_vec().into());
        if tokio::time::timeout(Duration::from_secs(1), ws.send(ping))
            .await
            .is_err()
        {
            break;
        }
    }
    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await {
            Ok(Some(Ok(awc::ws::Frame::Close(reason)))) => {
                break reason.and_then(|r| r.description);
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("the viewer was not closed: {other:?}"),
        }
    };
    assert_eq!(
        reason.as_deref(),
        Some("the viewer sends pings but reads nothing")
    );
}

#[actix_web::test]
async fn a_stream_the_control_plane_forgot_is_found_by_a_probe_and_closed() {
    use streamspace_protocol::{AgentMessage, Command, ControlMessage, Frame, Resources};
    use streamspace_protocol::{SessionSpec, TemplateSpec};
    use streamspace_testkit::scripted_control_plane::{FromAgent, ScriptedControlPlane};

    let data = tempfile::tempdir().unwrap();
    let runtime = runtime(data.path());
    let session_id = Uuid::new_v4();
    let spec = SessionSpec {
        session_id,
        user: "alice".into(),
        template: TemplateSpec {
            name: "xterm".into(),
            image: "xterm".into(),
            vnc_port: 5900,
            env: Default::default(),
        },
        resources: Resources {
            cpu: "1".into(),
            memory: "1Gi".into(),
        },
        persistent_home: false,
        home_id: None,
    };
    runtime.create(&spec).await.unwrap();
    let _cleanup = SessionsOf(data.path().to_owned());
    let mut control_plane = ScriptedControlPlane::start().await;
    let config = agent_config(&control_plane.url, "scripted");
    let _agent =
        ControlPlaneLink::new(Arc::new(config), runtime, Arc::new(AtomicBool::new(false))).start();
    let mut link = control_plane.accept(Duration::from_millis(300)).await;

    let command_id = Uuid::new_v4();
    let stream_id = 7;
    link.send(&ControlMessage::Command {
        command_id,
        command: Command::VncConnect {
            session_id,
            stream_id,
            window: streamspace_protocol::DEFAULT_STREAM_WINDOW,
        },
    })
    .await;
    // Ack, completed, and the desktop's greeting, in some order; then, though the control
    // plane says nothing more about the stream, the agent asks whether it still has it.
    let mut probed = false;
    for item in link.collect_for(Duration::from_secs(2)).await {
        match item {
            FromAgent::Message(AgentMessage::Failed { error, .. }) => panic!("{error}"),
            FromAgent::Frame(frame) => {
                probed |= Frame::decode(&frame).unwrap() == Frame::Probe { stream_id };
            }
            FromAgent::Message(_) => {}
        }
    }
    assert!(probed, "an open stream is probed every heartbeat interval");

    // The control plane has no such stream: the agent closes its end and forgets it.
    link.send_frame(Frame::Reset { stream_id }.encode()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after: Vec<FromAgent> = link.collect_for(Duration::from_secs(1)).await;
    assert!(
        after
            .iter()
            .all(|item| !matches!(item, FromAgent::Frame(_))),
        "no probe, no data for a stream that was reset: {after:?}"
    );
    link.send_frame(Frame::Probe { stream_id }.encode()).await;
    match link.recv().await {
        FromAgent::Frame(frame) => {
            assert_eq!(Frame::decode(&frame).unwrap(), Frame::Reset { stream_id })
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    control_plane.stop().await;
}

/// Kills the sessions' processes when the test ends, however it ends.
struct SessionsOf(std::path::PathBuf);

impl Drop for SessionsOf {
    fn drop(&mut self) {
        kill_sessions(&self.0);
    }
}

/// RFB key presses (down and up) typing `text` and Return.
fn typing(text: &str) -> Vec<u8> {
    let mut keysyms: Vec<u32> = text.chars().map(u32::from).collect();
    keysyms.push(0xff0d);
    let mut bytes = Vec::new();
    for keysym in keysyms {
        for down in [1, 0] {
            bytes.extend([4, down, 0, 0]);
            bytes.extend(keysym.to_be_bytes());
        }
    }
    bytes
}

/// An RFB pointer move to (`x`, `y`) with no button.
fn pointer_at(x: u16, y: u16) -> Vec<u8> {
    let mut bytes = vec![5, 0];
    bytes.extend(x.to_be_bytes());
    bytes.extend(y.to_be_bytes());
    bytes
}

/// An RFB cut text: the viewer's clipboard, for the desktop.
fn cut_text(text: &str) -> Vec<u8> {
    let mut bytes = vec![6, 0, 0, 0];
    bytes.extend(u32::try_from(text.len()).unwrap().to_be_bytes());
    bytes.extend(text.as_bytes());
    bytes
}

/// The X clipboard of the session's display, read with `xclip` as a program on the desktop
/// would; empty when nobody owns it.
fn desktop_clipboard(data: &std::path::Path, id: Uuid) -> String {
    let dir = data.join("sessions").join(id.to_string());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("session.json")).unwrap()).unwrap();
    let out = std::process::Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .env("DISPLAY", format!(":{}", record["display"]))
        .env("XAUTHORITY", dir.join("run").join("Xauthority"))
        .output()
        .expect("xclip runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[actix_web::test]
async fn a_view_only_guest_types_and_pastes_into_a_real_desktop_and_nothing_happens_there() {
    let setup = setup(&[]).await;
    let id = running_session(&setup).await;
    let bob = setup.server.user("bob").await;
    let (status, body) = setup
        .server
        .post(
            &format!("/api/v1/sessions/{id}/shares"),
            &setup.alice,
            json!({"username": "bob", "mode": "view"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut owner = viewer(&setup, id).await;
    owner.handshake().await.unwrap();
    let url = setup.server.viewer_url(&bob, id).await;
    let mut guest = ViewerStream::open(&url).await.unwrap();
    let init = guest.handshake().await.unwrap();
    // He watches: full updates reach him.
    guest.request_update(init.width, init.height).await.unwrap();
    assert!(!guest.read_update().await.unwrap().0.is_empty());

    // Both point into the xterm (top left, no window manager: the keyboard follows the
    // pointer) and type a command; the guest first, so his keys would run first.
    let dir = tempfile::tempdir().unwrap();
    let (guest_file, owner_file) = (dir.path().join("guest"), dir.path().join("owner"));
    let mut keys = pointer_at(20, 20);
    keys.extend(typing(&format!("touch {}", guest_file.display())));
    keys.extend(cut_text("from-the-guest"));
    guest.write(&keys).await.unwrap();
    let mut keys = pointer_at(20, 20);
    keys.extend(typing(&format!("touch {}", owner_file.display())));
    owner.write(&keys).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !owner_file.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner's typing never ran in the xterm"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!guest_file.exists(), "the guest's keys reached the desktop");
    assert_eq!(desktop_clipboard(setup.data.path(), id), "");

    // The same cut text from the owner does reach it: the check above could have failed.
    owner.write(&cut_text("from-the-owner")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while desktop_clipboard(setup.data.path(), id) != "from-the-owner" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner's clipboard never reached the desktop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
