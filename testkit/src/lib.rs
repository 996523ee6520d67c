//! Support for StreamSpace's tests: real services, started and cleaned up per test.

mod database;

pub use database::TestDatabase;
