//! The agent's Prometheus metrics on its probe server's `/metrics`: its sessions by state (read
//! from the runtime at scrape time, at most once per ten seconds), the bytes its tunnels
//! carry, how often it linked to the control plane, and how long runtime calls take.

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use streamspace_protocol::{AgentSessionState, SessionReport};

use crate::runtime::Runtime;

type Labels = Vec<(&'static str, String)>;

/// How long a read of the runtime's sessions serves scrapes.
const SESSIONS_FRESH_FOR: Duration = Duration::from_secs(10);
/// How long a scrape waits for the runtime's sessions: well inside Prometheus' default scrape
/// timeout (10 s), so a frozen runtime leaves the other metrics readable.
const SCRAPE_LIST_DEADLINE: Duration = Duration::from_secs(5);

/// Every metric of the process (one agent per process; tests with several share them).
pub struct Metrics {
    registry: Registry,
    sessions: Family<Labels, Gauge>,
    tunnel_bytes: Family<Labels, Counter>,
    links: Counter,
    runtime_calls: Family<Labels, Histogram, fn() -> Histogram>,
    read_at: Mutex<Option<Instant>>,
}

fn call_histogram() -> Histogram {
    // 1 ms … ~8 min: a local process starts in milliseconds, a Pod may pull an image.
    Histogram::new(exponential_buckets(0.001, 2.0, 19))
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("streamspace_agent");
        let sessions = Family::<Labels, Gauge>::default();
        registry.register(
            "sessions",
            "Sessions this agent holds, by state",
            sessions.clone(),
        );
        let tunnel_bytes = Family::<Labels, Counter>::default();
        registry.register_with_unit(
            "tunnel",
            "Bytes carried by VNC tunnels, by direction",
            prometheus_client::registry::Unit::Bytes,
            tunnel_bytes.clone(),
        );
        let links = Counter::default();
        registry.register(
            "links",
            "Times the agent linked to the control plane (the first time and every reconnect)",
            links.clone(),
        );
        let runtime_calls =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(call_histogram);
        registry.register_with_unit(
            "runtime_call",
            "Duration of calls into the runtime, by operation and outcome",
            prometheus_client::registry::Unit::Seconds,
            runtime_calls.clone(),
        );
        Metrics {
            registry,
            sessions,
            tunnel_bytes,
            links,
            runtime_calls,
            read_at: Mutex::new(None),
        }
    }

    /// `n` bytes went from the desktop to the viewer.
    pub fn to_viewer(&self, n: usize) {
        self.tunnel("to_viewer", n);
    }

    /// `n` bytes went from the viewer to the desktop.
    pub fn from_viewer(&self, n: usize) {
        self.tunnel("from_viewer", n);
    }

    fn tunnel(&self, direction: &str, n: usize) {
        self.tunnel_bytes
            .get_or_create(&vec![("direction", direction.to_owned())])
            .inc_by(n as u64);
    }

    /// The control plane welcomed the agent.
    pub fn linked(&self) {
        self.links.inc();
    }

    /// A runtime call of `operation` took `took` and succeeded or not.
    pub fn runtime_call(&self, operation: &str, took: Duration, ok: bool) {
        let labels = vec![
            ("operation", operation.to_owned()),
            ("outcome", if ok { "ok" } else { "error" }.to_owned()),
        ];
        self.runtime_calls
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    fn set_sessions(&self, sessions: &[SessionReport]) {
        self.sessions.clear();
        for state in [
            AgentSessionState::Starting,
            AgentSessionState::Running,
            AgentSessionState::Stopping,
            AgentSessionState::Failed,
        ] {
            let n = sessions.iter().filter(|s| s.state == state).count();
            let name = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.sessions
                .get_or_create(&vec![("state", name)])
                .set(n as i64);
        }
    }

    /// The text exposition, reading the runtime's sessions first if the last read is stale.
    pub async fn render(&self, runtime: &dyn Runtime) -> String {
        let stale = self
            .read_at
            .lock()
            .map(|at| at.is_none_or(|at| at.elapsed() > SESSIONS_FRESH_FOR))
            .unwrap_or(true);
        if stale {
            let started = Instant::now();
            let listed = crate::runtime::listed(SCRAPE_LIST_DEADLINE, runtime.list()).await;
            self.runtime_call("list", started.elapsed(), listed.is_ok());
            if let Ok(sessions) = listed {
                self.set_sessions(&sessions);
                if let Ok(mut at) = self.read_at.lock() {
                    *at = Some(Instant::now());
                }
            }
        }
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }
}
