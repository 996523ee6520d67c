//! Templates' limits on their desktops, against the real control plane (real Postgres) and a
//! scripted agent: a desktop is stopped after its idle timeout without viewer input (input
//! through the viewer or "I'm still here" keeps it), or at its maximum lifetime whatever
//! happens, with the reason on the session and in the audit log.

use std::time::Duration;

use serde_json::{Value, json};
use streamspace_protocol::{AgentMessage, Command, Frame};
use streamspace_testkit::control_plane::{self as common, ScriptedAgent, TestServer};
use streamspace_testkit::rfb::ViewerStream;
use uuid::Uuid;

/// The sweep runs every replica heartbeat.
const FAST: &[(&str, &str)] = &[("REPLICA_HEARTBEAT_INTERVAL", "200ms")];

async fn template(server: &TestServer, body: Value) -> (u16, Value) {
    server.post("/api/v1/templates", &server.admin, body).await
}

/// The agent is told to delete `id` (within `within`); it does, and the session ends with
/// its reason.
async fn stopped(server: &TestServer, agent: &mut ScriptedAgent, id: Uuid) -> Value {
    let (command_id, command) = agent.recv_command().await;
    assert!(
        matches!(command, Command::DeleteSession { session_id, .. } if session_id == id),
        "{command:?}"
    );
    agent.send(&AgentMessage::Ack { command_id }).await;
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: json!({}),
        })
        .await;
    common::session_reaches(server, id, "terminated").await
}

#[actix_web::test]
async fn limits_are_checked_copied_to_each_session_and_can_be_cleared() {
    let server = common::start(&[]).await;
    for bad in [json!(0), json!(-5), json!("10"), json!(1.5)] {
        let (status, body) = template(
            &server,
            json!({"name": "x", "image": "xterm", "idle_timeout_seconds": bad}),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, made) = template(
        &server,
        json!({"name": "x", "image": "xterm", "idle_timeout_seconds": 1800.0, "max_lifetime_seconds": 28800}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (
            made["idle_timeout_seconds"].as_i64(),
            made["max_lifetime_seconds"].as_i64()
        ),
        (Some(1800), Some(28800))
    );
    let (status, cleared) = server
        .call(
            "PUT",
            "/api/v1/templates/x",
            Some(&server.admin),
            Some(json!({"name": "x", "image": "xterm", "idle_timeout_seconds": null})),
        )
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(
        (
            &cleared["idle_timeout_seconds"],
            &cleared["max_lifetime_seconds"]
        ),
        (&Value::Null, &Value::Null)
    );
}

#[actix_web::test]
async fn a_desktop_without_input_for_its_idle_timeout_is_stopped_and_input_keeps_it() {
    let (server, mut agent, _) = common::start_with_agent(FAST).await;
    let (status, body) = template(
        &server,
        json!({"name": "idle", "image": "xterm", "idle_timeout_seconds": 2}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = common::running_session_of(&server, &mut agent, "idle").await;
    let (_, session) = server
        .get(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    assert_eq!(session["idle_timeout_seconds"], 2);

    // Keys through the viewer for twice the timeout, then "I'm still here" as long again:
    // nothing is sent to stop it.
    let url = server.viewer_url(&server.admin, id).await;
    let mut viewer = ViewerStream::open(&url).await.unwrap();
    agent.accept_stream().await;
    viewer.write(b"RFB 003.008\n\x01\x01").await.unwrap();
    for _ in 0..8 {
        viewer.write(&[4, 1, 0, 0, 0, 0, 0, b'a']).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The agent takes what the viewer sent (78 bytes), then hears it leave.
    let mut relayed = 0;
    while relayed < 14 + 8 * 8 {
        if let Ok(Frame::Data { payload, .. }) = Frame::decode(&agent.recv_binary().await) {
            relayed += payload.len();
        }
    }
    viewer.close().await;
    let (_, command) = agent.recv_command().await;
    assert!(
        matches!(command, Command::VncDisconnect { .. }),
        "{command:?}"
    );
    let activity = format!("/api/v1/sessions/{id}/activity");
    for _ in 0..8 {
        let (status, body) = server.post(&activity, &server.admin, json!({})).await;
        assert_eq!(status, 204, "{body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        agent.quiet_for(Duration::from_millis(100)).await,
        "still running"
    );

    // A guest who may only watch cannot keep it alive.
    let bob = server.user("bob").await;
    let (status, _) = server
        .post(
            &format!("/api/v1/sessions/{id}/shares"),
            &server.admin,
            json!({"username": "bob", "mode": "view"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(server.post(&activity, &bob, json!({})).await.0, 403);

    // Then nothing: it is stopped, and says why.
    let ended = stopped(&server, &mut agent, id).await;
    assert_eq!(
        ended["state_reason"],
        "stopped after 2 seconds without input"
    );
    let audit = server.audit("session_idle_stop", 1).await;
    assert_eq!(audit[0]["target_id"], id.to_string());
    assert_eq!(
        server.post(&activity, &server.admin, json!({})).await.0,
        409
    );
}

#[actix_web::test]
async fn a_desktop_is_stopped_at_its_maximum_lifetime_whatever_its_input() {
    let (server, mut agent, _) = common::start_with_agent(FAST).await;
    let (status, body) = template(
        &server,
        json!({"name": "short", "image": "xterm", "max_lifetime_seconds": 2, "idle_timeout_seconds": 3600}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = common::running_session_of(&server, &mut agent, "short").await;
    let activity = format!("/api/v1/sessions/{id}/activity");
    let keep = async {
        loop {
            let _ = server.post(&activity, &server.admin, json!({})).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let ended = tokio::select! {
        ended = stopped(&server, &mut agent, id) => ended,
        () = keep => unreachable!(),
    };
    assert_eq!(
        ended["state_reason"],
        "reached its maximum lifetime of 2 seconds"
    );
    let audit = server.audit("session_lifetime_stop", 1).await;
    assert_eq!(audit[0]["details"]["limit_seconds"], 2);
}
