//! Retention: history past its cutoff is deleted in bounded batches; nothing in use is; old
//! recordings go with their files.

use streamspace_testkit::control_plane as common;

use chrono::Utc;
use common::{create_session, running_session, session_reaches};
use diesel::connection::SimpleConnection;
use streamspace_control_plane::actors::pruner::remove_recording_files;
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
            recordings_before: cutoff,
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

#[actix_web::test]
async fn recordings_past_their_retention_go_with_their_files_and_recent_ones_stay() {
    let server = common::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut conn = server.db.connect();
    // Ended two days ago; begun two days ago and never ended (its replica crashed); begun two
    // days ago and ended just now (a long session): only the last is within a day.
    let rows = [
        (
            "old.rfb",
            "now() - interval '2 days'",
            "now() - interval '2 days'",
        ),
        ("crashed.rfb", "now() - interval '2 days'", "NULL"),
        ("long.rfb", "now() - interval '2 days'", "now()"),
    ];
    for (file, started, ended) in rows {
        std::fs::write(dir.path().join(file), b"STREAMSPACE-RFB-RECORDING 1\n").unwrap();
        conn.batch_execute(&format!(
            "INSERT INTO recordings (id, username, template, file, started_at, ended_at) \
             VALUES (gen_random_uuid(), 'alice', 'xterm', '{file}', {started}, {ended})"
        ))
        .unwrap();
    }
    let long_ago = Utc::now() - chrono::Duration::days(30);
    let pruned = Prune {
        commands_before: long_ago,
        audit_before: long_ago,
        sessions_before: long_ago,
        recordings_before: Utc::now() - chrono::Duration::days(1),
        batch: 10,
    }
    .run(&mut conn)
    .unwrap();
    let mut files = pruned.recording_files.clone();
    files.sort();
    assert_eq!(files, ["crashed.rfb", "old.rfb"]);
    assert_eq!(remove_recording_files(dir.path(), &files).await, 2);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["long.rfb"]);
    // Already gone (another replica pruned the shared directory first): nothing to do.
    assert_eq!(remove_recording_files(dir.path(), &files).await, 0);
    let (_, listed) = server.get("/api/v1/recordings", &server.admin).await;
    let listed: Vec<&str> = listed["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
}
