//! Summaries of what a scenario measured.

use std::time::Duration;

pub use streamspace_testkit::latencies::Latencies;

/// Events per second.
pub fn rate(count: usize, over: Duration) -> f64 {
    count as f64 / over.as_secs_f64().max(1e-9)
}
