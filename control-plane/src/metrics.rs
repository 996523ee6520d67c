//! Prometheus metrics. State counts are read from the store at scrape time, at most once per
//! ten seconds (so they are right after a restart, and scrapes cannot load the database);
//! latencies and connection counts are recorded as they happen.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::stats::Counts;

type Labels = Vec<(&'static str, String)>;

/// Kinds of WebSocket the control plane serves.
#[derive(Debug, Clone, Copy)]
pub enum SocketKind {
    /// An agent's link.
    Agent,
    /// A browser viewer.
    Viewer,
}

impl SocketKind {
    fn label(self) -> Labels {
        let kind = match self {
            SocketKind::Agent => "agent",
            SocketKind::Viewer => "viewer",
        };
        vec![("kind", kind.to_owned())]
    }
}

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    agents: Family<Labels, Gauge>,
    sessions: Family<Labels, Gauge>,
    commands: Family<Labels, Gauge>,
    command_latency: Family<Labels, Histogram, fn() -> Histogram>,
    sockets: Family<Labels, Gauge>,
    viewer_buffered: Gauge,
    vnc_streams: Gauge,
    /// The last state counts read, and when.
    counts: Mutex<Option<(Instant, Counts)>>,
    // Serializes scrapes: each clears and refills the state gauges.
    scrape: Mutex<()>,
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~80 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("streamspace");
        let agents = Family::default();
        let sessions = Family::default();
        let commands = Family::default();
        let command_latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let sockets = Family::default();
        let viewer_buffered = Gauge::default();
        let vnc_streams = Gauge::default();
        registry.register("agents", "Agents by status", agents.clone());
        registry.register("sessions", "Sessions by state", sessions.clone());
        registry.register("commands", "Commands by type and status", commands.clone());
        registry.register(
            "command_duration_seconds",
            "Time from a command's creation to its completion or failure",
            command_latency.clone(),
        );
        registry.register(
            "websocket_connections",
            "Open WebSocket connections by kind",
            sockets.clone(),
        );
        registry.register(
            "vnc_streams",
            "VNC streams open between viewers and agents",
            vnc_streams.clone(),
        );
        registry.register(
            "viewer_buffered_bytes",
            "Bytes received from agents and not yet written to viewers (bounded by the stream windows)",
            viewer_buffered.clone(),
        );
        Metrics {
            viewer_buffered,
            vnc_streams,
            counts: Mutex::new(None),
            registry,
            agents,
            sessions,
            commands,
            command_latency,
            sockets,
            scrape: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// A command finished after `seconds`.
    pub fn observe_command(&self, command_type: &str, seconds: f64) {
        self.command_latency
            .get_or_create(&vec![("type", command_type.to_owned())])
            .observe(seconds);
    }

    /// A WebSocket of this kind opened.
    pub fn socket_opened(&self, kind: SocketKind) {
        self.sockets.get_or_create(&kind.label()).inc();
    }

    /// A WebSocket of this kind closed.
    pub fn socket_closed(&self, kind: SocketKind) {
        self.sockets.get_or_create(&kind.label()).dec();
    }

    /// Bytes entered (positive) or left (negative) the viewers' send queues.
    pub fn viewer_buffered(&self, delta: i64) {
        self.viewer_buffered.inc_by(delta);
    }

    /// The state counts read less than `max_age` ago, if any.
    pub fn recent_counts(&self, max_age: Duration) -> Option<Counts> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .as_ref()
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, c)| c.clone())
    }

    /// Keeps freshly read state counts for [`Self::recent_counts`].
    pub fn remember_counts(&self, counts: Counts) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), counts));
    }

    /// How many VNC streams are open now.
    pub fn vnc_streams(&self, open: usize) {
        self.vnc_streams
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Renders the text exposition format with fresh state counts.
    pub fn render(&self, counts: &Counts) -> String {
        let _guard = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.agents.clear();
        self.sessions.clear();
        self.commands.clear();
        for (status, n) in &counts.agents {
            self.agents
                .get_or_create(&vec![("status", status.clone())])
                .set(*n);
        }
        for (state, n) in &counts.sessions {
            self.sessions
                .get_or_create(&vec![("state", state.clone())])
                .set(*n);
        }
        for (kind, status, n) in &counts.commands {
            self.commands
                .get_or_create(&vec![("type", kind.clone()), ("status", status.clone())])
                .set(*n);
        }
        for kind in [SocketKind::Agent, SocketKind::Viewer] {
            // Present at zero too, so dashboards see the series.
            let _ = self.sockets.get_or_create(&kind.label());
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_state_counts_latency_and_sockets() {
        let metrics = Metrics::default();
        metrics.observe_command("create_session", 0.25);
        metrics.socket_opened(SocketKind::Agent);
        let text = metrics.render(&Counts {
            agents: vec![("online".into(), 2)],
            sessions: vec![("running".into(), 3)],
            commands: vec![("create_session".into(), "completed".into(), 4)],
        });
        for line in [
            "streamspace_agents{status=\"online\"} 2",
            "streamspace_sessions{state=\"running\"} 3",
            "streamspace_commands{type=\"create_session\",status=\"completed\"} 4",
            "streamspace_command_duration_seconds_count{type=\"create_session\"} 1",
            "streamspace_websocket_connections{kind=\"agent\"} 1",
            "streamspace_websocket_connections{kind=\"viewer\"} 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_scrape_forgets_states_that_no_longer_exist() {
        let metrics = Metrics::default();
        metrics.render(&Counts {
            sessions: vec![("failed".into(), 1)],
            ..Counts::default()
        });
        let text = metrics.render(&Counts::default());
        assert!(!text.contains("state=\"failed\""), "{text}");
    }
}
