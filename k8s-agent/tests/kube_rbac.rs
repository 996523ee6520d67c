//! The agent chart's RBAC and the session namespace's Pod Security, checked by a real API
//! server: the agent's ServiceAccount may do what the agent needs in its namespace and
//! nothing else, and the namespace refuses Pods that are not `restricted`.

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use streamspace_k8s_agent::runtime::kubernetes::client::client;
use streamspace_testkit::kube_cluster::KubeCluster;

fn status_code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(status) => (status.code, status.message),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn the_agents_service_account_is_forbidden_outside_its_namespace_and_resources() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = KubeCluster::shared();
    let namespace = tokio::task::spawn_blocking(|| cluster.agent_namespace("rbac", &[]))
        .await
        .unwrap()
        .unwrap();
    let agent = client(Some(namespace.kubeconfig.path())).await.unwrap();

    // What the agent needs works.
    let pods: Api<Pod> = Api::namespaced(agent.clone(), &namespace.name);
    pods.list(&ListParams::default()).await.unwrap();

    // Other namespaces, cluster-wide reads, Secrets and Services are refused.
    let elsewhere: Api<Pod> = Api::namespaced(agent.clone(), "kube-system");
    assert_eq!(
        status_code(elsewhere.list(&ListParams::default()).await.unwrap_err()).0,
        403
    );
    let everywhere: Api<Pod> = Api::all(agent.clone());
    assert_eq!(
        status_code(everywhere.list(&ListParams::default()).await.unwrap_err()).0,
        403
    );
    let secrets: Api<Secret> = Api::namespaced(agent.clone(), &namespace.name);
    assert_eq!(
        status_code(secrets.list(&ListParams::default()).await.unwrap_err()).0,
        403
    );
    let services: Api<Service> = Api::namespaced(agent.clone(), &namespace.name);
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "desktop"}, "spec": {"ports": [{"port": 5900}]}
    }))
    .unwrap();
    let (code, message) = status_code(
        services
            .create(&PostParams::default(), &service)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403, "{message}");
}

#[tokio::test]
async fn the_session_namespace_refuses_pods_that_are_not_restricted() {
    let cluster = KubeCluster::shared();
    let namespace = tokio::task::spawn_blocking(|| cluster.agent_namespace("psa", &[]))
        .await
        .unwrap()
        .unwrap();
    // A plain Pod: root allowed, capabilities kept, no seccomp profile.
    let root_pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "debian"}]}}"#;
    let refused = namespace
        .kubectl(&["apply", "-f", "-"], Some(root_pod))
        .unwrap_err();
    assert!(
        refused.contains("violates PodSecurity \"restricted:latest\""),
        "{refused}"
    );
}
