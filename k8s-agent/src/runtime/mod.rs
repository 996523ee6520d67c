//! Where sessions run. One runtime per agent, chosen by `PLATFORM`.

pub mod kubernetes;
pub mod local;

use streamspace_protocol::{SessionReport, SessionSpec};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use uuid::Uuid;

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

/// The runtime this agent uses.
pub enum Runtime {
    /// Xvnc and a desktop program as local processes.
    Local(local::LocalRuntime),
    /// Pods and PVCs.
    Kubernetes(kubernetes::KubeRuntime),
}

impl Runtime {
    /// Starts a session and waits until its VNC server accepts connections. Idempotent: a
    /// session that already runs is reported as it is.
    pub async fn create(&self, spec: &SessionSpec) -> Result<SessionReport, RuntimeError> {
        match self {
            Runtime::Local(r) => r.create(spec).await,
            Runtime::Kubernetes(r) => r.create(spec).await,
        }
    }

    /// Stops a session and removes what it used (its home too unless `keep_home`).
    /// Deleting a session that does not exist succeeds.
    pub async fn delete(&self, id: Uuid, keep_home: bool) -> Result<(), RuntimeError> {
        match self {
            Runtime::Local(r) => r.delete(id, keep_home).await,
            Runtime::Kubernetes(r) => r.delete(id, keep_home).await,
        }
    }

    /// Removes a persistent home kept for a user and template; refused while a session uses
    /// it. Removing one that does not exist succeeds.
    pub async fn delete_home(&self, home_id: Uuid) -> Result<(), RuntimeError> {
        match self {
            Runtime::Local(r) => r.delete_home(home_id).await,
            Runtime::Kubernetes(r) => r.delete_home(home_id).await,
        }
    }

    /// Every session this agent holds, dead ones included (as `failed`).
    pub async fn list(&self) -> Result<Vec<SessionReport>, RuntimeError> {
        match self {
            Runtime::Local(r) => r.list().await,
            Runtime::Kubernetes(r) => r.list().await,
        }
    }

    /// What the periodic and event-driven reports send: every session held, those a command
    /// is creating or deleting right now as starting (their answers settle them; a report
    /// taken mid-way must not race them).
    pub async fn inventory(&self) -> Result<Vec<SessionReport>, RuntimeError> {
        match self {
            Runtime::Local(r) => r.list().await,
            Runtime::Kubernetes(r) => r.inventory().await,
        }
    }

    /// One session.
    pub async fn get(&self, id: Uuid) -> Result<SessionReport, RuntimeError> {
        self.list()
            .await?
            .into_iter()
            .find(|r| r.session_id == id)
            .ok_or(RuntimeError::NotFound(id))
    }

    /// Opens a connection to the session's VNC server.
    pub async fn open_vnc(&self, id: Uuid) -> Result<Box<dyn VncStream>, RuntimeError> {
        match self {
            Runtime::Local(r) => r.open_vnc(id).await,
            Runtime::Kubernetes(r) => Ok(Box::new(r.open_vnc(id).await?)),
        }
    }

    /// Fires whenever a session changed behind the agent's back (deleted or failed by someone
    /// else), so the link can send a fresh inventory at once; `None` for runtimes whose
    /// sessions only change through the agent.
    pub fn changes(&self) -> Option<futures_util::stream::BoxStream<'static, ()>> {
        match self {
            Runtime::Local(_) => None,
            Runtime::Kubernetes(r) => Some(r.changes()),
        }
    }

    /// How many sessions this agent accepts.
    pub fn max_sessions(&self) -> u32 {
        match self {
            Runtime::Local(r) => r.max_sessions(),
            Runtime::Kubernetes(r) => r.max_sessions(),
        }
    }
}
