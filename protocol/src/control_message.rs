use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::agent_message::check_size;
use crate::session::SessionSpec;
use crate::version::ProtocolVersion;
use crate::{ProtocolError, StreamId};

/// A JSON message from the control plane to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// Answer to `hello`: the agent is registered.
    Welcome {
        /// The control plane's protocol version.
        protocol_version: ProtocolVersion,
        /// Send a heartbeat this often, in milliseconds.
        heartbeat_interval_ms: u64,
        /// Initial credit window for each new stream, in bytes.
        stream_window: u32,
    },
    /// Something for the agent to do. Redelivered until answered; the agent must treat a
    /// repeated `command_id` as the same command.
    Command {
        /// Unique id; the agent answers with `ack` then `completed` or `failed`.
        command_id: Uuid,
        /// What to do.
        command: Command,
    },
    /// A message from the agent was rejected; the connection stays open.
    Error {
        /// Machine-readable, snake_case.
        code: String,
        /// For the agent's log.
        message: String,
    },
    /// A message type this build does not know (sent by a newer control plane). Ignored.
    #[serde(other)]
    Unknown,
}

/// The commands an agent carries out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Command {
    /// Start a session; the result is a `SessionReport` once it is running.
    CreateSession(SessionSpec),
    /// Stop a session and remove what it used.
    DeleteSession {
        /// The session.
        session_id: Uuid,
        /// Keep the home volume for a later session.
        #[serde(default)]
        keep_home: bool,
    },
    /// Report every session; the result is `{"sessions": [SessionReport…]}`.
    ListSessions,
    /// Report one session; the result is a `SessionReport`.
    GetSession {
        /// The session.
        session_id: Uuid,
    },
    /// Open a stream to the session's VNC server; bytes then flow as binary frames.
    VncConnect {
        /// The session.
        session_id: Uuid,
        /// Stream id for the binary frames, chosen by the control plane.
        stream_id: StreamId,
        /// How many bytes the agent may send before waiting for credit.
        window: u32,
    },
    /// Remove a persistent home (its directory or volume); refused while a session uses it.
    /// Since protocol 1.2.
    DeleteHome {
        /// The home.
        home_id: Uuid,
    },
    /// Close a stream (the viewer went away).
    VncDisconnect {
        /// The stream.
        stream_id: StreamId,
        /// Why.
        reason: String,
    },
}

impl Command {
    /// The wire name of [`Command::DeleteHome`].
    pub const DELETE_HOME: &'static str = "delete_home";

    /// The command's wire name, as stored in `agent_commands.command_type`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateSession(_) => "create_session",
            Command::DeleteSession { .. } => "delete_session",
            Command::ListSessions => "list_sessions",
            Command::GetSession { .. } => "get_session",
            Command::VncConnect { .. } => "vnc_connect",
            Command::VncDisconnect { .. } => "vnc_disconnect",
            Command::DeleteHome { .. } => Self::DELETE_HOME,
        }
    }
}

impl ControlMessage {
    /// Decodes a text frame, refusing oversize input before parsing it.
    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        check_size(text)?;
        serde_json::from_str(text).map_err(ProtocolError::Malformed)
    }

    /// Encodes for a text frame.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("control message serializes")
    }
}
