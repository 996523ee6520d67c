//! StreamSpace control plane.

pub mod accounts_cli;
pub mod actors;
pub mod auth;
pub mod config;
pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod placement;
pub mod recording;
pub mod server;
pub mod store;
pub mod validate;
pub mod websocket;
