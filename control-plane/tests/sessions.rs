//! Sessions through the real API, carried out by a scripted agent over a real WebSocket.

use streamspace_testkit::control_plane as common;

use common::{ScriptedAgent, commands_of, create_session, report, session_reaches};
use serde_json::json;
use streamspace_protocol::{AgentMessage, AgentSessionState, Command};

#[actix_web::test]
async fn create_session_is_persisted_delivered_acked_completed_and_running() {
    let (server, mut agent, _token) = common::start_with_agent(&[]).await;
    let alice = server.user("alice").await;

    let (status, session) = server
        .post(
            "/api/v1/sessions",
            &alice,
            json!({"template": "xterm", "resources": {"memory": "3Gi"}}),
        )
        .await;
    assert_eq!(status, 202, "{session}");
    assert_eq!(session["agent_id"], "local-1");
    assert_eq!(session["platform"], "local");
    assert_eq!(session["region"], "test-region");
    assert_eq!(session["owner"], "alice");
    assert_eq!(session["resources"], json!({"cpu": "1", "memory": "3Gi"}));
    let id: uuid::Uuid = session["id"].as_str().unwrap().parse().unwrap();
    // Recorded with the session, in its transaction: there as soon as the answer is.
    let (_, audit) = server
        .get("/api/v1/audit?action=session_create", &server.admin)
        .await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["target_id"], id.to_string(), "{audit}");
    assert_eq!(entry["actor_username"], "alice");
    assert_eq!(
        entry["details"],
        json!({"template": "xterm", "agent_id": "local-1"})
    );

    let (command_id, command) = agent.recv_command().await;
    let Command::CreateSession(spec) = command else {
        panic!("expected create_session, got {command:?}");
    };
    assert_eq!(
        (
            spec.session_id,
            spec.user.as_str(),
            spec.template.name.as_str()
        ),
        (id, "alice", "xterm")
    );
    let stored = commands_of(&server, id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].command_id, command_id);
    assert_eq!(stored[0].command_type, "create_session");

    agent.send(&AgentMessage::Ack { command_id }).await;
    session_reaches(&server, id, "creating").await;
    let result = serde_json::to_value(report(id, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: result.clone(),
        })
        .await;
    let running = session_reaches(&server, id, "running").await;
    assert!(running["started_at"].is_string());

    let stored =
        &common::commands_until(&server, id, "one delivery recorded", |c| c[0].attempts >= 1).await
            [0];
    assert_eq!(stored.status, "completed");
    assert_eq!(stored.result.as_ref(), Some(&result));
    assert!(stored.sent_at.is_some() && stored.acked_at.is_some() && stored.completed_at.is_some());
    assert_eq!(stored.attempts, 1);

    // The latency is observed once the command's actor has the store's answer.
    let metrics = server
        .wait_for("/metrics", &server.admin, "command latency observed", |m| {
            m.as_str().is_some_and(|m| {
                m.contains("streamspace_command_duration_seconds_count{type=\"create_session\"} 1")
            })
        })
        .await;
    let metrics = metrics.as_str().unwrap().to_owned();
    for line in [
        "streamspace_sessions{state=\"running\"} 1",
        "streamspace_agents{status=\"online\"} 1",
        "streamspace_commands{type=\"create_session\",status=\"completed\"} 1",
        "streamspace_websocket_connections{kind=\"agent\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

#[actix_web::test]
async fn a_user_cannot_read_delete_or_list_another_users_session() {
    let server = common::start(&[]).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    let _agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let id = create_session(&server, &alice, "xterm").await;

    let path = format!("/api/v1/sessions/{id}");
    let (status, body) = server.get(&path, &bob).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    assert_eq!(server.delete(&path, &bob).await.0, 404);
    let (_, list) = server.get("/api/v1/sessions", &bob).await;
    assert_eq!(list["sessions"], json!([]));

    assert_eq!(server.get(&path, &alice).await.0, 200);
    let (_, list) = server.get("/api/v1/sessions", &alice).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    let (_, all) = server
        .get(
            "/api/v1/sessions?state=pending&agent_id=local-1",
            &server.admin,
        )
        .await;
    assert_eq!(all["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(server.get(&path, &server.admin).await.0, 200);
}

#[actix_web::test]
async fn no_matching_agent_is_a_503_naming_what_was_asked_for() {
    let server = common::start(&[]).await;
    server.template("xterm").await;
    let alice = server.user("alice").await;
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            &alice,
            json!({"template": "xterm", "platform": "kubernetes", "region": "mars"}),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(
        (body["error"].as_str(), body["message"].as_str()),
        (
            Some("no_agent_available"),
            Some("no online agent with free capacity for platform kubernetes in region mars")
        )
    );
    let (status, body) = server
        .post("/api/v1/sessions", &alice, json!({"template": "nope"}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unknown_template"))
    );
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            &alice,
            json!({"template": "xterm", "resources": {"cpu": "0"}}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[actix_web::test]
async fn deleting_a_session_asks_its_agent_and_ends_terminated() {
    let (server, mut agent, _token) = common::start_with_agent(&[]).await;
    let alice = server.user("alice").await;
    let id = create_session(&server, &alice, "xterm").await;
    let (create, _) = agent.recv_command().await;
    let running = serde_json::to_value(report(id, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed {
            command_id: create,
            result: running,
        })
        .await;
    session_reaches(&server, id, "running").await;

    let (status, body) = server
        .delete(&format!("/api/v1/sessions/{id}"), &alice)
        .await;
    assert_eq!((status, body["state"].as_str()), (202, Some("terminating")));
    let entries = server.audit("session_delete", 1).await;
    assert_eq!(
        (
            entries[0]["target_id"].as_str(),
            entries[0]["details"]["state"].as_str()
        ),
        (Some(id.to_string().as_str()), Some("terminating"))
    );
    let (delete, command) = agent.recv_command().await;
    assert_eq!(
        command,
        Command::DeleteSession {
            session_id: id,
            keep_home: false
        }
    );
    agent
        .send(&AgentMessage::Completed {
            command_id: delete,
            result: json!({}),
        })
        .await;
    let ended = session_reaches(&server, id, "terminated").await;
    assert!(ended["terminated_at"].is_string());
    // Deleting it again, now that it ended, removes it from the list.
    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{id}"), &alice)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        server
            .get(&format!("/api/v1/sessions/{id}"), &alice)
            .await
            .0,
        404
    );
    let entries = server.audit("session_remove", 1).await;
    assert_eq!(entries[0]["details"]["state"].as_str(), Some("terminated"));
}

#[actix_web::test]
async fn admins_filter_sessions_by_user_platform_and_state_and_page_through_them() {
    let (server, _agent, _token) = common::start_with_agent(&[]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut alices = Vec::new();
    for _ in 0..5 {
        alices.push(create_session(&server, &alice, "xterm").await);
    }
    create_session(&server, &bob, "xterm").await;

    let mut seen = Vec::new();
    let mut path = "/api/v1/sessions?user=alice&platform=local&state=pending&limit=2".to_owned();
    loop {
        let (status, page) = server.get(&path, &server.admin).await;
        assert_eq!(status, 200, "{page}");
        let sessions = page["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 2);
        seen.extend(
            sessions
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        match page["next_before"].as_str() {
            Some(before) => {
                path = format!(
                    "/api/v1/sessions?user=alice&platform=local&state=pending&limit=2&before={before}"
                )
            }
            None => break,
        }
    }
    let mut expected: Vec<String> = alices.iter().rev().map(|id| id.to_string()).collect();
    expected.dedup();
    assert_eq!(seen, expected, "alice's five, newest first, each once");
    // A user's own list ignores the admin filters.
    let (_, own) = server.get("/api/v1/sessions?user=alice", &bob).await;
    assert_eq!(own["sessions"].as_array().unwrap().len(), 1);
    let (status, body) = server
        .get("/api/v1/sessions?platform=mainframe", &server.admin)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[actix_web::test]
async fn a_failed_creation_fails_the_session_with_the_agents_reason() {
    let (server, mut agent, _token) = common::start_with_agent(&[]).await;
    let id = create_session(&server, &server.admin, "xterm").await;
    let (command_id, _) = agent.recv_command().await;
    agent
        .send(&AgentMessage::Failed {
            command_id,
            error: "Xvnc: no free display".into(),
        })
        .await;
    let failed = session_reaches(&server, id, "failed").await;
    assert_eq!(failed["state_reason"], "Xvnc: no free display");
    assert_eq!(
        commands_of(&server, id)[0].error.as_deref(),
        Some("Xvnc: no free display")
    );
}

#[actix_web::test]
async fn sessions_go_to_the_least_loaded_agent() {
    let server = common::start(&[]).await;
    server.template("xterm").await;
    let a = server.register_agent("agent-a", "local").await;
    let b = server.register_agent("agent-b", "local").await;
    let _a = ScriptedAgent::connect(&server, "agent-a", &a, vec![]).await;
    let _b = ScriptedAgent::connect(&server, "agent-b", &b, vec![]).await;
    let mut placed = Vec::new();
    for _ in 0..4 {
        let (_, body) = server
            .post(
                "/api/v1/sessions",
                &server.admin,
                json!({"template": "xterm", "persistent_home": false}),
            )
            .await;
        placed.push(body["agent_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(placed, ["agent-a", "agent-b", "agent-a", "agent-b"]);
}

/// Placements lock only the agent they choose; at once, many of them still never give an
/// agent more than its capacity, and refuse exactly the rest.
#[actix_web::test]
async fn concurrent_creations_fill_every_agent_to_its_capacity_and_not_beyond() {
    let server = common::start(&[]).await;
    server.template("xterm").await;
    let mut agents = Vec::new();
    for name in ["agent-a", "agent-b"] {
        let token = server.register_agent(name, "local").await;
        // A scripted agent announces room for 10 sessions.
        agents.push(ScriptedAgent::connect(&server, name, &token, vec![]).await);
    }
    let creations = (0..30).map(|_| {
        server.post(
            "/api/v1/sessions",
            &server.admin,
            json!({"template": "xterm", "persistent_home": false}),
        )
    });
    let answers = futures_util::future::join_all(creations).await;
    let accepted = answers.iter().filter(|(status, _)| *status == 202).count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 202)
        .collect();
    assert_eq!(accepted, 20, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|(status, body)| *status == 503 && body["error"] == "no_agent_available"),
        "{refused:?}"
    );
    let (_, list) = server.get("/api/v1/agents", &server.admin).await;
    let active: Vec<_> = list["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["active_sessions"].as_i64().unwrap())
        .collect();
    assert_eq!(active, [10, 10], "{list}");
}

#[actix_web::test]
async fn a_template_runs_only_on_the_platforms_it_names() {
    let (server, _agent, _token) = common::start_with_agent(&[]).await;
    let (status, template) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "xfce", "image": "streamspace/desktop:1", "platforms": ["kubernetes", "kubernetes"]}),
        )
        .await;
    assert_eq!(status, 201, "{template}");
    assert_eq!(template["platforms"], json!(["kubernetes"]));
    // Only a local agent is online: nothing can run it, and asking for local is a mistake.
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            &server.admin,
            json!({"template": "xfce"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["message"],
        "no online agent with free capacity for platform kubernetes"
    );
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            &server.admin,
            json!({"template": "xfce", "platform": "local"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str(), body["message"].as_str()),
        (
            400,
            Some("platform_not_supported"),
            Some("platform: template xfce runs on kubernetes, not local")
        )
    );
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "odd", "image": "x", "platforms": ["mainframe"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("platforms: "));
}
