//! Several control-plane replicas on one database: any replica answers any request. A
//! command persisted on one replica is delivered by the replica holding its agent's link
//! (woken by LISTEN/NOTIFY), a live query waits on a third for the answer, and a viewer on a
//! replica without the link is bridged to the one with it.

use std::time::Duration;

use serde_json::json;
use streamspace_protocol::{AgentMessage, AgentSessionState, Command, Frame};
use streamspace_testkit::control_plane::{self as common, ScriptedAgent, TestServer};
use streamspace_testkit::rfb::ViewerStream;

/// Replicas notice each other's deaths within a second.
const FAST: &[(&str, &str)] = &[("REPLICA_HEARTBEAT_INTERVAL", "200ms")];

async fn three_replicas() -> (TestServer, TestServer, TestServer) {
    let a = common::start(FAST).await;
    let b = common::start_on(a.db.clone(), FAST).await;
    let c = common::start_on(a.db.clone(), FAST).await;
    (a, b, c)
}

#[actix_web::test]
async fn a_session_made_on_one_replica_runs_on_an_agent_linked_to_another_and_is_viewed_through_a_third()
 {
    let (a, b, c) = three_replicas().await;
    a.template("xterm").await;
    let token = a.register_agent("local-1", "local").await;
    let mut agent = ScriptedAgent::connect(&a, "local-1", &token, vec![]).await;

    // Created through B; A holds the link and delivers it at once.
    let id = common::create_session(&b, &b.admin, "xterm").await;
    let (command_id, command) = tokio::time::timeout(Duration::from_secs(2), agent.recv_command())
        .await
        .expect("delivered through the replica holding the link, without polling");
    assert!(matches!(command, Command::CreateSession { .. }));
    let result = serde_json::to_value(common::report(id, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed { command_id, result })
        .await;
    common::session_reaches(&c, id, "running").await;
    let commands = common::commands_of(&a, id);
    assert_eq!(commands.len(), 1, "one command, delivered once");
    assert_eq!(commands[0].attempts, 1);

    // A live query through C: the agent answers A, C returns the answer.
    let listed = {
        let c = &c;
        async move { c.get("/api/v1/agents/local-1/sessions", &c.admin).await }
    };
    let answer = async {
        let (command_id, command) = agent.recv_command().await;
        assert!(matches!(command, Command::ListSessions));
        let sessions = vec![common::report(id, AgentSessionState::Running)];
        agent
            .send(&AgentMessage::Completed {
                command_id,
                result: json!({ "sessions": sessions }),
            })
            .await;
    };
    let ((status, body), ()) = futures_util::join!(listed, answer);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions"][0]["session_id"], id.to_string());

    // A viewer on B, bridged to A: RFB bytes both ways under A's tunnel.
    let url = b.viewer_url(&b.admin, id).await;
    let mut viewer = ViewerStream::open(&url).await.unwrap();
    let stream_id = agent.accept_stream().await;
    let greeting = b"RFB 003.008\n";
    agent
        .send_binary(
            Frame::Data {
                stream_id,
                payload: greeting,
            }
            .encode(),
        )
        .await;
    assert_eq!(viewer.read_exact(12).await.unwrap()[..], greeting[..]);
    viewer.write(b"RFB 003.008\n").await.unwrap();
    let from_viewer = loop {
        let bytes = agent.recv_binary().await;
        if let Ok(Frame::Data { payload, .. }) = Frame::decode(&bytes) {
            break payload.to_vec();
        }
    };
    assert_eq!(from_viewer, b"RFB 003.008\n");
    // The stream was opened by A, the replica with the link, for the viewer B verified.
    let connects = a.audit("vnc_connect", 1).await;
    assert_eq!(connects[0]["actor_username"], "admin");
}

#[actix_web::test]
async fn a_viewer_token_is_good_once_whichever_replica_it_reaches() {
    let (a, b, _c) = three_replicas().await;
    let mut agent = {
        a.template("xterm").await;
        let token = a.register_agent("local-1", "local").await;
        ScriptedAgent::connect(&a, "local-1", &token, vec![]).await
    };
    let id = common::running_session(&a, &mut agent).await;
    let url = a.viewer_url(&a.admin, id).await;
    let _first = ViewerStream::open(&url).await.unwrap();
    let again = url.replace(&a.ws_base(), &b.ws_base());
    assert!(
        ViewerStream::open(&again).await.is_err(),
        "a token spent on A is spent on B"
    );
}

#[actix_web::test]
async fn the_internal_viewer_endpoint_admits_replicas_only() {
    let (a, _b, _c) = three_replicas().await;
    let path = format!("/internal/v1/vnc/{}", uuid::Uuid::new_v4());
    let (status, _) = a.call("GET", &path, None, None).await;
    assert_eq!(status, 401);
    // A user's login token is no replica's token.
    let (status, body) = a.call("GET", &path, Some(&a.admin), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], "replicas only: not a replica's token");
}

#[actix_web::test]
async fn a_replica_cut_off_from_the_database_stops_being_ready_and_sheds_its_agents() {
    use streamspace_testkit::network_proxy::Proxy;
    let b = common::start(FAST).await;
    // Replica A reaches Postgres only through a proxy that can be cut; B directly.
    let direct = b.db.url().to_owned();
    let authority = direct.split('@').nth(1).unwrap().split('/').next().unwrap();
    let postgres: std::net::SocketAddr = authority.parse().unwrap();
    let proxy = Proxy::start(postgres).await;
    let through_proxy = direct.replace(authority, &format!("127.0.0.1:{}", proxy.port));
    let mut overrides = FAST.to_vec();
    overrides.push(("DATABASE_URL", &through_proxy));
    let a = common::start_on(b.db.clone(), &overrides).await;
    a.template("xterm").await;
    let token = a.register_agent("local-1", "local").await;
    let mut agent = ScriptedAgent::connect(&a, "local-1", &token, vec![]).await;
    let (status, _) = a.get("/readyz", "").await;
    assert_eq!(status, 200);

    proxy.partition();
    let closed = agent.closed().await.expect("a close reason");
    assert_eq!(
        closed.code,
        awc::ws::CloseCode::Restart,
        "reconnect at once"
    );
    assert_eq!(
        closed.description.as_deref(),
        Some("this control-plane replica cannot reach the database: reconnect")
    );
    let (status, body) = a.get("/readyz", "").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["message"],
        "database unreachable: this replica's heartbeats get no answer"
    );
    // The agent links to a replica that can work, which takes it over.
    let _agent = ScriptedAgent::connect(&b, "local-1", &token, vec![]).await;
    common::agent_reaches(&b, "local-1", "online").await;
    // Let A's store threads, blocked on connections that went silent, end with the test.
    proxy.sever();
}

#[actix_web::test]
async fn the_agents_of_a_killed_replica_that_do_not_come_back_are_judged_by_one_survivor() {
    use streamspace_testkit::replica_process::ReplicaProcess;
    let db = streamspace_testkit::TestDatabase::create();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_streamspace-control-plane"));
    let env = [
        ("REPLICA_HEARTBEAT_INTERVAL", "200ms"),
        ("AGENT_HEARTBEAT_INTERVAL", "500ms"),
        ("AGENT_TIMEOUT", "2s"),
    ];
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let a = ReplicaProcess::spawn(binary, &db, port(), &env);
    // B and C are in-process servers on the same database: their API tells the outcome.
    let b = common::start_on(db.clone(), &env).await;
    let _c = common::start_on(db.clone(), &env).await;
    b.template("xterm").await;
    let token = b.register_agent("local-1", "local").await;
    let a_base = format!("ws://127.0.0.1:{}", a.port);
    let mut agent = ScriptedAgent::connect_at(&a_base, "local-1", &token, vec![]).await;
    let id = common::running_session(&b, &mut agent).await;

    // A dies with the link; the agent never comes back.
    a.kill();
    drop(agent);
    // Claimed by a survivor, given AGENT_TIMEOUT, then offline, its session degraded.
    let started = std::time::Instant::now();
    common::agent_reaches(&b, "local-1", "offline").await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not judged before AGENT_TIMEOUT"
    );
    common::session_reaches(&b, id, "degraded").await;
    // Give a second judge time to show itself: there must be none.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let offline = b.audit("agent_offline", 1).await;
    assert_eq!(
        offline.len(),
        1,
        "judged once, by one survivor: {offline:?}"
    );
}

#[actix_web::test]
async fn a_user_disabled_through_one_replica_is_refused_by_another_that_had_them_cached() {
    // The second replica would keep her for an hour: only the change's notification ends it.
    let hour = [("USER_CACHE_TTL", "1h")];
    let a = common::start(&hour).await;
    let b = common::start_on(a.db.clone(), &hour).await;
    let alice = a.user("alice").await;
    let (status, me) = b.get("/api/v1/auth/me", &alice).await;
    assert_eq!(status, 200, "{me}");
    let (status, body) = a
        .call(
            "PATCH",
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            Some(&a.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = b.get("/api/v1/auth/me", &alice).await;
        if status == 401 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status} {body} on the other replica"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[actix_web::test]
async fn a_share_revoked_through_one_replica_closes_the_guests_viewer_bridged_through_another() {
    let (a, b, _c) = three_replicas().await;
    a.template("xterm").await;
    let token = a.register_agent("local-1", "local").await;
    let mut agent = ScriptedAgent::connect(&a, "local-1", &token, vec![]).await;
    let id = common::create_session(&a, &a.admin, "xterm").await;
    let (command_id, _) = agent.recv_command().await;
    let result = serde_json::to_value(common::report(id, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed { command_id, result })
        .await;
    common::session_reaches(&a, id, "running").await;
    let bob = a.user("bob").await;
    let (_, me) = a.get("/api/v1/auth/me", &bob).await;
    let (status, body) = a
        .post(
            &format!("/api/v1/sessions/{id}/shares"),
            &a.admin,
            json!({"username": "bob", "mode": "view"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Bob reaches B, which bridges him to A (the link's replica, where his tunnel lives).
    let url = b.viewer_url(&bob, id).await;
    let mut viewer = ViewerStream::open(&url).await.unwrap();
    let stream_id = agent.accept_stream().await;
    let viewers = format!("/api/v1/sessions/{id}/viewers");
    b.wait_for(&viewers, &b.admin, "bob connected", |v| {
        v["viewers"][0]["username"] == "bob"
    })
    .await;

    // Revoked through B: A hears of it and closes the tunnel, and B the viewer it bridged.
    let (status, _) = b
        .delete(
            &format!(
                "/api/v1/sessions/{id}/shares/{}",
                me["id"].as_str().unwrap()
            ),
            &b.admin,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        viewer
            .closed_within(Duration::from_secs(5))
            .await
            .as_deref(),
        Some("the owner changed or stopped sharing this desktop with you")
    );
    let (_, command) = agent.recv_command().await;
    assert!(matches!(command, Command::VncDisconnect { stream_id: s, .. } if s == stream_id));
    a.wait_for(&viewers, &a.admin, "no viewer", |v| {
        v["viewers"] == json!([])
    })
    .await;
}
