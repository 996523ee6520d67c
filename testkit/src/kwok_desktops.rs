//! What a kubelet and a container runtime would do for session Pods on kwok's fake node:
//! each StreamSpace Pod gets a real Xvnc (with an xterm) on this host, a kwok `PortForward`
//! that sends the Pod's VNC port to it, and then the annotation kwok's ready Stage waits for
//! (see `scripts/kube-cluster`), so the Pod turns Ready only once its desktop listens.
//! Pods whose image is on `registry.invalid` get nothing: kwok fails them with ErrImagePull.

use std::collections::HashMap;
use std::path::Path;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::xvnc::Xvnc;

/// The annotation kwok's ready Stage waits for on session Pods.
pub const DESKTOP_ANNOTATION: &str = "kwok.streamspace.io/desktop";
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=streamspace";

/// The running bridge; its desktops stop when it is dropped.
pub struct Desktops {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Desktops {
    fn drop(&mut self) {
        // Aborting drops the task's map of Xvnc servers, which stops them.
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A client acting as the cluster admin.
pub async fn admin_client(kubeconfig: &Path) -> Result<Client, String> {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
    Client::try_from(config).map_err(|e| e.to_string())
}

impl Desktops {
    /// Starts bridging the session Pods of `namespace` (all namespaces when `None`).
    pub async fn start(kubeconfig: &Path, namespace: Option<&str>) -> Result<Desktops, String> {
        let client = admin_client(kubeconfig).await?;
        let pods: Api<Pod> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let task = tokio::spawn(async move {
            let mut bridged: HashMap<(String, String), Xvnc> = HashMap::new();
            let mut events = std::pin::pin!(
                watcher(pods, watcher::Config::default().labels(MANAGED_BY)).default_backoff()
            );
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
                        if pod.metadata.deletion_timestamp.is_some() {
                            forget(&client, &mut bridged, key).await;
                        } else if !bridged.contains_key(&key) && wants_desktop(&pod) {
                            match bridge(&client, &pod).await {
                                Ok(xvnc) => {
                                    bridged.insert(key, xvnc);
                                }
                                Err(e) => eprintln!("kwok-desktops: {}/{}: {e}", key.0, key.1),
                            }
                        }
                    }
                    Ok(watcher::Event::Delete(pod)) => {
                        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
                        forget(&client, &mut bridged, key).await;
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("kwok-desktops: watch: {e}"),
                }
            }
        });
        Ok(Desktops { task: Some(task) })
    }

    /// Stops bridging and waits until every desktop it started has stopped.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

fn wants_desktop(pod: &Pod) -> bool {
    let image = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    !image.starts_with("registry.invalid/")
}

fn vnc_port(pod: &Pod) -> i32 {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some("vnc")))
        .map_or(5900, |p| p.container_port)
}

fn port_forwards(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "PortForward"),
        "portforwards",
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

async fn bridge(client: &Client, pod: &Pod) -> Result<Xvnc, String> {
    let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
    let desktop_name = name.clone();
    let xvnc = tokio::task::spawn_blocking(move || Xvnc::start("1024x768", &desktop_name))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("starting Xvnc: {e}"))?;
    let forward: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "PortForward",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"forwards": [{"ports": [vnc_port(pod)],
            "target": {"address": "127.0.0.1", "port": xvnc.port}}]},
    }))
    .map_err(|e| e.to_string())?;
    let params = PatchParams::apply("kwok-desktops").force();
    port_forwards(client, &namespace)
        .patch(&name, &params, &Patch::Apply(&forward))
        .await
        .map_err(|e| format!("creating its PortForward: {e}"))?;
    let annotate = json!({"metadata": {"annotations": {DESKTOP_ANNOTATION: format!("127.0.0.1:{}", xvnc.port)}}});
    Api::<Pod>::namespaced(client.clone(), &namespace)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&annotate))
        .await
        .map_err(|e| format!("annotating it: {e}"))?;
    Ok(xvnc)
}

async fn forget(
    client: &Client,
    bridged: &mut HashMap<(String, String), Xvnc>,
    key: (String, String),
) {
    if bridged.remove(&key).is_some() {
        let _ = port_forwards(client, &key.0)
            .delete(&key.1, &DeleteParams::default())
            .await;
    }
}
