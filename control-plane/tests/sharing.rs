//! Sharing a desktop, against the real control plane (real Postgres) with a scripted agent
//! that sees exactly which viewer bytes reach the session: shares and their refusals, "Shared
//! with me", a view-only guest whose input the control plane drops, who is connected, a mode
//! change and a revocation that end the guest's stream at once, and the audit of each.

use std::time::Duration;

use serde_json::{Value, json};
use streamspace_protocol::{AgentMessage, Command, Frame, StreamId};
use streamspace_testkit::control_plane::{self as common, ScriptedAgent, TestServer};
use streamspace_testkit::rfb::ViewerStream;
use uuid::Uuid;

fn key(down: bool) -> Vec<u8> {
    vec![4, u8::from(down), 0, 0, 0, 0, 0, b'a']
}

fn pointer(x: u16, y: u16) -> Vec<u8> {
    let mut m = vec![5, 1];
    m.extend(x.to_be_bytes());
    m.extend(y.to_be_bytes());
    m
}

fn cut_text(text: &[u8]) -> Vec<u8> {
    let mut m = vec![6, 0, 0, 0];
    m.extend(u32::try_from(text.len()).unwrap().to_be_bytes());
    m.extend(text);
    m
}

const UPDATE_REQUEST: [u8; 10] = [3, 1, 0, 0, 0, 0, 3, 32, 2, 88];

async fn user_id(server: &TestServer, token: &str) -> String {
    let (status, me) = server.get("/api/v1/auth/me", token).await;
    assert_eq!(status, 200, "{me}");
    me["id"].as_str().unwrap().to_owned()
}

async fn share(
    server: &TestServer,
    owner: &str,
    id: Uuid,
    username: &str,
    mode: &str,
) -> (u16, Value) {
    server
        .post(
            &format!("/api/v1/sessions/{id}/shares"),
            owner,
            json!({"username": username, "mode": mode}),
        )
        .await
}

/// Opens `token`'s viewer of `id` and has the agent accept the stream.
async fn open_viewer(
    server: &TestServer,
    agent: &mut ScriptedAgent,
    token: &str,
    id: Uuid,
) -> (ViewerStream, StreamId) {
    let url = server.viewer_url(token, id).await;
    let viewer = ViewerStream::open(&url).await.unwrap();
    let stream_id = agent.accept_stream().await;
    (viewer, stream_id)
}

/// The viewer bytes the agent receives on `stream` until it has `n` of them.
async fn agent_reads(agent: &mut ScriptedAgent, stream: StreamId, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let frame = agent.recv_binary().await;
        if let Ok(Frame::Data { stream_id, payload }) = Frame::decode(&frame) {
            assert_eq!(stream_id, stream);
            got.extend_from_slice(payload);
        }
    }
    got
}

#[actix_web::test]
async fn a_view_only_guest_watches_but_their_input_never_reaches_the_desktop_until_revoked() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let id = common::running_session(&server, &mut agent).await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let bob_id = user_id(&server, &bob).await;
    let session = format!("/api/v1/sessions/{id}");

    // Not shared yet: bob cannot see it, exactly as if it did not exist.
    assert_eq!(server.get(&session, &bob).await.0, 404);
    let (status, page) = server.get("/api/v1/shared-sessions", &bob).await;
    assert_eq!(
        (status, page["sessions"].as_array().unwrap().len()),
        (200, 0)
    );

    // Refusals: only the owner (or an admin) shares, with a real user, not themself, in a
    // known mode.
    assert_eq!(share(&server, &carol, id, "bob", "view").await.0, 404);
    let (status, body) = share(&server, &server.admin, id, "nobody", "view").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unknown_user"))
    );
    let (status, body) = share(&server, &server.admin, id, "admin", "view").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = share(&server, &server.admin, id, "bob", "drive").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("mode:"),
        "{body}"
    );

    let (status, shared) = share(&server, &server.admin, id, "bob", "view").await;
    assert_eq!(status, 201, "{shared}");
    assert_eq!(
        (shared["username"].as_str(), shared["mode"].as_str()),
        (Some("bob"), Some("view"))
    );
    assert_eq!(
        share(&server, &server.admin, id, "bob", "view").await.0,
        200
    );
    let (_, list) = server
        .get(&format!("{session}/shares"), &server.admin)
        .await;
    assert_eq!(list["shares"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(server.get(&format!("{session}/shares"), &bob).await.0, 404);

    // Bob finds it under "Shared with me", may read it, and not delete it.
    let (_, page) = server.get("/api/v1/shared-sessions", &bob).await;
    let listed = &page["sessions"][0];
    assert_eq!(
        (
            listed["id"].as_str(),
            listed["owner"].as_str(),
            listed["mode"].as_str()
        ),
        (Some(id.to_string().as_str()), Some("admin"), Some("view")),
        "{page}"
    );
    assert_eq!(server.get(&session, &bob).await.0, 200);
    assert_eq!(server.delete(&session, &bob).await.0, 404);
    let (status, token) = server
        .post(&format!("{session}/viewer-token"), &bob, json!({}))
        .await;
    assert_eq!((status, token["mode"].as_str()), (200, Some("view")));

    // His viewer asks not to share the desktop, presses a key, moves the pointer, pastes and
    // asks for an update: the agent gets the handshake (shared forced on) and the request.
    let (mut viewer, stream) = open_viewer(&server, &mut agent, &bob, id).await;
    let mut sent = b"RFB 003.008\n\x01\x00".to_vec();
    for message in [
        key(true),
        pointer(400, 300),
        cut_text(b"rm -rf ~"),
        key(false),
    ] {
        sent.extend(message);
    }
    sent.extend(UPDATE_REQUEST);
    viewer.write(&sent).await.unwrap();
    let mut expected = b"RFB 003.008\n\x01\x01".to_vec();
    expected.extend(UPDATE_REQUEST);
    assert_eq!(
        agent_reads(&mut agent, stream, expected.len()).await,
        expected
    );
    assert!(
        agent.quiet_for(Duration::from_millis(300)).await,
        "nothing more passed"
    );

    // The owner sees him connected, read-only; he does not see the list.
    let viewers = server
        .wait_for(
            &format!("{session}/viewers"),
            &server.admin,
            "bob connected",
            |v| v["viewers"].as_array().is_some_and(|a| a.len() == 1),
        )
        .await;
    assert_eq!(
        (
            viewers["viewers"][0]["username"].as_str(),
            viewers["viewers"][0]["mode"].as_str()
        ),
        (Some("bob"), Some("view"))
    );
    assert_eq!(server.get(&format!("{session}/viewers"), &bob).await.0, 404);

    // Revoked: his viewer closes at once, the agent is told, and the session is hidden again.
    let (status, _) = server
        .delete(&format!("{session}/shares/{bob_id}"), &server.admin)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        viewer
            .closed_within(Duration::from_secs(5))
            .await
            .as_deref(),
        Some("the owner changed or stopped sharing this desktop with you")
    );
    let (_, command) = agent.recv_command().await;
    assert!(matches!(command, Command::VncDisconnect { stream_id, .. } if stream_id == stream));
    assert_eq!(server.get(&session, &bob).await.0, 404);
    assert_eq!(
        server
            .post(&format!("{session}/viewer-token"), &bob, json!({}))
            .await
            .0,
        404
    );
    assert_eq!(
        server
            .delete(&format!("{session}/shares/{bob_id}"), &server.admin)
            .await
            .0,
        404
    );
    server
        .wait_for(
            &format!("{session}/viewers"),
            &server.admin,
            "no viewer",
            |v| v["viewers"].as_array().is_some_and(|a| a.is_empty()),
        )
        .await;

    // Audited: the share, his connection (view-only, with what was dropped) and the revocation.
    let shares = server.audit("session_share", 2).await;
    assert_eq!(shares[0]["details"]["username"], "bob");
    let revoked = server.audit("session_share_revoke", 1).await;
    assert_eq!(revoked[0]["details"]["mode"], "view");
    let left = server.audit("vnc_disconnect", 1).await;
    assert_eq!(left[0]["details"]["mode"], "view");
    assert_eq!(left[0]["details"]["input_dropped"], 4);
    let joined = server.audit("vnc_connect", 1).await;
    assert_eq!(joined[0]["actor_username"], "bob");
}

#[actix_web::test]
async fn a_guest_with_control_is_passed_everything_and_a_change_of_mode_ends_their_stream() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let id = common::running_session(&server, &mut agent).await;
    let bob = server.user("bob").await;
    assert_eq!(
        share(&server, &server.admin, id, "bob", "control").await.0,
        201
    );

    let (mut viewer, stream) = open_viewer(&server, &mut agent, &bob, id).await;
    let mut sent = b"RFB 003.008\n\x01\x00".to_vec();
    sent.extend(key(true));
    sent.extend(pointer(1, 2));
    sent.extend(cut_text(b"hello"));
    viewer.write(&sent).await.unwrap();
    assert_eq!(agent_reads(&mut agent, stream, sent.len()).await, sent);

    let (status, changed) = share(&server, &server.admin, id, "bob", "view").await;
    assert_eq!((status, changed["mode"].as_str()), (200, Some("view")));
    assert_eq!(
        viewer
            .closed_within(Duration::from_secs(5))
            .await
            .as_deref(),
        Some("the owner changed or stopped sharing this desktop with you")
    );
}

#[actix_web::test]
async fn an_ended_desktop_cannot_be_shared_and_deleting_a_user_removes_their_shares() {
    let (server, mut agent, _) = common::start_with_agent(&[]).await;
    let id = common::running_session(&server, &mut agent).await;
    let bob = server.user("bob").await;
    let bob_id = user_id(&server, &bob).await;
    assert_eq!(
        share(&server, &server.admin, id, "bob", "view").await.0,
        201
    );
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/api/v1/users/{bob_id}"),
            Some(&server.admin),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, list) = server
        .get(&format!("/api/v1/sessions/{id}/shares"), &server.admin)
        .await;
    assert_eq!(list["shares"], json!([]));

    let (status, _) = server
        .delete(&format!("/api/v1/sessions/{id}"), &server.admin)
        .await;
    assert_eq!(status, 202);
    let (command_id, _) = agent.recv_command().await;
    agent
        .send(&AgentMessage::Completed {
            command_id,
            result: json!({}),
        })
        .await;
    common::session_reaches(&server, id, "terminated").await;
    server.user("dave").await;
    let (status, body) = share(&server, &server.admin, id, "dave", "view").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
}
