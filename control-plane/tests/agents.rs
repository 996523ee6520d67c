//! Agent registration, listing, credentials and the authentication of the agent link.

use streamspace_testkit::control_plane as common;

use common::{Refusal, ScriptedAgent};
use serde_json::json;

#[actix_web::test]
async fn agents_are_registered_listed_filtered_inspected_and_deleted() {
    let server = common::start(&[]).await;
    let token = server.register_agent("local-1", "local").await;
    server.register_agent("k8s-1", "kubernetes").await;
    server.register_agent("docker-1", "docker").await;
    assert!(token.starts_with("ssa_"));

    let (status, body) = server
        .post(
            "/api/v1/agents/register",
            &server.admin,
            json!({"agent_id": "local-1", "platform": "local"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (409, Some("agent \"local-1\" is already registered"))
    );
    let (status, body) = server
        .post(
            "/api/v1/agents/register",
            &server.admin,
            json!({"agent_id": "x", "platform": "podman"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("platform: \"podman\" is not one of kubernetes, docker, local")
        )
    );

    let (_, all) = server.get("/api/v1/agents", &server.admin).await;
    assert_eq!(all["agents"].as_array().unwrap().len(), 3);
    let (_, docker) = server
        .get("/api/v1/agents?platform=docker", &server.admin)
        .await;
    assert_eq!(docker["agents"].as_array().unwrap().len(), 1);
    assert_eq!(docker["agents"][0]["agent_id"], "docker-1");
    let (_, local) = server
        .get("/api/v1/agents?platform=local", &server.admin)
        .await;
    assert_eq!(local["agents"].as_array().unwrap().len(), 1);
    assert_eq!(local["agents"][0]["agent_id"], "local-1");
    let (_, offline) = server
        .get(
            "/api/v1/agents?status=offline&region=test-region",
            &server.admin,
        )
        .await;
    assert_eq!(offline["agents"].as_array().unwrap().len(), 3);
    let (status, body) = server
        .get("/api/v1/agents?status=sleepy", &server.admin)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .get("/api/v1/agents?platform=bogus", &server.admin)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("platform: \"bogus\" is not one of kubernetes, docker, local")
        ),
        "an unknown filter value names the allowed ones, not an empty list"
    );

    let agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    let (status, one) = server.get("/api/v1/agents/local-1", &server.admin).await;
    assert_eq!(status, 200);
    assert_eq!(one["status"], "online");
    assert_eq!(one["active_sessions"], 0);
    assert_eq!(one["capacity"]["max_sessions"], 10);
    assert!(one["last_heartbeat"].is_string());
    let (_, online) = server
        .get("/api/v1/agents?status=online", &server.admin)
        .await;
    assert_eq!(online["agents"].as_array().unwrap().len(), 1);

    let alice = server.user("alice").await;
    assert_eq!(server.get("/api/v1/agents", &alice).await.0, 403);

    let mut agent = agent;
    assert_eq!(
        server
            .delete("/api/v1/agents/local-1", &server.admin)
            .await
            .0,
        204
    );
    let reason = agent.closed().await.unwrap();
    assert_eq!(
        reason.description.as_deref(),
        Some("agent deleted by an administrator")
    );
    assert_eq!(
        server.get("/api/v1/agents/local-1", &server.admin).await.0,
        404
    );
    assert_eq!(
        server
            .delete("/api/v1/agents/local-1", &server.admin)
            .await
            .0,
        404
    );
}

#[actix_web::test]
async fn the_agent_list_pages_by_name_searches_and_the_summary_counts_the_whole_fleet() {
    let server = common::start(&[]).await;
    for name in ["eu-b", "eu-c", "us-a", "us_b"] {
        server.register_agent(name, "local").await;
    }
    server.register_agent("k8s", "kubernetes").await;
    let token = server.register_agent("eu-a", "local").await;
    let _linked = ScriptedAgent::connect(&server, "eu-a", &token, vec![]).await;

    let names = |page: &serde_json::Value| -> Vec<String> {
        page["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut seen = Vec::new();
    let mut path = "/api/v1/agents?limit=4".to_owned();
    loop {
        let (status, page) = server.get(&path, &server.admin).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(names(&page));
        match page["next_after"].as_str() {
            Some(after) => path = format!("/api/v1/agents?limit=4&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, ["eu-a", "eu-b", "eu-c", "k8s", "us-a", "us_b"]);

    // A search matches part of the name; `_` and `%` are themselves, not wildcards.
    let (_, found) = server.get("/api/v1/agents?q=EU-", &server.admin).await;
    assert_eq!(names(&found), ["eu-a", "eu-b", "eu-c"]);
    let (_, found) = server.get("/api/v1/agents?q=_", &server.admin).await;
    assert_eq!(names(&found), ["us_b"]);

    for bad in [
        "limit=0",
        "limit=501",
        "limit=x",
        "platform=bogus",
        "status=sleepy",
        "sort=name",
    ] {
        let (status, body) = server
            .get(&format!("/api/v1/agents?{bad}"), &server.admin)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }

    let (status, summary) = server.get("/api/v1/agent-summary", &server.admin).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["agents"], 6);
    assert_eq!(summary["by_status"], json!({"offline": 5, "online": 1}));
    assert_eq!(summary["platforms"], json!(["kubernetes", "local"]));
    assert_eq!(summary["regions"], json!(["test-region"]));
    assert_eq!(summary["active_sessions"], 0);
    let alice = server.user("alice").await;
    let (status, _) = server.get("/api/v1/agent-summary", &alice).await;
    assert_eq!(status, 403);
}

/// Heartbeats are stamped in batches; a beat from a connection the store no longer records
/// (the agent reconnected since) stamps nothing.
#[actix_web::test]
async fn gathered_heartbeats_stamp_only_live_connections() {
    use diesel::prelude::*;
    use streamspace_control_plane::store::Query;
    use streamspace_control_plane::store::agents::RecordHeartbeats;
    use streamspace_control_plane::store::schema::agents;

    let server = common::start(&[]).await;
    let token = server.register_agent("live", "local").await;
    server.register_agent("gone", "local").await;
    let _link = ScriptedAgent::connect(&server, "live", &token, vec![]).await;
    let mut conn = server.db.connect();
    let read = |conn: &mut PgConnection,
                id: &str|
     -> (
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
        String,
    ) {
        agents::table
            .filter(agents::agent_id.eq(id))
            .select((
                agents::websocket_conn_id,
                agents::last_heartbeat,
                agents::status,
            ))
            .first(conn)
            .unwrap()
    };
    let (live_conn, before, _) = read(&mut conn, "live");
    std::thread::sleep(std::time::Duration::from_millis(20));
    RecordHeartbeats {
        beats: vec![
            ("live".into(), live_conn.unwrap()),
            ("gone".into(), "an-old-connection".into()),
        ],
    }
    .run(&mut conn)
    .unwrap();
    let (_, after, status) = read(&mut conn, "live");
    assert!(after > before, "{before:?} → {after:?}");
    assert_eq!(status, "online");
    let (_, never, status) = read(&mut conn, "gone");
    assert_eq!((never, status.as_str()), (None, "offline"));
}

#[actix_web::test]
async fn a_credential_for_agent_a_is_refused_as_agent_b() {
    let server = common::start(&[]).await;
    let token_a = server.register_agent("agent-a", "local").await;
    server.register_agent("agent-b", "local").await;
    match ScriptedAgent::open(&server, "agent-b", &token_a).await {
        Err(Refusal::Http(403)) => {}
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    match ScriptedAgent::open(&server, "agent-a", "ssa_not-a-real-token").await {
        Err(Refusal::Http(401)) => {}
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
    let failed = server.audit("agent_auth_failed", 2).await;
    let mut reasons: Vec<&str> = failed
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "credential belongs to another agent",
            "unknown or revoked credential"
        ]
    );
}

#[actix_web::test]
async fn a_hello_naming_another_agent_is_refused() {
    let server = common::start(&[]).await;
    let token = server.register_agent("agent-a", "local").await;
    server.register_agent("agent-b", "local").await;
    let mut agent = ScriptedAgent::open(&server, "agent-a", &token)
        .await
        .unwrap();
    agent.agent_id = "agent-b".into();
    agent.hello(vec![]).await;
    let reason = agent.closed().await.unwrap();
    assert_eq!(
        reason.description.as_deref(),
        Some("credential is for agent agent-a, hello says agent-b")
    );
}

#[actix_web::test]
async fn rotation_revokes_old_credentials_and_closes_their_link() {
    let server = common::start(&[]).await;
    let old = server.register_agent("agent-a", "local").await;
    let mut agent = ScriptedAgent::connect(&server, "agent-a", &old, vec![]).await;

    let (status, minted) = server
        .post(
            "/api/v1/agents/agent-a/credentials/rotate",
            &server.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    let new = minted["token"].as_str().unwrap().to_owned();
    assert_eq!(
        agent.closed().await.unwrap().description.as_deref(),
        Some("credential revoked")
    );
    assert!(matches!(
        ScriptedAgent::open(&server, "agent-a", &old).await,
        Err(Refusal::Http(401))
    ));
    let agent = ScriptedAgent::connect(&server, "agent-a", &new, vec![]).await;

    let (_, list) = server
        .get("/api/v1/agents/agent-a/credentials", &server.admin)
        .await;
    let credentials = list["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 2);
    assert!(
        credentials
            .iter()
            .all(|c| c.get("token").is_none() && c.get("token_hash").is_none())
    );
    assert!(credentials[1]["revoked_at"].is_string() && credentials[0]["revoked_at"].is_null());

    // A second credential, then revoking the one in use closes the link.
    let (status, extra) = server
        .post(
            "/api/v1/agents/agent-a/credentials",
            &server.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 201);
    let mut agent = agent;
    let in_use = credentials[0]["id"].as_str().unwrap();
    let (status, _) = server
        .delete(
            &format!("/api/v1/agents/agent-a/credentials/{in_use}"),
            &server.admin,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        agent.closed().await.unwrap().description.as_deref(),
        Some("credential revoked")
    );
    ScriptedAgent::connect(&server, "agent-a", extra["token"].as_str().unwrap(), vec![]).await;

    for action in [
        "credential_rotate",
        "credential_mint",
        "credential_revoke",
        "agent_connect",
        "agent_register",
    ] {
        server.audit(action, 1).await;
    }
}

#[actix_web::test]
async fn a_reconnect_replaces_the_old_link_without_its_cleanup_marking_the_agent_offline() {
    let server = common::start(&[]).await;
    let token = server.register_agent("agent-a", "local").await;
    let mut first = ScriptedAgent::connect(&server, "agent-a", &token, vec![]).await;
    let _second = ScriptedAgent::connect(&server, "agent-a", &token, vec![]).await;
    assert_eq!(
        first.closed().await.unwrap().description.as_deref(),
        Some("replaced by a newer connection of the same agent")
    );
    // The replaced link's cleanup has run by now; the agent must still be online.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, agent) = server.get("/api/v1/agents/agent-a", &server.admin).await;
    assert_eq!(agent["status"], "online");
}

#[actix_web::test]
async fn an_admin_can_ask_an_agent_what_it_runs_right_now() {
    let (server, mut agent, _token) = common::start_with_agent(&[]).await;
    let session = uuid::Uuid::from_u128(77);
    let answer = async {
        let (command_id, command) = agent.recv_command().await;
        assert_eq!(command, streamspace_protocol::Command::ListSessions);
        agent
            .send(&streamspace_protocol::AgentMessage::Ack { command_id })
            .await;
        let report = common::report(session, streamspace_protocol::AgentSessionState::Running);
        let result = json!({ "sessions": [report] });
        agent
            .send(&streamspace_protocol::AgentMessage::Completed { command_id, result })
            .await;
    };
    let ((status, body), ()) = futures_util::join!(
        server.get("/api/v1/agents/local-1/sessions", &server.admin),
        answer
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions"][0]["session_id"], session.to_string());
    assert_eq!(body["sessions"][0]["state"], "running");

    // An agent that is not online cannot be asked.
    server.register_agent("sleeper", "local").await;
    let (status, body) = server
        .get("/api/v1/agents/sleeper/sessions", &server.admin)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("agent_offline"))
    );
}

#[actix_web::test]
async fn a_credential_revoked_between_the_upgrade_and_the_hello_does_not_link() {
    let server = common::start(&[]).await;
    let token = server.register_agent("agent-a", "local").await;
    // The WebSocket was accepted with a valid credential…
    let mut agent = ScriptedAgent::open(&server, "agent-a", &token)
        .await
        .unwrap();
    // …which is revoked before the hello arrives.
    let (status, body) = server
        .post(
            "/api/v1/agents/agent-a/credentials/rotate",
            &server.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    agent.hello(vec![]).await;
    assert_eq!(
        agent.closed().await.unwrap().description.as_deref(),
        Some("credential revoked")
    );
    let (_, row) = server.get("/api/v1/agents/agent-a", &server.admin).await;
    assert_ne!(row["status"], "online");
}

#[actix_web::test]
async fn an_agents_credentials_page_newest_first() {
    let server = common::start(&[]).await;
    server.register_agent("agent-a", "local").await;
    let mut minted = Vec::new();
    for _ in 0..3 {
        let (status, body) = server
            .post(
                "/api/v1/agents/agent-a/credentials",
                &server.admin,
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        minted.push(body["id"].as_str().unwrap().to_owned());
    }
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = "/api/v1/agents/agent-a/credentials";
    let (status, first) = server.get(&format!("{path}?limit=2"), &server.admin).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&first), [minted[2].clone(), minted[1].clone()]);
    let cursor = first["next_before"].as_str().unwrap();
    let (_, second) = server
        .get(&format!("{path}?limit=2&before={cursor}"), &server.admin)
        .await;
    // The last one minted here, then the one registration made.
    assert_eq!(ids(&second)[0], minted[0]);
    assert_eq!(ids(&second).len(), 2);
    // A full page may have a next one; here it is empty, and says it is the last.
    let cursor = second["next_before"].as_str().unwrap();
    let (_, third) = server
        .get(&format!("{path}?limit=2&before={cursor}"), &server.admin)
        .await;
    assert!(ids(&third).is_empty());
    assert_eq!(third["next_before"], serde_json::Value::Null);
    let (status, _) = server
        .get(&format!("{path}?limit=501"), &server.admin)
        .await;
    assert_eq!(status, 400);
}

/// A fleet registered in bulk is analysed by the control plane within seconds, not at
/// autovacuum's next pass (turned off for the table here, so only the control plane can).
#[actix_web::test]
async fn a_fleet_registered_in_bulk_is_analysed_within_seconds() {
    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;
    #[derive(diesel::QueryableByName)]
    struct Pages {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        relpages: i32,
    }
    let server = common::start(&[]).await;
    let mut conn = server.db.connect();
    conn.batch_execute(
        "ALTER TABLE agents SET (autovacuum_enabled = false); ANALYZE agents; \
         INSERT INTO agents (agent_id, platform) \
         SELECT 'bulk-' || i, 'local' FROM generate_series(1, 3000) AS i",
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pages = diesel::sql_query("SELECT relpages FROM pg_class WHERE relname = 'agents'")
            .get_result::<Pages>(&mut conn)
            .unwrap()
            .relpages;
        if pages > 8 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agents still analysed as {pages} pages"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
