//! Support for StreamSpace's tests: real services, started and cleaned up per test.

pub mod control_plane;
mod database;
pub mod rfb;

pub use database::TestDatabase;
