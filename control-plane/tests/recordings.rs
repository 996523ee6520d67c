//! Recording, against the real control plane (real Postgres) and a scripted agent: a
//! template that records has each viewer's stream written with its timing, the viewer is told,
//! admins list, fetch and delete recordings, and nobody else sees them.

use std::time::Duration;

use serde_json::json;
use streamspace_protocol::Frame;
use streamspace_testkit::control_plane::{self as common};
use streamspace_testkit::rfb::ViewerStream;

/// The chunks of a recording file: (milliseconds, bytes).
fn chunks(file: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let magic = b"STREAMSPACE-RFB-RECORDING 1\n";
    assert!(file.starts_with(magic), "not a recording");
    let mut rest = &file[magic.len()..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let at = u32::from_be_bytes(rest[..4].try_into().unwrap());
        let len = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
        out.push((at, rest[8..8 + len].to_vec()));
        rest = &rest[8 + len..];
    }
    out
}

#[actix_web::test]
async fn a_recorded_desktop_has_each_viewers_stream_written_with_its_timing_for_admins_only() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap().to_owned();
    let (server, mut agent, _) =
        common::start_with_agent(&[("RECORDING_DIR", dir_text.as_str())]).await;
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "rec", "image": "xterm", "record": true}),
        )
        .await;
    assert_eq!(
        (status, body["record"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    let id = common::running_session_of(&server, &mut agent, "rec").await;

    // The viewer is told before it connects.
    let (status, token) = server
        .post(
            &format!("/api/v1/sessions/{id}/viewer-token"),
            &server.admin,
            json!({}),
        )
        .await;
    assert_eq!((status, token["recorded"].as_bool()), (200, Some(true)));

    let url = server.viewer_url(&server.admin, id).await;
    let mut viewer = ViewerStream::open(&url).await.unwrap();
    let stream_id = agent.accept_stream().await;
    let sent: [&[u8]; 3] = [b"RFB 003.008\n", b"\x01\x01", &[7; 5000]];
    for (i, part) in sent.iter().enumerate() {
        if i == 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        agent
            .send_binary(
                Frame::Data {
                    stream_id,
                    payload: part,
                }
                .encode(),
            )
            .await;
    }
    let everything: Vec<u8> = sent.concat();
    assert_eq!(
        viewer.read_exact(everything.len()).await.unwrap().to_vec(),
        everything
    );
    viewer.close().await;

    let page = server
        .wait_for(
            "/api/v1/recordings",
            &server.admin,
            "a finished recording",
            |p| p["recordings"][0]["ended_at"].is_string(),
        )
        .await;
    let recording = &page["recordings"][0];
    assert_eq!(recording["session_id"], id.to_string());
    assert_eq!(
        (
            recording["username"].as_str(),
            recording["template"].as_str()
        ),
        (Some("admin"), Some("rec"))
    );
    assert_eq!(recording["bytes"], everything.len());
    assert_eq!(recording["complete"], true);
    let recording_id = recording["id"].as_str().unwrap().to_owned();
    let joined = server.audit("vnc_connect", 1).await;
    assert_eq!(joined[0]["details"]["recording"], recording_id.as_str());

    // The file holds the bytes in order, stamped with when they came.
    let (status, file) =
        http_bytes(&server, &format!("/api/v1/recordings/{recording_id}/data")).await;
    assert_eq!(status, 200);
    let chunks = chunks(&file);
    assert_eq!(
        chunks
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect::<Vec<u8>>(),
        everything
    );
    assert!(chunks.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(
        chunks.last().unwrap().0 >= 300,
        "{:?}",
        chunks.iter().map(|c| c.0).collect::<Vec<_>>()
    );
    assert!(recording["duration_ms"].as_u64().unwrap() >= 300);

    // Admins only.
    let bob = server.user("bob").await;
    assert_eq!(server.get("/api/v1/recordings", &bob).await.0, 403);
    assert_eq!(
        server
            .get(&format!("/api/v1/recordings/{recording_id}"), &bob)
            .await
            .0,
        403
    );

    // Deleted: the row, the file, and the fact in the audit log.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let (status, _) = server
        .delete(&format!("/api/v1/recordings/{recording_id}"), &server.admin)
        .await;
    assert_eq!(status, 204);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(
        server
            .get(&format!("/api/v1/recordings/{recording_id}"), &server.admin)
            .await
            .0,
        404
    );
    server.audit("recording_delete", 1).await;
}

#[actix_web::test]
async fn a_desktop_of_a_template_that_does_not_record_is_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let dir_text = dir.path().to_str().unwrap().to_owned();
    let (server, mut agent, _) =
        common::start_with_agent(&[("RECORDING_DIR", dir_text.as_str())]).await;
    let id = common::running_session(&server, &mut agent).await;
    let (status, token) = server
        .post(
            &format!("/api/v1/sessions/{id}/viewer-token"),
            &server.admin,
            json!({}),
        )
        .await;
    assert_eq!((status, token["recorded"].as_bool()), (200, Some(false)));
    let url = server.viewer_url(&server.admin, id).await;
    let viewer = ViewerStream::open(&url).await.unwrap();
    let stream_id = agent.accept_stream().await;
    agent
        .send_binary(
            Frame::Data {
                stream_id,
                payload: b"RFB 003.008\n",
            }
            .encode(),
        )
        .await;
    viewer.close().await;
    server.audit("vnc_disconnect", 1).await;
    let (_, page) = server.get("/api/v1/recordings", &server.admin).await;
    assert_eq!(page["recordings"], json!([]));
    assert_eq!(
        std::fs::read_dir(dir.path())
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
}

/// A GET answered with bytes, not JSON.
async fn http_bytes(server: &common::TestServer, path: &str) -> (u16, Vec<u8>) {
    let mut response = awc::Client::default()
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap();
    let body = response.body().limit(64 * 1024 * 1024).await.unwrap();
    (response.status().as_u16(), body.to_vec())
}
