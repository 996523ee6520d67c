//! The Kubernetes path end to end against a real API server: the real control plane (real
//! Postgres), the agent with the Kubernetes runtime acting as the ServiceAccount and Role its
//! Helm chart installs, and a real kube-apiserver + etcd + scheduler + controller-manager
//! with kwok as the node. Each session Pod is bridged to a real Xvnc on this host through
//! kwok's PortForward, so RFB bytes go control plane → agent → kube-rs port-forward →
//! kube-apiserver → kwok → Xvnc. One cluster serves the file; each test has its namespace.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix::{Actor, Addr};
use serde_json::{Value, json};
use streamspace_k8s_agent::config::Config;
use streamspace_k8s_agent::launch;
use streamspace_k8s_agent::link::ControlPlaneLink;
use streamspace_k8s_agent::runtime::Runtime;
use streamspace_k8s_agent::runtime::kubernetes::{KubeRuntime, KubeSettings, client::client};
use streamspace_testkit::control_plane::{self as cp, TestServer};
use streamspace_testkit::kube_cluster::{AgentNamespace, KubeCluster};
use streamspace_testkit::kwok_desktops::Desktops;
use streamspace_testkit::rfb::ViewerStream;
use uuid::Uuid;

struct Setup {
    server: TestServer,
    namespace: AgentNamespace,
    alice: String,
    _desktops: Desktops,
    _agent: Addr<ControlPlaneLink>,
}

/// The agent's environment beyond what every test sets.
fn setup_env(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn setup(extra: &[(&str, &str)]) -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = env_logger::builder().is_test(true).try_init();
    let server = cp::start(&[]).await;
    for (name, image) in [
        ("desktop", "streamspace/test-desktop:1"),
        ("broken", "registry.invalid/streamspace/missing:1"),
    ] {
        let (status, body) = server
            .post(
                "/api/v1/templates",
                &server.admin,
                json!({"name": name, "image": image, "default_resources": {"cpu": "1", "memory": "1Gi"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let token = server.register_agent("k8s-1", "kubernetes").await;
    let cluster = KubeCluster::shared();
    let namespace = tokio::task::spawn_blocking(|| cluster.agent_namespace("e2e", &[]))
        .await
        .unwrap()
        .unwrap();
    let desktops = Desktops::start(&cluster.kubeconfig, Some(&namespace.name))
        .await
        .unwrap();
    let url = server.ws_base();
    let kubeconfig = namespace.kubeconfig_path();
    let mut env = setup_env(&[
        ("AGENT_ID", "k8s-1"),
        ("CONTROL_PLANE_URL", url.as_str()),
        ("AGENT_TOKEN", token.as_str()),
        ("PLATFORM", "kubernetes"),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("NAMESPACE", namespace.name.as_str()),
        ("SESSION_READY_TIMEOUT", "20s"),
    ]);
    // Later entries win.
    env.extend(setup_env(extra));
    let config = Config::from_lookup(|name| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap();
    let runtime: Arc<dyn Runtime> = Arc::new(KubeRuntime::new(
        client(config.kubeconfig.as_deref()).await.unwrap(),
        KubeSettings {
            layout: launch::layout(&config),
            ready_timeout: config.ready_timeout,
            max_sessions: 5,
        },
    ));
    let agent =
        ControlPlaneLink::new(Arc::new(config), runtime, Arc::new(AtomicBool::new(false))).start();
    cp::agent_reaches(&server, "k8s-1", "online").await;
    let alice = server.user("alice").await;
    Setup {
        server,
        namespace,
        alice,
        _desktops: desktops,
        _agent: agent,
    }
}

async fn create(setup: &Setup, body: Value) -> Uuid {
    let (status, body) = setup
        .server
        .post("/api/v1/sessions", &setup.alice, body)
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().parse().unwrap()
}

/// Polls a session until it reaches `state`, allowing for a readiness deadline.
async fn reaches(setup: &Setup, id: Uuid, state: &str, within: Duration) -> Value {
    cp::session_reaches_within(&setup.server, id, state, within).await
}

/// Waits until `kubectl get KIND` in the namespace lists exactly `names`.
async fn objects_are(namespace: &AgentNamespace, kind: &str, names: &[String]) {
    for _ in 0..200 {
        if namespace.names(kind) == names {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(namespace.names(kind), names, "{kind}");
}

#[actix_web::test]
async fn a_session_becomes_a_pod_and_a_claim_streams_vnc_through_the_api_server_and_is_deleted_cleanly()
 {
    let setup = setup(&[]).await;
    let id = create(&setup, json!({"template": "desktop"})).await;
    let running = reaches(&setup, id, "running", Duration::from_secs(30)).await;
    assert_eq!(running["platform"], "kubernetes");
    let name = format!("ss-{id}");
    let home = running["home_id"]
        .as_str()
        .expect("a persistent home")
        .to_owned();
    let claim = format!("ss-home-{home}");
    // Admitted by Pod Security "restricted" in the chart's namespace; no Service.
    assert_eq!(setup.namespace.names("pods"), std::slice::from_ref(&name));
    assert!(setup.namespace.names("services").is_empty());
    assert_eq!(
        setup.namespace.names("persistentvolumeclaims"),
        std::slice::from_ref(&claim)
    );
    let token = setup
        .namespace
        .kubectl(
            &[
                "get",
                "pod",
                &name,
                "-o",
                "jsonpath={.spec.automountServiceAccountToken}",
            ],
            None,
        )
        .unwrap();
    assert_eq!(token, "false", "no service-account token in a desktop");

    // VNC through the proxy, the agent's tunnel, the API server's port-forward and kwok.
    let url = setup.server.viewer_url(&setup.alice, id).await;
    let mut viewer = ViewerStream::open(&url)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    assert_eq!(
        viewer.read_exact(12).await.unwrap()[..],
        b"RFB 003.008\n"[..]
    );
    let mut second = ViewerStream::open(&setup.server.viewer_url(&setup.alice, id).await)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let init = second.handshake().await.unwrap();
    assert_eq!((init.width, init.height), (1024, 768));
    assert_eq!(init.name, name, "the desktop bridged to this very Pod");
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
    reaches(&setup, id, "terminated", Duration::from_secs(20)).await;
    // Terminated means the Pod is gone, not only asked to go.
    assert!(setup.namespace.names("pods").is_empty());
    // The session asked for a persistent home: its claim outlives it.
    assert_eq!(
        setup.namespace.names("persistentvolumeclaims"),
        std::slice::from_ref(&claim)
    );
    // The first viewer was still open: it is told why it ended.
    assert_eq!(
        viewer.closed().await.as_deref(),
        Some("the session was deleted")
    );

    // Alice's next desktop of this template mounts the same claim.
    let next = create(&setup, json!({"template": "desktop"})).await;
    let running = reaches(&setup, next, "running", Duration::from_secs(30)).await;
    assert_eq!(running["home_id"], home.as_str());
    let mounted = setup
        .namespace
        .kubectl(
            &[
                "get",
                "pod",
                &format!("ss-{next}"),
                "-o",
                "jsonpath={.spec.volumes[0].persistentVolumeClaim.claimName}",
            ],
            None,
        )
        .unwrap();
    assert_eq!(mounted, claim);
    setup
        .server
        .delete(&format!("/api/v1/sessions/{next}"), &setup.alice)
        .await;
    reaches(&setup, next, "terminated", Duration::from_secs(20)).await;

    // Deleting the home removes its claim through the agent (with the chart's RBAC).
    let (status, body) = setup
        .server
        .delete(&format!("/api/v1/homes/{home}"), &setup.alice)
        .await;
    assert_eq!(status, 202, "{body}");
    objects_are(&setup.namespace, "persistentvolumeclaims", &[]).await;
    setup
        .server
        .wait_for("/api/v1/homes", &setup.alice, "the home gone", |h| {
            h["homes"] == json!([])
        })
        .await;
}

#[actix_web::test]
async fn a_hibernated_pod_is_deleted_its_claim_kept_and_it_wakes_on_the_same_claim() {
    let setup = setup(&[]).await;
    let id = create(&setup, json!({"template": "desktop"})).await;
    let running = reaches(&setup, id, "running", Duration::from_secs(30)).await;
    let name = format!("ss-{id}");
    let claim = format!("ss-home-{}", running["home_id"].as_str().unwrap());
    let mounted = || {
        setup
            .namespace
            .kubectl(
                &[
                    "get",
                    "pod",
                    &name,
                    "-o",
                    "jsonpath={.spec.volumes[0].persistentVolumeClaim.claimName}",
                ],
                None,
            )
            .unwrap()
    };
    assert_eq!(mounted(), claim);

    let (status, body) = setup
        .server
        .post(
            &format!("/api/v1/sessions/{id}/hibernate"),
            &setup.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    reaches(&setup, id, "hibernated", Duration::from_secs(20)).await;
    // Hibernated means the Pod is gone, not only asked to go; its home's claim stays.
    assert!(setup.namespace.names("pods").is_empty());
    assert_eq!(
        setup.namespace.names("persistentvolumeclaims"),
        std::slice::from_ref(&claim)
    );

    let (status, body) = setup
        .server
        .post(
            &format!("/api/v1/sessions/{id}/wake"),
            &setup.alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    reaches(&setup, id, "running", Duration::from_secs(30)).await;
    assert_eq!(setup.namespace.names("pods"), std::slice::from_ref(&name));
    assert_eq!(mounted(), claim, "the same claim, mounted again");
    let url = setup.server.viewer_url(&setup.alice, id).await;
    let (viewer, init) = ViewerStream::open_showing(&url).await.unwrap();
    assert_eq!(init.name, name, "the desktop bridged to the new Pod");
    viewer.close().await;
}

#[actix_web::test]
async fn an_image_that_cannot_be_pulled_fails_the_session_with_the_reason_and_leaves_nothing() {
    let setup = setup(&[]).await;
    let id = create(&setup, json!({"template": "broken"})).await;
    let failed = reaches(&setup, id, "failed", Duration::from_secs(20)).await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("ErrImagePull")
            && reason.contains("registry.invalid/streamspace/missing:1"),
        "{reason}"
    );
    objects_are(&setup.namespace, "pods", &[]).await;
    objects_are(&setup.namespace, "persistentvolumeclaims", &[]).await;
}

#[actix_web::test]
async fn a_pod_no_node_fits_fails_at_the_deadline_with_the_schedulers_reason_and_its_deletion_reaches_the_agent()
 {
    let setup = setup(&[("SESSION_READY_TIMEOUT", "3s")]).await;
    // The kwok node has 32 CPUs.
    let id = create(
        &setup,
        json!({"template": "desktop", "resources": {"cpu": "64", "memory": "1Gi"}, "persistent_home": false}),
    )
    .await;
    let failed = reaches(&setup, id, "failed", Duration::from_secs(20)).await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("not ready within 3s")
            && reason.contains("Unschedulable")
            && reason.contains("Insufficient cpu"),
        "{reason}"
    );
    // Nothing is left for the scheduler to start later.
    objects_are(&setup.namespace, "pods", &[]).await;
    // Removing the failed session from the list still asks the agent to remove what may be
    // left, and the agent does.
    let (status, body) = setup
        .server
        .delete(&format!("/api/v1/sessions/{id}"), &setup.alice)
        .await;
    assert_eq!(status, 204, "{body}");
    for _ in 0..400 {
        let cleanup = cp::commands_mentioning(&setup.server, id);
        if cleanup
            .iter()
            .any(|c| c.command_type == "delete_session" && c.status == "completed")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the agent never completed the cleanup: {:?}",
        cp::commands_mentioning(&setup.server, id)
    );
}

#[actix_web::test]
async fn a_home_claim_whose_storage_class_does_not_exist_fails_the_session_saying_so() {
    let setup = setup(&[
        ("SESSION_READY_TIMEOUT", "3s"),
        ("STORAGE_CLASS", "no-such-class"),
    ])
    .await;
    let id = create(&setup, json!({"template": "desktop"})).await;
    let failed = reaches(&setup, id, "failed", Duration::from_secs(20)).await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("home volume claim") && reason.contains("\"no-such-class\""),
        "{reason}"
    );
    objects_are(&setup.namespace, "pods", &[]).await;
    objects_are(&setup.namespace, "persistentvolumeclaims", &[]).await;
}

#[actix_web::test]
async fn a_namespace_the_agent_may_not_touch_fails_the_session_with_forbidden() {
    let setup = setup(&[("NAMESPACE", "kube-system")]).await;
    let id = create(&setup, json!({"template": "desktop"})).await;
    let failed = reaches(&setup, id, "failed", Duration::from_secs(20)).await;
    let reason = failed["state_reason"].as_str().unwrap();
    assert!(
        reason.contains("Forbidden") && reason.contains("kube-system"),
        "{reason}"
    );
}

#[actix_web::test]
async fn a_pod_deleted_behind_the_agents_back_makes_its_session_lost_and_an_orphan_is_removed() {
    let setup = setup(&[("RECONCILE_INTERVAL", "1s")]).await;
    let id = create(&setup, json!({"template": "desktop"})).await;
    reaches(&setup, id, "running", Duration::from_secs(30)).await;
    setup
        .namespace
        .kubectl(&["delete", "pod", &format!("ss-{id}")], None)
        .unwrap();
    let lost = reaches(&setup, id, "lost", Duration::from_secs(10)).await;
    assert_eq!(lost["state_reason"], "the agent no longer has this session");

    // A Pod carrying this agent's labels that no session owns is removed by the periodic
    // reconciliation (its claim is kept: its data may matter).
    let orphan = Uuid::new_v4();
    let pod = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod",
        "metadata": {{"name": "ss-{orphan}", "labels": {{"app.kubernetes.io/managed-by": "streamspace",
            "streamspace.io/agent-id": "k8s-1", "streamspace.io/session-id": "{orphan}"}}}},
        "spec": {{"automountServiceAccountToken": false,
            "securityContext": {{"runAsNonRoot": true, "runAsUser": 1000, "seccompProfile": {{"type": "RuntimeDefault"}}}},
            "containers": [{{"name": "desktop", "image": "streamspace/test-desktop:1",
            "securityContext": {{"allowPrivilegeEscalation": false, "capabilities": {{"drop": ["ALL"]}}}}}}]}}}}"#
    );
    setup
        .namespace
        .kubectl(&["apply", "-f", "-"], Some(&pod))
        .unwrap();
    objects_are(&setup.namespace, "pods", &[]).await;
}

#[actix_web::test]
async fn a_viewer_is_told_the_api_servers_reason_when_nothing_listens_in_the_pod() {
    let setup = setup(&[]).await;
    let id = create(
        &setup,
        json!({"template": "desktop", "persistent_home": false}),
    )
    .await;
    reaches(&setup, id, "running", Duration::from_secs(30)).await;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let patch = format!(
        r#"{{"spec": {{"forwards": [{{"ports": [5900], "target": {{"address": "127.0.0.1", "port": {closed_port}}}}}]}}}}"#
    );
    setup
        .namespace
        .kubectl(
            &[
                "patch",
                "portforwards.kwok.x-k8s.io",
                &format!("ss-{id}"),
                "--type",
                "merge",
                "-p",
                &patch,
            ],
            None,
        )
        .unwrap();
    // kwok reads the PortForward from its informer: give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = setup.server.viewer_url(&setup.alice, id).await;
    let mut viewer = ViewerStream::open(&url)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    let reason = viewer.closed().await.unwrap_or_default();
    assert!(
        reason.contains("port-forward") && reason.contains("connection refused"),
        "{reason}"
    );
}
