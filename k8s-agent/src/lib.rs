//! StreamSpace agent: links to the control plane and runs sessions.

pub mod config;
