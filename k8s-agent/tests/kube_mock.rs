//! The exact Kubernetes API calls of the runtime, against kube's `tower-test` mock service:
//! methods, paths, field manager, content types, labels and selectors, and the watches that
//! replace polling.

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
        home_id: None,
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
    // Watch events carry the version the watch goes on from.
    pod["metadata"]["resourceVersion"] = json!("11");
    pod["status"] = json!({"phase": "Running", "podIP": "10.0.0.7",
        "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]});
    pod
}

const NS: &str = "/api/v1/namespaces/streamspace";
const NAME: &str = "ss-00000000-0000-0000-0000-000000001234";

fn status_success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})
}

/// Answers the LIST a watch starts with: the Pod found by its name's field selector.
fn answer_list(call: Call, items: Vec<Value>) {
    assert_eq!(
        (call.method.clone(), call.path.as_str()),
        (Method::GET, format!("{NS}/pods").as_str())
    );
    assert_eq!(
        call.query.get("fieldSelector").map(String::as_str),
        Some(format!("metadata.name%3D{NAME}").as_str()),
        "watches select the one Pod by name"
    );
    assert!(!call.query.contains_key("watch"));
    ok(
        call.respond,
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "10"}, "items": items}),
    );
}

/// Answers the WATCH that follows with these events, one JSON line each.
fn answer_watch(call: Call, events: &[(&str, Value)]) {
    assert_eq!(call.path, format!("{NS}/pods"));
    assert_eq!(call.query.get("watch").map(String::as_str), Some("true"));
    assert_eq!(
        call.query.get("resourceVersion").map(String::as_str),
        Some("10"),
        "the watch continues from the list"
    );
    let mut body = Vec::new();
    for (kind, object) in events {
        serde_json::to_writer(&mut body, &json!({"type": kind, "object": object})).unwrap();
        body.push(b'\n');
    }
    call.respond
        .send_response(Response::builder().body(Body::from(body)).unwrap());
}

#[tokio::test]
async fn create_applies_claim_and_pod_then_watches_for_ready() {
    let (runtime, mut handle) = runtime();
    let create = tokio::spawn(async move { runtime.create(&spec(true)).await });

    // Does the home exist already? (A failed start removes only what it created.)
    let probe = next_call(&mut handle).await;
    assert_eq!(
        (probe.method.clone(), probe.path.clone()),
        (
            Method::GET,
            format!("{NS}/persistentvolumeclaims/{NAME}-home")
        )
    );
    not_found(probe.respond, NAME);

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

    // No Service: VNC goes through the Pod's port-forward only.
    let pod = next_call(&mut handle).await;
    assert_apply(&pod, &format!("{NS}/pods/{NAME}"));
    assert_eq!(pod.body["spec"]["containers"][0]["image"], "example/xfce:1");
    assert_eq!(pod.body["spec"]["automountServiceAccountToken"], false);
    let applied = pod.body.clone();
    ok(pod.respond, applied.clone());

    // Readiness by watch, not by polling: not ready in the list, ready in the watch.
    answer_list(next_call(&mut handle).await, vec![applied.clone()]);
    answer_watch(
        next_call(&mut handle).await,
        &[("MODIFIED", ready_pod(&applied))],
    );

    let report = create.await.unwrap().unwrap();
    assert_eq!(report.state, AgentSessionState::Running);
    assert_eq!(report.vnc.unwrap().host, format!("pod/{NAME}"));
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_the_creation_with_the_reason_and_removes_the_pod() {
    let (runtime, mut handle) = runtime();
    let create = tokio::spawn(async move { runtime.create(&spec(false)).await });
    let call = next_call(&mut handle).await;
    assert_eq!(
        call.path,
        format!("{NS}/pods/{NAME}"),
        "no claim without a persistent home"
    );
    let body = call.body.clone();
    ok(call.respond, body);
    answer_list(
        next_call(&mut handle).await,
        vec![
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": NAME}, "status": {"phase": "Pending",
            "containerStatuses": [{"name": "desktop", "image": "example/xfce:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull",
                "message": "pull access denied for example/xfce"}}}]}}),
        ],
    );
    // What it applied goes again.
    let delete = next_call(&mut handle).await;
    assert_eq!(
        (delete.method.clone(), delete.path.clone()),
        (Method::DELETE, format!("{NS}/pods/{NAME}"))
    );
    ok(delete.respond, status_success());
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
    let call = next_call(&mut handle).await;
    let body = call.body.clone();
    ok(call.respond, body);
    let pending = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": NAME}, "status": {"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient memory."}]}});
    answer_list(next_call(&mut handle).await, vec![pending.clone()]);
    // The watch stays open without news until the deadline.
    let watch = next_call(&mut handle).await;
    assert_eq!(watch.query.get("watch").map(String::as_str), Some("true"));
    let get = next_call(&mut handle).await;
    assert_eq!(
        (get.method.clone(), get.path.clone()),
        (Method::GET, format!("{NS}/pods/{NAME}"))
    );
    ok(get.respond, pending);
    let delete = next_call(&mut handle).await;
    assert_eq!(delete.method, Method::DELETE);
    ok(delete.respond, status_success());
    let err = create.await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Pod {NAME} not ready within 2s: Unschedulable: 0/3 nodes are available: 3 Insufficient memory."
        )
    );
    drop(watch);
}

#[tokio::test]
async fn delete_removes_the_pod_waits_until_it_is_gone_then_removes_the_claim() {
    let (runtime, mut handle) = runtime();
    let id = Uuid::from_u128(0x1234);
    let delete = tokio::spawn(async move { runtime.delete(id, false).await });
    let call = next_call(&mut handle).await;
    assert_eq!(
        (call.method.clone(), call.path.clone()),
        (Method::DELETE, format!("{NS}/pods/{NAME}"))
    );
    // Deletion began: the Pod is still there, terminating.
    ok(
        call.respond,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": NAME, "uid": "u-1",
            "deletionTimestamp": "2026-11-27T00:00:00Z"}}),
    );
    // Gone by the time the watch lists it.
    answer_list(next_call(&mut handle).await, vec![]);
    let claim = next_call(&mut handle).await;
    assert_eq!(
        (claim.method.clone(), claim.path.clone()),
        (
            Method::DELETE,
            format!("{NS}/persistentvolumeclaims/{NAME}-home")
        )
    );
    not_found(claim.respond, NAME);
    delete.await.unwrap().unwrap();
}

#[tokio::test]
async fn delete_keeps_the_claim_when_asked() {
    let (runtime, mut handle) = runtime();
    let delete = tokio::spawn(async move { runtime.delete(Uuid::from_u128(0x1234), true).await });
    let call = next_call(&mut handle).await;
    assert_eq!(call.path, format!("{NS}/pods/{NAME}"));
    not_found(call.respond, NAME);
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

#[tokio::test]
async fn a_shared_home_that_exists_is_mounted_as_it_is() {
    let (runtime, mut handle) = runtime();
    let home = Uuid::from_u128(0x40e);
    let mut spec = spec(true);
    spec.home_id = Some(home);
    let create = tokio::spawn(async move { runtime.create(&spec).await });

    let probe = next_call(&mut handle).await;
    let claim_path = format!("{NS}/persistentvolumeclaims/ss-home-{home}");
    assert_eq!(
        (probe.method.clone(), probe.path.clone()),
        (Method::GET, claim_path)
    );
    ok(
        probe.respond,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": format!("ss-home-{home}")}}),
    );
    // Straight to the Pod: an existing home's claim is never re-applied (a changed size
    // would ask the cluster to resize it).
    let pod = next_call(&mut handle).await;
    assert_apply(&pod, &format!("{NS}/pods/{NAME}"));
    assert_eq!(
        pod.body["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        format!("ss-home-{home}")
    );
    assert_eq!(
        pod.body["metadata"]["labels"]["streamspace.io/home-id"],
        home.to_string()
    );
    let applied = pod.body.clone();
    ok(pod.respond, applied.clone());
    answer_list(next_call(&mut handle).await, vec![ready_pod(&applied)]);
    let report = create.await.unwrap().unwrap();
    assert_eq!(report.state, AgentSessionState::Running);
}

#[tokio::test]
async fn deleting_a_home_checks_no_pod_mounts_it_then_deletes_its_claim() {
    let (runtime, mut handle) = runtime();
    let home = Uuid::from_u128(0x40e);
    let delete = tokio::spawn(async move { runtime.delete_home(home).await });
    let list = next_call(&mut handle).await;
    assert_eq!(
        (list.method.clone(), list.path.clone()),
        (Method::GET, format!("{NS}/pods"))
    );
    assert_eq!(
        list.query["labelSelector"],
        format!(
            "app.kubernetes.io%2Fmanaged-by%3Dstreamspace%2Cstreamspace.io%2Fagent-id%3Dk8s-1%2Cstreamspace.io%2Fhome-id%3D{home}"
        )
    );
    ok(
        list.respond,
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
    );
    let claim = next_call(&mut handle).await;
    assert_eq!(
        (claim.method.clone(), claim.path.clone()),
        (
            Method::DELETE,
            format!("{NS}/persistentvolumeclaims/ss-home-{home}")
        )
    );
    ok(
        claim.respond,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
    );
    delete.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_home_a_pod_still_mounts_is_not_deleted() {
    let (runtime, mut handle) = runtime();
    let home = Uuid::from_u128(0x40e);
    let delete = tokio::spawn(async move { runtime.delete_home(home).await });
    ok(
        next_call(&mut handle).await.respond,
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
            "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": NAME}}]}),
    );
    let error = delete.await.unwrap().unwrap_err().to_string();
    assert_eq!(error, format!("home {home} is in use by Pod {NAME}"));
}
