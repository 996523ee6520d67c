//! The Kubernetes path end to end: the real control plane (real Postgres), the real agent
//! with the Kubernetes runtime, and the in-repo Kubernetes API emulator (no real API server
//! can be had here) whose pods run real Xvnc servers behind the port-forward subresource.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix::{Actor, Addr};
use serde_json::json;
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_k8s_agent::runtime::Runtime;
use streamspace_k8s_agent::runtime::kubernetes::objects::Layout;
use streamspace_k8s_agent::runtime::kubernetes::{KubeRuntime, KubeSettings, client::client};
use streamspace_testkit::control_plane::{self as cp, TestServer};
use streamspace_testkit::kube_emulator::KubeEmulator;
use streamspace_testkit::rfb::ViewerStream;
use uuid::Uuid;

struct Setup {
    server: TestServer,
    emulator: KubeEmulator,
    alice: String,
    _kubeconfig: tempfile::NamedTempFile,
    _agent: Addr<ControlPlaneLink>,
}

async fn setup() -> Setup {
    let server = cp::start(&[]).await;
    for (name, image) in [
        ("desktop", "streamspace/test-desktop:1"),
        ("broken", "registry.example/missing:1"),
    ] {
        let (status, body) = server
            .post(
                "/api/v1/templates",
                &server.admin,
                json!({"name": name, "image": image}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let token = server.register_agent("k8s-1", "kubernetes").await;
    let emulator = KubeEmulator::start("127.0.0.1:0", Duration::from_millis(200)).unwrap();
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(kubeconfig.path(), emulator.kubeconfig("streamspace")).unwrap();
    let url = server.ws_base();
    let path = kubeconfig.path().to_string_lossy().into_owned();
    let env = [
        ("AGENT_ID", "k8s-1"),
        ("CONTROL_PLANE_URL", url.as_str()),
        ("AGENT_TOKEN", token.as_str()),
        ("PLATFORM", "kubernetes"),
        ("KUBECONFIG", path.as_str()),
        ("SESSION_READY_TIMEOUT", "20s"),
    ];
    let config = Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let runtime = Runtime::Kubernetes(KubeRuntime::new(
        client(config.kubeconfig.as_deref()).await.unwrap(),
        KubeSettings {
            layout: Layout {
                namespace: config.namespace.clone(),
                agent_id: config.agent_id.clone(),
                home_size: config.home_size.clone(),
                storage_class: None,
                shm_size: config.shm_size.clone(),
                run_as_user: config.run_as_user,
            },
            ready_timeout: config.ready_timeout,
            max_sessions: 5,
        },
    ));
    let agent = ControlPlaneLink::new(
        Arc::new(config),
        Arc::new(runtime),
        Arc::new(AtomicBool::new(false)),
    )
    .start();
    cp::agent_reaches(&server, "k8s-1", "online").await;
    let alice = server.user("alice").await;
    Setup {
        server,
        emulator,
        alice,
        _kubeconfig: kubeconfig,
        _agent: agent,
    }
}

#[actix_web::test]
async fn a_session_becomes_pod_service_and_claim_streams_vnc_and_is_deleted_cleanly() {
    let setup = setup().await;
    let id = cp::create_session(&setup.server, &setup.alice, "desktop").await;
    let running = cp::session_reaches(&setup.server, id, "running").await;
    assert_eq!(running["platform"], "kubernetes");
    let name = format!("ss-{id}");
    assert_eq!(setup.emulator.names("pods"), std::slice::from_ref(&name));
    assert_eq!(
        setup.emulator.names("services"),
        std::slice::from_ref(&name)
    );
    assert_eq!(
        setup.emulator.names("persistentvolumeclaims"),
        [format!("{name}-home")]
    );

    // VNC through the proxy, the agent's tunnel and the pod's port-forward to the real Xvnc.
    let url = setup.server.viewer_url(&setup.alice, id).await;
    let mut viewer = ViewerStream::open(&url)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let greeting = viewer.read_exact(12).await.unwrap();
    assert_eq!(greeting, b"RFB 003.008\n");
    // Re-run the handshake on a second viewer, fully this time.
    let mut second = ViewerStream::open(&setup.server.viewer_url(&setup.alice, id).await)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let init = second.handshake().await.unwrap();
    assert_eq!((init.width, init.height), (1024, 768));
    assert_eq!(init.name, format!("{name} (emulated pod)"));
    second
        .request_update(init.width, init.height)
        .await
        .unwrap();
    assert!(!second.read_update().await.unwrap().0.is_empty());

    let (status, _) = setup
        .server
        .delete(&format!("/api/v1/sessions/{id}"), &setup.alice)
        .await;
    assert_eq!(status, 202);
    cp::session_reaches(&setup.server, id, "terminated").await;
    assert!(setup.emulator.names("pods").is_empty());
    assert!(setup.emulator.names("services").is_empty());
    // The session asked for a persistent home: its claim outlives it.
    assert_eq!(
        setup.emulator.names("persistentvolumeclaims"),
        [format!("{name}-home")]
    );
    // The first viewer was still open: the desktop's end reaches it with a reason.
    assert_eq!(
        viewer.closed().await.as_deref(),
        Some("VNC server closed the connection")
    );
}

#[actix_web::test]
async fn an_image_that_cannot_be_pulled_fails_the_session_with_the_reason() {
    let setup = setup().await;
    let id = cp::create_session(&setup.server, &setup.alice, "broken").await;
    let failed = cp::session_reaches(&setup.server, id, "failed").await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("ErrImagePull") && reason.contains("registry.example/missing:1"),
        "{reason}"
    );
}

#[actix_web::test]
async fn an_ephemeral_home_gets_no_claim() {
    let setup = setup().await;
    let (status, body) = setup
        .server
        .post(
            "/api/v1/sessions",
            &setup.alice,
            json!({"template": "desktop", "persistent_home": false}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
    cp::session_reaches(&setup.server, id, "running").await;
    assert!(setup.emulator.names("persistentvolumeclaims").is_empty());
    setup
        .server
        .delete(&format!("/api/v1/sessions/{id}"), &setup.alice)
        .await;
    cp::session_reaches(&setup.server, id, "terminated").await;
    assert!(setup.emulator.names("pods").is_empty());
}
