//! Faults survived: the database going away under load.

use streamspace_testkit::control_plane as common;

use common::{running_session, session_reaches};

#[actix_web::test]
async fn a_database_outage_under_load_gets_503s_and_everything_resumes_after_it() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let before = running_session(&server, &mut agent).await;

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
    running_session(&server, &mut agent).await;
    session_reaches(&server, before, "running").await;
}
