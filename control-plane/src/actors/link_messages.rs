//! What an agent's connection is sent by the Supervisor and the viewers' tunnels, and
//! [`LinkHandle`], through which they send it without importing the connection.

use actix::prelude::*;
use actix_http::ws::CloseCode;
use streamspace_protocol::{ControlMessage, StreamId};

use super::tunnel_messages::TunnelHandle;

/// Sends a JSON message to the agent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Outgoing(pub ControlMessage);

/// Closes the link with a reason the agent will log.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseLink {
    /// WebSocket close code.
    pub code: CloseCode,
    /// Why (at most 123 bytes reach the agent).
    pub reason: String,
}

/// Routes a stream's frames from the agent to a viewer's tunnel.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterStream {
    /// The stream.
    pub stream_id: StreamId,
    /// Its viewer.
    pub tunnel: TunnelHandle,
}

/// Stops routing a stream.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterStream(pub StreamId);

/// Sends an encoded binary stream frame to the agent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendFrame(pub Vec<u8>);

/// Where a connection's messages go: made once per link and shared by the Supervisor and the
/// link's tunnels (a clone is a reference count, not five recipients).
pub type LinkHandle = std::sync::Arc<LinkRecipients>;

/// A connection's recipients, one per message.
pub struct LinkRecipients {
    /// JSON messages for the agent.
    pub outgoing: Recipient<Outgoing>,
    /// Closing the link.
    pub close: Recipient<CloseLink>,
    /// Routing a stream to a tunnel.
    pub register: Recipient<RegisterStream>,
    /// Ending that routing.
    pub unregister: Recipient<UnregisterStream>,
    /// Binary frames for the agent.
    pub frame: Recipient<SendFrame>,
    /// The worker the connection runs on: its viewers' streams are served there too.
    pub home: Home,
}

/// A worker thread, and how to run work on it.
#[derive(Clone)]
pub struct Home {
    thread: std::thread::ThreadId,
    arbiter: actix::ArbiterHandle,
}

impl Home {
    /// The worker this is called on.
    pub fn current() -> Self {
        Home {
            thread: std::thread::current().id(),
            arbiter: actix::Arbiter::current(),
        }
    }

    /// The worker, unless it is the one this is called on.
    pub fn elsewhere(&self) -> Option<actix::ArbiterHandle> {
        (self.thread != std::thread::current().id()).then(|| self.arbiter.clone())
    }
}
