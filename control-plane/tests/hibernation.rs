//! Hibernate and wake, against the real control plane (real Postgres) and a scripted agent:
//! the workload goes and the home stays (`delete_session` keeping it), the state survives a
//! restart of either side without being judged lost, and waking sends the desktop's own
//! start again to the agent that keeps its home; a failed wake leaves it hibernated with the
//! reason; an idle desktop hibernates when its template says so.

use std::time::Duration;

use serde_json::{Value, json};
use streamspace_protocol::{AgentMessage, AgentSessionState, Command, SessionSpec};
use streamspace_testkit::control_plane::{
    self as common, ScriptedAgent, TestServer, agent_reaches, report, session_reaches,
};
use uuid::Uuid;

/// Asks for a desktop of `template` with or without a persistent home, has the agent run it;
/// returns its id and the spec the agent was sent.
async fn running(
    server: &TestServer,
    agent: &mut ScriptedAgent,
    template: &str,
    persistent: bool,
) -> (Uuid, SessionSpec) {
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            &server.admin,
            json!({"template": template, "persistent_home": persistent}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let spec = agent.run_created(id).await;
    session_reaches(server, id, "running").await;
    (id, spec)
}

/// Takes the next command, which must remove `id`'s workload (keeping its home or not), and
/// confirms it.
async fn removed(agent: &mut ScriptedAgent, id: Uuid, keep_home: bool) {
    let (command_id, command) = agent.recv_command().await;
    assert_eq!(
        command,
        Command::DeleteSession {
            session_id: id,
            keep_home
        }
    );
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: json!({}),
        })
        .await;
}

async fn removed_keeping_home(agent: &mut ScriptedAgent, id: Uuid) {
    removed(agent, id, true).await;
}

async fn post(server: &TestServer, token: &str, id: Uuid, action: &str) -> (u16, Value) {
    server
        .post(&format!("/api/v1/sessions/{id}/{action}"), token, json!({}))
        .await
}

/// The audit entry `action` recorded for session `id`.
async fn audited(server: &TestServer, action: &str, id: Uuid) -> Value {
    let entries = server.audit(action, 1).await;
    entries
        .into_iter()
        .find(|e| e["target_id"] == id.to_string())
        .unwrap_or_else(|| panic!("no {action} entry for {id}"))
}

#[actix_web::test]
async fn a_hibernated_desktop_keeps_its_home_across_restarts_and_wakes_where_it_lives() {
    let (server, mut agent, token) = common::start_with_agent(&[]).await;
    let (id, spec) = running(&server, &mut agent, "xterm", true).await;
    let home = spec.home_id.expect("a persistent home");

    // Refusals: nothing would stay of a desktop without a persistent home; only a hibernated
    // one wakes; others' desktops are not there.
    let (throwaway, _) = running(&server, &mut agent, "xterm", false).await;
    let (status, body) = post(&server, &server.admin, throwaway, "hibernate").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("no_persistent_home")),
        "{body}"
    );
    let (status, body) = post(&server, &server.admin, id, "wake").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_hibernated")),
        "{body}"
    );
    let bob = server.user("bob").await;
    assert_eq!(post(&server, &bob, id, "hibernate").await.0, 404);

    let (status, body) = post(&server, &server.admin, id, "hibernate").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (202, Some("hibernating")),
        "{body}"
    );
    removed_keeping_home(&mut agent, id).await;
    let asleep = session_reaches(&server, id, "hibernated").await;
    assert_eq!(asleep["state_reason"], Value::Null);
    let (status, body) = post(&server, &server.admin, id, "hibernate").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("not_running")),
        "{body}"
    );
    // Its home is still its own: a new desktop of the template cannot take it.
    let (_, listed) = server
        .get(&format!("/api/v1/homes/{home}"), &server.admin)
        .await;
    assert_eq!(listed["in_use_by"], id.to_string(), "{listed}");
    let (status, body) = server
        .post(
            "/api/v1/sessions",
            &server.admin,
            json!({"template": "xterm", "persistent_home": true}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("home_in_use")),
        "{body}"
    );
    // Viewers wait for it to wake.
    let (status, body) = server
        .post(
            &format!("/api/v1/sessions/{id}/viewer-token"),
            &server.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");

    // Both sides restart; the agent comes back holding nothing, as it should.
    let db = server.stop().await;
    agent.close().await;
    let server = common::start_on(db, &[]).await;
    agent_reaches(&server, "local-1", "warning").await;
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, vec![]).await;
    agent_reaches(&server, "local-1", "online").await;
    assert!(agent.quiet_for(Duration::from_millis(300)).await);
    let (_, still) = server
        .get(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    assert_eq!(still["state"], "hibernated", "{still}");

    // Waking sends its own start again, to the agent that keeps its home.
    let (status, body) = post(&server, &server.admin, id, "wake").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (202, Some("waking")),
        "{body}"
    );
    let (status, body) = post(&server, &server.admin, id, "wake").await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("waking")),
        "{body}"
    );
    let again = agent.run_created(id).await;
    assert_eq!(again, spec, "the same desktop, the same home");
    let awake = session_reaches(&server, id, "running").await;
    assert!(
        awake["last_input_at"].is_string(),
        "its idle clock starts again: {awake}"
    );
    assert!(agent.quiet_for(Duration::from_millis(200)).await);

    let entry = audited(&server, "session_hibernate", id).await;
    assert_eq!(entry["details"]["agent_id"], "local-1");
    audited(&server, "session_wake", id).await;
}

#[actix_web::test]
async fn a_wake_needs_the_agent_of_its_home_and_a_failed_one_leaves_it_asleep() {
    let (server, mut agent, token) = common::start_with_agent(&[]).await;
    let (id, _) = running(&server, &mut agent, "xterm", true).await;
    post(&server, &server.admin, id, "hibernate").await;
    removed_keeping_home(&mut agent, id).await;
    session_reaches(&server, id, "hibernated").await;

    // The agent away: nowhere else has its home.
    agent.close().await;
    agent_reaches(&server, "local-1", "warning").await;
    let (status, body) = post(&server, &server.admin, id, "wake").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("agent_unavailable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("local-1"),
        "{body}"
    );

    // Back, still holding a workload of it (say its removal was interrupted): that goes,
    // and the desktop stays asleep.
    let inventory = vec![report(id, AgentSessionState::Running)];
    let mut agent = ScriptedAgent::connect(&server, "local-1", &token, inventory).await;
    removed_keeping_home(&mut agent, id).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, still) = server
        .get(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    assert_eq!(still["state"], "hibernated", "{still}");

    // The agent cannot start it: asleep again, saying why; a later wake may work.
    let (status, _) = post(&server, &server.admin, id, "wake").await;
    assert_eq!(status, 202);
    let (command_id, _) = agent.recv_command().await;
    agent
        .send(&AgentMessage::Failed {
            command_id,
            error: "image not found".into(),
        })
        .await;
    let asleep = session_reaches(&server, id, "hibernated").await;
    assert_eq!(asleep["state_reason"], "could not wake: image not found");
    assert_eq!(post(&server, &server.admin, id, "wake").await.0, 202);
    agent.run_created(id).await;
    let awake = session_reaches(&server, id, "running").await;
    assert_eq!(awake["state_reason"], Value::Null);

    // A user it is shared with to watch cannot wake it; one with control can.
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    for (user, mode) in [("bob", "view"), ("carol", "control")] {
        let (status, _) = server
            .post(
                &format!("/api/v1/sessions/{id}/shares"),
                &server.admin,
                json!({"username": user, "mode": mode}),
            )
            .await;
        assert_eq!(status, 201);
    }
    assert_eq!(post(&server, &bob, id, "hibernate").await.0, 404);
    post(&server, &server.admin, id, "hibernate").await;
    removed_keeping_home(&mut agent, id).await;
    session_reaches(&server, id, "hibernated").await;
    assert_eq!(post(&server, &bob, id, "wake").await.0, 403);
    assert_eq!(post(&server, &carol, id, "wake").await.0, 202);
    agent.run_created(id).await;
    session_reaches(&server, id, "running").await;

    // Deleting a hibernated desktop ends it for good.
    post(&server, &server.admin, id, "hibernate").await;
    removed_keeping_home(&mut agent, id).await;
    session_reaches(&server, id, "hibernated").await;
    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    assert_eq!(status, 202);
    removed_keeping_home(&mut agent, id).await;
    session_reaches(&server, id, "terminated").await;
}

#[actix_web::test]
async fn an_idle_desktop_hibernates_when_its_template_says_so_and_still_ends_at_its_lifetime() {
    let (server, mut agent, _) =
        common::start_with_agent(&[("REPLICA_HEARTBEAT_INTERVAL", "200ms")]).await;
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "sleepy", "image": "xterm", "idle_timeout_seconds": 1,
                   "idle_action": "hibernate", "max_lifetime_seconds": 4}),
        )
        .await;
    assert_eq!(
        (status, body["idle_action"].as_str()),
        (201, Some("hibernate")),
        "{body}"
    );
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "bad", "image": "xterm", "idle_action": "nap"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Without a persistent home it cannot hibernate: it stops.
    let (throwaway, _) = running(&server, &mut agent, "sleepy", false).await;
    removed(&mut agent, throwaway, false).await;
    let stopped = session_reaches(&server, throwaway, "terminated").await;
    assert_eq!(
        stopped["state_reason"],
        "stopped after 1 second without input"
    );

    let (id, _) = running(&server, &mut agent, "sleepy", true).await;
    removed_keeping_home(&mut agent, id).await;
    let asleep = session_reaches(&server, id, "hibernated").await;
    assert_eq!(
        asleep["state_reason"],
        "hibernated after 1 second without input"
    );
    assert_eq!(asleep["idle_action"], "hibernate");
    let entry = audited(&server, "session_idle_hibernate", id).await;
    assert_eq!(entry["details"]["limit_seconds"], 1);

    // Asleep, its lifetime still runs out: it ends (its agent has nothing left to remove but
    // is asked, in case).
    removed_keeping_home(&mut agent, id).await;
    let ended = session_reaches(&server, id, "terminated").await;
    assert_eq!(
        ended["state_reason"],
        "reached its maximum lifetime of 4 seconds"
    );
}
