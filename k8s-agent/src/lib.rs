//! StreamSpace agent: links to the control plane and runs sessions.

pub mod backoff;
pub mod command_book;
pub mod config;
pub mod health;
pub mod launch;
pub mod link;
pub mod link_codec;
pub mod link_messages;
pub mod metrics;
pub mod render;
pub mod runtime;
pub mod tunnel;
