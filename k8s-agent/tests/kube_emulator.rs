//! The Kubernetes API emulator answers like the real API server where the agent depends on
//! it, checked with the real kube client.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use streamspace_testkit::kube_emulator::KubeEmulator;

async fn client(emulator: &KubeEmulator) -> kube::Client {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), emulator.kubeconfig("demo")).unwrap();
    streamspace_k8s_agent::runtime::kubernetes::client::client(Some(file.path()))
        .await
        .unwrap()
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"app": "x"}},
        "spec": {"ports": [{"port": 5900}]}
    }))
    .unwrap()
}

fn api_code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(status) => (status.code, status.reason),
        other => panic!("expected an API error, got {other}"),
    }
}

#[actix_web::test]
async fn errors_have_the_real_status_codes_and_reasons() {
    let emulator = KubeEmulator::start("127.0.0.1:0", Duration::ZERO).unwrap();
    let services: Api<Service> = Api::namespaced(client(&emulator).await, "demo");
    assert_eq!(
        api_code(services.get("nope").await.unwrap_err()),
        (404, "NotFound".into())
    );
    services
        .create(&PostParams::default(), &service("one"))
        .await
        .unwrap();
    assert_eq!(
        api_code(
            services
                .create(&PostParams::default(), &service("one"))
                .await
                .unwrap_err()
        ),
        (409, "AlreadyExists".into())
    );
    assert_eq!(
        api_code(
            services
                .create(&PostParams::default(), &service("Not_A_Name"))
                .await
                .unwrap_err()
        ),
        (422, "Invalid".into())
    );
    assert_eq!(
        api_code(
            services
                .delete("nope", &DeleteParams::default())
                .await
                .unwrap_err()
        ),
        (404, "NotFound".into())
    );
}

#[actix_web::test]
async fn apply_creates_then_updates_with_a_new_resource_version() {
    let emulator = KubeEmulator::start("127.0.0.1:0", Duration::ZERO).unwrap();
    let services: Api<Service> = Api::namespaced(client(&emulator).await, "demo");
    let params = PatchParams::apply("test").force();
    let first = services
        .patch("svc", &params, &Patch::Apply(&service("svc")))
        .await
        .unwrap();
    let mut changed = service("svc");
    changed.metadata.labels = Some([("app".to_owned(), "y".to_owned())].into());
    let second = services
        .patch("svc", &params, &Patch::Apply(&changed))
        .await
        .unwrap();
    assert_eq!(first.metadata.uid, second.metadata.uid);
    let (v1, v2): (u64, u64) = (
        first.metadata.resource_version.unwrap().parse().unwrap(),
        second.metadata.resource_version.unwrap().parse().unwrap(),
    );
    assert!(v2 > v1);
    let listed = services
        .list(&ListParams::default().labels("app=y"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        services
            .list(&ListParams::default().labels("app=x"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[actix_web::test]
async fn pods_turn_ready_with_an_ip_or_stay_pending_when_told_to() {
    let emulator = KubeEmulator::start("127.0.0.1:0", Duration::from_millis(100)).unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&emulator).await, "demo");
    let pod = |name: &str, image: &str| -> Pod {
        serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "desktop", "image": image}]}}),
        )
        .unwrap()
    };
    pods.create(&PostParams::default(), &pod("ok", "desktop:1"))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("stuck", "unschedulable:1"))
        .await
        .unwrap();
    let fresh = pods.get("ok").await.unwrap();
    assert_eq!(fresh.status.unwrap().phase.as_deref(), Some("Pending"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let ready = pods.get("ok").await.unwrap().status.unwrap();
    assert_eq!(ready.phase.as_deref(), Some("Running"));
    assert!(ready.pod_ip.is_some());
    let stuck = pods.get("stuck").await.unwrap().status.unwrap();
    assert_eq!(stuck.phase.as_deref(), Some("Pending"));
    assert_eq!(
        stuck.conditions.unwrap()[0].reason.as_deref(),
        Some("Unschedulable")
    );

    // Port-forward reaches the pod's real VNC server.
    let mut forwarder = pods.portforward("ok", &[5900]).await.unwrap();
    let mut stream = forwarder.take_stream(5900).unwrap();
    let mut greeting = [0u8; 12];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut greeting)
        .await
        .unwrap();
    assert_eq!(&greeting, b"RFB 003.008\n");
}
