use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::session::{AgentSessionState, Capacity, SessionReport};
use crate::version::ProtocolVersion;
use crate::{MAX_TEXT_MESSAGE, ProtocolError, StreamId};

/// A JSON message from an agent to the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// First message on every connection.
    Hello {
        /// The protocol version the agent speaks.
        protocol_version: ProtocolVersion,
        /// The agent's id; must match its credential.
        agent_id: String,
        /// `kubernetes` or `local`.
        platform: String,
        /// Where the agent runs, for placement.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// How much it can host.
        capacity: Capacity,
        /// The sessions it holds right now, so the control plane can reconcile.
        sessions: Vec<SessionReport>,
        /// Why `sessions` could not be read (e.g. the runtime refused to list them): the
        /// control plane then judges nothing by them. Since protocol 1.1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inventory_error: Option<String>,
    },
    /// Sent every heartbeat interval, without waiting for the runtime.
    Heartbeat {
        /// Sessions the agent held at its runtime's last list (hello or inventory).
        active_sessions: u32,
    },
    /// The command was received and will be carried out.
    Ack {
        /// Which command.
        command_id: Uuid,
    },
    /// The command finished.
    Completed {
        /// Which command.
        command_id: Uuid,
        /// Command-specific result (e.g. a [`SessionReport`]).
        result: serde_json::Value,
    },
    /// The command could not be carried out.
    Failed {
        /// Which command.
        command_id: Uuid,
        /// Why, in words an administrator can act on.
        error: String,
    },
    /// A session changed state on its own (desktop exited, pod evicted, …).
    SessionStatus {
        /// The session.
        session_id: Uuid,
        /// Its new state.
        state: AgentSessionState,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The sessions the agent holds now, sent periodically and whenever one changed behind
    /// its back (e.g. its Pod was deleted by someone else), so the control plane reconciles
    /// as it does on `hello`. Since protocol 1.1.
    Inventory {
        /// Every session the agent holds.
        sessions: Vec<SessionReport>,
    },
    /// The agent closed a VNC stream (the desktop went away, the port-forward failed).
    VncDisconnect {
        /// The stream that closed.
        stream_id: StreamId,
        /// Why.
        reason: String,
    },
    /// The agent is shutting down on purpose; not an outage.
    Goodbye {
        /// Why.
        reason: String,
    },
    /// A message type this build does not know (sent by a newer agent). Ignored.
    #[serde(other)]
    Unknown,
}

impl AgentMessage {
    /// Decodes a text frame, refusing oversize input before parsing it.
    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        check_size(text)?;
        serde_json::from_str(text).map_err(ProtocolError::Malformed)
    }

    /// Encodes for a text frame.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("agent message serializes")
    }
}

pub(crate) fn check_size(text: &str) -> Result<(), ProtocolError> {
    if text.len() > MAX_TEXT_MESSAGE {
        return Err(ProtocolError::TooLarge {
            size: text.len(),
            limit: MAX_TEXT_MESSAGE,
        });
    }
    Ok(())
}
