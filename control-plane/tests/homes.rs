//! Persistent homes through the real API: keyed by user and template, reused on the agent
//! that keeps them, one session at a time, listed and deleted through that agent.

use std::time::Duration;

use serde_json::{Value, json};
use streamspace_protocol::{AgentMessage, AgentSessionState, Command};
use streamspace_testkit::control_plane::{
    self as common, ScriptedAgent, TestServer, agent_reaches, report, session_reaches,
};
use uuid::Uuid;

/// Asks for a desktop of template `xterm`; returns the status and the body.
async fn request(server: &TestServer, token: &str, persistent: bool) -> (u16, Value) {
    server
        .post(
            "/api/v1/sessions",
            token,
            json!({"template": "xterm", "persistent_home": persistent}),
        )
        .await
}

/// Takes the `create_session` the agent was sent and reports it running; returns its home.
async fn run_created(server: &TestServer, agent: &mut ScriptedAgent, id: Uuid) -> Option<Uuid> {
    let spec = agent.run_created(id).await;
    session_reaches(server, id, "running").await;
    spec.home_id
}

async fn end(server: &TestServer, agent: &mut ScriptedAgent, id: Uuid, token: &str) {
    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{id}"), token)
        .await;
    assert_eq!(status, 202);
    let (command_id, command) = agent.recv_command().await;
    assert_eq!(
        command,
        Command::DeleteSession {
            session_id: id,
            keep_home: true
        }
    );
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: json!({}),
        })
        .await;
    session_reaches(server, id, "terminated").await;
}

fn id_of(body: &Value) -> Uuid {
    body["id"].as_str().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn a_users_home_follows_them_to_the_agent_that_keeps_it_one_session_at_a_time() {
    let server = common::start(&[]).await;
    server.template("xterm").await;
    let a = server.register_agent("agent-a", "local").await;
    let b = server.register_agent("agent-b", "local").await;
    let mut agent_a = ScriptedAgent::connect(&server, "agent-a", &a, vec![]).await;
    let mut agent_b = ScriptedAgent::connect(&server, "agent-b", &b, vec![]).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    let (status, first) = request(&server, &alice, true).await;
    assert_eq!((status, first["agent_id"].as_str()), (202, Some("agent-a")));
    let first = id_of(&first);
    let home = run_created(&server, &mut agent_a, first)
        .await
        .expect("a home id");

    let (_, homes) = server.get("/api/v1/homes", &alice).await;
    let listed = &homes["homes"][0];
    assert_eq!(homes["homes"].as_array().unwrap().len(), 1, "{homes}");
    assert_eq!(listed["id"], home.to_string());
    assert_eq!(listed["owner"], "alice");
    assert_eq!(listed["template"], "xterm");
    assert_eq!(listed["agent_id"], "agent-a");
    assert_eq!(listed["platform"], "local");
    assert_eq!(listed["state"], "ready");
    assert_eq!(listed["in_use_by"], first.to_string());
    let (_, session) = server
        .get(&format!("/api/v1/sessions/{first}"), &alice)
        .await;
    assert_eq!(session["home_id"], home.to_string());

    // One session at a time: a second desktop with that home is refused, one without is not.
    let (status, body) = request(&server, &alice, true).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("home_in_use")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&first.to_string())
    );
    let (status, body) = server
        .delete(&format!("/api/v1/homes/{home}"), &alice)
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("home_in_use")),
        "{body}"
    );

    // Load agent-a beyond agent-b: placement alone would now pick agent-b.
    end(&server, &mut agent_a, first, &alice).await;
    for on_a in [true, false, true] {
        let agent = if on_a { &mut agent_a } else { &mut agent_b };
        let (status, body) = request(&server, &bob, false).await;
        assert_eq!(status, 202);
        let (command_id, command) = agent.recv_command().await;
        assert!(matches!(command, Command::CreateSession(ref spec) if spec.home_id.is_none()));
        let id = id_of(&body);
        let result = serde_json::to_value(report(id, AgentSessionState::Running)).unwrap();
        agent
            .send(&AgentMessage::Completed { command_id, result })
            .await;
        session_reaches(&server, id, "running").await;
    }
    let (status, second) = request(&server, &alice, true).await;
    assert_eq!(
        (status, second["agent_id"].as_str()),
        (202, Some("agent-a"))
    );
    let second = id_of(&second);
    assert_eq!(run_created(&server, &mut agent_a, second).await, Some(home));
    end(&server, &mut agent_a, second, &alice).await;

    // Homes are private, like sessions.
    let (_, bobs) = server.get("/api/v1/homes", &bob).await;
    assert_eq!(bobs["homes"], json!([]));
    let path = format!("/api/v1/homes/{home}");
    assert_eq!(server.get(&path, &bob).await.0, 404);
    assert_eq!(server.delete(&path, &bob).await.0, 404);
    let (_, all) = server
        .get("/api/v1/homes?agent_id=agent-a", &server.admin)
        .await;
    assert_eq!(all["homes"].as_array().unwrap().len(), 1);

    // The home's agent gone: a persistent desktop waits for it rather than starting empty.
    agent_a.close().await;
    agent_reaches(&server, "agent-a", "warning").await;
    let (status, body) = request(&server, &alice, true).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("home_unavailable")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("agent-a"),
        "{body}"
    );
    let (status, body) = request(&server, &alice, false).await;
    assert_eq!((status, body["agent_id"].as_str()), (202, Some("agent-b")));
}

#[actix_web::test]
async fn deleting_a_home_goes_through_its_agent_and_a_failure_leaves_it_usable() {
    let server = common::start(&[]).await;
    server.template("xterm").await;
    let token = server.register_agent("agent-a", "local").await;
    let mut agent = ScriptedAgent::connect(&server, "agent-a", &token, vec![]).await;
    let alice = server.user("alice").await;
    let (_, session) = request(&server, &alice, true).await;
    let session = id_of(&session);
    let home = run_created(&server, &mut agent, session).await.unwrap();
    end(&server, &mut agent, session, &alice).await;
    let path = format!("/api/v1/homes/{home}");

    // The agent cannot remove it: the home stays, usable, and says why.
    let (status, body) = server.delete(&path, &server.admin).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (202, Some("deleting")),
        "{body}"
    );
    let (command_id, command) = agent.recv_command().await;
    assert_eq!(command, Command::DeleteHome { home_id: home });
    let (status, body) = request(&server, &alice, true).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("home_being_deleted")),
        "{body}"
    );
    agent
        .send(&AgentMessage::Failed {
            command_id,
            error: "cannot remove /var/lib/streamspace/homes: busy".into(),
        })
        .await;
    let kept = server
        .wait_for(&path, &alice, "the deletion reported failed", |h| {
            h["state"] == "ready"
        })
        .await;
    assert_eq!(
        kept["state_reason"],
        "deletion failed: cannot remove /var/lib/streamspace/homes: busy"
    );

    // The owner asks again; this time the agent confirms and the home is gone.
    let (status, _) = server.delete(&path, &alice).await;
    assert_eq!(status, 202);
    let (command_id, command) = agent.recv_command().await;
    assert_eq!(command, Command::DeleteHome { home_id: home });
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: json!({}),
        })
        .await;
    server
        .wait_for("/api/v1/homes", &alice, "the home gone", |h| {
            h["homes"] == json!([])
        })
        .await;
    assert_eq!(server.get(&path, &alice).await.0, 404);
    let audit = server.audit("home_delete", 2).await;
    assert_eq!(audit[0]["target_id"], home.to_string());

    // The next persistent desktop starts with a new, empty home.
    let (_, next) = request(&server, &alice, true).await;
    let next = id_of(&next);
    let new_home = run_created(&server, &mut agent, next).await.unwrap();
    assert_ne!(new_home, home);
    assert!(agent.quiet_for(Duration::from_millis(200)).await);
}

#[actix_web::test]
async fn homes_page_most_recently_used_first() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let alice = server.user("alice").await;
    let mut made = Vec::new();
    for template in ["one", "two", "three"] {
        server.template(template).await;
        let (status, body) = server
            .post("/api/v1/sessions", &alice, json!({"template": template}))
            .await;
        assert_eq!(status, 202, "{body}");
        let id = id_of(&body);
        made.push(run_created(&server, &mut agent, id).await.unwrap());
        end(&server, &mut agent, id, &alice).await;
    }
    let (status, first) = server.get("/api/v1/homes?limit=2", &alice).await;
    assert_eq!(status, 200);
    let ids = |page: &Value| -> Vec<Uuid> {
        page["homes"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect()
    };
    assert_eq!(ids(&first), [made[2], made[1]]);
    let cursor = first["next_before"].as_str().unwrap();
    let (_, second) = server
        .get(&format!("/api/v1/homes?limit=2&before={cursor}"), &alice)
        .await;
    assert_eq!(ids(&second), [made[0]]);
    assert_eq!(second["next_before"], Value::Null);
    let (status, body) = server.get("/api/v1/homes?limit=0", &alice).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}
