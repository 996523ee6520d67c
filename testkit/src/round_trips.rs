//! Round trips of small messages over many streams at a steady rate each: through the VNC
//! relay, or straight to an echo server as the baseline of the same run.

use std::time::{Duration, Instant};

use crate::latencies::Latencies;
use crate::rfb::{RfbClient, Transport};

/// Message size: about an RFB pointer event plus a small framebuffer update request.
const MESSAGE: usize = 64;

/// The steady pattern: `per_s` messages a second on each stream, for `over`.
#[derive(Clone, Copy)]
pub struct Pattern {
    pub per_s: u32,
    pub over: Duration,
}

/// Round trips of every stream, each sending at `pattern`.
pub async fn round_trips<T: Transport + 'static>(
    streams: Vec<RfbClient<T>>,
    pattern: Pattern,
) -> Latencies {
    let workers = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut stream)| async move {
            let mut latencies = Latencies::default();
            let gap = Duration::from_secs_f64(1.0 / f64::from(pattern.per_s));
            // Spread the streams over the first gap so they do not all send at once.
            tokio::time::sleep(gap.mul_f64(i as f64 / 100.0 % 1.0)).await;
            let mut tick = tokio::time::interval(gap);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let started = Instant::now();
            let message = [i as u8; MESSAGE];
            while started.elapsed() < pattern.over {
                tick.tick().await;
                let sent = Instant::now();
                stream.write(&message).await.expect("send");
                let echoed = stream.read_exact(MESSAGE).await.expect("echo");
                assert_eq!(echoed[..], message[..], "the echo came back changed");
                latencies.push(sent.elapsed());
            }
            latencies
        });
    let mut all = Latencies::default();
    for l in futures_util::future::join_all(workers).await {
        all.extend(l);
    }
    all
}
