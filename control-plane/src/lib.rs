//! StreamSpace control plane.

pub mod config;
pub mod http;
pub mod server;
pub mod store;
