//! Session commands under load: creations and deletions per second from concurrent clients,
//! and one creation at a time.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::api::Api;
use crate::stats::{Latencies, rate};

/// What a throughput run saw.
pub struct Throughput {
    /// Accepted requests per second.
    pub per_s: f64,
    /// Their latencies.
    pub latencies: Latencies,
    /// Requests refused or failed.
    pub errors: usize,
}

/// `clients` callers creating sessions back to back for `over`; the ids are added to `made`.
pub async fn create_for(
    api: &Api,
    template: &str,
    clients: usize,
    over: Duration,
    made: &Rc<RefCell<Vec<Uuid>>>,
) -> Throughput {
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let api = api.another();
        let made = made.clone();
        async move {
            let mut latencies = Latencies::default();
            let mut errors = 0;
            while started.elapsed() < over {
                let (answer, id) = api.create_session(template).await;
                match id {
                    Some(id) => {
                        latencies.push(answer.took);
                        made.borrow_mut().push(id);
                    }
                    None => errors += 1,
                }
            }
            (latencies, errors)
        }
    });
    summarize(
        futures_util::future::join_all(workers).await,
        started.elapsed(),
    )
}

/// `clients` callers deleting `sessions` (each once) until none is left.
pub async fn delete_all(api: &Api, clients: usize, sessions: Vec<Uuid>) -> Throughput {
    let queue = Rc::new(RefCell::new(sessions));
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let api = api.another();
        let queue = queue.clone();
        async move {
            let mut latencies = Latencies::default();
            let mut errors = 0;
            loop {
                let Some(id) = queue.borrow_mut().pop() else {
                    break;
                };
                let answer = api
                    .call("DELETE", &format!("/api/v1/sessions/{id}"), None)
                    .await;
                if answer.status == 202 || answer.status == 204 || answer.status == 200 {
                    latencies.push(answer.took);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }
    });
    summarize(
        futures_util::future::join_all(workers).await,
        started.elapsed(),
    )
}

fn summarize(results: Vec<(Latencies, usize)>, elapsed: Duration) -> Throughput {
    let mut latencies = Latencies::default();
    let mut errors = 0;
    for (l, e) in results {
        latencies.extend(l);
        errors += e;
    }
    Throughput {
        per_s: rate(latencies.len(), elapsed),
        latencies,
        errors,
    }
}

/// `n` creations one after the other; their latencies.
pub async fn create_one_at_a_time(
    api: &Api,
    template: &str,
    n: usize,
    made: &Rc<RefCell<Vec<Uuid>>>,
) -> Latencies {
    let mut latencies = Latencies::default();
    for _ in 0..n {
        let (answer, id) = api.create_session(template).await;
        let id = id.unwrap_or_else(|| panic!("create refused: {} {}", answer.status, answer.body));
        latencies.push(answer.took);
        made.borrow_mut().push(id);
    }
    latencies
}
