//! Where sessions run. One runtime per agent, chosen by `PLATFORM`.

pub mod docker;
pub mod kubernetes;
pub mod labels;
pub mod local;
mod session_env;
mod session_locks;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use streamspace_protocol::{SessionReport, SessionSpec};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use uuid::Uuid;

/// How long the agent waits for a runtime to list its sessions before going on without the
/// list. The clients of a Kubernetes API server or a Docker engine that accepted the
/// connection and then froze wait minutes (kube's read timeout is 295 s).
pub const LIST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the agent waits to reach a session's VNC server (a port-forward through the API
/// server, the engine's answer, a socket) before telling the viewer why it cannot.
pub const OPEN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// `call`, given up after `deadline`: the error is then `failure` and how long it waited.
pub async fn within<T>(
    deadline: std::time::Duration,
    failure: &str,
    call: impl Future<Output = Result<T, RuntimeError>>,
) -> Result<T, String> {
    match tokio::time::timeout(deadline, call).await {
        Ok(done) => done.map_err(|e| e.to_string()),
        Err(_) => Err(format!("{failure} within {} s", deadline.as_secs())),
    }
}

/// A list of the runtime's sessions, given up after `deadline`.
pub async fn listed<T>(
    deadline: std::time::Duration,
    list: impl Future<Output = Result<T, RuntimeError>>,
) -> Result<T, String> {
    within(deadline, "the runtime did not list its sessions", list).await
}

/// A byte stream to a session's VNC server.
pub trait VncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> VncStream for T {}

/// Why a runtime operation failed; the message goes back to the control plane as is.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// No such session on this agent.
    #[error("no session {0} on this agent")]
    NotFound(Uuid),
    /// The session could not be started; says why.
    #[error("{0}")]
    Start(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// A future a runtime returns (boxed, so runtimes are interchangeable behind `dyn Runtime`).
pub type RuntimeFuture<'a, T> = BoxFuture<'a, Result<T, RuntimeError>>;

/// Where this agent runs sessions: one implementation per platform, each in its own module,
/// chosen by `PLATFORM` at start.
pub trait Runtime: Send + Sync + 'static {
    /// Starts a session and waits until its VNC server accepts connections. Idempotent: a
    /// session that already runs is reported as it is.
    fn create<'a>(&'a self, spec: &'a SessionSpec) -> RuntimeFuture<'a, SessionReport>;

    /// Stops a session and removes what it used (its own home too unless `keep_home`; a
    /// persistent home shared by a user's sessions stays). Deleting a session that does not
    /// exist succeeds.
    fn delete(&self, id: Uuid, keep_home: bool) -> RuntimeFuture<'_, ()>;

    /// Removes a persistent home kept for a user and template; refused while a session uses
    /// it. Removing one that does not exist succeeds.
    fn delete_home(&self, home_id: Uuid) -> RuntimeFuture<'_, ()>;

    /// Every session this agent holds, dead ones included (as `failed`).
    fn list(&self) -> RuntimeFuture<'_, Vec<SessionReport>>;

    /// What the periodic and event-driven reports send: every session held, those a command
    /// is creating or deleting right now as starting (their answers settle them; a report
    /// taken mid-way must not race them).
    fn inventory(&self) -> RuntimeFuture<'_, Vec<SessionReport>> {
        self.list()
    }

    /// One session.
    fn get(&self, id: Uuid) -> RuntimeFuture<'_, SessionReport> {
        Box::pin(async move {
            self.list()
                .await?
                .into_iter()
                .find(|r| r.session_id == id)
                .ok_or(RuntimeError::NotFound(id))
        })
    }

    /// Opens a connection to the session's VNC server.
    fn open_vnc(&self, id: Uuid) -> RuntimeFuture<'_, Box<dyn VncStream>>;

    /// Fires whenever a session changed behind the agent's back (deleted or failed by someone
    /// else), so the link can send a fresh inventory at once; `None` for runtimes whose
    /// sessions only change through the agent.
    fn changes(&self) -> Option<BoxStream<'static, ()>> {
        None
    }

    /// How many sessions this agent accepts.
    fn max_sessions(&self) -> u32;
}
