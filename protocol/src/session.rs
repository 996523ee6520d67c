use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How much an agent can host, announced in `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Most sessions the agent will run at once.
    pub max_sessions: u32,
    /// CPU available to sessions, as a Kubernetes quantity (`"16"`, `"8000m"`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory available to sessions, as a Kubernetes quantity (`"64Gi"`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// CPU and memory for one session, as Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// CPU limit, e.g. `"1"` or `"1500m"`.
    pub cpu: String,
    /// Memory limit, e.g. `"2Gi"`.
    pub memory: String,
}

/// The desktop image and its settings, copied from the control plane's template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSpec {
    /// Template name, e.g. `"xfce-desktop"`.
    pub name: String,
    /// Container image (Kubernetes) or desktop program (local runtime).
    pub image: String,
    /// Port the VNC server listens on inside the session.
    pub vnc_port: u16,
    /// Extra environment for the session.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// Everything an agent needs to start a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpec {
    /// The session's id, chosen by the control plane.
    pub session_id: Uuid,
    /// Login name of the owner (for labels, environment and the home directory).
    pub user: String,
    /// What to run.
    pub template: TemplateSpec,
    /// CPU and memory.
    pub resources: Resources,
    /// Keep the home directory on a volume that outlives the session.
    pub persistent_home: bool,
    /// The persistent home to mount: the same for every session of this user and template on
    /// this agent (a directory or volume named after it). Without it (older control planes) a
    /// persistent home belongs to the session alone. Since protocol 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_id: Option<Uuid>,
}

/// State of a session as the agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentSessionState {
    /// Resources exist but the desktop is not ready yet.
    Starting,
    /// The desktop is up and its VNC server reachable.
    Running,
    /// Being torn down.
    Stopping,
    /// Gone, or never came up; the report's `message` says why.
    Failed,
}

/// Where the VNC server of a session can be reached from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VncEndpoint {
    /// Host or pod name.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// One session as an agent reports it (in `hello`, in `list_sessions`, in results).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReport {
    /// The session.
    pub session_id: Uuid,
    /// Its state on the agent.
    pub state: AgentSessionState,
    /// Where its VNC server listens, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vnc: Option<VncEndpoint>,
    /// Human-readable detail: a failure reason, a pod phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
