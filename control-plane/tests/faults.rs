//! Faults survived: the database going away under load.

use streamspace_testkit::control_plane as common;

use common::{create_session, report, session_reaches};
use streamspace_protocol::{AgentMessage, AgentSessionState};

#[actix_web::test]
async fn a_database_outage_under_load_gets_503s_and_everything_resumes_after_it() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let before = create_session(&server, &server.admin, "xterm").await;
    let (command_id, _) = agent.recv_command().await;
    let result = serde_json::to_value(report(before, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed { command_id, result })
        .await;
    session_reaches(&server, before, "running").await;

    server.db.take_down();
    // Requests keep coming meanwhile, all at once: each is answered, as 503 with a reason.
    let reads = (0..4).map(|_| server.get("/api/v1/sessions", &server.admin));
    let writes = (0..4).map(|_| {
        server.post(
            "/api/v1/sessions",
            &server.admin,
            serde_json::json!({"template": "xterm"}),
        )
    });
    let (reads, writes) = futures_util::future::join(
        futures_util::future::join_all(reads),
        futures_util::future::join_all(writes),
    )
    .await;
    for (status, body) in reads.into_iter().chain(writes) {
        assert!(
            status == 503 && body["error"] == "database_unavailable",
            "{status} {body}"
        );
    }
    let (status, _) = server.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 503, "not ready without its database");

    server.db.restore();
    // Back: the same requests work, and the agent link carried on throughout.
    server
        .wait_for("/readyz", "", "ready again", |_| true)
        .await;
    let after = create_session(&server, &server.admin, "xterm").await;
    let (command_id, _) = agent.recv_command().await;
    let result = serde_json::to_value(report(after, AgentSessionState::Running)).unwrap();
    agent
        .send(&AgentMessage::Completed { command_id, result })
        .await;
    session_reaches(&server, after, "running").await;
    session_reaches(&server, before, "running").await;
}
