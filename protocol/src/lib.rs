//! The wire protocol between StreamSpace agents and the control plane.
//!
//! An agent dials out to the control plane and keeps one WebSocket open. Over it travel
//! two kinds of frames:
//!
//! * **text frames**: JSON messages, [`AgentMessage`] (agent → control plane) and
//!   [`ControlMessage`] (control plane → agent), tagged by a `"type"` field;
//! * **binary frames**: stream data ([`Frame`]): a fixed 5-byte header (kind, stream id)
//!   followed by the payload. VNC bytes travel this way, never as text.
//!
//! Each stream has its own credit window ([`SendWindow`], [`RecvWindow`]): a sender never has
//! more than the window in flight, so one slow viewer cannot hold up other streams on the
//! same link and no buffer grows without bound.
//!
//! This crate does no I/O; both ends build on it.
#![warn(missing_docs)]

mod agent_message;
mod control_message;
mod error;
mod flow;
mod frame;
mod rfb_input;
mod session;
mod version;

pub use agent_message::AgentMessage;
pub use control_message::{Command, ControlMessage};
pub use error::ProtocolError;
pub use flow::{FlowError, RecvWindow, SendWindow};
pub use frame::{
    FRAME_HEADER_LEN, Frame, FrameError, FrameKind, MAX_FRAME_PAYLOAD, PROBE_SINCE,
    data_frame_buffer,
};
pub use rfb_input::{RfbInput, RfbInputError};
pub use session::{
    AgentSessionState, Capacity, Resources, SessionReport, SessionSpec, TemplateSpec, VncEndpoint,
};
pub use version::{PROTOCOL_VERSION, ProtocolVersion, VersionError};

/// The platforms an agent may run sessions on, as named in `hello` and in `PLATFORM`.
pub const PLATFORMS: [&str; 3] = ["kubernetes", "docker", "local"];

/// Largest JSON text message either side accepts, in bytes.
///
/// Session inventories are the largest legitimate messages; 1 MiB holds thousands of them.
pub const MAX_TEXT_MESSAGE: usize = 1024 * 1024;

/// Default credit window per stream, in bytes: what a sender may have in flight unacknowledged.
///
/// 256 KiB keeps a LAN-speed VNC stream busy while bounding memory per viewer.
pub const DEFAULT_STREAM_WINDOW: u32 = 256 * 1024;

/// Stream identifier, allocated by the control plane, unique per agent link.
pub type StreamId = u32;
