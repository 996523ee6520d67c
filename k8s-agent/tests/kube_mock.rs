//! The exact Kubernetes API calls of the runtime, against kube's `tower-test` mock service:
//! methods, paths, field manager, content types, labels and selectors.

use std::collections::HashMap;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use streamspace_k8s_agent::runtime::kubernetes::objects::Layout;
use streamspace_k8s_agent::runtime::kubernetes::{KubeRuntime, KubeSettings};
use streamspace_protocol::{AgentSessionState, Resources, SessionSpec, TemplateSpec};
use tower_test::mock::{Handle, SendResponse};
use uuid::Uuid;

type MockHandle = Handle<Request<Body>, Response<Body>>;

fn runtime() -> (KubeRuntime, MockHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "streamspace");
    let settings = KubeSettings {
        layout: Layout {
            namespace: "streamspace".into(),
            agent_id: "k8s-1".into(),
            home_size: "5Gi".into(),
            storage_class: Some("fast".into()),
            shm_size: "1Gi".into(),
            run_as_user: 1000,
        },
        ready_timeout: Duration::from_secs(2),
        max_sessions: 10,
    };
    (KubeRuntime::new(client, settings), handle)
}

fn spec(persistent_home: bool) -> SessionSpec {
    SessionSpec {
        session_id: Uuid::from_u128(0x1234),
        user: "alice".into(),
        template: TemplateSpec {
            name: "xfce".into(),
            image: "example/xfce:1".into(),
            vnc_port: 5900,
            env: Default::default(),
        },
        resources: Resources {
            cpu: "2".into(),
            memory: "4Gi".into(),
        },
        persistent_home,
    }
}

struct Call {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    content_type: Option<String>,
    body: Value,
    respond: SendResponse<Response<Body>>,
}

async fn next_call(handle: &mut MockHandle) -> Call {
    let (request, respond) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("an API call")
        .expect("service called");
    let query = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Call {
        method,
        path,
        query,
        content_type,
        body,
        respond,
    }
}

fn ok(respond: SendResponse<Response<Body>>, body: Value) {
    respond.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap(),
    );
}

fn not_found(respond: SendResponse<Response<Body>>, name: &str) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
        "message": format!("\"{name}\" not found"), "code": 404});
    respond.send_response(
        Response::builder()
            .status(404)
            .body(Body::from(serde_json::to_vec(&status).unwrap()))
            .unwrap(),
    );
}

fn assert_apply(call: &Call, path: &str) {
    assert_eq!(call.method, Method::PATCH, "{path}");
    assert_eq!(call.path, path);
    assert_eq!(
        call.query.get("fieldManager").map(String::as_str),
        Some("streamspace-agent")
    );
    assert_eq!(call.query.get("force").map(String::as_str), Some("true"));
    assert_eq!(
        call.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    let labels = &call.body["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/managed-by"], "streamspace");
    assert_eq!(
        labels["streamspace.io/session-id"],
        Uuid::from_u128(0x1234).to_string()
    );
    assert_eq!(labels["streamspace.io/agent-id"], "k8s-1");
}

fn ready_pod(body: &Value) -> Value {
    let mut pod = body.clone();
    pod["status"] = json!({"phase": "Running", "podIP": "10.0.0.7",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]});
    pod
}

const NS: &str = "/api/v1/namespaces/streamspace";
const NAME: &str = "ss-00000000-0000-0000-0000-000000001234";

#[tokio::test]
async fn create_applies_claim_service_and_pod_then_waits_for_ready() {
    let (runtime, mut handle) = runtime();
    let create = tokio::spawn(async move { runtime.create(&spec(true)).await });

    let claim = next_call(&mut handle).await;
    assert_apply(&claim, &format!("{NS}/persistentvolumeclaims/{NAME}-home"));
    assert_eq!(claim.body["kind"], "PersistentVolumeClaim");
    assert_eq!(
        claim.body["spec"]["resources"]["requests"]["storage"],
        "5Gi"
    );
    assert_eq!(claim.body["spec"]["storageClassName"], "fast");
    let body = claim.body.clone();
    ok(claim.respond, body);

    let service = next_call(&mut handle).await;
    assert_apply(&service, &format!("{NS}/services/{NAME}"));
    assert_eq!(service.body["spec"]["type"], "ClusterIP");
    assert_eq!(service.body["spec"]["ports"][0]["port"], 5900);
    let body = service.body.clone();
    ok(service.respond, body);

    let pod = next_call(&mut handle).await;
    assert_apply(&pod, &format!("{NS}/pods/{NAME}"));
    assert_eq!(pod.body["spec"]["containers"][0]["image"], "example/xfce:1");
    let applied = pod.body.clone();
    ok(pod.respond, applied.clone());

    // Not ready yet, then ready.
    let get = next_call(&mut handle).await;
    assert_eq!(
        (get.method.clone(), get.path.as_str()),
        (Method::GET, format!("{NS}/pods/{NAME}").as_str())
    );
    ok(get.respond, applied.clone());
    let get = next_call(&mut handle).await;
    ok(get.respond, ready_pod(&applied));

    let report = create.await.unwrap().unwrap();
    assert_eq!(report.state, AgentSessionState::Running);
    assert_eq!(report.vnc.unwrap().host, format!("{NAME}.streamspace.svc"));
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_creation_with_the_reason() {
    let (runtime, mut handle) = runtime();
    let create = tokio::spawn(async move { runtime.create(&spec(false)).await });
    for kind in ["services", "pods"] {
        let call = next_call(&mut handle).await;
        assert_eq!(
            call.path,
            format!("{NS}/{kind}/{NAME}"),
            "no claim without a persistent home"
        );
        let body = call.body.clone();
        ok(call.respond, body);
    }
    let get = next_call(&mut handle).await;
    ok(
        get.respond,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": NAME}, "status": {"phase": "Pending",
            "containerStatuses": [{"name": "desktop", "image": "example/xfce:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull",
                "message": "pull access denied for example/xfce"}}}]}}),
    );
    let err = create.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Pod {NAME}: ErrImagePull: pull access denied for example/xfce")
    );
}

#[tokio::test]
async fn an_unschedulable_pod_fails_at_the_deadline_saying_why() {
    let (runtime, mut handle) = runtime();
    let create = tokio::spawn(async move { runtime.create(&spec(false)).await });
    for _ in 0..2 {
        let call = next_call(&mut handle).await;
        let body = call.body.clone();
        ok(call.respond, body);
    }
    let pending = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": NAME}, "status": {"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."}]}});
    let answer = tokio::spawn(async move {
        while let Ok(Some((_, respond))) =
            tokio::time::timeout(Duration::from_secs(5), handle.next_request()).await
        {
            ok(respond, pending.clone());
        }
    });
    let err = create.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Pod {NAME} not ready within 2s: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."
        )
    );
    answer.abort();
}

#[tokio::test]
async fn delete_removes_pod_service_and_claim_and_ignores_missing_ones() {
    let (runtime, mut handle) = runtime();
    let id = Uuid::from_u128(0x1234);
    let delete = tokio::spawn(async move { runtime.delete(id, false).await });
    for (path, present) in [
        (format!("{NS}/pods/{NAME}"), true),
        (format!("{NS}/services/{NAME}"), false),
        (format!("{NS}/persistentvolumeclaims/{NAME}-home"), true),
    ] {
        let call = next_call(&mut handle).await;
        assert_eq!(
            (call.method.clone(), call.path.clone()),
            (Method::DELETE, path)
        );
        if present {
            ok(
                call.respond,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
            );
        } else {
            not_found(call.respond, NAME);
        }
    }
    delete.await.unwrap().unwrap();
}

#[tokio::test]
async fn delete_keeps_the_claim_when_asked() {
    let (runtime, mut handle) = runtime();
    let delete = tokio::spawn(async move { runtime.delete(Uuid::from_u128(0x1234), true).await });
    for kind in ["pods", "services"] {
        let call = next_call(&mut handle).await;
        assert_eq!(call.path, format!("{NS}/{kind}/{NAME}"));
        ok(
            call.respond,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        );
    }
    delete.await.unwrap().unwrap();
    // The runtime is gone now: the mock answers `None` once every call has been taken.
    let more = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(
        matches!(more, Ok(None) | Err(_)),
        "the claim must not be touched"
    );
}

#[tokio::test]
async fn list_selects_this_agents_pods_by_label_and_reads_their_state() {
    let (runtime, mut handle) = runtime();
    let list = tokio::spawn(async move { runtime.list().await });
    let call = next_call(&mut handle).await;
    assert_eq!(
        (call.method.clone(), call.path.as_str()),
        (Method::GET, format!("{NS}/pods").as_str())
    );
    assert_eq!(
        call.query.get("labelSelector").map(String::as_str),
        Some("app.kubernetes.io%2Fmanaged-by%3Dstreamspace%2Cstreamspace.io%2Fagent-id%3Dk8s-1")
    );
    let pod = |id: u128, ready: bool| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("ss-{}", Uuid::from_u128(id)),
                "labels": {"streamspace.io/session-id": Uuid::from_u128(id).to_string()}},
            "spec": {"containers": [{"name": "desktop", "ports": [{"name": "vnc", "containerPort": 5901}]}]},
            "status": {"phase": if ready { "Running" } else { "Pending" },
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    };
    ok(
        call.respond,
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod(1, true), pod(2, false)]}),
    );
    let reports = list.await.unwrap().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0].state, reports[0].vnc.as_ref().unwrap().port),
        (AgentSessionState::Running, 5901)
    );
    assert_eq!(reports[1].state, AgentSessionState::Starting);
}
