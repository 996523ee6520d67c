//! The Supervisor's state and routing decisions, as plain data and functions so they can be
//! tested without sockets or actors. `C` is the handle of a live connection.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::model::AgentStatus;

/// A live agent connection.
#[derive(Debug, Clone)]
pub struct Link<C> {
    /// Identifies this connection (a reconnect gets a new one).
    pub conn_id: String,
    /// The credential it authenticated with.
    pub credential_id: Uuid,
    /// Handle to send to it.
    pub handle: C,
}

/// What the Supervisor knows about one agent.
#[derive(Debug, Clone)]
pub struct AgentEntry<C> {
    /// The live connection, if any.
    pub link: Option<Link<C>>,
    /// Last message, hello, heartbeat or pong.
    pub last_seen: Instant,
    /// Status last written to the store.
    pub status: AgentStatus,
    /// The connection the store records for the agent (kept after it drops, until the agent
    /// is offline): status writes are guarded by it.
    pub conn_id: Option<String>,
}

/// A status change decided by [`Registry::sweep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition<C> {
    /// The agent.
    pub agent_id: String,
    /// Its new status.
    pub status: AgentStatus,
    /// A connection to close (the agent went silent while connected).
    pub close: Option<C>,
    /// The connection this judgement is about: the write applies only if the store still
    /// records it, so a late one cannot undo a reconnect.
    pub conn_id: Option<String>,
}

/// Agents and their connections.
#[derive(Debug)]
pub struct Registry<C> {
    agents: HashMap<String, AgentEntry<C>>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            agents: HashMap::new(),
        }
    }
}

/// Status an agent deserves given how long it has been silent: heartbeats are late after
/// one and a half intervals, and the agent is gone after `timeout`.
pub fn liveness(silence: Duration, interval: Duration, timeout: Duration) -> AgentStatus {
    if silence >= timeout {
        AgentStatus::Offline
    } else if silence >= interval + interval / 2 {
        AgentStatus::Warning
    } else {
        AgentStatus::Online
    }
}

impl<C: Clone> Registry<C> {
    /// Makes `link` the agent's live connection; returns the one it replaces, to be closed.
    pub fn connect(&mut self, agent_id: &str, link: Link<C>, now: Instant) -> Option<Link<C>> {
        let entry = self
            .agents
            .entry(agent_id.to_owned())
            .or_insert(AgentEntry {
                link: None,
                last_seen: now,
                status: AgentStatus::Online,
                conn_id: None,
            });
        entry.last_seen = now;
        entry.status = AgentStatus::Online;
        entry.conn_id = Some(link.conn_id.clone());
        entry.link.replace(link)
    }

    /// A connection ended. Only the live one counts: a replaced connection's late cleanup must
    /// not disconnect its successor. Returns whether it was the live one.
    pub fn disconnect(&mut self, agent_id: &str, conn_id: &str) -> bool {
        match self.agents.get_mut(agent_id) {
            Some(entry) if entry.link.as_ref().is_some_and(|l| l.conn_id == conn_id) => {
                entry.link = None;
                entry.status = AgentStatus::Warning;
                true
            }
            _ => false,
        }
    }

    /// Something arrived on a connection; returns whether it is the live one.
    pub fn touch(&mut self, agent_id: &str, conn_id: &str, now: Instant) -> bool {
        match self.agents.get_mut(agent_id) {
            Some(entry) if entry.link.as_ref().is_some_and(|l| l.conn_id == conn_id) => {
                entry.last_seen = now;
                true
            }
            _ => false,
        }
    }

    /// The connection the store records for the agent, as far as this process knows.
    pub fn conn_id(&self, agent_id: &str) -> Option<String> {
        self.agents.get(agent_id).and_then(|e| e.conn_id.clone())
    }

    /// Marks a live agent's status as written (a heartbeat brought it back to `online`).
    pub fn set_status(&mut self, agent_id: &str, status: AgentStatus) -> Option<AgentStatus> {
        self.agents
            .get_mut(agent_id)
            .map(|entry| std::mem::replace(&mut entry.status, status))
    }

    /// Remembers an agent the store believes alive but that has no connection (after a
    /// control-plane restart): it gets `timeout` from `now` to reconnect.
    pub fn expect(&mut self, agent_id: &str, now: Instant) {
        self.agents
            .entry(agent_id.to_owned())
            .or_insert(AgentEntry {
                link: None,
                last_seen: now,
                status: AgentStatus::Warning,
                // The store cleared the previous process's connection at start.
                conn_id: None,
            });
    }

    /// The live connection of an agent.
    pub fn link(&self, agent_id: &str) -> Option<&Link<C>> {
        self.agents.get(agent_id).and_then(|e| e.link.as_ref())
    }

    /// Forgets an agent (deleted); returns its connection to close.
    pub fn remove(&mut self, agent_id: &str) -> Option<Link<C>> {
        self.agents.remove(agent_id).and_then(|e| e.link)
    }

    /// The agents linked here now.
    pub fn linked(&self) -> Vec<String> {
        self.agents
            .iter()
            .filter(|(_, e)| e.link.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Number of live connections.
    pub fn connected(&self) -> usize {
        self.agents.values().filter(|e| e.link.is_some()).count()
    }

    /// Applies [`liveness`] to every agent; returns the changes to record. Agents that go
    /// offline are forgotten (they come back with a new `hello`).
    pub fn sweep(
        &mut self,
        now: Instant,
        interval: Duration,
        timeout: Duration,
    ) -> Vec<Transition<C>> {
        let mut changes = Vec::new();
        self.agents.retain(|agent_id, entry| {
            let silence = now.saturating_duration_since(entry.last_seen);
            let mut status = liveness(silence, interval, timeout);
            if entry.link.is_none() && status == AgentStatus::Online {
                // Disconnected but recently seen: not online, not yet offline.
                status = AgentStatus::Warning;
            }
            if status != entry.status {
                entry.status = status;
                changes.push(Transition {
                    agent_id: agent_id.clone(),
                    status,
                    close: entry
                        .link
                        .as_ref()
                        .filter(|_| status == AgentStatus::Offline)
                        .map(|l| l.handle.clone()),
                    conn_id: entry.conn_id.clone(),
                });
            }
            status != AgentStatus::Offline
        });
        changes.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(30);
    const TIMEOUT: Duration = Duration::from_secs(90);

    fn link(conn_id: &str) -> Link<&'static str> {
        Link {
            conn_id: conn_id.into(),
            credential_id: Uuid::nil(),
            handle: "handle",
        }
    }

    #[test]
    fn liveness_thresholds() {
        assert_eq!(
            liveness(Duration::from_secs(44), INTERVAL, TIMEOUT),
            AgentStatus::Online
        );
        assert_eq!(
            liveness(Duration::from_secs(45), INTERVAL, TIMEOUT),
            AgentStatus::Warning
        );
        assert_eq!(
            liveness(Duration::from_secs(90), INTERVAL, TIMEOUT),
            AgentStatus::Offline
        );
    }

    #[test]
    fn a_replaced_connections_cleanup_does_not_disconnect_its_successor() {
        let mut registry = Registry::default();
        let now = Instant::now();
        assert!(registry.connect("a", link("old"), now).is_none());
        let replaced = registry.connect("a", link("new"), now).unwrap();
        assert_eq!(replaced.conn_id, "old");
        assert!(!registry.disconnect("a", "old"));
        assert_eq!(registry.link("a").unwrap().conn_id, "new");
        assert!(registry.disconnect("a", "new"));
        assert!(registry.link("a").is_none());
    }

    #[test]
    fn liveness_judgements_name_the_connection_they_are_about() {
        let mut registry = Registry::default();
        let t0 = Instant::now();
        registry.connect("a", link("first"), t0);
        assert!(registry.disconnect("a", "first"));
        let changes = registry.sweep(t0 + TIMEOUT, INTERVAL, TIMEOUT);
        assert_eq!(changes[0].status, AgentStatus::Offline);
        assert_eq!(changes[0].conn_id.as_deref(), Some("first"));
        registry.expect("b", t0);
        let changes = registry.sweep(t0 + TIMEOUT, INTERVAL, TIMEOUT);
        assert_eq!(
            (changes[0].agent_id.as_str(), changes[0].conn_id.as_deref()),
            ("b", None)
        );
    }

    #[test]
    fn stale_connections_do_not_keep_an_agent_alive() {
        let mut registry = Registry::default();
        let now = Instant::now();
        registry.connect("a", link("new"), now);
        assert!(!registry.touch("a", "old", now + TIMEOUT));
        assert!(registry.touch("a", "new", now + INTERVAL));
    }

    #[test]
    fn silence_moves_an_agent_to_warning_then_offline_and_closes_its_link() {
        let mut registry = Registry::default();
        let start = Instant::now();
        registry.connect("a", link("c1"), start);
        assert!(
            registry
                .sweep(start + Duration::from_secs(10), INTERVAL, TIMEOUT)
                .is_empty()
        );
        let warn = registry.sweep(start + Duration::from_secs(50), INTERVAL, TIMEOUT);
        assert_eq!(
            warn,
            vec![Transition {
                agent_id: "a".into(),
                status: AgentStatus::Warning,
                close: None,
                conn_id: Some("c1".into()),
            }]
        );
        let off = registry.sweep(start + TIMEOUT, INTERVAL, TIMEOUT);
        assert_eq!(off[0].status, AgentStatus::Offline);
        assert_eq!(off[0].close, Some("handle"));
        assert!(registry.link("a").is_none(), "offline agents are forgotten");
    }

    #[test]
    fn a_dropped_connection_is_warning_until_the_timeout() {
        let mut registry = Registry::default();
        let start = Instant::now();
        registry.connect("a", link("c1"), start);
        registry.disconnect("a", "c1");
        assert!(
            registry
                .sweep(start + Duration::from_secs(1), INTERVAL, TIMEOUT)
                .is_empty()
        );
        let off = registry.sweep(start + TIMEOUT, INTERVAL, TIMEOUT);
        assert_eq!((off[0].status, off[0].close), (AgentStatus::Offline, None));
    }

    #[test]
    fn agents_expected_after_a_restart_time_out_if_they_never_return() {
        let mut registry: Registry<&str> = Registry::default();
        let start = Instant::now();
        registry.expect("a", start);
        assert!(
            registry
                .sweep(start + INTERVAL, INTERVAL, TIMEOUT)
                .is_empty()
        );
        assert_eq!(
            registry.sweep(start + TIMEOUT, INTERVAL, TIMEOUT)[0].status,
            AgentStatus::Offline
        );
    }
}
