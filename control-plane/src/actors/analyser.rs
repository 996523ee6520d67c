//! The `Analyser` actor: every [`ANALYSE_EVERY`] it has Postgres analyse the tables that have
//! at least doubled since their statistics were taken (`store::grown_tables`), so that the
//! plans Postgres keeps for key lookups follow a fleet registered in bulk within seconds
//! rather than at autovacuum's next pass.

use std::time::Duration;

use actix::prelude::*;

use crate::store::StoreHandle;
use crate::store::grown_tables::AnalyseGrownTables;

/// How often the tables' sizes are compared with their statistics (a read of `pg_class`).
pub const ANALYSE_EVERY: Duration = Duration::from_secs(5);

/// Looks at the tables' sizes now (also sent by the timer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AnalyseNow;

/// The actor.
pub struct Analyser {
    store: StoreHandle,
    running: bool,
}

impl Analyser {
    /// An analyser over `store`.
    pub fn new(store: StoreHandle) -> Self {
        Analyser {
            store,
            running: false,
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
        if self.running {
            return;
        }
        self.running = true;
        let store = self.store.clone();
        async move { store.run(AnalyseGrownTables).await }
            .into_actor(self)
            .map(|analysed, this, _| {
                this.running = false;
                match analysed {
                    Ok(tables) if !tables.is_empty() => {
                        log::info!("analysed grown tables: {}", tables.join(", "));
                    }
                    Ok(_) => {}
                    Err(e) => log::warn!("analysing grown tables: {e}"),
                }
            })
            .wait(ctx);
    }
}
