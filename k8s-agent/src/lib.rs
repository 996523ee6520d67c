//! StreamSpace agent: links to the control plane and runs sessions.

pub mod config;
pub mod runtime;
pub mod backoff;
pub mod command_book;
pub mod link;
pub mod tunnel;
pub mod health;
