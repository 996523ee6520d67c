//! Keeps password checking from taking the process down: each argon2id verification costs
//! ~19 MiB and tens of milliseconds, so at most one per core runs at once, and a client
//! address or user name that keeps failing is told to wait (HTTP 429 with `Retry-After`)
//! before any hashing happens. Failure counts live in memory, in fixed windows that are
//! forgotten once over; the hashing cap bounds how fast new entries can appear.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed per client address within [`WINDOW`].
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// Failed logins allowed per user name within [`WINDOW`], from anywhere.
pub const MAX_FAILURES_PER_USER: u32 = 10;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(String),
    User(String),
}

struct Count {
    failures: u32,
    since: Instant,
}

/// Failure counts and the hashing permits.
pub struct LoginGuard {
    counts: Mutex<HashMap<Key, Count>>,
    hashing: tokio::sync::Semaphore,
}

impl LoginGuard {
    /// A guard letting `concurrent_hashes` verifications run at once.
    pub fn new(concurrent_hashes: usize) -> Self {
        LoginGuard {
            counts: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(concurrent_hashes.max(1)),
        }
    }

    /// One verification per core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// `Err(wait)` when `address` or `user` failed too often lately.
    pub fn check(&self, address: Option<&str>, user: &str, now: Instant) -> Result<(), Duration> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = Duration::ZERO;
        for (key, limit) in keys(address, user) {
            if let Some(count) = counts.get(&key) {
                let elapsed = now.saturating_duration_since(count.since);
                if elapsed >= WINDOW {
                    counts.remove(&key);
                } else if count.failures >= limit {
                    wait = wait.max(WINDOW - elapsed);
                }
            }
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// Counts a failed login.
    pub fn failed(&self, address: Option<&str>, user: &str, now: Instant) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        // Old windows go whenever the map has grown, so it holds one window's failures.
        if counts.len() > 1024 {
            counts.retain(|_, c| now.saturating_duration_since(c.since) < WINDOW);
        }
        for (key, _) in keys(address, user) {
            let count = counts.entry(key).or_insert(Count {
                failures: 0,
                since: now,
            });
            if now.saturating_duration_since(count.since) >= WINDOW {
                *count = Count {
                    failures: 0,
                    since: now,
                };
            }
            count.failures += 1;
        }
    }

    /// A successful login clears its user name's failures (not its address's).
    pub fn succeeded(&self, user: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.remove(&Key::User(user.to_owned()));
    }

    /// Waits for a hashing permit, at most `patience`; `None` if the machine is that busy.
    pub async fn hashing_permit(
        &self,
        patience: Duration,
    ) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(patience, self.hashing.acquire())
            .await
            .ok()?
            .ok()
    }
}

fn keys(address: Option<&str>, user: &str) -> Vec<(Key, u32)> {
    let mut keys = vec![(Key::User(user.to_owned()), MAX_FAILURES_PER_USER)];
    if let Some(address) = address {
        keys.push((Key::Address(address.to_owned()), MAX_FAILURES_PER_ADDRESS));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_name_that_keeps_failing_waits_out_the_window_then_may_try_again() {
        let guard = LoginGuard::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES_PER_USER {
            // From different addresses: the user name's own limit applies.
            let address = format!("10.0.0.{i}");
            assert!(guard.check(Some(&address), "alice", t0).is_ok());
            guard.failed(Some(&address), "alice", t0);
        }
        let wait = guard
            .check(Some("10.9.9.9"), "alice", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(guard.check(Some("10.9.9.9"), "bob", t0).is_ok());
        assert!(guard.check(None, "alice", t0 + WINDOW).is_ok());
    }

    #[test]
    fn an_address_that_keeps_failing_is_stopped_whatever_name_it_tries() {
        let guard = LoginGuard::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            guard.failed(Some("203.0.113.7"), &format!("user{i}"), t0);
        }
        assert!(guard.check(Some("203.0.113.7"), "someone", t0).is_err());
        assert!(guard.check(Some("203.0.113.8"), "someone", t0).is_ok());
    }

    #[test]
    fn success_clears_the_user_names_failures() {
        let guard = LoginGuard::new(1);
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES_PER_USER {
            guard.failed(None, "alice", t0);
        }
        guard.succeeded("alice");
        assert!(guard.check(None, "alice", t0).is_ok());
    }

    #[tokio::test]
    async fn hashing_is_capped() {
        let guard = LoginGuard::new(1);
        let first = guard.hashing_permit(Duration::from_millis(10)).await;
        assert!(first.is_some());
        assert!(
            guard
                .hashing_permit(Duration::from_millis(10))
                .await
                .is_none()
        );
        drop(first);
        assert!(
            guard
                .hashing_permit(Duration::from_millis(10))
                .await
                .is_some()
        );
    }
}
