//! What the link's tunnels ask of it. Apart from both, so a tunnel reaches its link through
//! [`LinkHandle`] without importing the link (and the link imports the tunnel).

use actix::prelude::*;
use streamspace_protocol::{AgentMessage, StreamId};

/// Sends a JSON message to the control plane (dropped while disconnected: the control plane
/// redelivers what it has not had an answer to).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendMessage(pub AgentMessage);

/// Sends an encoded binary frame.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendFrame(pub Vec<u8>);

/// Sends a stream's data frame laid out behind [`crate::link_codec::ROOM`] free bytes (its
/// WebSocket header is written there: no copy of the payload).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendData(pub Vec<u8>);

/// A tunnel stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TunnelGone(pub StreamId);

/// Where a tunnel's messages go.
#[derive(Clone)]
pub struct LinkHandle {
    /// JSON messages.
    pub message: Recipient<SendMessage>,
    /// Binary frames.
    pub frame: Recipient<SendFrame>,
    /// Data frames, with room in front.
    pub data: Recipient<SendData>,
    /// The tunnel's end.
    pub gone: Recipient<TunnelGone>,
}
