//! Command delivery across disconnects, timeouts, duplicates and control-plane restarts;
//! agent liveness and inventory reconciliation.

use streamspace_testkit::control_plane as common;

use std::time::Duration;

use common::{
    ScriptedAgent, agent_reaches, commands_of, create_session, report, running_session,
    session_reaches,
};
use streamspace_protocol::{AgentMessage, AgentSessionState, Command};

/// Fast liveness so the tests see warning and offline within a second or two.
const FAST: &[(&str, &str)] = &[
    ("AGENT_HEARTBEAT_INTERVAL", "200ms"),
    ("AGENT_TIMEOUT", "1s"),
];

#[actix_web::test]
async fn a_command_for_a_disconnected_agent_is_delivered_when_it_reconnects() {
    let (server, mut agent, token) = common::start_with_agent(&[]).await;
    let id = running_session(&server, &mut agent).await;
    agent.close().await;
    agent_reaches(&server, "local-1", "warning").await;

    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    assert_eq!(status, 202);
    let pending = commands_of(&server, id);
    assert_eq!(
        pending[1].status, "pending",
        "persisted before any agent could see it"
    );

    let running = vec![report(id, AgentSessionState::Running)];
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, running).await;
    let (command_id, command) = agent.recv_command().await;
    assert_eq!(command_id, pending[1].command_id);
    assert!(matches!(command, Command::DeleteSession { session_id, .. } if session_id == id));
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: serde_json::json!({}),
        })
        .await;
    session_reaches(&server, id, "terminated").await;
}

#[actix_web::test]
async fn an_unanswered_command_is_redelivered_with_the_same_id_after_a_reconnect() {
    let (server, mut agent, token) = common::start_with_agent(&[]).await;
    let id = create_session(&server, &server.admin, "xterm").await;
    let (first, _) = agent.recv_command().await;
    agent.send(&AgentMessage::Ack { command_id: first }).await;
    session_reaches(&server, id, "creating").await;
    agent.close().await;

    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    let (again, _) = agent.recv_command().await;
    assert_eq!(
        again, first,
        "the agent dedups by id, so the id must not change"
    );
    let result = serde_json::to_value(report(id, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed {
            command_id: again,
            result,
        })
        .await;
    session_reaches(&server, id, "running").await;
    common::commands_until(&server, id, "two deliveries recorded", |c| {
        c[0].attempts == 2
    })
    .await;
}

#[actix_web::test]
async fn duplicate_answers_change_nothing() {
    let (server, mut agent, _token) = common::start_with_agent(&[]).await;
    let id = running_session(&server, &mut agent).await;
    let before = commands_of(&server, id).remove(0);

    // A second completion saying failed, and a late ack, for the same command id.
    agent
        .send(&AgentMessage::Failed {
            command_id: before.command_id,
            error: "late".into(),
        })
        .await;
    agent
        .send(&AgentMessage::Ack {
            command_id: before.command_id,
        })
        .await;
    // A heartbeat after them: once it is processed, so are they.
    agent
        .send(&AgentMessage::Heartbeat { active_sessions: 1 })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let after = commands_of(&server, id).remove(0);
    assert_eq!(after.status, "completed");
    assert_eq!(after.completed_at, before.completed_at);
    assert_eq!(after.error, None);
    session_reaches(&server, id, "running").await;
}

#[actix_web::test]
async fn an_agent_cannot_answer_another_agents_command() {
    let server = common::start(&[]).await;
    server.template("xterm").await;
    let a = server.register_agent("agent-a", "local").await;
    let mut agent_a = ScriptedAgent::connect(&server, "agent-a", &a, vec![]).await;
    let id = create_session(&server, &server.admin, "xterm").await;
    let (command_id, _) = agent_a.recv_command().await;
    agent_a.close().await;
    agent_reaches(&server, "agent-a", "warning").await;

    let b = server.register_agent("agent-b", "local").await;
    let mut agent_b = ScriptedAgent::connect(&server, "agent-b", &b, vec![]).await;
    let failed = AgentMessage::Failed {
        command_id,
        error: "forged".into(),
    };
    agent_b.send(&failed).await;
    agent_b
        .send(&AgentMessage::SessionStatus {
            session_id: id,
            state: AgentSessionState::Failed,
            message: None,
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, session) = server
        .get(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    assert_eq!(session["state"], "pending");
    assert_eq!(commands_of(&server, id)[0].status, "sent");
}

#[actix_web::test]
async fn a_command_nobody_finishes_times_out_and_fails_its_session() {
    let server = common::start(&[("COMMAND_TIMEOUT", "1s")]).await;
    server.template("xterm").await;
    let token = server.register_agent("local-1", "local").await;
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    let id = create_session(&server, &server.admin, "xterm").await;
    let (command_id, _) = agent.recv_command().await;
    agent.send(&AgentMessage::Ack { command_id }).await;
    let failed = session_reaches(&server, id, "failed").await;
    assert!(
        failed["state_reason"]
            .as_str()
            .unwrap()
            .contains("COMMAND_TIMEOUT"),
        "{failed}"
    );
    let command = commands_of(&server, id).remove(0);
    assert_eq!(command.status, "timeout");
    // A completion after the deadline is a duplicate.
    let result = serde_json::to_value(report(id, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed { command_id, result })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(commands_of(&server, id)[0].status, "timeout");
}

#[actix_web::test]
async fn a_killed_agent_goes_warning_then_offline_and_its_sessions_degrade_until_it_returns() {
    let (server, mut agent, token) = common::start_with_agent(FAST).await;
    let kept = running_session(&server, &mut agent).await;
    let gone = running_session(&server, &mut agent).await;

    drop(agent); // the process dies: TCP closes with no WebSocket close frame
    agent_reaches(&server, "local-1", "warning").await;
    // Viewers can tell why the desktop does not answer before the agent is declared offline.
    let (_, seen) = server
        .get(&format!("/api/v1/sessions/{kept}"), &server.admin)
        .await;
    assert_eq!(
        (seen["state"].as_str(), seen["agent_status"].as_str()),
        (Some("running"), Some("warning"))
    );
    agent_reaches(&server, "local-1", "offline").await;
    let degraded = session_reaches(&server, kept, "degraded").await;
    assert_eq!(degraded["state_reason"], "agent local-1 is offline");
    session_reaches(&server, gone, "degraded").await;

    let inventory = vec![report(kept, AgentSessionState::Running)];
    let _agent = ScriptedAgent::connect(&server, "local-1", &token, inventory).await;
    agent_reaches(&server, "local-1", "online").await;
    session_reaches(&server, kept, "running").await;
    let lost = session_reaches(&server, gone, "lost").await;
    assert_eq!(lost["state_reason"], "the agent no longer has this session");
}

#[actix_web::test]
async fn a_silent_but_connected_agent_is_warned_then_dropped() {
    let server = common::start(FAST).await;
    let token = server.register_agent("local-1", "local").await;
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    // The test does not read, so the agent answers no pings: it is silent.
    agent_reaches(&server, "local-1", "warning").await;
    agent_reaches(&server, "local-1", "offline").await;
    let reason = agent.closed().await.unwrap();
    assert_eq!(reason.description.as_deref(), Some("no heartbeat for 1s"));
}

#[actix_web::test]
async fn heartbeats_keep_an_agent_online() {
    let server = common::start(&[
        ("AGENT_HEARTBEAT_INTERVAL", "400ms"),
        ("AGENT_TIMEOUT", "2s"),
    ])
    .await;
    let token = server.register_agent("local-1", "local").await;
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    // Heartbeats every 100 ms against a 600 ms lateness threshold: wide margins for a busy CI.
    for _ in 0..15 {
        agent
            .send(&AgentMessage::Heartbeat { active_sessions: 0 })
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, status) = server.get("/api/v1/agents/local-1", &server.admin).await;
    assert_eq!(status["status"], "online");
}

#[actix_web::test]
async fn a_control_plane_restart_loses_no_command() {
    let (server, mut agent, token) = common::start_with_agent(&[]).await;
    let id = create_session(&server, &server.admin, "xterm").await;
    let (command_id, _) = agent.recv_command().await;
    let db = server.stop().await;
    drop(agent);

    let server = common::start_on(db, &[]).await;
    // Disconnected by the restart, not yet offline (once the new process has claimed the
    // agents no live replica holds, which it does as it starts, racing the first request).
    agent_reaches(&server, "local-1", "warning").await;
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    let (again, _) = agent.recv_command().await;
    assert_eq!(again, command_id);
    let result = serde_json::to_value(report(id, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed { command_id, result })
        .await;
    session_reaches(&server, id, "running").await;
}

#[actix_web::test]
async fn sessions_an_agent_should_not_hold_are_deleted_when_it_reconnects() {
    let (server, mut agent, token) = common::start_with_agent(&[("COMMAND_TIMEOUT", "1s")]).await;
    let ended = running_session(&server, &mut agent).await;
    agent.close().await;
    agent_reaches(&server, "local-1", "warning").await;
    // Deleted while the agent is away, and the deletion times out unconfirmed.
    server
        .delete(&format!("/api/v1/sessions/{ended}"), &server.admin)
        .await;
    session_reaches(&server, ended, "failed").await;

    // The agent comes back still holding it, plus one nobody ever asked for.
    let stranger = uuid::Uuid::new_v4();
    let inventory = vec![
        report(ended, AgentSessionState::Running),
        report(stranger, AgentSessionState::Running),
    ];
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, inventory).await;
    let mut deleted = Vec::new();
    for _ in 0..2 {
        let (command_id, command) = agent.recv_command().await;
        let Command::DeleteSession {
            session_id,
            keep_home,
        } = command
        else {
            panic!("expected delete_session, got {command:?}");
        };
        assert_eq!(
            keep_home,
            session_id == stranger,
            "a home is kept for a session nobody knows (its data may matter), not for one that had none"
        );
        agent
            .send(&AgentMessage::Completed {
                command_id,
                result: serde_json::json!({}),
            })
            .await;
        deleted.push(session_id);
    }
    deleted.sort();
    let mut expected = vec![ended, stranger];
    expected.sort();
    assert_eq!(deleted, expected);
    session_reaches(&server, ended, "terminated").await;
}

#[actix_web::test]
async fn an_agent_holding_another_agents_session_cannot_end_it() {
    let (server, mut owner, _) = common::start_with_agent(&[]).await;
    let theirs = running_session(&server, &mut owner).await;
    let intruder_token = server.register_agent("local-2", "local").await;
    // local-2 claims to hold local-1's session: it is asked to remove its copy…
    let inventory = vec![report(theirs, AgentSessionState::Running)];
    let mut intruder = ScriptedAgent::connect(&server, "local-2", &intruder_token, inventory).await;
    let (command_id, command) = intruder.recv_command().await;
    assert!(
        matches!(command, Command::DeleteSession { session_id, .. } if session_id == theirs),
        "{command:?}"
    );
    intruder
        .send(&AgentMessage::Completed {
            command_id,
            result: serde_json::json!({}),
        })
        .await;
    // …but that deletion is not the session's: only local-1's own commands are tied to it,
    // so the answer cannot end it.
    let tied: Vec<String> = common::commands_of(&server, theirs)
        .into_iter()
        .map(|c| format!("{} {}", c.agent_id, c.command_type))
        .collect();
    assert_eq!(tied, ["local-1 create_session"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, session) = server
        .get(&format!("/api/v1/sessions/{theirs}"), &server.admin)
        .await;
    assert_eq!(
        (session["state"].as_str(), session["agent_id"].as_str()),
        (Some("running"), Some("local-1"))
    );
}

#[actix_web::test]
async fn sent_acked_and_completed_are_recorded_in_that_order_under_concurrency() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    // Ten creations at once (the scripted agent's capacity), each answered at once.
    let creations: Vec<_> = (0..10)
        .map(|_| create_session(&server, &server.admin, "xterm"))
        .collect();
    let answering = async {
        for _ in 0..10 {
            let (command_id, command) = agent.recv_command().await;
            let Command::CreateSession(spec) = command else {
                panic!("expected create_session, got {command:?}");
            };
            agent.send(&AgentMessage::Ack { command_id }).await;
            let result =
                serde_json::to_value(report(spec.session_id, AgentSessionState::Running)).unwrap();
            agent
                .send(&AgentMessage::Completed { command_id, result })
                .await;
        }
    };
    let (ids, ()) =
        futures_util::future::join(futures_util::future::join_all(creations), answering).await;
    for id in ids {
        let commands = common::commands_until(&server, id, "the command finished", |c| {
            c[0].completed_at.is_some() && c[0].attempts >= 1
        })
        .await;
        let c = &commands[0];
        let (sent, acked, completed) = (
            c.sent_at.expect("sent_at recorded"),
            c.acked_at.expect("acked_at recorded"),
            c.completed_at.unwrap(),
        );
        assert!(
            sent <= acked && acked <= completed,
            "{id}: sent {sent}, acked {acked}, completed {completed}"
        );
    }
}

#[actix_web::test]
async fn a_late_status_write_about_an_old_connection_cannot_take_a_connected_agent_offline() {
    use streamspace_control_plane::model::AgentStatus;
    use streamspace_control_plane::store::Query;
    use streamspace_control_plane::store::agents::SetAgentStatus;
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let kept = running_session(&server, &mut agent).await;
    // The judgement of a connection that has since been replaced lands late…
    let degraded = SetAgentStatus {
        agent_id: "local-1".into(),
        status: AgentStatus::Offline,
        conn_id: Some("a-connection-long-gone".into()),
    }
    .run(&mut server.db.connect())
    .unwrap();
    // …and changes nothing.
    assert_eq!(degraded, 0);
    let (_, row) = server.get("/api/v1/agents/local-1", &server.admin).await;
    assert_eq!(row["status"], "online");
    let (_, session) = server
        .get(&format!("/api/v1/sessions/{kept}"), &server.admin)
        .await;
    assert_eq!(session["state"], "running");
    // Heartbeats on the live connection keep it online.
    agent
        .send(&AgentMessage::Heartbeat { active_sessions: 1 })
        .await;
    agent_reaches(&server, "local-1", "online").await;
}
