//! The users behind recent requests, so each request does not read its caller's row.
//!
//! Every API request checks that its caller still exists, is enabled and has not changed their
//! password since the token was issued. A user's row is kept here for `USER_CACHE_TTL`
//! (default 2 s); a change to it through this replica forgets it at once, and every change
//! notifies the other replicas (Postgres `NOTIFY`), which forget it as soon as the notification
//! arrives. Were a notification lost with the listening connection, the cache is cleared when
//! it listens again, and no entry outlives its TTL anyway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::store::users::User;

/// Entries at most; when full, expired ones go, and if none has, all.
const CAPACITY: usize = 10_000;

/// The cache, shared by the request handlers and the Supervisor (which hears the other
/// replicas' notifications).
#[derive(Debug)]
pub struct UserCache {
    ttl: Duration,
    users: Mutex<HashMap<Uuid, (User, Instant)>>,
}

impl UserCache {
    /// Keeps each user for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        UserCache {
            ttl,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// The user, if read less than the TTL ago.
    pub fn get(&self, id: Uuid) -> Option<User> {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users
            .get(&id)
            .filter(|(_, read)| read.elapsed() < self.ttl)
            .map(|(user, _)| user.clone())
    }

    /// Keeps `user`, just read from the store.
    pub fn put(&self, user: User) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if users.len() >= CAPACITY {
            users.retain(|_, (_, read)| read.elapsed() < self.ttl);
            if users.len() >= CAPACITY {
                users.clear();
            }
        }
        users.insert(user.id, (user, Instant::now()));
    }

    /// The user changed (or is gone).
    pub fn forget(&self, id: Uuid) {
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Changes may have been missed.
    pub fn clear(&self) {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        let now = chrono::Utc::now();
        User {
            id: Uuid::new_v4(),
            username: "u".into(),
            password_hash: String::new(),
            role: "user".into(),
            disabled: false,
            created_at: now,
            updated_at: now,
            password_changed_at: now,
        }
    }

    #[test]
    fn a_user_is_kept_until_forgotten_cleared_or_stale() {
        let cache = UserCache::new(Duration::from_secs(60));
        let (a, b) = (user(), user());
        cache.put(a.clone());
        cache.put(b.clone());
        assert_eq!(cache.get(a.id).map(|u| u.id), Some(a.id));
        cache.forget(a.id);
        assert!(cache.get(a.id).is_none());
        assert!(cache.get(b.id).is_some());
        cache.clear();
        assert!(cache.get(b.id).is_none());

        let stale = UserCache::new(Duration::from_millis(1));
        stale.put(a.clone());
        std::thread::sleep(Duration::from_millis(5));
        assert!(stale.get(a.id).is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let cache = UserCache::new(Duration::from_secs(60));
        for _ in 0..CAPACITY {
            cache.put(user());
        }
        let last = user();
        cache.put(last.clone());
        assert!(cache.get(last.id).is_some());
        assert!(cache.users.lock().unwrap().len() <= CAPACITY);
    }
}
