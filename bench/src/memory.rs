//! The control plane's resident memory, read from `/proc`.

use std::time::{Duration, Instant};

/// Resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resident memory of `pid` once it stopped falling: the lowest reading, taken every 250 ms
/// until none lower came for 5 s (at most 30 s). The allocator gives freed pages back in
/// steps, seconds apart, as its threads next allocate; what is measured is what the process
/// keeps, not what it has yet to return.
pub async fn settled_rss_kib(pid: u32) -> u64 {
    const EVERY: Duration = Duration::from_millis(250);
    const QUIET: Duration = Duration::from_secs(5);
    let started = Instant::now();
    let (mut lowest, mut lowest_at) = (rss_kib(pid), started);
    while lowest_at.elapsed() < QUIET && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(EVERY).await;
        let now = rss_kib(pid);
        if now < lowest {
            (lowest, lowest_at) = (now, Instant::now());
        }
    }
    lowest
}
