//! Reconnect delays: exponential with full jitter, so a fleet of agents does not reconnect in
//! lockstep after a control-plane restart.

use std::time::Duration;

/// Delay schedule for reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `base` (the first delay lies in `[base/2, base]`), doubling up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The next delay; `jitter` in `[0, 1]` picks where in the upper half it falls.
    pub fn next_with(&mut self, jitter: f64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(self.attempt))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        ceiling / 2 + ceiling.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }

    /// The next delay with random jitter.
    pub fn next_delay(&mut self) -> Duration {
        let mut byte = [0u8; 1];
        let jitter = match getrandom::fill(&mut byte) {
            Ok(()) => f64::from(byte[0]) / 255.0,
            Err(_) => 0.5,
        };
        self.next_with(jitter)
    }

    /// After a successful connection: start over.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_under_a_second_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_with(1.0)).collect();
        assert_eq!(delays[0], Duration::from_millis(250));
        assert_eq!(delays[1], Duration::from_millis(500));
        assert_eq!(delays[2], Duration::from_secs(1));
        assert_eq!(delays[9], Duration::from_secs(30));
    }

    #[test]
    fn jitter_spreads_over_the_upper_half_and_reset_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        assert_eq!(b.next_with(0.0), Duration::from_millis(100));
        b.next_with(0.0);
        b.reset();
        assert_eq!(b.next_with(0.5), Duration::from_millis(150));
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(30));
        }
    }
}
