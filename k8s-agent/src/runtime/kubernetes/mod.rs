//! The `kubernetes` platform: each session is a Pod and (for a persistent home) a
//! PersistentVolumeClaim, applied with server-side apply. There is no Service: VNC goes
//! through the Pod's port-forward, so the agent needs no route to the Pod network and nothing
//! else in the cluster can reach a desktop. Readiness and deletion are awaited with watches,
//! and a watch on the agent's own Pods reports changes made behind its back.

pub mod client;
mod forwarded;
pub mod objects;

mod status;

use std::time::Duration;

use futures_util::stream::{BoxStream, StreamExt};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use streamspace_protocol::{AgentSessionState, SessionReport, SessionSpec, VncEndpoint};
use uuid::Uuid;

use self::forwarded::Forwarded;
use self::objects::{Layout, SESSION_LABEL};
pub use self::status::{Starting, starting_state};
use super::session_locks::SessionLocks;
use super::{Runtime, RuntimeError, RuntimeFuture, VncStream};

/// Field manager of every server-side apply: conflicts name us.
pub const FIELD_MANAGER: &str = "streamspace-agent";

/// How long a deleted Pod may take to go away (its grace period is 10 s).
const DELETE_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Create and delete of one session never overlap.
    locks: SessionLocks,
}

/// The namespaced objects the runtime reads and writes (Pods, claims).
trait Namespaced:
    kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
}

impl<K> Namespaced for K where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
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
        KubeRuntime {
            client,
            settings,
            locks: SessionLocks::default(),
        }
    }

    fn api<K: Namespaced>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), &self.settings.layout.namespace)
    }

    async fn apply<K: Namespaced + Serialize>(
        &self,
        object: &K,
        name: &str,
    ) -> Result<(), RuntimeError> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api::<K>()
            .patch(name, &params, &Patch::Apply(object))
            .await
            .map(|_| ())
            .map_err(|e| api_error(&format!("applying {} {name}", K::kind(&())), e))
    }

    /// See [`super::Runtime::create`]: applies the objects (idempotent by construction) and
    /// waits for the Pod to be Ready. A session that cannot start leaves nothing behind but a
    /// home claim that existed before.
    pub async fn create(&self, spec: &SessionSpec) -> Result<SessionReport, RuntimeError> {
        let _serialized = self.locks.lock(spec.session_id).await;
        let layout = &self.settings.layout;
        let name = objects::session_name(spec.session_id);
        let claim = spec.persistent_home.then(|| objects::claim_name(spec));
        // A claim made by this very call goes if the start fails (nothing ran on it); one an
        // earlier session used stays.
        let mut made_claim = None;
        if let Some(claim) = &claim
            && !self.exists::<PersistentVolumeClaim>(claim).await?
        {
            self.apply(&objects::home_claim(layout, spec), claim)
                .await?;
            made_claim = Some(claim.as_str());
        }
        let started = match self.apply(&objects::pod(layout, spec), &name).await {
            Ok(()) => self.wait_ready(&name, claim.as_deref()).await,
            Err(e) => Err(e),
        };
        if started.is_err()
            && let Err(e) = self.remove(spec.session_id, made_claim).await
        {
            log::warn!(
                session_id:% = spec.session_id;
                    "session {}: cleaning up after a failed start: {e}",
                spec.session_id
            );
        }
        started
    }

    /// See [`super::Runtime::delete_home`]: the home's claim, unless a Pod of this agent
    /// still mounts it.
    pub async fn delete_home(&self, home_id: Uuid) -> Result<(), RuntimeError> {
        let params =
            ListParams::default().labels(&objects::home_selector(&self.settings.layout, home_id));
        let users = self
            .api::<Pod>()
            .list(&params)
            .await
            .map_err(|e| api_error("listing Pods", e))?;
        if let Some(pod) = users.items.first() {
            return Err(RuntimeError::Other(format!(
                "home {home_id} is in use by Pod {}",
                pod.name_any()
            )));
        }
        let claim = objects::shared_home_name(home_id);
        match self
            .api::<PersistentVolumeClaim>()
            .delete(&claim, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error("deleting PersistentVolumeClaim", e)),
        }
    }

    async fn exists<K: Namespaced>(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.api::<K>().get(name).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(api_error(&format!("reading {} {name}", K::kind(&())), e)),
        }
    }

    /// Watches the Pod until it is Ready or cannot become Ready, within the deadline.
    async fn wait_ready(
        &self,
        name: &str,
        claim: Option<&str>,
    ) -> Result<SessionReport, RuntimeError> {
        let settled = |pod: Option<&Pod>| {
            pod.is_none_or(|pod| !matches!(starting_state(pod), Starting::Waiting(_)))
        };
        let timeout = self.settings.ready_timeout;
        match tokio::time::timeout(timeout, await_condition(self.api(), name, settled)).await {
            Ok(Ok(Some(pod))) => match starting_state(&pod) {
                Starting::Ready => Ok(self.report(&pod)),
                Starting::Failed(why) | Starting::Waiting(why) => {
                    Err(RuntimeError::Start(format!("Pod {name}: {why}")))
                }
            },
            Ok(Ok(None)) => Err(RuntimeError::Start(format!(
                "Pod {name} was deleted while it was starting"
            ))),
            Ok(Err(e)) => Err(RuntimeError::Other(format!("watching Pod {name}: {e}"))),
            Err(_) => {
                let mut waiting = match self.api::<Pod>().get(name).await {
                    Ok(pod) => match starting_state(&pod) {
                        Starting::Waiting(why) | Starting::Failed(why) => why,
                        Starting::Ready => "it became Ready just too late".into(),
                    },
                    Err(e) => format!("cannot read it: {e}"),
                };
                if let Some(claim) = claim
                    && let Some(claim) = self.pending_claim(claim).await
                {
                    waiting = format!("{waiting}; {claim}");
                }
                Err(RuntimeError::Start(format!(
                    "Pod {name} not ready within {}s: {waiting}",
                    timeout.as_secs()
                )))
            }
        }
    }

    /// Why the home claim `claim_name` is not bound, if it is not.
    async fn pending_claim(&self, claim_name: &str) -> Option<String> {
        let claim = self
            .api::<PersistentVolumeClaim>()
            .get(claim_name)
            .await
            .ok()?;
        let phase = claim.status.as_ref()?.phase.clone()?;
        (phase != "Bound").then(|| {
            let class = claim
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
                .map_or_else(
                    || "the cluster's default storage class".to_owned(),
                    |c| format!("storage class {c:?}"),
                );
            format!("its home volume claim {claim_name} is {phase} ({class}: does it exist, and can it provision volumes?)")
        })
    }

    /// See [`super::Runtime::delete`]: the Pod (awaited until it is gone) and, unless
    /// `keep_home`, the claim.
    pub async fn delete(&self, id: Uuid, keep_home: bool) -> Result<(), RuntimeError> {
        let _serialized = self.locks.lock(id).await;
        let own_claim = objects::home_name(id);
        self.remove(id, (!keep_home).then_some(own_claim.as_str()))
            .await
    }

    /// Deletes the Pod (awaited until it is gone), then `claim` if given.
    async fn remove(&self, id: Uuid, claim: Option<&str>) -> Result<(), RuntimeError> {
        let name = objects::session_name(id);
        let pods = self.api::<Pod>();
        match pods.delete(&name, &DeleteParams::default()).await {
            // Deletion began; the Pod goes once its containers stopped.
            Ok(either) => {
                if let Some(uid) = either.left().and_then(|pod| pod.uid()) {
                    let gone = await_condition(pods, &name, conditions::is_deleted(&uid));
                    match tokio::time::timeout(DELETE_TIMEOUT, gone).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            return Err(RuntimeError::Other(format!(
                                "watching Pod {name} go away: {e}"
                            )));
                        }
                        Err(_) => {
                            return Err(RuntimeError::Other(format!(
                                "Pod {name} still exists {}s after it was deleted",
                                DELETE_TIMEOUT.as_secs()
                            )));
                        }
                    }
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error("deleting Pod", e)),
        }
        if let Some(claim) = claim {
            let claims = self.api::<PersistentVolumeClaim>();
            match claims.delete(claim, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api_error("deleting PersistentVolumeClaim", e)),
            }
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

    /// See [`super::Runtime::inventory`]: [`Self::list`], with the sessions a command is
    /// working on reported as starting.
    pub async fn inventory(&self) -> Result<Vec<SessionReport>, RuntimeError> {
        self.locks.inventory(self.list()).await
    }

    /// See [`super::Runtime::changes`]: a watch on this agent's Pods that yields whenever one
    /// is deleted or fails, whoever did it. Watch errors are retried with backoff.
    pub fn changes(&self) -> BoxStream<'static, ()> {
        let config =
            watcher::Config::default().labels(&objects::agent_selector(&self.settings.layout));
        watcher(self.api::<Pod>(), config)
            .default_backoff()
            .filter_map(|event| async move {
                match event {
                    Ok(watcher::Event::Delete(_)) => Some(()),
                    Ok(watcher::Event::Apply(pod))
                        if matches!(starting_state(&pod), Starting::Failed(_)) =>
                    {
                        Some(())
                    }
                    Ok(_) => None,
                    Err(e) => {
                        log::warn!("watching this agent's Pods: {e}");
                        None
                    }
                }
            })
            .boxed()
    }

    /// See [`super::Runtime::open_vnc`]: a port-forward to the Pod's VNC port.
    pub async fn open_vnc(&self, id: Uuid) -> Result<Forwarded, RuntimeError> {
        let name = objects::session_name(id);
        let pod = match self.api::<Pod>().get(&name).await {
            Ok(pod) => pod,
            Err(e) if is_not_found(&e) => return Err(RuntimeError::NotFound(id)),
            Err(e) => return Err(api_error(&format!("reading Pod {name}"), e)),
        };
        let port = status::vnc_port(&pod);
        let mut forwarder = self
            .api::<Pod>()
            .portforward(&name, &[port])
            .await
            .map_err(|e| api_error(&format!("port-forward to {name}:{port}"), e))?;
        let stream = forwarder.take_stream(port).ok_or_else(|| {
            RuntimeError::Other(format!("port-forward to {name}:{port} gave no stream"))
        })?;
        let errors = forwarder.take_error(port);
        // The forwarder's task lives on detached; it ends when the stream is dropped.
        drop(forwarder);
        Ok(Forwarded::new(stream, errors, format!("{name}:{port}")))
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
            // Reached through the Pod's port-forward, named by the Pod.
            vnc: (state == AgentSessionState::Running).then(|| VncEndpoint {
                host: format!("pod/{}", pod.name_any()),
                port: status::vnc_port(pod),
            }),
            message,
        }
    }
}

impl Runtime for KubeRuntime {
    fn create<'a>(&'a self, spec: &'a SessionSpec) -> RuntimeFuture<'a, SessionReport> {
        Box::pin(KubeRuntime::create(self, spec))
    }

    fn delete(&self, id: Uuid, keep_home: bool) -> RuntimeFuture<'_, ()> {
        Box::pin(KubeRuntime::delete(self, id, keep_home))
    }

    fn delete_home(&self, home_id: Uuid) -> RuntimeFuture<'_, ()> {
        Box::pin(KubeRuntime::delete_home(self, home_id))
    }

    fn list(&self) -> RuntimeFuture<'_, Vec<SessionReport>> {
        Box::pin(KubeRuntime::list(self))
    }

    fn inventory(&self) -> RuntimeFuture<'_, Vec<SessionReport>> {
        Box::pin(KubeRuntime::inventory(self))
    }

    fn open_vnc(&self, id: Uuid) -> RuntimeFuture<'_, Box<dyn VncStream>> {
        Box::pin(async move {
            let stream: Box<dyn VncStream> = Box::new(KubeRuntime::open_vnc(self, id).await?);
            Ok(stream)
        })
    }

    fn changes(&self) -> Option<BoxStream<'static, ()>> {
        Some(KubeRuntime::changes(self))
    }

    fn max_sessions(&self) -> u32 {
        self.settings.max_sessions
    }
}
