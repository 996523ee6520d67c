//! What the Supervisor is sent by the agents' connections, the commands and the viewers'
//! tunnels, and [`SupervisorHandle`], through which they send it without importing the
//! Supervisor (which starts and addresses them).

use actix::prelude::*;
use streamspace_protocol::{AgentMessage, Capacity, ControlMessage, SessionReport, StreamId};
use uuid::Uuid;

use super::link_messages::{Home, LinkHandle};
use super::tunnel_messages::TunnelHandle;

/// An authenticated connection said `hello`. Answered with `Err(reason)` to refuse it.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct AgentHello {
    /// The agent (already matched to its credential).
    pub agent_id: String,
    /// The new connection.
    pub conn_id: String,
    /// The credential it used.
    pub credential_id: Uuid,
    /// Announced platform.
    pub platform: String,
    /// Announced region.
    pub region: Option<String>,
    /// Announced capacity.
    pub capacity: Capacity,
    /// The sessions it holds, or why the agent could not list them.
    pub sessions: Result<Vec<SessionReport>, String>,
    /// The connection actor.
    pub link: LinkHandle,
}

/// A message from a greeted agent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromAgent {
    /// The agent.
    pub agent_id: String,
    /// The connection it came on.
    pub conn_id: String,
    /// What it said.
    pub message: AgentMessage,
}

/// Something (a pong, a stream frame) arrived: the agent is alive.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Seen {
    /// The agent.
    pub agent_id: String,
    /// The connection.
    pub conn_id: String,
}

/// A greeted connection ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentDisconnected {
    /// The agent.
    pub agent_id: String,
    /// The connection that ended.
    pub conn_id: String,
}

/// An authenticated agent was refused (incompatible protocol): it needs an admin.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AgentRefused {
    /// The agent.
    pub agent_id: String,
    /// Why.
    pub reason: String,
}

/// Writes a message to an agent's live connection; answers which connection, if any.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct SendToAgent {
    /// The agent.
    pub agent_id: String,
    /// The message.
    pub message: ControlMessage,
}

/// The connection id of an agent's live link, if it has one.
#[derive(Message)]
#[rtype(result = "Option<String>")]
pub struct LinkOf(pub String);

/// The worker an agent's live link runs on, if it is linked to this replica.
#[derive(Message)]
#[rtype(result = "Option<Home>")]
pub struct LinkHome(pub String);

/// A command actor stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CommandDone(pub Uuid);

/// A viewer wants a stream to its session's VNC server. Answers the stream id and the
/// agent's connection (frames go there directly), or why not.
#[derive(Message)]
#[rtype(result = "Result<(StreamId, LinkHandle), String>")]
pub struct OpenStream {
    /// The session.
    pub session_id: Uuid,
    /// Its agent.
    pub agent_id: String,
    /// The viewer's tunnel.
    pub tunnel: TunnelHandle,
    /// The viewer's user.
    pub user_id: Uuid,
    /// Credit the agent starts with.
    pub window: u32,
}

/// A viewer's tunnel ended; its stream id is free again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStream {
    /// The agent.
    pub agent_id: String,
    /// The session.
    pub session_id: Uuid,
    /// The stream.
    pub stream_id: StreamId,
    /// Why, for the agent's log.
    pub reason: String,
    /// Whether the agent must be told (not when it ended the stream itself).
    pub tell_agent: bool,
}

/// Where the Supervisor's messages go: one allocation shared by every connection, command and
/// tunnel (a clone is a reference count; ten recipients cloned per agent link were 1.2 KiB of
/// each idle link's memory).
pub type SupervisorHandle = std::sync::Arc<SupervisorRecipients>;

/// The Supervisor's recipients, one per message.
pub struct SupervisorRecipients {
    /// A connection said hello.
    pub hello: Recipient<AgentHello>,
    /// A greeted agent said something.
    pub from_agent: Recipient<FromAgent>,
    /// An agent is alive.
    pub seen: Recipient<Seen>,
    /// A connection ended.
    pub disconnected: Recipient<AgentDisconnected>,
    /// An agent was refused.
    pub refused: Recipient<AgentRefused>,
    /// A message for an agent's live connection.
    pub send_to_agent: Recipient<SendToAgent>,
    /// Which connection an agent has.
    pub link_of: Recipient<LinkOf>,
    /// A command actor stopped.
    pub command_done: Recipient<CommandDone>,
    /// A viewer wants a stream.
    pub open_stream: Recipient<OpenStream>,
    /// A viewer's stream ended.
    pub close_stream: Recipient<CloseStream>,
}

/// What another replica (or this one) announced through the database, as the replica actor
/// heard it.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum ReplicaNotice {
    /// Commands for this agent were persisted: its replica delivers them.
    CommandsPending(String),
    /// A replica now holds this agent's link; any other lets go of it and its commands.
    Linked {
        /// The agent.
        agent_id: String,
        /// The replica holding its link.
        replica_id: Uuid,
    },
    /// A command no session follows ended; a request may await it.
    CommandDone(Uuid),
    /// A user changed: forget them from the cache of recent callers.
    UserChanged(Uuid),
    /// A user's access to a session (to every session when `None`) ended or changed: end
    /// their streams there.
    AccessEnded {
        /// The user.
        user_id: Uuid,
        /// The session.
        session_id: Option<Uuid>,
    },
    /// Notifications may have been missed (the listening connection was re-established):
    /// look at what is pending.
    Resync,
    /// This replica has not reached the database for three heartbeats: the others count it
    /// dead and claim its agents, so it lets go of its links, viewers and commands.
    DatabaseLost,
}
