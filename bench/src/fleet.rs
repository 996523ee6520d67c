//! Many simulated agents: registered through the API, connected at once, stopped together.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};

use crate::api::Api;
use crate::sim_agent;

/// Connected simulated agents; they say goodbye when [`Fleet::stop`] is called or the fleet
/// is dropped.
pub struct Fleet {
    stop: watch::Sender<bool>,
    /// How many are linked.
    pub linked: usize,
    /// Welcomes so far, first links and links made again.
    welcomes: Arc<AtomicUsize>,
}

/// Registers `n` agents named `{prefix}-{i}`, `parallel` at a time; their ids and tokens.
pub async fn register(api: &Api, prefix: &str, n: usize, parallel: usize) -> Vec<(String, String)> {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let id = format!("{prefix}-{i}");
            async move {
                let token = api.register_agent(&id).await;
                (id, token)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

/// Waits (at most `within`) until the control plane counts at least `n` agents no longer
/// online: the departures of a stopped fleet recorded.
pub async fn departed(api: &Api, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let summary = api.call("GET", "/api/v1/agent-summary", None).await;
        let gone: i64 = ["warning", "offline"]
            .iter()
            .filter_map(|s| summary.body["by_status"][s].as_i64())
            .sum();
        if usize::try_from(gone).unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("  (not every departure was recorded within {within:?})");
}

impl Fleet {
    /// Connects every agent at the same moment; returns once all are welcomed (or refused),
    /// with the time the last welcome took.
    pub async fn connect(api: &Api, agents: &[(String, String)]) -> (Fleet, Duration) {
        let (stop, stopped) = watch::channel(false);
        let welcomes = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let links: Vec<oneshot::Receiver<sim_agent::Linked>> = agents
            .iter()
            .map(|(id, token)| {
                let (linked, welcome) = oneshot::channel();
                actix_web::rt::spawn(sim_agent::run(
                    api.ws_base(),
                    id.clone(),
                    token.clone(),
                    linked,
                    welcomes.clone(),
                    stopped.clone(),
                ));
                welcome
            })
            .collect();
        let mut last = started;
        let mut linked = 0;
        for welcome in links {
            if let Ok(at) = welcome.await {
                linked += 1;
                last = last.max(at.welcomed);
            }
        }
        let fleet = Fleet {
            stop,
            linked,
            welcomes,
        };
        (fleet, last - started)
    }

    /// Welcomes so far.
    pub fn welcomes(&self) -> usize {
        self.welcomes.load(Ordering::Relaxed)
    }

    /// Waits until the welcomes reach `count` (every agent linked again after a restart);
    /// `None` if that takes longer than `patience`.
    pub async fn welcomed(&self, count: usize, patience: Duration) -> Option<Instant> {
        let deadline = Instant::now() + patience;
        while self.welcomes() < count {
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Some(Instant::now())
    }

    /// Every agent says goodbye and closes its link.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}
