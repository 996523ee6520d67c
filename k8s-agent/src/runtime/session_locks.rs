//! One lock per session, so a `delete_session` never runs while the same session is still
//! being created (or the other way round); different sessions never wait for each other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use streamspace_protocol::{AgentSessionState, SessionReport};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::RuntimeError;

/// The locks of the sessions being worked on; entries go when nobody holds or waits.
#[derive(Default)]
pub struct SessionLocks {
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while one operation on a session runs.
pub struct SessionGuard<'a> {
    locks: &'a SessionLocks,
    id: Uuid,
    guard: Option<OwnedMutexGuard<()>>,
}

impl SessionLocks {
    /// Whether an operation on `id` runs (or waits to).
    pub fn busy(&self, id: Uuid) -> bool {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&id)
    }

    /// Every session an operation runs (or waits) on.
    pub fn busy_sessions(&self) -> Vec<Uuid> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// What `list` yields, with the sessions a command is creating or deleting right now
    /// reported as starting: their command's answer tells the outcome, and a report taken
    /// mid-way (a failed start being cleaned up looks like a deletion) must not race it.
    pub async fn inventory(
        &self,
        list: impl Future<Output = Result<Vec<SessionReport>, RuntimeError>>,
    ) -> Result<Vec<SessionReport>, RuntimeError> {
        // Busy when the list began or when it ended: either way the list may show a
        // command's work half done.
        let busy_before = self.busy_sessions();
        let mut sessions = list.await?;
        for session in &mut sessions {
            if busy_before.contains(&session.session_id) || self.busy(session.session_id) {
                session.state = AgentSessionState::Starting;
                session.vnc = None;
                session.message = Some("a command is working on it".into());
            }
        }
        Ok(sessions)
    }

    /// Waits until no other operation on `id` runs.
    pub async fn lock(&self, id: Uuid) -> SessionGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(id).or_default().clone()
        };
        SessionGuard {
            locks: self,
            id,
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.locks.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: nobody else is running or waiting.
        if locks
            .get(&self.id)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_session_at_a_time_others_in_parallel_and_nothing_left_behind() {
        let locks = Arc::new(SessionLocks::default());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let first = locks.lock(a).await;
        // Another session is not held up.
        drop(locks.lock(b).await);
        // The same session waits.
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _second = locks.lock(a).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        assert!(locks.busy(a) && !locks.busy(b));
        assert_eq!(locks.busy_sessions(), [a]);
        drop(first);
        waiting.await.unwrap();
        assert!(!locks.busy(a));
        assert!(locks.locks.lock().unwrap().is_empty());
    }
}
