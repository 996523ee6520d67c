//! What each figure is compared with, measured in the same run on the same machine: the
//! database's own commit rate, fresh HTTP connections to a trivial endpoint, a direct TCP echo.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Single-row insert transactions per second that `concurrency` connections get from the
/// Postgres at `url` in `over`: the most any write path of ours could do there.
pub fn postgres_commits_per_s(url: &str, concurrency: usize, over: Duration) -> f64 {
    let mut conn = PgConnection::establish(url).expect("connect to Postgres");
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, \
         at timestamptz NOT NULL DEFAULT now(), note text NOT NULL)",
    )
    .execute(&mut conn)
    .expect("baseline table");
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (url, done, stop) = (url.to_owned(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut conn = PgConnection::establish(&url).expect("connect to Postgres");
                while !stop.load(Ordering::Relaxed) {
                    diesel::sql_query("INSERT INTO bench_baseline (note) VALUES ('x')")
                        .execute(&mut conn)
                        .expect("baseline insert");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(over);
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for worker in workers {
        let _ = worker.join();
    }
    done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

/// How long `n` clients opening a fresh connection each to `GET /healthz` at once take until
/// the last has its answer.
pub async fn health_checks_at_once(base: &str, n: usize) -> Duration {
    let started = Instant::now();
    let checks = (0..n).map(|_| async {
        let answer = crate::api::client()
            .get(format!("{base}/healthz"))
            .send()
            .await;
        assert!(answer.is_ok_and(|a| a.status().is_success()), "healthz");
    });
    futures_util::future::join_all(checks).await;
    started.elapsed()
}

/// A TCP echo server on loopback, for as long as the process runs; its address.
pub async fn tcp_echo() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_web::rt::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            actix_web::rt::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
