//! The `Analyser` actor: every [`ANALYSE_EVERY`] it has Postgres analyse the tables that have
//! at least doubled since their statistics were taken (`store::grown_tables`), so that the
//! plans Postgres keeps for key lookups follow a fleet registered in bulk within seconds
//! rather than at autovacuum's next pass.

use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::store::StoreHandle;
use crate::store::grown_tables::AnalyseGrownTables;

/// How often the tables' sizes are compared with their statistics (a read of `pg_class`).
pub const ANALYSE_EVERY: Duration = Duration::from_secs(5);
/// The longest pause after failures.
const MAX_PAUSE: Duration = Duration::from_secs(600);

/// How long to leave the tables alone after `failures` failed passes in a row: an ANALYZE
/// that cannot finish within the statement timeout (a huge table on slow disks) would
/// otherwise be tried, and logged, every few seconds until autovacuum analyses the table.
fn pause_after(failures: u32) -> Duration {
    ANALYSE_EVERY
        .saturating_mul(2u32.saturating_pow(failures))
        .min(MAX_PAUSE)
}

/// Looks at the tables' sizes now (also sent by the timer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AnalyseNow;

/// The actor.
pub struct Analyser {
    store: StoreHandle,
    running: bool,
    /// Failed passes in a row, and until when the next waits.
    failures: u32,
    paused_until: Option<Instant>,
}

impl Analyser {
    /// An analyser over `store`.
    pub fn new(store: StoreHandle) -> Self {
        Analyser {
            store,
            running: false,
            failures: 0,
            paused_until: None,
        }
    }
}

impl Actor for Analyser {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(ANALYSE_EVERY, |_, ctx| ctx.notify(AnalyseNow));
    }
}

impl Handler<AnalyseNow> for Analyser {
    type Result = ();

    fn handle(&mut self, _: AnalyseNow, ctx: &mut Context<Self>) {
        if self.running
            || self
                .paused_until
                .is_some_and(|until| Instant::now() < until)
        {
            return;
        }
        self.running = true;
        let store = self.store.clone();
        async move { store.run(AnalyseGrownTables).await }
            .into_actor(self)
            .map(|analysed, this, _| {
                this.running = false;
                match analysed {
                    Ok(tables) => {
                        (this.failures, this.paused_until) = (0, None);
                        if !tables.is_empty() {
                            log::info!("analysed grown tables: {}", tables.join(", "));
                        }
                    }
                    Err(e) => {
                        this.failures = this.failures.saturating_add(1);
                        let pause = pause_after(this.failures);
                        this.paused_until = Some(Instant::now() + pause);
                        log::warn!(
                            "analysing grown tables: {e}; next try in {} s",
                            pause.as_secs()
                        );
                    }
                }
            })
            .wait(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_double_the_pause_up_to_ten_minutes() {
        let pauses: Vec<u64> = (1..=9).map(|n| pause_after(n).as_secs()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(pause_after(u32::MAX), MAX_PAUSE);
    }
}
