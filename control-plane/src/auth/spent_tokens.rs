//! Viewer tokens are single-use: a token seen in a URL (a proxy log, a screenshot, the
//! browser history) cannot open a second stream. Spent ids are kept until the token would
//! have expired anyway, so the set stays as small as the tokens issued in one minute.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// The ids of viewer tokens already used, with their expiry (Unix seconds).
#[derive(Default)]
pub struct SpentTokens {
    spent: Mutex<HashMap<Uuid, i64>>,
}

impl SpentTokens {
    /// Marks `jti` used; `false` if it was used before. `now` prunes what has expired.
    pub fn spend(&self, jti: Uuid, expires: i64, now: i64) -> bool {
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        spent.retain(|_, exp| *exp >= now);
        spent.insert(jti, expires).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_spent_once_and_forgotten_after_it_expires() {
        let spent = SpentTokens::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(spent.spend(a, 100, 0));
        assert!(!spent.spend(a, 100, 50));
        assert!(spent.spend(b, 200, 50));
        // After its expiry it is pruned (and the token itself is refused as expired).
        assert!(!spent.spend(b, 200, 150));
        spent.spend(Uuid::from_u128(3), 300, 250);
        assert_eq!(spent.spent.lock().unwrap().len(), 1);
    }
}
