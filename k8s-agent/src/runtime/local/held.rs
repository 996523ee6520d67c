//! What the local runtime holds: its sessions' records, and the places and displays the
//! creates under way have claimed. Locked for a moment at a time, never across a wait.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

use super::Record;

/// The sessions this agent holds, and what the creates under way have claimed.
#[derive(Default)]
pub(super) struct Held {
    pub(super) records: HashMap<Uuid, Record>,
    /// Sessions being created: they count against `max_sessions`.
    pub(super) starting: HashSet<Uuid>,
    /// The displays creates are trying, and whose: two creates never try the same one.
    pub(super) displays: HashMap<u32, Uuid>,
}

impl Held {
    /// The live session that mounts `home`, if any.
    pub(super) fn using_home(&self, home: Uuid) -> Option<Uuid> {
        self.records
            .values()
            .find(|r| r.home_id == Some(home) && super::xvnc_alive(r))
            .map(|r| r.session_id)
    }
}

/// A create's place among the sessions, given up with its displays when the create ends.
pub(super) struct Starting<'a> {
    pub(super) held: &'a Mutex<Held>,
    pub(super) id: Uuid,
}

impl Starting<'_> {
    /// Whether this create may try `display`: no other create is trying it.
    pub(super) fn claim(&self, display: u32) -> bool {
        let mut held = lock(self.held);
        *held.displays.entry(display).or_insert(self.id) == self.id
    }
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        let mut held = lock(self.held);
        held.starting.remove(&self.id);
        held.displays.retain(|_, id| *id != self.id);
    }
}

pub(super) fn lock(held: &Mutex<Held>) -> MutexGuard<'_, Held> {
    held.lock().unwrap_or_else(|e| e.into_inner())
}
