//! The `kubernetes` platform: each session is a Pod, a Service and (for a persistent home) a
//! PersistentVolumeClaim, applied with server-side apply; VNC goes through the Pod's
//! port-forward, so the agent needs no route to the Pod network.

pub mod client;
pub mod objects;

use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use streamspace_protocol::{AgentSessionState, SessionReport, SessionSpec, VncEndpoint};
use uuid::Uuid;

use self::objects::{Layout, SESSION_LABEL};
use super::RuntimeError;

/// Field manager of every server-side apply: conflicts name us.
pub const FIELD_MANAGER: &str = "streamspace-agent";

/// How often a starting Pod is looked at.
const POLL: Duration = Duration::from_millis(250);

/// Container states that will not fix themselves: fail at once instead of waiting.
const FATAL_WAITING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];

/// Settings of the Kubernetes runtime.
#[derive(Debug, Clone)]
pub struct KubeSettings {
    /// Object layout.
    pub layout: Layout,
    /// How long a Pod may take to become Ready.
    pub ready_timeout: Duration,
    /// Most sessions at once.
    pub max_sessions: u32,
}

/// The runtime.
pub struct KubeRuntime {
    client: Client,
    settings: KubeSettings,
}

fn api_error(what: &str, e: kube::Error) -> RuntimeError {
    match e {
        kube::Error::Api(status) => {
            RuntimeError::Other(format!("{what}: {} ({})", status.message, status.reason))
        }
        other => RuntimeError::Other(format!("{what}: {other}")),
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}

impl KubeRuntime {
    /// A runtime talking to the cluster through `client`.
    pub fn new(client: Client, settings: KubeSettings) -> Self {
        KubeRuntime { client, settings }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.settings.layout.namespace)
    }

    /// Most sessions at once.
    pub fn max_sessions(&self) -> u32 {
        self.settings.max_sessions
    }

    async fn apply<K>(&self, object: &K, name: &str) -> Result<(), RuntimeError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api::<K>()
            .patch(name, &params, &Patch::Apply(object))
            .await
            .map(|_| ())
            .map_err(|e| {
                api_error(
                    &format!("applying {} {name}", K::kind(&K::DynamicType::default())),
                    e,
                )
            })
    }

    /// See [`super::Runtime::create`]: applies the objects (idempotent by construction) and
    /// waits for the Pod to be Ready.
    pub async fn create(&self, spec: &SessionSpec) -> Result<SessionReport, RuntimeError> {
        let layout = &self.settings.layout;
        let name = objects::session_name(spec.session_id);
        if spec.persistent_home {
            self.apply(
                &objects::home_claim(layout, spec),
                &objects::home_name(spec.session_id),
            )
            .await?;
        }
        self.apply(&objects::service(layout, spec), &name).await?;
        self.apply(&objects::pod(layout, spec), &name).await?;
        self.wait_ready(&name).await
    }

    async fn wait_ready(&self, name: &str) -> Result<SessionReport, RuntimeError> {
        let pods = self.api::<Pod>();
        let deadline = tokio::time::Instant::now() + self.settings.ready_timeout;
        loop {
            let pod = pods
                .get(name)
                .await
                .map_err(|e| api_error(&format!("reading Pod {name}"), e))?;
            let waiting = match starting_state(&pod) {
                Starting::Ready => return Ok(self.report(&pod)),
                Starting::Failed(why) => {
                    return Err(RuntimeError::Start(format!("Pod {name}: {why}")));
                }
                Starting::Waiting(why) => why,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Start(format!(
                    "Pod {name} not ready within {}s: {waiting}",
                    self.settings.ready_timeout.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// See [`super::Runtime::delete`]: the Pod, the Service and, unless `keep_home`, the claim.
    pub async fn delete(&self, id: Uuid, keep_home: bool) -> Result<(), RuntimeError> {
        let name = objects::session_name(id);
        let params = DeleteParams::default();
        fn ignore_missing<T>(
            what: &str,
            result: Result<T, kube::Error>,
        ) -> Result<(), RuntimeError> {
            match result {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(api_error(&format!("deleting {what}"), e)),
            }
        }
        ignore_missing("Pod", self.api::<Pod>().delete(&name, &params).await)?;
        ignore_missing(
            "Service",
            self.api::<Service>().delete(&name, &params).await,
        )?;
        if !keep_home {
            let claim = objects::home_name(id);
            let claims = self.api::<PersistentVolumeClaim>();
            ignore_missing(
                "PersistentVolumeClaim",
                claims.delete(&claim, &params).await,
            )?;
        }
        Ok(())
    }

    /// See [`super::Runtime::list`]: this agent's Pods, found by label.
    pub async fn list(&self) -> Result<Vec<SessionReport>, RuntimeError> {
        let params = ListParams::default().labels(&objects::agent_selector(&self.settings.layout));
        let pods = self
            .api::<Pod>()
            .list(&params)
            .await
            .map_err(|e| api_error("listing Pods", e))?;
        Ok(pods
            .items
            .iter()
            .filter_map(|pod| self.try_report(pod))
            .collect())
    }

    /// See [`super::Runtime::open_vnc`]: a port-forward to the Pod's VNC port.
    pub async fn open_vnc(&self, id: Uuid) -> Result<tokio::io::DuplexStream, RuntimeError> {
        let name = objects::session_name(id);
        let pod = match self.api::<Pod>().get(&name).await {
            Ok(pod) => pod,
            Err(e) if is_not_found(&e) => return Err(RuntimeError::NotFound(id)),
            Err(e) => return Err(api_error(&format!("reading Pod {name}"), e)),
        };
        let port = vnc_port(&pod);
        let mut forwarder = self
            .api::<Pod>()
            .portforward(&name, &[port])
            .await
            .map_err(|e| api_error(&format!("port-forward to {name}:{port}"), e))?;
        // The forwarder's task lives on detached; it ends when this stream is dropped.
        forwarder.take_stream(port).ok_or_else(|| {
            RuntimeError::Other(format!("port-forward to {name}:{port} gave no stream"))
        })
    }

    fn try_report(&self, pod: &Pod) -> Option<SessionReport> {
        pod.labels().get(SESSION_LABEL)?.parse::<Uuid>().ok()?;
        Some(self.report(pod))
    }

    fn report(&self, pod: &Pod) -> SessionReport {
        let session_id = pod
            .labels()
            .get(SESSION_LABEL)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        let (state, message) = if pod.metadata.deletion_timestamp.is_some() {
            (AgentSessionState::Stopping, None)
        } else {
            match starting_state(pod) {
                Starting::Ready => (AgentSessionState::Running, None),
                Starting::Waiting(why) => (AgentSessionState::Starting, Some(why)),
                Starting::Failed(why) => (AgentSessionState::Failed, Some(why)),
            }
        };
        SessionReport {
            session_id,
            state,
            vnc: (state == AgentSessionState::Running).then(|| VncEndpoint {
                host: format!("{}.{}.svc", pod.name_any(), self.settings.layout.namespace),
                port: vnc_port(pod),
            }),
            message,
        }
    }
}

/// Where a starting Pod stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Starting {
    /// Ready condition true.
    Ready,
    /// Not yet; says what it waits for.
    Waiting(String),
    /// Will not become ready by itself; says why.
    Failed(String),
}

/// Reads a Pod's status the way `kubectl describe` would summarise it.
pub fn starting_state(pod: &Pod) -> Starting {
    let Some(status) = &pod.status else {
        return Starting::Waiting("no status yet".into());
    };
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if phase == "Failed" || phase == "Succeeded" {
        let why = status
            .message
            .clone()
            .or(status.reason.clone())
            .unwrap_or_default();
        return Starting::Failed(format!("Pod is {phase} {why}").trim().to_owned());
    }
    for container in status.container_statuses.iter().flatten() {
        if let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.clone().unwrap_or_default();
            if FATAL_WAITING.contains(&reason.as_str()) {
                let message = waiting.message.clone().unwrap_or_default();
                return Starting::Failed(
                    format!("{reason}: {message}")
                        .trim_end_matches(": ")
                        .to_owned(),
                );
            }
        }
    }
    let conditions = status.conditions.iter().flatten();
    let mut waiting = format!("phase {phase}");
    for condition in conditions {
        if condition.type_ == "Ready" && condition.status == "True" {
            return Starting::Ready;
        }
        if condition.type_ == "PodScheduled" && condition.status == "False" {
            let reason = condition.reason.clone().unwrap_or_default();
            let message = condition.message.clone().unwrap_or_default();
            waiting = format!("{reason}: {message}");
        }
    }
    Starting::Waiting(waiting)
}

fn vnc_port(pod: &Pod) -> u16 {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some("vnc")))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(5900)
}
