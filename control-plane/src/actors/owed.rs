//! Frames a peer makes us send (pongs to its pings, error replies to its bad messages) fall
//! outside the stream credit windows, so they are counted until written: a peer that keeps
//! asking while never reading is closed instead of growing our memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most peer-caused frames waiting to be written before the peer is closed.
pub const LIMIT: usize = 64;

/// The count of such frames queued and not yet written; shared with the writer task.
#[derive(Debug, Clone, Default)]
pub struct Owed(Arc<AtomicUsize>);

impl Owed {
    /// Counts one more frame; `false` (counting nothing) once [`LIMIT`] are waiting.
    pub fn add(&self) -> bool {
        let before = self.0.fetch_add(1, Ordering::AcqRel);
        if before >= LIMIT {
            self.0.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// One counted frame was written.
    pub fn written(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_may_owe_at_most_the_limit() {
        let owed = Owed::default();
        for _ in 0..LIMIT {
            assert!(owed.add());
        }
        assert!(!owed.add());
        owed.written();
        assert!(owed.add());
    }
}
