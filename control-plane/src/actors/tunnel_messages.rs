//! What a viewer's tunnel is sent by the agent's connection, the commands and the
//! Supervisor, and [`TunnelHandle`], through which they send it without importing the tunnel.

use actix::prelude::*;
use bytes::Bytes;

/// Bytes from the agent for the viewer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamData(pub Bytes);

/// The agent drained bytes we sent: more window.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamCredit(pub u32);

/// The stream ended on the agent's side (desktop closed, link dropped, command failed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StreamClosed(pub String);

/// The viewer lost access (a share revoked or changed, the user disabled): the tunnel ends
/// and tells the agent to close its side.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndViewer(pub String);

/// Where a tunnel's messages go.
#[derive(Clone)]
pub struct TunnelHandle {
    /// Stream bytes.
    pub data: Recipient<StreamData>,
    /// Credit.
    pub credit: Recipient<StreamCredit>,
    /// The stream's end.
    pub closed: Recipient<StreamClosed>,
    /// The viewer's end.
    pub end: Recipient<EndViewer>,
}
