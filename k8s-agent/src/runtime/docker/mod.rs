//! The `docker` platform: each session is a container from the template's image, on a bridge
//! network of this agent's whose containers cannot reach each other, with its VNC port
//! published on 127.0.0.1 only (the agent's tunnels connect there), and a named volume for a
//! persistent home. Containers carry the agent's labels, so a restarted agent adopts them;
//! the engine's event stream reports containers that die behind the agent's back.

mod container;
mod engine;

use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions,
};
use futures_util::stream::{BoxStream, StreamExt};
use streamspace_protocol::{AgentSessionState, SessionReport, SessionSpec, VncEndpoint};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use uuid::Uuid;

use self::container::container_name;
pub use self::container::{Layout, bytes};
pub use self::engine::Engine;
use self::engine::is_status;
use super::labels::SESSION_LABEL;
use super::session_locks::SessionLocks;
use super::{Runtime, RuntimeError, RuntimeFuture, VncStream};

/// How often a starting container is looked at.
const POLL: Duration = Duration::from_millis(200);
/// How long a stopped desktop gets to exit before it is killed.
const STOP_GRACE_SECS: i32 = 10;
/// Log lines quoted when a container exits while starting.
const LOG_LINES: usize = 5;
/// Wait before watching the engine's events again after the stream broke.
const EVENTS_RETRY: Duration = Duration::from_secs(2);

/// Settings of the Docker runtime.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// The engine (`DOCKER_HOST`).
    pub engine: Engine,
    /// Object layout.
    pub layout: Layout,
    /// How long a container may take to answer with an RFB greeting.
    pub ready_timeout: Duration,
    /// Most sessions at once.
    pub max_sessions: u32,
}

/// The runtime.
pub struct DockerRuntime {
    settings: DockerSettings,
    /// Create and delete of one session never overlap.
    locks: SessionLocks,
}

impl DockerRuntime {
    /// A runtime driving the engine in `settings`.
    pub fn new(settings: DockerSettings) -> Self {
        DockerRuntime {
            settings,
            locks: SessionLocks::default(),
        }
    }

    /// The engine's version, asking it.
    pub async fn engine_version(&self) -> Result<String, RuntimeError> {
        let version = self
            .engine()
            .client()?
            .version()
            .await
            .map_err(|e| self.engine().error("asking its version", e))?;
        Ok(version
            .version
            .unwrap_or_else(|| "(version unknown)".into()))
    }

    fn engine(&self) -> &Engine {
        &self.settings.engine
    }

    /// See [`super::Runtime::create`]. A session that cannot start leaves nothing behind but a
    /// home volume that existed before.
    pub async fn create(&self, spec: &SessionSpec) -> Result<SessionReport, RuntimeError> {
        let _serialized = self.locks.lock(spec.session_id).await;
        let docker = self.engine().client()?;
        let name = container_name(spec.session_id);
        match docker.inspect_container(&name, None).await {
            Ok(existing) if is_running(&existing) => {
                return self.wait_ready(&docker, spec.session_id).await;
            }
            // A dead leftover of an earlier attempt: start afresh.
            Ok(_) => self.remove_container(&docker, &name).await?,
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(self.engine().error(&format!("reading container {name}"), e)),
        }
        let body =
            container::container(&self.settings.layout, spec).map_err(RuntimeError::Start)?;
        self.ensure_network(&docker).await?;
        let made_volume = match container::home_volume(spec) {
            Some(volume) => self.ensure_volume(&docker, spec, &volume).await?,
            None => None,
        };
        let started = match self.start(&docker, &name, body, &spec.template.image).await {
            Ok(()) => self.wait_ready(&docker, spec.session_id).await,
            Err(e) => Err(e),
        };
        if started.is_err() {
            let cleaned = match self.remove_container(&docker, &name).await {
                Ok(()) => match &made_volume {
                    Some(volume) => self.remove_volume(&docker, volume).await,
                    None => Ok(()),
                },
                Err(e) => Err(e),
            };
            if let Err(e) = cleaned {
                log::warn!(
                    session_id:% = spec.session_id;
                    "session {}: cleaning up after a failed start: {e}",
                    spec.session_id
                );
            }
        }
        started
    }

    /// Creates the container (pulling its image once if the engine does not have it) and
    /// starts it.
    async fn start(
        &self,
        docker: &Docker,
        name: &str,
        body: bollard::models::ContainerCreateBody,
        image: &str,
    ) -> Result<(), RuntimeError> {
        let options = || {
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..CreateContainerOptions::default()
            })
        };
        match docker.create_container(options(), body.clone()).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {
                self.pull(docker, image).await?;
                docker
                    .create_container(options(), body)
                    .await
                    .map_err(|e| {
                        self.engine()
                            .error(&format!("creating container {name}"), e)
                    })?;
            }
            Err(e) => {
                return Err(self
                    .engine()
                    .error(&format!("creating container {name}"), e));
            }
        }
        docker.start_container(name, None).await.map_err(|e| {
            match self
                .engine()
                .error(&format!("starting container {name}"), e)
            {
                RuntimeError::Other(why) => RuntimeError::Start(why),
                other => other,
            }
        })
    }

    async fn pull(&self, docker: &Docker, image: &str) -> Result<(), RuntimeError> {
        log::info!("pulling image {image}");
        let options = CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..CreateImageOptions::default()
        };
        let mut progress = docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            if let Err(e) = step {
                let why = match self.engine().error("pulling", e) {
                    RuntimeError::Other(why) | RuntimeError::Start(why) => why,
                    RuntimeError::NotFound(_) => String::new(),
                };
                return Err(RuntimeError::Start(format!(
                    "image {image} is not on the Docker engine at {} and could not be pulled ({why})",
                    self.engine().host()
                )));
            }
        }
        Ok(())
    }

    async fn ensure_network(&self, docker: &Docker) -> Result<(), RuntimeError> {
        let name = self.settings.layout.network();
        match docker.inspect_network(&name, None).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(self.engine().error(&format!("reading network {name}"), e)),
        }
        match docker
            .create_network(container::network(&self.settings.layout))
            .await
        {
            Ok(_) => Ok(()),
            // Made meanwhile by a concurrent create.
            Err(e) if is_status(&e, 409) => Ok(()),
            Err(e) => Err(self.engine().error(&format!("creating network {name}"), e)),
        }
    }

    /// Creates the home volume unless it exists; says whether this call made it.
    async fn ensure_volume(
        &self,
        docker: &Docker,
        spec: &SessionSpec,
        name: &str,
    ) -> Result<Option<String>, RuntimeError> {
        match docker.inspect_volume(name).await {
            Ok(_) => return Ok(None),
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(self.engine().error(&format!("reading volume {name}"), e)),
        }
        docker
            .create_volume(container::home_volume_request(
                &self.settings.layout,
                spec,
                name,
            ))
            .await
            .map_err(|e| self.engine().error(&format!("creating volume {name}"), e))?;
        Ok(Some(name.to_owned()))
    }

    /// Polls the container until its VNC port answers with an RFB greeting, it exits, or the
    /// deadline passes.
    async fn wait_ready(&self, docker: &Docker, id: Uuid) -> Result<SessionReport, RuntimeError> {
        let name = container_name(id);
        let timeout = self.settings.ready_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let inspected = docker
                .inspect_container(&name, None)
                .await
                .map_err(|e| self.engine().error(&format!("reading container {name}"), e))?;
            if !is_running(&inspected) {
                return Err(RuntimeError::Start(format!(
                    "container {name} {}{}",
                    exit_reason(&inspected),
                    self.last_log_lines(docker, &name).await
                )));
            }
            if let Some(port) = published_port(&inspected)
                && rfb_greeting(port).await
            {
                return Ok(running_report(id, port));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::Start(format!(
                    "container {name} not ready within {}s: its VNC port does not answer with an RFB greeting",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `: <the last lines>` of the container's output, or nothing.
    async fn last_log_lines(&self, docker: &Docker, name: &str) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: "50".into(),
            ..LogsOptions::default()
        };
        let chunks: Vec<_> = docker.logs(name, Some(options)).collect().await;
        let text: String = chunks
            .into_iter()
            .filter_map(Result::ok)
            .map(|chunk| chunk.to_string())
            .collect();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            return String::new();
        }
        let last = &lines[lines.len().saturating_sub(LOG_LINES)..];
        format!("; its log ends: {}", last.join(" | "))
    }

    /// See [`super::Runtime::delete`]: the container and, unless `keep_home`, the session's
    /// own home volume.
    pub async fn delete(&self, id: Uuid, keep_home: bool) -> Result<(), RuntimeError> {
        let _serialized = self.locks.lock(id).await;
        let docker = self.engine().client()?;
        self.remove_container(&docker, &container_name(id)).await?;
        if !keep_home {
            self.remove_volume(&docker, &container::own_home_volume(id))
                .await?;
        }
        Ok(())
    }

    async fn remove_container(&self, docker: &Docker, name: &str) -> Result<(), RuntimeError> {
        let stop = StopContainerOptions {
            t: Some(STOP_GRACE_SECS),
            signal: None,
        };
        // Stopped first so the desktop gets its grace period; whatever stop says, the forced
        // removal below settles it.
        if let Err(e) = docker.stop_container(name, Some(stop)).await
            && !is_status(&e, 404)
            && !is_status(&e, 304)
        {
            log::debug!("stopping container {name}: {e}");
        }
        let remove = RemoveContainerOptions {
            v: true,
            force: true,
            link: false,
        };
        match docker.remove_container(name, Some(remove)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(self
                .engine()
                .error(&format!("removing container {name}"), e)),
        }
    }

    async fn remove_volume(&self, docker: &Docker, name: &str) -> Result<(), RuntimeError> {
        match docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(self.engine().error(&format!("removing volume {name}"), e)),
        }
    }

    /// See [`super::Runtime::delete_home`]: the home's volume, unless a container of this
    /// agent mounts it.
    pub async fn delete_home(&self, home_id: Uuid) -> Result<(), RuntimeError> {
        let docker = self.engine().client()?;
        let users = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(self.settings.layout.home_filters(home_id)),
                ..ListContainersOptions::default()
            }))
            .await
            .map_err(|e| self.engine().error("listing containers", e))?;
        if let Some(user) = users.first() {
            return Err(RuntimeError::Other(format!(
                "home {home_id} is in use by container {}",
                summary_name(user)
            )));
        }
        self.remove_volume(&docker, &container::shared_home_volume(home_id))
            .await
    }

    /// See [`super::Runtime::list`]: this agent's containers, found by label.
    pub async fn list(&self) -> Result<Vec<SessionReport>, RuntimeError> {
        let docker = self.engine().client()?;
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(self.settings.layout.filters()),
                ..ListContainersOptions::default()
            }))
            .await
            .map_err(|e| self.engine().error("listing containers", e))?;
        Ok(containers.iter().filter_map(summary_report).collect())
    }

    /// See [`super::Runtime::changes`]: the engine's events for this agent's containers that
    /// die or are removed, whoever did it; watched again after the engine went away.
    pub fn changes(&self) -> BoxStream<'static, ()> {
        let engine = self.engine().clone();
        let mut filters = self.settings.layout.filters();
        filters.insert("type".into(), vec!["container".into()]);
        filters.insert(
            "event".into(),
            vec!["die".into(), "destroy".into(), "oom".into()],
        );
        let events: Option<BoxStream<'static, _>> = None;
        futures_util::stream::unfold(events, move |mut events| {
            let (engine, filters) = (engine.clone(), filters.clone());
            async move {
                loop {
                    let stream = match events.as_mut() {
                        Some(stream) => stream,
                        None => match engine.client() {
                            Ok(docker) => {
                                let options = EventsOptions {
                                    filters: Some(filters.clone()),
                                    ..EventsOptions::default()
                                };
                                events.insert(docker.events(Some(options)).boxed())
                            }
                            Err(_) => {
                                tokio::time::sleep(EVENTS_RETRY).await;
                                continue;
                            }
                        },
                    };
                    match stream.next().await {
                        Some(Ok(_)) => return Some(((), events)),
                        Some(Err(e)) => log::debug!("watching the engine's events: {e}"),
                        None => {}
                    }
                    events = None;
                    tokio::time::sleep(EVENTS_RETRY).await;
                }
            }
        })
        .boxed()
    }

    /// See [`super::Runtime::open_vnc`]: the container's VNC port on 127.0.0.1.
    pub async fn open_vnc(&self, id: Uuid) -> Result<TcpStream, RuntimeError> {
        let docker = self.engine().client()?;
        let name = container_name(id);
        let inspected = match docker.inspect_container(&name, None).await {
            Ok(inspected) => inspected,
            Err(e) if is_status(&e, 404) => return Err(RuntimeError::NotFound(id)),
            Err(e) => return Err(self.engine().error(&format!("reading container {name}"), e)),
        };
        let port = published_port(&inspected)
            .filter(|_| is_running(&inspected))
            .ok_or_else(|| {
                RuntimeError::Other(format!("container {name} {}", exit_reason(&inspected)))
            })?;
        TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| RuntimeError::Other(format!("connecting to {name}'s VNC port: {e}")))
    }
}

fn is_running(inspected: &ContainerInspectResponse) -> bool {
    inspected
        .state
        .as_ref()
        .and_then(|s| s.running)
        .unwrap_or(false)
}

/// Why a container is not running, e.g. "exited with code 1" or "was killed (out of memory)".
fn exit_reason(inspected: &ContainerInspectResponse) -> String {
    let Some(state) = &inspected.state else {
        return "has no state".into();
    };
    if state.oom_killed == Some(true) {
        return "was killed: out of memory (raise the template's memory)".into();
    }
    let code = state.exit_code.unwrap_or_default();
    match state.error.as_deref().filter(|e| !e.is_empty()) {
        Some(error) => format!("could not run: {error}"),
        None => format!("exited with code {code}"),
    }
}

/// The host port the engine published the VNC port on (on 127.0.0.1).
fn published_port(inspected: &ContainerInspectResponse) -> Option<u16> {
    inspected
        .network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .values()
        .flatten()
        .flatten()
        .find(|b| b.host_ip.as_deref() == Some("127.0.0.1"))?
        .host_port
        .as_ref()?
        .parse()
        .ok()
}

/// Whether a VNC server answers on 127.0.0.1:`port` (the engine's proxy accepts before the
/// desktop listens, so only the greeting tells).
async fn rfb_greeting(port: u16) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut greeting = [0u8; 12];
        stream.read_exact(&mut greeting).await.ok()?;
        Some(greeting.starts_with(b"RFB "))
    };
    tokio::time::timeout(Duration::from_secs(1), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

fn running_report(session_id: Uuid, port: u16) -> SessionReport {
    SessionReport {
        session_id,
        state: AgentSessionState::Running,
        vnc: Some(VncEndpoint {
            host: "127.0.0.1".into(),
            port,
        }),
        message: None,
    }
}

fn summary_name(summary: &ContainerSummary) -> String {
    summary
        .names
        .iter()
        .flatten()
        .next()
        .map_or_else(String::new, |n| n.trim_start_matches('/').to_owned())
}

fn summary_report(summary: &ContainerSummary) -> Option<SessionReport> {
    let session_id: Uuid = summary.labels.as_ref()?.get(SESSION_LABEL)?.parse().ok()?;
    let status = summary.status.clone();
    let report = |state, message| SessionReport {
        session_id,
        state,
        vnc: None,
        message,
    };
    Some(match summary.state? {
        ContainerSummaryStateEnum::RUNNING => {
            let port = summary
                .ports
                .iter()
                .flatten()
                .find(|p| p.ip.as_deref() == Some("127.0.0.1"))
                .and_then(|p| p.public_port);
            match port {
                Some(port) => running_report(session_id, port),
                None => report(
                    AgentSessionState::Failed,
                    Some("its VNC port is not published".into()),
                ),
            }
        }
        ContainerSummaryStateEnum::REMOVING => report(AgentSessionState::Stopping, status),
        ContainerSummaryStateEnum::EXITED | ContainerSummaryStateEnum::DEAD => report(
            AgentSessionState::Failed,
            Some(format!(
                "container {} {}",
                summary_name(summary),
                status.unwrap_or_default().to_lowercase()
            )),
        ),
        _ => report(AgentSessionState::Starting, status),
    })
}

impl Runtime for DockerRuntime {
    fn create<'a>(&'a self, spec: &'a SessionSpec) -> RuntimeFuture<'a, SessionReport> {
        Box::pin(DockerRuntime::create(self, spec))
    }

    fn delete(&self, id: Uuid, keep_home: bool) -> RuntimeFuture<'_, ()> {
        Box::pin(DockerRuntime::delete(self, id, keep_home))
    }

    fn delete_home(&self, home_id: Uuid) -> RuntimeFuture<'_, ()> {
        Box::pin(DockerRuntime::delete_home(self, home_id))
    }

    fn list(&self) -> RuntimeFuture<'_, Vec<SessionReport>> {
        Box::pin(DockerRuntime::list(self))
    }

    fn inventory(&self) -> RuntimeFuture<'_, Vec<SessionReport>> {
        Box::pin(self.locks.inventory(self.list()))
    }

    fn open_vnc(&self, id: Uuid) -> RuntimeFuture<'_, Box<dyn VncStream>> {
        Box::pin(async move {
            let stream = DockerRuntime::open_vnc(self, id).await?;
            Ok(Box::new(stream) as Box<dyn VncStream>)
        })
    }

    fn changes(&self) -> Option<BoxStream<'static, ()>> {
        Some(DockerRuntime::changes(self))
    }

    fn max_sessions(&self) -> u32 {
        self.settings.max_sessions
    }
}
