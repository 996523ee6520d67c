//! Retention: history past its cutoff is deleted in bounded batches; nothing in use is.

use streamspace_testkit::control_plane as common;

use chrono::Utc;
use common::{create_session, running_session, session_reaches};
use streamspace_control_plane::store::Query;
use streamspace_control_plane::store::retention::Prune;
use streamspace_protocol::AgentMessage;

#[actix_web::test]
async fn history_past_its_retention_goes_in_bounded_batches_and_nothing_in_use_does() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let kept = running_session(&server, &mut agent).await;
    let ended = running_session(&server, &mut agent).await;
    server
        .delete(&format!("/api/v1/sessions/{ended}"), &server.admin)
        .await;
    let (command_id, _) = agent.recv_command().await;
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: serde_json::json!({}),
        })
        .await;
    session_reaches(&server, ended, "terminated").await;
    // A create the agent never answers: its command is unfinished.
    let waiting = create_session(&server, &server.admin, "xterm").await;
    agent.recv_command().await;
    server.audit("session_create", 3).await;

    // Everything so far is "old": prune two rows per table per batch until done.
    let cutoff = Utc::now() + chrono::Duration::minutes(1);
    let mut conn = server.db.connect();
    let mut batches = 0;
    loop {
        let pruned = Prune {
            commands_before: cutoff,
            audit_before: cutoff,
            sessions_before: cutoff,
            batch: 2,
        }
        .run(&mut conn)
        .unwrap();
        assert!(
            pruned.commands <= 2 && pruned.audit <= 2 && pruned.sessions <= 2,
            "{pruned:?}"
        );
        batches += 1;
        if !pruned.full(2) {
            break;
        }
    }
    assert!(batches > 1, "the history took more than one batch");

    let (_, audit) = server.get("/api/v1/audit", &server.admin).await;
    // Only what the last call itself may have added since.
    assert!(audit["entries"].as_array().unwrap().len() <= 1, "{audit}");
    for (id, status) in [(kept, 200), (waiting, 200), (ended, 404)] {
        let (got, body) = server
            .get(&format!("/api/v1/sessions/{id}"), &server.admin)
            .await;
        assert_eq!(got, status, "{id}: {body}");
    }
    let commands = common::commands_of(&server, waiting);
    assert_eq!(commands.len(), 1, "an unfinished command is never pruned");
    assert!(common::commands_of(&server, kept).is_empty());
}
