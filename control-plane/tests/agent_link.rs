//! Hostile or broken input on the agent link: never a panic, always a clear reason.

use streamspace_testkit::control_plane as common;

use std::time::Duration;

use common::ScriptedAgent;
use streamspace_protocol::{AgentMessage, Capacity, ControlMessage, ProtocolVersion};

async fn connected() -> (common::TestServer, ScriptedAgent) {
    let server = common::start(&[]).await;
    let token = server.register_agent("local-1", "local").await;
    let agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    (server, agent)
}

/// Agent `local-1`'s hello, speaking `protocol_version`.
fn hello_of(protocol_version: ProtocolVersion) -> AgentMessage {
    AgentMessage::Hello {
        protocol_version,
        agent_id: "local-1".into(),
        platform: "local".into(),
        region: None,
        capacity: Capacity {
            max_sessions: 1,
            cpu: None,
            memory: None,
        },
        sessions: vec![],
        inventory_error: None,
    }
}

async fn opened() -> (common::TestServer, ScriptedAgent) {
    let server = common::start(&[]).await;
    let token = server.register_agent("local-1", "local").await;
    let agent = ScriptedAgent::open(&server, "local-1", &token)
        .await
        .unwrap();
    (server, agent)
}

#[actix_web::test]
async fn malformed_json_gets_an_error_message_and_the_link_stays_up() {
    let (server, mut agent) = connected().await;
    agent.send_text("{not json".into()).await;
    match agent.recv().await {
        ControlMessage::Error { code, message } => {
            assert_eq!(code, "malformed_message");
            assert!(message.starts_with("malformed message:"), "{message}");
        }
        other => panic!("expected an error message, got {other:?}"),
    }
    agent.send_text(r#"{"type":"ack"}"#.into()).await;
    assert!(matches!(agent.recv().await, ControlMessage::Error { .. }));
    agent
        .send(&AgentMessage::Heartbeat { active_sessions: 0 })
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, row) = server.get("/api/v1/agents/local-1", &server.admin).await;
    assert_eq!(row["status"], "online");
}

#[actix_web::test]
async fn unknown_message_types_are_ignored() {
    let (server, mut agent) = connected().await;
    agent
        .send_text(r#"{"type":"telemetry_v9","gpu":1}"#.into())
        .await;
    assert!(
        agent.quiet_for(Duration::from_millis(300)).await,
        "no reply expected"
    );
    assert_eq!(
        server.get("/api/v1/agents/local-1", &server.admin).await.1["status"],
        "online"
    );
}

#[actix_web::test]
async fn an_oversize_frame_closes_the_link_with_a_reason() {
    let (_server, mut agent) = connected().await;
    let huge = format!(
        r#"{{"type":"goodbye","reason":"{}"}}"#,
        "x".repeat(1_200_000)
    );
    agent.send_text(huge).await;
    let reason = agent.closed().await.unwrap();
    assert_eq!(reason.code, awc::ws::CloseCode::Size);
    assert_eq!(reason.description.as_deref(), Some("frame too large"));
}

#[actix_web::test]
async fn a_link_that_does_not_start_with_hello_is_closed() {
    let (_server, mut agent) = opened().await;
    agent
        .send(&AgentMessage::Heartbeat { active_sessions: 0 })
        .await;
    let reason = agent.closed().await.unwrap();
    assert_eq!(reason.code, awc::ws::CloseCode::Policy);
    assert_eq!(
        reason.description.as_deref(),
        Some("expected hello as the first message")
    );
}

#[actix_web::test]
async fn garbage_and_binary_before_hello_close_the_link() {
    let (_server, mut agent) = opened().await;
    agent.send_binary(vec![1, 0, 0, 0, 1, 42]).await;
    assert_eq!(
        agent.closed().await.unwrap().description.as_deref(),
        Some("expected hello as the first message")
    );
    let (_server, mut agent) = opened().await;
    agent.send_text("\u{0}\u{1}garbage".into()).await;
    let reason = agent.closed().await.unwrap().description.unwrap();
    assert!(
        reason.starts_with("expected hello: malformed message"),
        "{reason}"
    );
}

#[actix_web::test]
async fn an_incompatible_protocol_version_is_refused_naming_the_compatible_ones() {
    let (server, mut agent) = opened().await;
    let hello = hello_of(ProtocolVersion { major: 2, minor: 0 });
    agent.send(&hello).await;
    let reason = agent.closed().await.unwrap().description.unwrap();
    // The agent needs an admin now: its status says so, and the audit log says why.
    common::agent_reaches(&server, "local-1", "error").await;
    let refused = server.audit("agent_refused", 1).await;
    assert_eq!(refused[0]["details"]["reason"], reason.as_str());
    assert_eq!(
        reason,
        "peer speaks protocol 2.0, this side speaks 1.2; only 1.x versions are compatible"
    );
}

#[actix_web::test]
async fn binary_frames_after_hello_do_not_disturb_the_link() {
    let (server, mut agent) = connected().await;
    for bytes in [vec![], vec![9, 9], vec![1, 0, 0, 0, 7, 1, 2, 3]] {
        agent.send_binary(bytes).await;
    }
    agent
        .send(&AgentMessage::Heartbeat { active_sessions: 0 })
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.get("/api/v1/agents/local-1", &server.admin).await.1["status"],
        "online"
    );
}

#[actix_web::test]
async fn a_hello_cannot_change_the_platform_or_region_an_admin_registered() {
    let server = common::start(&[]).await;
    // Registered as a Kubernetes agent in test-region…
    let (status, body) = server
        .post(
            "/api/v1/agents/register",
            &server.admin,
            serde_json::json!({"agent_id": "k8s-1", "platform": "kubernetes", "region": "eu-1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["credential"]["token"].as_str().unwrap().to_owned();
    // …a hello as a local agent in another region is refused, saying why.
    let mut agent = ScriptedAgent::open(&server, "k8s-1", &token).await.unwrap();
    agent.hello(vec![]).await;
    let reason = agent.closed().await.unwrap().description.unwrap();
    assert_eq!(
        reason,
        "agent k8s-1 is registered for platform kubernetes, its hello says local"
    );
    let (_, row) = server.get("/api/v1/agents/k8s-1", &server.admin).await;
    assert_eq!(
        (row["platform"].as_str(), row["region"].as_str()),
        (Some("kubernetes"), Some("eu-1"))
    );

    // A local agent registered without a region takes the one its hello names; one
    // registered with a region keeps it.
    let (status, body) = server
        .post(
            "/api/v1/agents/register",
            &server.admin,
            serde_json::json!({"agent_id": "local-1", "platform": "local"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["credential"]["token"].as_str().unwrap().to_owned();
    let _agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    let (_, row) = server.get("/api/v1/agents/local-1", &server.admin).await;
    assert_eq!(row["region"], "test-region", "the region its hello named");
    let (status, body) = server
        .post(
            "/api/v1/agents/register",
            &server.admin,
            serde_json::json!({"agent_id": "local-2", "platform": "local", "region": "home"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["credential"]["token"].as_str().unwrap().to_owned();
    let _agent = ScriptedAgent::connect(&server, "local-2", &token, vec![]).await;
    let (_, row) = server.get("/api/v1/agents/local-2", &server.admin).await;
    assert_eq!(row["region"], "home");
}

#[actix_web::test]
async fn an_agent_that_provokes_replies_but_never_reads_them_is_closed() {
    let (_server, mut agent) = connected().await;
    // Every ping earns a pong; this agent sends 25 MB of pings and reads nothing, so the
    // pongs pile up behind the full socket until the control plane gives up on it.
    let payload = [7u8; 125];
    for _ in 0..200_000 {
        // Once the control plane stops reading too, sending blocks: time to look.
        let sent = tokio::time::timeout(Duration::from_secs(1), agent.send_ping(&payload)).await;
        if sent.is_err() {
            break;
        }
    }
    let reason = agent.closed().await.and_then(|r| r.description);
    assert_eq!(
        reason.as_deref(),
        Some("the agent sends faster than it reads our replies")
    );
}

#[actix_web::test]
async fn frames_for_a_stream_the_control_plane_does_not_have_are_answered_with_a_reset() {
    use streamspace_protocol::Frame;
    let (_server, mut agent) = connected().await;
    for frame in [
        Frame::Data {
            stream_id: 4242,
            payload: b"RFB 003.008\n",
        },
        Frame::Credit {
            stream_id: 4343,
            bytes: 1024,
        },
        Frame::Probe { stream_id: 4444 },
    ] {
        agent.send_binary(frame.encode()).await;
        let answer = agent.recv_binary().await;
        assert_eq!(
            Frame::decode(&answer).unwrap(),
            Frame::Reset {
                stream_id: frame.stream_id()
            },
            "so the agent closes its end instead of keeping an orphan"
        );
    }
}

#[actix_web::test]
async fn a_stream_the_agent_lost_without_a_word_is_found_by_a_probe_and_its_viewer_closed() {
    use streamspace_protocol::Frame;
    use streamspace_testkit::rfb::ViewerStream;
    let (server, mut agent, _) =
        common::start_with_agent(&[("AGENT_HEARTBEAT_INTERVAL", "300ms")]).await;
    let id = common::running_session(&server, &mut agent).await;
    let url = server.viewer_url(&server.admin, id).await;
    let mut viewer = ViewerStream::open(&url).await.unwrap();
    let stream_id = agent.accept_stream().await;

    // Nothing flows on the stream; after an interval the control plane asks about it anyway.
    let probe = agent.recv_binary().await;
    assert_eq!(Frame::decode(&probe).unwrap(), Frame::Probe { stream_id });
    agent.send_binary(Frame::Reset { stream_id }.encode()).await;
    assert_eq!(
        viewer.closed().await.as_deref(),
        Some("the agent no longer has this stream")
    );
}

/// An upgrade request written by hand on a plain socket, with `then` right behind it.
async fn raw_upgrade(
    server: &common::TestServer,
    token: &str,
    then: &[u8],
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = server.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "GET /api/v1/agent/connect?agent_id=local-1 HTTP/1.1\r\nHost: {addr}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(then);
    socket.write_all(&request).await.unwrap();
    socket
}

/// Reads until `socket` ends (or 5 s pass); what it read.
async fn read_to_end(socket: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[actix_web::test]
async fn a_first_frame_sent_right_behind_the_upgrade_request_is_read() {
    use tokio::io::AsyncReadExt;
    let server = common::start(&[]).await;
    let token = server.register_agent("local-1", "local").await;
    let hello = hello_of(streamspace_protocol::PROTOCOL_VERSION);
    // A masked text frame (a client's frames are masked), in the same write as the request.
    let payload = hello.to_json().into_bytes();
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut frame = vec![0x81, 0x80 | 126];
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    let mut socket = raw_upgrade(&server, &token, &frame).await;
    let mut got = Vec::new();
    let welcomed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(r#""type":"welcome""#) {
            let n = socket.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    let got = String::from_utf8_lossy(&got);
    assert!(welcomed.is_ok(), "no welcome: {got}");
    assert!(
        got.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{got}"
    );
    assert!(
        got.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{got}"
    );
}

#[actix_web::test]
async fn a_refused_upgrade_gets_a_whole_json_answer_and_the_connection_ends() {
    let server = common::start(&[]).await;
    server.register_agent("local-1", "local").await;
    let mut socket = raw_upgrade(&server, "not-a-token", b"").await;
    let got = read_to_end(&mut socket).await;
    let (head, body) = got.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("connection: close"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    assert!(
        head.contains("x-request-id: "),
        "the middleware ran: {head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(body["error"], "unauthorized", "{body}");
}
