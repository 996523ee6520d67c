//! The actors: one [`supervisor::Supervisor`] routing between one
//! [`agent_connection::AgentConnection`] per agent WebSocket, one [`command::CommandActor`]
//! per command in flight (their store writes made in batches by
//! [`batcher::Batcher`]s), one [`vnc_tunnel::VncTunnel`] per browser viewer, the store,
//! one [`pruner::Pruner`] enforcing retention, one [`limit_keeper::LimitKeeper`] stopping
//! desktops past their idle timeout or lifetime, and one [`analyser::Analyser`] having
//! Postgres analyse tables that have grown.

pub mod agent_connection;
pub mod analyser;
pub mod batcher;
pub mod command;
pub mod limit_keeper;
pub mod link_messages;
pub mod link_streams;
pub mod pruner;
pub mod replica;
pub mod supervisor;
pub mod supervisor_messages;
pub mod tunnel_messages;
pub mod viewer_writer;
pub mod vnc_tunnel;
